package policy

import (
	"fmt"
	"strings"
)

// The SQL and shell parsers are third-party code that recurses over what an agent sends:
// libpg_query (C) overflows its thread's stack on a deep tree and kills the process with
// SIGSEGV, and mvdan.cc/sh spends seconds and gigabytes on deep substitutions before Go's
// stack limit ends the process. Neither is a panic, so contain cannot catch them. Every
// payload is therefore measured by a cheap lexer of our own before a parser sees it; what
// exceeds a bound is "could not be checked" (unparsed, which policies refuse).
const (
	// maxSQLBytes bounds one SQL payload. Ordinary agent statements are far smaller.
	maxSQLBytes = 256 << 10
	// maxShellBytes bounds one shell command line (heredoc bodies included). At this size
	// even a payload the pre-scan misjudged cannot nest deep enough to exhaust Go's stack.
	maxShellBytes = 128 << 10
	// maxNesting bounds the estimated tree depth of a payload (see sqlDepth, shellDepth).
	// libpg_query needs about 400 bytes of C stack per level of a left-deep expression
	// and about 1 KiB per nested EXISTS subquery: 1000 stays far below an 8 MiB thread
	// stack and below 1 MiB ones too, while a 64 KiB query nested 100 deep passes.
	maxNesting = 1000
	// bracketWeight is what one bracket level adds to the estimate: a parenthesised
	// subquery is several tree levels (sublink, select, target, expression).
	bracketWeight = 4
	// maxTreeDepth bounds the recursive walks over parsed trees (proto messages, Vitess
	// and mvdan nodes). The pre-scan keeps real trees well below it; it stops a walk of a
	// tree the pre-scan misjudged instead of trusting the estimate.
	maxTreeDepth = 4 * maxNesting
)

// limitError is a payload refused before parsing because it exceeds a bound.
type limitError struct{ msg string }

func (e *limitError) Error() string { return e.msg }

func tooLarge(n, limit int) error {
	return &limitError{fmt.Sprintf("too large to check (%d bytes > %d)", n, limit)}
}

func tooDeep() error {
	return &limitError{fmt.Sprintf("too deeply nested to check (depth > %d)", maxNesting)}
}

// errTreeDepth is a parsed tree deeper than maxTreeDepth.
var errTreeDepth = &limitError{fmt.Sprintf("too deeply nested to check (tree depth > %d)", maxTreeDepth)}

// depthMeter keeps the running estimate. Each open bracket is a frame; in a frame, chain
// counts tokens that can add a tree level on top of what came before in the frame (set
// operations, joins, AND/OR/NOT, pipes) and is never reset inside the frame, while seg counts
// operators since the last comma or connective: list elements are siblings, so their
// operators do not stack. A frame's share of the depth is bracketWeight+chain+seg, and the
// estimate at any point is the sum over the open frames.
type depthMeter struct {
	frames []meterFrame
	outer  int // sum of the shares of every frame below the top one
	max    int
}

type meterFrame struct {
	kind       byte // '(' '[' 'c' (CASE) for SQL; the opener for shell
	chain, seg int
	cases      int // shell: 1 for a `case` statement, whose patterns end in an unmatched )
	dq         bool
}

func newMeter() *depthMeter {
	m := &depthMeter{frames: make([]meterFrame, 1, 16)}
	m.note()
	return m
}

func (m *depthMeter) top() *meterFrame { return &m.frames[len(m.frames)-1] }

func share(f *meterFrame) int { return bracketWeight + f.chain + f.seg }

// note records the current estimate; it reports whether the bound is exceeded.
func (m *depthMeter) note() bool {
	if d := m.outer + share(m.top()); d > m.max {
		m.max = d
	}
	return m.max > maxNesting
}

func (m *depthMeter) push(f meterFrame) bool {
	m.outer += share(m.top())
	m.frames = append(m.frames, f)
	return m.note()
}

// pop closes the top frame; the outermost frame is never closed.
func (m *depthMeter) pop() {
	if len(m.frames) == 1 {
		return
	}
	m.frames = m.frames[:len(m.frames)-1]
	m.outer -= share(m.top())
}

func (m *depthMeter) chain() bool { m.top().chain++; return m.note() }
func (m *depthMeter) seg() bool   { m.top().seg++; return m.note() }

// sqlChain are keywords that can stack tree levels across list elements or operands;
// sqlSep are the connectives among them, after which a new operand starts.
var (
	sqlChain = map[string]bool{
		"AND": true, "OR": true, "XOR": true, "NOT": true, "UNION": true, "INTERSECT": true,
		"EXCEPT": true, "MINUS": true, "JOIN": true,
	}
	sqlSep = map[string]bool{"AND": true, "OR": true, "XOR": true}
	// sqlOps are keyword operators that add a level on top of their operand.
	sqlOps = map[string]bool{
		"IS": true, "ISNULL": true, "NOTNULL": true, "LIKE": true, "ILIKE": true, "SIMILAR": true,
		"BETWEEN": true, "IN": true, "COLLATE": true, "AT": true, "OVERLAPS": true, "ESCAPE": true,
		"REGEXP": true, "RLIKE": true, "DIV": true, "MOD": true, "SOUNDS": true, "MEMBER": true,
		"INTERVAL": true, "BINARY": true, "ANY": true, "SOME": true, "EXISTS": true,
		"ARRAY": true, "ROW": true, "UNIQUE": true, "OPERATOR": true,
	}
)

// sqlBound refuses a payload that is too large or too deeply nested for the parsers.
func sqlBound(d Dialect, q string) error {
	if len(q) > maxSQLBytes {
		return tooLarge(len(q), maxSQLBytes)
	}
	if sqlDepth(d, q) > maxNesting {
		return tooDeep()
	}
	return nil
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func isOpByte(c byte) bool { return strings.IndexByte("+-*/<>=~!@#%^&|`?:", c) >= 0 }

// sqlDepth estimates the deepest tree the dialect's parser would build from q; it stops
// counting once the bound is passed. It lexes strings, quoted identifiers, comments and
// dollar quotes as the dialect does, so their contents count for nothing, and it never
// under-counts an operator: each operator character counts, even inside one operator.
func sqlDepth(d Dialect, q string) int {
	my := d == MySQL
	m := newMeter()
	var upper [12]byte // a word in upper case, for keyword lookups without allocating
	versioned := false // inside a MySQL /*! … */ comment, which is code
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '.':
			i++
		case c == '\'' || c == '"' || (c == '`' && my):
			i = sqlQuoted(q, i, my && c != '`')
		case c == '-' && i+1 < len(q) && q[i+1] == '-' &&
			(!my || i+2 == len(q) || strings.IndexByte(" \t\n\r", q[i+2]) >= 0):
			i = lineEnd(q, i)
		case my && (c == '#' || (c == '/' && i+1 < len(q) && q[i+1] == '/')):
			i = lineEnd(q, i)
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			if my && !versioned && i+2 < len(q) && q[i+2] == '!' {
				versioned, i = true, i+3
				continue
			}
			i = blockComment(q, i, !my)
		case my && versioned && c == '*' && i+1 < len(q) && q[i+1] == '/':
			versioned, i = false, i+2
		case c == ';':
			i++
			f := m.top()
			f.seg = 0
			if len(m.frames) == 1 {
				f.chain = 0
			}
		case c == ',':
			i++
			m.top().seg = 0
		case c == '(' || c == '[':
			i++
			if m.push(meterFrame{kind: '('}) {
				return m.max
			}
		case c == ')' || c == ']':
			i++
			for len(m.frames) > 1 && m.top().kind == 'c' {
				m.pop() // an unterminated CASE ends with its bracket
			}
			m.pop()
		case c == '$' && !my && i+1 < len(q) && !('0' <= q[i+1] && q[i+1] <= '9'):
			i = dollarQuoted(q, i)
		case isWordByte(c):
			j := i
			for j < len(q) && isWordByte(q[j]) {
				j++
			}
			if j < len(q) && q[j] == '\'' {
				// A prefixed string: E'…' has backslash escapes in Postgres; in MySQL every
				// string has them (X'…', N'…', _utf8mb4'…').
				i = sqlQuoted(q, j, my || (j == i+1 && (q[i] == 'E' || q[i] == 'e')))
				continue
			}
			word := q[i:j]
			i = j
			if len(word) > len(upper) {
				continue // longer than any keyword counted
			}
			for k := range len(word) {
				c := word[k]
				if 'a' <= c && c <= 'z' {
					c -= 'a' - 'A'
				}
				upper[k] = c
			}
			if m.sqlWord(upper[:len(word)]) {
				return m.max
			}
		case isOpByte(c):
			i++
			if m.seg() {
				return m.max
			}
		default:
			i++
		}
	}
	return m.max
}

// sqlWord counts one keyword; it reports whether the bound is exceeded.
func (m *depthMeter) sqlWord(b []byte) bool {
	switch w := string(b); {
	case w == "CASE":
		return m.push(meterFrame{kind: 'c'})
	case w == "END":
		if m.top().kind == 'c' {
			m.pop()
		}
	case w == "WHEN" || w == "THEN" || w == "ELSE":
		if m.top().kind == 'c' {
			m.top().seg = 0
		}
	case sqlChain[w]:
		over := m.chain()
		if sqlSep[w] {
			m.top().seg = 0
		}
		return over
	case sqlOps[w]:
		return m.seg()
	}
	return false
}

// sqlQuoted returns the end of the quoted string or identifier that starts at q[i]. A
// doubled quote is one quote; backslash escapes the next byte when escapes is set. An
// unterminated quote runs to the end (the parser then refuses it).
func sqlQuoted(q string, i int, escapes bool) int {
	quote := q[i]
	for j := i + 1; j < len(q); j++ {
		switch q[j] {
		case '\\':
			if escapes {
				j++
			}
		case quote:
			if j+1 < len(q) && q[j+1] == quote {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(q)
}

func lineEnd(q string, i int) int {
	if n := strings.IndexByte(q[i:], '\n'); n >= 0 {
		return i + n + 1
	}
	return len(q)
}

// blockComment returns the end of the /* comment at q[i]; Postgres comments nest.
func blockComment(q string, i int, nested bool) int {
	depth := 0
	for j := i; j+1 < len(q); j++ {
		switch {
		case q[j] == '/' && q[j+1] == '*':
			if nested || depth == 0 {
				depth++
			}
			j++
		case q[j] == '*' && q[j+1] == '/':
			depth--
			j++
			if depth == 0 {
				return j + 1
			}
		}
	}
	return len(q)
}

// dollarQuoted returns the end of a Postgres $tag$…$tag$ string at q[i], or i+1 when the
// dollar does not start one.
func dollarQuoted(q string, i int) int {
	j := i + 1
	for j < len(q) && q[j] != '$' && isWordByte(q[j]) {
		j++
	}
	if j >= len(q) || q[j] != '$' {
		return i + 1
	}
	tag := q[i : j+1]
	if n := strings.Index(q[j+1:], tag); n >= 0 {
		return j + 1 + n + len(tag)
	}
	return len(q)
}

// shellBound refuses a command line that is too large or too deeply nested for the parser.
func shellBound(cmd string) error {
	if len(cmd) > maxShellBytes {
		return tooLarge(len(cmd), maxShellBytes)
	}
	m := newMeter()
	if shellScan(cmd, m) || m.max > maxNesting {
		return tooDeep()
	}
	return nil
}

// Shell frame kinds: the outermost frame (0), ( subshell or <( ), $ ( $( ), a (arithmetic),
// { (group or brace expansion), k (if, while, until, for, select, case … until its closing
// keyword), p ( ${ ), ` (backtick), " (double quotes), h (unquoted heredoc body).
func shellCode(k byte) bool { return k != 'a' && k != '"' && k != 'h' && k != 'p' }

var shellOpen = map[string]bool{"if": true, "while": true, "until": true, "for": true, "select": true, "case": true}

var shellClose = map[string]bool{"fi": true, "done": true, "esac": true}

// shellScan measures cmd like mvdan.cc/sh would nest it: quotes, ANSI-C quotes, escapes,
// comments, substitutions, arithmetic, parameter expansions, compound commands, and
// heredoc bodies (an unquoted body is scanned for substitutions). Pipelines and &&/|| chains
// count as levels until a statement ends. It reports whether the bound is exceeded.
func shellScan(q string, m *depthMeter) bool {
	var pending []heredocSpec
	cmdPos, afterOp := true, false
	for i := 0; i < len(q); {
		f := m.top()
		c := q[i]
		code := shellCode(f.kind)
		switch {
		case c == '\\':
			i += 2
			cmdPos, afterOp = false, false
			if f.kind == '`' && i-1 < len(q) && q[i-1] == '`' {
				// An escaped backtick nests a substitution; which ones close cannot be
				// told cheaply, so each counts as a level that is never given back.
				if m.chain() {
					return true
				}
			}
		case c == '$' && i+2 < len(q) && q[i+1] == '(' && q[i+2] == '(':
			i += 3
			if m.push(meterFrame{kind: '$'}) || m.push(meterFrame{kind: 'a'}) {
				return true
			}
		case c == '$' && i+1 < len(q) && q[i+1] == '(':
			i += 2
			cmdPos = true
			if m.push(meterFrame{kind: '$'}) {
				return true
			}
		case c == '$' && i+1 < len(q) && q[i+1] == '{':
			i += 2
			if m.push(meterFrame{kind: 'p', dq: f.dq || f.kind == '"' || f.kind == 'h'}) {
				return true
			}
		case c == '`':
			i++
			if f.kind == '`' {
				m.pop()
				break
			}
			cmdPos = true
			if m.push(meterFrame{kind: '`'}) {
				return true
			}
		case c == '"':
			i++
			switch {
			case f.kind == '"':
				m.pop()
			case f.kind != 'h':
				if m.push(meterFrame{kind: '"'}) {
					return true
				}
			}
		case f.kind == '"' || f.kind == 'h':
			i++ // other bytes of a double-quoted string or heredoc body are text
		case c == '$' && i+1 < len(q) && q[i+1] == '\'' && code:
			i = ansiQuoted(q, i+1)
			cmdPos, afterOp = false, false
		case c == '\'' && !(f.kind == 'p' && f.dq) && f.kind != 'a':
			if n := strings.IndexByte(q[i+1:], '\''); n >= 0 {
				i += n + 2
			} else {
				i = len(q)
			}
			cmdPos, afterOp = false, false
		case c == '(':
			i++
			kind := byte('(')
			if f.kind == 'a' || (i < len(q) && q[i] == '(' && cmdPos) {
				kind = 'a'
			}
			cmdPos = true
			if m.push(meterFrame{kind: kind}) {
				return true
			}
		case c == ')':
			i++
			if f.kind == 'k' && f.cases > 0 {
				cmdPos = true // the end of a case pattern
				break
			}
			for len(m.frames) > 1 && (m.top().kind == '{' || m.top().kind == 'k') {
				m.pop()
			}
			if k := m.top().kind; k == '(' || k == '$' || k == 'a' {
				m.pop()
			}
		case c == '{':
			i++
			cmdPos = true
			if m.push(meterFrame{kind: '{'}) {
				return true
			}
		case c == '}':
			i++
			if k := m.top().kind; k == '{' || k == 'p' {
				m.pop()
			}
		case f.kind == 'a' || f.kind == 'p':
			i++ // arithmetic and parameter expansions: only brackets and quotes matter
		case c == '#' && (i == 0 || strings.IndexByte(" \t\n;&|()<>", q[i-1]) >= 0):
			if n := strings.IndexByte(q[i:], '\n'); n >= 0 {
				i += n
			} else {
				i = len(q)
			}
		case c == '\n':
			i++
			if !afterOp {
				f.seg, cmdPos = 0, true
			}
			for _, h := range pending {
				end, next := heredocBody(q, i, h.delim, h.dash)
				if !h.quoted {
					if m.push(meterFrame{kind: 'h'}) || shellScan(q[i:end], m) {
						return true
					}
					m.pop()
				}
				i = next
			}
			pending = pending[:0]
		case c == ';' || (c == '&' && !(i+1 < len(q) && q[i+1] == '&') && !(i+1 < len(q) && q[i+1] == '>') && !(i > 0 && (q[i-1] == '>' || q[i-1] == '<'))):
			i++
			f.seg, cmdPos, afterOp = 0, true, false
		case c == '|' || (c == '&' && i+1 < len(q) && q[i+1] == '&'):
			i++
			if i < len(q) && (q[i] == '|' || q[i] == '&') {
				i++
			}
			cmdPos, afterOp = true, true
			if m.seg() {
				return true
			}
		case c == '<' && i+1 < len(q) && q[i+1] == '<' && code:
			if i+2 < len(q) && q[i+2] == '<' {
				i += 3 // a here-string
				break
			}
			h, next := heredocWord(q, i+2)
			pending = append(pending, h)
			i = next
		case isWordByte(c) && c != '$':
			j := i
			for j < len(q) && isWordByte(q[j]) && q[j] != '$' {
				j++
			}
			w := q[i:j]
			i = j
			afterOp = false
			switch {
			case cmdPos && shellOpen[w]:
				if m.push(meterFrame{kind: 'k', cases: boolInt(w == "case")}) {
					return true
				}
			case cmdPos && shellClose[w] && m.top().kind == 'k':
				m.pop()
			case w == "in" && m.top().kind == 'k':
				cmdPos = m.top().cases > 0 // case patterns follow
				continue
			}
			cmdPos = w == "then" || w == "do" || w == "else" || w == "elif" || w == "time" || (cmdPos && shellOpen[w])
		default:
			i++
			if c != ' ' && c != '\t' && c != '\r' {
				afterOp = false
			}
		}
	}
	return false
}

type heredocSpec = struct {
	delim        string
	quoted, dash bool
}

// heredocWord reads the delimiter after << (or <<-) at q[i:].
func heredocWord(q string, i int) (heredocSpec, int) {
	var h heredocSpec
	if i < len(q) && q[i] == '-' {
		h.dash = true
		i++
	}
	for i < len(q) && (q[i] == ' ' || q[i] == '\t') {
		i++
	}
	var b strings.Builder
	for i < len(q) && strings.IndexByte(" \t\n;&|<>()", q[i]) < 0 {
		switch c := q[i]; c {
		case '\'', '"':
			h.quoted = true
			n := strings.IndexByte(q[i+1:], c)
			if n < 0 {
				return h, len(q)
			}
			b.WriteString(q[i+1 : i+1+n])
			i += n + 2
		case '\\':
			h.quoted = true
			if i+1 < len(q) {
				b.WriteByte(q[i+1])
			}
			i += 2
		default:
			b.WriteByte(c)
			i++
		}
	}
	h.delim = b.String()
	return h, i
}

// heredocBody finds the body starting at q[i]: it ends before the line equal to delim (after
// leading tabs with <<-). It returns the body's end and where scanning resumes.
func heredocBody(q string, i int, delim string, dash bool) (end, next int) {
	for j := i; j < len(q); {
		n := strings.IndexByte(q[j:], '\n')
		lineEnd := len(q)
		if n >= 0 {
			lineEnd = j + n
		}
		line := q[j:lineEnd]
		if dash {
			line = strings.TrimLeft(line, "\t")
		}
		if line == delim {
			if lineEnd < len(q) {
				return j, lineEnd + 1
			}
			return j, len(q)
		}
		j = lineEnd + 1
	}
	return len(q), len(q)
}

// ansiQuoted returns the end of a $'…' string whose opening quote is at q[i].
func ansiQuoted(q string, i int) int {
	for j := i + 1; j < len(q); j++ {
		switch q[j] {
		case '\\':
			j++
		case '\'':
			return j + 1
		}
	}
	return len(q)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
