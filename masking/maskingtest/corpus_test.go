package maskingtest

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCorpus(t *testing.T) {
	a, b := Corpus(7, 2<<20), Corpus(7, 2<<20)
	require.Equal(t, a, b, "the same seed gives the same corpus")
	n, types := 0, map[string]bool{}
	for _, d := range a {
		n += len(d.JSON)
		require.True(t, json.Valid(d.JSON))
		for _, v := range d.Planted {
			types[v.Type] = true
			require.Contains(t, string(d.JSON), mustQuote(t, v.Text), "a planted value is in its document")
		}
	}
	require.GreaterOrEqual(t, n, 1<<20)
	require.Len(t, types, len(Types()), "every type is planted")
	for _, shape := range Shapes {
		types := map[string]bool{}
		for _, d := range ShapeCorpus(3, shape, 5<<20) {
			require.Equal(t, shape, d.Shape)
			require.True(t, json.Valid(d.JSON))
			for _, v := range d.Planted {
				types[v.Type] = true
			}
		}
		require.Len(t, types, len(Types()), "every type is planted in shape %s", shape)
	}
	require.NotEqual(t, a[0].JSON, Corpus(8, 1)[0].JSON)
	require.InDelta(t, 20<<10, len(Result(1, 20<<10).JSON), 4<<10)
}

func mustQuote(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	require.NoError(t, err)
	return string(b[1 : len(b)-1])
}
