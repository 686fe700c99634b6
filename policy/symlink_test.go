package policy_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/mcp"
	"github.com/mcpguard/mcpguard/policy"
)

// configMapDir lays out a directory the way the kubelet mounts a ConfigMap volume (its
// AtomicWriter): the data lives in a timestamped directory, `..data` is a symlink to it, and
// each key is a symlink through `..data`.
type configMapDir struct {
	t    *testing.T
	root string
	gen  int
}

func newConfigMapDir(t *testing.T, key, content string) *configMapDir {
	t.Helper()
	d := &configMapDir{t: t, root: t.TempDir()}
	d.swap(key, content)
	require.NoError(t, os.Symlink(filepath.Join("..data", key), filepath.Join(d.root, key)))
	return d
}

// swap publishes new content as the kubelet does: write a new timestamped directory, point
// `..data_tmp` at it, rename `..data_tmp` over `..data` (one atomic rename), remove the old
// directory. The key's own symlink never changes.
func (d *configMapDir) swap(key, content string) {
	d.t.Helper()
	d.gen++
	ts := "..2026_12_02_10_00_0" + string(rune('0'+d.gen)) + ".123456789"
	require.NoError(d.t, os.Mkdir(filepath.Join(d.root, ts), 0o755))
	require.NoError(d.t, os.WriteFile(filepath.Join(d.root, ts, key), []byte(content), 0o644))
	old, _ := os.Readlink(filepath.Join(d.root, "..data"))
	tmp := filepath.Join(d.root, "..data_tmp")
	require.NoError(d.t, os.Symlink(ts, tmp))
	require.NoError(d.t, os.Rename(tmp, filepath.Join(d.root, "..data")))
	if old != "" {
		require.NoError(d.t, os.RemoveAll(filepath.Join(d.root, old)))
	}
}

// TestSourceFollowsConfigMapSwap runs the reloader (Source.Run) on a policy mounted the way
// Kubernetes mounts a ConfigMap, and swaps the content twice with the kubelet's atomic symlink
// swap: a good policy takes effect, a broken one leaves the last good policy in force.
func TestSourceFollowsConfigMapSwap(t *testing.T) {
	dir := newConfigMapDir(t, "policy.yaml", "version: 1\ndefault: allow\n")
	reg := prometheus.NewRegistry()
	src, err := policy.Open(policy.Config{File: filepath.Join(dir.root, "policy.yaml"), ReloadInterval: 100 * time.Millisecond, SessionTTL: time.Hour}, nil, reg)
	require.NoError(t, err)
	ctx := t.Context()
	done := make(chan struct{})
	go func() { defer close(done); src.Run(ctx) }()
	t.Cleanup(func() { <-done })

	ping := policy.Input{Msg: &mcp.Message{Method: "ping"}}
	require.Equal(t, policy.Allow, src.Current().Decide(ping).Action)

	dir.swap("policy.yaml", "version: 1\ndefault: deny\n")
	require.Eventually(t, func() bool { return src.Current().Decide(ping).Action == policy.Deny },
		10*time.Second, 20*time.Millisecond, "the swapped policy never took effect")
	require.InDelta(t, 1, reloads(t, reg, "ok"), 0)

	good := src.Current()
	dir.swap("policy.yaml", "version: 1\n")
	require.Eventually(t, func() bool { return reloads(t, reg, "error") == 1 },
		10*time.Second, 20*time.Millisecond, "the broken policy was never read")
	require.Same(t, good, src.Current(), "a broken policy must not replace the last good one")
}
