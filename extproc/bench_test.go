package extproc_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/extproc"
)

// BenchmarkProcess is one tools/call exchange as Envoy drives it: request headers, the
// buffered request body, response headers and a buffered JSON result, over real gRPC.
func BenchmarkProcess(b *testing.B) {
	h := start(b, extproc.DefaultConfig())
	call := toolsCall(1, "query")
	res := []byte(result(1, "1 row: SELECT 1"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		e := h.open(b, ctx)
		e.post(call, "mcp-protocol-version", "2025-06-18", "mcp-session-id", "s1")
		e.passed()
		e.responseHeaders(false, ":status", "200", "content-type", "application/json", "content-length", "60")
		e.recv()
		e.responseBody(res, true)
		r := e.recv()
		require.NotNil(b, r.GetResponseBody())
	}
}

// BenchmarkSSE streams a progress notification and a result through, split mid-event.
func BenchmarkSSE(b *testing.B) {
	h := start(b, extproc.DefaultConfig())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, c := []byte(sseEvents[0]+sseEvents[2][:40]), []byte(sseEvents[2][40:]+sseEvents[3])
	b.ReportAllocs()
	for b.Loop() {
		e := h.open(b, ctx)
		e.post(toolsCall(1, "query"), "mcp-protocol-version", "2025-06-18")
		e.passed()
		e.responseHeaders(false, ":status", "200", "content-type", "text/event-stream")
		e.recv()
		e.responseBody(a, false)
		e.recv()
		e.responseBody(c, true)
		e.recv()
	}
}
