package extproc_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/extproc"
	"github.com/mcpguard/mcpguard/recordings"
)

// BenchmarkRecordingLatency is one whole exchange over real gRPC (request headers and body,
// response headers and body) with recording off and on; on, the final answer waits for the
// group commit. p50/p99 are per exchange; run with -cpu to vary concurrency.
func BenchmarkRecordingLatency(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			var stages []extproc.Stage
			if on {
				cfg := recordings.DefaultConfig()
				cfg.ReplicaID = "bench"
				cfg.Spool.Dir = b.TempDir()
				sink, err := recordings.NewDir(b.TempDir())
				require.NoError(b, err)
				_, key, err := ed25519.GenerateKey(rand.Reader)
				require.NoError(b, err)
				rec, err := recordings.Open(cfg, sink, key, nil, prometheus.NewRegistry())
				require.NoError(b, err)
				b.Cleanup(func() { _ = rec.Close(context.Background()) })
				stages = append(stages, extproc.NewRecording(rec, extproc.RecordingOptions{}))
			}
			h := start(b, extproc.DefaultConfig(), stages...)
			res := []byte(result(1, "1 row"))
			lat := make(chan time.Duration, b.N)
			b.ReportAllocs()
			b.SetParallelism(1)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					t0 := time.Now()
					e := h.open(b, context.Background())
					e.post(toolsCall(1, "query"), "mcp-protocol-version", "2025-06-18", "mcp-session-id", "bench")
					e.passed()
					e.responseHeaders(false, ":status", "200", "content-type", "application/json", "content-length", "60")
					e.recv()
					e.responseBody(res, true)
					e.recv()
					lat <- time.Since(t0)
				}
			})
			close(lat)
			var ds []time.Duration
			for d := range lat {
				ds = append(ds, d)
			}
			slices.Sort(ds)
			b.ReportMetric(float64(ds[len(ds)/2].Microseconds()), "p50_µs")
			b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds()), "p99_µs")
		})
	}
}
