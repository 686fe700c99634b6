package masking

import (
	"encoding/base64"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/masking/maskingtest"
)

const (
	b64Key64  = "ZbrNk3H27yLgXRgJIn43Qvesb8eg2k1rgdViklmIlWiVO+dWrurtB9tH/Zursimy3FP2iueSkRq2pzai1PySRA=="
	uuid      = "3f2b8c1e-4d5a-4b6c-8d7e-9f0a1b2c3d4e"
	gitSHA    = "9fceb02d0ae598e95dc970b74767f19372d61af8"
	sha256Hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// TestProviderFalsePositives: identifiers and digests that look random are not secrets; the
// member name or the words before them decide when they are.
func TestProviderFalsePositives(t *testing.T) {
	img := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR chart pixels ", 40)))
	runMaskCases(t, []maskCase{
		{name: "uuid", doc: `{"request_id":"` + uuid + `","text":"trace ` + uuid + ` done"}`},
		{name: "git sha", doc: `{"commit":"` + gitSHA + `","text":"merged ` + gitSHA + `"}`},
		{name: "hex hashes", doc: `{"sha256":"` + sha256Hex + `","etag":"d41d8cd98f00b204e9800998ecf8427e","md5":"9e107d9d372bb6826bd81d3542a419d6"}`},
		{name: "base64 image", doc: `{"type":"image","data":"` + img + `","html":"<img src=\"data:image/png;base64,` + img + `\">"}`},
		{name: "sha512 integrity", doc: `{"integrity":"sha512-` + b64Key64 + `","text":"sha512-` + b64Key64 + `"}`},
		{name: "64-byte digest named as such", doc: `{"signature":"` + b64Key64 + `","text":"ed25519 signature ` + b64Key64 + `","checksum":"` + b64Key64 + `"}`},
		{name: "hex run after a prefix-like word", doc: `{"text":"ACCEPTED SKU-1234 rapid dapi key-value hf_ NRAK-short 12:AA dp.pt.short MT.abc"}`},
		{name: "placeholders", doc: `{"text":"SG.xxxxxxxxxxxxxxxxxxxxxx.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx shpat_00000000000000000000000000000000 dop_v1_0000000000000000000000000000000000000000000000000000000000000000"}`},
		{name: "discord shape whose first part is not a user id", doc: `{"text":"MTIzYWJjZGVmZ2hpamtsbW5vcHFy.OJHZ1H.imUkyD24t3c_RE-JDpS59SLBH4VWpBfNmUdl93"}`},
		{name: "heroku ids are not keys", doc: `{"text":"heroku app id: ` + uuid + `","heroku_app":"` + uuid + `"}`},
		{name: "key- ending a longer name", doc: `{"text":"cache user-key-d41d8cd98f00b204e9800998ecf8427e and s3://b/key-9e107d9d372bb6826bd81d3542a419d6"}`},
		{name: "storage-key shapes glued to each other", doc: `{"text":"blob ` + b64Key64 + b64Key64 + `"}`},
		{name: "datadog trace and span ids", doc: `{"text":"datadog trace_id 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7","dd.trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}`},
		{name: "cloudflare ray and zone ids", doc: `{"text":"cloudflare ray 8c3f2a9b1d0e4f56-FRA zone 023e105f4ecef8ad9ca31a8372d0c353","zone_id":"023e105f4ecef8ad9ca31a8372d0c353"}`},
		{name: "LTAI inside a word and short", doc: `{"text":"VOLTAIC LTAI12345 xLTAI5tQ8Zp3Wn7Rk2Yb9Vc4Jd"}`},
		{name: "fm2_ without a token body", doc: `{"text":"fm2_ fm2_abc fm1r_short"}`},
		{name: "sas-like sig without a sas query", doc: `{"text":"https://example.com/x?sig=gukG9bP%2BKtIm70HK4l8OXdNsz4%2F4DtzP1IlW4%2B5pH74%3D"}`},
		{
			name: "uuid named a heroku key", doc: `{"HEROKU_API_KEY":"` + uuid + `","text":"heroku api key: ` + uuid + `"}`,
			want: `{"HEROKU_API_KEY":"[REDACTED:HEROKU_KEY]","text":"heroku api key: [REDACTED:HEROKU_KEY]"}`, counts: Counts{"HEROKU_KEY": 2},
		},
		{
			name: "storage key listed by the cloud cli", doc: `[{"keyName":"key1","permissions":"FULL","value":"` + b64Key64 + `"}]`,
			want: `[{"keyName":"key1","permissions":"FULL","value":"[REDACTED:AZURE_STORAGE_KEY]"}]`, counts: Counts{"AZURE_STORAGE_KEY": 1},
		},
		{
			name: "storage key in a connection string", doc: `{"conn":"AccountName=a;AccountKey=` + b64Key64 + `;EndpointSuffix=core.windows.net"}`,
			want: `{"conn":"AccountName=a;AccountKey=[REDACTED:AZURE_STORAGE_KEY];EndpointSuffix=core.windows.net"}`, counts: Counts{"AZURE_STORAGE_KEY": 1},
		},
	})
}

// TestChecksums: a token whose checksum holds is masked even when it looks regular; the
// same token with a wrong checksum must then pass the entropy floor, and does not.
func TestChecksums(t *testing.T) {
	m, err := New(DefaultConfig())
	require.NoError(t, err)
	body := strings.Repeat("ab", 15)
	for _, prefix := range []string{"ghp_", "npm_"} {
		good := prefix + body + base62CRC([]byte(body))
		out, c := m.Text([]byte("token " + good))
		require.Equal(t, "token [REDACTED:"+map[string]string{"ghp_": "GITHUB_TOKEN", "npm_": "NPM_TOKEN"}[prefix]+"]", string(out))
		require.Len(t, c, 1)
		bad := prefix + body + "AAAAAA"
		out, c = m.Text([]byte("token " + bad))
		require.Equal(t, "token "+bad, string(out), "low entropy and a wrong checksum")
		require.Empty(t, c)
	}
	// BIP 173 test vectors.
	require.True(t, bech32OK("a", []byte("2UEL5L")))
	require.True(t, bech32OK("abcdef", []byte("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7LMQQQXW")))
	require.False(t, bech32OK("a", []byte("2UEL5M")))
	// An age key with a valid checksum and a regular-looking body is a key; with a broken
	// checksum it is not taken for one.
	data := strings.Repeat("QP", 26)
	for _, s := range maskingtest.ProviderSamples(1) {
		if s.Type == "AGE_SECRET_KEY" {
			require.True(t, bech32OK("age-secret-key-", []byte(strings.TrimPrefix(s.Text, "AGE-SECRET-KEY-1"))))
		}
	}
	pm := bech32Polymod("age-secret-key-", []byte(data+"QQQQQQ")) ^ 1
	sum := make([]byte, 6)
	for k := range sum {
		sum[k] = bech32Alphabet[(pm>>(5*(5-k)))&31]
	}
	require.True(t, bech32OK("age-secret-key-", append([]byte(data), sum...)))
	out, _ := m.Text([]byte("AGE-SECRET-KEY-1" + data + string(sum)))
	require.Equal(t, "[REDACTED:AGE_SECRET_KEY]", string(out), "valid checksum, regular body")
	out, _ = m.Text([]byte("AGE-SECRET-KEY-1" + data + "QQQQQQ"))
	require.Equal(t, "AGE-SECRET-KEY-1"+data+"QQQQQQ", string(out))
}

// TestProviderSamplesEverywhere: a sample of every provider format is masked in text, as a
// JSON value under a neutral name and as wire text, with its type.
func TestProviderSamplesEverywhere(t *testing.T) {
	m, err := New(DefaultConfig())
	require.NoError(t, err)
	var samples []maskingtest.Sample
	for seed := range uint64(6) { // the variants of each format
		samples = append(samples, maskingtest.ProviderSamples(9+seed)...)
	}
	for _, s := range samples {
		t.Run(s.Type, func(t *testing.T) {
			out, c := m.Text([]byte(s.Line))
			require.NotContains(t, string(out), s.Text)
			require.Positive(t, c[s.Type], "%s", out)
			doc := `{"v":` + string(quote(s.Line)) + `}`
			jo, jc, err := m.JSON([]byte(doc))
			require.NoError(t, err)
			require.NotContains(t, string(jo), s.Text)
			require.Positive(t, jc[s.Type], "%s", jo)
			wo, _ := m.Wire([]byte(doc))
			require.Equal(t, string(jo), string(wo), "wire text masks as the decoded value does")
		})
	}
}

func quote(s string) []byte { return appendQuoted(nil, []byte(s)) }

// genericRE is the specification genericValue implements.
var genericRE = regexp.MustCompile(`^(?i:password|passwd|pwd|secret|api[_-]?key|token|access[_-]?key|private[_-]?key|credentials?)[A-Za-z0-9_.-]{0,24}(?:\\?["'])?\s{0,4}[:=]\s{0,4}(?:\\?["'])?([^\s"',;\\<>&]{8,256})`)

// TestGenericValue: the hand-written matcher of key=value secrets finds exactly what
// genericRE finds, on random text after every keyword that triggers it.
func TestGenericValue(t *testing.T) {
	kws := []string{
		"password", "PassWD", "pwd", "secret", "api_key", "api-key", "apikey", "token", "access_key",
		"access-key", "private_key", "private-key", "credential", "Credentials",
	}
	alpha := []byte("sS_.-aZ9 \t\n\"'\\:=,;<>&xyz!#%$")
	rng := rand.New(rand.NewPCG(5, 6))
	for k := range 200000 {
		kw := kws[k%len(kws)]
		tail := make([]byte, rng.IntN(60))
		for i := range tail {
			tail[i] = alpha[rng.IntN(len(alpha))]
			if rng.IntN(3) == 0 {
				tail[i] = 'a' + byte(rng.IntN(26))
			}
		}
		w := append([]byte(kw), tail...)
		n := len(kw)
		if strings.EqualFold(kw, "credentials") {
			n = len("credential") // the trigger is "credential"
		}
		a, b := genericValue(w, n)
		loc := genericRE.FindSubmatchIndex(w)
		if loc == nil {
			require.Equal(t, -1, a, "%q", w)
			continue
		}
		require.Equal(t, [2]int{loc[2], loc[3]}, [2]int{a, b}, "%q", w)
	}
}
