package policy_test

import (
	"os"
	"strings"
	"testing"

	"github.com/mcpguard/mcpguard/policy"
)

// groundTruthCorpus reads the statements of a ground-truth corpus (e2e/groundtruth), one
// per line as expect<TAB>sql[<TAB>note].
func groundTruthCorpus(tb testing.TB, name string) []string {
	tb.Helper()
	b, err := os.ReadFile("../e2e/groundtruth/testdata/" + name)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.SplitN(line, "\t", 3)
		if len(parts) >= 2 {
			out = append(out, strings.ReplaceAll(parts[1], `\n`, "\n"))
		}
	}
	if len(out) < 300 {
		tb.Fatalf("%s: %d statements", name, len(out))
	}
	return out
}

// BenchmarkClassifyGroundTruth classifies every statement of the ground-truth corpora;
// stmts/s is statements per second (per core with -cpu 1).
func BenchmarkClassifyGroundTruth(b *testing.B) {
	for _, c := range []struct {
		d    policy.Dialect
		file string
	}{{policy.Postgres, "postgres.sql"}, {policy.MySQL, "mysql.sql"}} {
		qs := groundTruthCorpus(b, c.file)
		b.Run(string(c.d), func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				for _, q := range qs {
					_ = policy.ClassifySQL(c.d, q)
				}
				n += len(qs)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "stmts/s")
		})
	}
}
