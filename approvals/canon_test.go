package approvals

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCanonical(t *testing.T) {
	tests := []struct {
		name, in, want string
		err            bool
	}{
		{name: "empty is null", in: "", want: "null"},
		{name: "sorted keys", in: `{"b":1,"a":{"d":true,"c":null}}`, want: `{"a":{"c":null,"d":true},"b":1}`},
		{name: "whitespace", in: " {\n \"q\" : [ 1 , 2.50 , \"x\" ] } ", want: `{"q":[1,2.50,"x"]}`},
		{name: "escapes normalised", in: `{"s":"\u0041<>&\u00e9"}`, want: `{"s":"A<>&é"}`},
		{name: "duplicate key", in: `{"a":1,"a":2}`, err: true},
		{name: "nested duplicate", in: `{"x":[{"k":1,"k":1}]}`, err: true},
		{name: "trailing data", in: `{} {}`, err: true},
		{name: "invalid", in: `{"a":}`, err: true},
		{name: "invalid utf8", in: "\"\xff\"", err: true},
		// The message parser accepts 128 levels; a call nested 100 deep can reach policy and
		// must be holdable.
		{name: "deep as the parser allows", in: strings.Repeat("[", 100) + strings.Repeat("]", 100), want: strings.Repeat("[", 100) + strings.Repeat("]", 100)},
		{name: "too deep", in: strings.Repeat("[", 140) + strings.Repeat("]", 140), err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Canonical([]byte(tc.in))
			if tc.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, string(got))
		})
	}
}

func FuzzCanonical(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":2}`, `[1,"x",null,true]`, `{"a":{"a":{"a":[]}}}`, `"\u00e9"`, `{"a":1,"a":1}`, `1e5`, ``, `{"_meta":{"progressToken":[1],"x":1},"name":"n"}`, `{"_meta":7}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := Canonical(in)
		if err != nil {
			return
		}
		require.True(t, json.Valid(c), "canonical form is valid JSON")
		again, err := Canonical(c)
		require.NoError(t, err)
		require.Equal(t, string(c), string(again), "canonical form is a fixed point")
		require.True(t, json.Valid(c))
		b, err := Binding(in)
		require.NoError(t, err, "what is canonical binds")
		require.True(t, json.Valid(b))
		again, err = Binding(b)
		require.NoError(t, err)
		require.Equal(t, string(b), string(again), "a binding is a fixed point")
	})
}

func TestBinding(t *testing.T) {
	const base = `{"name":"deploy","arguments":{"env":"prod","version":"1.2.3"}}`
	bound, err := Binding([]byte(base))
	require.NoError(t, err)
	require.JSONEq(t, base, string(bound))
	require.True(t, strings.HasPrefix(string(bound), `{"arguments":`), "keys sorted: %s", bound)
	same := []string{
		` { "arguments" : {"version":"1.2.3","env":"prod"}, "name":"deploy" } `,
		`{"name":"deploy","arguments":{"env":"prod","version":"1.2.3"},"_meta":{"progressToken":"p-1"}}`,
		`{"_meta":{"progressToken":7},"name":"deploy","arguments":{"env":"prod","version":"1.2.3"}}`,
	}
	for _, in := range same {
		got, err := Binding([]byte(in))
		require.NoError(t, err)
		if strings.Contains(in, "_meta") {
			require.JSONEq(t, `{"_meta":{},"name":"deploy","arguments":{"env":"prod","version":"1.2.3"}}`, string(got), "only the progress token is left out")
			continue
		}
		require.Equal(t, string(bound), string(got), in)
	}
	differs := []string{
		`{"name":"deploy","arguments":{"env":"prod","version":"1.2.3"},"Arguments":{"env":"dev"}}`,
		`{"name":"deploy","arguments":{"env":"prod","version":"1.2.3"},"task":{"ttl":60000}}`,
		`{"name":"deploy","arguments":{"env":"prod","version":"1.2.3","force":true}}`,
		`{"name":"deploy","arguments":{"env":"prod","version":"1.2.3"},"_meta":{"dryRun":false}}`,
		`{"name":"deploy","arguments":{"env":"prod","version":"1.2.3"},"_meta":{"ProgressToken":"p"}}`,
		`{"name":"deploy","arguments":{"env":"prod","version":"1.2.3","progressToken":"p"}}`,
	}
	for _, in := range differs {
		got, err := Binding([]byte(in))
		require.NoError(t, err)
		require.NotEqual(t, string(bound), string(got), in)
	}
	for _, bad := range []string{`{"_meta":{"progressToken":1,"progressToken":2}}`, `{"a":1,"a":2}`, `{"_meta":{"progressToken":` + strings.Repeat("[", 140) + strings.Repeat("]", 140) + `}}`} {
		_, err := Binding([]byte(bad))
		require.Error(t, err, bad)
	}
}
