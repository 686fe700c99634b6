package masking

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds the nesting the JSON walker follows.
const maxDepth = 1000

// seg is one step of a field path: a key, or any element (#), or any member (*).
type seg struct {
	key string
	any bool // # or *
}

// parsePath reads the subset of gjson paths that field rules use.
func parsePath(p string) ([]seg, error) {
	if p == "" {
		return nil, errors.New("required")
	}
	var out []seg
	var cur strings.Builder
	flush := func() error {
		k := cur.String()
		cur.Reset()
		if k == "" {
			return errors.New("empty segment")
		}
		if strings.ContainsAny(k, "|@?()=<>!%") {
			return fmt.Errorf("segment %q: only keys, # and * are supported", k)
		}
		out = append(out, seg{key: k, any: k == "#" || k == "*"})
		return nil
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '\\' && i+1 < len(p):
			i++
			cur.WriteByte(p[i])
		case c == '.':
			if err := flush(); err != nil {
				return nil, err
			}
		default:
			cur.WriteByte(c)
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// step is one level of the walker's current path.
type step struct {
	key []byte // member name, nil for an array element
	idx int
}

// walker rewrites a JSON document, copying unchanged bytes lazily.
type walker struct {
	m      *Masker
	src    []byte
	pos    int
	out    []byte
	last   int
	path   []step
	skip   int // inside a value a field rule replaces
	counts Counts
	fs     []finding
	buf    []byte
	esc    []escape
	label  []byte // "name: value" scratch for findValue
	sc     *scan  // scan state reused by every find of this walk
	memos  *nameMemo
	names  [][]byte // member names of the objects being read, innermost last (see nameSet)
	only   [][]byte // Member: the path of the member masked; the rest is copied
	in     int      // Member: how many keys of only the object being read is under
}

var (
	errSyntax    = errors.New("invalid JSON")
	errNameClash = errors.New("member name equals a masked name")
)

// JSON masks the JSON document src: every string value, every member name and every
// number as written (a number with a finding becomes a string holding its masked text),
// and applies the field rules. It returns src itself and nil counts when nothing was
// masked, and an error for input that is not JSON or for an object in which a name sent by
// the upstream equals one masked earlier (see [Masker.maskName]).
func (m *Masker) JSON(src []byte) ([]byte, Counts, error) {
	return m.walk(walker{m: m, src: src})
}

// Member is [Masker.JSON] restricted to the value at path, a chain of member names from the
// top-level object doc (e.g. "params", "arguments"); field rule paths are relative to that
// value and the rest of doc is copied unchanged. Without path it is [Masker.JSON]. A doc
// where the path leads nowhere is returned as is; invalid JSON is still an error.
func (m *Masker) Member(doc []byte, path ...string) ([]byte, Counts, error) {
	if len(path) == 0 {
		return m.JSON(doc)
	}
	only := make([][]byte, len(path))
	for i, k := range path {
		only[i] = []byte(k)
	}
	return m.walk(walker{m: m, src: doc, only: only})
}

// scratch holds a walker's reusable buffers between calls.
type scratch struct {
	buf   []byte
	esc   []escape
	fs    []finding
	path  []step
	label []byte
	names [][]byte
	sc    scan
	memos nameMemo
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func (m *Masker) walk(w walker) ([]byte, Counts, error) {
	src := w.src
	sp := scratchPool.Get().(*scratch)
	w.buf, w.fs, w.path, w.esc, w.label, w.names = sp.buf, sp.fs, sp.path[:0], sp.esc[:0], sp.label[:0], sp.names[:0]
	w.sc, w.memos = &sp.sc, &sp.memos
	defer func() {
		if cap(w.buf) <= 1<<20 && cap(w.label) <= 1<<20 {
			clear(w.names[:cap(w.names)]) // drop references to this document
			sp.sc = scan{}
			sp.buf, sp.fs, sp.path, sp.esc, sp.label, sp.names = w.buf[:0], w.fs[:0], w.path[:0], w.esc[:0], w.label[:0], w.names[:0]
			scratchPool.Put(sp)
		}
	}()
	if w.only != nil {
		w.skip = 1
	}
	if err := w.value(0); err != nil {
		return nil, nil, err
	}
	if w.ws(); w.pos != len(src) {
		return nil, nil, fmt.Errorf("mask json at %d: %w", w.pos, errSyntax)
	}
	if w.out == nil {
		return src, nil, nil
	}
	return append(w.out, src[w.last:]...), w.counts, nil
}

func (w *walker) ws() {
	for w.pos < len(w.src) {
		switch w.src[w.pos] {
		case ' ', '\t', '\n', '\r':
			w.pos++
		default:
			return
		}
	}
}

func (w *walker) fail() error { return fmt.Errorf("mask json at %d: %w", w.pos, errSyntax) }

// emit replaces src[a:b] with r in the output.
func (w *walker) emit(a, b int, r []byte) {
	if w.out == nil {
		w.out = make([]byte, 0, len(w.src)+64)
	}
	w.out = append(w.out, w.src[w.last:a]...)
	w.out = append(w.out, r...)
	w.last = b
}

func (w *walker) value(depth int) error {
	if depth > maxDepth {
		return w.fail()
	}
	w.ws()
	if w.pos >= len(w.src) {
		return w.fail()
	}
	if f := w.field(); f != nil && w.skip == 0 {
		a := w.pos
		w.skip++
		err := w.value(depth)
		w.skip--
		if err != nil {
			return err
		}
		v := w.src[a:w.pos]
		st := f.strat
		if v[0] == '"' {
			if v, err = w.decode(a, w.pos); err != nil {
				return err
			}
		} else if st == Partial {
			st, v = Redact, nil // no last four of a number or an object: stars only
		}
		if v == nil {
			w.emit(a, w.pos, []byte(`"********"`))
			w.count(f.typ)
		} else if !isMasked(v) {
			w.emit(a, w.pos, appendQuoted(nil, w.m.rewrite(nil, v, f.typ, st)))
			w.count(f.typ)
		}
		return nil
	}
	switch c := w.src[w.pos]; c {
	case '{':
		w.pos++
		w.ws()
		if w.pos < len(w.src) && w.src[w.pos] == '}' {
			w.pos++
			return nil
		}
		ns := nameSet{base: len(w.names)}
		for {
			w.ws()
			if w.pos >= len(w.src) || w.src[w.pos] != '"' {
				return w.fail()
			}
			a := w.pos
			b, esc, err := w.str()
			if err != nil {
				return err
			}
			key := w.src[a+1 : b-1]
			if esc {
				if key, err = w.decode(a, b); err != nil {
					return err
				}
				key = bytes.Clone(key)
			}
			if w.skip == 0 {
				if err := w.maskName(a, b, key, &ns); err != nil {
					return err
				}
			}
			w.ws()
			if w.pos >= len(w.src) || w.src[w.pos] != ':' {
				return w.fail()
			}
			w.pos++
			if w.only != nil && depth == w.in && w.in < len(w.only) {
				// Member: only the value at the path is masked, with paths relative to it.
				if err := w.under(key, depth); err != nil {
					return err
				}
			} else {
				w.path = append(w.path, step{key: key})
				if err := w.value(depth + 1); err != nil {
					return err
				}
				w.path = w.path[:len(w.path)-1]
			}
			w.ws()
			if w.pos >= len(w.src) {
				return w.fail()
			}
			switch w.src[w.pos] {
			case ',':
				w.pos++
			case '}':
				w.pos++
				w.names = w.names[:ns.base]
				return nil
			default:
				return w.fail()
			}
		}
	case '[':
		w.pos++
		w.ws()
		if w.pos < len(w.src) && w.src[w.pos] == ']' {
			w.pos++
			return nil
		}
		for i := 0; ; i++ {
			w.path = append(w.path, step{idx: i})
			if err := w.value(depth + 1); err != nil {
				return err
			}
			w.path = w.path[:len(w.path)-1]
			w.ws()
			if w.pos >= len(w.src) {
				return w.fail()
			}
			switch w.src[w.pos] {
			case ',':
				w.pos++
			case ']':
				w.pos++
				return nil
			default:
				return w.fail()
			}
		}
	case '"':
		a := w.pos
		b, esc, err := w.str()
		if err != nil {
			return err
		}
		if w.skip == 0 {
			return w.maskString(a, b, esc)
		}
		return nil
	case 't', 'f', 'n':
		for _, lit := range []string{"true", "false", "null"} {
			if bytes.HasPrefix(w.src[w.pos:], []byte(lit)) {
				w.pos += len(lit)
				return nil
			}
		}
		return w.fail()
	default:
		a := w.pos
		if err := w.number(); err != nil {
			return err
		}
		if w.skip == 0 {
			w.maskNumber(a, w.pos)
		}
		return nil
	}
}

// under reads the value of member key of an object on Member's path: the last key of the
// path unmasks it, an earlier one descends, any other key is copied.
func (w *walker) under(key []byte, depth int) error {
	if string(key) != string(w.only[w.in]) {
		return w.value(depth + 1)
	}
	if w.in == len(w.only)-1 {
		w.skip--
		defer func() { w.skip++ }()
		return w.value(depth + 1)
	}
	w.in++
	defer func() { w.in-- }()
	return w.value(depth + 1)
}

// number moves past a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (w *walker) number() error {
	s, i := w.src, w.pos
	digits := func() int {
		j := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		return i - j
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		return w.fail()
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return w.fail()
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return w.fail()
		}
	}
	w.pos = i
	return nil
}

// str moves past the string at w.pos and returns its end and whether it has escapes.
func (w *walker) str() (int, bool, error) {
	s := w.src
	i := w.pos + 1
	// Most strings of a document are short names and values: a byte loop finds their end
	// sooner than the two IndexByte calls below.
	for j := i; j < min(len(s), i+24); j++ {
		if c := s[j]; c == '"' {
			w.pos = j + 1
			return w.pos, false, nil
		} else if c == '\\' {
			break
		}
	}
	q := bytes.IndexByte(s[i:], '"')
	if q < 0 {
		return 0, false, w.fail()
	}
	if bytes.IndexByte(s[i:i+q], '\\') < 0 {
		w.pos = i + q + 1
		return w.pos, false, nil
	}
	for {
		q := bytes.IndexByte(s[i:], '"')
		if q < 0 {
			return 0, false, w.fail()
		}
		q += i
		j := i
		for {
			k := bytes.IndexByte(s[j:q], '\\')
			if k < 0 {
				w.pos = q + 1
				return w.pos, true, nil
			}
			j += k + 2 // past the escaped byte
			if j > q {
				break // the quote at q was escaped: look for the next one
			}
		}
		i = j
	}
}

// decode returns the content of the string token src[a:b] with escapes resolved, in a
// scratch buffer that the next decode overwrites.
func (w *walker) decode(a, b int) ([]byte, error) {
	s := w.src[a+1 : b-1]
	out := w.buf[:0]
	if cap(out) < len(s) {
		out = make([]byte, 0, len(s)+len(s)/4)
	}
	for i := 0; i < len(s); i++ {
		if k := indexShort(s[i:], '\\'); k != 0 {
			if k < 0 {
				out = append(out, s[i:]...)
				break
			}
			out = append(out, s[i:i+k]...)
			i += k
		}
		esc := escape{dec: len(out), raw: i}
		i++
		if i >= len(s) {
			return nil, w.fail()
		}
		switch s[i] {
		case '"', '\\', '/':
			out = append(out, s[i])
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
			r, n := hex4(s[i+1:])
			if n < 0 {
				return nil, w.fail()
			}
			i += 4
			if utf16.IsSurrogate(r) {
				r2, n2 := rune(-1), -1
				if i+2 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
					r2, n2 = hex4(s[i+3:])
				}
				if n2 < 0 {
					r = utf8.RuneError
				} else if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					r = d
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, w.fail()
		}
		esc.decLen, esc.rawLen = len(out)-esc.dec, i+1-esc.raw
		w.esc = append(w.esc, esc)
	}
	w.buf = out
	return out, nil
}

// indexShort is bytes.IndexByte for text where c tends to come soon (the escapes of HTML
// in a JSON string): a byte loop over the first bytes saves the call.
func indexShort(s []byte, c byte) int {
	for i := range min(len(s), 16) {
		if s[i] == c {
			return i
		}
	}
	if len(s) <= 16 {
		return -1
	}
	if k := bytes.IndexByte(s[16:], c); k >= 0 {
		return 16 + k
	}
	return -1
}

// escape maps one escape sequence of a string token to the bytes it decoded to.
type escape struct{ dec, decLen, raw, rawLen int }

// rawOffset maps an offset in the decoded string to one in the raw token content: a start
// inside an escape's output rounds down to the backslash, an end rounds up past the escape.
func (w *walker) rawOffset(d int, end bool) int {
	k, _ := slices.BinarySearchFunc(w.esc, d, func(e escape, d int) int { return cmp.Compare(e.dec, d+1) })
	if k == 0 {
		return d
	}
	e := w.esc[k-1] // the last escape starting at or before d
	switch {
	case d == e.dec:
		return e.raw
	case d < e.dec+e.decLen && !end:
		return e.raw
	case d < e.dec+e.decLen:
		return e.raw + e.rawLen
	}
	return e.raw + e.rawLen + d - e.dec - e.decLen
}

// hex4 reads the four hex digits of a \u escape; -1 when b does not start with four.
func hex4(b []byte) (rune, int) {
	if len(b) < 4 {
		return 0, -1
	}
	var v rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, -1
		}
		v = v<<4 | rune(c)
	}
	return v, 4
}

// appendQuoted appends s as a JSON string.
func appendQuoted(dst, s []byte) []byte {
	const hexd = "0123456789abcdef"
	dst = append(dst, '"')
	for len(s) > 0 {
		k := 0
		for k < len(s) && s[k] >= 0x20 && s[k] != '"' && s[k] != '\\' {
			k++
		}
		dst = append(dst, s[:k]...)
		if k == len(s) {
			break
		}
		c := s[k]
		s = s[k+1:]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexd[c>>4], hexd[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// maskString masks the string token src[a:b].
func (w *walker) maskString(a, b int, esc bool) error {
	v := w.src[a+1 : b-1]
	w.esc = w.esc[:0]
	if esc {
		var err error
		if v, err = w.decode(a, b); err != nil {
			return err
		}
	}
	w.fs = w.findValue(v, w.key())
	if len(w.fs) == 0 {
		return nil
	}
	if w.out == nil {
		w.out = make([]byte, 0, len(w.src)+len(w.src)/8)
	}
	// Findings are spliced into the raw token: other escapes stay as sent, and the tokens
	// every strategy writes need no escaping.
	for _, f := range w.fs {
		rs, re := a+1+w.rawOffset(f.start, false), a+1+w.rawOffset(f.end, true)
		w.out = append(w.out, w.src[w.last:rs]...)
		w.out = w.m.replace(w.out, v[f.start:f.end], f.typ)
		w.last = re
		w.count(f.typ)
	}
	return nil
}

// key is the nearest member name on the path: the context of the current value.
func (w *walker) key() []byte {
	for i := len(w.path) - 1; i >= 0; i-- {
		if w.path[i].key != nil {
			return w.path[i].key
		}
	}
	return []byte{}
}

// field returns the first field rule matching the current path, or nil.
func (w *walker) field() *fieldRule {
	for i := range w.m.fields {
		f := &w.m.fields[i]
		if len(f.path) != len(w.path) {
			continue
		}
		ok := true
		for i, sg := range f.path {
			st := w.path[i]
			switch {
			case sg.key == "#":
				ok = st.key == nil
			case sg.key == "*":
			case st.key != nil:
				ok = string(st.key) == sg.key
			default:
				ok = sg.key == strconv.Itoa(st.idx)
			}
			if !ok {
				break
			}
		}
		if ok {
			return f
		}
	}
	return nil
}

func (w *walker) count(typ int) {
	if w.counts == nil {
		w.counts = Counts{}
	}
	w.counts[w.m.types[typ]]++
}

// maxLabel bounds the member names findValue writes before a value.
const maxLabel = 64

// findValue returns the findings in v, a string's content or a number as written, whose
// member name is key. A name that holds a detector keyword ("user_password", "AWS_SECRET",
// "api_token") is context the way the label of a line is in text: the scan then runs over
// "key: v", as the text rendering of the row reads, and keeps what falls in v. Without a
// keyword the name still serves as context through the scan's key (SSN, phone, secret names).
func (w *walker) findValue(v, key []byte) []finding {
	m := w.m
	if len(key) == 0 || len(key) > maxLabel {
		return m.findIn(w.sc, v, 0, key, false, w.fs)
	}
	kw, kind := w.nameFacts(key)
	if !kw {
		return m.scanIn(w.sc, v, 0, key, kind, false, w.fs)
	}
	lb := append(append(w.label[:0], key...), ':', ' ')
	off := len(lb)
	lb = append(lb, v...)
	w.label = lb
	fs := m.scanIn(w.sc, lb, off, key, kind, false, w.fs)
	out := fs[:0]
	for _, f := range fs {
		if f.end <= off {
			continue // a finding in the name itself: maskName deals with names
		}
		f.start, f.end = max(f.start, off)-off, f.end-off
		out = append(out, f)
	}
	return out
}

// nameFacts returns whether a keyword occurs in the member name k and the kind of secret it
// names, from the memo when k is short enough to be kept there.
func (w *walker) nameFacts(k []byte) (bool, uint8) {
	if e := w.memo(k); e != nil {
		return e.kw, e.kind
	}
	return w.m.keywordIn(k), w.m.keyKind(k)
}

// nameMemo keeps what the walker learnt of recent member names, which repeat row after
// row: whether the scan of the name found anything, whether a keyword occurs in it, and
// the kind of secret it names. Each is a function of the name and the Masker alone.
type nameMemo struct {
	m *Masker
	e [64]memoEntry
}

// memoMax is the longest name the memo keeps.
const memoMax = 27

type memoEntry struct {
	n    uint8 // length of the name; 0 for an empty slot
	scan uint8 // memoUnknown, memoClean or memoFound
	kw   bool
	kind uint8
	name [memoMax]byte
}

const (
	memoUnknown uint8 = iota
	memoClean
	memoFound
)

// memo returns the memo entry of the member name k, replacing the slot's previous name;
// nil when k is empty or too long to keep.
func (w *walker) memo(k []byte) *memoEntry {
	if len(k) == 0 || len(k) > memoMax {
		return nil
	}
	nm := w.memos
	if nm.m != w.m {
		*nm = nameMemo{m: w.m} // a scratch last used by another Masker
	}
	// Two ways per set, the most recent name first: the names of a row rarely evict each other.
	h := uint32(len(k)) //nolint:gosec // G115: len(k) <= memoMax
	for _, c := range k {
		h = h*31 + uint32(c)
	}
	set := nm.e[(h*0x9e3779b1)>>27*2:][:2]
	for i := range set {
		if e := &set[i]; int(e.n) == len(k) && string(e.name[:e.n]) == string(k) {
			return e
		}
	}
	set[1] = set[0]
	e := &set[0]
	*e = memoEntry{n: uint8(len(k)), kw: w.m.keywordIn(k), kind: w.m.keyKind(k)} //nolint:gosec // G115: len(k) <= memoMax
	copy(e.name[:], k)
	return e
}

// keywordIn reports whether some detector keyword occurs in the member name k.
func (m *Masker) keywordIn(k []byte) bool {
	for i := 0; i+1 < len(k); i++ {
		if !m.tabs[0].has(k[i], k[i+1]) || class[k[i]] != cKey {
			continue
		}
		for _, x := range m.keywordsAt(k[i], k[i+1]) {
			kw := &m.kws[x]
			if hasPrefixFold(k[i:], kw.lo) && (kw.exact == nil || string(k[i:i+len(kw.exact)]) == string(kw.exact)) {
				return true
			}
		}
	}
	return false
}

// maskNumber masks the number token src[a:b] as the text it is written as. A finding
// turns the whole token into a JSON string, since a redaction is not a number.
func (w *walker) maskNumber(a, b int) {
	v := w.src[a:b]
	key := w.key()
	if len(w.m.custom) == 0 && numberRun(v) < 9 && len(key) <= maxLabel {
		// No card, SSN or phone number fits in fewer than 9 digits, and no built-in
		// keyword is made of a number's bytes: only the member name can make it a secret.
		kw, kind := false, kindNone
		if len(key) > 0 {
			kw, kind = w.nameFacts(key)
		}
		if !kw {
			w.fs = w.m.keyOnly(w.sc, v, key, kind, w.fs)
		} else {
			w.fs = w.findValue(v, key)
		}
	} else {
		w.fs = w.findValue(v, key)
	}
	if len(w.fs) == 0 {
		return
	}
	r := append(w.m.apply(append(w.buf[:0], '"'), v, w.fs, &w.counts), '"')
	w.buf = r
	w.emit(a, b, r) // tokens of every strategy and the digits, '-', '.', 'e' around them need no escaping
}

// numberRun returns the longest run of digits of the JSON number v that a number check can
// start on: the integer part, or the exponent after its sign (the fraction follows a dot,
// an unsigned exponent a letter, and the checks start after neither).
func numberRun(v []byte) int {
	n, run, best := len(v), 0, 0
	for i := 0; i < n; i++ {
		switch c := v[i]; {
		case isDigit(c):
			run++
			best = max(best, run)
		case c == '.' || c == 'e' || c == 'E':
			for i+1 < n && isDigit(v[i+1]) {
				i++
			}
			run = 0
		default: // a sign
			run = 0
		}
	}
	return best
}

// nameSet tracks the member names of one object, so that masked names stay distinct.
type nameSet struct {
	base int              // this object's names start at walker.names[base]
	seen map[string]uint8 // from the first masked name on: nameSent or nameMasked
}

const (
	nameSent = iota + 1
	nameMasked
)

// maskName masks the member name token src[a:b], decoded as key. Names are masked without
// member-name context (a name's parent is no label for it). When the masked text equals a
// name already in the object, a "#2", "#3"… suffix keeps it distinct, since most parsers
// keep only the last of equal names and data would silently merge. A name sent after a
// masked one that it equals cannot be renamed without changing what the upstream said:
// errNameClash, and the message is withheld.
func (w *walker) maskName(a, b int, key []byte, ns *nameSet) error {
	w.fs = w.fs[:0]
	if e := w.memo(key); e == nil || e.scan != memoClean {
		w.fs = w.m.scanIn(w.sc, key, 0, nil, kindNone, false, w.fs)
		if e != nil {
			e.scan = memoClean
			if len(w.fs) > 0 {
				e.scan = memoFound
			}
		}
	}
	if len(w.fs) == 0 {
		if ns.seen == nil {
			w.names = append(w.names, key)
			return nil
		}
		if ns.seen[string(key)] == nameMasked {
			return fmt.Errorf("mask json at %d: %w", a, errNameClash)
		}
		ns.seen[string(key)] = nameSent
		return nil
	}
	if ns.seen == nil {
		ns.seen = make(map[string]uint8, len(w.names)-ns.base+1)
		for _, n := range w.names[ns.base:] {
			ns.seen[string(n)] = nameSent
		}
		w.names = w.names[:ns.base]
	}
	name := w.m.apply(nil, key, w.fs, &w.counts)
	n := len(name)
	for k := 2; ns.seen[string(name)] != 0; k++ {
		name = strconv.AppendInt(append(name[:n], '#'), int64(k), 10)
	}
	ns.seen[string(name)] = nameMasked
	w.emit(a, b, appendQuoted(nil, name))
	return nil
}
