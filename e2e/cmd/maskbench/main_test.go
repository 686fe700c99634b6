package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReport runs the measurement on a small corpus: every planted value is masked on every
// path and no near-miss is.
func TestReport(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run([]string{"-size", "1MB", "-rounds", "1", "-results", "10"}, &out))
	s := out.String()
	require.Contains(t, s, "planted values masked (100.00%); leaked on the SSE paths: map[]")
	require.Contains(t, s, "false positives: 0 of ")
	require.Regexp(t, `throughput \(MB per CPU-second, best of 1\): JSON [0-9.]+  SSE events [0-9.]+  SSE hold-back [0-9.]+`, s)
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{{"-size", "0MB"}, {"-size", "x"}, {"-rounds", "0"}, {"-results", "5"}, {"-size", "1024MB"}} {
		require.Error(t, run(args, &bytes.Buffer{}), "%v", args)
	}
}
