package policy

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/mcp"
)

// TestSchemaMatchesValues checks every declared field of every variable, down into list
// elements, against the values real decisions hand to conditions: each field is present and
// has its declared type at run time, so the declarations cannot drift from the maps they are
// derived from.
func TestSchemaMatchesValues(t *testing.T) {
	sc, err := conditionSchema()
	require.NoError(t, err)
	env, err := newEnv(Postgres, classifier{})
	require.NoError(t, err)
	set := &Set{tools: map[string]ToolSpec{
		"q":  {SQL: &ArgSpec{Argument: "sql", Dialect: Postgres}},
		"sh": {Shell: &ArgSpec{Argument: "cmd"}},
	}}
	inputs := map[string]Input{
		"sql call": {
			Identity: Identity{Subject: "a", Groups: []string{"g"}},
			Msg:      &mcp.Message{Method: "tools/call", Tool: "q", Arguments: []byte(`{"sql":"DELETE FROM t; SELECT pg_sleep(1)"}`)},
			Headers:  map[string]string{"x-a": "b"}, Session: Session{ID: "s", Calls: 2, ToolCalls: 1},
			Event: &Event{Kind: "tool_changed", Tool: "q"}, Now: time.Unix(1, 0),
		},
		"shell call": {
			Msg: &mcp.Message{Method: "tools/call", Tool: "sh", Arguments: []byte(`{"cmd":"psql -c 'DROP TABLE t' | sh"}`)},
		},
		"empty": {},
	}
	// checks are boolean expressions that must hold for every input.
	var checks []string
	var walk func(expr string, t *cel.Type, depth int)
	walk = func(expr string, t *cel.Type, depth int) {
		checks = append(checks, isType(expr, t))
		switch {
		case t.Kind() == types.StructKind:
			for _, f := range sc.fieldNames(t.TypeName()) {
				walk(expr+"."+f, sc.objects[t.TypeName()][f], depth)
			}
		case t.Kind() == types.ListKind:
			v := fmt.Sprintf("e%d", depth)
			inner := len(checks)
			walk(v, t.Parameters()[0], depth+1)
			for i := inner; i < len(checks); i++ {
				checks[i] = fmt.Sprintf("%s.all(%s, %s)", expr, v, checks[i])
			}
		}
	}
	for _, v := range sc.vars {
		walk(v.name, v.typ, 0)
	}
	require.Greater(t, len(checks), 80, "every variable and field is walked")
	// Lists of objects hold elements in these inputs, so the all() above looked at them.
	checks = append(checks, "request.method != 'tools/call' || request.tool != 'q' || size(request.sql.statements) == 2",
		"request.method != 'tools/call' || request.tool != 'sh' || size(request.shell.sql[0].statements) == 1")
	for name, in := range inputs {
		act, _, _ := set.activation(in)
		for _, e := range checks {
			ast, iss := env.Compile(e)
			require.NoError(t, iss.Err(), e)
			prg, err := env.Program(ast)
			require.NoError(t, err)
			out, _, err := prg.Eval(act)
			require.NoError(t, err, "%s: %s", name, e)
			require.Equal(t, types.True, out, "%s: %s", name, e)
		}
	}
}

// isType is a condition true when x has the declared type t at run time (objects are maps).
func isType(x string, t *cel.Type) string {
	name := map[types.Kind]string{
		types.BoolKind: "bool", types.StringKind: "string", types.IntKind: "int", types.DoubleKind: "double",
		types.ListKind: "list", types.MapKind: "map", types.StructKind: "map",
		types.TimestampKind: "google.protobuf.Timestamp",
	}[t.Kind()]
	if name == "" {
		name = "unknown_kind"
	}
	return fmt.Sprintf("type(%s) == %s", x, name)
}

// TestSchemaDerivesFromValues shows a field exists in conditions because the value map holds
// it: every key of SQL.Value and Shell.Value is declared, and nothing else is.
func TestSchemaDerivesFromValues(t *testing.T) {
	sc, err := conditionSchema()
	require.NoError(t, err)
	for typ, m := range map[string]map[string]any{typeSQL: SQL{}.Value(), typeShell: Shell{}.Value()} {
		want := make([]string, 0, len(m))
		for k := range m {
			want = append(want, k)
		}
		require.ElementsMatch(t, want, sc.fieldNames(typ), typ)
	}
}
