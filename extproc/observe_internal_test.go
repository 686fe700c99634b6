package extproc

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"

	"github.com/mcpguard/mcpguard/mcp"
)

// FuzzParentOf feeds the trace context parser what a client controls: params._meta and the
// traceparent/tracestate headers. It must never panic, and a parent it accepts is a valid
// W3C context whose ids appear, in lower case, in what was sent.
func FuzzParentOf(f *testing.F) {
	f.Add(`{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","tracestate":"a=b"}`, "", "")
	f.Add(`{"traceparent":1}`, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "x=y")
	f.Add(`{"traceparent":"00-00000000000000000000000000000000-00f067aa0ba902b7-01"}`, "", "")
	f.Add(`{"traceparent":"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`, "garbage", "")
	f.Add(`[]`, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01,00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "")
	f.Fuzz(func(t *testing.T, meta, parent, state string) {
		body := &mcp.Body{Messages: []mcp.Message{{Kind: mcp.KindRequest, Method: "tools/call", Meta: []byte(meta)}}}
		sc := parentOf(Headers{"traceparent": parent, "tracestate": state}, body)
		if !sc.IsValid() {
			return
		}
		in := strings.ToLower(meta + parent)
		if !strings.Contains(in, sc.TraceID().String()) || !strings.Contains(in, sc.SpanID().String()) {
			t.Fatalf("parent %s/%s not taken from the input", sc.TraceID(), sc.SpanID())
		}
		if !sc.IsRemote() {
			t.Fatal("a caller's context must be remote")
		}
	})
}

// _meta member names are exact: MCP's "traceparent", not another casing of it. (A name
// given twice never reaches metaParent: mcp.Parse refuses the message.)
func TestMetaParentExactNames(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tc := propagation.TraceContext{}
	require.True(t, metaParent(tc, []byte(`{"traceparent":"`+tp+`"}`)).IsValid())
	for _, meta := range []string{
		`{"TraceParent":"` + tp + `"}`,
		`{"TRACEPARENT":"` + tp + `"}`,
	} {
		require.False(t, metaParent(tc, []byte(meta)).IsValid(), meta)
	}
}
