package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/e2e/harness"
	"github.com/mcpguard/mcpguard/e2e/mcpserver"
)

// wait bounds every wait of the suite: generous, only there to turn a hang into a failure.
const wait = 60 * time.Second

// clientOpts answers the server's sampling and elicitation requests and forwards progress.
func clientOpts(progress chan<- float64) *mcp.ClientOptions {
	return &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			select {
			case progress <- r.Params.Progress:
			default:
			}
		},
		CreateMessageHandler: func(_ context.Context, _ *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Model: "m", Role: "assistant", Content: &mcp.TextContent{Text: "forty-two"}}, nil
		},
		ElicitationHandler: func(_ context.Context, _ *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"answer": "yes"}}, nil
		},
	}
}

func connect(t *testing.T, url, token, version string, progress chan<- float64) *mcp.ClientSession {
	t.Helper()
	s, err := harness.Connect(t.Context(), harness.ClientOptions{Endpoint: url, Token: token, Version: version, Client: clientOpts(progress)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func call(t *testing.T, s *mcp.ClientSession, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	r, err := s.CallTool(t.Context(), &mcp.CallToolParams{Name: name, Arguments: args})
	require.NoError(t, err, "tools/call %s", name)
	return r
}

func text(t *testing.T, r *mcp.CallToolResult) string {
	t.Helper()
	require.Len(t, r.Content, 1)
	tc, ok := r.Content[0].(*mcp.TextContent)
	require.True(t, ok, "content is %T", r.Content[0])
	require.False(t, r.IsError, "tool error: %s", tc.Text)
	return tc.Text
}

func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// TestAllowedTraffic shows that permitted traffic crosses the gateway unchanged on every
// revision and transport: the same calls give byte-identical results through the gateway
// and directly, progress arrives while the tool still runs, and server→client requests and
// the client's answers pass.
func TestAllowedTraffic(t *testing.T) {
	cases := []struct {
		name     string
		mode     mcpserver.Mode
		version  string
		sessions bool // session id, GET stream, DELETE, server→client requests
		progress bool // a stream exists to carry progress
	}{
		{"2025-06-18 sse responses", mcpserver.Stateful, harness.V20250618, true, true},
		{"2025-06-18 json responses", mcpserver.StatefulJSON, harness.V20250618, true, true},
		{"2025-11-25 sse responses", mcpserver.Stateful, harness.V20251125, true, true},
		{"2025-11-25 json responses", mcpserver.StatefulJSON, harness.V20251125, true, true},
		{"2026-07-28 stateless sse", mcpserver.Stateless, harness.V20260728, false, true},
		{"2026-07-28 stateless json", mcpserver.StatelessJSON, harness.V20260728, false, false},
		{"2024-11-05 http+sse", mcpserver.SSE, harness.V20241105, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := newStack(t, tc.mode)
			progress := make(chan float64, 16)
			s := connect(t, st.url(), suite.token, tc.version, progress)
			direct := connect(t, st.up.URL(), "", tc.version, nil)

			if ir := s.InitializeResult(); ir != nil && tc.version != harness.V20260728 {
				require.Equal(t, tc.version, ir.ProtocolVersion, "negotiated revision")
			}
			if tc.sessions && tc.mode != mcpserver.SSE {
				require.NotEmpty(t, s.ID(), "Mcp-Session-Id must reach the client")
			}

			tools, err := s.ListTools(t.Context(), nil)
			require.NoError(t, err)
			dtools, err := direct.ListTools(t.Context(), nil)
			require.NoError(t, err)
			require.Equal(t, asJSON(t, dtools), asJSON(t, tools), "tools/list")

			// Results pass unchanged except for what the embedded default masking
			// redacts: execute_sql's rows carry e-mail addresses, in the text block and
			// in structuredContent alike.
			masked := strings.NewReplacer("ada@example.com", "[REDACTED:EMAIL]", "grace@example.com", "[REDACTED:EMAIL]")
			for _, c := range []struct {
				tool string
				args map[string]any
			}{
				{"echo", map[string]any{"text": "héllo \"world\" \u2028 <b>"}},
				{"execute_sql", map[string]any{"query": "select id, email from users"}},
				{"big", map[string]any{"mb": 2}},
			} {
				want := masked.Replace(asJSON(t, call(t, direct, c.tool, c.args)))
				require.Equal(t, want, asJSON(t, call(t, s, c.tool, c.args)), "tools/call %s", c.tool)
			}

			if tc.sessions {
				r := call(t, s, "ask", map[string]any{"question": "meaning?"})
				require.Equal(t, "sampled=forty-two elicited=accept:yes", text(t, r))
			}

			// slow stops after its first progress notification until the test releases it:
			// the notification must reach the client while the tool is still running.
			gate := "gate-" + strings.ReplaceAll(tc.name, " ", "-")
			params := &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{"steps": 3, "gate": gate}}
			if tc.progress {
				params.SetProgressToken("tok-1")
			}
			type out struct {
				r   *mcp.CallToolResult
				err error
			}
			done := make(chan out, 1)
			go func() {
				r, err := s.CallTool(t.Context(), params)
				done <- out{r, err}
			}()
			if tc.progress {
				select {
				case p := <-progress:
					require.InDelta(t, 1.0, p, 1e-9, "first progress")
				case o := <-done:
					t.Fatalf("slow finished before it was released (err %v): progress was not streamed", o.err)
				case <-time.After(wait):
					t.Fatal("no progress notification while the tool runs")
				}
			}
			st.up.Release(gate)
			var o out
			select {
			case o = <-done:
			case <-time.After(wait):
				t.Fatal("slow did not finish after release")
			}
			require.NoError(t, o.err)
			require.Equal(t, "done 3", text(t, o.r))

			if tc.sessions && tc.mode != mcpserver.SSE {
				require.Eventually(t, func() bool {
					for _, g := range st.trace.find(http.MethodGet) {
						if g.status == "200" {
							return true
						}
					}
					return false
				}, wait, 10*time.Millisecond, "the standalone GET stream must pass the gateway")
				require.NoError(t, s.Close())
				require.Eventually(t, func() bool { return len(st.trace.find(http.MethodDelete)) > 0 }, wait, 10*time.Millisecond)
				d := st.trace.find(http.MethodDelete)[0]
				require.Zero(t, d.immediate, "DELETE refused by mcpguard")
				require.Zero(t, d.local, "DELETE refused by the gateway")
				require.Regexp(t, `^2\d\d$`, d.status, "DELETE status")
			}
			require.Zero(t, st.trace.immediates(), "mcpguard refused allowed traffic")
		})
	}
}

// TestBigResult sends a 20 MiB tool result through the gateway as JSON and as one SSE event.
func TestBigResult(t *testing.T) {
	const mb = 20
	want := mcpserver.BigText(mb << 20)
	for _, tc := range []struct {
		name    string
		mode    mcpserver.Mode
		version string
	}{
		{"json", mcpserver.StatefulJSON, harness.V20251125},
		{"sse", mcpserver.Stateful, harness.V20251125},
		{"stateless sse", mcpserver.Stateless, harness.V20260728},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStack(t, tc.mode)
			s := connect(t, st.url(), suite.token, tc.version, nil)
			got := text(t, call(t, s, "big", map[string]any{"mb": mb}))
			require.Len(t, got, len(want))
			require.True(t, got == want, "20 MiB result altered in transit") //nolint:testifylint // a 20 MiB diff is no help
		})
	}
}

// TestUnauthenticated: requests without a valid token for this resource never reach
// mcpguard's ext_proc or the upstream and get a 401 that points to the PRM document.
func TestUnauthenticated(t *testing.T) {
	st := newStack(t, mcpserver.Stateful)
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	for _, tc := range []struct{ name, token string }{
		{"missing", ""},
		{"garbage", "not-a-jwt"},
		{"tampered", suite.token[:len(suite.token)-4] + "AAAA"},
		{"wrong audience", suite.wrongAud},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, h, _ := post(t, st.url(), tc.token, map[string]string{"MCP-Protocol-Version": harness.V20251125}, body)
			require.Equal(t, http.StatusUnauthorized, code)
			www := h.Get("WWW-Authenticate")
			require.True(t, strings.HasPrefix(www, "Bearer "), "WWW-Authenticate %q", www)
			require.Contains(t, www, `resource_metadata="http://localhost:8080/.well-known/oauth-protected-resource/mcp"`)
		})
	}
	require.Empty(t, st.trace.find(http.MethodPost), "a denied request reached ext_proc")
}

// TestPRMWithoutToken: the protected resource metadata is public, through the gateway.
func TestPRMWithoutToken(t *testing.T) {
	st := newStack(t, mcpserver.Stateful)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+st.gw.Addr()+"/.well-known/oauth-protected-resource/mcp", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var prm struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		ScopesSupported      []string `json:"scopes_supported"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&prm))
	require.Equal(t, harness.Audience, prm.Resource)
	require.NotEmpty(t, prm.AuthorizationServers)
	require.Contains(t, prm.ScopesSupported, "mcp:tools")
}

// TestBatchRefused: JSON-RPC batches were removed in 2025-06-18; the gateway refuses one
// itself (the go-sdk upstream would process it) with a JSON-RPC error.
func TestBatchRefused(t *testing.T) {
	st := newStack(t, mcpserver.Stateful)
	s := connect(t, st.url(), suite.token, harness.V20250618, nil)
	hdr := map[string]string{"MCP-Protocol-Version": harness.V20250618, "Mcp-Session-Id": s.ID()}
	for _, tc := range []struct{ name, body string }{
		{"two requests", `[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}]`},
		{"one request", `[{"jsonrpc":"2.0","id":3,"method":"tools/list"}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := st.trace.immediates()
			code, h, body := post(t, st.url(), suite.token, hdr, tc.body)
			require.Equal(t, http.StatusBadRequest, code, "body %s", body)
			require.Contains(t, h.Get("Content-Type"), "application/json")
			var e rpcError
			require.NoError(t, json.Unmarshal(body, &e), "body %s", body)
			require.Equal(t, "2.0", e.JSONRPC)
			require.NotNil(t, e.Error, "body %s", body)
			require.Equal(t, -32600, e.Error.Code)
			require.Equal(t, before+1, st.trace.immediates(), "refused by mcpguard, not the upstream")
		})
	}
	// The session survives: the next ordinary call passes.
	require.Equal(t, "still here", text(t, call(t, s, "echo", map[string]any{"text": "still here"})))
}

// TestHeaderBodyMatch: on 2026-07-28 the Mcp-Method and Mcp-Name headers must mirror the body;
// the gateway enforces it itself with 400 and -32020.
func TestHeaderBodyMatch(t *testing.T) {
	st := newStack(t, mcpserver.Stateless)
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},"_meta":{` +
		`"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"},` +
		`"io.modelcontextprotocol/clientCapabilities":{}}}}`
	for _, tc := range []struct {
		name   string
		method string
		tool   string // "" omits Mcp-Name
		want   int
	}{
		{"matching", "tools/call", "echo", http.StatusOK},
		{"wrong name", "tools/call", "execute_sql", http.StatusBadRequest},
		{"missing name", "tools/call", "", http.StatusBadRequest},
		{"wrong method", "tools/list", "echo", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"MCP-Protocol-Version": harness.V20260728, "Mcp-Method": tc.method}
			if tc.tool != "" {
				hdr["Mcp-Name"] = tc.tool
			}
			before := st.trace.immediates()
			code, _, raw := post(t, st.url(), suite.token, hdr, body)
			require.Equal(t, tc.want, code, "body %s", raw)
			if tc.want == http.StatusOK {
				require.Contains(t, string(raw), `"text":"hi"`)
				require.Equal(t, before, st.trace.immediates())
				return
			}
			var e rpcError
			require.NoError(t, json.Unmarshal(raw, &e), "body %s", raw)
			require.NotNil(t, e.Error, "body %s", raw)
			require.Equal(t, -32020, e.Error.Code)
			require.JSONEq(t, `7`, string(e.ID))
			require.Equal(t, before+1, st.trace.immediates(), "refused by mcpguard, not the upstream")
		})
	}
}

// sseEvent is one parsed server-sent event.
type sseEvent struct{ id, data string }

// readEvents yields events from r until fn returns false or the stream ends.
func readEvents(r io.Reader, fn func(sseEvent) bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 64<<20)
	var ev sseEvent
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			ev.data = strings.Join(data, "\n")
			if (ev.id != "" || ev.data != "") && !fn(ev) {
				return nil
			}
			ev, data = sseEvent{}, nil
		case strings.HasPrefix(line, "id:"):
			ev.id = strings.TrimSpace(strings.TrimPrefix(line, "id:"))
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read sse: %w", err)
	}
	return io.ErrUnexpectedEOF
}

// TestResumption: a client whose SSE response broke after the first progress event
// reconnects with GET + Last-Event-ID through the gateway and receives the rest of that
// stream (later progress and the result), as 2025-11-25 resumability prescribes.
func TestResumption(t *testing.T) {
	st := newStack(t, mcpserver.Stateful)
	s := connect(t, st.url(), suite.token, harness.V20251125, nil)
	hc := harness.HTTPClient(suite.token)
	hdr := func(r *http.Request) {
		r.Header.Set("MCP-Protocol-Version", harness.V20251125)
		r.Header.Set("Mcp-Session-Id", s.ID())
	}

	body := `{"jsonrpc":"2.0","id":"r1","method":"tools/call","params":{"name":"slow","arguments":{"steps":3,"gate":"resume"},"_meta":{"progressToken":"p"}}}`
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, st.url(), strings.NewReader(body))
	require.NoError(t, err)
	hdr(req)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := hc.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "text/event-stream")
	var last string
	err = readEvents(resp.Body, func(ev sseEvent) bool {
		if strings.Contains(ev.data, "notifications/progress") {
			last = ev.id
			return false
		}
		return true
	})
	require.NoError(t, err)
	require.NotEmpty(t, last, "progress event without an id: the stream is not resumable")
	resp.Body.Close() // the connection breaks; the tool keeps running

	st.up.Release("resume")
	get, err := http.NewRequestWithContext(t.Context(), http.MethodGet, st.url(), nil)
	require.NoError(t, err)
	hdr(get)
	get.Header.Set("Accept", "text/event-stream")
	get.Header.Set("Last-Event-ID", last)
	resp, err = hc.Do(get)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var progress []string
	var result string
	err = readEvents(resp.Body, func(ev sseEvent) bool {
		if strings.Contains(ev.data, "notifications/progress") {
			progress = append(progress, ev.data)
			return true
		}
		if strings.Contains(ev.data, `"id":"r1"`) {
			result = ev.data
			return false
		}
		return true
	})
	require.NoError(t, err)
	require.Len(t, progress, 2, "replayed progress after the first")
	require.Contains(t, progress[0], `"progress":2`)
	require.Contains(t, result, "done 3")
}
