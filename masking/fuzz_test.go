package masking

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/mcpguard/mcpguard/masking/maskingtest"
)

func fuzzMasker(f *testing.F) *Masker {
	f.Helper()
	c := DefaultConfig()
	c.Fields = []Field{{Path: "rows.#.ssn"}}
	m, err := New(c)
	if err != nil {
		f.Fatal(err)
	}
	return m
}

// sameShape reports whether out has the structure of in token by token: the same
// delimiters, literals and numbers, strings where in has strings, and a masked string only
// where in has a number (member names are string tokens too, so renamed names pass).
func sameShape(in, out []byte) error {
	da, db := json.NewDecoder(bytes.NewReader(in)), json.NewDecoder(bytes.NewReader(out))
	da.UseNumber()
	db.UseNumber()
	for {
		a, ea := da.Token()
		b, eb := db.Token()
		if ea != nil || eb != nil {
			if errors.Is(ea, io.EOF) && errors.Is(eb, io.EOF) {
				return nil
			}
			return fmt.Errorf("tokens end differently: %w", errors.Join(ea, eb))
		}
		switch x := a.(type) {
		case string:
			if _, ok := b.(string); !ok {
				return fmt.Errorf("string %q became %v", x, b)
			}
		case json.Number:
			if y, ok := b.(string); ok && strings.Contains(y, "[REDACTED:") {
				continue // the fuzz masker redacts
			}
			if b != a {
				return fmt.Errorf("number %v became %v", a, b)
			}
		default:
			if b != a {
				return fmt.Errorf("token %v became %v", a, b)
			}
		}
	}
}

// FuzzJSON: valid JSON in gives valid JSON out with the same structure and types (field
// rules aside), masking the output again changes nothing, and nothing panics.
func FuzzJSON(f *testing.F) {
	for _, s := range []string{
		`{"content":[{"type":"text","text":"card 4111 1111 1111 1111 key AKIAZ3MHQX7RBN2KLD4P"}]}`,
		`{"structuredContent":{"users":[{"ssn":"123-45-6788","email":"a.b@example.com","password":"hunter22"}]}}`,
		`["\u0041KIAZ3MHQX7RBN2KLD4P","\ud83d\ude00 +44 20 7946 0958",1e400,-0.5,true,null]`,
		`{"a":"-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----","b":{"c":[[]]}}`,
		`"postgres://u:Tr0ub4dorXx3@db/x eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2ln"`,
		`{"rows":[{"ssn":123456789},{"ssn":{"x":1}}]}`, `{"bad":"\ud800"}`, `{`, `"\x"`,
		`{"4111111111111111":4111111111111111,"5555555555554444":-5555555555554444,"[REDACTED:CREDIT_CARD]#3":0}`,
		`{"user_password":"s3cr3tPa55w0rd","AWS_SECRET":"q8Fv/3Jk+Lw9Zr2Tn5Xb7Hc1Md4Sg6Pa0Ye8Ru3W","phone":4155550132}`,
		`{"ann@example.com":1,"[REDACTED:EMAIL]":2}`, `[4111111111111111.5,4111111111111111e2,0.4111111111111111]`,
		`[{"keyName":"key1","value":"ZbrNk3H27yLgXRgJIn43Qvesb8eg2k1rgdViklmIlWiVO+dWrurtB9tH/Zursimy3FP2iueSkRq2pzai1PySRA=="}]`,
		`{"HEROKU_API_KEY":"3f2b8c1e-4d5a-4b6c-8d7e-9f0a1b2c3d4e","sig=":"x\u0026sig=gukG9bP%2BKtIm70HK4l8OXdNsz4%2F4DtzP1IlW4%2B5pH74%3D"}`,
		`{"387418851:AA_kps6zoGLq95hih11ejuw1s_wU8Dr4D0z":"NKP3Q~8t~i_1np9Ne9Mv2C2_-CXJg1iH31P29JWB","n":77e2}`,
	} {
		f.Add([]byte(s))
	}
	m := fuzzMasker(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		out, _, err := m.JSON(in)
		if !json.Valid(in) || errors.Is(err, errNameClash) {
			return // only "no panic" is asked of invalid input and of names that clash
		}
		if err != nil {
			t.Fatalf("valid JSON refused: %v", err)
		}
		if !json.Valid(out) {
			t.Fatalf("invalid output %q from %q", out, in)
		}
		again, c, err := m.JSON(out)
		if err != nil || !bytes.Equal(again, out) || len(c) > 0 {
			t.Fatalf("not idempotent: %q -> %q (%v, %v)", out, again, c, err)
		}
		if !bytes.Contains(in, []byte(`"ssn"`)) { // the field rule replaces whole values
			if err := sameShape(in, out); err != nil {
				t.Fatalf("structure changed: %v: %q -> %q", err, in, out)
			}
		}
	})
}

// FuzzText: text masking is idempotent, and a stream split anywhere produces exactly what
// masking the whole wire text produces.
func FuzzText(f *testing.F) {
	for _, s := range []string{
		"card 4111 1111 1111 1111 ssn 123-45-6788 call (415) 555-0132",
		"data: {\"t\":\"AKIAZ3MHQX7RBN2KLD4P \\u0041KIA \\rk_live_4eC39HqLyjWDarjtT1zdp7dc\"}\n\n",
		"-----BEGIN EC PRIVATE KEY-----\nabc", "mail a@b.co DE89 3704 0044 0532 0130 00",
		"password=Xk9#mP2$qLw7Zr token: sk-proj-Z3k9Q2x7Lm4Np8Rt1Wc6Hd0Jf5Gs3Bv9Yq2Xe7Lm4Np8Rt1Wc",
	} {
		f.Add([]byte(s), uint16(7))
	}
	// Provider formats: each sample, and each sample cut short, doubled, and JSON-escaped.
	for i, p := range maskingtest.ProviderSamples(3) {
		f.Add([]byte(p.Line), uint16(i*13))
		f.Add([]byte(p.Line[:len(p.Line)-3]+"\n"+p.Line+p.Line), uint16(len(p.Line)))
		f.Add(appendQuoted(nil, []byte(p.Line)), uint16(i))
	}
	m := fuzzMasker(f)
	small := *m
	small.holdback, small.batch = 300, 8
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		out, _ := m.Text(in)
		if again, c := m.Text(out); !bytes.Equal(again, out) || len(c) > 0 {
			t.Fatalf("text not idempotent: %q -> %q -> %q", in, out, again)
		}
		want, _ := small.Wire(in)
		k := int(cut) % (len(in) + 1)
		if got := collect(small.NewStream(), in[:k], in[k:]); !bytes.Equal(got, want) {
			t.Fatalf("stream split at %d: %q, whole: %q", k, got, want)
		}
	})
}

// FuzzConfig: custom detector patterns and field paths from configuration never panic the
// compiler or the masker.
func FuzzConfig(f *testing.F) {
	f.Add("EMP-[0-9]{6}", "emp-", "rows.#.ssn", "EMP-123456 rows")
	f.Add("(a|b)*c", "", "a\\.b.*", "abc")
	f.Add("[", "x", "..", "")
	f.Fuzz(func(t *testing.T, pattern, kw, path, text string) {
		c := DefaultConfig()
		c.Custom = []Custom{{Name: "CUSTOM", Pattern: pattern, Keywords: []string{kw}, MaxLen: 64}}
		c.Fields = []Field{{Path: path}}
		m, err := New(c)
		if err != nil {
			return
		}
		m.Text([]byte(text))
		doc, _ := json.Marshal(map[string]any{"rows": []any{map[string]any{"ssn": text}}, "a.b": text})
		if _, _, err := m.JSON(doc); err != nil {
			t.Fatalf("valid JSON refused: %v", err)
		}
	})
}

// dropArguments removes params.arguments from a decoded document, so that what Member must
// leave alone can be compared.
func dropArguments(v any) any {
	if o, ok := v.(map[string]any); ok {
		if p, ok := o["params"].(map[string]any); ok {
			delete(p, "arguments")
		}
	}
	return v
}

// FuzzMember: masking the tool-call arguments of a request gives valid JSON, changes nothing
// outside params.arguments, is idempotent, and never panics.
func FuzzMember(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"pay","arguments":{"card":"4111 1111 1111 1111"}}}`,
		`{"params":{"name":"ann@example.com","arguments":{"rows":[{"ssn":"123-45-6788"}]},"_meta":{"progressToken":"AKIAZ3MHQX7RBN2KLD4P"}}}`,
		`{"par\u0061ms":{"\u0061rguments":"AKIAZ3MHQX7RBN2KLD4P"},"arguments":{"k":"ann@example.com"}}`,
		`{"params":[{"arguments":"ann@example.com"}]}`, `{"params":{"arguments":{}}`, `[{"params":1}]`, `{}`,
	} {
		f.Add([]byte(s))
	}
	m := fuzzMasker(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		out, _, err := m.Member(in, "params", "arguments")
		if !json.Valid(in) || errors.Is(err, errNameClash) {
			return // only "no panic" is asked of invalid input and of names that clash
		}
		if err != nil {
			t.Fatalf("valid JSON refused: %v", err)
		}
		if !json.Valid(out) {
			t.Fatalf("invalid output %q from %q", out, in)
		}
		again, c, err := m.Member(out, "params", "arguments")
		if err != nil || !bytes.Equal(again, out) || len(c) > 0 {
			t.Fatalf("not idempotent: %q -> %q (%v, %v)", out, again, c, err)
		}
		var a, b any
		if json.Unmarshal(in, &a) != nil || json.Unmarshal(out, &b) != nil {
			return // numbers out of float range, duplicate keys: encoding/json sees both alike
		}
		ja, _ := json.Marshal(dropArguments(a))
		jb, _ := json.Marshal(dropArguments(b))
		if !bytes.Equal(ja, jb) {
			t.Fatalf("changed outside params.arguments: %s -> %s", ja, jb)
		}
	})
}
