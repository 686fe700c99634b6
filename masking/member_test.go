package masking

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMemberPath(t *testing.T) {
	const card = "4111 1111 1111 1111"
	cases := []struct {
		name   string
		fields []Field
		doc    string
		path   []string
		want   string // "" when doc must come back unchanged
		counts Counts
	}{
		{
			name:   "tool arguments only",
			doc:    `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"pay ann@example.com","arguments":{"card":"` + card + `","n":4111111111111111},"_meta":{"progressToken":"ann@example.com"}}}`,
			path:   []string{"params", "arguments"},
			want:   `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"pay ann@example.com","arguments":{"card":"[REDACTED:CREDIT_CARD]","n":"[REDACTED:CREDIT_CARD]"},"_meta":{"progressToken":"ann@example.com"}}}`,
			counts: Counts{"CREDIT_CARD": 2},
		},
		{
			name: "field rules relative to the selected value", fields: []Field{{Path: "user.ssn", Name: "SSN"}, {Path: "arguments.user.ssn"}},
			doc:    `{"params":{"arguments":{"user":{"ssn":"no pattern here"}}},"user":{"ssn":"kept"}}`,
			path:   []string{"params", "arguments"},
			want:   `{"params":{"arguments":{"user":{"ssn":"[REDACTED:SSN]"}}},"user":{"ssn":"kept"}}`,
			counts: Counts{"SSN": 1},
		},
		{
			name: "escaped key names match", doc: `{"par\u0061ms":{"arguments":{"k":"` + card + `"}}}`, path: []string{"params", "arguments"},
			want: `{"par\u0061ms":{"arguments":{"k":"[REDACTED:CREDIT_CARD]"}}}`, counts: Counts{"CREDIT_CARD": 1},
		},
		{
			name: "same key at another depth untouched", doc: `{"arguments":{"k":"` + card + `"},"params":{"x":{"arguments":"` + card + `"}}}`,
			path: []string{"params", "arguments"},
		},
		{name: "path through a non-object", doc: `{"params":["` + card + `"]}`, path: []string{"params", "arguments"}},
		{
			name: "selected value that is a string", doc: `{"params":{"arguments":"` + card + `"}}`, path: []string{"params", "arguments"},
			want: `{"params":{"arguments":"[REDACTED:CREDIT_CARD]"}}`, counts: Counts{"CREDIT_CARD": 1},
		},
		{
			name: "single member as before", doc: `{"id":"` + card + `","result":{"t":"` + card + `"}}`, path: []string{"result"},
			want: `{"id":"` + card + `","result":{"t":"[REDACTED:CREDIT_CARD]"}}`, counts: Counts{"CREDIT_CARD": 1},
		},
		{
			name: "no path is the whole document", doc: `{"id":"` + card + `"}`,
			want: `{"id":"[REDACTED:CREDIT_CARD]"}`, counts: Counts{"CREDIT_CARD": 1},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Fields = tc.fields
			m, err := New(c)
			require.NoError(t, err)
			out, counts, err := m.Member([]byte(tc.doc), tc.path...)
			require.NoError(t, err)
			if tc.want == "" {
				require.Equal(t, tc.doc, string(out))
				require.Empty(t, counts)
				return
			}
			require.Equal(t, tc.want, string(out))
			require.Equal(t, tc.counts, counts)
		})
	}
}

func TestMemberPathInvalid(t *testing.T) {
	m, err := New(DefaultConfig())
	require.NoError(t, err)
	for _, doc := range []string{`{"params":{"arguments":{"a":}}}`, `{"params":{"x":1}`, `{"params":{}} x`} {
		t.Run(doc, func(t *testing.T) {
			_, _, err := m.Member([]byte(doc), "params", "arguments")
			require.ErrorIs(t, err, errSyntax)
		})
	}
}

// BenchmarkMemberArguments masks the arguments of a ~1 KB tools/call request.
func BenchmarkMemberArguments(b *testing.B) {
	m, err := New(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	memo := strings.Repeat("lunch with the team at the usual place ", 25)
	for _, bc := range []struct{ name, args string }{
		{name: "clean", args: `{"memo":"` + memo + `","amount":12.5}`},
		{name: "card", args: `{"memo":"` + memo + `","card":"4111 1111 1111 1111"}`},
	} {
		doc := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"pay","arguments":` + bc.args + `}}`)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				if _, _, err := m.Member(doc, "params", "arguments"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
