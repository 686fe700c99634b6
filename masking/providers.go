package masking

import (
	"bytes"
	"encoding/base64"
	"hash/crc32"
)

// Detectors of provider credentials. Each is written from the provider's published token
// format: a literal prefix (or a fixed marker inside the token) is the keyword, then the
// check reads the body's length and character set, a checksum where the format carries
// one, and an entropy floor that keeps placeholders (ghp_xxxx…, 0000…) unmasked.

func isHex(c byte) bool    { return isDigit(c) || (c >= 'a' && c <= 'f') }
func isHexAny(c byte) bool { return isHex(c) || (c >= 'A' && c <= 'F') }
func isB64(c byte) bool    { return isAlnum(c) || c == '+' || c == '/' }

// providerKeywords registers the triggers of the provider detectors that are on.
func (m *Masker) providerKeywords() {
	reg := func(typ int, fn func(*scan, int, *keyword), exact ...string) {
		if m.on[typ] {
			for _, k := range exact {
				m.keyword(k, true, fn)
			}
		}
	}
	// tok registers prefixes whose check requires a word boundary before the token.
	tok := func(typ int, fn func(*scan, int, *keyword), exact ...string) {
		if m.on[typ] {
			for _, k := range exact {
				m.token(k, fn)
			}
		}
	}
	// GitLab token kinds besides personal access tokens: deploy, runner, pipeline trigger,
	// SCIM, CI job, feature flag client, feed, incoming mail, agent, OAuth application
	// secret, and legacy runner registration tokens.
	tok(tGitLab, fixedToken(tGitLab, 20, 64, isB64URL, 3.0), "gldt-", "glrt-", "glptt-", "glsoat-", "glcbt-",
		"glffct-", "glft-", "glimt-", "glagent-", "gloas-", "GR1348941")
	tok(tSlack, fixedToken(tSlack, 20, 250, func(c byte) bool { return isAlnum(c) || c == '-' }, 3.0), "xapp-")
	tok(tStripe, fixedToken(tStripe, 32, 64, isAlnum, 3.0), "whsec_")

	if m.on[tAzureStorageKey] {
		m.keyword("accountkey=", false, azureKeyAfter)
	}
	reg(tAzureStorageKey, azureKeyPad, "==")
	reg(tAzureSAS, azureSAS, "sig=")
	reg(tAzureClientSecret, azureClientSecret, "Q~")
	tok(tSendGrid, sendGrid, "SG.")
	tok(tShopify, fixedToken(tShopify, 32, 32, isHexAny, 3.0), "shpat_", "shpca_", "shppa_", "shpss_")
	tok(tTwilio, fixedToken(tTwilio, 32, 32, isHex, 3.0), "SK", "AC")
	tok(tMailgun, mailgun, "key-")
	reg(tMailchimp, mailchimp, "-us")
	tok(tNPM, checksummed(tNPM, 36), "npm_")
	tok(tPyPI, fixedToken(tPyPI, 50, 512, isB64URL, 3.0), "pypi-AgEIcHlwaS5vcmc")
	tok(tDockerHub, fixedToken(tDockerHub, 20, 64, isB64URL, 3.0), "dckr_pat_", "dckr_oat_")
	tok(tVault, fixedToken(tVault, 24, 400, isB64URL, 3.0), "hvs.", "hvb.", "hvr.")
	reg(tTerraform, terraform, ".atlasv1.")
	tok(tDigitalOcean, fixedToken(tDigitalOcean, 64, 64, isHex, 3.0), "dop_v1_", "doo_v1_", "dor_v1_")
	tok(tHeroku, fixedToken(tHeroku, 40, 100, isB64URL, 3.0), "HRKU-")
	if m.on[tHeroku] {
		m.keyword("heroku", false, herokuUUID)
	}
	tok(tDatabricks, databricks, "dapi")
	tok(tDoppler, doppler, "dp.pt.", "dp.st.", "dp.sa.", "dp.ct.", "dp.scim.", "dp.audit.")
	tok(tGrafana, fixedToken(tGrafana, 32, 400, func(c byte) bool { return isB64(c) || c == '=' }, 3.0), "glc_")
	tok(tGrafana, grafanaSA, "glsa_")
	tok(tNewRelic, fixedToken(tNewRelic, 19, 40, isB64URL, 3.0), "NRAK-", "NRII-", "NRJS-", "NRAA-")
	tok(tSentry, fixedToken(tSentry, 60, 400, func(c byte) bool { return isB64(c) || c == '=' || c == '_' }, 3.0), "sntrys_")
	tok(tSentry, fixedToken(tSentry, 64, 64, isHex, 3.0), "sntryu_")
	tok(tLinear, fixedToken(tLinear, 40, 40, isAlnum, 3.0), "lin_api_")
	tok(tLinear, fixedToken(tLinear, 64, 64, isHex, 3.0), "lin_oauth_")
	tok(tPostman, postman, "PMAK-")
	tok(tPulumi, fixedToken(tPulumi, 40, 40, isHex, 3.0), "pul-")
	tok(tAtlassian, fixedToken(tAtlassian, 100, 400, func(c byte) bool { return isB64URL(c) || c == '=' }, 3.5), "ATATT3", "ATCTT3")
	tok(tHuggingFace, fixedToken(tHuggingFace, 34, 34, isAlnum, 3.0), "hf_", "api_org_")
	reg(tTelegram, telegram, ":AA")
	// A Discord bot token opens with the bot's numeric user id in base64, whose first two
	// characters are one of these for any id of 17 to 20 digits.
	tok(tDiscord, discord, "MT", "Mj", "Mz", "ND", "NT", "Nj", "Nz", "OD", "OT")
	tok(tSquare, fixedToken(tSquare, 22, 22, isB64URL, 3.0), "sq0atp-", "sq0idp-")
	tok(tSquare, fixedToken(tSquare, 43, 43, isB64URL, 3.0), "sq0csp-")
	tok(tSquare, fixedToken(tSquare, 60, 60, isB64URL, 3.5), "EAAA")
	tok(tAgeKey, ageKey, "AGE-SECRET-KEY-1")
	// Azure DevOps personal access tokens: 84 characters with AZDO at 76..79 (the format since
	// 2024); the older 52-character base32 form only after a name that says Azure DevOps.
	reg(tAzureDevOps, azureDevOpsPAT, "AZDO")
	if m.on[tAzureDevOps] {
		for _, k := range []string{"dev.azure.com", "azure_devops", "azuredevops", "azure devops", "ado_pat", "visualstudio.com"} {
			m.keyword(k, false, azureDevOpsLegacy)
		}
	}
	// Service Bus and Event Hubs connection strings: SharedAccessKey=<44 base64>.
	if m.on[tAzureServiceBus] {
		m.keyword("sharedaccesskey=", false, serviceBusKey)
	}
	// Meta (Facebook, Instagram, WhatsApp) Graph API access tokens: EAA + a long alphanumeric
	// body (user, page and system-user tokens; Square's EAAA tokens are 64 and stay Square's).
	tok(tMeta, fixedToken(tMeta, 90, 600, isAlnum, 3.5), "EAA")
	tok(tPlanetScale, fixedToken(tPlanetScale, 32, 64, func(c byte) bool { return isB64URL(c) || c == '.' || c == '=' }, 3.0),
		"pscale_tkn_", "pscale_pw_", "pscale_oauth_")
	tok(tSupabase, fixedToken(tSupabase, 40, 40, isHex, 3.0), "sbp_", "sbp_oauth_")
	tok(tSupabase, fixedToken(tSupabase, 24, 128, isB64URL, 3.0), "sb_secret_")
	tok(tMapbox, mapbox, "sk.eyJ", "tk.eyJ")
	// API keys of other model providers: OpenRouter (sk-or-v1-), Groq (gsk_), xAI (xai-),
	// Perplexity (pplx-), DeepSeek-style sk- + 32 hex (checked in skToken).
	tok(tAIKey, fixedToken(tAIKey, 64, 64, isHex, 3.0), "sk-or-v1-")
	tok(tAIKey, fixedToken(tAIKey, 52, 52, isAlnum, 3.5), "gsk_")
	tok(tAIKey, fixedToken(tAIKey, 80, 80, isAlnum, 3.5), "xai-")
	tok(tAIKey, fixedToken(tAIKey, 48, 48, isAlnum, 3.5), "pplx-")

	// Alibaba Cloud: AccessKey IDs are LTAI + 12 to 20 letters and digits; the AccessKey
	// secret, 30 letters and digits, has no prefix and is masked after a name that says so.
	tok(tAlibaba, fixedToken(tAlibaba, 12, 20, isAlnum, 3.0), "LTAI")
	m.named(tAlibaba, 40, false, []runShape{{30, 30, isAlnum, 3.5}}, "accesskeysecret", "access_key_secret", "access-key-secret")
	// Datadog API keys (32 hex) and application keys (40 hex) have no prefix: they are
	// masked after the variable or header names Datadog documents, or after the word
	// datadog when the words between name a key (trace and span ids are hex too).
	ddKeys := []runShape{{32, 32, isHex, 3.0}, {40, 40, isHex, 3.0}}
	m.named(tDatadog, 60, false, ddKeys, "dd_api_key", "dd_app_key", "dd_application_key", "dd-api-key", "dd-application-key",
		"datadog_api_key", "datadog_app_key")
	m.named(tDatadog, 60, true, ddKeys, "datadog")
	// Cloudflare: Origin CA keys carry a prefix (v1.0- + 24 hex + - + 146 hex); API tokens
	// (40 characters) and the Global API key (37 hex) do not, and are masked after a name
	// that says Cloudflare and key or token.
	tok(tCloudflare, originCAKey, "v1.0-")
	cfKeys := []runShape{{40, 40, isB64URL, 3.5}, {37, 37, isHex, 3.0}}
	m.named(tCloudflare, 60, false, cfKeys, "cf_api_token", "cf_api_key", "cloudflare_api_token", "cloudflare_api_key")
	m.named(tCloudflare, 60, true, cfKeys, "cloudflare")
	// Fly.io macaroon tokens (fly tokens create): fm2_, fm1r_, fm1a_ + base64, often after
	// FlyV1 and several joined by commas.
	tok(tFly, fixedToken(tFly, 64, 4096, func(c byte) bool { return isB64(c) || c == '=' }, 4.0), "fm2_", "fm1r_", "fm1a_")
}

// runShape is the form of a credential without a prefix: a run of lo to hi bytes of class
// ok standing alone, with an entropy floor.
type runShape struct {
	lo, hi int
	ok     func(byte) bool
	minEnt float64
}

// named registers keywords after which a credential of one of shapes is masked when it
// stands alone within window bytes on the same line. With keyWord, the words between must
// also name a key, token or secret ("datadog api key: …", not "datadog trace_id …").
func (m *Masker) named(typ, window int, keyWord bool, shapes []runShape, kws ...string) {
	if !m.on[typ] {
		return
	}
	fn := func(sc *scan, i int, kw *keyword) {
		s := sc.s
		from := i + len(kw.lo)
		lim := min(len(s), from+window)
		for j := from; j < lim; j++ {
			c := s[j]
			if c == '\n' {
				return
			}
			if !isB64URL(c) || sc.gluedAt(j) || (j > 0 && s[j-1] == '-') {
				continue
			}
			for _, sh := range shapes {
				e := run(s, j, sh.hi+1, sh.ok)
				if e-j >= sh.lo && e-j <= sh.hi && (e >= len(s) || (!isWord(s[e]) && s[e] != '-')) && !lowEntropy(s[j:e], sh.minEnt) {
					if !keyWord || namesKey(s[from:j]) {
						sc.add(j, e, typ)
					}
					return
				}
			}
			j = run(s, j, window, isB64URL) // past this word
		}
	}
	for _, k := range kws {
		m.keyword(k, false, fn)
	}
}

// namesKey reports whether the words between a name and a value say key, token or secret.
func namesKey(b []byte) bool {
	return containsFold(b, []byte("key")) || containsFold(b, []byte("token")) || containsFold(b, []byte("secret"))
}

// originCAKey checks a Cloudflare Origin CA key: v1.0- + 24 hex + - + 146 hex.
func originCAKey(sc *scan, i int, kw *keyword) {
	s := sc.s
	if !sc.leftOK(i) {
		return
	}
	b := i + len(kw.lo)
	a := run(s, b, 25, isHex)
	if a-b != 24 || a >= len(s) || s[a] != '-' {
		return
	}
	e := run(s, a+1, 147, isHex)
	if e-a-1 != 146 || (e < len(s) && isWord(s[e])) || lowEntropy(s[a+1:e], 3.0) {
		return
	}
	sc.add(i, e, tCloudflare)
}

func isBase32Lower(c byte) bool { return c >= 'a' && c <= 'z' || c >= '2' && c <= '7' }

// azureDevOpsPAT checks 76 alphanumerics, AZDO, 4 alphanumerics, as a whole word.
func azureDevOpsPAT(sc *scan, i int, _ *keyword) {
	s := sc.s
	b := i - 76
	if b < 0 || !sc.leftOK(b) || i+8 > len(s) {
		return
	}
	for k := b; k < i; k++ {
		if !isAlnum(s[k]) {
			return
		}
	}
	e := i + 8
	for k := i + 4; k < e; k++ {
		if !isAlnum(s[k]) {
			return
		}
	}
	if (e < len(s) && isWord(s[e])) || lowEntropy(s[b:i], 4.0) {
		return
	}
	sc.add(b, e, tAzureDevOps)
}

// azureDevOpsLegacy looks for a 52-character lower-case base32 token within 80 bytes after a
// name of Azure DevOps.
func azureDevOpsLegacy(sc *scan, i int, kw *keyword) {
	s := sc.s
	end := min(len(s), i+len(kw.lo)+80)
	for j := i + len(kw.lo); j < end; j++ {
		if !isBase32Lower(s[j]) || (j > 0 && isWord(s[j-1])) {
			continue
		}
		e := run(s, j, 53, isBase32Lower)
		if e-j == 52 && (e >= len(s) || !isWord(s[e])) && !lowEntropy(s[j:e], 3.5) {
			sc.add(j, e, tAzureDevOps)
			return
		}
		j = e
	}
}

// serviceBusKey checks SharedAccessKey= + 43 base64 characters and '='.
func serviceBusKey(sc *scan, i int, kw *keyword) {
	s := sc.s
	b := i + len(kw.lo)
	e := run(s, b, 44, isB64)
	if e-b != 43 || e >= len(s) || s[e] != '=' || lowEntropy(s[b:e], 3.5) {
		return
	}
	sc.add(b, e+1, tAzureServiceBus)
}

// mapbox checks sk.eyJ / tk.eyJ + base64url payload + '.' + 22 base64url characters.
func mapbox(sc *scan, i int, _ *keyword) {
	s := sc.s
	if !sc.leftOK(i) {
		return
	}
	a := run(s, i+6, 400, isB64URL)
	if a-i-6 < 20 || a >= len(s) || s[a] != '.' {
		return
	}
	e := run(s, a+1, 23, isB64URL)
	if e-a-1 != 22 || (e < len(s) && isWord(s[e])) || lowEntropy(s[i+3:e], 3.5) {
		return
	}
	sc.add(i, e, tMapbox)
}

// checksummed handles prefix + body tokens whose last six characters are the base62
// CRC32 of the rest (GitHub's and npm's formats). A body whose checksum holds is masked
// whatever its entropy; one whose checksum fails (a mistyped, truncated or made-up token
// is still worth hiding) must pass the entropy floor instead.
func checksummed(typ, n int) func(*scan, int, *keyword) {
	return func(sc *scan, i int, kw *keyword) {
		if !sc.leftOK(i) {
			return
		}
		b := i + len(kw.lo)
		e := run(sc.s, b, n+1, isAlnum)
		if e-b != n || (e < len(sc.s) && isWord(sc.s[e])) {
			return
		}
		if !crcOK(kw.exact, sc.s[b:e]) && lowEntropy(sc.s[b:e], 3.0) {
			return
		}
		sc.add(i, e, typ)
	}
}

const (
	base62Upper = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	base62Lower = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)

// crcOK reports whether the last six characters of body are the CRC32 (IEEE) of the
// characters before them, with or without the prefix, in base62 padded with zeros.
func crcOK(prefix, body []byte) bool {
	if len(body) <= 6 {
		return false
	}
	rnd, sum := body[:len(body)-6], body[len(body)-6:]
	c1 := crc32.ChecksumIEEE(rnd)
	c2 := crc32.Update(crc32.ChecksumIEEE(prefix), crc32.IEEETable, rnd)
	for _, c := range [2]uint32{c1, c2} {
		for _, alpha := range [2]string{base62Upper, base62Lower} {
			if base62Is(c, alpha, sum) {
				return true
			}
		}
	}
	return false
}

// base62Is reports whether sum is v in base62 over alpha, left-padded with alpha[0].
func base62Is(v uint32, alpha string, sum []byte) bool {
	for k := len(sum) - 1; k >= 0; k-- {
		if sum[k] != alpha[v%62] {
			return false
		}
		v /= 62
	}
	return v == 0
}

// base62CRC returns the six-character checksum crcOK accepts (upper-case-first alphabet,
// body without prefix); tests and the corpus generator use it to build valid tokens.
func base62CRC(rnd []byte) string {
	v := crc32.ChecksumIEEE(rnd)
	var out [6]byte
	for k := 5; k >= 0; k-- {
		out[k] = base62Upper[v%62]
		v /= 62
	}
	return string(out[:])
}

// azureKeyLen is the length of an Azure storage account key: 64 random bytes in base64.
const azureKeyLen = 88

// azureKeyAfter checks the value of AccountKey= in a connection string.
func azureKeyAfter(sc *scan, i int, kw *keyword) {
	b := i + len(kw.lo)
	if b+azureKeyLen <= len(sc.s) {
		sc.azureKey(b, true)
	}
}

// azureKeyPad checks whether the == at i ends an Azure storage key standing alone.
func azureKeyPad(sc *scan, i int, _ *keyword) {
	if b := i + 2 - azureKeyLen; b >= 0 {
		sc.azureKey(b, false)
	}
}

// azureKey checks for an 88-character key at b: 86 base64 characters, the last of which
// leaves the 4 spare bits zero as 64 bytes must, then ==, standing alone. Without the
// AccountKey= label it must not be labelled a digest: a SHA-512 sum or an Ed25519
// signature in base64 has the same shape.
func (sc *scan) azureKey(b int, labelled bool) {
	s := sc.s
	e := b + azureKeyLen
	if s[e-2] != '=' || s[e-1] != '=' || (e < len(s) && (isB64(s[e]) || s[e] == '=')) {
		return
	}
	if !labelled && b > 0 && (isB64(s[b-1]) || s[b-1] == '=') && !(sc.raw && escaped(s, b-1)) {
		return // part of a longer base64 run, or glued to the padding of one before it
	}
	if sc.raw && escaped(s, b) {
		return
	}
	if run(s, b, azureKeyLen, isB64) != e-2 || bytes.IndexByte([]byte("AQgw"), s[e-3]) < 0 {
		return
	}
	if lowEntropy(s[b:e-2], 4.0) {
		return
	}
	if !labelled && sc.context(b, "sha512", "sha-512", "sha384", "integrity", "digest", "checksum", "hash", "signature", "ed25519", "fingerprint") {
		return
	}
	sc.add(b, e, tAzureStorageKey)
}

// azureSAS masks the sig= signature of a shared access signature: the URL-encoded base64
// of an HMAC-SHA256 (32 bytes), in a query that also carries the SAS version or expiry.
func azureSAS(sc *scan, i int, kw *keyword) {
	s := sc.s
	if sc.gluedAt(i) && !(sc.raw && i >= 6 && string(s[i-6:i]) == `\u0026`) {
		return
	}
	b := i + len(kw.lo)
	e := run(s, b, 120, func(c byte) bool { return isB64(c) || c == '%' || c == '=' })
	if e-b < 43 || (e < len(s) && isWord(s[e])) {
		return
	}
	// The SAS parameters before sig= are read within the look-behind a Stream keeps.
	if !sc.before(i, leftContext-6, "sv=", "se=", "sp=", "sr=", "sharedaccesssignature") {
		return
	}
	var buf [120]byte
	dec := buf[:0]
	for k := b; k < e; k++ {
		c := s[k]
		if c == '%' {
			if k+2 >= e {
				return
			}
			switch string(bytes.ToUpper(s[k+1 : k+3])) {
			case "2B":
				c = '+'
			case "2F":
				c = '/'
			case "3D":
				c = '='
			default:
				return
			}
			k += 2
		}
		dec = append(dec, c)
	}
	dec = bytes.TrimRight(dec, "=")
	if base64.RawStdEncoding.DecodedLen(len(dec)) != 32 {
		return
	}
	var sum [33]byte
	if n, err := base64.RawStdEncoding.Decode(sum[:], dec); err != nil || n != 32 {
		return
	}
	sc.add(b, e, tAzureSAS)
}

func isAzureSecretChar(c byte) bool {
	return isAlnum(c) || c == '_' || c == '~' || c == '.' || c == '-'
}

// azureClientSecret checks a Microsoft Entra ID (Azure AD) client secret around the Q~ at
// i: three characters, a digit, Q~, then 31 to 34 characters, 40 in all.
func azureClientSecret(sc *scan, i int, _ *keyword) {
	s := sc.s
	b := i - 4
	if b < 0 || !isDigit(s[i-1]) || sc.gluedAt(b) || (b > 0 && isAzureSecretChar(s[b-1]) && !(sc.raw && escaped(s, b-1))) {
		return
	}
	for _, c := range s[b : i-1] {
		if !isAzureSecretChar(c) || c == '~' {
			return
		}
	}
	e := run(s, i+2, 35, isAzureSecretChar)
	if e-i-2 < 31 || e-i-2 > 34 || lowEntropy(s[b:e], 3.5) {
		return
	}
	sc.add(b, e, tAzureClientSecret)
}

// sendGrid checks SG. + 22 + . + 43 characters (base64url).
func sendGrid(sc *scan, i int, _ *keyword) {
	s := sc.s
	if !sc.leftOK(i) {
		return
	}
	a := run(s, i+3, 23, isB64URL)
	if a-i-3 != 22 || a >= len(s) || s[a] != '.' {
		return
	}
	e := run(s, a+1, 44, isB64URL)
	if e-a-1 != 43 || (e < len(s) && isWord(s[e])) || lowEntropy(s[i+3:e], 3.5) {
		return
	}
	sc.add(i, e, tSendGrid)
}

var mailgunKey = fixedToken(tMailgun, 32, 32, isHex, 3.0)

// mailgun checks key- + 32 hex digits, unless key- ends a longer name (user-key-<md5>,
// cache.key-<hash>): there it is a cache or object key, not Mailgun's API key.
func mailgun(sc *scan, i int, kw *keyword) {
	if i > 0 && (sc.s[i-1] == '-' || sc.s[i-1] == '.' || sc.s[i-1] == '/') {
		return
	}
	mailgunKey(sc, i, kw)
}

// mailchimp checks 32 hex digits before the -us<datacenter> at i.
func mailchimp(sc *scan, i int, _ *keyword) {
	s := sc.s
	b := i - 32
	if b < 0 || sc.gluedAt(b) || run(s, b, 32, isHex) != i {
		return
	}
	e := run(s, i+3, 3, isDigit)
	if e == i+3 || e-i-3 > 2 || (e < len(s) && isWord(s[e])) || lowEntropy(s[b:i], 3.0) {
		return
	}
	sc.add(b, e, tMailchimp)
}

// terraform checks a Terraform Cloud / HCP Terraform token: 14 characters, .atlasv1., then
// 60 to 70 more.
func terraform(sc *scan, i int, kw *keyword) {
	s := sc.s
	b := i - 14
	if b < 0 || sc.gluedAt(b) || run(s, b, 14, isAlnum) != i {
		return
	}
	e := run(s, i+len(kw.lo), 71, isB64URL)
	if n := e - i - len(kw.lo); n < 60 || n > 70 || (e < len(s) && isWord(s[e])) || lowEntropy(s[i+len(kw.lo):e], 3.5) {
		return
	}
	sc.add(b, e, tTerraform)
}

// databricks checks dapi + 32 hex digits, with the optional -<n> suffix of newer tokens.
func databricks(sc *scan, i int, kw *keyword) {
	s := sc.s
	if !sc.leftOK(i) {
		return
	}
	b := i + len(kw.lo)
	e := run(s, b, 33, isHex)
	if e-b != 32 || lowEntropy(s[b:e], 3.0) {
		return
	}
	if e+1 < len(s) && s[e] == '-' && isDigit(s[e+1]) {
		e = run(s, e+1, 3, isDigit)
	}
	if e < len(s) && isWord(s[e]) {
		return
	}
	sc.add(i, e, tDatabricks)
}

// doppler checks dp.<kind>. + 40 to 44 letters and digits.
func doppler(sc *scan, i int, kw *keyword) {
	if !sc.leftOK(i) {
		return
	}
	b := i + len(kw.lo)
	e := run(sc.s, b, 45, isAlnum)
	if e-b < 40 || e-b > 44 || (e < len(sc.s) && isWord(sc.s[e])) || lowEntropy(sc.s[b:e], 3.5) {
		return
	}
	sc.add(i, e, tDoppler)
}

// grafanaSA checks a Grafana service account token: glsa_ + 32 letters and digits + _ + 8 hex.
func grafanaSA(sc *scan, i int, kw *keyword) {
	s := sc.s
	if !sc.leftOK(i) {
		return
	}
	b := i + len(kw.lo)
	a := run(s, b, 33, isAlnum)
	if a-b != 32 || a >= len(s) || s[a] != '_' {
		return
	}
	e := run(s, a+1, 9, isHex)
	if e-a-1 != 8 || (e < len(s) && isWord(s[e])) || lowEntropy(s[b:a], 3.5) {
		return
	}
	sc.add(i, e, tGrafana)
}

// postman checks PMAK- + 24 hex + - + 34 hex.
func postman(sc *scan, i int, kw *keyword) {
	s := sc.s
	if !sc.leftOK(i) {
		return
	}
	b := i + len(kw.lo)
	a := run(s, b, 25, isHex)
	if a-b != 24 || a >= len(s) || s[a] != '-' {
		return
	}
	e := run(s, a+1, 35, isHex)
	if e-a-1 != 34 || (e < len(s) && isWord(s[e])) || lowEntropy(s[b:e], 3.0) {
		return
	}
	sc.add(i, e, tPostman)
}

// telegram checks a bot token around the :AA at i: the bot's id (8 to 10 digits), a colon,
// then 35 base64url characters starting AA.
func telegram(sc *scan, i int, _ *keyword) {
	s := sc.s
	b := i
	for b > 0 && i-b < 11 && isDigit(s[b-1]) {
		b--
	}
	if i-b < 8 || i-b > 10 || sc.gluedAt(b) {
		return
	}
	e := run(s, i+1, 36, isB64URL)
	if e-i-1 != 35 || (e < len(s) && isWord(s[e])) || lowEntropy(s[i+3:e], 3.5) {
		return
	}
	sc.add(b, e, tTelegram)
}

// discord checks id.timestamp.hmac where id is a user id of 17 to 20 digits in base64
// (decoded and checked), the timestamp 6 characters and the HMAC 27 to 38.
func discord(sc *scan, i int, _ *keyword) {
	s := sc.s
	if !sc.leftOK(i) {
		return
	}
	a := run(s, i, 28, isAlnum)
	if a-i < 23 || a-i > 27 || a >= len(s) || s[a] != '.' {
		return
	}
	t := run(s, a+1, 7, isB64URL)
	if t-a-1 != 6 || t >= len(s) || s[t] != '.' {
		return
	}
	e := run(s, t+1, 39, isB64URL)
	if e-t-1 < 27 || e-t-1 > 38 || (e < len(s) && isWord(s[e])) || lowEntropy(s[t+1:e], 3.5) {
		return
	}
	var id [21]byte
	n, err := base64.RawStdEncoding.Decode(id[:], s[i:a])
	if err != nil || n < 17 || n > 20 {
		return
	}
	for _, c := range id[:n] {
		if !isDigit(c) {
			return
		}
	}
	sc.add(i, e, tDiscord)
}

// bech32Alphabet is the data alphabet of bech32 (BIP 173), upper case as age writes it.
const bech32Alphabet = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"

func isBech32Upper(c byte) bool { return bytes.IndexByte([]byte(bech32Alphabet), c) >= 0 }

// ageKey checks AGE-SECRET-KEY-1 + 58 bech32 characters (32 bytes of key and a 6-character
// checksum). The prefix alone makes it a key, so a failed checksum (a mistyped copy) only
// raises the entropy asked of it.
func ageKey(sc *scan, i int, kw *keyword) {
	s := sc.s
	if !sc.leftOK(i) {
		return
	}
	b := i + len(kw.lo)
	e := run(s, b, 59, isBech32Upper)
	if e-b != 58 || (e < len(s) && isWord(s[e])) {
		return
	}
	if !bech32OK("age-secret-key-", s[b:e]) && lowEntropy(s[b:e], 4.0) {
		return
	}
	sc.add(i, e, tAgeKey)
}

// bech32OK verifies the BIP 173 checksum of hrp + "1" + data (data in the upper-case alphabet).
func bech32OK(hrp string, data []byte) bool {
	return bech32Polymod(hrp, data) == 1
}

func bech32Polymod(hrp string, data []byte) uint32 {
	gen := [5]uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}
	chk := uint32(1)
	step := func(v uint32) {
		top := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ v
		for k := range 5 {
			if (top>>k)&1 == 1 {
				chk ^= gen[k]
			}
		}
	}
	for k := 0; k < len(hrp); k++ {
		step(uint32(hrp[k]) >> 5)
	}
	step(0)
	for k := 0; k < len(hrp); k++ {
		step(uint32(hrp[k]) & 31)
	}
	for _, c := range data {
		step(uint32(bytes.IndexByte([]byte(bech32Alphabet), c))) //nolint:gosec // G115: callers pass alphabet characters only (0-31)
	}
	return chk
}

// herokuUUID masks a UUID-shaped Heroku API key within 60 bytes after the word heroku
// when the words between name a key, token, auth, secret or password (HEROKU_API_KEY=…,
// "heroku_auth_token": …). UUIDs elsewhere are identifiers, not keys.
func herokuUUID(sc *scan, i int, kw *keyword) {
	s := sc.s
	lim := min(len(s), i+len(kw.lo)+60)
	for j := i + len(kw.lo); j+36 <= lim; j++ {
		if s[j] == '\n' {
			return
		}
		if isHexAny(s[j]) && !sc.gluedAt(j) && uuidAt(s, j) {
			// Heroku's app, dyno and add-on ids are UUIDs too: only one named a key is masked.
			between := s[i+len(kw.lo) : j]
			for _, w := range []string{"key", "token", "auth", "secret", "pass"} {
				if containsFold(between, []byte(w)) {
					sc.add(j, j+36, tHeroku)
					return
				}
			}
			return
		}
	}
}

// uuidAt reports whether an 8-4-4-4-12 hex UUID stands alone at j.
func uuidAt(s []byte, j int) bool {
	if j+36 > len(s) || (j+36 < len(s) && isWord(s[j+36])) {
		return false
	}
	for k, c := range s[j : j+36] {
		switch k {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHexAny(c) {
				return false
			}
		}
	}
	return true
}
