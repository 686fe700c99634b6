package policy_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/mcp"
	"github.com/mcpguard/mcpguard/policy"
)

// pathological is a payload built to overflow or exhaust a parser, and the bound that must
// refuse it.
type pathological struct {
	name    string
	dialect policy.Dialect // "" for shell
	payload func() string
	reason  string
}

const (
	tooDeep  = "too deeply nested to check"
	tooLarge = "too large to check"
)

func rep(s string, n int) string { return strings.Repeat(s, n) }

// pathologicalPayloads are the shapes that crashed or stalled the gateway: deep brackets,
// long left-deep operator and set-operation chains, deep substitutions, huge literals.
func pathologicalPayloads() []pathological {
	var out []pathological
	for _, d := range []policy.Dialect{policy.Postgres, policy.MySQL} {
		sql := []struct {
			name, reason string
			payload      func() string
		}{
			{"deep parens", tooDeep, func() string { return "SELECT " + rep("(", 50000) + "1" + rep(")", 50000) }},
			{"long plus chain", tooDeep, func() string { return "SELECT 1" + rep("+1", 50000) }},
			{"plus chain over lines and comments", tooDeep, func() string { return "SELECT 1" + rep("\n+ /* x */ 1 -- y\n", 5000) }},
			{"long union all chain", tooDeep, func() string { return "SELECT 1" + rep(" UNION ALL SELECT 1", 5000) }},
			{"long union chain with lists", tooDeep, func() string { return "SELECT 1, 2" + rep(" UNION SELECT 1, 2", 5000) }},
			{"deep exists", tooDeep, func() string { return "SELECT " + rep("EXISTS (SELECT ", 3000) + "1" + rep(")", 3000) }},
			{"deep subqueries", tooDeep, func() string { return rep("SELECT * FROM (", 3000) + "SELECT 1" + rep(") t", 3000) }},
			{"deep function calls", tooDeep, func() string { return "SELECT " + rep("abs(", 30000) + "1" + rep(")", 30000) }},
			{"long not chain", tooDeep, func() string { return "SELECT " + rep("NOT ", 30000) + "true" }},
			{"deep case", tooDeep, func() string { return "SELECT " + rep("CASE WHEN a THEN ", 3000) + "1" + rep(" END", 3000) }},
			{"long join chain", tooDeep, func() string { return "SELECT * FROM a" + rep(" JOIN a ON true", 5000) }},
			{"long cast chain", tooDeep, func() string { return "SELECT 1" + rep("::int", 20000) }},
			{"deep arrays", tooDeep, func() string { return "SELECT " + rep("ARRAY[", 20000) + "1" + rep("]", 20000) }},
			{"huge literal", tooLarge, func() string { return "SELECT '" + rep("x", 1<<20) + "'" }},
			{"deep parens in a delete", tooDeep, func() string { return "DELETE FROM t WHERE " + rep("(", 20000) + "1=1" + rep(")", 20000) }},
		}
		for _, c := range sql {
			out = append(out, pathological{name: string(d) + "/" + c.name, dialect: d, payload: c.payload, reason: c.reason})
		}
	}
	shell := []struct {
		name, reason string
		payload      func() string
	}{
		{"deep command substitution", tooDeep, func() string { return "echo " + rep("$(echo ", 10000) + "x" + rep(")", 10000) }},
		{"command substitution of 400 KB", tooLarge, func() string { return "echo " + rep("$(echo ", 50000) + "x" + rep(")", 50000) }},
		{"deep backticks", tooDeep, func() string { return "echo " + rep("`echo \\", 5000) + "`x" + rep("`", 1) }},
		{"deep subshells", tooDeep, func() string { return rep("(", 50000) + "true" + rep(")", 50000) }},
		{"deep groups", tooDeep, func() string { return rep("{ ", 20000) + "true" + rep("; }", 20000) }},
		{"deep arithmetic", tooDeep, func() string { return "echo $((" + rep("(", 50000) + "1" + rep(")", 50000) + "))" }},
		{"deep parameter expansion", tooDeep, func() string { return "echo " + rep("${a:-", 10000) + "x" + rep("}", 10000) }},
		{"deep quoted substitution", tooDeep, func() string { return "echo " + rep(`"$(echo `, 5000) + "x" + rep(`)"`, 5000) }},
		{"deep if", tooDeep, func() string { return rep("if true; then ", 5000) + "true" + rep("; fi", 5000) }},
		{"very long pipeline", tooDeep, func() string { return "true" + rep(" | cat", 20000) }},
		{"very long and chain", tooDeep, func() string { return "true" + rep(" &&\n true", 10000) }},
		{"substitutions in a heredoc", tooDeep, func() string {
			return "cat <<EOF\n" + rep("$(echo ", 10000) + "x" + rep(")", 10000) + "\nEOF\n"
		}},
		{"many heredocs", tooLarge, func() string {
			var b strings.Builder
			b.WriteString("cat")
			for i := range 20000 {
				fmt.Fprintf(&b, " <<E%d", i)
			}
			b.WriteString("\n")
			for i := range 20000 {
				fmt.Fprintf(&b, "x\nE%d\n", i)
			}
			return b.String()
		}},
		{"huge literal", tooLarge, func() string { return "echo '" + rep("x", 1<<20) + "'" }},
	}
	for _, c := range shell {
		out = append(out, pathological{name: "shell/" + c.name, payload: c.payload, reason: c.reason})
	}
	return out
}

// childCase names the payload a re-executed test binary classifies.
const childCase = "MCPGUARD_PATHOLOGICAL_CASE"

// TestPathologicalPayloads classifies each payload in a child process: before the bounds,
// libpg_query died with SIGSEGV on the deep Postgres shapes and mvdan.cc/sh spent seconds
// and hundreds of MB on the deep shell shapes, and a crash in this process would take the
// whole test binary down with it. Each must come back unparsed, with the bound as reason.
func TestPathologicalPayloads(t *testing.T) {
	cases := pathologicalPayloads()
	if name := os.Getenv(childCase); name != "" {
		for _, c := range cases {
			if c.name != name {
				continue
			}
			var (
				parsed  bool
				reasons []string
			)
			if c.dialect == "" {
				got := policy.ClassifyShell(c.payload())
				parsed, reasons = got.Parsed, got.Reasons()
			} else {
				got := policy.ClassifySQL(c.dialect, c.payload())
				parsed, reasons = got.Parsed, got.Reasons()
			}
			out, err := json.Marshal(map[string]any{"parsed": parsed, "reasons": reasons})
			require.NoError(t, err)
			fmt.Printf("RESULT %s\n", out)
			return
		}
		t.Fatalf("no case %q", name)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestPathologicalPayloads$", "-test.count=1")
			cmd.Env = append(os.Environ(), childCase+"="+c.name)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "the classifying process died: %.2000s", out)
			_, res, ok := strings.Cut(string(out), "RESULT ")
			require.True(t, ok, "no result: %.2000s", out)
			res, _, _ = strings.Cut(res, "\n")
			var got struct {
				Parsed  bool
				Reasons []string
			}
			require.NoError(t, json.Unmarshal([]byte(res), &got))
			require.False(t, got.Parsed)
			require.Len(t, got.Reasons, 1)
			require.Contains(t, got.Reasons[0], c.reason)
		})
	}
}

// wideQuery is a 64 KiB report query: 100 nested subqueries, a wide select list of CASE
// expressions, a long IN list and a WHERE of many conditions.
func wideQuery() string {
	var b strings.Builder
	b.WriteString("SELECT ")
	for i := range 450 {
		fmt.Fprintf(&b, "CASE WHEN x.c%d = 'a' AND x.d > %d THEN coalesce(x.e, 0) + 1 ELSE 0 END AS c%d, ", i, i, i)
	}
	b.WriteString("1 FROM ")
	b.WriteString(rep("(SELECT * FROM ", 100))
	b.WriteString("t")
	b.WriteString(rep(" WHERE a = 1 AND b <> 2) x", 100))
	b.WriteString(" WHERE x.id IN (")
	for i := range 4000 {
		fmt.Fprintf(&b, "%d, ", i)
	}
	b.WriteString("0)")
	for i := range 200 {
		fmt.Fprintf(&b, " AND x.f%d >= %d", i, i)
	}
	return b.String()
}

// TestBoundsKeepOrdinaryPayloads: large and nested payloads of the kind agents send are
// classified, not refused, and quoted or commented text counts for nothing.
func TestBoundsKeepOrdinaryPayloads(t *testing.T) {
	q := wideQuery()
	require.Greater(t, len(q), 64<<10)
	script := "cat > gen.py <<'EOF'\n" + rep("print(f'{(lambda x: (x, [x]))(1)}')  # ((( `\n", 1500) + "EOF\npython3 gen.py | tee out.txt\n"
	require.Greater(t, len(script), 64<<10)
	for _, c := range []struct {
		name    string
		dialect policy.Dialect
		payload string
	}{
		{"postgres 64 KiB nested 100", policy.Postgres, q},
		{"mysql 64 KiB nested 100", policy.MySQL, q},
		{"postgres nested 150", policy.Postgres, "SELECT " + rep("abs(", 150) + "1" + rep(")", 150)},
		{"postgres 500 conditions", policy.Postgres, "SELECT 1 FROM t WHERE a = 1" + rep(" AND a = 1", 499)},
		{"postgres brackets in strings", policy.Postgres, "SELECT '" + rep("(", 100000) + "', E'\\'" + rep("(", 1000) + "'"},
		{"postgres brackets in comments", policy.Postgres, "SELECT 1 /* " + rep("( /* ( */", 1000) + " */ -- " + rep("(", 1000) + "\n"},
		{"postgres brackets in dollar quotes", policy.Postgres, "SELECT $x$" + rep("((('", 10000) + "$x$, $$ ) $$"},
		{"postgres brackets in identifiers", policy.Postgres, `SELECT 1 AS "` + rep("(", 10000) + `"`},
		{"mysql brackets in strings", policy.MySQL, `SELECT '\'` + rep("(", 10000) + `', "` + rep("+", 10000) + `"`},
		{"mysql brackets in comments", policy.MySQL, "SELECT 1 # " + rep("(", 10000) + "\n, 2 -- " + rep("(", 10000) + "\n"},
		{"shell 64 KiB heredoc script", "", script},
		{"shell nested 100", "", "echo " + rep("$(echo ", 100) + "x" + rep(")", 100)},
		{"shell brackets in quotes", "", `echo '` + rep("$(", 10000) + `' "` + rep("((", 10000) + `" $'\'` + rep("`", 1000) + `'`},
		{"shell brackets in a comment", "", "ls # " + rep("$(", 10000) + "\necho ok"},
		{"shell 200-stage pipeline", "", "cat f" + rep(" | grep -v x", 199)},
		{"shell case patterns", "", "x=$(case $a in a) echo a;; (b) echo b;; esac); echo \"$x\""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.dialect == "" {
				got := policy.ClassifyShell(c.payload)
				require.True(t, got.Parsed, "%s", got.Error)
				return
			}
			got := policy.ClassifySQL(c.dialect, c.payload)
			require.True(t, got.Parsed, "%s", got.Error)
		})
	}
}

// TestBoundsSeeCode: what the lexer treats as a string or comment must be one in the
// dialect, or nesting hidden behind a quote would reach the parser uncounted.
func TestBoundsSeeCode(t *testing.T) {
	deep := rep("(", 20000) + "1" + rep(")", 20000)
	for _, c := range []struct {
		name    string
		dialect policy.Dialect
		payload string
	}{
		// In Postgres a backslash does not escape in a standard string: the string ends.
		{"postgres standard string ends at quote", policy.Postgres, `SELECT 'a\', ` + deep},
		{"postgres doubled quote", policy.Postgres, `SELECT 'a''b', ` + deep},
		{"postgres nested comment ends", policy.Postgres, "SELECT /* /* */ */ " + deep},
		{"postgres dollar quote ends at its tag", policy.Postgres, "SELECT $a$ $b$ $a$, " + deep},
		{"postgres hash is an operator", policy.Postgres, "SELECT 1 # " + deep},
		{"mysql double dash without space is minus", policy.MySQL, "SELECT 1 --" + deep},
		{"mysql versioned comment is code", policy.MySQL, "SELECT /*!50000 " + deep + " */"},
		{"mysql escaped quote", policy.MySQL, `SELECT 'a\'', ` + deep},
		{"shell double-quoted single quote", "", `echo "'" ` + rep("$(echo ", 5000) + rep(")", 5000) + ` "'"`},
		{"shell hash inside a word", "", "echo a#b " + rep("$(", 20000) + rep(")", 20000)},
		{"shell ansi-c escaped quote", "", `echo $'\'' ` + rep("$(", 20000) + rep(")", 20000) + ` '`},
		{"shell escaped dollar before quote", "", `echo \$'\' ` + rep("$(", 20000) + rep(")", 20000) + ` '`},
		{"shell quoted heredoc ends at its line", "", "cat <<'E'\nx\nE\n" + rep("(", 20000) + rep(")", 20000)},
		{"shell arithmetic shift is no heredoc", "", "echo $((1<<2))\n" + rep("(", 20000) + rep(")", 20000)},
	} {
		t.Run(c.name, func(t *testing.T) {
			var reasons []string
			if c.dialect == "" {
				got := policy.ClassifyShell(c.payload)
				require.False(t, got.Parsed)
				require.True(t, got.Unchecked)
				reasons = got.Reasons()
			} else {
				got := policy.ClassifySQL(c.dialect, c.payload)
				require.False(t, got.Parsed)
				require.True(t, got.Unchecked)
				reasons = got.Reasons()
			}
			require.Len(t, reasons, 1)
			require.Contains(t, reasons[0], tooDeep)
		})
	}
}

// TestDefaultPolicyRefusesUnchecked: through the shipped policy, a payload beyond a bound is
// denied with the bound as its reason, and CEL sees it as unparsed and unchecked.
func TestDefaultPolicyRefusesUnchecked(t *testing.T) {
	set := corpusPolicy(t)
	for _, c := range []struct {
		name, tool, arg, payload, rule, reason string
	}{
		{"postgres plus chain", "execute_sql", "query", "SELECT 1" + rep("+1", 50000), "sql-unparsable", "sql statement too deeply nested to check (depth > 1000)"},
		{"mysql union chain", "execute_mysql", "query", "SELECT 1" + rep(" UNION ALL SELECT 1", 5000), "sql-unparsable", "sql statement too deeply nested to check (depth > 1000)"},
		{"postgres huge", "execute_sql", "query", "SELECT '" + rep("x", 300<<10) + "'", "sql-unparsable", "sql statement too large to check (307209 bytes > 262144)"},
		{"shell substitution", "run_command", "command", "echo " + rep("$(echo ", 10000) + rep(")", 10000), "shell-dangerous", "shell command too deeply nested to check (depth > 1000)"},
		{"psql inside shell", "run_command", "command", "psql -c 'SELECT " + rep("(", 5000) + rep(")", 5000) + "'", "shell-dangerous", "sql statement too deeply nested to check (depth > 1000)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := set.Decide(policy.Input{Msg: call(t, c.tool, map[string]any{c.arg: c.payload})})
			require.Equal(t, policy.Deny, d.Action)
			require.Equal(t, c.rule, d.Rule)
			require.Equal(t, c.reason, d.Reason)
		})
	}
	probe, err := policy.Compile([]byte("version: 1\ndefault: allow\ntools: {q: {sql: {argument: s, dialect: mysql}}}\n" +
		"rules:\n  - {name: unchecked, when: 'request.sql.unchecked && !request.sql.parsed && !shell(\"ls\").unchecked', action: deny}\n"))
	require.NoError(t, err)
	d := probe.Decide(policy.Input{Msg: call(t, "q", map[string]any{"s": "SELECT " + rep("(", 2000) + "1" + rep(")", 2000)})})
	require.Equal(t, policy.Deny, d.Action, "%+v", d)
	d = probe.Decide(policy.Input{Msg: call(t, "q", map[string]any{"s": "SELECT 1"})})
	require.Equal(t, policy.Allow, d.Action, "%+v", d)
}

// TestDeepArgumentsFailClosed: tool arguments nested too deep to decode must not make the
// SQL or shell argument vanish (it would then be absent, and allowed); they are refused as
// unchecked, and nothing recursive ever walks them.
func TestDeepArgumentsFailClosed(t *testing.T) {
	set := corpusPolicy(t)
	for _, c := range []struct {
		name, tool, args, reason string
	}{
		{"100k nested arrays beside sql", "execute_sql", `{"query":"DROP TABLE t","x":` + rep("[", 100000) + rep("]", 100000) + `}`, "tool arguments too deeply nested to check (depth > 128)"},
		{"nested just past the protocol limit", "run_command", `{"command":"rm -rf /","x":` + rep(`{"a":`, 200) + "1" + rep("}", 200) + `}`, "tool arguments too deeply nested to check (depth > 128)"},
		{"undecodable", "execute_sql", `{"query":"SELECT 1",}`, "tool arguments could not be decoded"},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Built directly: the protocol parser refuses such messages before the policy.
			m := &mcp.Message{Method: "tools/call", Tool: c.tool, Arguments: json.RawMessage(c.args)}
			d := set.Decide(policy.Input{Msg: m})
			require.Equal(t, policy.Deny, d.Action, "%+v", d)
			require.Contains(t, d.Reason, c.reason)
		})
	}
	// Within the bound the arguments reach conditions as before.
	m := &mcp.Message{Method: "tools/call", Tool: "execute_sql", Arguments: json.RawMessage(`{"query":"SELECT 1","x":` + rep("[", 100) + rep("]", 100) + `}`)}
	require.Equal(t, policy.Allow, set.Decide(policy.Input{Msg: m}).Action)
}
