package masking

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite the expected sections of testdata/mask/*.txtar")

// archive is a txtar file: named sections "-- name --".
type archive struct {
	comment string
	files   []section
}

type section struct {
	name string
	data []byte
}

func parseArchive(b []byte) archive {
	var a archive
	lines := strings.SplitAfter(string(b), "\n")
	cur := -1
	for _, l := range lines {
		t := strings.TrimRight(l, "\n")
		if strings.HasPrefix(t, "-- ") && strings.HasSuffix(t, " --") && len(t) > 6 {
			a.files = append(a.files, section{name: t[3 : len(t)-3]})
			cur = len(a.files) - 1
			continue
		}
		if cur < 0 {
			a.comment += l
		} else {
			a.files[cur].data = append(a.files[cur].data, l...)
		}
	}
	return a
}

func (a archive) get(name string) ([]byte, bool) {
	for _, f := range a.files {
		if f.name == name {
			return f.data, true
		}
	}
	return nil, false
}

func (a *archive) set(name string, data []byte) {
	for i, f := range a.files {
		if f.name == name {
			a.files[i].data = data
			return
		}
	}
	a.files = append(a.files, section{name: name, data: data})
}

func (a archive) format() []byte {
	var b bytes.Buffer
	b.WriteString(a.comment)
	for _, f := range a.files {
		fmt.Fprintf(&b, "-- %s --\n", f.name)
		b.Write(f.data)
		if len(f.data) > 0 && f.data[len(f.data)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

func countsText(c Counts) []byte {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b bytes.Buffer
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d\n", k, c[k])
	}
	return b.Bytes()
}

// TestGolden masks the input section of every testdata/mask/*.txtar file (input.json as a
// JSON document, input.txt as text, config.yaml on top of the defaults) and compares the
// result and the counts with the expected sections. Each output must mask to itself again,
// and JSON output must stay valid.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/mask/*.txtar")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			require.NoError(t, err)
			a := parseArchive(raw)
			cfg := DefaultConfig()
			if y, ok := a.get("config.yaml"); ok {
				require.NoError(t, yaml.Unmarshal(y, &cfg))
			}
			m, err := New(cfg)
			require.NoError(t, err)
			var out []byte
			var counts Counts
			if in, ok := a.get("input.json"); ok {
				in = bytes.TrimRight(in, "\n")
				require.True(t, json.Valid(in), "input.json must be valid JSON")
				out, counts, err = m.JSON(in)
				require.NoError(t, err)
				require.True(t, json.Valid(out), "output must stay valid JSON: %s", out)
				again, c2, err := m.JSON(out)
				require.NoError(t, err)
				require.Equal(t, string(out), string(again), "masking masked output must change nothing")
				require.Empty(t, c2)
				out = append(out, '\n')
			} else {
				in, ok := a.get("input.txt")
				require.True(t, ok, "an input.json or input.txt section is required")
				out, counts = m.Text(in)
				again, c2 := m.Text(out)
				require.Equal(t, string(out), string(again), "masking masked output must change nothing")
				require.Empty(t, c2)
			}
			if *update {
				a.set("expected", out)
				a.set("counts", countsText(counts))
				require.NoError(t, os.WriteFile(file, a.format(), 0o644))
				return
			}
			want, ok := a.get("expected")
			require.True(t, ok, "no expected section: run go test -run TestGolden -update")
			// A section always ends in a newline; a finding may have eaten the input's last one.
			require.Equal(t, strings.TrimRight(string(want), "\n"), strings.TrimRight(string(out), "\n"))
			wc, _ := a.get("counts")
			require.Equal(t, string(wc), string(countsText(counts)))
		})
	}
}
