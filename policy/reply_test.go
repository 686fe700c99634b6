package policy_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/policy"
)

// TestSQLDialectIsPolicy: sql(payload, dialect) compiles only with a literal, known dialect;
// a dialect computed from the request (or from anything but a literal) is refused with the
// line it is on.
func TestSQLDialectIsPolicy(t *testing.T) {
	head := "version: 1\ndefault: allow\nrules:\n  - name: r\n    action: deny\n    when: "
	cases := []struct {
		name string
		when string
		want []string // empty: compiles
	}{
		{name: "literal postgres", when: `sql(request.arguments.q, "postgres").destructive`},
		{name: "literal mysql", when: `sql(request.arguments.q, 'mysql').write`},
		{name: "one argument uses sql_dialect", when: `sql(request.arguments.q).destructive`},
		{name: "configured tool", when: `request.sql.destructive`},
		{
			name: "dialect from arguments", when: `sql(request.arguments.q, request.arguments.dialect).destructive`,
			want: []string{"line 6: rules[0] (r).when: sql(): the dialect must not come from the request"},
		},
		{
			name: "dialect from a header", when: `sql(request.arguments.q, request.headers["x-dialect"]).write`,
			want: []string{"line 6: rules[0] (r).when: sql(): the dialect must not come from the request"},
		},
		{
			name: "dialect computed from the request", when: `sql(request.arguments.q, "post" + request.tool).write`,
			want: []string{"line 6: rules[0] (r).when: sql(): the dialect must not come from the request"},
		},
		{
			name: "dialect from a comprehension variable", when: `'["postgres", "mysql"].exists(d, sql(request.arguments.q, d).write)'`,
			want: []string{"line 6: rules[0] (r).when: sql(): the dialect must be a string literal"},
		},
		{
			name: "constant expression", when: `sql(request.arguments.q, "post" + "gres").write`,
			want: []string{"line 6: rules[0] (r).when: sql(): the dialect must be a string literal"},
		},
		{
			name: "unknown literal", when: `sql(request.arguments.q, "oracle").write`,
			want: []string{`line 6: rules[0] (r).when: sql(): dialect "oracle" is not postgres or mysql`},
		},
		{
			name: "block scalar, second line", when: "|\n      request.tool == \"q\" &&\n      sql(request.arguments.q, request.arguments.d).write",
			want: []string{"line 8: rules[0] (r).when: sql(): the dialect must not come from the request"},
		},
		{
			name: "every call reported", when: "|\n      sql(request.arguments.a, request.arguments.d).write ||\n      sql(request.arguments.b, \"db2\").write",
			want: []string{"line 7: rules[0] (r).when: sql(): the dialect must not come", `line 8: rules[0] (r).when: sql(): dialect "db2"`},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := policy.Compile([]byte(head + c.when + "\n"))
			if len(c.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range c.want {
				require.Contains(t, err.Error(), w)
			}
			require.Len(t, strings.Split(err.Error(), "\n"), len(c.want), "one error per call: %v", err)
		})
	}
}

const replyPolicy = `version: 1
default: deny
deny_as: tool_error
tools:
  execute_sql:
    sql: {argument: query, dialect: postgres}
rules:
  - name: no-drop
    when: request.sql.destructive
    action: deny
    respond: error
    message: no drops
  - name: bounded
    when: has(request.arguments.limit) && request.arguments.limit > 100
    action: deny
    message: Use a limit of at most 100.
  - name: deploy
    when: request.tool == "deploy"
    action: require_approval
  - name: reads
    when: request.tool == "execute_sql"
    action: allow
`

// TestReply: a denial carries the rule's reply, the policy's deny_as otherwise; only
// denials ever reply with a tool error.
func TestReply(t *testing.T) {
	set, err := policy.Compile([]byte(replyPolicy))
	require.NoError(t, err)
	cases := []struct {
		name   string
		in     policy.Input
		action policy.Action
		reply  policy.Reply
	}{
		{"rule overrides deny_as", policy.Input{Msg: call(t, "execute_sql", map[string]any{"query": "DROP TABLE t"})}, policy.Deny, policy.ReplyError},
		{"rule inherits deny_as", policy.Input{Msg: call(t, "list", map[string]any{"limit": 500})}, policy.Deny, policy.ReplyToolError},
		{"default deny uses deny_as", policy.Input{Msg: call(t, "other", nil)}, policy.Deny, policy.ReplyToolError},
		{"approval is never a tool error", policy.Input{Msg: call(t, "deploy", nil)}, policy.RequireApproval, policy.ReplyError},
		{"allow", policy.Input{Msg: call(t, "execute_sql", map[string]any{"query": "SELECT 1"})}, policy.Allow, policy.ReplyError},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := set.Decide(c.in)
			require.Equal(t, c.action, d.Action, "%+v", d)
			require.Equal(t, c.reply, d.Reply)
		})
	}

	plain, err := policy.Compile(policy.DefaultPolicy())
	require.NoError(t, err)
	d := plain.Decide(policy.Input{Msg: call(t, "execute_sql", map[string]any{"query": "DROP TABLE t"})})
	require.Equal(t, policy.Deny, d.Action)
	require.Equal(t, policy.ReplyError, d.Reply, "the JSON-RPC error stays the default")
}

func TestReplyCompileErrors(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want []string
	}{
		{"unknown deny_as", "version: 1\ndefault: allow\ndeny_as: html\n", []string{`deny_as: "html" is not error or tool_error`}},
		{"respond on a non-deny rule and unknown respond", `version: 1
default: allow
rules:
  - name: a
    when: "true"
    action: allow
    respond: tool_error
  - name: b
    when: "true"
    action: deny
    respond: silence
  - name: c
    when: "true"
    action: observe
    respond: tool_error
`, []string{
			"rules[0] (a).respond: only for action deny",
			`rules[1] (b).respond: "silence" is not error or tool_error`,
			"rules[2] (c).respond: only for action deny",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := policy.Compile([]byte(c.src))
			require.Error(t, err)
			for _, w := range c.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

// BenchmarkCompileDefault compiles the embedded policy, dialect checks included.
func BenchmarkCompileDefault(b *testing.B) {
	src := policy.DefaultPolicy()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := policy.Compile(src); err != nil {
			b.Fatal(err)
		}
	}
}
