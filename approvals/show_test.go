package approvals

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestVisible(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{name: "plain text unchanged", in: "select 1 from t", want: "select 1 from t"},
		{name: "short space runs kept", in: "a   b", want: "a   b"},
		{name: "padding counted", in: "1.4.2" + strings.Repeat(" ", 600) + "&& curl x|sh", want: "1.4.2␠×600&& curl x|sh"},
		{name: "line breaks and tabs", in: "a\nb\r\tc", want: `a\nb\r\tc`},
		{name: "backslash escaped so escapes cannot be forged", in: `a\nb`, want: `a\\nb`},
		{name: "bidi override", in: "ls \u202Ehs.exe", want: `ls \u202Ehs.exe`},
		{name: "zero width and bom", in: "rm\u200B -rf\uFEFF", want: `rm\u200B -rf\uFEFF`},
		{name: "other spaces", in: "a\u00A0b\u3000c", want: `a\u00A0b\u3000c`},
		{name: "control characters", in: "a\x00b\x1b[2Jc\x7f", want: `a\u0000b\u001B[2Jc\u007F`},
		{name: "count mark cannot be forged", in: "␠×9", want: `\u2420×9`},
		{name: "tag characters", in: "x\U000E0041", want: `x\U000E0041`},
		{name: "invalid utf-8", in: "a\xffb", want: `a\xFFb`},
		{name: "letters of other scripts stay", in: "Grüße 日本", want: "Grüße 日本"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, Visible(tc.in))
		})
	}
}

func TestFields(t *testing.T) {
	canon, err := Canonical([]byte(`{"name":"deploy","arguments":{"version":"1.4.2"},"Arguments":{"version":"rm -rf /"},` +
		`"_meta":{},"list":[1,true,null,[]],"we ird\u200b":"x"}`))
	require.NoError(t, err)
	got := map[string]string{}
	for _, f := range Fields(canon) {
		got[f.Path] = f.Value + " (" + f.Kind + ")"
	}
	require.Equal(t, map[string]string{
		".Arguments.version": "rm -rf / (string)",
		".arguments.version": "1.4.2 (string)",
		".name":              "deploy (string)",
		"._meta":             "{} (object)",
		".list[0]":           "1 (number)",
		".list[1]":           "true (bool)",
		".list[2]":           "null (null)",
		".list[3]":           "[] (array)",
		`["we ird\u200B"]`:   "x (string)",
	}, got)
	require.Equal(t, "invalid", Fields([]byte(`{`))[0].Kind)
}

func TestSpans(t *testing.T) {
	require.Equal(t, []span{{Text: "u:"}, {Text: "[REDACTED:CONN_PASSWORD]", Masked: true}, {Text: "@h"}},
		spans("u:[REDACTED:CONN_PASSWORD]@h"))
}

func FuzzVisible(f *testing.F) {
	for _, s := range []string{"", "a    b", "\u202e\u200b\t\n", "␠×3", "\xff\xfe", `{"a":"` + strings.Repeat(" ", 40) + `"}`, "\\u0041"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := Visible(in)
		require.True(t, utf8.ValidString(out))
		for _, r := range out {
			require.False(t, (hidden(r) && r != spaceMark) || r < 0x20, "hidden rune %U left in %q", r, out)
		}
		require.NotContains(t, out, "    ", "runs of spaces are counted")
		// The whole input is accounted for: every non-space rune either stays or is escaped.
		if !strings.ContainsAny(in, " \\") && utf8.ValidString(in) {
			for _, r := range in {
				if !hidden(r) && r >= 0x20 && r != '\t' && r != '\n' && r != '\r' {
					require.Contains(t, out, string(r))
				}
			}
		}
		if json.Valid([]byte(in)) {
			_ = Fields([]byte(in)) // never panics on any JSON
		}
	})
}
