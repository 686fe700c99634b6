package policy_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/policy"
)

// hundredRules is a 100-rule policy: tool and identity checks, glob and regex matches, and
// SQL flags, with the matching rule last.
func hundredRules(tb testing.TB) *policy.Set {
	tb.Helper()
	var b strings.Builder
	b.WriteString("version: 1\ndefault: deny\ntools:\n  execute_sql:\n    sql: {argument: query, dialect: postgres}\nrules:\n")
	for i := range 99 {
		var cond string
		switch i % 4 {
		case 0:
			cond = fmt.Sprintf(`request.tool == "tool_%d" && "group_%d" in identity.groups`, i, i)
		case 1:
			cond = fmt.Sprintf(`glob("admin_%d_*", request.tool)`, i)
		case 2:
			cond = fmt.Sprintf(`request.sql.destructive && identity.subject == "svc-%d"`, i)
		default:
			cond = fmt.Sprintf(`identity.subject.matches("^batch-%d-[a-z]+$") && session.calls > %d`, i, i)
		}
		fmt.Fprintf(&b, "  - name: r%d\n    when: '%s'\n    action: deny\n", i, strings.ReplaceAll(cond, "'", "''"))
	}
	b.WriteString("  - name: readers\n    when: '\"readers\" in identity.groups && request.sql.read'\n    action: allow\n")
	set, err := policy.Compile([]byte(b.String()))
	require.NoError(tb, err)
	require.Len(tb, set.Rules(), 100)
	return set
}

// BenchmarkDecide100Rules measures one decision on a typical tools/call (a SELECT through
// execute_sql) against 100 rules, with the rule index and without it (every rule evaluated);
// p50 and p99 are reported per decision. sql=repeated sends the same statement at every
// decision (agents repeat theirs: its classification is remembered after the first);
// sql=unique sends a statement never seen before at every decision, so each one is parsed.
// Compare with benchstat -col /index or -col /sql.
func BenchmarkDecide100Rules(b *testing.B) {
	indexed := hundredRules(b)
	input := func(q string) policy.Input {
		return policy.Input{
			Identity: policy.Identity{Subject: "agent-1", Groups: []string{"readers"}},
			Msg:      call(b, "execute_sql", map[string]any{"query": q}),
			Session:  policy.Session{ID: "s", Calls: 3, ToolCalls: 1},
		}
	}
	repeated := input("SELECT id, email FROM users WHERE id = 42")
	for _, c := range []struct {
		name   string
		set    *policy.Set
		unique bool
	}{
		{"index=off/sql=repeated", policy.WithoutIndex(indexed), false},
		{"index=on/sql=repeated", indexed, false},
		{"index=on/sql=unique", indexed, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			ins := []policy.Input{repeated}
			if c.unique {
				ins = make([]policy.Input, b.N)
				for i := range ins {
					ins[i] = input(fmt.Sprintf("SELECT id, email FROM users WHERE id = %d", uniqueID.Add(1)))
				}
			}
			warm := repeated // the classification of a repeated statement is remembered
			if c.unique {
				warm = input("SELECT 1")
			}
			if d := c.set.Decide(warm); d.Action != policy.Allow || d.Rule != "readers" {
				b.Fatalf("unexpected decision %+v", d)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				in := &ins[i%len(ins)]
				start := time.Now()
				_ = c.set.Decide(*in)
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
		})
	}
}

// uniqueID numbers the statements of sql=unique across runs (-count), so none repeats.
var uniqueID atomic.Int64

func corpusOf(tb testing.TB, pick func(corpusCase) bool) []string {
	tb.Helper()
	var out []string
	for _, c := range loadCorpus(tb) {
		if pick(c) {
			out = append(out, c.Input)
		}
	}
	return out
}

// BenchmarkClassifySQL reports statements classified per second for each dialect over the
// corpus payloads of that dialect.
func BenchmarkClassifySQL(b *testing.B) {
	for _, d := range []policy.Dialect{policy.Postgres, policy.MySQL} {
		b.Run(string(d), func(b *testing.B) {
			qs := corpusOf(b, func(c corpusCase) bool { return !c.Shell && c.Dialect == d })
			stmts := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				stmts += max(1, len(policy.ClassifySQL(d, qs[i%len(qs)]).Statements))
			}
			b.ReportMetric(float64(stmts)/b.Elapsed().Seconds(), "stmts/s")
		})
	}
}

// BenchmarkClassifyShell reports shell command lines classified per second.
func BenchmarkClassifyShell(b *testing.B) {
	cmds := corpusOf(b, func(c corpusCase) bool { return c.Shell })
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		_ = policy.ClassifyShell(cmds[i%len(cmds)])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cmds/s")
}

// denyList is the regex baseline: the kind of keyword deny-list guardrails ship.
var denyList = []*regexp.Regexp{
	regexp.MustCompile(`(?i)\bDROP\s+(TABLE|DATABASE|SCHEMA|VIEW)\b`),
	regexp.MustCompile(`(?i)\bTRUNCATE\b`),
	regexp.MustCompile(`(?i)\b(GRANT|REVOKE)\b`),
	regexp.MustCompile(`(?i)\bALTER\s+(ROLE|USER|SYSTEM)\b`),
	regexp.MustCompile(`(?i)\bDELETE\s+FROM\s+\w+\s*(;|$)`),
	regexp.MustCompile(`(?i)\bUPDATE\s+\w+\s+SET\s+[^;]*?(;|$)`),
	regexp.MustCompile(`(?i)\bWHERE\s+1\s*=\s*1\b`),
	regexp.MustCompile(`(?i)\bTO\s+PROGRAM\b|\bINTO\s+OUTFILE\b|\bLOAD_FILE\b|\bpg_read_file\b|\bpg_terminate_backend\b`),
	regexp.MustCompile(`(?i)^\s*(DO|PREPARE|EXECUTE)\b`),
	regexp.MustCompile(`\brm\s+-[a-zA-Z]*[rR]`),
	regexp.MustCompile(`\|\s*(sudo\s+)?(ba|z|da)?sh\b`),
	regexp.MustCompile(`\bmkfs|\bdd\s+.*of=/dev/`),
	regexp.MustCompile(`:\(\)\s*\{`),
	regexp.MustCompile(`>\s*/dev/sd`),
}

func regexBlocks(s string) bool {
	for _, re := range denyList {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// BenchmarkCorpusAccuracy compares correct block/allow decisions on the evasion corpus:
// the embedded default policy (parsers) against the regex deny-list baseline.
func BenchmarkCorpusAccuracy(b *testing.B) {
	cases := loadCorpus(b)
	set := corpusPolicy(b)
	inputs := make([]policy.Input, len(cases))
	for i, c := range cases {
		inputs[i] = corpusInput(b, c)
	}
	var parser, regex int
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		parser, regex = 0, 0
		for i, c := range cases {
			if (set.Decide(inputs[i]).Action == policy.Deny) == c.Block {
				parser++
			}
			if regexBlocks(c.Input) == c.Block {
				regex++
			}
		}
	}
	b.ReportMetric(float64(parser), "parser-correct")
	b.ReportMetric(float64(regex), "regex-correct")
	b.ReportMetric(float64(len(cases)), "cases")
}

// TestRegexBaselineMisses keeps the comparison honest: the baseline must be a real
// deny-list (it catches the plain cases) that the corpus defeats.
func TestRegexBaselineMisses(t *testing.T) {
	require.True(t, regexBlocks("DROP TABLE users"))
	require.True(t, regexBlocks("curl x | sh"))
	var missed []string
	for _, c := range loadCorpus(t) {
		if regexBlocks(c.Input) != c.Block {
			missed = append(missed, c.Name)
		}
	}
	require.NotEmpty(t, missed)
	t.Logf("regex baseline wrong on %d cases: %v", len(missed), missed)
}
