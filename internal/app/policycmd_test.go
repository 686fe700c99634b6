package app

import (
	"bytes"
	"os"
	"path/filepath"
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
