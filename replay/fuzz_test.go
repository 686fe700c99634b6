package replay

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzDisplay feeds recorded messages (what agents and servers sent) to the timeline's
// renderer: it never panics, its output is valid UTF-8 with no control, format or
// non-ASCII space character left raw, and a JSON string in the message keeps its content.
func FuzzDisplay(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"\u003cscript\u003e"}}}`,
		`{"a":[1,2.5e3,true,null,{"b":"c\"d"}],"e":{}}`,
		"\"\u202egnp.exe\"",
		`[`, `{"a":`, "not json \x00\xff", `"` + strings.Repeat(" ", 10) + `"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		out := display(raw)
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 out of %q", raw)
		}
		for _, r := range out {
			if r != ' ' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.IsSpace(r)) {
				t.Fatalf("raw %U left in %q", r, out)
			}
		}
		var s string
		if json.Unmarshal(raw, &s) == nil && !strings.ContainsAny(s, "\\\"\t\n\r ") && utf8.ValidString(s) &&
			!strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsGraphic(r) || unicode.Is(unicode.Cf, r) }) {
			if out != `"`+s+`"` {
				t.Fatalf("string %q shown as %q", s, out)
			}
		}
	})
}
