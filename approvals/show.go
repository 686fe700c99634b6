package approvals

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// spaceRun is the shortest run of spaces shown as a count: padding that pushes the rest of
// a value out of view ("1.4.2" then 600 spaces then "&& curl …|sh") must be visible as such.
const spaceRun = 4

// spaceMark starts a counted run of spaces: "␠×600". A literal U+2420 in a value is escaped,
// so a value cannot forge a count.
const spaceMark = '\u2420'

// Visible renders s so that every character an approver must know about can be seen:
// backslash, tab, newline and carriage return are escaped as in JSON (\\ \t \n \r); other
// control characters, format characters (bidirectional overrides, zero-width characters),
// unassigned and private-use code points, and any space other than U+0020 become \uXXXX
// (\U00XXXXXX above the BMP); runs of 4 or more spaces become "␠×N". Invalid UTF-8 bytes
// become \xHH. Nothing is dropped or cut: Visible never shortens what it is given beyond
// replacing a run of spaces by its count.
func Visible(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if s[i] == ' ' {
			j := i
			for j < len(s) && s[j] == ' ' {
				j++
			}
			if n := j - i; n >= spaceRun {
				fmt.Fprintf(&b, "%c×%d", spaceMark, n)
			} else {
				b.WriteString(s[i:j])
			}
			i = j
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02X`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case hidden(r):
			if r > 0xFFFF {
				fmt.Fprintf(&b, `\U%08X`, r)
			} else {
				fmt.Fprintf(&b, `\u%04X`, r)
			}
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// hidden reports a rune that does not show as itself: controls, format characters (Cf:
// bidi overrides and isolates, zero-width space/joiners, BOM, soft hyphen), spaces other
// than U+0020, unassigned, private-use and surrogate code points, and the space-run mark.
func hidden(r rune) bool {
	switch {
	case r == spaceMark:
		return true
	case r == ' ':
		return false
	case unicode.IsControl(r), unicode.Is(unicode.Cf, r), unicode.IsSpace(r),
		unicode.Is(unicode.Co, r), unicode.Is(unicode.Cs, r), unicode.Is(unicode.Zl, r), unicode.Is(unicode.Zp, r):
		return true
	case r == 0x115F, r == 0x1160, r == 0x3164, r == 0xFFA0, r == 0x2800:
		// Hangul fillers and the blank Braille pattern render as blank space.
		return true
	}
	return !unicode.IsGraphic(r)
}

// Field is one leaf of a request's params as approvers see it: where it is and what it holds.
type Field struct {
	// Path locates the value from params: .name, .arguments.command, .items[0]; a member
	// name that is not a plain word is quoted and made visible: ["a b"].
	Path string `json:"path"`
	// Kind is string, number, bool, null, object (empty) or array (empty).
	Kind string `json:"kind"`
	// Value is the value made [Visible] (strings without quotes), complete.
	Value string `json:"value"`
	// Masked is set when a masking detector replaced part of the value ([REDACTED:TYPE]).
	Masked bool `json:"masked,omitempty"`
}

// maskedSpan matches what the redact strategy writes in place of a finding.
var maskedSpan = regexp.MustCompile(`\[REDACTED:[A-Z0-9_]+\]`)

var plainName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// Fields lists every leaf of the JSON value canon (a request's masked params), in canonical
// order, each with its full value. Empty objects and arrays are leaves too, so every member
// appears. Input that does not parse yields a single field saying so.
func Fields(canon []byte) []Field {
	dec := json.NewDecoder(bytes.NewReader(canon))
	dec.UseNumber()
	var out []Field
	if err := fieldsOf(dec, "", 0, &out); err != nil {
		return []Field{{Path: "", Kind: "invalid", Value: "(params could not be read: " + err.Error() + ")"}}
	}
	return out
}

func fieldsOf(dec *json.Decoder, path string, depth int, out *[]Field) error {
	if depth > maxDepth {
		return fmt.Errorf("nesting too deep")
	}
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("read token: %w", err)
	}
	switch t := tok.(type) {
	case json.Delim:
		end, kind := json.Delim('}'), "object"
		if t == '[' {
			end, kind = ']', "array"
		}
		n := 0
		for ; dec.More(); n++ {
			child := path + "[" + strconv.Itoa(n) + "]"
			if t == '{' {
				k, err := dec.Token()
				if err != nil {
					return fmt.Errorf("read key: %w", err)
				}
				name, _ := k.(string)
				if plainName.MatchString(name) {
					child = path + "." + name
				} else {
					child = path + `["` + Visible(name) + `"]`
				}
			}
			if err := fieldsOf(dec, child, depth+1, out); err != nil {
				return err
			}
		}
		if tok, err := dec.Token(); err != nil || tok != end {
			return fmt.Errorf("unterminated %s", kind)
		}
		if n == 0 {
			v := "{}"
			if t == '[' {
				v = "[]"
			}
			*out = append(*out, Field{Path: path, Kind: kind, Value: v})
		}
	case string:
		*out = append(*out, Field{Path: path, Kind: "string", Value: Visible(t), Masked: maskedSpan.MatchString(t)})
	case json.Number:
		*out = append(*out, Field{Path: path, Kind: "number", Value: t.String(), Masked: false})
	case bool:
		*out = append(*out, Field{Path: path, Kind: "bool", Value: strconv.FormatBool(t)})
	case nil:
		*out = append(*out, Field{Path: path, Kind: "null", Value: "null"})
	}
	if depth == 0 {
		if _, err := dec.Token(); err != io.EOF {
			return fmt.Errorf("trailing data")
		}
	}
	return nil
}

// span is a piece of a shown value: text, or a masked finding.
type span struct {
	Text   string
	Masked bool
}

// spans splits a shown value at its masked findings, so the page can mark them.
func spans(v string) []span {
	var out []span
	last := 0
	for _, m := range maskedSpan.FindAllStringIndex(v, -1) {
		if m[0] > last {
			out = append(out, span{Text: v[last:m[0]]})
		}
		out = append(out, span{Text: v[m[0]:m[1]], Masked: true})
		last = m[1]
	}
	if last < len(v) {
		out = append(out, span{Text: v[last:]})
	}
	return out
}
