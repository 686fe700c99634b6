package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/e2e/harness"
	"github.com/mcpguard/mcpguard/e2e/mcpserver"
)

const mismatchTotal = "mcpguard_extproc_session_identity_mismatch_total"

// metricValue reads an unlabelled metric from g's admin port (0 when it is absent).
func metricValue(t *testing.T, g *harness.Guard, name string) float64 {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+g.Admin+"/metrics", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f
		}
	}
	require.NoError(t, sc.Err())
	return 0
}

// refusedAsUnknown asserts the answer mcpguard gives a request on someone else's session:
// 404 with a JSON-RPC error, as for a session that does not exist.
func refusedAsUnknown(t *testing.T, resp *http.Response) {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "body %s", body)
	var rpc struct {
		JSONRPC string `json:"jsonrpc"`
		Error   struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(body, &rpc), "body %s", body)
	require.Equal(t, "2.0", rpc.JSONRPC)
	require.Equal(t, -31004, rpc.Error.Code)
}

// TestSessionHijackRefused: agent-b knows agent-a's Mcp-Session-Id; tools/call, the GET
// stream and DELETE on it are refused as an unknown session and counted, and agent-a's
// session goes on untouched.
func TestSessionHijackRefused(t *testing.T) {
	g, a, b := policyGuard(t)
	up, err := mcpserver.Start(mcpserver.Options{Mode: mcpserver.Stateful})
	require.NoError(t, err)
	t.Cleanup(func() { _ = up.Close(context.WithoutCancel(t.Context())) })
	gw := gatewayFor(t, g, up.Addr())
	url := up.URLVia(gw.Addr())

	s := connect(t, url, a, harness.V20250618, nil)
	sid := s.ID()
	require.NotEmpty(t, sid)
	before := metricValue(t, g, mismatchTotal)

	hc := harness.HTTPClient(b)
	cases := []struct {
		name, method, body string
	}{
		{"tools/call", http.MethodPost, `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`},
		{"get stream", http.MethodGet, ""},
		{"delete", http.MethodDelete, ""},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), c.method, url, strings.NewReader(c.body))
			require.NoError(t, err)
			req.Header.Set("Mcp-Session-Id", sid)
			req.Header.Set("Mcp-Protocol-Version", harness.V20250618)
			req.Header.Set("Accept", "application/json, text/event-stream")
			if c.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := hc.Do(req)
			require.NoError(t, err)
			refusedAsUnknown(t, resp)
			require.InDelta(t, before+float64(i+1), metricValue(t, g, mismatchTotal), 0, "every refusal is counted")
		})
	}
	require.Equal(t, "still mine", text(t, call(t, s, "echo", map[string]any{"text": "still mine"})),
		"the owner's session survives the attempts")
}

// TestLegacySessionHijackRefused: on the 2024-11-05 transport the POST endpoint announced
// on agent-a's GET stream is refused to agent-b and open to agent-a.
func TestLegacySessionHijackRefused(t *testing.T) {
	g, a, b := policyGuard(t)
	up, err := mcpserver.Start(mcpserver.Options{Mode: mcpserver.SSE})
	require.NoError(t, err)
	t.Cleanup(func() { _ = up.Close(context.WithoutCancel(t.Context())) })
	gw := gatewayFor(t, g, up.Addr())

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, up.URLVia(gw.Addr()), nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	stream, err := harness.HTTPClient(a).Do(req)
	require.NoError(t, err)
	defer stream.Body.Close()
	require.Equal(t, http.StatusOK, stream.StatusCode)
	var endpoint string
	sc := bufio.NewScanner(stream.Body)
	for endpoint == "" && sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			endpoint = v
		}
	}
	require.Contains(t, endpoint, "sessionid=", "the endpoint event names the session")
	before := metricValue(t, g, mismatchTotal)

	post := func(token string) *http.Response {
		init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`
		r, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+gw.Addr()+endpoint, strings.NewReader(init))
		require.NoError(t, err)
		r.Header.Set("Content-Type", "application/json")
		resp, err := harness.HTTPClient(token).Do(r)
		require.NoError(t, err)
		return resp
	}
	refusedAsUnknown(t, post(b))
	require.InDelta(t, before+1, metricValue(t, g, mismatchTotal), 0)
	resp := post(a)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "the stream's owner posts to its session")
}

// TestLegacyToolsListFiltered: tools/list on the 2024-11-05 transport is filtered per
// identity, as on Streamable HTTP (the answer arrives on the GET stream, not the POST).
func TestLegacyToolsListFiltered(t *testing.T) {
	g, analyst, other := policyGuard(t)
	up, err := mcpserver.Start(mcpserver.Options{Mode: mcpserver.SSE})
	require.NoError(t, err)
	t.Cleanup(func() { _ = up.Close(context.WithoutCancel(t.Context())) })
	gw := gatewayFor(t, g, up.Addr())
	url := up.URLVia(gw.Addr())

	require.Contains(t, toolNames(t, connect(t, url, analyst, harness.V20241105, nil)), "execute_sql")
	names := toolNames(t, connect(t, url, other, harness.V20241105, nil))
	require.NotContains(t, names, "execute_sql", "a tool the identity may not call is not listed")
	require.Contains(t, names, "echo")
}
