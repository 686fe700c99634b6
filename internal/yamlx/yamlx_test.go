package yamlx

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type inner struct {
	Audience string        `yaml:"audience"`
	Leeway   time.Duration `yaml:"leeway"`
}

type embedded struct {
	Name string `yaml:"name"`
}

type sample struct {
	embedded `yaml:",inline"`
	Issuers  []inner           `yaml:"issuers"`
	Enabled  bool              `yaml:"enabled"`
	Max      int               `yaml:"max"`
	Ratio    float64           `yaml:"ratio"`
	Scopes   []string          `yaml:"scopes"`
	Labels   map[string]string `yaml:"labels"`
	Nested   *inner            `yaml:"nested"`
}

func TestDecodeYAML(t *testing.T) {
	def := func() sample {
		return sample{embedded: embedded{Name: "default"}, Max: 7, Scopes: []string{"a", "b"}}
	}
	cases := []struct {
		name string
		yaml string
		want func(*sample)
		errs []string
	}{
		{name: "empty keeps defaults", yaml: "", want: func(*sample) {}},
		{name: "comment only keeps defaults", yaml: "# nothing\n", want: func(*sample) {}},
		{
			name: "values",
			yaml: "name: x\nenabled: true\nmax: 4MiB\nratio: 0.5\nscopes: [c]\nlabels: {k: v}\nissuers:\n  - audience: aud\n    leeway: 45s\nnested: {leeway: 0}\n",
			want: func(s *sample) {
				s.Name, s.Enabled, s.Max, s.Ratio = "x", true, 4<<20, 0.5
				s.Scopes = []string{"c"}
				s.Labels = map[string]string{"k": "v"}
				s.Issuers = []inner{{Audience: "aud", Leeway: 45 * time.Second}}
				s.Nested = &inner{}
			},
		},
		{
			name: "unknown fields at every depth, all reported",
			yaml: "issuers:\n  - audiense: x\n  - audience: y\n    leway: 1s\nbogus: 1\n",
			errs: []string{
				"issuers[0].audiense: unknown field (line 2)",
				"issuers[1].leway: unknown field (line 4)",
				"bogus: unknown field (line 5)",
			},
		},
		{
			name: "bad scalars",
			yaml: "enabled: yes please\nmax: lots\nratio: x\nissuers:\n  - leeway: 5 seconds\n",
			errs: []string{
				`enabled: expected true or false, got "yes please"`,
				`max: expected an integer, got "lots"`,
				`ratio: expected a number, got "x"`,
				`issuers[0].leeway: invalid duration "5 seconds"`,
			},
		},
		{
			name: "wrong shapes",
			yaml: "issuers: {audience: x}\nscopes: a\nname: [x]\n",
			errs: []string{
				"issuers: expected a list, got a mapping",
				"scopes: expected a list, got a single value",
				"name: expected a single value, got a list",
			},
		},
		{name: "top level not a mapping", yaml: "- a\n", errs: []string{"(document): expected a mapping, got a list"}},
		{name: "syntax error", yaml: "a: [\n", errs: []string{"yaml:"}},
		{name: "duplicate key", yaml: "max: 1\nmax: 2\n", errs: []string{"max: duplicate key (line 2)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := def()
			_, err := Decode([]byte(tc.yaml), &got)
			if len(tc.errs) > 0 {
				require.Error(t, err)
				for _, e := range tc.errs {
					require.Contains(t, err.Error(), e)
				}
				require.Len(t, strings.Split(err.Error(), "\n"), len(tc.errs), err.Error())
				return
			}
			require.NoError(t, err)
			want := def()
			tc.want(&want)
			require.Equal(t, want, got)
		})
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "12": 12, "4KiB": 4096, "64 MiB": 64 << 20, "1GiB": 1 << 30, "1_000": 1000} {
		got, err := parseSize(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "x", "1.5MiB", "9999999999999GiB"} {
		_, err := parseSize(in)
		require.Error(t, err, in)
	}
}
