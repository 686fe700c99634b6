package extproc

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func scanEnd(body []byte, cut int) int {
	var s valueEnd
	if i := s.feed(body[:cut]); i >= 0 {
		return i
	}
	if i := s.feed(body[cut:]); i >= 0 {
		return cut + i
	}
	return -1
}

func TestValueEnd(t *testing.T) {
	cases := []struct {
		body string
		end  int
	}{
		{`{"a":1}`, 7},
		{" \n[1,[2],{}]  ", 12},
		{`{"s":"}]\"{"}x`, 13},
		{`{"s":"\\"}`, 10},
		{`{"a":[1,2}`, -1},
		{`"str"`, -1},
		{`123`, -1},
		{``, -1},
	}
	for _, tc := range cases {
		for cut := 0; cut <= len(tc.body); cut++ {
			require.Equal(t, tc.end, scanEnd([]byte(tc.body), cut), "%q cut at %d", tc.body, cut)
		}
	}
}

// FuzzValueEnd: wherever the body is cut into chunks, the end is found at the same place, and
// for a body starting with a valid JSON object or array it is where that value ends.
func FuzzValueEnd(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"result":{"text":"a]}\"b"}}`), uint16(9))
	f.Add([]byte(`[{"a":[]},{"b":"\\"}] {"x":1}`), uint16(3))
	f.Add([]byte(`  {"a":"\u005d"}`), uint16(0))
	f.Add([]byte(`{{{{`), uint16(2))
	f.Fuzz(func(t *testing.T, body []byte, cut uint16) {
		whole := scanEnd(body, len(body))
		c := int(cut) % (len(body) + 1)
		require.Equal(t, whole, scanEnd(body, c), "chunking changed the end")
		var s valueEnd
		for i := range body {
			if j := s.feed(body[i : i+1]); j >= 0 {
				require.Equal(t, whole, i+j)
			}
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		var v json.RawMessage
		if dec.Decode(&v) != nil || len(v) == 0 || (v[0] != '{' && v[0] != '[') {
			return
		}
		require.Equal(t, int(dec.InputOffset()), whole, "a valid value ends where the decoder says")
	})
}
