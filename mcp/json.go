package mcp

import (
	"bytes"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting of objects and arrays [Parse] accepts.
const MaxDepth = 128

// foldMapMin is the member count above which duplicate detection switches from pairwise
// comparison to a map of case-folded keys.
const foldMapMin = 24

type kind uint8

const (
	kString kind = iota + 1
	kNumber
	kObject
	kArray
	kLiteral // true, false
	kNull
)

// span is one JSON value inside parser.buf.
type span struct {
	kind    kind
	start   int
	end     int
	escaped bool // string with at least one backslash escape
	integer bool // number without fraction or exponent
}

// parser is a strict RFC 8259 validator that reports value spans. Strings must be valid UTF-8
// without lone surrogate escapes: a decoder that substitutes U+FFFD could otherwise merge keys
// that differ here.
type parser struct {
	buf  []byte
	pos  int
	keys [][]byte // stack of decoded keys of the objects being parsed, for duplicate detection

	syntaxOnly bool // skip duplicate detection: only classify a body as JSON or not
}

// member is called for each object member with the decoded key; it must consume the value.
type member func(key []byte) *Error

func (p *parser) syntax(msg string) *Error {
	return newError(CodeParse, "parse error: "+msg+" at offset "+strconv.Itoa(p.pos))
}

func (p *parser) skipWS() int {
	for p.pos < len(p.buf) {
		switch p.buf[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return p.pos
		}
	}
	return p.pos
}

// value parses any JSON value. fold makes keys that differ only by case duplicates, at every depth
// below this value.
func (p *parser) value(depth int, fold bool) (span, *Error) {
	p.skipWS()
	if p.pos >= len(p.buf) {
		return span{}, p.syntax("unexpected end of input")
	}
	switch c := p.buf[p.pos]; {
	case c == '{':
		return p.object(depth+1, fold, nil)
	case c == '[':
		return p.array(depth+1, fold)
	case c == '"':
		return p.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't':
		return p.literal("true", kLiteral)
	case c == 'f':
		return p.literal("false", kLiteral)
	case c == 'n':
		return p.literal("null", kNull)
	}
	return span{}, p.syntax("unexpected character")
}

func (p *parser) literal(lit string, k kind) (span, *Error) {
	if !bytes.HasPrefix(p.buf[p.pos:], []byte(lit)) {
		return span{}, p.syntax("invalid literal")
	}
	s := span{kind: k, start: p.pos, end: p.pos + len(lit)}
	p.pos = s.end
	return s, nil
}

// object parses an object at p.pos. fn, if set, consumes each member's value; otherwise the value
// is validated with p.value.
func (p *parser) object(depth int, fold bool, fn member) (span, *Error) {
	if depth > MaxDepth {
		return span{}, newError(CodeInvalidRequest, "invalid request: nesting deeper than "+strconv.Itoa(MaxDepth))
	}
	base := len(p.keys)
	s, err := p.members(depth, fold, fn)
	p.keys = p.keys[:base]
	return s, err
}

// members parses the object at p.pos, leaving its keys on p.keys for object to drop.
func (p *parser) members(depth int, fold bool, fn member) (span, *Error) {
	s := span{kind: kObject, start: p.pos}
	p.pos++ // '{'
	base := len(p.keys)
	var folded map[string]struct{}
	if p.skipWS(); p.pos < len(p.buf) && p.buf[p.pos] == '}' {
		p.pos++
		s.end = p.pos
		return s, nil
	}
	for {
		p.skipWS()
		if p.pos >= len(p.buf) || p.buf[p.pos] != '"' {
			return span{}, p.syntax("expected object key")
		}
		ks, err := p.str()
		if err != nil {
			return span{}, err
		}
		key := p.decode(ks)
		switch {
		case p.syntaxOnly:
		case folded != nil:
			if err := p.dupMap(folded, key, fold); err != nil {
				return span{}, err
			}
		default:
			for _, k := range p.keys[base:] {
				if bytes.Equal(k, key) {
					return span{}, p.duplicate()
				}
				if fold && bytes.EqualFold(k, key) {
					return span{}, p.foldDuplicate()
				}
			}
			p.keys = append(p.keys, key)
			if len(p.keys)-base >= foldMapMin {
				folded = make(map[string]struct{}, 2*foldMapMin)
				for _, k := range p.keys[base:] {
					folded[keyOf(k, fold)] = struct{}{}
				}
			}
		}
		if p.skipWS(); p.pos >= len(p.buf) || p.buf[p.pos] != ':' {
			return span{}, p.syntax("expected ':'")
		}
		p.pos++
		if fn != nil {
			if err := fn(key); err != nil {
				return span{}, err
			}
		} else if _, err := p.value(depth, fold); err != nil {
			return span{}, err
		}
		if p.skipWS(); p.pos >= len(p.buf) {
			return span{}, p.syntax("unterminated object")
		}
		switch p.buf[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			s.end = p.pos
			return s, nil
		default:
			return span{}, p.syntax("expected ',' or '}'")
		}
	}
}

func (p *parser) duplicate() *Error {
	return newError(CodeInvalidRequest, "invalid request: duplicate object key at offset "+strconv.Itoa(p.pos))
}

// foldDuplicate reports two members of one object whose names differ only by letter case or
// Unicode folding: a case-insensitive decoder would merge them, and which one it keeps differs
// between decoders.
func (p *parser) foldDuplicate() *Error {
	return newError(CodeInvalidRequest, "invalid request: member names differ only by letter case or Unicode folding at offset "+strconv.Itoa(p.pos))
}

func (p *parser) dupMap(m map[string]struct{}, key []byte, fold bool) *Error {
	k := keyOf(key, fold)
	if _, ok := m[k]; ok {
		if fold {
			// The folded map does not keep the names as sent; say what it compares.
			return newError(CodeInvalidRequest, "invalid request: member names repeat or differ only by letter case or Unicode folding at offset "+strconv.Itoa(p.pos))
		}
		return p.duplicate()
	}
	m[k] = struct{}{}
	return nil
}

// keyOf is the map key for duplicate detection: the key itself, or its case-fold canonical form
// (each rune replaced by the smallest rune of its simple-folding orbit, matching bytes.EqualFold).
func keyOf(key []byte, fold bool) string {
	if !fold {
		return string(key)
	}
	out := make([]byte, 0, len(key))
	for i := 0; i < len(key); {
		if c := key[i]; c < utf8.RuneSelf {
			// The smallest rune of an ASCII letter's orbit is its upper case (K for k and the
			// Kelvin sign, S for s and ſ); other ASCII bytes fold to nothing else.
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(key[i:])
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		out = utf8.AppendRune(out, m)
		i += n
	}
	return string(out)
}

func (p *parser) array(depth int, fold bool) (span, *Error) {
	if depth > MaxDepth {
		return span{}, newError(CodeInvalidRequest, "invalid request: nesting deeper than "+strconv.Itoa(MaxDepth))
	}
	s := span{kind: kArray, start: p.pos}
	p.pos++ // '['
	if p.skipWS(); p.pos < len(p.buf) && p.buf[p.pos] == ']' {
		p.pos++
		s.end = p.pos
		return s, nil
	}
	for {
		if _, err := p.value(depth, fold); err != nil {
			return span{}, err
		}
		if p.skipWS(); p.pos >= len(p.buf) {
			return span{}, p.syntax("unterminated array")
		}
		switch p.buf[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			s.end = p.pos
			return s, nil
		default:
			return span{}, p.syntax("expected ',' or ']'")
		}
	}
}

// str validates a string starting at p.pos (the opening quote).
func (p *parser) str() (span, *Error) {
	s := span{kind: kString, start: p.pos}
	i := p.pos + 1
	b := p.buf
	for i < len(b) {
		c := b[i]
		if plain[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			p.pos = i + 1
			s.end = p.pos
			return s, nil
		case c == '\\':
			s.escaped = true
			n, ok := escapeLen(b[i:])
			if !ok {
				p.pos = i
				return span{}, p.syntax("invalid string escape")
			}
			i += n
		case c < 0x20:
			p.pos = i
			return span{}, p.syntax("control character in string")
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n <= 1 {
				p.pos = i
				return span{}, p.syntax("invalid UTF-8 in string")
			}
			i += n
		}
	}
	p.pos = i
	return span{}, p.syntax("unterminated string")
}

// plain marks the bytes that stand for themselves inside a JSON string: printable ASCII other
// than the quote and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// escapeLen returns the length of the escape at the start of b; \u surrogates must come in pairs.
func escapeLen(b []byte) (int, bool) {
	if len(b) < 2 {
		return 0, false
	}
	switch b[1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, true
	case 'u':
		r, ok := hex4(b[2:])
		if !ok {
			return 0, false
		}
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return 0, false // lone low surrogate
		case r >= 0xD800 && r <= 0xDBFF:
			if len(b) < 12 || b[6] != '\\' || b[7] != 'u' {
				return 0, false
			}
			lo, ok := hex4(b[8:])
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return 0, false
			}
			return 12, true
		}
		return 6, true
	}
	return 0, false
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// decode returns the unescaped contents of a validated string span. Without escapes the result
// aliases the body.
func (p *parser) decode(s span) []byte {
	in := p.buf[s.start+1 : s.end-1]
	if !s.escaped {
		return in
	}
	out := make([]byte, 0, len(in))
	for i := 0; i < len(in); {
		c := in[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		switch in[i+1] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, _ := hex4(in[i+2:])
			if r >= 0xD800 && r <= 0xDBFF {
				lo, _ := hex4(in[i+8:])
				out = utf8.AppendRune(out, utf16.DecodeRune(r, lo))
				i += 12
				continue
			}
			out = utf8.AppendRune(out, r)
			i += 6
			continue
		default: // '"', '\\', '/'
			out = append(out, in[i+1])
		}
		i += 2
	}
	return out
}

func (p *parser) number() (span, *Error) {
	s := span{kind: kNumber, start: p.pos, integer: true}
	b := p.buf
	i := p.pos
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		p.pos = i
		return span{}, p.syntax("invalid number")
	}
	if i < len(b) && b[i] == '.' {
		s.integer = false
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			p.pos = i
			return span{}, p.syntax("invalid number")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		s.integer = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			p.pos = i
			return span{}, p.syntax("invalid number")
		}
	}
	p.pos = i
	s.end = i
	return s, nil
}
