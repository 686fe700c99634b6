package policy_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/mcp"
	"github.com/mcpguard/mcpguard/policy"
)

// atoms are the condition pieces the generated policies are built from: every form the index
// reads, and forms it must leave alone (negation, errors, comprehensions, case-folded regexes,
// malformed globs, fields it does not index).
var atoms = []string{
	`request.tool == "t%d"`, `"t%d" == request.tool`, `request.method == "tools/call"`,
	`request.method == "resources/read"`, `request.tool in ["t%d", "t1", "x"]`,
	`"g%d" in identity.groups`, `"admin" in identity.scopes`, `identity.subject == "u%d"`,
	`identity.client_id == "c%d"`, `identity.issuer == "https://idp"`, `event.kind == "tool_changed"`,
	`event.tool == "t%d"`, `glob("t%d*", request.tool)`, `glob("t[", request.tool)`, `glob("t%d", request.tool)`,
	`glob("*%d", request.tool)`, `identity.subject.startsWith("u%d")`, `identity.subject.matches("^u%d[0-9]*$")`,
	`identity.subject.matches("(?i)^U%d")`, `identity.subject.matches("u%d")`, `request.tool.matches("^t[0-9]+$")`,
	`request.sql.destructive`, `request.sql.read`, `request.arguments.x == %d`, `request.arguments.x > %d`,
	`request.arguments.items.exists(i, i > %d)`, `session.calls > %d`, `request.listing`,
	`request.uri.startsWith("vault://")`, `request.prompt == "p%d"`, `request.headers["x-env"] == "prod"`,
	`!(request.tool == "t%d")`, `!("g%d" in identity.groups)`, `request.tool != "t%d"`,
	`(request.tool == "t%d" ? true : identity.subject == "u%d")`, `int(request.arguments.x) / (%d - %d) > 0`,
	`sql("SELECT %d; DELETE FROM t").unbounded`, `shell("rm -rf /t%d").recursive_delete`, `request.shell.dangerous`,
	`sql(request.arguments.query, "mysql").read`, `shell(request.arguments.query).unknown`,
}

// genCondition builds a random condition of up to depth levels of && and ||.
func genCondition(r *rand.Rand, depth int) string {
	if depth == 0 || r.IntN(3) == 0 {
		a := atoms[r.IntN(len(atoms))]
		n := strings.Count(a, "%d")
		vals := make([]any, n)
		for i := range vals {
			vals[i] = r.IntN(6)
		}
		return fmt.Sprintf(a, vals...)
	}
	op := " && "
	if r.IntN(3) == 0 {
		op = " || "
	}
	return "(" + genCondition(r, depth-1) + op + genCondition(r, depth-1) + ")"
}

// genPolicy is a policy of n random rules with random actions, and its source.
func genPolicy(t testing.TB, seed uint64, n int) (*policy.Set, []byte) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\ndefault: %s\ntools:\n  execute_sql:\n    sql: {argument: query}\n  run:\n    shell: {argument: cmd}\nrules:\n",
		[]string{"allow", "deny", "require_approval"}[r.IntN(3)])
	for i := range n {
		act := []string{"deny", "allow", "require_approval", "observe", "deny"}[r.IntN(5)]
		cond := genCondition(r, 3)
		if r.IntN(2) == 0 { // the usual shape: a guard on tool or identity, then the rest
			cond = genCondition(r, 0) + " && " + cond
		}
		fmt.Fprintf(&b, "  - name: r%d\n    when: '%s'\n    action: %s\n", i, strings.ReplaceAll(cond, "'", "''"), act)
	}
	set, err := policy.Compile([]byte(b.String()))
	require.NoError(t, err, b.String())
	return set, []byte(b.String())
}

// genInputs is a corpus of messages: calls, listings, reads, events, with identities
// that hit and miss the literals of the generated conditions.
func genInputs(t testing.TB, seed uint64, n int) []policy.Input {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 11))
	pick := func(vals ...string) string { return vals[r.IntN(len(vals))] }
	var out []policy.Input
	for range n {
		in := policy.Input{
			Identity: policy.Identity{
				Subject:  pick("u0", "u1", "u12", "U3", "x", "", "u5"),
				ClientID: pick("c0", "c1", "c4", ""),
				Issuer:   pick("https://idp", "https://other"),
			},
			Session: policy.Session{ID: "s", Calls: int64(r.IntN(8)), ToolCalls: int64(r.IntN(3))},
			Listing: r.IntN(5) == 0,
			Headers: map[string]string{"x-env": pick("prod", "dev")},
		}
		for range r.IntN(3) {
			in.Identity.Groups = append(in.Identity.Groups, pick("g0", "g1", "g2", "g3", "g4", "g5", "other"))
		}
		if r.IntN(2) == 0 {
			in.Identity.Scopes = []string{pick("admin", "read")}
		}
		switch r.IntN(5) {
		case 0, 1, 2:
			tool := pick("t0", "t1", "t2", "t3", "t4", "t5", "t12", "x", "execute_sql", "run", "")
			args := map[string]any{}
			switch r.IntN(5) {
			case 0:
				args["x"] = r.IntN(6)
			case 1:
				args["items"] = []int{r.IntN(6), r.IntN(6)}
			case 2:
				args["query"] = pick("SELECT 1", "DROP TABLE t", "DELETE FROM t", "SELEC 1", "SELECT 1; UPDATE t SET a = 1", "ls -la")
			case 3:
				args["cmd"] = pick("ls -la", "rm -rf /", "psql -c 'DROP TABLE t'", "'unterminated", "curl x | sh")
			}
			in.Msg = call(t, tool, args)
		case 3:
			in.Msg = &mcp.Message{Method: pick("resources/read", "prompts/get", "tools/list"), URI: pick("vault://a", "file://b"), Prompt: pick("p1", "p2")}
		default:
			in.Msg = &mcp.Message{Method: "tools/list"}
			in.Event = &policy.Event{Kind: pick("tool_changed", "other"), Tool: pick("t1", "t2")}
		}
		out = append(out, in)
	}
	return out
}

// sameDecisions checks that the index changes nothing: the same decision from Decide and
// Explain, and every rule the index skipped is one that evaluates to false without error.
func sameDecisions(t testing.TB, set *policy.Set, in policy.Input) (skipped int) {
	t.Helper()
	plain := policy.WithoutIndex(set)
	want, wantSteps := plain.Explain(in)
	got, gotSteps := set.Explain(in)
	require.Equal(t, want, got)
	require.Equal(t, want, set.Decide(in))
	require.Len(t, gotSteps, len(wantSteps))
	for i, s := range gotSteps {
		w := wantSteps[i]
		if s.Skipped {
			skipped++
			require.False(t, w.Matched, "rule %s skipped but matches", s.Rule)
			require.Empty(t, w.Err, "rule %s skipped but errors", s.Rule)
			continue
		}
		require.Equal(t, w, s)
	}
	return skipped
}

// uncached compiles src into a policy that classifies every text afresh.
func uncached(t testing.TB, src []byte) *policy.Set {
	t.Helper()
	plain, err := policy.CompileUncached(src)
	require.NoError(t, err)
	return plain
}

// sameAsUncached checks that the classification memos change nothing: plain, compiled from
// the same source by [uncached], decides and explains in as the memoized set does, at a
// text's first use and once it is remembered.
func sameAsUncached(t testing.TB, plain, set *policy.Set, in policy.Input) {
	t.Helper()
	want, wantSteps := plain.Explain(in)
	for range 2 {
		got, gotSteps := set.Explain(in)
		require.Equal(t, want, got)
		require.Equal(t, wantSteps, gotSteps)
		require.Equal(t, want, set.Decide(in))
	}
}

func TestIndexEquivalenceGenerated(t *testing.T) {
	inputs := genInputs(t, 1, 400)
	skipped := 0
	for seed := range uint64(4) {
		set, src := genPolicy(t, seed, 100)
		plain := uncached(t, src)
		for _, in := range inputs {
			skipped += sameDecisions(t, set, in)
			sameAsUncached(t, plain, set, in)
		}
	}
	t.Logf("index skipped %d rule evaluations", skipped)
	require.Positive(t, skipped, "the index skipped nothing")
}

func TestIndexEquivalenceRepoPolicies(t *testing.T) {
	demo, err := os.ReadFile("../demo/policy.yaml")
	require.NoError(t, err)
	inputs := genInputs(t, 2, 300)
	inputs = append(inputs,
		policy.Input{Msg: call(t, "deploy", nil)},
		policy.Input{Msg: call(t, "execute_sql", map[string]any{"query": "DROP TABLE users"})},
		policy.Input{Msg: &mcp.Message{Method: "tools/list"}, Event: &policy.Event{Kind: "tool_changed", Tool: "query"}},
	)
	for name, src := range map[string][]byte{"default": policy.DefaultPolicy(), "demo": demo} {
		t.Run(name, func(t *testing.T) {
			set, err := policy.Compile(src)
			require.NoError(t, err)
			plain := uncached(t, src)
			for _, in := range inputs {
				sameDecisions(t, set, in)
				sameAsUncached(t, plain, set, in)
			}
		})
	}
	set, plain := corpusPolicy(t), uncached(t, corpusPolicySource())
	for _, c := range loadCorpus(t) {
		sameDecisions(t, set, corpusInput(t, c))
		sameAsUncached(t, plain, set, corpusInput(t, c))
	}
}

// TestIndexSkips pins what the index proves: rules about other tools, identities, groups and
// tool prefixes are skipped; rules it cannot read are evaluated.
func TestIndexSkips(t *testing.T) {
	set := hundredRules(t)
	// 25 tool+group rules, 25 glob prefixes, 25 subject rules, 25 anchored regexes: all but the
	// last rule ("readers" in identity.groups) carry a need.
	require.Equal(t, 100, policy.IndexedRules(set))
	in := policy.Input{
		Identity: policy.Identity{Subject: "agent-1", Groups: []string{"readers"}},
		Msg:      call(t, "execute_sql", map[string]any{"query": "SELECT 1"}),
	}
	d, steps := set.Explain(in)
	require.Equal(t, "readers", d.Rule)
	var evaluated []string
	for _, s := range steps {
		if !s.Skipped {
			evaluated = append(evaluated, s.Rule)
		}
	}
	require.Equal(t, []string{"readers"}, evaluated)

	// The same policy for a subject and tool the rules name: those rules are evaluated.
	in.Identity.Subject = "svc-2"
	in.Msg = call(t, "admin_5_x", nil)
	_, steps = set.Explain(in)
	evaluated = evaluated[:0]
	for _, s := range steps {
		if !s.Skipped {
			evaluated = append(evaluated, s.Rule)
		}
	}
	require.Equal(t, []string{"r2", "r5"}, evaluated)
	sameDecisions(t, set, in)
}

// FuzzIndexEquivalence: for any condition that compiles and any message, the index never
// changes a decision, and never skips a rule that matches or fails to evaluate; and the
// classification memos never change a decision either (the tool's arguments are its SQL or
// shell argument when the tool is execute_sql or run).
func FuzzIndexEquivalence(f *testing.F) {
	f.Add(`request.tool == "a" && "g" in identity.groups`, "tools/call", "a", "u", "g", `{}`, false)
	f.Add(`glob("ad*", request.tool) || identity.subject.matches("^svc-")`, "tools/call", "admin", "svc-1", "", `{"x":1}`, false)
	f.Add(`request.arguments.items.exists(i, i > 1) && request.tool == "b"`, "tools/call", "a", "", "", `{"items":[1,2]}`, true)
	f.Add(`(request.tool in ["a", "b"] || request.method == "resources/read") && identity.client_id == "c"`, "resources/read", "", "", "", ``, false)
	f.Add(`!(request.tool == "a") && glob("[", request.tool)`, "tools/call", "z", "", "", `{}`, false)
	f.Add(`event.kind == "tool_changed" && event.tool.startsWith("q")`, "tools/list", "", "", "", ``, false)
	f.Add(`request.sql.destructive || sql("DELETE FROM t").unbounded`, "tools/call", "execute_sql", "", "", `{"query":"DROP TABLE t"}`, false)
	f.Add(`request.sql.read && request.sql.statements.size() == 1`, "tools/call", "execute_sql", "", "", `{"query":"SELECT 1"}`, false)
	f.Add(`request.shell.dangerous && shell(request.arguments.cmd).commands.size() > 0`, "tools/call", "run", "", "", `{"cmd":"psql -c 'DROP TABLE t'"}`, false)
	f.Add(`sql(request.arguments.cmd, "mysql").write`, "tools/call", "run", "", "", `{"cmd":"INSERT INTO t VALUES (1)"}`, false)
	f.Fuzz(func(t *testing.T, cond, method, tool, subject, group, args string, listing bool) {
		src := fmt.Sprintf("version: 1\ndefault: allow\ntools:\n  execute_sql: {sql: {argument: query}}\n  run: {shell: {argument: cmd}}\nrules:\n  - name: a\n    when: %s\n    action: deny\n  - name: b\n    when: %s\n    action: observe\n  - name: c\n    when: %s\n    action: allow\n",
			quote(cond), quote(cond), quote(cond))
		set, err := policy.Compile([]byte(src))
		if err != nil {
			return
		}
		in := policy.Input{
			Identity: policy.Identity{Subject: subject, Groups: []string{group}},
			Msg:      &mcp.Message{Method: method, Tool: tool, Arguments: json.RawMessage(args)},
			Listing:  listing,
		}
		if strings.HasPrefix(method, "event:") {
			in.Event = &policy.Event{Kind: strings.TrimPrefix(method, "event:"), Tool: tool}
		}
		sameDecisions(t, set, in)
		sameAsUncached(t, uncached(t, []byte(src)), set, in)
	})
}

// quote writes s as a YAML double-quoted scalar.
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
