package policy

import (
	"strings"
	"unicode/utf8"

	"mvdan.cc/sh/v3/syntax"
)

// arg is one word of a command after quote removal, as bash would pass it to the program.
type arg struct {
	// s is the word's value when lit is set; otherwise the literal text before the first
	// part that is only known at run time (an expansion, a substitution, a glob).
	s string
	// lit is set when the word is exactly one argument with value s: no expansion, no
	// substitution, no glob or brace expansion.
	lit bool
}

// opt reports whether the word may be an option: a literal starting with "-" (not "-"
// alone), or a run-time word whose known prefix does not rule it out.
func (a arg) opt() bool {
	if a.lit {
		return len(a.s) > 1 && a.s[0] == '-'
	}
	return a.s == "" || a.s[0] == '-'
}

// word expands w as far as it is known before run time.
func word(w *syntax.Word) arg {
	if w == nil {
		return arg{}
	}
	var b strings.Builder
	for _, p := range w.Parts {
		switch v := p.(type) {
		case *syntax.Lit:
			if i := globAt(v.Value); i >= 0 {
				b.WriteString(unescape(v.Value[:i]))
				return arg{s: b.String()}
			}
			b.WriteString(unescape(v.Value))
		case *syntax.SglQuoted:
			if v.Dollar {
				b.WriteString(ansiC(v.Value))
			} else {
				b.WriteString(v.Value)
			}
		case *syntax.DblQuoted:
			for _, q := range v.Parts {
				l, ok := q.(*syntax.Lit)
				if !ok {
					return arg{s: b.String()}
				}
				b.WriteString(dqUnescape(l.Value))
			}
		default:
			return arg{s: b.String()}
		}
	}
	return arg{s: b.String(), lit: true}
}

// literal returns the word with quotes and escapes removed, false when any part of it is
// computed at run time (parameter expansion, substitution, arithmetic, glob).
func literal(w *syntax.Word) (string, bool) {
	a := word(w)
	return a.s, a.lit
}

// globAt returns the index of the first unescaped character of an unquoted literal that
// makes bash expand the word (pathname globbing, brace expansion, a leading tilde is
// harmless and kept), or -1.
func globAt(s string) int {
	brace := -1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '*', '?':
			return i
		case '[':
			if strings.IndexByte(s[i+1:], ']') >= 0 {
				return i
			}
		case '{':
			if brace < 0 {
				brace = i
			}
		case ',':
			if brace >= 0 {
				return brace
			}
		case '.':
			if brace >= 0 && i+1 < len(s) && s[i+1] == '.' {
				return brace
			}
		}
	}
	return -1
}

// unescape removes the backslashes of an unquoted literal.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// dqUnescape removes the backslashes bash removes inside double quotes (and in unquoted
// here-document bodies): before $, `, ", \ and newline.
func dqUnescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case '$', '`', '"', '\\':
				i++
			case '\n':
				i++
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ansiC decodes the body of a $'…' string as bash does.
func ansiC(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch c = s[i]; c {
		case 'a':
			b.WriteByte('\a')
		case 'b':
			b.WriteByte('\b')
		case 'e', 'E':
			b.WriteByte(0x1b)
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'v':
			b.WriteByte('\v')
		case '\\', '\'', '"', '?':
			b.WriteByte(c)
		case 'c':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i] & 0x1f)
			}
		case 'x', 'u', 'U':
			n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[c]
			j := i + 1
			for j < len(s) && j-i-1 < n && isHex(s[j]) {
				j++
			}
			if j == i+1 {
				b.WriteByte('\\')
				b.WriteByte(c)
				continue
			}
			if c == 'x' {
				var v byte
				for k := i + 1; k < j; k++ {
					v = v<<4 | hexDigit(s[k])
				}
				b.WriteByte(v)
			} else {
				var v rune
				for k := i + 1; k < j; k++ {
					v = v<<4 | rune(hexDigit(s[k]))
				}
				b.WriteRune(v)
			}
			i = j - 1
		case '0', '1', '2', '3', '4', '5', '6', '7':
			var v byte // bash keeps the low eight bits of \777
			j := i
			for j < len(s) && j-i < 3 && '0' <= s[j] && s[j] <= '7' {
				v = v<<3 | (s[j] - '0')
				j++
			}
			b.WriteByte(v)
			i = j - 1
		default:
			b.WriteByte('\\')
			b.WriteByte(c)
		}
	}
	out := b.String()
	if !utf8.ValidString(out) {
		return strings.ToValidUTF8(out, "\uFFFD")
	}
	return out
}

func hexDigit(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// heredoc returns the body of a here-document as the command reads it, false when it
// holds expansions or substitutions.
func heredoc(r *syntax.Redirect) (string, bool) {
	if r.Hdoc == nil {
		return "", true
	}
	quoted := false
	if r.Word != nil {
		for _, p := range r.Word.Parts {
			switch v := p.(type) {
			case *syntax.SglQuoted, *syntax.DblQuoted:
				quoted = true
			case *syntax.Lit:
				quoted = quoted || strings.Contains(v.Value, `\`)
			}
		}
	}
	var b strings.Builder
	for _, p := range r.Hdoc.Parts {
		l, ok := p.(*syntax.Lit)
		if !ok {
			return "", false
		}
		if quoted {
			b.WriteString(l.Value)
		} else {
			b.WriteString(dqUnescape(l.Value))
		}
	}
	body := b.String()
	if r.Op == syntax.DashHdoc {
		lines := strings.Split(body, "\n")
		for i, l := range lines {
			lines[i] = strings.TrimLeft(l, "\t")
		}
		body = strings.Join(lines, "\n")
	}
	return body, true
}
