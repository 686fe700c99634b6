package app

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// commandPaths are every command and subcommand of the CLI; README's command table lists
// the same (TestReadmeListsEveryCommand).
var commandPaths = [][]string{
	{"serve"},
	{"config"},
	{"config", "validate"},
	{"config", "default"},
	{"recordings"},
	{"recordings", "ls"},
	{"recordings", "play"},
	{"recordings", "verify"},
	{"recordings", "export"},
	{"recordings", "reindex"},
	{"recordings", "unseal"},
	{"token"},
	{"policy"},
	{"policy", "test"},
	{"policy", "explain"},
	{"policy", "replay"},
	{"approvals"},
	{"approvals", "ls"},
	{"approvals", "approve"},
	{"approvals", "deny"},
	{"envoy"},
	{"envoy", "check"},
	{"version"},
}

// TestHelpEveryCommand: -h, -help and --help on every command path print its usage and
// succeed, wherever the flag stands, and touch nothing on disk.
func TestHelpEveryCommand(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, path := range commandPaths {
		for _, flag := range []string{"-h", "-help", "--help"} {
			variants := [][]string{append(append([]string{}, path...), flag)}
			if len(path) == 2 {
				// After a positional argument too: mcpguard policy test p.yaml --help.
				variants = append(variants, append(append([]string{}, path...), "x.yaml", flag))
			}
			for _, args := range variants {
				t.Run(strings.Join(args, " "), func(t *testing.T) {
					var out, errb bytes.Buffer
					err := Run(t.Context(), args, &out, &errb)
					require.NoError(t, err, "stderr: %s", errb.String())
					require.Contains(t, strings.ToLower(out.String()+errb.String()), "usage", "prints usage")
				})
			}
		}
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "help created files")
}

func TestEnvoyCheck(t *testing.T) {
	var out, errb bytes.Buffer
	require.NoError(t, Run(t.Context(), []string{"envoy", "check", "../../envoy/envoy.yaml"}, &out, &errb))
	require.Contains(t, out.String(), "envoy.yaml: ok")

	errb.Reset()
	err := Run(t.Context(), []string{"envoy", "check", "../../envoy/bootstrap/testdata/bad_proc_failure_mode_allow.yaml"}, &out, &errb)
	require.Error(t, err)
	require.Contains(t, errb.String(), "(envoy.filters.http.ext_proc).typed_config.failure_mode_allow: must be false")

	require.ErrorIs(t, Run(t.Context(), []string{"envoy", "check"}, &out, &errb), ErrUsage)
	require.ErrorIs(t, Run(t.Context(), []string{"envoy", "lint", "x"}, &out, &errb), ErrUsage)
}

// TestReadmeListsEveryCommand: the README's command table names every command path.
func TestReadmeListsEveryCommand(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	readme := string(data)
	start := strings.Index(readme, "## Commands")
	require.GreaterOrEqual(t, start, 0)
	table := readme[start:]
	table = table[:strings.Index(table[3:], "\n## ")+3]
	for _, path := range commandPaths {
		if len(path) == 1 && slicesContainsPrefix(commandPaths, path[0]) {
			continue // a group: its subcommands are listed
		}
		require.Contains(t, table, "| `mcpguard "+strings.Join(path, " "), "README command table lacks %v", path)
	}
}

// slicesContainsPrefix reports whether some path has cmd followed by a subcommand.
func slicesContainsPrefix(paths [][]string, cmd string) bool {
	for _, p := range paths {
		if len(p) > 1 && p[0] == cmd {
			return true
		}
	}
	return false
}

// TestReadOnlyCommandsCreateNothing: reading recordings without a config (the embedded
// default, data under ./data) creates no directory.
func TestReadOnlyCommandsCreateNothing(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	var out, errb bytes.Buffer
	require.NoError(t, Run(t.Context(), []string{"recordings", "ls"}, &out, &errb), errb.String())
	require.Contains(t, out.String(), "SESSION")
	require.Error(t, Run(t.Context(), []string{"recordings", "play", "nope"}, &out, &errb))
	require.Error(t, Run(t.Context(), []string{"recordings", "export", "nope"}, &out, &errb))
	require.Error(t, Run(t.Context(), []string{"config", "validate", "missing.yaml"}, &out, &errb))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "read-only commands created files")
}
