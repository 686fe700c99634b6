package e2e_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/e2e/harness"
	"github.com/mcpguard/mcpguard/e2e/mcpserver"
)

// foldPolicy classifies execute_sql's query and run_task's task, and holds echo for approval.
const foldPolicy = `version: 1
default: allow
tools:
  execute_sql:
    sql: {argument: query, dialect: postgres}
  run_task:
    shell: {argument: task}
rules:
  - name: sql-destructive
    when: request.sql.destructive || request.sql.unbounded || (request.sql.present && !request.sql.parsed)
    action: deny
    message: Destructive SQL is not allowed.
  - name: shell-dangerous
    when: request.shell.present && request.shell.dangerous
    action: deny
  - name: echo-needs-release
    when: request.tool == "echo"
    action: require_approval
    approvers: [release]
`

// foldEnv is a session through the gateway in front of foldPolicy, for raw JSON-RPC.
type foldEnv struct {
	g      *harness.Guard
	url    string
	agent  string // token of the caller
	rm     string // token of a release manager
	header map[string]string
}

func startFold(t *testing.T) foldEnv {
	t.Helper()
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(pol, []byte(foldPolicy), 0o600))
	g := extraGuard(t, dir, map[string]any{
		"policy":    map[string]any{"file": pol},
		"approvals": map[string]any{"hold": "1s"},
	})
	up, err := mcpserver.Start(mcpserver.Options{Mode: mcpserver.StatefulJSON})
	require.NoError(t, err)
	t.Cleanup(func() { _ = up.Close(context.WithoutCancel(t.Context())) })
	gw := gatewayFor(t, g, up.Addr())
	env := foldEnv{g: g, url: up.URLVia(gw.Addr())}
	env.agent, err = g.Token(t.Context(), harness.TokenOptions{Subject: "agent-f", Scopes: []string{"mcp:tools"}})
	require.NoError(t, err)
	env.rm, err = g.Token(t.Context(), harness.TokenOptions{Subject: "rm-f", Scopes: []string{"mcp:tools"}, Groups: []string{"release"}, Audience: approverAudience})
	require.NoError(t, err)
	s := connect(t, env.url, env.agent, harness.V20250618, nil)
	env.header = map[string]string{"MCP-Protocol-Version": harness.V20250618, "Mcp-Session-Id": s.ID()}
	return env
}

// rpc posts body as the agent and returns the HTTP status and the JSON-RPC answer.
func (e foldEnv) rpc(t *testing.T, body string) (int, rpcAnswer) {
	t.Helper()
	code, _, raw := post(t, e.url, e.agent, e.header, body)
	var a rpcAnswer
	require.NoError(t, json.Unmarshal(raw, &a), "answer %s", raw)
	return code, a
}

// rpcAnswer is a JSON-RPC response with its result or error.
type rpcAnswer struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

// TestFoldedMemberNames: member names that differ from the ones the gateway reads only by
// letter case or Unicode folding (ſ U+017F for s, K U+212A for k) are what the upstream's
// case-insensitive decoder (Go's encoding/json) takes for those members. Through the real data
// path they are refused before the upstream, without echoing the values, and a normal call
// still works.
func TestFoldedMemberNames(t *testing.T) {
	env := startFold(t)
	const drop = "DROP TABLE users"
	tests := []struct {
		name, params string
		code         int
		names        string // the member the refusal names
	}{
		{"Query for query", `{"name":"execute_sql","arguments":{"Query":"` + drop + `"}}`, -32602, `"query"`},
		{"QUERY for query", `{"name":"execute_sql","arguments":{"QUERY":"` + drop + `"}}`, -32602, `"query"`},
		{"Kelvin sign for k", `{"name":"run_task","arguments":{"tas\u212a":"rm -rf /"}}`, -32602, `"task"`},
		{"long s for s", `{"name":"run_task","arguments":{"ta\u017fk":"rm -rf /"}}`, -32602, `"task"`},
		{"long s in params", `{"name":"execute_sql","argument\u017f":{"query":"` + drop + `"}}`, -32602, `"arguments"`},
		{"Arguments in params", `{"name":"execute_sql","Arguments":{"query":"` + drop + `"}}`, -32602, `"arguments"`},
		{"Arguments beside arguments", `{"name":"execute_sql","arguments":{"query":"SELECT 1"},"Arguments":{"query":"` + drop + `"}}`, -32600, "letter case"},
		{"Kelvin sign beside k in arguments", `{"name":"run_task","arguments":{"task":"ls","tas\u212a":"rm -rf /"}}`, -32600, "letter case"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mark := env.g.Logs().Len()
			body := `{"jsonrpc":"2.0","id":` + jsonInt(100+i) + `,"method":"tools/call","params":` + tt.params + `}`
			_, a := env.rpc(t, body)
			require.NotNil(t, a.Error, "the call reached the upstream: %s", a.Result)
			require.Equal(t, tt.code, a.Error.Code, a.Error.Message)
			require.Contains(t, a.Error.Message, tt.names)
			all := a.Error.Message + string(a.Error.Data)
			require.NotContains(t, all, "DROP")
			require.NotContains(t, all, "rm -rf")
			require.NotContains(t, env.g.Logs().Since(mark), "DROP TABLE", "values are never logged")
		})
	}
	t.Run("envelope Method", func(t *testing.T) {
		code, a := env.rpc(t, `{"jsonrpc":"2.0","id":120,"Method":"tools/call","params":{"name":"execute_sql","arguments":{"query":"`+drop+`"}}}`)
		require.Equal(t, 400, code)
		require.NotNil(t, a.Error)
		require.Equal(t, -32600, a.Error.Code)
		require.Contains(t, a.Error.Message, `"method"`)
	})
	t.Run("normal call still works", func(t *testing.T) {
		code, a := env.rpc(t, `{"jsonrpc":"2.0","id":121,"method":"tools/call","params":{"name":"execute_sql","arguments":{"query":"SELECT id, email FROM users WHERE id = 1"}}}`)
		require.Equal(t, 200, code)
		require.Nil(t, a.Error)
		require.Contains(t, string(a.Result), `"rows"`)
	})
}

// TestFoldedApprovalBinding: a call approved with params P is released once; the same tool and
// arguments with any member added elsewhere in params is held again under a new approval
// instead of being released by P's grant.
func TestFoldedApprovalBinding(t *testing.T) {
	env := startFold(t)
	const args = `"arguments":{"text":"ship it"}`
	deferred := func(t *testing.T, id int, params string) string {
		t.Helper()
		_, a := env.rpc(t, `{"jsonrpc":"2.0","id":`+jsonInt(id)+`,"method":"tools/call","params":`+params+`}`)
		require.NotNil(t, a.Error, "released: %s", a.Result)
		require.Equal(t, codeDeferred, a.Error.Code, a.Error.Message)
		var data struct {
			ID string `json:"approval_id"`
		}
		require.NoError(t, json.Unmarshal(a.Error.Data, &data))
		require.NotEmpty(t, data.ID)
		return data.ID
	}
	first := deferred(t, 1, `{"name":"echo",`+args+`,"_meta":{"progressToken":"a"}}`)
	code, _ := api(t, env.g, "POST", "/v1/approvals/"+first+"/approve", env.rm, `{"reason":"ok"}`)
	require.Equal(t, 200, code)

	for i, extra := range []string{`,"task":{"ttl":60000}`, `,"_meta":{"progressToken":"a","mode":"force"}`} {
		id := deferred(t, 2+i, `{"name":"echo",`+args+extra+`}`)
		require.NotEqual(t, first, id, "params with %s are a different call", extra)
	}

	_, a := env.rpc(t, `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"_meta":{"progressToken":"b"},`+args+`,"name":"echo"}}`)
	require.Nil(t, a.Error, "the approved call, retried with its own progress token, passes")
	require.Contains(t, string(a.Result), "ship it")
}

func jsonInt(i int) string {
	b, _ := json.Marshal(i)
	return strings.TrimSpace(string(b))
}
