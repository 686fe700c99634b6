// Package maskingtest generates seeded corpora of realistic MCP tool results with planted
// secrets and near-misses, to measure the masking engine's speed, recall and precision.
// It is pure (no I/O): the same seed and size always give the same corpus.
package maskingtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
)

// Doc is one JSON-RPC tools/call result.
type Doc struct {
	// JSON is the whole message.
	JSON []byte
	// Planted are the sensitive values in it (decoded), keyed by the type that must find them.
	Planted []Value
	// NearMiss are values that look sensitive but are not; none should be masked.
	NearMiss []string
}

// Value is one planted value.
type Value struct {
	Type, Text string
}

// gen is the generator's state.
type gen struct {
	r *rand.Rand
}

// Corpus returns documents totalling at least size bytes of JSON.
func Corpus(seed uint64, size int) []Doc {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	var out []Doc
	n := 0
	for n < size {
		d := g.doc(4<<10 + g.r.IntN(40<<10))
		n += len(d.JSON)
		out = append(out, d)
	}
	return out
}

// Result returns one document of about size bytes.
func Result(seed uint64, size int) Doc {
	g := &gen{r: rand.New(rand.NewPCG(seed, 7))}
	return g.doc(size)
}

var words = strings.Fields(`the a service request customer account report quarterly revenue team deployed
version database query returned rows latency region cluster node pod restarted healthy checked
migration schema index table user order shipment invoice payment processed pending failed retry
analysis summary findings metric threshold alert incident resolved escalated owner review draft
please note that we will continue monitoring and update this document after the next sync`)

func (g *gen) pick(s []string) string { return s[g.r.IntN(len(s))] }

func (g *gen) sentence() string {
	n := 6 + g.r.IntN(14)
	w := make([]string, n)
	for i := range w {
		w[i] = g.pick(words)
	}
	s := strings.Join(w, " ")
	return strings.ToUpper(s[:1]) + s[1:] + "."
}

func (g *gen) digits(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + g.r.IntN(10))
	}
	return string(b)
}

func (g *gen) chars(n int, set string) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = set[g.r.IntN(len(set))]
	}
	return string(b)
}

const (
	alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b64   = alnum + "+/"
	upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
)

func luhnDigit(d string) byte {
	sum := 0
	for i := len(d) - 1; i >= 0; i-- {
		n := int(d[i] - '0')
		if (len(d)-i)%2 == 1 {
			n *= 2
			if n > 9 {
				n -= 9
			}
		}
		sum += n
	}
	return byte('0' + (10-sum%10)%10)
}

func (g *gen) card() string {
	var d string
	switch g.r.IntN(3) {
	case 0:
		d = "4" + g.digits(14)
	case 1:
		d = "5" + string(byte('1'+g.r.IntN(5))) + g.digits(13)
	default:
		d = "37" + g.digits(12)
	}
	d += string(luhnDigit(d))
	switch g.r.IntN(3) {
	case 0:
		return d
	case 1:
		if len(d) == 15 {
			return d[:4] + " " + d[4:10] + " " + d[10:]
		}
		return d[:4] + " " + d[4:8] + " " + d[8:12] + " " + d[12:]
	}
	if len(d) == 15 {
		return d[:4] + "-" + d[4:10] + "-" + d[10:]
	}
	return d[:4] + "-" + d[4:8] + "-" + d[8:12] + "-" + d[12:]
}

func (g *gen) ssn() string {
	area := 1 + g.r.IntN(898)
	if area == 666 {
		area = 667
	}
	return fmt.Sprintf("%03d-%02d-%04d", area, 1+g.r.IntN(99), 1+g.r.IntN(9999))
}

func (g *gen) phone() string {
	a, x, l := 200+g.r.IntN(800), 200+g.r.IntN(800), g.digits(4)
	switch g.r.IntN(5) {
	case 0:
		return fmt.Sprintf("(%d) %d-%s", a, x, l)
	case 1:
		return fmt.Sprintf("%d-%d-%s", a, x, l)
	case 2:
		return fmt.Sprintf("%d.%d.%s", a, x, l)
	case 3:
		return fmt.Sprintf("+1 %d %d %s", a, x, l)
	}
	return "+44 20 " + g.digits(4) + " " + g.digits(4)
}

func (g *gen) email() string {
	return g.pick([]string{"ann", "bob.lee", "c.wu", "dana+ops", "eve_k"}) + g.digits(2) + "@" +
		g.pick([]string{"example.com", "corp.example.org", "mail.example.net"})
}

func (g *gen) iban() string {
	bban := g.digits(18)
	num, _ := new(big.Int).SetString(bban+"131400", 10) // D=13 E=14, check digits 00
	check := 98 - new(big.Int).Mod(num, big.NewInt(97)).Int64()
	s := fmt.Sprintf("DE%02d%s", check, bban)
	if g.r.IntN(2) == 0 {
		return s
	}
	var parts []string
	for i := 0; i < len(s); i += 4 {
		parts = append(parts, s[i:min(len(s), i+4)])
	}
	return strings.Join(parts, " ")
}

func (g *gen) jwt() string {
	enc := base64.RawURLEncoding.EncodeToString
	h := enc([]byte(`{"alg":"RS256","typ":"JWT"}`))
	p := enc([]byte(fmt.Sprintf(`{"sub":"agent-%s","scope":"mcp:tools","exp":%s}`, g.digits(4), g.digits(10))))
	return h + "." + p + "." + g.chars(43, alnum+"-_")
}

func (g *gen) pem() string {
	var b strings.Builder
	b.WriteString("-----BEGIN RSA PRIVATE KEY-----\n")
	for range 4 + g.r.IntN(8) {
		b.WriteString(g.chars(64, b64) + "\n")
	}
	b.WriteString("-----END RSA PRIVATE KEY-----")
	return b.String()
}

// secret returns a planted value, the text around it (which must name it where the type
// needs context), and its type.
func (g *gen) secret() (Value, string) {
	v := func(t, s string) Value { return Value{t, s} }
	switch g.r.IntN(19) {
	case 0:
		c := g.card()
		return v("CREDIT_CARD", c), "charged card " + c + " for the renewal"
	case 1:
		s := g.ssn()
		return v("US_SSN", s), "employee SSN " + s + " on file"
	case 2:
		e := g.email()
		return v("EMAIL", e), "contact " + e + " for access"
	case 3:
		p := g.phone()
		return v("PHONE", p), "on-call phone " + p + " tonight"
	case 4:
		i := g.iban()
		return v("IBAN", i), "refund to IBAN " + i + " approved"
	case 5:
		k := "AKIA" + g.chars(16, upper)
		return v("AWS_ACCESS_KEY", k), "access key " + k + " rotated"
	case 6:
		k := g.chars(40, b64)
		return v("AWS_SECRET_KEY", k), "aws_secret_access_key=" + k
	case 7:
		k := "ghp_" + g.chars(36, alnum)
		return v("GITHUB_TOKEN", k), "GITHUB_TOKEN=" + k
	case 8:
		k := "glpat-" + g.chars(20, alnum)
		return v("GITLAB_TOKEN", k), "gitlab " + k
	case 9:
		k := "xoxb-" + g.digits(12) + "-" + g.digits(13) + "-" + g.chars(24, alnum)
		return v("SLACK_TOKEN", k), "slack bot " + k
	case 10:
		k := "sk_live_" + g.chars(24, alnum)
		return v("STRIPE_KEY", k), "stripe " + k
	case 11:
		k := "AIza" + g.chars(35, alnum+"-_")
		return v("GOOGLE_API_KEY", k), "maps key " + k
	case 12:
		k := "sk-proj-" + g.chars(48, alnum)
		return v("OPENAI_KEY", k), "OPENAI_API_KEY " + k
	case 13:
		k := "sk-ant-api03-" + g.chars(93, alnum+"-_")
		return v("ANTHROPIC_KEY", k), "anthropic " + k
	case 14:
		k := "00" + g.chars(40, alnum)
		return v("OKTA_TOKEN", k), "Authorization: SSWS " + k
	case 15:
		k := g.jwt()
		return v("JWT", k), "Bearer " + k
	case 16:
		k := g.pem()
		return v("PRIVATE_KEY", k), "key material:\n" + k + "\n"
	case 17:
		k := g.chars(14, alnum)
		return v("CONN_PASSWORD", k), "DATABASE_URL=postgres://app:" + k + "@db.internal:5432/app"
	}
	k := g.chars(20, alnum+"!#%")
	return v("GENERIC_SECRET", k), "password=" + k
}

// nearMiss returns a value that must not be masked and its text.
func (g *gen) nearMiss() (string, string) {
	switch g.r.IntN(8) {
	case 0:
		d := "4" + g.digits(14)
		d += string('0' + (luhnDigit(d)-'0'+1)%10) // fails Luhn
		return d, "order " + d + " shipped"
	case 1:
		d := "9" + g.digits(8) // area 9xx is never an SSN
		return d, "ticket " + d + " closed"
	case 2:
		d := g.digits(3) + "-" + g.digits(3) + "-" + g.digits(3)
		return d, "part " + d
	case 3:
		return "ghp_" + strings.Repeat("x", 36), "example: ghp_" + strings.Repeat("x", 36)
	case 4:
		d := fmt.Sprintf("10.%d.%d.%d", g.r.IntN(256), g.r.IntN(256), g.r.IntN(256))
		return d, "from " + d + " in " + g.digits(3) + "ms"
	case 5:
		d := "1" + g.digits(9)
		return d, "ts=" + d
	case 6:
		return "password is rotated weekly", "the password is rotated weekly"
	}
	d := "DE00" + g.digits(18)
	return d, "account " + d + " invalid"
}

func (g *gen) logLine() string {
	return fmt.Sprintf("2026-%02d-%02dT%02d:%02d:%02d.%03dZ %s req=%s svc=%s latency=%dms status=%s",
		1+g.r.IntN(12), 1+g.r.IntN(28), g.r.IntN(24), g.r.IntN(60), g.r.IntN(60), g.r.IntN(1000),
		g.pick([]string{"INFO", "WARN", "DEBUG", "ERROR"}), g.chars(12, "0123456789abcdef"),
		g.pick([]string{"api", "billing", "search", "auth"}), g.r.IntN(900), g.pick([]string{"200", "201", "404", "500"}))
}

// doc builds one tool result of about size bytes: text content of prose, logs and CSV,
// and for a third of them structuredContent rows repeating the same facts.
func (g *gen) doc(size int) Doc {
	var d Doc
	var b strings.Builder
	var rows []map[string]any
	structured := g.r.IntN(3) == 0
	for b.Len() < size {
		switch k := g.r.IntN(100); {
		case k < 4:
			v, text := g.secret()
			d.Planted = append(d.Planted, v)
			b.WriteString(text + "\n")
		case k < 7:
			v, text := g.nearMiss()
			d.NearMiss = append(d.NearMiss, v)
			b.WriteString(text + "\n")
		case k < 40:
			b.WriteString(g.logLine() + "\n")
		case k < 50:
			b.WriteString("id,region,status,count,amount\n")
			for range 5 + g.r.IntN(20) {
				fmt.Fprintf(&b, "%d,%s,%s,%d,%d.%02d\n", 100000+g.r.IntN(900000), g.pick([]string{"us-east-1", "eu-west-1"}),
					g.pick([]string{"ok", "failed"}), g.r.IntN(5000), g.r.IntN(100000), g.r.IntN(100))
			}
		default:
			b.WriteString(g.sentence() + " " + g.sentence() + "\n")
		}
		if structured && g.r.IntN(40) == 0 {
			c, e := g.card(), g.email()
			d.Planted = append(d.Planted, Value{"CREDIT_CARD", c}, Value{"EMAIL", e})
			rows = append(rows, map[string]any{"id": g.r.IntN(1 << 30), "name": g.pick(words), "email": e, "card": c, "balance": g.r.Float64() * 1000})
		}
	}
	text := b.String()
	result := map[string]any{"content": []any{map[string]any{"type": "text", "text": text}}, "isError": false}
	if structured {
		for _, r := range rows {
			text += fmt.Sprintf("\n%v %v", r["email"], r["card"])
		}
		result["content"] = []any{map[string]any{"type": "text", "text": text}}
		result["structuredContent"] = map[string]any{"rows": rows}
	}
	msg, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": g.r.IntN(1 << 20), "result": result})
	d.JSON = msg
	return d
}
