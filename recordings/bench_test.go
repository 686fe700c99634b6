package recordings_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/recordings"
)

// BenchmarkExchange is the recorder's cost per exchange: three events then the durable
// commit the gateway waits for. Run in parallel, commits are shared (group commit);
// events/s is the sustained rate, upload_lag the time from seal to storage (directory sink).
func BenchmarkExchange(b *testing.B) {
	for _, par := range []int{1, 16} {
		b.Run(fmt.Sprintf("streams=%d", par), func(b *testing.B) {
			cfg := recordings.DefaultConfig()
			cfg.ReplicaID = "bench"
			cfg.Spool.Dir = b.TempDir()
			cfg.Sink.Dir.Path = b.TempDir()
			sink, err := recordings.NewDir(cfg.Sink.Dir.Path)
			require.NoError(b, err)
			reg := prometheus.NewRegistry()
			r, err := recordings.Open(cfg, sink, testKey(b), nil, reg)
			require.NoError(b, err)
			b.ReportAllocs()
			b.SetParallelism(par)
			var n atomic.Int64
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				s := fmt.Sprintf("bench-%d", n.Add(1))
				i := 0
				for pb.Next() {
					exchange(b, r, s, i)
					i++
				}
			})
			el := time.Since(start)
			b.ReportMetric(float64(3*b.N)/el.Seconds(), "events/s")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			require.NoError(b, r.Close(ctx))
			mfs, _ := reg.Gather()
			for _, mf := range mfs {
				if mf.GetName() == "mcpguard_recordings_upload_lag_seconds" {
					h := mf.GetMetric()[0].GetHistogram()
					if h.GetSampleCount() > 0 {
						b.ReportMetric(h.GetSampleSum()/float64(h.GetSampleCount())*1000, "upload_lag_ms")
					}
				}
			}
			keys, _ := sink.List(context.Background(), "")
			var bytes int
			for _, k := range keys {
				d, _ := sink.Get(context.Background(), k)
				bytes += len(d)
			}
			b.ReportMetric(float64(bytes)/float64(b.N), "stored_B/exchange")
		})
	}
}
