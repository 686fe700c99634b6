package bootstrap_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/e2e/bootstrap"
)

func TestLoadGood(t *testing.T) {
	b, err := bootstrap.Load(filepath.Join("testdata", "good.yaml"))
	require.NoError(t, err)
	require.Len(t, b.GetStaticResources().GetClusters(), 3)
	require.Empty(t, bootstrap.Warnings(b))
}
