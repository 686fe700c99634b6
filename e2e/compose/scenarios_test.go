package compose_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/e2e/harness"
)

// remote is the running gateway named by MCPGUARD_E2E_GATEWAY; the test is skipped without it.
func remote(t *testing.T) *harness.Remote {
	t.Helper()
	r, err := harness.RemoteFromEnv()
	require.NoError(t, err)
	if r == nil {
		t.Skipf("%s is not set: start e2e/docker-compose.yaml and run make e2e-compose", harness.EnvGateway)
	}
	return r
}

// TestScenarios runs the core scenarios through the running stack: an allowed call, a blocked
// DROP DATABASE, masked secrets and personal data, and the unauthenticated paths.
func TestScenarios(t *testing.T) {
	r := remote(t)
	token, err := r.Token(t.Context(), harness.TokenOptions{Subject: "agent-1", Scopes: []string{"mcp:tools"}})
	require.NoError(t, err)
	wrongAud, err := r.Token(t.Context(), harness.TokenOptions{Subject: "agent-1", Scopes: []string{"mcp:tools"}, Audience: "http://other.example/mcp"})
	require.NoError(t, err)
	url := r.URL("/mcp")

	for _, v := range []string{harness.V20250618, harness.V20251125} {
		t.Run("allowed call "+v, func(t *testing.T) {
			s := connect(t, url, token, v)
			require.Equal(t, "hello through envoy", text(t, call(t, s, "echo", map[string]any{"text": "hello through envoy"})))
		})
	}

	t.Run("destructive SQL refused, session still usable", func(t *testing.T) {
		s := connect(t, url, token, harness.V20250618)
		_, err := s.CallTool(t.Context(), &mcp.CallToolParams{Name: "execute_sql", Arguments: map[string]any{"query": "DROP DATABASE prod"}})
		var rpcErr *jsonrpc.Error
		require.ErrorAs(t, err, &rpcErr)
		require.Equal(t, int64(-31003), rpcErr.Code)
		require.Contains(t, string(rpcErr.Data), "DROP DATABASE is destructive")

		got := text(t, call(t, s, "execute_sql", map[string]any{"query": "SELECT id, email FROM users WHERE id = 1"}))
		require.Contains(t, got, `[REDACTED:EMAIL]`)
		require.NotContains(t, got, "@")
	})

	t.Run("secret in a tool result masked", func(t *testing.T) {
		s := connect(t, url, token, harness.V20251125)
		got := text(t, call(t, s, "echo", map[string]any{"text": "deploy key AKIAZ3MHQX7RBN2KLD4P"}))
		require.NotContains(t, got, "AKIAZ3MHQX7RBN2KLD4P")
		require.Contains(t, got, "[REDACTED:")
	})

	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	for _, tc := range []struct{ name, token string }{
		{"no token", ""},
		{"garbage token", "not-a-jwt"},
		{"wrong audience", wrongAud},
	} {
		t.Run("unauthenticated: "+tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			resp, err := harness.HTTPClient(tc.token).Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, resp.Body)
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			require.Contains(t, resp.Header.Get("WWW-Authenticate"), `resource_metadata="http://localhost:8080/.well-known/oauth-protected-resource/mcp"`)
		})
	}

	t.Run("protected resource metadata without a token", func(t *testing.T) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, r.URL("/.well-known/oauth-protected-resource/mcp"), nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var prm struct {
			Resource string `json:"resource"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&prm))
		require.Equal(t, harness.Audience, prm.Resource)
	})
}

func connect(t *testing.T, url, token, version string) *mcp.ClientSession {
	t.Helper()
	s, err := harness.Connect(t.Context(), harness.ClientOptions{Endpoint: url, Token: token, Version: version, DisableStandaloneSSE: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func call(t *testing.T, s *mcp.ClientSession, tool string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	res, err := s.CallTool(t.Context(), &mcp.CallToolParams{Name: tool, Arguments: args})
	require.NoError(t, err)
	require.False(t, res.IsError, "tool %s returned an error result", tool)
	return res
}

func text(t *testing.T, r *mcp.CallToolResult) string {
	t.Helper()
	var b strings.Builder
	for _, c := range r.Content {
		tc, ok := c.(*mcp.TextContent)
		if !ok {
			require.NoError(t, errors.New("non-text content"))
		}
		b.WriteString(tc.Text)
	}
	return b.String()
}
