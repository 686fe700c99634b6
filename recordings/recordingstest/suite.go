// Package recordingstest is the contract every [recordings.Sink] must pass, and a helper
// that starts a real S3-compatible server (versitygw) for tests.
package recordingstest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/recordings"
)

// Run runs the sink contract against fresh sinks made by newSink.
func Run(t *testing.T, newSink func(t *testing.T) recordings.Sink) {
	t.Helper()
	cases := []struct {
		name string
		run  func(t *testing.T, s recordings.Sink)
	}{
		{"put then get returns the bytes", func(t *testing.T, s recordings.Sink) {
			data := []byte("segment bytes \x00\x01\xff")
			require.NoError(t, s.Put(t.Context(), "p/2025/01/02/s1/r~1/000001.jsonl.gz", data))
			got, err := s.Get(t.Context(), "p/2025/01/02/s1/r~1/000001.jsonl.gz")
			require.NoError(t, err)
			require.Equal(t, data, got)
		}},
		{"get of a missing key is not found", func(t *testing.T, s recordings.Sink) {
			_, err := s.Get(t.Context(), "p/none/manifest.json")
			require.ErrorIs(t, err, recordings.ErrNotFound)
		}},
		{"list returns the keys under a prefix, sorted", func(t *testing.T, s recordings.Sink) {
			for _, k := range []string{"a/2/x", "a/1/y", "b/1/z", "a/1/x"} {
				require.NoError(t, s.Put(t.Context(), k, []byte(k)))
			}
			got, err := s.List(t.Context(), "a/")
			require.NoError(t, err)
			require.Equal(t, []string{"a/1/x", "a/1/y", "a/2/x"}, got)
		}},
		{"dirs names the levels below a directory", func(t *testing.T, s recordings.Sink) {
			for _, k := range []string{"p/2025/01/02/s/x", "p/2025/01/03/s/y", "p/2026/02/01/s/z", "p/top"} {
				require.NoError(t, s.Put(t.Context(), k, []byte(k)))
			}
			got, err := s.Dirs(t.Context(), "p/")
			require.NoError(t, err)
			require.Equal(t, []string{"2025", "2026"}, got)
			got, err = s.Dirs(t.Context(), "p/2025/01/")
			require.NoError(t, err)
			require.Equal(t, []string{"02", "03"}, got)
			got, err = s.Dirs(t.Context(), "p/2025/01/02/s/")
			require.NoError(t, err)
			require.Empty(t, got)
			got, err = s.Dirs(t.Context(), "none/")
			require.NoError(t, err)
			require.Empty(t, got)
		}},
		{"list of an empty prefix is empty", func(t *testing.T, s recordings.Sink) {
			got, err := s.List(t.Context(), "nothing/here/")
			require.NoError(t, err)
			require.Empty(t, got)
		}},
		{"putting a key again keeps one object", func(t *testing.T, s recordings.Sink) {
			require.NoError(t, s.Put(t.Context(), "d/k", []byte("one")))
			require.NoError(t, s.Put(t.Context(), "d/k", []byte("one")))
			got, err := s.List(t.Context(), "d/")
			require.NoError(t, err)
			require.Equal(t, []string{"d/k"}, got)
			b, err := s.Get(t.Context(), "d/k")
			require.NoError(t, err)
			require.Equal(t, []byte("one"), b)
		}},
		{"concurrent puts all land", func(t *testing.T, s recordings.Sink) {
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for i := range 16 {
				wg.Go(func() {
					errs <- s.Put(t.Context(), fmt.Sprintf("c/%02d", i), bytes.Repeat([]byte{byte(i)}, 1000+i))
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			got, err := s.List(t.Context(), "c/")
			require.NoError(t, err)
			require.Len(t, got, 16)
			b, err := s.Get(t.Context(), "c/07")
			require.NoError(t, err)
			require.Len(t, b, 1007)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, newSink(t))
		})
	}
}

// errMissing explains how to get versitygw.
var errMissing = errors.New("versitygw not found in PATH, bin/ or $(go env GOPATH)/bin: run `make deps` (scripts/test-deps.sh builds it into bin/)")
