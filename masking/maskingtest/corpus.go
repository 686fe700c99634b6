// Package maskingtest generates seeded corpora of realistic MCP tool results with planted
// secrets and near-misses, to measure the masking engine's speed, recall and precision.
// It is pure (no I/O): the same seed and size always give the same corpus.
package maskingtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
)

// Doc is one JSON-RPC tools/call result.
type Doc struct {
	// JSON is the whole message.
	JSON []byte
	// Shape is the kind of tool output the document holds (see [Shapes]).
	Shape string
	// Planted are the sensitive values in it (decoded), keyed by the type that must find them.
	Planted []Value
	// NearMiss are values that look sensitive but are not; none should be masked.
	NearMiss []string
}

// Value is one planted value.
type Value struct {
	Type, Text string
}

// Shapes are the kinds of tool output the generator writes: mixed (prose, log lines and
// CSV, the original corpus), logs, html, markdown (tables), base64 (inline images and
// attachments), numeric (long numeric columns) and structured (nested rows in
// structuredContent). Every shape carries planted values of every type.
var Shapes = []string{"mixed", "logs", "html", "markdown", "base64", "numeric", "structured"}

// gen is the generator's state.
type gen struct {
	r *rand.Rand
}

// Corpus returns documents totalling at least size bytes of JSON, the shapes in turn.
func Corpus(seed uint64, size int) []Doc {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	var out []Doc
	n := 0
	for k := 0; n < size; k++ {
		d := g.doc(Shapes[k%len(Shapes)], 4<<10+g.r.IntN(40<<10))
		n += len(d.JSON)
		out = append(out, d)
	}
	return out
}

// ShapeCorpus returns documents of one shape totalling at least size bytes of JSON.
func ShapeCorpus(seed uint64, shape string, size int) []Doc {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	var out []Doc
	n := 0
	for n < size {
		d := g.doc(shape, 4<<10+g.r.IntN(40<<10))
		n += len(d.JSON)
		out = append(out, d)
	}
	return out
}

// Result returns one document of about size bytes, of the original mixed shape.
func Result(seed uint64, size int) Doc {
	g := &gen{r: rand.New(rand.NewPCG(seed, 7))}
	return g.mixed(size)
}

// Types returns every type the generator plants.
func Types() []string {
	seen := map[string]bool{}
	for _, t := range []string{
		"CREDIT_CARD", "US_SSN", "EMAIL", "PHONE", "IBAN", "AWS_ACCESS_KEY", "AWS_SECRET_KEY",
		"GITHUB_TOKEN", "GITLAB_TOKEN", "SLACK_TOKEN", "STRIPE_KEY", "GOOGLE_API_KEY", "OPENAI_KEY", "ANTHROPIC_KEY",
		"OKTA_TOKEN", "JWT", "PRIVATE_KEY", "CONN_PASSWORD", "GENERIC_SECRET",
	} {
		seen[t] = true
	}
	for _, p := range providers {
		seen[p.typ] = true
	}
	out := make([]string, 0, len(seen))
	for t := range seen {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
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

// secret returns a planted value and how it is written: a label that names it (context
// for the types that need it), a separator, and the body holding the value.
func (g *gen) secret() (Value, planting) {
	v := func(t, s string) Value { return Value{t, s} }
	n := 19 + len(providers)
	k := g.r.IntN(n)
	if k >= 19 {
		p := providers[k-19]
		val, label, sep, body := p.make(g)
		return v(p.typ, val), planting{label, sep, body}
	}
	switch k {
	case 0:
		c := g.card()
		return v("CREDIT_CARD", c), planting{"charged card", " ", c}
	case 1:
		s := g.ssn()
		return v("US_SSN", s), planting{"employee SSN", " ", s}
	case 2:
		e := g.email()
		return v("EMAIL", e), planting{"contact", " ", e}
	case 3:
		p := g.phone()
		return v("PHONE", p), planting{"on-call phone", " ", p}
	case 4:
		i := g.iban()
		return v("IBAN", i), planting{"refund to IBAN", " ", i}
	case 5:
		k := "AKIA" + g.chars(16, upper)
		return v("AWS_ACCESS_KEY", k), planting{"access key", " ", k}
	case 6:
		k := g.chars(40, b64)
		return v("AWS_SECRET_KEY", k), planting{"aws_secret_access_key", "=", k}
	case 7:
		k := "ghp_" + g.chars(36, alnum)
		if g.r.IntN(2) == 0 {
			r := g.chars(30, alnum)
			k = "ghp_" + r + crcSuffix(r)
		}
		return v("GITHUB_TOKEN", k), planting{"GITHUB_TOKEN", "=", k}
	case 8:
		k := g.pick([]string{"glpat-", "glpat-", "gldt-", "glrt-", "glptt-"}) + g.chars(20, alnum)
		return v("GITLAB_TOKEN", k), planting{"gitlab", " ", k}
	case 9:
		k := "xoxb-" + g.digits(12) + "-" + g.digits(13) + "-" + g.chars(24, alnum)
		return v("SLACK_TOKEN", k), planting{"slack bot", " ", k}
	case 10:
		k := g.pick([]string{"sk_live_", "rk_live_"}) + g.chars(24, alnum)
		return v("STRIPE_KEY", k), planting{"stripe", " ", k}
	case 11:
		k := "AIza" + g.chars(35, alnum+"-_")
		return v("GOOGLE_API_KEY", k), planting{"maps key", " ", k}
	case 12:
		k := "sk-proj-" + g.chars(48, alnum)
		return v("OPENAI_KEY", k), planting{"OPENAI_API_KEY", " ", k}
	case 13:
		k := "sk-ant-api03-" + g.chars(93, alnum+"-_")
		return v("ANTHROPIC_KEY", k), planting{"anthropic", " ", k}
	case 14:
		k := "00" + g.chars(40, alnum)
		return v("OKTA_TOKEN", k), planting{"Authorization", ": ", "SSWS " + k}
	case 15:
		k := g.jwt()
		return v("JWT", k), planting{"Authorization", ": ", "Bearer " + k}
	case 16:
		k := g.pem()
		return v("PRIVATE_KEY", k), planting{"private_key", ":\n", k + "\n"}
	case 17:
		k := g.chars(14, alnum)
		return v("CONN_PASSWORD", k), planting{"DATABASE_URL", "=", "postgres://app:" + k + "@db.internal:5432/app"}
	}
	k2 := g.chars(20, alnum+"!#%")
	return v("GENERIC_SECRET", k2), planting{"password", "=", k2}
}

// planting is how a secret is written: label + sep + body in text, {label: body} in rows.
type planting struct{ label, sep, body string }

func (p planting) text() string { return p.label + p.sep + p.body }

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

// doc builds one tool result of about size bytes in the given shape. Every shape plants
// about one value per 3-4 KB, as the mixed shape does, so that shapes differ in their
// text and not in how many findings they hold.
func (g *gen) doc(shape string, size int) Doc {
	d := Doc{Shape: shape}
	var b strings.Builder
	var rows []any
	plant := func(write func(p planting)) {
		v, p := g.secret()
		d.Planted = append(d.Planted, v)
		write(p)
	}
	near := func(write func(text string)) {
		var v, text string
		if g.r.IntN(2) == 0 {
			v, text = g.nearMiss()
		} else {
			v, text = g.nearMissShaped()
		}
		d.NearMiss = append(d.NearMiss, v)
		write(text)
	}
	line := func(s string) { b.WriteString(s + "\n") }
	switch shape {
	case "logs":
		for b.Len() < size {
			switch k := g.r.IntN(100); {
			case k < 3:
				plant(func(p planting) { line(g.logLine() + " " + p.text()) })
			case k < 6:
				near(func(t string) { line(g.logLine() + " " + t) })
			default:
				line(g.logLine())
			}
		}
	case "html":
		line("<!doctype html><html><head><title>Report</title><style>td{padding:2px}</style></head><body><table class=\"grid\">")
		for b.Len() < size {
			switch k := g.r.IntN(100); {
			case k < 4:
				plant(func(p planting) { line("<tr><td>config</td><td>" + html.EscapeString(p.text()) + "</td></tr>") })
			case k < 7:
				near(func(t string) { line("<tr><td>ref</td><td>" + html.EscapeString(t) + "</td></tr>") })
			case k < 30:
				line("<p class=\"note\">" + g.sentence() + " <a href=\"/docs/" + g.pick(words) + "?page=" + g.digits(2) + "\">more</a></p>")
			default:
				fmt.Fprintf(&b, "<tr><td>%d</td><td>%s</td><td>%s</td><td>%d.%02d</td></tr>\n", 100000+g.r.IntN(900000),
					g.pick(words), g.pick([]string{"ok", "failed"}), g.r.IntN(100000), g.r.IntN(100))
			}
		}
		line("</table></body></html>")
	case "markdown":
		for b.Len() < size {
			line("\n## " + g.sentence() + "\n\n| id | region | status | count | note |\n|---:|---|---|---:|---|")
			for range 5 + g.r.IntN(20) {
				switch k := g.r.IntN(100); {
				case k < 2:
					plant(func(p planting) { line("| " + g.digits(6) + " | eu-west-1 | ok | 1 | " + p.text() + " |") })
				case k < 4:
					near(func(t string) { line("| " + g.digits(6) + " | us-east-1 | ok | 2 | " + t + " |") })
				default:
					fmt.Fprintf(&b, "| %d | %s | %s | %d | %s |\n", 100000+g.r.IntN(900000), g.pick([]string{"us-east-1", "eu-west-1"}),
						g.pick([]string{"ok", "failed"}), g.r.IntN(5000), g.pick(words))
				}
			}
		}
	case "base64":
		for b.Len() < size {
			switch k := g.r.IntN(100); {
			case k < 15:
				plant(func(p planting) { line(p.text()) })
			case k < 25:
				near(func(t string) { line(t) })
			case k < 60:
				blob := base64.StdEncoding.EncodeToString(g.bytes(512 + g.r.IntN(4096)))
				d.NearMiss = append(d.NearMiss, blob)
				line(`<img alt="chart" src="data:image/png;base64,` + blob + `">`)
			default:
				blob := base64.StdEncoding.EncodeToString(g.bytes(256 + g.r.IntN(2048)))
				line("attachment " + g.pick(words) + ".bin:")
				for i := 0; i < len(blob); i += 76 {
					line(blob[i:min(len(blob), i+76)])
				}
			}
		}
	case "numeric":
		line("ts_ms,account_id,amount,balance,lat,lon,count,ratio")
		for b.Len() < size {
			switch k := g.r.IntN(1000); {
			case k < 25:
				plant(func(p planting) { line(p.text()) })
			case k < 40:
				near(func(t string) { line(t) })
			default:
				fmt.Fprintf(&b, "17%s,1%s,%d.%02d,-%d.%02d,%.6f,%.6f,%d,%.9f\n", g.digits(11), g.digits(17),
					g.r.IntN(1000000), g.r.IntN(100), g.r.IntN(100000), g.r.IntN(100), g.r.Float64()*180-90,
					g.r.Float64()*360-180, g.r.IntN(100000), g.r.Float64())
			}
		}
	case "structured":
		line("Found the matching services; details are in structuredContent.")
		n := 0
		for n < size {
			row := map[string]any{
				"id": g.r.IntN(1 << 30), "name": g.pick(words) + "-" + g.digits(3), "region": g.pick([]string{"us-east-1", "eu-west-1"}),
				"metrics": map[string]any{
					"p50": g.r.Float64() * 100, "p99": g.r.Float64() * 1000, "count": g.r.IntN(1 << 20),
					"series": []any{g.r.IntN(1000), g.r.IntN(1000), g.r.IntN(1000), g.r.Float64()},
				},
				"tags": []any{g.pick(words), g.pick(words)}, "owner": map[string]any{"team": g.pick(words), "oncall": g.r.IntN(2) == 0},
			}
			switch k := g.r.IntN(100); {
			case k < 10:
				v, p := g.secret()
				d.Planted = append(d.Planted, v)
				row["config"] = map[string]any{"env": map[string]any{p.label: p.body}, "enabled": true}
			case k < 16:
				var v, t string
				if g.r.IntN(2) == 0 {
					v, t = g.nearMissShaped()
				} else {
					v, t = g.nearMiss()
				}
				d.NearMiss = append(d.NearMiss, v)
				row["ref"] = map[string]any{"note": t}
			}
			rows = append(rows, row)
			j, _ := json.Marshal(row)
			n += len(j)
		}
	default: // mixed: prose, logs and CSV, with structured rows in a third of the documents
		return g.mixed(size)
	}
	result := map[string]any{"content": []any{map[string]any{"type": "text", "text": b.String()}}, "isError": false}
	if rows != nil {
		result["structuredContent"] = map[string]any{"services": rows, "total": len(rows)}
	}
	msg, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": g.r.IntN(1 << 20), "result": result})
	d.JSON = msg
	return d
}

// mixed is the original document shape: prose, log lines and CSV tables, and for a third of
// the documents structuredContent rows repeating the same facts.
func (g *gen) mixed(size int) Doc {
	d := Doc{Shape: "mixed"}
	var b strings.Builder
	var rows []map[string]any
	structured := g.r.IntN(3) == 0
	for b.Len() < size {
		switch k := g.r.IntN(100); {
		case k < 4:
			v, p := g.secret()
			d.Planted = append(d.Planted, v)
			b.WriteString(p.text() + "\n")
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
