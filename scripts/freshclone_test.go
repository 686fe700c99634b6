package scripts

import (
	"os/exec"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFreshCloneMakeRun clones the committed HEAD into a temp dir and runs `make run` until
// /readyz answers, with this machine's module and build caches (fresh-clone.sh --cold and
// --test measure the cold and full paths; they take minutes). It proves the newcomer's first
// command works from a clone, on free ports, and reports how long it took.
func TestFreshCloneMakeRun(t *testing.T) {
	if testing.Short() {
		t.Skip("clones and builds the repository")
	}
	for _, tool := range []string{"git", "make", "curl"} {
		_, err := exec.LookPath(tool)
		require.NoError(t, err, "fresh-clone.sh needs %s", tool)
	}
	if err := exec.CommandContext(t.Context(), "git", "rev-parse", "--verify", "HEAD").Run(); err != nil {
		t.Skip("not a git checkout with a commit: nothing to clone")
	}
	cmd := exec.CommandContext(t.Context(), "./fresh-clone.sh", "--timeout", "900")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	m := regexp.MustCompile(`make run ready: ([0-9.]+)s \(warm caches\)`).FindSubmatch(out)
	require.NotNil(t, m, "%s", out)
	secs, err := strconv.ParseFloat(string(m[1]), 64)
	require.NoError(t, err)
	require.Positive(t, secs)
	t.Logf("%s", out)
}
