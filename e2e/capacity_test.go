package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/e2e/soak"
)

// TestCapacityShort runs `make capacity`'s measurement for one second per class, for the
// allowed class and the no-op floor, with profiles: the tool keeps working, every call
// comes back as expected, and both servers spend CPU on it.
func TestCapacityShort(t *testing.T) {
	require.NoError(t, suite.err, "the suite could not start mcpguard")
	var log strings.Builder
	prof := t.TempDir()
	o := soak.Options{Root: suite.root, Bin: suiteBin(), Dir: t.TempDir(), Log: &log, Profile: prof, Classes: []string{"allowed", "floor"}}
	rows, err := soak.Capacity(t.Context(), o, time.Second, 4)
	require.NoError(t, err, log.String())
	require.Len(t, rows, 2)
	for _, r := range rows {
		require.Positive(t, r.Calls, r.Class)
		require.Zero(t, r.Errors, r.Class)
		require.Positive(t, r.CPU, r.Class)
	}
	require.Equal(t, "allowed", rows[0].Class)
	require.Equal(t, "floor", rows[1].Class)
	st, err := os.Stat(filepath.Join(prof, "allowed.pprof"))
	require.NoError(t, err, "mcpguard's profile of the allowed class")
	require.Positive(t, st.Size())
	_, err = os.Stat(filepath.Join(prof, "floor.pprof"))
	require.ErrorIs(t, err, os.ErrNotExist, "nullguard serves no profiles")
	var out strings.Builder
	soak.PrintCapacity(&out, rows)
	t.Log("\n" + out.String())
}

// TestVersusShort runs `make compare`'s capacity measurement for one round of one second:
// the build against itself and the floor, each with its own servers.
func TestVersusShort(t *testing.T) {
	require.NoError(t, suite.err, "the suite could not start mcpguard")
	var log strings.Builder
	o := soak.Options{Root: suite.root, Bin: suiteBin(), Dir: t.TempDir(), Log: &log, Classes: []string{"allowed"}}
	rows, err := soak.Versus(t.Context(), o, suiteBin(), time.Second, 1, 4)
	require.NoError(t, err, log.String())
	require.Len(t, rows, 3)
	for i, name := range []string{"allowed · base", "allowed · head", "allowed · floor"} {
		require.Equal(t, name, rows[i].Class)
		require.Positive(t, rows[i].Calls, name)
		require.Positive(t, rows[i].CPU, name)
	}
	var out strings.Builder
	soak.PrintVersus(&out, rows)
	require.Contains(t, out.String(), "| allowed · base | ")
	require.Contains(t, out.String(), " | 1.00 | ", "the first build of a class is the reference")
	t.Log("\n" + out.String())
}
