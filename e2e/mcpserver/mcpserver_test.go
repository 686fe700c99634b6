package mcpserver_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/e2e/harness"
	"github.com/mcpguard/mcpguard/e2e/mcpserver"
)

func start(t *testing.T, m mcpserver.Mode) *mcpserver.Server {
	t.Helper()
	s, err := mcpserver.Start(mcpserver.Options{Mode: m})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 5*time.Second)
		defer cancel()
		require.NoError(t, s.Close(ctx))
	})
	return s
}

func textOf(t *testing.T, r *mcp.CallToolResult) string {
	t.Helper()
	if r.IsError && len(r.Content) > 0 {
		if tc, ok := r.Content[0].(*mcp.TextContent); ok {
			t.Fatalf("tool error: %s", tc.Text)
		}
	}
	require.False(t, r.IsError)
	require.Len(t, r.Content, 1)
	tc, ok := r.Content[0].(*mcp.TextContent)
	require.True(t, ok, "content is %T", r.Content[0])
	return tc.Text
}

func TestModeValidate(t *testing.T) {
	for _, m := range []mcpserver.Mode{mcpserver.Stateful, mcpserver.StatefulJSON, mcpserver.Stateless, mcpserver.StatelessJSON, mcpserver.SSE} {
		require.NoError(t, m.Validate(), m)
	}
	require.Error(t, mcpserver.Mode("websocket").Validate())
	_, err := mcpserver.Start(mcpserver.Options{Mode: ""})
	require.Error(t, err)
}

func TestBigText(t *testing.T) {
	for _, n := range []int{0, 1, 63, 64, 1 << 20} {
		s := mcpserver.BigText(n)
		require.Len(t, s, n)
		require.Equal(t, s, mcpserver.BigText(n), "deterministic")
	}
	require.True(t, strings.HasPrefix(mcpserver.BigText(200), "line 000000000 "))
	require.Contains(t, mcpserver.BigText(200), "line 000000001 ")
}

// TestDirect drives every tool over every transport without a gateway: the baseline the
// end-to-end suite compares the gateway path against.
func TestDirect(t *testing.T) {
	cases := []struct {
		name    string
		mode    mcpserver.Mode
		version string
		ask     bool // server→client requests exist only with sessions
	}{
		{"2025-06-18 sse", mcpserver.Stateful, harness.V20250618, true},
		{"2025-11-25 json", mcpserver.StatefulJSON, harness.V20251125, true},
		{"2026-07-28 stateless sse", mcpserver.Stateless, harness.V20260728, false},
		{"2026-07-28 stateless json", mcpserver.StatelessJSON, harness.V20260728, false},
		{"2024-11-05 http+sse", mcpserver.SSE, harness.V20241105, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := start(t, tc.mode)
			progress := make(chan float64, 16)
			s, err := harness.Connect(t.Context(), harness.ClientOptions{
				Endpoint: srv.URL(), Version: tc.version,
				Client: &mcp.ClientOptions{
					ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
						progress <- r.Params.Progress
					},
					CreateMessageHandler: func(_ context.Context, r *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
						return &mcp.CreateMessageResult{Model: "m", Role: "assistant", Content: &mcp.TextContent{Text: "forty-two"}}, nil
					},
					ElicitationHandler: func(_ context.Context, r *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
						return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"answer": "yes"}}, nil
					},
				},
			})
			require.NoError(t, err)
			defer s.Close()

			tools, err := s.ListTools(t.Context(), nil)
			require.NoError(t, err)
			var names []string
			for _, tl := range tools.Tools {
				names = append(names, tl.Name)
			}
			require.ElementsMatch(t, []string{"echo", "slow", "big", "ask", "execute_sql"}, names)

			r, err := s.CallTool(t.Context(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "héllo"}})
			require.NoError(t, err)
			require.Equal(t, "héllo", textOf(t, r))

			r, err = s.CallTool(t.Context(), &mcp.CallToolParams{Name: "big", Arguments: map[string]any{"mb": 1}})
			require.NoError(t, err)
			require.Equal(t, mcpserver.BigText(1<<20), textOf(t, r))

			r, err = s.CallTool(t.Context(), &mcp.CallToolParams{Name: "execute_sql", Arguments: map[string]any{"query": "select 1"}})
			require.NoError(t, err)
			require.Equal(t, []any{"id", "email"}, r.StructuredContent.(map[string]any)["columns"])

			r, err = s.CallTool(t.Context(), &mcp.CallToolParams{Name: "big", Arguments: map[string]any{"mb": 1000}})
			if err == nil {
				require.True(t, r.IsError, "oversized big must be refused")
			}

			if tc.ask {
				r, err = s.CallTool(t.Context(), &mcp.CallToolParams{Name: "ask", Arguments: map[string]any{"question": "q?"}})
				require.NoError(t, err)
				require.Equal(t, "sampled=forty-two elicited=accept:yes", textOf(t, r))
			}

			// The slow tool holds after its first notification until released. JSON
			// responses on 2026-07-28 have no stream to carry progress, so there the gate
			// is released blind and only the result is checked.
			gate := "g-" + strings.ReplaceAll(tc.name, " ", "-")
			params := &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{"steps": 3, "gate": gate}}
			if tc.mode != mcpserver.StatelessJSON {
				params.SetProgressToken("p1")
			}
			done := make(chan error, 1)
			var res *mcp.CallToolResult
			go func() {
				var err error
				res, err = s.CallTool(t.Context(), params)
				done <- err
			}()
			if tc.mode != mcpserver.StatelessJSON {
				select {
				case p := <-progress:
					require.InDelta(t, 1.0, p, 1e-9)
				case err := <-done:
					t.Fatalf("slow returned before the gate opened: %v", err)
				case <-time.After(30 * time.Second):
					t.Fatal("no progress while the tool runs")
				}
				select {
				case err := <-done:
					t.Fatalf("slow returned before the gate opened: %v", err)
				default:
				}
			}
			srv.Release(gate)
			require.NoError(t, <-done)
			require.Equal(t, "done 3", textOf(t, res))
		})
	}
}

// BenchmarkEcho is one echo tools/call from an SDK client straight to the server: the
// baseline that mcpload's gateway numbers are compared against.
func BenchmarkEcho(b *testing.B) {
	s, err := mcpserver.Start(mcpserver.Options{Mode: mcpserver.StatefulJSON})
	require.NoError(b, err)
	defer func() { require.NoError(b, s.Close(context.WithoutCancel(b.Context()))) }()
	cs, err := harness.Connect(b.Context(), harness.ClientOptions{Endpoint: s.URL(), Version: harness.V20251125, DisableStandaloneSSE: true})
	require.NoError(b, err)
	defer cs.Close()
	p := &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "ping"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cs.CallTool(b.Context(), p); err != nil {
			b.Fatal(err)
		}
	}
}
