package e2e_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/e2e/harness"
	"github.com/mcpguard/mcpguard/e2e/mcpserver"
)

const (
	leakCard = "4111 1111 1111 1111"
	leakAWS  = "AKIAZ3MHQX7RBN2KLD4P"
)

// leakyUpstream is an MCP server whose report tool returns a card number and an AWS key in
// its text block and again in structuredContent, and logs an email to the client first.
func leakyUpstream(t *testing.T, jsonResponses bool) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(mcpserver.Path, leakyHandler(jsonResponses))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// leakyHandler is leakyUpstream's MCP handler, for servers that wrap it.
func leakyHandler(jsonResponses bool) http.Handler {
	s := mcp.NewServer(&mcp.Implementation{Name: "leaky", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "report", Description: "Return the billing report."},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			if !jsonResponses {
				// A progress notification on the response stream, carrying an email.
				_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
					ProgressToken: req.Params.GetProgressToken(), Progress: 1, Total: 2, Message: "mailing ann@example.com",
				})
			}
			text := "paid with card " + leakCard + "; deploy key " + leakAWS
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}},
				map[string]any{"card": leakCard, "aws_key": leakAWS, "note": text}, nil
		})
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{
		JSONResponse: jsonResponses, DisableLocalhostProtection: true,
	})
}

// TestMaskingThroughGateway: a tool result with a card number and an AWS key arrives
// masked in both the text block and structuredContent, for JSON and SSE responses; a
// progress message is masked on the SSE stream; the values never reach mcpguard's log.
func TestMaskingThroughGateway(t *testing.T) {
	for _, tc := range []struct {
		name string
		json bool
	}{{"json responses", true}, {"sse responses", false}} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, suite.err, "the suite could not start mcpguard")
			mark := suite.guard.Logs().Len()
			up := leakyUpstream(t, tc.json)
			gw, err := harness.StartGateway(t.Context(), harness.GatewayOptions{
				Root: suite.root, GRPC: suite.guard.GRPC, Admin: suite.guard.Admin, Upstream: up.Listener.Addr().String(),
			})
			require.NoError(t, err)
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 5*time.Second)
				defer cancel()
				_ = gw.Close(ctx)
			})
			progress := make(chan string, 4)
			opts := &mcp.ClientOptions{ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
				select {
				case progress <- r.Params.Message:
				default:
				}
			}}
			s, err := harness.Connect(t.Context(), harness.ClientOptions{
				Endpoint: "http://" + gw.Addr() + mcpserver.Path,
				Token:    suite.token, Version: harness.V20250618, Client: opts,
			})
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close() })
			direct, err := harness.Connect(t.Context(), harness.ClientOptions{Endpoint: up.URL + mcpserver.Path, Version: harness.V20250618})
			require.NoError(t, err)
			t.Cleanup(func() { _ = direct.Close() })

			params := &mcp.CallToolParams{Name: "report", Arguments: map[string]any{}}
			params.SetProgressToken("p1")
			raw, err := direct.CallTool(t.Context(), params)
			require.NoError(t, err)
			require.Contains(t, asJSON(t, raw), leakAWS, "the upstream does leak")

			r, err := s.CallTool(t.Context(), params)
			require.NoError(t, err)
			want := "paid with card [REDACTED:CREDIT_CARD]; deploy key [REDACTED:AWS_ACCESS_KEY]"
			require.Equal(t, want, text(t, r))
			sc, err := json.Marshal(r.StructuredContent)
			require.NoError(t, err)
			require.JSONEq(t, `{"card":"[REDACTED:CREDIT_CARD]","aws_key":"[REDACTED:AWS_ACCESS_KEY]","note":"`+want+`"}`, string(sc))
			if !tc.json {
				select {
				case msg := <-progress:
					require.Equal(t, "mailing [REDACTED:EMAIL]", msg)
				case <-time.After(wait):
					t.Fatal("no progress notification")
				}
			}
			logs := suite.guard.Logs().Since(mark)
			require.NotContains(t, logs, leakAWS)
			require.NotContains(t, logs, "4111")
		})
	}
}

// echoUpstream is an MCP server whose echo tool returns its text and hands what it
// received to got, so a test sees the arguments as the upstream got them.
func echoUpstream(t *testing.T, got chan<- string) *httptest.Server {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "echo", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Return the text unchanged."},
		func(_ context.Context, _ *mcp.CallToolRequest, a struct {
			Text  string `json:"text"`
			Count int    `json:"count"`
		},
		) (*mcp.CallToolResult, any, error) {
			select {
			case got <- a.Text + " #" + strconv.Itoa(a.Count):
			default:
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: a.Text}}}, nil, nil
		})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{
		JSONResponse: true, DisableLocalhostProtection: true,
	})
	mux := http.NewServeMux()
	mux.Handle(mcpserver.Path, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestMaskingToolArguments: with masking.requests.tool_arguments on, the upstream echo tool
// receives the card number masked (the emulator enforces a content-length that matches the
// rewritten body) and other arguments intact; with the suite's defaults it is off and the
// upstream receives the value as sent, while the client still gets the result masked.
func TestMaskingToolArguments(t *testing.T) {
	require.NoError(t, suite.err, "the suite could not start mcpguard")
	on := func(t *testing.T) (*harness.Guard, string) {
		t.Helper()
		g := extraGuard(t, t.TempDir(), map[string]any{
			"masking": map[string]any{"enabled": true, "requests": map[string]any{"tool_arguments": true}},
		})
		tok, err := g.Token(t.Context(), harness.TokenOptions{Subject: "agent-1", Scopes: []string{"mcp:tools"}})
		require.NoError(t, err)
		return g, tok
	}
	for _, tc := range []struct {
		name     string
		guard    func(*testing.T) (*harness.Guard, string)
		upstream string // what the echo tool receives
	}{
		{name: "on", guard: on, upstream: "pay with [REDACTED:CREDIT_CARD] #3"},
		{
			name: "off by default", guard: func(*testing.T) (*harness.Guard, string) { return suite.guard, suite.token },
			upstream: "pay with " + leakCard + " #3",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, tok := tc.guard(t)
			mark := g.Logs().Len()
			got := make(chan string, 1)
			up := echoUpstream(t, got)
			gw := gatewayFor(t, g, up.Listener.Addr().String())
			s, err := harness.Connect(t.Context(), harness.ClientOptions{
				Endpoint: "http://" + gw.Addr() + mcpserver.Path,
				Token:    tok, Version: harness.V20250618,
			})
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close() })

			r, err := s.CallTool(t.Context(), &mcp.CallToolParams{
				Name:      "echo",
				Arguments: map[string]any{"text": "pay with " + leakCard, "count": 3},
			})
			require.NoError(t, err)
			require.False(t, r.IsError, "result %s", asJSON(t, r))
			select {
			case v := <-got:
				require.Equal(t, tc.upstream, v)
			case <-time.After(wait):
				t.Fatal("the echo tool was not called")
			}
			require.Equal(t, "pay with [REDACTED:CREDIT_CARD]", text(t, r), "the result is masked either way")
			require.NotContains(t, g.Logs().Since(mark), "4111")
		})
	}
}
