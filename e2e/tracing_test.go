package e2e_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/e2e/harness"
	"github.com/mcpguard/mcpguard/e2e/mcpserver"
)

// traceHeader adds a W3C traceparent header to every request, as an instrumented agent's
// HTTP client does.
type traceHeader struct {
	parent string
	next   http.RoundTripper
}

func (h traceHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("traceparent", h.parent)
	return h.next.RoundTrip(r)
}

// TestTracesInJaeger runs calls through the emulator and a tracing mcpguard exporting to a
// real Jaeger, then reads the traces back from Jaeger's query API: the ext_authz span and the
// exchange's span are children of the agent's trace context (the traceparent header, and
// params._meta.traceparent for the MCP exchange), the stages are children of the exchange,
// the attributes name the caller, tool, rule and decision and carry no argument value, and
// the log lines of a call carry its trace_id.
func TestTracesInJaeger(t *testing.T) {
	require.NoError(t, suite.err, "the suite could not start mcpguard")
	bin, err := harness.JaegerBin(suite.root)
	if errors.Is(err, harness.ErrNoJaeger) {
		t.Skip(err.Error())
	}
	require.NoError(t, err)
	j, err := harness.StartJaeger(t.Context(), bin, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 20*time.Second)
		defer cancel()
		if err := j.Stop(ctx); err != nil {
			t.Logf("%v (killed)", err) // a test server: how it ends is not under test
		}
		if t.Failed() {
			t.Logf("jaeger log:\n%s", j.Logs())
		}
	})
	g := extraGuard(t, t.TempDir(), map[string]any{
		"tracing": map[string]any{"enabled": true, "endpoint": j.OTLP, "sampler": map[string]any{"ratio": 1.0, "parent_based": true}},
		"audit":   map[string]any{"enabled": true, "output": "stdout"},
	})
	up, err := mcpserver.Start(mcpserver.Options{Mode: mcpserver.StatefulJSON})
	require.NoError(t, err)
	t.Cleanup(func() { _ = up.Close(context.WithoutCancel(t.Context())) })
	gw := gatewayFor(t, g, up.Addr())
	tok, err := g.Token(t.Context(), harness.TokenOptions{Subject: "agent-trace", Scopes: []string{"mcp:tools"}})
	require.NoError(t, err)

	const (
		headerTrace, headerSpan = "11111111111111111111111111111111", "2222222222222222"
		metaTrace, metaSpan     = "33333333333333333333333333333333", "4444444444444444"
		denyTrace, denySpan     = "55555555555555555555555555555555", "6666666666666666"
	)
	hc := harness.HTTPClient(tok)
	hc.Transport = traceHeader{parent: "00-" + headerTrace + "-" + headerSpan + "-01", next: hc.Transport}
	s, err := harness.Connect(t.Context(), harness.ClientOptions{Endpoint: up.URLVia(gw.Addr()), HTTP: hc, Version: harness.V20250618, DisableStandaloneSSE: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })

	r, err := s.CallTool(t.Context(), &mcp.CallToolParams{
		Name: "echo", Arguments: map[string]any{"text": "secret-argument-value"},
		Meta: mcp.Meta{"traceparent": "00-" + metaTrace + "-" + metaSpan + "-01", "tracestate": "agent=1"},
	})
	require.NoError(t, err)
	require.False(t, r.IsError)
	_, err = s.CallTool(t.Context(), &mcp.CallToolParams{
		Name: "execute_sql", Arguments: map[string]any{"query": "DROP TABLE secret_table"},
		Meta: mcp.Meta{"traceparent": "00-" + denyTrace + "-" + denySpan + "-01"},
	})
	require.ErrorContains(t, err, "was not run")

	// The call whose _meta carries a traceparent: the exchange is the child of the agent's span.
	spans := waitTrace(t, j, metaTrace, "tools/call echo", "mcpguard recording commit")
	x := opNamed(t, spans, "tools/call echo")
	require.Equal(t, metaSpan, x.Parent(), "params._meta.traceparent is the exchange's parent")
	require.Equal(t, "agent-trace", x.Tag("enduser.id"))
	require.Equal(t, "echo", x.Tag("gen_ai.tool.name"))
	require.Equal(t, "allowed", x.Tag("mcpguard.decision"))
	require.Equal(t, "default", x.Tag("mcpguard.policy.rule"))
	require.Equal(t, "server", x.Tag("span.kind"))
	for _, name := range []string{"mcpguard policy", "mcpguard masking", "mcpguard recording", "mcpguard recording commit"} {
		found := false
		for _, sp := range spans {
			if sp.OperationName == name {
				found = true
				require.Equal(t, x.SpanID, sp.Parent(), "%s is a child of the exchange", name)
			}
		}
		require.True(t, found, "no %s span in %v", name, opNames(spans))
	}

	// The denied call: its own trace, the decision and the rule on the exchange.
	spans = waitTrace(t, j, denyTrace, "tools/call execute_sql", "mcpguard policy")
	d := opNamed(t, spans, "tools/call execute_sql")
	require.Equal(t, denySpan, d.Parent())
	require.Equal(t, "denied", d.Tag("mcpguard.decision"))
	require.Equal(t, "sql-destructive", d.Tag("mcpguard.policy.rule"))
	require.Equal(t, "policy", d.Tag("mcpguard.denied_by"))

	// The ext_authz checks and the calls without _meta (initialize, tools/list) follow the header.
	spans = waitTrace(t, j, headerTrace, "ext_authz check", "initialize")
	for _, sp := range spans {
		if sp.OperationName == "ext_authz check" || sp.OperationName == "initialize" {
			require.Equal(t, headerSpan, sp.Parent(), "%s", sp.OperationName)
		}
		if sp.OperationName == "ext_authz check" {
			require.Equal(t, "allowed", sp.Tag("mcpguard.decision"))
			require.Equal(t, "agent-trace", sp.Tag("enduser.id"))
		}
	}

	// No argument value or token in any stored span.
	for _, id := range []string{metaTrace, denyTrace, headerTrace} {
		spans, err := j.Trace(t.Context(), id)
		require.NoError(t, err)
		for _, sp := range spans {
			for _, tag := range sp.Tags {
				v := strings.ToLower(sp.Tag(tag.Key))
				require.NotContains(t, v, "secret", "%s %s", sp.OperationName, tag.Key)
				require.NotContains(t, v, tok[:16], "%s %s", sp.OperationName, tag.Key)
			}
		}
	}

	// Log lines and audit events of the denied call carry its trace id.
	require.Eventually(t, func() bool {
		logs := g.Logs().String()
		return strings.Contains(logs, `"msg":"policy decision"`) && strings.Contains(logs, `"trace_id":"`+denyTrace+`"`) &&
			strings.Contains(logs, `"outcome":"denied"`)
	}, 10*time.Second, 50*time.Millisecond, "log lines with trace_id %s", denyTrace)
	for line := range strings.Lines(g.Logs().String()) {
		if strings.Contains(line, `"msg":"policy decision"`) && strings.Contains(line, "sql-destructive") {
			require.Contains(t, line, `"trace_id":"`+denyTrace+`"`)
			require.Contains(t, line, `"span_id":"`+d.SpanID+`"`)
		}
		if strings.Contains(line, `"outcome":"denied"`) && strings.Contains(line, "execute_sql") {
			require.Contains(t, line, `"trace_id":"`+denyTrace+`"`)
		}
	}
}

// waitTrace polls Jaeger until the trace has spans with every name in want (the exporter
// sends in batches).
func waitTrace(t *testing.T, j *harness.Jaeger, traceID string, want ...string) []harness.JaegerSpan {
	t.Helper()
	var spans []harness.JaegerSpan
	require.Eventually(t, func() bool {
		var err error
		spans, err = j.Trace(t.Context(), traceID)
		require.NoError(t, err)
		names := opNames(spans)
		for _, w := range want {
			if !strings.Contains(names, "|"+w+"|") {
				return false
			}
		}
		return true
	}, 30*time.Second, 200*time.Millisecond, "trace %s never had %v", traceID, want)
	return spans
}

func opNames(spans []harness.JaegerSpan) string {
	var b strings.Builder
	b.WriteString("|")
	for _, s := range spans {
		b.WriteString(s.OperationName + "|")
	}
	return b.String()
}

func opNamed(t *testing.T, spans []harness.JaegerSpan, name string) harness.JaegerSpan {
	t.Helper()
	var out []harness.JaegerSpan
	for _, s := range spans {
		if s.OperationName == name {
			out = append(out, s)
		}
	}
	require.Len(t, out, 1, "spans named %q in %s", name, opNames(spans))
	return out[0]
}
