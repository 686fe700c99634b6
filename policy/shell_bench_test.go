package policy_test

import (
	"os"
	"strings"
	"testing"

	"github.com/mcpguard/mcpguard/policy"
)

// shellCorpusCommands are the commands of testdata/shell_corpus.txt, without their classes.
func shellCorpusCommands(tb testing.TB) []string {
	tb.Helper()
	data, err := os.ReadFile("testdata/shell_corpus.txt")
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cmd, _, _ := strings.Cut(line, " #> ")
		out = append(out, strings.ReplaceAll(cmd, "⏎", "\n"))
	}
	return out
}

// BenchmarkClassifyShellCorpus classifies every command of the shell ground-truth corpus
// once per iteration and reports commands classified per second.
func BenchmarkClassifyShellCorpus(b *testing.B) {
	cmds := shellCorpusCommands(b)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for _, c := range cmds {
			_ = policy.ClassifyShell(c)
		}
	}
	b.ReportMetric(float64(b.N*len(cmds))/b.Elapsed().Seconds(), "cmds/s")
}
