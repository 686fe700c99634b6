package extproc_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"slices"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/extproc"
	"github.com/mcpguard/mcpguard/masking"
	"github.com/mcpguard/mcpguard/mcp"
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

// BenchmarkRecordArguments is the recording stage's work for one tools/call request (the
// request, its forward event, into the recorder's memory; no fsync) with arguments recorded
// as forwarded (raw), masked (mask), or masked with the original sealed to one age
// recipient (mask+seal), for arguments with nothing to mask (clean) and with a password
// (secret). Compare with: benchstat -col /args.
func BenchmarkRecordArguments(b *testing.B) {
	m, err := masking.New(masking.DefaultConfig())
	require.NoError(b, err)
	id, err := age.GenerateX25519Identity()
	require.NoError(b, err)
	sealer, err := recordings.NewSealer([]string{id.Recipient().String()})
	require.NoError(b, err)
	payloads := []struct{ name, body string }{
		{"clean", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"execute_sql","arguments":{"query":"SELECT id, name, created_at FROM orders WHERE customer_id = 42 ORDER BY created_at DESC LIMIT 20"}}}`},
		{"secret", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"login","arguments":{"user":"ops","password":"Tr0ub4dor&3-horse","dsn":"postgres://app:s3cr3tPassw0rd@db.internal:5432/app"}}}`},
	}
	modes := []struct {
		name string
		o    extproc.RecordingOptions
	}{
		{"raw", extproc.RecordingOptions{}},
		{"mask", extproc.RecordingOptions{Mask: m}},
		{"mask+seal", extproc.RecordingOptions{Mask: m, Seal: sealer}},
	}
	log := slog.New(slog.DiscardHandler)
	for _, p := range payloads {
		body, err := mcp.Parse([]byte(p.body))
		require.NoError(b, err)
		for _, mode := range modes {
			b.Run("payload="+p.name+"/args="+mode.name, func(b *testing.B) {
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
				s := extproc.NewRecording(rec, mode.o)
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					x := &extproc.Exchange{
						RequestID: "req-1", SessionID: "bench", Method: "POST", Path: "/mcp",
						Body: body, Log: log, Received: time.Now(),
					}
					if _, err := s.OnRequest(ctx, x); err != nil {
						b.Fatal(err)
					}
					s.Ended(x)
				}
			})
		}
	}
}
