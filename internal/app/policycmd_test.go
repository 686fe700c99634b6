package app

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/policy"
)

const cmdCases = `- name: select allowed
  identity: {subject: agent-1}
  message: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"execute_sql","arguments":{"query":"SELECT 1"}}}'
  expect: allow
- name: drop denied
  identity: {subject: agent-1, groups: [dev]}
  message:
    jsonrpc: "2.0"
    id: 2
    method: tools/call
    params: {name: execute_sql, arguments: {query: "DROP TABLE users"}}
  expect: deny
`

func TestPolicyCmd(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(pol, policy.DefaultPolicy(), 0o600))
	good := filepath.Join(dir, "good.yaml")
	require.NoError(t, os.WriteFile(good, []byte(cmdCases), 0o600))
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte(cmdCases+"- {name: wrong, message: '{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}', expect: deny}\n"), 0o600))
	msg := filepath.Join(dir, "msg.json")
	require.NoError(t, os.WriteFile(msg, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"execute_sql","arguments":{"query":"TRUNCATE t"}}}`), 0o600))
	broken := filepath.Join(dir, "broken.yaml")
	require.NoError(t, os.WriteFile(broken, []byte("version: 1\ndefault: allow\nrules:\n  - {name: x, when: 'nope', action: deny}\n"), 0o600))

	cases := []struct {
		name    string
		args    []string
		wantErr bool
		out     []string
		errOut  []string
	}{
		{name: "cases pass", args: []string{"policy", "test", pol, good}, out: []string{"drop denied", "sql-destructive", "2 cases, 0 failed"}},
		{name: "mismatch fails", args: []string{"policy", "test", pol, bad}, wantErr: true, out: []string{"wrong", "FAIL", "3 cases, 1 failed"}},
		{name: "broken policy", args: []string{"policy", "test", broken, good}, wantErr: true, errOut: []string{"line 4", "undeclared reference"}},
		{
			name: "explain", args: []string{"policy", "explain", pol, "--message", msg, "--sub", "agent-1"},
			out: []string{"sql-unparsable", "sql-destructive", "decision: deny by sql-destructive", "TRUNCATE is destructive"},
		},
		{name: "usage", args: []string{"policy"}, wantErr: true, errOut: []string{"Usage"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := Run(t.Context(), c.args, &out, &errOut)
			if c.wantErr {
				require.Error(t, err)
			} else {
				require.NoError(t, err, errOut.String())
			}
			for _, s := range c.out {
				require.Contains(t, out.String(), s)
			}
			for _, s := range c.errOut {
				require.Contains(t, errOut.String(), s)
			}
		})
	}
}

// TestPolicyCasesSetEverything: cases can set the decision time, an event, listing, the
// caller's client id and groups, and each one changes the decision as the policy says.
func TestPolicyCasesSetEverything(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(pol, []byte(`version: 1
default: allow
rules:
  - {name: after-hours, when: 'request.tool == "deploy" && now.getHours() >= 19', action: deny}
  - {name: tool-changed, when: 'event.kind == "tool_changed" && event.tool == "deploy"', action: deny}
  - {name: hide-admin, when: 'request.listing && request.tool == "admin"', action: deny}
  - {name: agent-b-only, when: 'request.tool == "vault" && identity.client_id != "agent-b"', action: deny}
  - {name: dba-only, when: 'request.tool == "drop" && !("dba" in identity.groups)', action: deny}
`), 0o600))
	call := func(tool string) string {
		return `'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + tool + `"}}'`
	}
	cases := `- {name: day deploy, message: ` + call("deploy") + `, now: "2026-01-02T10:00:00Z", expect: allow}
- {name: night deploy, message: ` + call("deploy") + `, now: "2026-01-02T20:00:00Z", expect: deny}
- {name: changed tool, message: ` + call("x") + `, event: {kind: tool_changed, tool: deploy}, now: "2026-01-02T10:00:00Z", expect: deny}
- {name: admin listed, message: ` + call("admin") + `, listing: true, expect: deny}
- {name: admin called, message: ` + call("admin") + `, expect: allow}
- {name: vault agent-b, message: ` + call("vault") + `, identity: {client_id: agent-b}, expect: allow}
- {name: vault agent-a, message: ` + call("vault") + `, identity: {client_id: agent-a}, expect: deny}
- {name: drop dba, message: ` + call("drop") + `, identity: {groups: [dba]}, expect: allow}
- {name: drop dev, message: ` + call("drop") + `, identity: {groups: [dev]}, expect: deny}
`
	cf := filepath.Join(dir, "cases.yaml")
	require.NoError(t, os.WriteFile(cf, []byte(cases), 0o600))
	var out, errOut bytes.Buffer
	require.NoError(t, Run(t.Context(), []string{"policy", "test", pol, cf}, &out, &errOut), out.String()+errOut.String())
	require.Contains(t, out.String(), "9 cases, 0 failed")

	// Every problem of a cases file at once, with its path and line.
	require.NoError(t, os.WriteFile(cf, []byte("- {name: a, expect: allow, idenity: {}}\n- {name: b, listing: maybe, expect: allow}\n"), 0o600))
	out.Reset()
	errOut.Reset()
	require.Error(t, Run(t.Context(), []string{"policy", "test", pol, cf}, &out, &errOut))
	require.Contains(t, errOut.String(), "[0].idenity: unknown field (line 1)")
	require.Contains(t, errOut.String(), `[1].listing: expected true or false, got "maybe" (line 2)`)

	// explain takes the same inputs as flags.
	msg := filepath.Join(dir, "msg.json")
	require.NoError(t, os.WriteFile(msg, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"deploy"}}`), 0o600))
	out.Reset()
	require.NoError(t, Run(t.Context(), []string{"policy", "explain", pol, "--message", msg, "--now", "2026-01-02T20:00:00Z"}, &out, &errOut))
	require.Contains(t, out.String(), "decision: deny by after-hours")
	out.Reset()
	require.NoError(t, Run(t.Context(), []string{"policy", "explain", pol, "--message", msg, "--now", "2026-01-02T10:00:00Z", "--event", "tool_changed", "--event-tool", "deploy"}, &out, &errOut))
	require.Contains(t, out.String(), "decision: deny by tool-changed")

	// Every rule is listed; those about other tools are marked as skipped by the index.
	out.Reset()
	require.NoError(t, Run(t.Context(), []string{"policy", "explain", pol, "--message", msg, "--now", "2026-01-02T10:00:00Z"}, &out, &errOut))
	require.Contains(t, out.String(), "decision: allow by (default)")
	lines := map[string]string{}
	for _, l := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			lines[f[0]] = l
		}
	}
	require.NotContains(t, lines["after-hours"], "skipped")
	for _, r := range []string{"tool-changed", "hide-admin", "agent-b-only", "dba-only"} {
		require.Contains(t, lines[r], "skipped: cannot match (index)", r)
	}
}
