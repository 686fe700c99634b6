package main

import (
	"bytes"
	"regexp"
	"strings"
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
	require.Regexp(t, `JSON by shape: mixed [0-9.]+  logs [0-9.]+  html [0-9.]+  markdown [0-9.]+  base64 [0-9.]+  numeric [0-9.]+  structured [0-9.]+`, s)
	require.Regexp(t, `by shape: mixed (\d+)/(\d+), logs (\d+)/(\d+)`, s)
	require.NotRegexp(t, ` (\d+)/(\d+)`, missing(s), "every type and every shape at 100%%")
	require.Regexp(t, `throughput \(MB per CPU-second, best of 1\): JSON [0-9.]+  SSE events [0-9.]+  SSE hold-back [0-9.]+`, s)
}

// missing returns the "found/planted" counts of s where found is less than planted.
func missing(s string) string {
	var out []string
	for _, m := range regexp.MustCompile(` (\d+)/(\d+)`).FindAllStringSubmatch(s, -1) {
		if m[1] != m[2] {
			out = append(out, m[0])
		}
	}
	return strings.Join(out, ",")
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{{"-size", "0MB"}, {"-size", "x"}, {"-rounds", "0"}, {"-results", "5"}, {"-size", "1024MB"}} {
		require.Error(t, run(args, &bytes.Buffer{}), "%v", args)
	}
}
