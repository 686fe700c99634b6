package policy

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/mcp"
)

// TestVarsSameAsActivation: the variables a decision builds on first use are the activation
// of every variable, to each condition.
func TestVarsSameAsActivation(t *testing.T) {
	src := `version: 1
default: allow
tools:
  execute_sql: {sql: {argument: query}}
  run: {shell: {argument: cmd}}
rules:
  - {name: a, when: 'identity.subject == "u" && "g" in identity.groups && "s" in identity.scopes', action: deny}
  - {name: b, when: 'session.calls > 2 && session.id == "s" && session.tool_calls < 1', action: deny}
  - {name: c, when: 'event.kind == "tool_changed" && event.tool == "t"', action: deny}
  - {name: d, when: 'now > timestamp("2020-01-01T00:00:00Z") && now.getFullYear() == 2026', action: deny}
  - {name: e, when: 'request.sql.read && request.shell.present && request.arguments.query == "x"', action: deny}
  - {name: f, when: 'request.headers["x-env"] == "prod" && request.method == "tools/call" && request.revision == ""', action: deny}
  - {name: g, when: 'request.shell.dangerous || request.sql.destructive || request.listing', action: deny}
  - {name: h, when: 'request.arguments.n / 0 > 1', action: deny}
`
	set, err := Compile([]byte(src))
	require.NoError(t, err)
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	inputs := []Input{
		{Now: now},
		{Now: now, Identity: Identity{Subject: "u", Groups: []string{"g"}, Scopes: []string{"s"}}, Session: Session{ID: "s", Calls: 3}},
		{Now: now, Msg: &mcp.Message{Method: "tools/list"}, Event: &Event{Kind: "tool_changed", Tool: "t"}},
		{Msg: &mcp.Message{Method: "tools/call", Tool: "execute_sql", Arguments: json.RawMessage(`{"query":"SELECT 1","n":1}`)}, Headers: map[string]string{"X-Env": "prod"}},
		{Now: now, Msg: &mcp.Message{Method: "tools/call", Tool: "run", Arguments: json.RawMessage(`{"cmd":"rm -rf /"}`)}, Listing: true},
		{Now: now, Msg: &mcp.Message{Method: "tools/call", Tool: "execute_sql", Arguments: json.RawMessage(`{"query":1`)}},
	}
	matched, failed := 0, 0
	for i, in := range inputs {
		act, _, _ := set.activation(in)
		vs := set.vars(&in)
		if in.Now.IsZero() { // the same instant in both
			act["now"], _ = vs.ResolveName("now")
		}
		for _, r := range set.rules {
			want, _, wantErr := r.prg.Eval(act)
			got, _, gotErr := r.prg.Eval(vs)
			require.Equal(t, wantErr, gotErr, "input %d rule %s", i, r.Name)
			require.Equal(t, want, got, "input %d rule %s", i, r.Name)
			if got == types.True {
				matched++
			}
			if gotErr != nil {
				failed++
			}
		}
	}
	require.GreaterOrEqual(t, matched, 5, "conditions that hold")
	require.Positive(t, failed, "conditions that fail")
}
