package masking

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// maskCase is a JSON document and what masking must make of it.
type maskCase struct {
	name   string
	strat  Strategy
	doc    string
	want   string // "" when doc must come back unchanged
	counts Counts
}

func runMaskCases(t *testing.T, cases []maskCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			if tc.strat != "" {
				c.Strategy = tc.strat
				c.HashKey = "0123456789abcdef0123"
			}
			m, err := New(c)
			require.NoError(t, err)
			out, counts, err := m.JSON([]byte(tc.doc))
			require.NoError(t, err)
			want := tc.want
			if want == "" {
				want = tc.doc
			}
			require.Equal(t, want, string(out))
			require.True(t, json.Valid(out), "output must stay valid JSON")
			require.Equal(t, tc.counts, counts)
			again, c2, err := m.JSON(out)
			require.NoError(t, err)
			require.Equal(t, string(out), string(again), "masking twice must equal masking once")
			require.Empty(t, c2)
		})
	}
}

// TestJSONNumbers: a number that a detector matches as written is replaced by a JSON string
// holding its masked text; other numbers keep their type and bytes.
func TestJSONNumbers(t *testing.T) {
	runMaskCases(t, []maskCase{
		{
			name: "card as a bare number", doc: `{"card":4111111111111111,"amount":12.5}`,
			want: `{"card":"[REDACTED:CREDIT_CARD]","amount":12.5}`, counts: Counts{"CREDIT_CARD": 1},
		},
		{
			name: "card in an array", doc: `[5555555555554444, 1, -3e7]`,
			want: `["[REDACTED:CREDIT_CARD]", 1, -3e7]`, counts: Counts{"CREDIT_CARD": 1},
		},
		{
			name: "negative card keeps its sign", doc: `{"n":-4111111111111111}`,
			want: `{"n":"-[REDACTED:CREDIT_CARD]"}`, counts: Counts{"CREDIT_CARD": 1},
		},
		{
			name: "ssn number needs its member name", doc: `{"ssn":234567890,"id":234567890}`,
			want: `{"ssn":"[REDACTED:US_SSN]","id":234567890}`, counts: Counts{"US_SSN": 1},
		},
		{
			name: "phone number with context", doc: `{"phone":4155550132}`,
			want: `{"phone":"[REDACTED:PHONE]"}`, counts: Counts{"PHONE": 1},
		},
		{
			name: "password held as a number", doc: `{"password":73919284}`,
			want: `{"password":"[REDACTED:GENERIC_SECRET]"}`, counts: Counts{"GENERIC_SECRET": 1},
		},
		{name: "luhn-invalid number stays a number", doc: `{"n":4111111111111112,"t":1733400000123}`},
		{name: "exponent form is not the digits as written", doc: `{"n":4111111111111111e0}`},
		{
			name: "partial strategy", strat: Partial, doc: `{"card":4111111111111111}`,
			want: `{"card":"************1111"}`, counts: Counts{"CREDIT_CARD": 1},
		},
		{
			name: "hash strategy", strat: Hash, doc: `{"a":4111111111111111,"b":"4111111111111111"}`,
			want: `{"a":"tok_fd7d567acc8853a8","b":"tok_fd7d567acc8853a8"}`, counts: Counts{"CREDIT_CARD": 2},
		},
	})
}

// TestJSONMemberNames: a secret or personal value used as a member name is masked; the
// document stays valid and two names that mask alike stay distinct.
func TestJSONMemberNames(t *testing.T) {
	runMaskCases(t, []maskCase{
		{
			name: "aws key as a name", doc: `{"AKIAZ3MHQX7RBN2KLD4P":"x"}`,
			want: `{"[REDACTED:AWS_ACCESS_KEY]":"x"}`, counts: Counts{"AWS_ACCESS_KEY": 1},
		},
		{
			name: "card as a name of a nested object", doc: `{"by_card":{"4111111111111111":{"owner":"ann@example.com"}}}`,
			want: `{"by_card":{"[REDACTED:CREDIT_CARD]":{"owner":"[REDACTED:EMAIL]"}}}`, counts: Counts{"CREDIT_CARD": 1, "EMAIL": 1},
		},
		{
			name: "part of a name", doc: `{"token for ghp_R7mKx2Lq9Vt4Nw8Zb3Hc6Jd1Fs5Gp0Ya2Ue7":1}`,
			want: `{"token for [REDACTED:GITHUB_TOKEN]":1}`, counts: Counts{"GITHUB_TOKEN": 1},
		},
		{
			name: "escaped name", doc: `{"\u0041KIAZ3MHQX7RBN2KLD4P\n":true}`,
			want: `{"[REDACTED:AWS_ACCESS_KEY]\n":true}`, counts: Counts{"AWS_ACCESS_KEY": 1},
		},
		{
			name: "names that mask alike stay distinct", doc: `{"4111111111111111":1,"5555555555554444":2,"[REDACTED:CREDIT_CARD]#3":3,"378282246310005":4}`,
			want:   `{"[REDACTED:CREDIT_CARD]":1,"[REDACTED:CREDIT_CARD]#2":2,"[REDACTED:CREDIT_CARD]#3":3,"[REDACTED:CREDIT_CARD]#4":4}`,
			counts: Counts{"CREDIT_CARD": 3},
		},
		{
			name: "a masked name never takes an earlier name", doc: `{"[REDACTED:EMAIL]":0,"ann@example.com":1}`,
			want: `{"[REDACTED:EMAIL]":0,"[REDACTED:EMAIL]#2":1}`, counts: Counts{"EMAIL": 1},
		},
		{
			name: "partial strategy collision", strat: Partial, doc: `{"4111111111111111":1,"4012888888881881":2}`,
			want: `{"************1111":1,"************1881":2}`, counts: Counts{"CREDIT_CARD": 2},
		},
		{
			name: "field rules and context use the name as sent", doc: `{"AKIAZ3MHQX7RBN2KLD4P":{"ssn":"234567890"}}`,
			want: `{"[REDACTED:AWS_ACCESS_KEY]":{"ssn":"[REDACTED:US_SSN]"}}`, counts: Counts{"AWS_ACCESS_KEY": 1, "US_SSN": 1},
		},
		{name: "ordinary names untouched", doc: `{"password":null,"ssn":{},"credentials":{"username":"bob"}}`},
	})
}

// TestJSONMemberNameClash: a name the upstream sends after one that was masked to the same
// text cannot be renamed without changing data, so the document is refused, not merged.
func TestJSONMemberNameClash(t *testing.T) {
	m, err := New(DefaultConfig())
	require.NoError(t, err)
	_, _, err = m.JSON([]byte(`{"ann@example.com":1,"[REDACTED:EMAIL]":2}`))
	require.ErrorIs(t, err, errNameClash)
}

// row is one record rendered as text and as JSON by TestContextTextVsJSON.
type row []struct {
	k string
	v any
}

// TestContextTextVsJSON renders the same rows as "name: value" text and as JSON (strings
// and numbers) and requires both renderings to mask the same values: the member name gives
// a JSON value the context its label gives it in text.
func TestContextTextVsJSON(t *testing.T) {
	rows := []row{
		{{"name", "Ann Lee"}, {"ssn", 234567890}, {"password", "hunter2xyz"}, {"phone", 4155550132}, {"zip", 94107}},
		{{"name", "Bob Roe"}, {"ssn", "345678901"}, {"db_password", "Tr0ub4dorXx3"}, {"phone", "2125550100"}, {"zip", "10001"}},
		{{"name", "Cy Poe"}, {"user_password", "s3cr3tPa55w0rd"}, {"social_security_number", 456789012}, {"api_token_value", "q8Fv3JkLw9Zr2Tn5"}},
		{{"name", "Di Wu"}, {"AWS_SECRET", "q8Fv/3Jk+Lw9Zr2Tn5Xb7Hc1Md4Sg6Pa0Ye8Ru3W"}, {"order_no", 4111111111111111}, {"count", 123456789}},
	}
	caught := []string{
		"234567890", "hunter2xyz", "4155550132", "345678901", "Tr0ub4dorXx3", "2125550100", "s3cr3tPa55w0rd",
		"456789012", "q8Fv3JkLw9Zr2Tn5", "q8Fv/3Jk+Lw9Zr2Tn5Xb7Hc1Md4Sg6Pa0Ye8Ru3W",
	}
	kept := []string{"Ann Lee", "94107", "10001", "4111111111111111", "123456789"}
	m, err := New(DefaultConfig())
	require.NoError(t, err)

	var text strings.Builder
	var objs []map[string]any
	for _, r := range rows {
		o := map[string]any{}
		for _, f := range r {
			fmt.Fprintf(&text, "%s: %v\n", f.k, f.v)
			o[f.k] = f.v
		}
		objs = append(objs, o)
	}
	doc, err := json.Marshal(map[string]any{"rows": objs})
	require.NoError(t, err)
	jsonOut, _, err := m.JSON(doc)
	require.NoError(t, err)
	textOut, _ := m.Text([]byte(text.String()))
	renderings := map[string]string{"text": string(textOut), "json": string(jsonOut)}
	for name, out := range renderings {
		for _, v := range caught {
			require.NotContains(t, out, v, "%s rendering must mask %q", name, v)
		}
		for _, v := range kept {
			require.Contains(t, out, v, "%s rendering must keep %q", name, v)
		}
	}
}

// TestHeader: a response header value is masked like text, with its name as the context,
// except the headers an MCP client needs as sent.
func TestHeader(t *testing.T) {
	m, err := New(DefaultConfig())
	require.NoError(t, err)
	const gh = "ghp_R7mKx2Lq9Vt4Nw8Zb3Hc6Jd1Fs5Gp0Ya2Ue7"
	for _, tc := range []struct {
		name, value, want string
		counts            Counts
	}{
		{name: "X-Debug-Token", value: gh, want: "[REDACTED:GITHUB_TOKEN]", counts: Counts{"GITHUB_TOKEN": 1}},
		{name: "X-Debug", value: "user ann@example.com key AKIAZ3MHQX7RBN2KLD4P", want: "user [REDACTED:EMAIL] key [REDACTED:AWS_ACCESS_KEY]", counts: Counts{"EMAIL": 1, "AWS_ACCESS_KEY": 1}},
		{name: "X-Api-Key", value: "k7Qm2Zp9", want: "[REDACTED:GENERIC_SECRET]", counts: Counts{"GENERIC_SECRET": 1}},
		{name: "X-Db-Password", value: "Tr0ub4dorXx3", want: "[REDACTED:GENERIC_SECRET]", counts: Counts{"GENERIC_SECRET": 1}},
		{name: "X-SSN", value: "234567890", want: "[REDACTED:US_SSN]", counts: Counts{"US_SSN": 1}},
		{name: "X-Request-Id", value: "234567890"},
		{name: "Content-Type", value: "text/event-stream"},
		{name: "Mcp-Session-Id", value: gh},
		{name: "mcp-protocol-version", value: "2025-06-18"},
		{name: ":status", value: "200"},
		{name: "X-Masked", value: "[REDACTED:GITHUB_TOKEN]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, counts := m.Header(tc.name, tc.value)
			want := tc.want
			if want == "" {
				want = tc.value
			}
			require.Equal(t, want, got)
			require.Equal(t, tc.counts, counts)
			again, c2 := m.Header(tc.name, got)
			require.Equal(t, got, again)
			require.Empty(t, c2)
		})
	}
}
