package policy_test

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/policy"
)

// shellEntry is one line of testdata/shell_corpus.txt: a command, the class it must get,
// and, for a refused command that execution cannot show destroying anything, why.
type shellEntry struct {
	Line    int
	Command string
	Class   string
	Kind    string
}

// loadShellCorpus reads testdata/shell_corpus.txt (a copy of the ground-truth corpus in
// e2e/groundtruth, which checks the two are the same).
func loadShellCorpus(tb testing.TB) []shellEntry {
	tb.Helper()
	data, err := os.ReadFile("testdata/shell_corpus.txt")
	require.NoError(tb, err)
	var out []shellEntry
	for i, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cmd, meta, ok := strings.Cut(line, " #> ")
		require.True(tb, ok, "line %d has no #> class", i+1)
		class, kind, _ := strings.Cut(meta, "; kind: ")
		out = append(out, shellEntry{Line: i + 1, Command: strings.ReplaceAll(cmd, "⏎", "\n"), Class: class, Kind: kind})
	}
	require.NotEmpty(tb, out)
	return out
}

// TestShellCorpusClasses pins the class of every corpus command; the ground-truth test in
// e2e/groundtruth runs the same commands and checks the classes against what they did.
func TestShellCorpusClasses(t *testing.T) {
	var wrong []string
	for _, e := range loadShellCorpus(t) {
		got := policy.ClassifyShell(e.Command)
		require.True(t, got.Parsed, "line %d: %s", e.Line, got.Error)
		if got.Class.String() != e.Class {
			wrong = append(wrong, e.Command+" => "+got.Class.String()+" "+strings.Join(got.Reasons(), "; "))
		}
	}
	require.Empty(t, wrong, "%d commands classified otherwise than the corpus says:\n%s", len(wrong), strings.Join(wrong, "\n"))
}
