package e2e_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/e2e/harness"
	"github.com/mcpguard/mcpguard/e2e/mcpserver"
	"github.com/mcpguard/mcpguard/policy"
)

// TestHardeningParsers: SQL and shell payloads that used to kill the gateway process
// (libpg_query's C stack overflowing with SIGSEGV on a deep expression, mvdan.cc/sh running
// out of time and stack on deep substitutions) go through the real data path under the
// shipped default policy. Each is refused with the bound that stopped it as the reason, and
// the same gateway then serves an ordinary call; its resident memory stays within 256 MiB of
// what it was before (parsing the deep shell payload alone used to take about 450 MB).
func TestHardeningParsers(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	src := strings.Replace(string(policy.DefaultPolicy()), "tools:\n",
		"tools:\n  execute_mysql:\n    sql: {argument: query, dialect: mysql}\n", 1)
	require.NoError(t, os.WriteFile(pol, []byte(src), 0o600))
	g := extraGuard(t, dir, map[string]any{"policy": map[string]any{"file": pol}})
	token, err := g.Token(t.Context(), harness.TokenOptions{Subject: "agent-1", Scopes: []string{"mcp:tools"}})
	require.NoError(t, err)
	up, err := mcpserver.Start(mcpserver.Options{Mode: mcpserver.Stateful})
	require.NoError(t, err)
	t.Cleanup(func() { _ = up.Close(context.WithoutCancel(t.Context())) })
	gw := gatewayFor(t, g, up.Addr())
	s := connect(t, up.URLVia(gw.Addr()), token, "2025-06-18", nil)

	rss := metricValue(t, g, "process_resident_memory_bytes")
	require.Positive(t, rss)
	r := strings.Repeat
	for _, c := range []struct {
		name, tool, arg, payload, rule, reason string
	}{
		{"postgres plus chain", "execute_sql", "query", "SELECT 1" + r("+1", 50000), "sql-unparsable", "sql statement too deeply nested to check (depth > 1000)"},
		{"postgres union all chain", "execute_sql", "query", "SELECT 1" + r(" UNION ALL SELECT 1", 10000), "sql-unparsable", "sql statement too deeply nested to check (depth > 1000)"},
		{"postgres deep parens", "execute_sql", "query", "SELECT " + r("(", 50000) + "1" + r(")", 50000), "sql-unparsable", "sql statement too deeply nested to check (depth > 1000)"},
		{"mysql plus chain", "execute_mysql", "query", "SELECT 1" + r("+1", 50000), "sql-unparsable", "sql statement too deeply nested to check (depth > 1000)"},
		{"mysql deep parens", "execute_mysql", "query", "SELECT " + r("(", 50000) + "1" + r(")", 50000), "sql-unparsable", "sql statement too deeply nested to check (depth > 1000)"},
		{"huge sql", "execute_sql", "query", "SELECT '" + r("x", 300<<10) + "'", "sql-unparsable", "sql statement too large to check (307209 bytes > 262144)"},
		{"shell deep substitution", "run_command", "command", "echo " + r("$(echo ", 10000) + "x" + r(")", 10000), "shell-dangerous", "shell command too deeply nested to check (depth > 1000)"},
		{"shell deep subshells", "run_command", "command", r("(", 50000) + "true" + r(")", 50000), "shell-dangerous", "shell command too deeply nested to check (depth > 1000)"},
		{"shell deep backticks", "shell", "command", "echo " + r("`echo \\", 5000) + "`x`", "shell-dangerous", "shell command too deeply nested to check (depth > 1000)"},
		{"shell of 400 KB", "run_command", "command", "echo " + r("$(echo ", 50000) + "x" + r(")", 50000), "shell-dangerous", "shell command too large to check (400006 bytes > 131072)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.CallTool(t.Context(), &mcp.CallToolParams{Name: c.tool, Arguments: map[string]any{c.arg: c.payload}})
			var rpcErr *jsonrpc.Error
			require.ErrorAs(t, err, &rpcErr)
			require.Equal(t, int64(-31003), rpcErr.Code, "%s", rpcErr.Message)
			var data struct{ Rule, Reason string }
			require.NoError(t, json.Unmarshal(rpcErr.Data, &data))
			require.Equal(t, c.rule, data.Rule)
			require.Equal(t, c.reason, data.Reason)
		})
	}

	require.Less(t, metricValue(t, g, "process_resident_memory_bytes"), rss+256<<20, "resident memory stays bounded")
	res := call(t, s, "execute_sql", map[string]any{"query": "SELECT id, email FROM users WHERE id = 1"})
	require.False(t, res.IsError)
	require.Contains(t, text(t, res), `"rows":[[1,`, "the gateway and the session still serve calls")
	// A query of ordinary depth is classified and allowed through the same path.
	res = call(t, s, "execute_sql", map[string]any{"query": "SELECT " + r("abs(", 100) + "1" + r(")", 100)})
	require.False(t, res.IsError)
}
