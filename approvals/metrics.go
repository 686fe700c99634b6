package approvals

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Events counted by mcpguard_approvals_events_total.
const (
	evRequested = "requested"
	evApproved  = "approved"
	evDenied    = "denied"
	evExpired   = "expired"
	evDeferred  = "deferred"
	evConsumed  = "consumed"
	evGranted   = "granted"
)

type metrics struct {
	events  *prometheus.CounterVec
	held    prometheus.Gauge
	release prometheus.Histogram
	limited *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, errors.New("approvals: a prometheus registerer is required")
	}
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpguard_approvals_events_total",
			Help: "Approval steps: requested, approved, denied, expired, deferred, consumed, granted (notifications: mcpguard_approvals_notifications_total).",
		}, []string{"event"}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mcpguard_approvals_held_calls",
			Help: "Calls held right now waiting for a decision.",
		}),
		release: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mcpguard_approvals_release_seconds",
			Help:    "Time from a decision to the held call being released.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpguard_approvals_limited_total",
			Help: "Calls refused because the pending limit was reached, by scope: requester (max_pending_per_requester) or global (max_pending).",
		}, []string{"scope"}),
	}
	for _, c := range []prometheus.Collector{m.events, m.held, m.release, m.limited} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register approvals metrics: %w", err)
		}
	}
	// Exposed at zero from the start, so an alert on the rate works before the first refusal.
	for _, scope := range []string{scopeRequester, scopeGlobal} {
		m.limited.WithLabelValues(scope)
	}
	return m, nil
}

func (m *metrics) event(name string) { m.events.WithLabelValues(name).Inc() }
