package masking

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Counts is the number of findings per type.
type Counts map[string]int

// Masker applies a compiled [Config]. It is safe for concurrent use.
type Masker struct {
	types    []string   // builtins, then custom detectors, then field names
	strat    []Strategy // per type
	on       [numBuiltin]bool
	kws      []keyword
	first    [256][]int  // keyword indexes by lower-cased first byte
	byPair   []span32    // lower-cased first byte, second byte → keywords in pairKws
	pairKws  []int32     // keyword indexes grouped by their lower-cased first two bytes
	pair     *pairSet    // byte pairs where some check starts
	mid      *pairSet    // byte pairs where a keyword may start glued to a preceding word
	tabs     [2]pairSet  // the prefilters of findIn: pair, and the pairs inside a word
	tabsRaw  [2]pairSet  // the same for wire text, where a backslash stops
	custom   []customDet // by index into types - numBuiltin
	fields   []fieldRule
	hashKey  []byte
	holdback int
	batch    int
}

type customDet struct {
	re     *regexp.Regexp
	check  func([]byte) bool
	typ    int
	maxLen int
	global bool // no keywords: run over every text
}

type fieldRule struct {
	path  []seg
	typ   int
	strat Strategy
}

// New compiles c. c.HashKey must be set when a strategy is hash (see [Config.HashKeyFile]).
func New(c Config) (*Masker, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	m := &Masker{pair: new(pairSet), mid: new(pairSet), hashKey: []byte(c.HashKey), holdback: maxPEM + leftContext, batch: batch}
	if slices.Contains(append(stratsOf(c), c.Strategy), Hash) && len(m.hashKey) == 0 {
		return nil, fmt.Errorf("hash_key: not loaded (hash_key_file %q must be read into hash_key)", c.HashKeyFile)
	}
	for _, n := range builtins {
		m.addType(n, c)
	}
	for _, d := range c.Detectors {
		m.on[slices.Index(builtins[:], d)] = true
	}
	m.builtinKeywords()
	m.providerKeywords()
	m.triggers()
	for _, d := range c.Custom {
		typ := m.addType(d.Name, c)
		re := regexp.MustCompile(d.Pattern) // validated
		cd := customDet{re: re, check: validators[d.Validator], typ: typ, maxLen: d.MaxLen}
		if cd.maxLen == 0 {
			cd.maxLen = defaultCustomLen
		}
		m.holdback = max(m.holdback, 2*cd.maxLen+leftContext)
		cd.global = len(d.Keywords) == 0
		idx := len(m.custom)
		m.custom = append(m.custom, cd)
		for _, k := range d.Keywords {
			m.keyword(strings.ToLower(k), false, func(sc *scan, i int, kw *keyword) { sc.customAt(idx, i, kw) })
		}
	}
	for _, f := range c.Fields {
		p, _ := parsePath(f.Path) // validated
		name := f.Name
		if name == "" {
			name = "FIELD"
		}
		typ := slices.Index(m.types, name)
		if typ < 0 {
			typ = m.addType(name, c)
		}
		st := f.Strategy
		if st == "" {
			st = m.strat[typ]
		}
		m.fields = append(m.fields, fieldRule{path: p, typ: typ, strat: st})
	}
	m.indexPairs()
	return m, nil
}

// indexPairs groups the keywords by their lower-cased first two bytes, so that a byte pair
// the prefilter lets through is checked only against the keywords that start with it.
func (m *Masker) indexPairs() {
	nums := m.on[tCard] || m.on[tSSN] || m.on[tPhone] || m.on[tIBAN]
	m.tabs[0] = *m.pair
	for c := range 256 {
		for d := range 256 {
			switch {
			case class[c] == cKey && m.mid.has(byte(c), byte(d)),
				c == '@' && m.on[tEmail],
				(c == '+' || c == '(') && isDigit(byte(d)) && nums:
				m.tabs[1].add(c, d)
			}
		}
	}
	m.tabsRaw = m.tabs
	for d := range 256 {
		m.tabsRaw[0].add('\\', d)
		m.tabsRaw[1].add('\\', d)
	}
	m.byPair = make([]span32, 1<<16)
	m.pairKws = m.pairKws[:0]
	for a := range 256 {
		if len(m.first[a]) == 0 {
			continue
		}
		for b := range 256 {
			start := len(m.pairKws)
			for _, k := range m.first[a] {
				lo := m.kws[k].lo
				if len(lo) == 1 || lo[1] == lower(byte(b)) {
					m.pairKws = append(m.pairKws, int32(k)) //nolint:gosec // G115: keywords come from a config, far below 2^31
				}
			}
			m.byPair[a<<8|b] = span32{uint32(start), uint32(len(m.pairKws))} //nolint:gosec // G115: as above

		}
	}
}

// span32 is a range of pairKws.
type span32 struct{ start, end uint32 }

// keywordsAt returns the indexes of the keywords that may start with the bytes c, d.
func (m *Masker) keywordsAt(c, d byte) []int32 {
	v := m.byPair[int(lower(c))<<8|int(d)]
	return m.pairKws[v.start:v.end]
}

func stratsOf(c Config) []Strategy {
	var out []Strategy
	for _, s := range c.Strategies {
		out = append(out, s)
	}
	for _, f := range c.Fields {
		out = append(out, f.Strategy)
	}
	return out
}

func (m *Masker) addType(name string, c Config) int {
	s := c.Strategy
	if o, ok := c.Strategies[name]; ok {
		s = o
	}
	m.types = append(m.types, name)
	m.strat = append(m.strat, s)
	return len(m.types) - 1
}

// keyword registers a trigger; exact keywords must match case too.
func (m *Masker) keyword(k string, exact bool, fn func(*scan, int, *keyword)) {
	m.addKeyword(k, exact, false, fn)
}

// token registers an exact keyword that starts a token: its check does nothing where the
// keyword is glued to a preceding word, so the scan skips it there without calling it.
func (m *Masker) token(k string, fn func(*scan, int, *keyword)) {
	m.addKeyword(k, true, true, fn)
}

func (m *Masker) addKeyword(k string, exact, bound bool, fn func(*scan, int, *keyword)) {
	lo := []byte(strings.ToLower(k))
	kw := keyword{lo: lo, fn: fn}
	if exact {
		kw.exact = []byte(k)
	}
	m.kws = append(m.kws, kw)
	m.first[lo[0]] = append(m.first[lo[0]], len(m.kws)-1)
	// Every spelling of the first two bytes that can start the keyword.
	variants := func(c byte) []byte {
		if exact || lower(c) == upperOf(c) {
			return []byte{c}
		}
		return []byte{lower(c), upperOf(c)}
	}
	b0 := lo[0]
	if exact {
		b0 = kw.exact[0]
	}
	for _, x := range variants(b0) {
		if len(lo) == 1 {
			for c := range 256 {
				m.pair.add(int(x), c)
				if !bound {
					m.mid.add(int(x), c)
				}
			}
			continue
		}
		b1 := lo[1]
		if exact {
			b1 = kw.exact[1]
		}
		for _, y := range variants(b1) {
			m.pair.add(int(x), int(y))
			if !bound {
				m.mid.add(int(x), int(y))
			}
		}
	}
}

// pairSet is a set of byte pairs as a bitmap small enough for the L1 cache.
type pairSet [256][4]uint64

func (p *pairSet) add(a, b int) { p[a][b>>6] |= 1 << (b & 63) }

func (p *pairSet) has(a, b byte) bool { return p[a][b>>6]&(1<<(b&63)) != 0 }

func upperOf(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 0x20
	}
	return c
}

// triggers marks the byte pairs where the number and email checks start.
func (m *Masker) triggers() {
	set := func(a byte) {
		for c := range 256 {
			m.pair.add(int(a), c)
		}
	}
	if m.on[tCard] || m.on[tSSN] || m.on[tPhone] || m.on[tIBAN] {
		for d := byte('0'); d <= '9'; d++ {
			set(d)
			m.pair.add('+', int(d))
			m.pair.add('(', int(d))
		}
	}
	if m.on[tIBAN] {
		// An IBAN's country code: its check starts at the word's first byte (see findIn).
		for a := 'A'; a <= 'Z'; a++ {
			for b := 'A'; b <= 'Z'; b++ {
				m.pair.add(int(a), int(b))
			}
		}
	}
	if m.on[tEmail] {
		set('@')
	}
}

func (m *Masker) builtinKeywords() {
	if m.on[tAWSAccessKey] {
		for _, p := range []string{"AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "APKA"} {
			m.token(p, awsAccessKey)
		}
	}
	if m.on[tAWSSecretKey] {
		for _, k := range []string{"aws_secret", "secret_access_key", "secretaccesskey", "aws secret"} {
			m.keyword(k, false, awsSecret)
		}
	}
	if m.on[tGitHub] {
		for _, p := range []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_"} {
			m.token(p, checksummed(tGitHub, 36))
		}
		m.token("github_pat_", fixedToken(tGitHub, 60, 255, isWord, 3.0))
	}
	if m.on[tGitLab] {
		m.token("glpat-", fixedToken(tGitLab, 20, 50, isB64URL, 3.0))
	}
	if m.on[tSlack] {
		m.token("xox", slackToken)
		m.keyword("hooks.slack.com/services/", false, slackWebhook)
		m.keyword("hooks.slack.com/workflows/", false, slackWebhook)
	}
	if m.on[tStripe] {
		for _, p := range []string{"sk_live_", "sk_test_", "rk_live_", "rk_test_"} {
			m.token(p, fixedToken(tStripe, 16, 247, isAlnum, 3.0))
		}
	}
	if m.on[tGoogle] {
		m.token("AIza", fixedToken(tGoogle, 35, 35, isB64URL, 3.0))
	}
	if m.on[tOpenAI] || m.on[tAnthropic] || m.on[tAIKey] {
		m.token("sk-", func(sc *scan, i int, kw *keyword) {
			skToken(sc, i, kw)
		})
	}
	if m.on[tOkta] {
		m.keyword("okta", false, okta)
		m.keyword("ssws", false, okta)
	}
	if m.on[tJWT] {
		m.token("eyJ", jwt)
	}
	if m.on[tPrivateKey] {
		m.keyword("-----BEGIN ", true, pem)
	}
	if m.on[tConnPassword] {
		m.keyword("://", true, connPassword)
	}
	if m.on[tGeneric] {
		for _, k := range []string{"password", "passwd", "pwd", "secret", "api_key", "api-key", "apikey", "token", "access_key", "access-key", "private_key", "private-key", "credential"} {
			m.keyword(k, false, generic)
		}
	}
}

// byte classes of the main loop
const (
	cNone = iota
	cKey
	cNum
	cAt
)

var class = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c >= '0' && c <= '9', c == '+', c == '(':
			t[c] = cNum
		case c == '@':
			t[c] = cAt
		default:
			t[c] = cKey
		}
	}
	return t
}()

// find returns the findings in s, sorted and merged. key is the JSON member name whose
// value s is (nil outside JSON); raw marks undecoded JSON text.
func (m *Masker) find(s, key []byte, raw bool, out []finding) []finding {
	return m.findAt(s, 0, key, raw, out)
}

// findAt is find over s whose value starts at off: s[:off] is a label written before the
// value ("name: ") that detectors read as context, as they would in the text rendering.
func (m *Masker) findAt(s []byte, off int, key []byte, raw bool, out []finding) []finding {
	return m.findIn(new(scan), s, off, key, raw, out)
}

// findIn is findAt with the scan state in sc, which the detectors' indirect calls make
// escape: a walker reuses one instead of allocating it for every value and name.
//
// The loop passes over a byte pair with one lookup in the prefilter of its state: outside
// a word, pair; inside one (the byte before glues), inWord, which holds only what can start
// there (keywords that may begin glued, an email's @, the + or ( whose digits are then
// skipped). Digits and letters inside base64 blobs, hex ids and long numbers then cost no
// more than prose. Where the prefilter lets a pair through, step checks that position.
func (m *Masker) findIn(sc *scan, s []byte, off int, key []byte, raw bool, out []finding) []finding {
	return m.scanIn(sc, s, off, key, m.keyKind(key), raw, out)
}

// scanIn is findIn with the kind of secret the member name key names (see keyKind), which
// a walker looks up once per name.
func (m *Masker) scanIn(sc *scan, s []byte, off int, key []byte, kind uint8, raw bool, out []finding) []finding {
	// Field by field: the scratch arrays need no zeroing, which a composite literal would
	// do for every value and member name of a document.
	sc.m, sc.s, sc.off, sc.key, sc.raw, sc.out = m, s, off, key, raw, out[:0]
	nums := m.on[tCard] || m.on[tSSN] || m.on[tPhone] || m.on[tIBAN]
	n := len(s)
	tabs := &m.tabs
	if raw {
		tabs = &m.tabsRaw // a backslash always stops: the letter after it starts a word
	}
	if n > 0 {
		_ = s[n-1]
	}
	g := 0 // 1 inside a word
	iban := m.on[tIBAN]
	for i := 0; i+1 < n; {
		c, d := s[i], s[i+1]
		if tabs[g][c][d>>6]&(1<<(d&63)) == 0 {
			g = int(wordByte[c])
			i++
			continue
		}
		if class[c] == cKey && c != '\\' {
			// The commonest stop, inline: step's checks for a keyword byte, knowing the
			// state (inside a word only the pairs of mid stop here).
			if g == 0 && iban && isUpper(c) && isUpper(d) && i+2 < n && isDigit(s[i+2]) {
				sc.iban(i + 2)
			}
			for _, k := range m.keywordsAt(c, d) {
				kw := &m.kws[k]
				if hasPrefixFold(s[i:], kw.lo) && (kw.exact == nil || string(s[i:i+len(kw.exact)]) == string(kw.exact)) {
					kw.fn(sc, i, kw)
				}
			}
			g = int(wordByte[c])
			i++
			continue
		}
		if class[c] == cNum && nums {
			i = sc.digitsAt(i) // never stops after a backslash
		} else {
			i = m.step(sc, i, nums)
		}
		for raw && i+1 < n && s[i-1] == '\\' {
			i = m.step(sc, i, nums)
		}
		g = 0
		if sc.inWord(i) {
			g = 1
		}
	}
	sc.keyContext(kind)
	for _, cd := range m.custom {
		if cd.global {
			for _, loc := range cd.re.FindAllIndex(s, -1) {
				sc.custom(cd, loc[0], loc[1])
			}
		}
	}
	return merge(sc.out)
}

// wordByte is glued as a table: 1 for the bytes that join the next one to a word.
var wordByte = func() (t [256]uint8) {
	for c := range 256 {
		if glued(byte(c)) {
			t[c] = 1
		}
	}
	return t
}()

// inWord reports whether i is inside a word for the scan: the byte before glues, and is
// not the letter of an escape sequence in wire text.
func (sc *scan) inWord(i int) bool {
	s := sc.s
	return i > 0 && glued(s[i-1]) && !(sc.raw && i >= 2 && s[i-2] == '\\')
}

// step runs the checks that start at i and returns where the scan goes on.
func (m *Masker) step(sc *scan, i int, nums bool) int {
	s := sc.s
	n := len(s)
	c, d := s[i], s[i+1]
	if !m.tabs[0].has(c, d) { // the tables findIn reads, not pair and mid: fewer cache lines
		return i + 1
	}
	switch class[c] {
	case cKey:
		w := sc.inWord(i)
		if !w && nums && isUpper(c) && isUpper(d) && i+2 < n && isDigit(s[i+2]) && m.on[tIBAN] {
			// An IBAN's check starts at its country code, since the letters glue to the digits.
			sc.iban(i + 2)
		}
		if w && !m.tabs[1].has(c, d) { // for a keyword byte, the pairs of mid
			return i + 1 // inside a word, where only keywords that start tokens begin here
		}
		m.keywordsIn(sc, i)
	case cAt:
		if m.on[tEmail] {
			email(sc, i)
		}
	case cNum:
		if nums {
			return sc.digitsAt(i)
		}
	}
	return i + 1
}

// digitsAt runs the number checks that start at the digit, + or ( at i and returns where
// the scan goes on.
func (sc *scan) digitsAt(i int) int {
	s := sc.s
	n := len(s)
	if sc.gluedAt(i) || (i > 0 && s[i-1] == '.') {
		for i+1 < n && isDigit(s[i+1]) {
			i++
		}
		return i + 1
	}
	if c := s[i]; (c == '+' || c == '(') && !isDigit(s[i+1]) {
		return i + 1
	}
	if !enoughDigits(s[i:]) {
		for i+1 < n && isDigit(s[i+1]) {
			i++
		}
		return i + 1
	}
	return max(i, sc.number(i)-1) + 1
}

// keywordsIn runs the checks of the keywords that occur at i.
func (m *Masker) keywordsIn(sc *scan, i int) {
	s := sc.s
	for _, k := range m.keywordsAt(s[i], s[i+1]) {
		kw := &m.kws[k]
		if hasPrefixFold(s[i:], kw.lo) && (kw.exact == nil || string(s[i:i+len(kw.exact)]) == string(kw.exact)) {
			kw.fn(sc, i, kw)
		}
	}
}

// keyOnly is scanIn for a value in which no detector can start: only the member name key,
// of kind kind, can make it a secret (see keyContext).
func (m *Masker) keyOnly(sc *scan, s, key []byte, kind uint8, out []finding) []finding {
	sc.m, sc.s, sc.off, sc.key, sc.raw, sc.out = m, s, 0, key, false, out[:0]
	sc.keyContext(kind)
	return sc.out
}

// enoughDigits is the cheap guard before the number checks: every card, SSN and phone
// number has at least 8 digits within its first 24 bytes (digits and separators).
func enoughDigits(s []byte) bool {
	d := 0
	for _, c := range s[:min(len(s), 24)] {
		switch {
		case isDigit(c):
			if d++; d >= 8 {
				return true
			}
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' || c == '+':
		default:
			return false
		}
	}
	return false
}

// Kinds of secret a member name can name, by keyKind.
const (
	kindNone uint8 = iota
	kindAWSSecret
	kindOkta
	kindGeneric
)

// keyKind returns the kind of secret the member name k says its values are.
func (m *Masker) keyKind(k []byte) uint8 {
	if len(k) == 0 || len(k) > 40 {
		return kindNone
	}
	var nk [40]byte
	n := 0
	for _, c := range k {
		if c != '_' && c != '-' && c != ' ' {
			nk[n] = lower(c)
			n++
		}
	}
	name := nk[:n] // compared without a string conversion, which would allocate for every value
	switch {
	case m.on[tAWSSecretKey] && (string(name) == "awssecretaccesskey" || string(name) == "secretaccesskey"):
		return kindAWSSecret
	case m.on[tOkta] && len(name) >= 4 && bytes.Contains(name, []byte("okta")):
		return kindOkta
	case m.on[tGeneric] && secretKey(name):
		return kindGeneric
	}
	return kindNone
}

// keyContext masks the whole value when its member name, of kind kind, says it is a secret.
func (sc *scan) keyContext(kind uint8) {
	if kind == kindNone || len(sc.s) == sc.off || len(sc.s)-sc.off > 4096 {
		return
	}
	switch kind {
	case kindAWSSecret:
		sc.add(sc.off, len(sc.s), tAWSSecretKey)
	case kindOkta:
		okta(sc, sc.off, &keyword{})
	case kindGeneric:
		sc.add(sc.off, len(sc.s), tGeneric)
	}
}

// secretKey reports whether a member name, lower case without _, - and spaces, names a
// secret. A switch rather than a map: it runs for every value of a document, and a map
// lookup hashes the name each time.
func secretKey(name []byte) bool {
	switch string(name) {
	case "password", "passwd", "pwd", "pass", "secret", "clientsecret",
		"apikey", "apitoken", "token", "accesstoken", "refreshtoken",
		"idtoken", "authtoken", "privatekey", "secretkey", "sessiontoken",
		"credentials", "credential", "dbpassword":
		return true
	}
	return false
}

// customAt runs custom detector idx around a keyword at i.
func (sc *scan) customAt(idx, i int, kw *keyword) {
	cd := sc.m.custom[idx]
	lo, hi := max(0, i-cd.maxLen), min(len(sc.s), i+len(kw.lo)+cd.maxLen)
	for _, loc := range cd.re.FindAllIndex(sc.s[lo:hi], -1) {
		if lo+loc[0] <= i+len(kw.lo) && lo+loc[1] >= i {
			sc.custom(cd, lo+loc[0], lo+loc[1])
		}
	}
}

func (sc *scan) custom(cd customDet, a, b int) {
	if b-a > cd.maxLen || a == b || (cd.check != nil && !cd.check(sc.s[a:b])) {
		return
	}
	sc.add(a, b, cd.typ)
}

// merge sorts findings and joins overlapping ones; the joined span keeps the type of
// higher priority (lower index).
func merge(fs []finding) []finding {
	if len(fs) < 2 {
		return fs
	}
	slices.SortFunc(fs, func(a, b finding) int {
		if a.start != b.start {
			return a.start - b.start
		}
		return b.end - a.end
	})
	out := fs[:1]
	for _, f := range fs[1:] {
		l := &out[len(out)-1]
		if f.start < l.end {
			l.end = max(l.end, f.end)
			l.typ = min(l.typ, f.typ)
			continue
		}
		out = append(out, f)
	}
	return out
}

// replace appends the masked form of v (of type typ) to dst.
func (m *Masker) replace(dst, v []byte, typ int) []byte {
	return m.rewrite(dst, v, typ, m.strat[typ])
}

// rewrite appends v masked with strategy st to dst.
func (m *Masker) rewrite(dst, v []byte, typ int, st Strategy) []byte {
	switch st {
	case Partial:
		// Every letter and digit but the last four becomes *; the rest of the shape stays.
		n := 0
		for _, c := range v {
			if isAlnum(c) {
				n++
			}
		}
		keep := 4
		if n < 8 {
			keep = 0
		}
		k := 0
		for _, c := range v {
			switch {
			case isAlnum(c):
				k++
				if k <= n-keep {
					c = '*'
				}
			case c < ' ' || c >= 0x80 || c == '"' || c == '\\':
				c = '*'
			}
			dst = append(dst, c)
		}
		return dst
	case Hash:
		h := hmac.New(sha256.New, m.hashKey)
		h.Write(v)
		var sum [32]byte
		dst = append(dst, "tok_"...)
		return hex.AppendEncode(dst, h.Sum(sum[:0])[:8])
	default:
		dst = append(dst, "[REDACTED:"...)
		dst = append(dst, m.types[typ]...)
		return append(dst, ']')
	}
}

// apply appends s with every finding replaced to dst and counts the findings.
func (m *Masker) apply(dst, s []byte, fs []finding, counts *Counts) []byte {
	last := 0
	for _, f := range fs {
		dst = append(dst, s[last:f.start]...)
		dst = m.replace(dst, s[f.start:f.end], f.typ)
		last = f.end
		if *counts == nil {
			*counts = Counts{}
		}
		(*counts)[m.types[f.typ]]++
	}
	return append(dst, s[last:]...)
}

// Text masks plain text. It returns s itself and nil counts when nothing was found.
func (m *Masker) Text(s []byte) ([]byte, Counts) {
	fs := m.find(s, nil, false, nil)
	if len(fs) == 0 {
		return s, nil
	}
	var c Counts
	return m.apply(make([]byte, 0, len(s)+32), s, fs, &c), c
}

// protocolHeaders are response headers an MCP client needs byte for byte: rewriting them
// would break the exchange, and none carries data the upstream read from elsewhere.
var protocolHeaders = map[string]bool{
	"content-type": true, "content-length": true, "content-encoding": true, "transfer-encoding": true,
	"mcp-session-id": true, "mcp-protocol-version": true,
}

// Header masks the value of the response header name as text, with the name as context
// the way a member name is for a JSON value ("X-Api-Key", "X-Db-Password", "X-SSN"). Pseudo
// headers and the protocol headers an MCP client needs as sent come back unchanged. It
// returns value itself and nil counts when nothing was found.
func (m *Masker) Header(name, value string) (string, Counts) {
	n := strings.ToLower(name)
	if value == "" || strings.HasPrefix(n, ":") || protocolHeaders[n] {
		return value, nil
	}
	key := []byte(strings.TrimPrefix(n, "x-"))
	lb := make([]byte, 0, len(key)+2+len(value))
	lb = append(append(append(lb, key...), ':', ' '), value...)
	off := len(key) + 2
	fs := m.findAt(lb, off, key, false, nil)
	out := fs[:0]
	for _, f := range fs {
		if f.end > off {
			f.start, f.end = max(f.start, off)-off, f.end-off
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return value, nil
	}
	var c Counts
	return string(m.apply(nil, []byte(value), out, &c)), c
}
