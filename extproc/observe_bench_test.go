package extproc_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// BenchmarkProcessTraced is BenchmarkProcess (one tools/call exchange over real gRPC) with
// tracing off, on but not sampled (the caller's traceparent says not sampled), and on with
// every span recorded and batched to an exporter that discards them. "off" must allocate
// exactly what BenchmarkProcess allocates: no span work happens when tracing is off.
func BenchmarkProcessTraced(b *testing.B) {
	call := toolsCall(1, "query")
	res := []byte(result(1, "1 row: SELECT 1"))
	for _, tc := range []struct {
		name   string
		tp     trace.TracerProvider
		parent string
	}{
		{name: "off"},
		{
			name: "unsampled", tp: sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter())),
			parent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
		},
		{
			name: "sampled", tp: sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter())),
			parent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := startInstrumented(b, tc.tp, nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			kv := []string{"mcp-protocol-version", "2025-06-18", "mcp-session-id", "s1"}
			if tc.parent != "" {
				kv = append(kv, "traceparent", tc.parent)
			}
			b.ReportAllocs()
			for b.Loop() {
				e := h.open(b, ctx)
				e.post(call, kv...)
				e.passed()
				e.responseHeaders(false, ":status", "200", "content-type", "application/json", "content-length", "60")
				e.recv()
				e.responseBody(res, true)
				r := e.recv()
				require.NotNil(b, r.GetResponseBody())
			}
		})
	}
}
