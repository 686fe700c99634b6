package maskingtest

import (
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"strings"
)

const (
	hexLower = "0123456789abcdef"
	b64url   = alnum + "-_"
	letters  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	base62   = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	bech32   = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"
)

// provider plants one credential type: make returns the value, a label, a separator and
// the body that holds the value (the value itself, a URL, a connection string).
type provider struct {
	typ  string
	make func(g *gen) (val, label, sep, body string)
}

func plain(label, sep string, f func(g *gen) string) func(g *gen) (string, string, string, string) {
	return func(g *gen) (string, string, string, string) {
		v := f(g)
		return v, label, sep, v
	}
}

// providers are the credential formats beyond the original set, written from each
// provider's published token format.
var providers = []provider{
	{"AZURE_STORAGE_KEY", func(g *gen) (string, string, string, string) {
		k := base64.StdEncoding.EncodeToString(g.bytes(64))
		if g.r.IntN(2) == 0 {
			return k, "AZURE_STORAGE_CONNECTION_STRING", "=",
				"DefaultEndpointsProtocol=https;AccountName=acct" + g.digits(3) + ";AccountKey=" + k + ";EndpointSuffix=core.windows.net"
		}
		return k, g.pick([]string{"key1", "primary storage key", "AZURE_STORAGE_KEY"}), ": ", k
	}},
	{"AZURE_SAS_TOKEN", func(g *gen) (string, string, string, string) {
		sig := base64.StdEncoding.EncodeToString(g.bytes(32))
		sig = strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(sig)
		return sig, "download", " ", "https://acct.blob.core.windows.net/exports/q3.csv?sv=2022-11-02&ss=b&srt=o&sp=r&se=2026-12-31T00:00:00Z&spr=https&sig=" + sig
	}},
	{"AZURE_CLIENT_SECRET", plain("AZURE_CLIENT_SECRET", "=", func(g *gen) string {
		return g.chars(3, alnum+"_.-") + g.digits(1) + "Q~" + g.chars(34, alnum+"_.-~")
	})},
	{"SENDGRID_KEY", plain("SENDGRID_API_KEY", "=", func(g *gen) string {
		return "SG." + g.chars(22, b64url) + "." + g.chars(43, b64url)
	})},
	{"SHOPIFY_TOKEN", plain("shopify", " ", func(g *gen) string {
		return g.pick([]string{"shpat_", "shpca_", "shppa_", "shpss_"}) + g.chars(32, hexLower)
	})},
	{"TWILIO_KEY", plain("twilio", " ", func(g *gen) string { return g.pick([]string{"SK", "AC"}) + g.chars(32, hexLower) })},
	{"MAILGUN_KEY", plain("MAILGUN_API_KEY", "=", func(g *gen) string { return "key-" + g.chars(32, hexLower) })},
	{"MAILCHIMP_KEY", plain("mailchimp", " ", func(g *gen) string {
		return g.chars(32, hexLower) + "-us" + fmt.Sprint(1+g.r.IntN(21))
	})},
	{"NPM_TOKEN", plain("//registry.npmjs.org/:_authToken", "=", func(g *gen) string {
		r := g.chars(30, alnum)
		return "npm_" + r + crcSuffix(r)
	})},
	{"PYPI_TOKEN", plain("password", " = ", func(g *gen) string { return "pypi-AgEIcHlwaS5vcmc" + g.chars(150, b64url) })},
	{"DOCKER_HUB_TOKEN", plain("docker login -p", " ", func(g *gen) string { return "dckr_pat_" + g.chars(27, b64url) })},
	{"VAULT_TOKEN", plain("VAULT_TOKEN", "=", func(g *gen) string { return g.pick([]string{"hvs.", "hvb."}) + g.chars(90, b64url) })},
	{"TERRAFORM_TOKEN", plain("credentials app.terraform.io token", " = ", func(g *gen) string {
		return g.chars(14, alnum) + ".atlasv1." + g.chars(67, alnum)
	})},
	{"DIGITALOCEAN_TOKEN", plain("doctl", " ", func(g *gen) string {
		return g.pick([]string{"dop_v1_", "doo_v1_"}) + g.chars(64, hexLower)
	})},
	{"HEROKU_KEY", func(g *gen) (string, string, string, string) {
		if g.r.IntN(2) == 0 {
			k := "HRKU-AA" + g.chars(58, b64url)
			return k, "heroku auth", " ", k
		}
		u := g.uuid()
		return u, "HEROKU_API_KEY", "=", u
	}},
	{"DATABRICKS_TOKEN", plain("DATABRICKS_TOKEN", "=", func(g *gen) string { return "dapi" + g.chars(32, hexLower) })},
	{"DOPPLER_TOKEN", plain("DOPPLER_TOKEN", "=", func(g *gen) string {
		return g.pick([]string{"dp.pt.", "dp.st.", "dp.sa."}) + g.chars(43, alnum)
	})},
	{"GRAFANA_TOKEN", plain("grafana", " ", func(g *gen) string {
		if g.r.IntN(2) == 0 {
			return "glsa_" + g.chars(32, alnum) + "_" + g.chars(8, hexLower)
		}
		return "glc_" + base64.StdEncoding.EncodeToString([]byte(`{"o":"`+g.digits(6)+`","n":"stack-`+g.digits(6)+`","k":"`+g.chars(24, alnum)+`","m":{"r":"us"}}`))
	})},
	{"NEW_RELIC_KEY", plain("NEW_RELIC_API_KEY", "=", func(g *gen) string { return "NRAK-" + g.chars(27, upper+"0189") })},
	{"SENTRY_TOKEN", plain("SENTRY_AUTH_TOKEN", "=", func(g *gen) string {
		if g.r.IntN(2) == 0 {
			return "sntryu_" + g.chars(64, hexLower)
		}
		return "sntrys_" + base64.StdEncoding.EncodeToString([]byte(`{"iat":`+g.digits(10)+`,"url":"https://sentry.io","org":"acme"}`)) + "_" + g.chars(43, b64)
	})},
	{"LINEAR_KEY", plain("LINEAR_API_KEY", "=", func(g *gen) string { return "lin_api_" + g.chars(40, alnum) })},
	{"POSTMAN_KEY", plain("postman", " ", func(g *gen) string {
		return "PMAK-" + g.chars(24, hexLower) + "-" + g.chars(34, hexLower)
	})},
	{"PULUMI_TOKEN", plain("PULUMI_ACCESS_TOKEN", "=", func(g *gen) string { return "pul-" + g.chars(40, hexLower) })},
	{"ATLASSIAN_TOKEN", plain("jira", " ", func(g *gen) string {
		return "ATATT3xFfGF0" + g.chars(170, b64url) + "=" + g.chars(8, "0123456789ABCDEF")
	})},
	{"HUGGINGFACE_TOKEN", plain("HF_TOKEN", "=", func(g *gen) string { return "hf_" + g.chars(34, letters) })},
	{"TELEGRAM_BOT_TOKEN", plain("telegram bot", " ", func(g *gen) string {
		return fmt.Sprint(100000000+g.r.IntN(900000000)) + ":AA" + g.chars(33, b64url)
	})},
	{"DISCORD_BOT_TOKEN", plain("DISCORD_TOKEN", "=", func(g *gen) string {
		id := "1" + g.digits(17+g.r.IntN(2))
		return base64.RawStdEncoding.EncodeToString([]byte(id)) + "." + g.chars(6, b64url) + "." + g.chars(38, b64url)
	})},
	{"SQUARE_TOKEN", plain("square", " ", func(g *gen) string {
		if g.r.IntN(2) == 0 {
			return "sq0atp-" + g.chars(22, b64url)
		}
		return "EAAA" + g.chars(60, b64url)
	})},
	{"AGE_SECRET_KEY", plain("AGE_KEY", "=", func(g *gen) string {
		d := g.chars(52, bech32)
		return "AGE-SECRET-KEY-1" + d + bech32Checksum("age-secret-key-", d)
	})},
	{"AZURE_DEVOPS_PAT", func(g *gen) (string, string, string, string) {
		if g.r.IntN(2) == 0 {
			k := g.chars(76, alnum) + "AZDO" + g.chars(4, alnum)
			return k, "AZURE_DEVOPS_EXT_PAT", "=", k
		}
		k := g.chars(52, "abcdefghijklmnopqrstuvwxyz234567")
		return k, g.pick([]string{"ADO_PAT", "azure devops token"}), "=", k
	}},
	{"AZURE_SERVICE_BUS_KEY", func(g *gen) (string, string, string, string) {
		k := base64.StdEncoding.EncodeToString(g.bytes(32))
		host := g.pick([]string{"servicebus.windows.net", "servicebus.windows.net"})
		return k, g.pick([]string{"SERVICEBUS_CONNECTION", "EVENTHUB_CONNECTION_STRING"}), "=",
			"Endpoint=sb://ns" + g.digits(3) + "." + host + "/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=" + k
	}},
	{"META_ACCESS_TOKEN", plain("FB_PAGE_ACCESS_TOKEN", "=", func(g *gen) string {
		return "EAA" + g.pick([]string{"B", "G", "J", "I"}) + g.chars(150+g.r.IntN(60), alnum)
	})},
	{"PLANETSCALE_TOKEN", plain("PLANETSCALE_SERVICE_TOKEN", "=", func(g *gen) string {
		return g.pick([]string{"pscale_tkn_", "pscale_pw_", "pscale_oauth_"}) + g.chars(43, b64url)
	})},
	{"SUPABASE_KEY", plain("SUPABASE_ACCESS_TOKEN", "=", func(g *gen) string {
		if g.r.IntN(2) == 0 {
			return "sb_secret_" + g.chars(31, b64url)
		}
		return "sbp_" + g.chars(40, hexLower)
	})},
	{"MAPBOX_SECRET_TOKEN", plain("MAPBOX_ACCESS_TOKEN", "=", func(g *gen) string {
		p := base64.RawURLEncoding.EncodeToString([]byte(`{"u":"acme` + g.digits(3) + `","a":"` + g.chars(25, alnum) + `"}`))
		return g.pick([]string{"sk.", "tk."}) + p + "." + g.chars(22, b64url)
	})},
	{"AI_API_KEY", plain("LLM_API_KEY", "=", func(g *gen) string {
		switch g.r.IntN(5) {
		case 0:
			return "sk-or-v1-" + g.chars(64, hexLower)
		case 1:
			return "gsk_" + g.chars(52, alnum)
		case 2:
			return "xai-" + g.chars(80, alnum)
		case 3:
			return "pplx-" + g.chars(48, alnum)
		}
		return "sk-" + g.chars(32, hexLower)
	})},
	{"ALIBABA_ACCESS_KEY", func(g *gen) (string, string, string, string) {
		if g.r.IntN(2) == 0 {
			k := "LTAI" + g.chars(20, alnum)
			return k, "ALIBABA_CLOUD_ACCESS_KEY_ID", "=", k
		}
		k := g.chars(30, alnum)
		return k, g.pick([]string{"ALIBABA_CLOUD_ACCESS_KEY_SECRET", "aliyun AccessKeySecret"}), g.pick([]string{"=", ": "}), k
	}},
	{"DATADOG_KEY", func(g *gen) (string, string, string, string) {
		if g.r.IntN(2) == 0 {
			k := g.chars(32, hexLower)
			return k, g.pick([]string{"DD_API_KEY", "datadog api key"}), g.pick([]string{"=", ": "}), k
		}
		k := g.chars(40, hexLower)
		return k, g.pick([]string{"DD_APP_KEY", "DD-APPLICATION-KEY", "datadog application key"}), ": ", k
	}},
	{"CLOUDFLARE_TOKEN", func(g *gen) (string, string, string, string) {
		switch g.r.IntN(3) {
		case 0:
			k := g.chars(40, b64url)
			return k, g.pick([]string{"CLOUDFLARE_API_TOKEN", "CF_API_TOKEN"}), "=", k
		case 1:
			k := g.chars(37, hexLower)
			return k, g.pick([]string{"CLOUDFLARE_API_KEY", "cloudflare global api key"}), ": ", k
		}
		k := "v1.0-" + g.chars(24, hexLower) + "-" + g.chars(146, hexLower)
		return k, "origin ca key", " ", k
	}},
	{"FLY_TOKEN", func(g *gen) (string, string, string, string) {
		k := g.pick([]string{"fm2_", "fm1r_", "fm1a_"}) + base64.StdEncoding.EncodeToString(g.bytes(180+g.r.IntN(200)))
		return k, "FLY_API_TOKEN", "=", "FlyV1 " + k
	}},
	// Kinds added to types that existed before.
	{"GITHUB_TOKEN", plain("GH_TOKEN", "=", func(g *gen) string { return "github_pat_11" + g.chars(20, upper) + "_" + g.chars(59, alnum) })},
	{"SLACK_TOKEN", plain("SLACK_APP_TOKEN", "=", func(g *gen) string {
		return "xapp-1-A0" + g.chars(9, upper) + "-" + g.digits(13) + "-" + g.chars(64, hexLower)
	})},
	{"SLACK_TOKEN", plain("SLACK_REFRESH_TOKEN", "=", func(g *gen) string {
		return "xoxe.xoxp-1-" + g.chars(160, upper+"0123456789")
	})},
	{"SLACK_TOKEN", plain("slack config token", " ", func(g *gen) string { return "xoxe-1-" + g.chars(146, upper+"0123456789") })},
	{"STRIPE_KEY", plain("STRIPE_WEBHOOK_SECRET", "=", func(g *gen) string { return "whsec_" + g.chars(32, alnum) })},
}

func (g *gen) bytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.IntN(256))
	}
	return b
}

func (g *gen) uuid() string {
	h := g.chars(32, hexLower)
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:]
}

// crcSuffix is the six-character base62 CRC32 that GitHub- and npm-style tokens end with.
func crcSuffix(r string) string {
	v := crc32.ChecksumIEEE([]byte(r))
	var out [6]byte
	for k := 5; k >= 0; k-- {
		out[k] = base62[v%62]
		v /= 62
	}
	return string(out[:])
}

// bech32Checksum returns the six checksum characters (BIP 173) of hrp + "1" + data.
func bech32Checksum(hrp, data string) string {
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
	for i := 0; i < len(hrp); i++ {
		step(uint32(hrp[i]) >> 5)
	}
	step(0)
	for i := 0; i < len(hrp); i++ {
		step(uint32(hrp[i]) & 31)
	}
	for i := 0; i < len(data); i++ {
		step(uint32(strings.IndexByte(bech32, data[i])))
	}
	for range 6 {
		step(0)
	}
	chk ^= 1
	var out [6]byte
	for k := range 6 {
		out[k] = bech32[(chk>>(5*(5-k)))&31]
	}
	return string(out[:])
}

// nearMissShaped returns identifiers that look random but are not secrets: UUIDs, commit
// SHAs, content hashes, subresource integrity digests. None may be masked.
func (g *gen) nearMissShaped() (string, string) {
	switch g.r.IntN(6) {
	case 0:
		u := g.uuid()
		return u, "request_id " + u
	case 1:
		h := g.chars(40, hexLower)
		return h, "commit " + h
	case 2:
		h := g.chars(64, hexLower)
		return h, "image digest sha256:" + h
	case 3:
		h := base64.StdEncoding.EncodeToString(g.bytes(64))
		return h, `"integrity": "sha512-` + h + `"`
	case 4:
		h := g.chars(32, hexLower)
		return h, "etag " + h
	}
	h := base64.StdEncoding.EncodeToString(g.bytes(48))
	return h, "checksum " + h
}

// Sample is one planted value and the line of text that carries it.
type Sample struct {
	Value
	Line string
}

// ProviderSamples returns one sample of every provider format beyond the original set
// (and of the kinds added to GITHUB_TOKEN, SLACK_TOKEN and STRIPE_KEY), each on a line
// that names it.
func ProviderSamples(seed uint64) []Sample {
	g := &gen{r: rand.New(rand.NewPCG(seed, 11))}
	out := make([]Sample, 0, len(providers))
	for _, p := range providers {
		val, label, sep, body := p.make(g)
		out = append(out, Sample{Value{p.typ, val}, label + sep + body})
	}
	return out
}
