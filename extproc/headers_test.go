package extproc_test

import (
	"strconv"
	"strings"
	"testing"

	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/extproc"
)

const ghToken = "ghp_R7kq2LmZx9PwT4vB8nYc3HdF6sJ1aQ0eUiOg"

// TestMaskingResponseHeaders: a secret in an upstream response header is masked before the
// client sees it; a name with several fields is replaced as a whole, in order; protocol
// headers and clean values are left alone.
func TestMaskingResponseHeaders(t *testing.T) {
	st, _, reg := newMasking(t)
	var notes []extproc.Note
	h := start(t, extproc.DefaultConfig(), st, noted(&notes))
	e := h.open(t, t.Context())
	e.post(toolsCall(1, "query"), "mcp-protocol-version", "2025-06-18")
	e.passed()
	e.responseHeaders(false, ":status", "200", "content-type", "application/json", "content-length", "10",
		"x-debug-token", ghToken,
		"x-trace", "card "+card, "x-trace", "plain",
		"mcp-session-id", "4111111111111111", "server", "demo")
	r := e.recv().GetResponseHeaders().GetResponse()
	m := r.GetHeaderMutation()
	got, ok := setHeader(t, m, "x-debug-token")
	require.True(t, ok, "the debug header is rewritten")
	require.NotContains(t, got, ghToken)
	require.Contains(t, got, "[REDACTED:")
	require.Contains(t, m.GetRemoveHeaders(), "x-trace", "a repeated header is replaced whole")
	var trace []string
	for _, o := range m.GetSetHeaders() {
		if o.GetHeader().GetKey() == "x-trace" {
			require.True(t, o.GetAppend().GetValue(), "each field of a repeated header is appended again")
			trace = append(trace, string(o.GetHeader().GetRawValue()))
		}
	}
	require.Equal(t, []string{"card [REDACTED:CREDIT_CARD]", "plain"}, trace)
	for _, k := range []string{"mcp-session-id", "server", "content-type"} {
		_, ok := setHeader(t, m, k)
		require.False(t, ok, "%s is not rewritten", k)
		require.NotContains(t, m.GetRemoveHeaders(), k)
	}
	require.Positive(t, metric(t, reg, "mcpguard_masking_findings_total", "type", "CREDIT_CARD"))
	e.responseBody([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`), true)
	e.recv()
}

// TestMaskingEventsWithoutMessage: a priming event's id: and a comment carry no message but
// still reach the client; what they hold is masked and the framing kept.
func TestMaskingEventsWithoutMessage(t *testing.T) {
	st, _, _ := newMasking(t)
	h := start(t, extproc.DefaultConfig(), st)
	e := openSSE(t, h)
	in := "id: " + ghToken + "\nretry: 500\n\n" + ": debug " + awsKey + "\n\n"
	e.responseBody([]byte(in), false)
	out := string(emitted(t, e.recv(), []byte(in)))
	require.NotContains(t, out, ghToken)
	require.NotContains(t, out, awsKey)
	require.Equal(t, 2, strings.Count(out, "\n\n"), "event framing kept")
	require.Contains(t, out, "retry: 500\n")
}

// TestStreamedOverrideDropsContentLength: a JSON body over the buffer limit is switched to
// STREAMED by mode_override and may change length; Envoy keeps the upstream's
// content-length after an override, so the header answer must remove it.
func TestStreamedOverrideDropsContentLength(t *testing.T) {
	st, _, _ := newMasking(t)
	cfg := extproc.DefaultConfig()
	body := toolResult(1, "card "+card+strings.Repeat(" filler", cfg.BufferResponseBytes/7+1))
	h := start(t, cfg, st)
	e := h.open(t, t.Context())
	e.post(toolsCall(1, "query"), "mcp-protocol-version", "2025-06-18")
	e.passed()
	e.responseHeaders(false, ":status", "200", "content-type", "application/json", "content-length", strconv.Itoa(len(body)))
	r := e.recv()
	require.Equal(t, filterv3.ProcessingMode_STREAMED, r.GetModeOverride().GetResponseBodyMode())
	require.Contains(t, r.GetResponseHeaders().GetResponse().GetHeaderMutation().GetRemoveHeaders(), "content-length")
}
