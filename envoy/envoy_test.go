package envoy_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/envoy/bootstrap"
)

// TestBootstraps loads every deployable bootstrap in this directory strictly and checks
// mcpguard's product rules ([bootstrap.CheckFile], what `mcpguard envoy check` runs).
func TestBootstraps(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			b, err := bootstrap.Load(file)
			require.NoError(t, err)
			require.Empty(t, bootstrap.Warnings(b), "deprecated fields")
			require.NoError(t, bootstrap.CheckFile(file))
		})
	}
}
