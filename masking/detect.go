package masking

import (
	"bytes"
	"regexp"
)

// Built-in detector types, in priority order: when findings overlap, the merged span keeps
// the type that comes first here.
const (
	tPrivateKey = iota
	tJWT
	tAWSAccessKey
	tAWSSecretKey
	tGitHub
	tGitLab
	tSlack
	tStripe
	tGoogle
	tAnthropic
	tOpenAI
	tOkta
	tAzureStorageKey
	tAzureSAS
	tAzureClientSecret
	tSendGrid
	tShopify
	tTwilio
	tMailgun
	tMailchimp
	tNPM
	tPyPI
	tDockerHub
	tVault
	tTerraform
	tDigitalOcean
	tHeroku
	tDatabricks
	tDoppler
	tGrafana
	tNewRelic
	tSentry
	tLinear
	tPostman
	tPulumi
	tAtlassian
	tHuggingFace
	tTelegram
	tDiscord
	tSquare
	tAgeKey
	tAzureDevOps
	tAzureServiceBus
	tMeta
	tPlanetScale
	tSupabase
	tMapbox
	tAIKey
	tAlibaba
	tDatadog
	tCloudflare
	tFly
	tConnPassword
	tCard
	tIBAN
	tSSN
	tPhone
	tEmail
	tGeneric
	numBuiltin
)

var builtins = [numBuiltin]string{ //nolint:gosec // G101: detector type names, not credentials
	tPrivateKey: "PRIVATE_KEY", tJWT: "JWT", tAWSAccessKey: "AWS_ACCESS_KEY", tAWSSecretKey: "AWS_SECRET_KEY",
	tGitHub: "GITHUB_TOKEN", tGitLab: "GITLAB_TOKEN", tSlack: "SLACK_TOKEN", tStripe: "STRIPE_KEY",
	tGoogle: "GOOGLE_API_KEY", tAnthropic: "ANTHROPIC_KEY", tOpenAI: "OPENAI_KEY", tOkta: "OKTA_TOKEN",
	tAzureStorageKey: "AZURE_STORAGE_KEY", tAzureSAS: "AZURE_SAS_TOKEN", tAzureClientSecret: "AZURE_CLIENT_SECRET",
	tSendGrid: "SENDGRID_KEY", tShopify: "SHOPIFY_TOKEN", tTwilio: "TWILIO_KEY", tMailgun: "MAILGUN_KEY",
	tMailchimp: "MAILCHIMP_KEY", tNPM: "NPM_TOKEN", tPyPI: "PYPI_TOKEN", tDockerHub: "DOCKER_HUB_TOKEN",
	tVault: "VAULT_TOKEN", tTerraform: "TERRAFORM_TOKEN", tDigitalOcean: "DIGITALOCEAN_TOKEN", tHeroku: "HEROKU_KEY",
	tDatabricks: "DATABRICKS_TOKEN", tDoppler: "DOPPLER_TOKEN", tGrafana: "GRAFANA_TOKEN", tNewRelic: "NEW_RELIC_KEY",
	tSentry: "SENTRY_TOKEN", tLinear: "LINEAR_KEY", tPostman: "POSTMAN_KEY", tPulumi: "PULUMI_TOKEN",
	tAtlassian: "ATLASSIAN_TOKEN", tHuggingFace: "HUGGINGFACE_TOKEN", tTelegram: "TELEGRAM_BOT_TOKEN",
	tDiscord: "DISCORD_BOT_TOKEN", tSquare: "SQUARE_TOKEN", tAgeKey: "AGE_SECRET_KEY",
	tAzureDevOps: "AZURE_DEVOPS_PAT", tAzureServiceBus: "AZURE_SERVICE_BUS_KEY", tMeta: "META_ACCESS_TOKEN",
	tPlanetScale: "PLANETSCALE_TOKEN", tSupabase: "SUPABASE_KEY", tMapbox: "MAPBOX_SECRET_TOKEN", tAIKey: "AI_API_KEY",
	tAlibaba: "ALIBABA_ACCESS_KEY", tDatadog: "DATADOG_KEY", tCloudflare: "CLOUDFLARE_TOKEN", tFly: "FLY_TOKEN",
	tConnPassword: "CONN_PASSWORD", tCard: "CREDIT_CARD", tIBAN: "IBAN", tSSN: "US_SSN", tPhone: "PHONE",
	tEmail: "EMAIL", tGeneric: "GENERIC_SECRET",
}

// Longest spans the built-in detectors can produce, which bound the streaming hold-back.
const (
	maxPEM           = 16 << 10
	maxJWT           = 8 << 10
	defaultCustomLen = 256
	maxCustomLen     = 64 << 10
	leftContext      = 256 // bytes of look-behind any detector uses
)

// finding is a span of the scanned text and the index of its type in Masker.types.
type finding struct {
	start, end int
	typ        int
}

// keyword triggers a check at the position where it occurs.
type keyword struct {
	lo    []byte // lower case
	exact []byte // non-nil: must match with this case
	fn    func(sc *scan, i int, kw *keyword)
}

// scan is the state of one pass over one text.
type scan struct {
	m   *Masker
	s   []byte
	off int    // start of the value in s; s[:off] is a context label (see findAt)
	key []byte // JSON member name of the string, nil outside JSON
	raw bool   // s is raw JSON text (escapes not decoded): stream mode
	out []finding
	gs  [8]group // number scratch
	dg  [48]byte
}

func (sc *scan) add(start, end, typ int) {
	if sc.raw && escaped(sc.s, start) {
		return // the span starts inside an escape sequence: not what the text says
	}
	if isMasked(sc.s[start:end]) {
		return
	}
	sc.out = append(sc.out, finding{start, end, typ})
}

// escaped reports whether s[i] is preceded by an odd number of backslashes.
func escaped(s []byte, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && s[j] == '\\'; j-- {
		n++
	}
	return n%2 == 1
}

// isMasked recognises the output of every strategy, so masking is idempotent.
func isMasked(v []byte) bool {
	if len(v) == 0 {
		return true
	}
	if v[0] == '*' || bytes.HasPrefix(v, []byte("[REDACTED:")) {
		return true
	}
	if len(v) == 20 && bytes.HasPrefix(v, []byte("tok_")) {
		for _, c := range v[4:] {
			if !isDigit(c) && (c < 'a' || c > 'f') {
				return false
			}
		}
		return true
	}
	return false
}

// before reports whether the w bytes before i contain one of words (lower case).
func (sc *scan) before(i, w int, words ...string) bool {
	win := sc.s[max(0, i-w):i]
	if nl := bytes.LastIndexByte(win, '\n'); nl >= 0 {
		win = win[nl+1:] // context is on the same line
	}
	if k := bytes.LastIndexByte(win, ']'); k >= 0 {
		j := k - 1
		for j >= 0 && (isUpper(win[j]) || isDigit(win[j]) || win[j] == '_') {
			j--
		}
		if j < 0 || win[j] == ':' {
			win = win[k+1:] // a type name in an earlier token is no context
		}
	}
	for _, x := range words {
		if containsFold(win, []byte(x)) {
			return true
		}
	}
	return false
}

// context reports whether the JSON member name, the CSV column header or the text just
// before i names one of words.
func (sc *scan) context(i int, words ...string) bool {
	if sc.before(i, 40, words...) {
		return true
	}
	for _, h := range [2][]byte{sc.key, sc.column(i)} {
		for _, x := range words {
			if len(h) > 0 && containsFold(h, []byte(x)) {
				return true
			}
		}
	}
	return false
}

// column returns the header of the CSV (or TSV) column that position i lies in, when the
// text's first line looks like a header; nil otherwise.
func (sc *scan) column(i int) []byte {
	if sc.raw || i < sc.off {
		return nil
	}
	s := sc.s[sc.off:] // a label before the value is not the header row
	i -= sc.off
	ls := bytes.LastIndexByte(s[:i], '\n')
	if ls < 0 {
		return nil // on the header line itself
	}
	sep := byte(',')
	line := s[ls+1 : i]
	if bytes.IndexByte(line, '\t') >= 0 {
		sep = '\t'
	}
	col := bytes.Count(line, []byte{sep})
	he := bytes.IndexByte(s, '\n')
	hdr := s[:he]
	if len(hdr) > 1024 || bytes.Count(hdr, []byte{sep}) < col || bytes.ContainsAny(hdr, "0123456789") ||
		bytes.Contains(hdr, []byte("[REDACTED:")) {
		// Not a header row. A masked value means the row held data (its digits, say) before
		// masking; reading it as a header then would make a second pass mask more.
		return nil
	}
	for k := 0; k < col; k++ {
		j := bytes.IndexByte(hdr, sep)
		if j < 0 {
			return nil
		}
		hdr = hdr[j+1:]
	}
	if j := bytes.IndexByte(hdr, sep); j >= 0 {
		hdr = hdr[:j]
	}
	return hdr
}

// leftOK reports whether a token may start at i: not glued to a preceding word, nor to a
// token this package wrote (so masking stays idempotent).
func (sc *scan) leftOK(i int) bool { return !sc.gluedAt(i) }

// gluedAt reports whether s[i-1] joins s[i] to a preceding word. In wire text the letter
// of an escape sequence (the n of \n) separates like the character it stands for.
func (sc *scan) gluedAt(i int) bool {
	return i > 0 && glued(sc.s[i-1]) && !(sc.raw && escaped(sc.s, i-1))
}

func glued(c byte) bool { return isWord(c) || c == ']' }

// run returns the end of the run of bytes from i matching ok, at most limit bytes long.
func run(s []byte, i, limit int, ok func(byte) bool) int {
	j := i
	for j < len(s) && j-i < limit && ok(s[j]) {
		j++
	}
	return j
}

// fixedToken handles prefix + body tokens: body of [lo,hi] bytes of class ok, a word
// boundary after it, and a minimum entropy over the body (0 for none).
func fixedToken(typ, lo, hi int, ok func(byte) bool, minEnt float64) func(*scan, int, *keyword) {
	return func(sc *scan, i int, kw *keyword) {
		if !sc.leftOK(i) {
			return
		}
		b := i + len(kw.lo)
		e := run(sc.s, b, hi+1, ok)
		if e-b < lo || e-b > hi || (e < len(sc.s) && isWord(sc.s[e])) {
			return
		}
		if minEnt > 0 && lowEntropy(sc.s[b:e], minEnt) {
			return
		}
		sc.add(i, e, typ)
	}
}

func awsAccessKey(sc *scan, i int, kw *keyword) {
	if !sc.leftOK(i) {
		return
	}
	e := run(sc.s, i+len(kw.lo), 17, func(c byte) bool { return isUpper(c) || isDigit(c) })
	if e-i != 20 || (e < len(sc.s) && isAlnum(sc.s[e])) {
		return
	}
	sc.add(i, e, tAWSAccessKey)
}

var awsSecretRE = regexp.MustCompile(`(?:^|[^A-Za-z0-9/+])([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)`)

// awsSecret looks for a 40-character key within a short window after an AWS secret keyword.
func awsSecret(sc *scan, i int, kw *keyword) {
	w := sc.s[i:min(len(sc.s), i+len(kw.lo)+80)]
	if loc := awsSecretRE.FindSubmatchIndex(w); loc != nil && !lowEntropy(w[loc[2]:loc[3]], 3.5) {
		sc.add(i+loc[2], i+loc[3], tAWSSecretKey)
	}
}

var oktaRE = regexp.MustCompile(`(?:^|[^A-Za-z0-9_-])(00[A-Za-z0-9_-]{40})(?:[^A-Za-z0-9_-]|$)`)

// okta looks for an Okta API token (00 + 40) after "okta" or "SSWS".
func okta(sc *scan, i int, kw *keyword) {
	w := sc.s[i:min(len(sc.s), i+len(kw.lo)+100)]
	if loc := oktaRE.FindSubmatchIndex(w); loc != nil && !lowEntropy(w[loc[2]:loc[3]], 3.0) {
		sc.add(i+loc[2], i+loc[3], tOkta)
	}
}

func slackWebhook(sc *scan, i int, kw *keyword) {
	b := i + len(kw.lo)
	e := run(sc.s, b, 200, func(c byte) bool { return isAlnum(c) || c == '/' || c == '_' || c == '-' || c == '+' })
	if e-b >= 30 {
		sc.add(i, e, tSlack)
	}
}

func slackToken(sc *scan, i int, _ *keyword) {
	s := sc.s
	if !sc.leftOK(i) || i+5 > len(s) {
		return
	}
	if s[i+3] == 'e' && s[i+4] == '.' {
		// xoxe.xoxp-1-…: a rotating token's refresh form wraps the token kind it refreshes.
		if i+10 > len(s) || string(s[i+5:i+8]) != "xox" || bytes.IndexByte([]byte("abpr"), s[i+8]) < 0 || s[i+9] != '-' {
			return
		}
		e := run(s, i+10, 251, func(c byte) bool { return isAlnum(c) || c == '-' })
		if e-i-10 < 10 || lowEntropy(s[i+10:e], 3.0) {
			return
		}
		sc.add(i, e, tSlack)
		return
	}
	if bytes.IndexByte([]byte("abposre"), s[i+3]) < 0 || s[i+4] != '-' {
		return
	}
	e := run(s, i+5, 251, func(c byte) bool { return isAlnum(c) || c == '-' })
	if e-i-5 < 10 || e-i-5 > 250 || lowEntropy(s[i+5:e], 3.0) {
		return
	}
	sc.add(i, e, tSlack)
}

var (
	openaiRE    = regexp.MustCompile(`^sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,300}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})`)
	anthropicRE = regexp.MustCompile(`^sk-ant-[a-z]{2,10}[0-9]{2}-[A-Za-z0-9_-]{32,300}`)
)

func skToken(sc *scan, i int, _ *keyword) {
	if !sc.leftOK(i) {
		return
	}
	w := sc.s[i:min(len(sc.s), i+340)]
	if sc.m.on[tAIKey] && len(w) >= 35 && (len(w) == 35 || !isWord(w[35])) && run(w, 3, 32, isHex) == 35 && !lowEntropy(w[3:35], 3.0) {
		sc.add(i, i+35, tAIKey) // sk- + 32 hex digits (DeepSeek and other OpenAI-compatible APIs)
		return
	}
	typ, re := tOpenAI, openaiRE
	if bytes.HasPrefix(w, []byte("sk-ant-")) {
		typ, re = tAnthropic, anthropicRE
	}
	loc := re.FindIndex(w)
	if loc == nil || (loc[1] < len(w) && isB64URL(w[loc[1]])) || lowEntropy(w[:loc[1]], 3.0) {
		return
	}
	sc.add(i, i+loc[1], typ)
}

// jwt matches header.payload.signature with a header that decodes to JSON naming alg.
func jwt(sc *scan, i int, _ *keyword) {
	s := sc.s
	if !sc.leftOK(i) {
		return
	}
	limit := min(len(s), i+maxJWT)
	h := run(s[:limit], i, maxJWT, isB64URL)
	if h-i < 10 || h >= limit || s[h] != '.' || !bytes.HasPrefix(s[h+1:limit], []byte("eyJ")) {
		return
	}
	p := run(s[:limit], h+1, maxJWT, isB64URL)
	if p-h-1 < 10 || p >= limit || s[p] != '.' {
		return
	}
	e := run(s[:limit], p+1, maxJWT, isB64URL)
	if !jwtHeaderOK(s[i:h]) {
		return
	}
	sc.add(i, e, tJWT)
}

// pem masks a whole private key block, header to footer. Without a footer within maxPEM
// bytes it masks up to that bound: a truncated key is still a key.
func pem(sc *scan, i int, kw *keyword) {
	s := sc.s
	hdrEnd := bytes.Index(s[i+len(kw.lo):min(len(s), i+80)], []byte("-----"))
	if hdrEnd < 0 {
		return
	}
	hdrEnd += i + len(kw.lo)
	if !bytes.Contains(s[i:hdrEnd], []byte("PRIVATE KEY")) {
		return
	}
	limit := min(len(s), i+maxPEM)
	end := limit
	if f := bytes.Index(s[hdrEnd+5:limit], []byte("-----END ")); f >= 0 {
		f += hdrEnd + 5
		if c := bytes.Index(s[f+9:min(limit, f+80)], []byte("-----")); c >= 0 {
			end = f + 9 + c + 5
		}
	}
	sc.add(i, end, tPrivateKey)
}

// connPassword masks the password of scheme://user:password@host.
func connPassword(sc *scan, i int, _ *keyword) {
	s := sc.s
	b := i
	for b > 0 && i-b < 20 && (isAlnum(s[b-1]) || s[b-1] == '+' || s[b-1] == '.' || s[b-1] == '-') {
		b--
	}
	if i-b < 2 || !isAlnum(s[b]) || isDigit(s[b]) {
		return
	}
	stop := func(c byte) bool {
		return c > ' ' && c != '/' && c != '@' && c != '"' && c != '\'' && c != '<' && c != '>' && c != '\\' && c != '?' && c != '#'
	}
	u := run(s, i+3, 128, func(c byte) bool { return stop(c) && c != ':' })
	if u >= len(s) || s[u] != ':' {
		return
	}
	p := run(s, u+1, 129, stop)
	if p == u+1 || p-u-1 > 128 || p >= len(s) || s[p] != '@' {
		return
	}
	sc.add(u+1, p, tConnPassword)
}

// generic masks key=value or "key": "value" secrets whose value looks random.
func generic(sc *scan, i int, kw *keyword) {
	a, b := genericValue(sc.s[i:min(len(sc.s), i+300)], len(kw.lo))
	if a < 0 {
		return
	}
	v := sc.s[i+a : i+b]
	if lowEntropy(v, 3.0) || placeholder(v) {
		return
	}
	sc.add(i+a, i+b, tGeneric)
}

// genericValue finds the value after the keyword that opens w (n bytes long): up to 24
// more name characters, an optional (escaped) closing quote, up to 4 spaces, : or =, up
// to 4 spaces, an optional (escaped) opening quote, then 8 to 256 value bytes. Written by
// hand rather than as a regexp, which cost a fifth of the scan on dense text
// (TestGenericValue checks it against the equivalent pattern); -1, -1 means no value.
func genericValue(w []byte, n int) (int, int) {
	nameOK := func(c byte) bool { return isWord(c) || c == '.' || c == '-' }
	extra := 24
	if n == 10 && hasPrefixFold(w, []byte("credential")) && n < len(w) && lower(w[n]) == 's' {
		extra = 25 // "credentials?" then 24
	}
	j := run(w, n, extra+1, nameOK)
	if j-n > extra {
		return -1, -1
	}
	quote := func(j int) int {
		if j+1 < len(w) && w[j] == '\\' && (w[j+1] == '"' || w[j+1] == '\'') {
			return j + 2
		}
		if j < len(w) && (w[j] == '"' || w[j] == '\'') {
			return j + 1
		}
		return j
	}
	spaces := func(j int) int { return run(w, j, 4, isRESpace) }
	j = spaces(quote(j))
	if j >= len(w) || (w[j] != ':' && w[j] != '=') {
		return -1, -1
	}
	j = quote(spaces(j + 1))
	e := run(w, j, 256, func(c byte) bool {
		return !isRESpace(c) && c != '"' && c != '\'' && c != ',' && c != ';' && c != '\\' && c != '<' && c != '>' && c != '&'
	})
	if e-j < 8 {
		return -1, -1
	}
	return j, e
}

// isRESpace is RE2's \s: tab, newline, form feed, carriage return, space.
func isRESpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' }

// placeholder recognises template values that are not secrets.
func placeholder(v []byte) bool {
	if v[0] == '$' || v[0] == '<' || v[0] == '{' || (v[0] == '%' && (v[1] == 's' || v[1] == '(' || v[1] == '{')) {
		return true // ${VAR}, <value>, {{ var }}, %s, %(name)s
	}
	// One pass for xxxx, example, redacted, placeholder, your_, your-, changeme.
	for i := range v {
		var w string
		switch lower(v[i]) {
		case 'x':
			w = "xxxx"
		case 'e':
			w = "example"
		case 'r':
			w = "redacted"
		case 'p':
			w = "placeholder"
		case 'y':
			if hasPrefixFold(v[i:], []byte("your_")) {
				return true
			}
			w = "your-"
		case 'c':
			w = "changeme"
		default:
			continue
		}
		if hasPrefixFold(v[i:], []byte(w)) {
			return true
		}
	}
	return false
}

// email expands around an @ to local@domain.tld.
func email(sc *scan, at int) {
	s := sc.s
	b := at
	for b > 0 && at-b < 64 && (isAlnum(s[b-1]) || bytes.IndexByte([]byte("._%+-"), s[b-1]) >= 0) && !(sc.raw && escaped(s, b-1)) {
		b--
	}
	for b < at && s[b] == '.' {
		b++
	}
	if b == at || inUserinfo(s, b) {
		return // empty local part, or the user:password@ of a URL
	}
	e := run(s, at+1, 255, func(c byte) bool { return isAlnum(c) || c == '.' || c == '-' })
	for e > at+1 && (s[e-1] == '.' || s[e-1] == '-') {
		e--
	}
	d := s[at+1 : e]
	dot := bytes.LastIndexByte(d, '.')
	if dot <= 0 || len(d)-dot-1 < 2 || len(d)-dot-1 > 24 {
		return
	}
	for _, c := range d[dot+1:] {
		if isDigit(c) || c == '-' {
			return
		}
	}
	sc.add(b, e, tEmail)
}

// inUserinfo reports whether position b follows scheme:// within the same token.
func inUserinfo(s []byte, b int) bool {
	for j := b - 1; j >= 2 && b-j < 300; j-- {
		switch c := s[j]; {
		case c <= ' ' || c == '"' || c == '\'':
			return false
		case c == '/' && s[j-1] == '/' && s[j-2] == ':':
			return true
		}
	}
	return false
}

// group is one run of digits in a number.
type group struct{ start, end int }

// groups splits the number at i into digit groups joined by single separators (space, -, .),
// with an optional (area) opening; sep is the separator after each group but the last.
func groups(s []byte, i int, gs []group, seps []byte) (_ []group, _ []byte, paren bool) {
	j := i
	if s[j] == '(' {
		e := run(s, j+1, 4, isDigit)
		if e-j-1 != 3 || e >= len(s) || s[e] != ')' {
			return nil, nil, false
		}
		gs = append(gs, group{j + 1, e})
		paren = true
		j = e + 1
		if j < len(s) && s[j] == ' ' {
			j++
		}
		seps = append(seps, ' ')
		if j >= len(s) || !isDigit(s[j]) {
			return nil, nil, false
		}
	}
	for len(gs) < 8 && j < len(s) && j-i < 40 {
		e := run(s, j, 20, isDigit)
		if e == j {
			break
		}
		gs = append(gs, group{j, e})
		if e+1 < len(s) && (s[e] == ' ' || s[e] == '-' || s[e] == '.') && isDigit(s[e+1]) {
			seps = append(seps, s[e])
			j = e + 1
			continue
		}
		break
	}
	return gs, seps, paren
}

// number checks the digit groups starting at i for a card, an SSN or a phone number and
// returns where scanning should go on.
func (sc *scan) number(i int) int {
	s := sc.s
	intl := s[i] == '+'
	start := i
	if intl {
		i++
	}
	var sepBuf [8]byte
	gs, seps, paren := groups(s, i, sc.gs[:0], sepBuf[:0])
	if len(gs) == 0 {
		return i
	}
	next := gs[0].end
	nd := 0
	for _, g := range gs {
		nd += g.end - g.start
	}
	if nd < 9 || (intl && paren) {
		return next
	}
	digits := sc.dg[:0]
	boundary := func(k int) bool { e := gs[k].end; return e >= len(s) || !isAlnum(s[e]) }
	collect := func(k int) []byte {
		digits = digits[:0]
		for _, g := range gs[:k+1] {
			digits = append(digits, s[g.start:g.end]...)
		}
		return digits
	}
	same := func(k int, set string) bool { // separators before group k all equal and in set
		for _, c := range seps[:k] {
			if c != seps[0] || bytes.IndexByte([]byte(set), c) < 0 {
				return false
			}
		}
		return true
	}
	if intl {
		for k := len(gs) - 1; k >= 0; k-- {
			d := collect(k)
			if len(d) >= 8 && len(d) <= 15 && d[0] != '0' && boundary(k) {
				sc.add(start, gs[k].end, tPhone)
				return gs[k].end
			}
		}
		return next
	}
	// Payment cards: one run, or groups of four (Amex 4-6-5) with one kind of separator.
	if !paren && nd >= 13 {
		for k := len(gs) - 1; k >= 0; k-- {
			d := collect(k)
			if len(d) < 13 || len(d) > 19 || !boundary(k) || !same(k, " -") {
				continue
			}
			if k > 0 && gs[0].end-gs[0].start != 4 {
				continue
			}
			if luhn(d) && cardIssuer(d) && !sc.notCard(start) {
				sc.add(start, gs[k].end, tCard)
				return gs[k].end
			}
		}
	}
	lens := func(want ...int) bool {
		if len(gs) < len(want) {
			return false
		}
		for k, w := range want {
			if gs[k].end-gs[k].start != w {
				return false
			}
		}
		return boundary(len(want) - 1)
	}
	// SSN: 123-45-6789 always; spaced or unformatted only with context.
	ssnCtx := func() bool {
		return sc.context(start, "ssn", "social security", "social_security", "ss#", "socialsecurity")
	}
	switch {
	case !paren && lens(3, 2, 4) && same(2, "-") && ssnOK(collect(2)):
		sc.add(start, gs[2].end, tSSN)
		return gs[2].end
	case !paren && lens(3, 2, 4) && same(2, " ") && ssnOK(collect(2)) && ssnCtx():
		sc.add(start, gs[2].end, tSSN)
		return gs[2].end
	case !paren && lens(9) && ssnOK(collect(0)) && ssnCtx():
		sc.add(start, gs[0].end, tSSN)
		return gs[0].end
	}
	// NANP phones: (415) 555-0100, 415-555-0100, 415.555.0100, 1-415-555-0100, and
	// unformatted 10 digits with context.
	nanp := func(off int) bool {
		a, x := s[gs[off].start], s[gs[off+1].start]
		return a >= '2' && x >= '2'
	}
	phoneCtx := func() bool { return sc.context(start, "phone", "tel", "mobile", "cell", "fax", "call") }
	switch {
	case lens(3, 3, 4) && (paren || same(2, "-. ")) && nanp(0):
		sc.add(start, gs[2].end, tPhone)
		return gs[2].end
	case !paren && lens(1, 3, 3, 4) && s[gs[0].start] == '1' && same(3, "-. ") && nanp(1):
		sc.add(start, gs[3].end, tPhone)
		return gs[3].end
	case !paren && lens(10) && s[start] >= '2' && s[start+3] >= '2' && phoneCtx():
		sc.add(start, gs[0].end, tPhone)
		return gs[0].end
	}
	return next
}

// notCard reports a number introduced as an order, invoice or tracking number, by the
// text before it or by the JSON member name holding it ("order_no": 4111…).
func (sc *scan) notCard(i int) bool {
	named := func(words ...string) bool {
		if sc.before(i, 24, words...) {
			return true
		}
		for _, x := range words {
			if len(sc.key) > 0 && containsFold(sc.key, []byte(x)) {
				return true
			}
		}
		return false
	}
	return named("order", "invoice", "tracking", "shipment") && !named("card")
}

// iban checks for an IBAN whose check digits start at i (the country code is at i-2).
func (sc *scan) iban(i int) {
	s := sc.s
	b := i - 2
	if sc.gluedAt(b) || (sc.raw && escaped(s, b)) {
		return
	}
	ok := func(c byte) bool { return isUpper(c) || isDigit(c) }
	// Compact form first.
	if e := run(s, b, 35, ok); e-b >= 15 && e-b <= 34 && (e >= len(s) || !isAlnum(s[e])) && ibanOK(s[b:e]) {
		sc.add(b, e, tIBAN)
		return
	}
	// Printed form: groups of four separated by single spaces, the last one 1-4 long.
	if b+4 >= len(s) || s[b+4] != ' ' {
		return
	}
	ends := []int{}
	j := b + 5
	for j < len(s) && j-b < 43 {
		e := run(s, j, 5, ok)
		if e-j < 1 || e-j > 4 {
			break
		}
		ends = append(ends, e)
		if e-j < 4 || e >= len(s) || s[e] != ' ' {
			break
		}
		j = e + 1
	}
	for k := len(ends) - 1; k >= 0; k-- {
		e := ends[k]
		if (e >= len(s) || !isAlnum(s[e])) && ibanOK(s[b:e]) {
			sc.add(b, e, tIBAN)
			return
		}
	}
}
