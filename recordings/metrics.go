package recordings

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	events  prometheus.Counter
	commit  prometheus.Histogram
	uploads *prometheus.CounterVec
	lag     prometheus.Histogram
	dropped prometheus.Counter
	refused prometheus.Counter
	sealErr prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, spoolBytes func() float64) (*metrics, error) {
	m := &metrics{
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpguard_recordings_events_total", Help: "Events appended to the spool.",
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mcpguard_recordings_commit_duration_seconds", Help: "Time to write and fsync one group commit.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpguard_recordings_uploads_total", Help: "Object uploads to the sink by result.",
		}, []string{"result"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mcpguard_recordings_upload_lag_seconds", Help: "Time from sealing an object in the spool to its upload.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 20),
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpguard_recordings_dropped_segments_total", Help: "Segments deleted unuploaded because the spool was full (drop_oldest).",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpguard_recordings_refused_total", Help: "Requests refused because the spool was full (fail_closed).",
		}),
		sealErr: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpguard_recordings_seal_errors_total", Help: "Background seals (segments, chain closes, index parts) that failed and will be retried.",
		}),
	}
	spool := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mcpguard_recordings_spool_bytes", Help: "Bytes held in the local spool.",
	}, spoolBytes)
	for _, c := range []prometheus.Collector{m.events, m.commit, m.uploads, m.lag, m.dropped, m.refused, m.sealErr, spool} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register recordings metrics: %w", err)
		}
	}
	return m, nil
}
