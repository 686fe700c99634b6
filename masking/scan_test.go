package masking

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mcpguard/mcpguard/masking/maskingtest"
)

// refFind is the scan loop written plainly, byte by byte, every byte pair looked up in the
// prefilter: the reference the word-skipping scan of findIn must agree with.
func (m *Masker) refFind(s []byte, off int, key []byte, raw bool) []finding {
	sc := &scan{m: m, s: s, off: off, key: key, raw: raw}
	nums := m.on[tCard] || m.on[tSSN] || m.on[tPhone] || m.on[tIBAN]
	n := len(s)
	for i := 0; i+1 < n; i++ {
		c := s[i]
		if !m.pair.has(c, s[i+1]) {
			continue
		}
		switch class[c] {
		case cKey:
			if i > 0 && glued(s[i-1]) && !m.mid.has(c, s[i+1]) && !(raw && i >= 2 && s[i-2] == '\\') {
				continue
			}
			for _, kw := range m.kws {
				if hasPrefixFold(s[i:], kw.lo) && (kw.exact == nil || string(s[i:i+len(kw.exact)]) == string(kw.exact)) {
					kw.fn(sc, i, &kw)
				}
			}
		case cAt:
			if m.on[tEmail] {
				email(sc, i)
			}
		case cNum:
			if !nums {
				continue
			}
			if c != '+' && c != '(' && i >= 2 && isUpper(s[i-1]) && isUpper(s[i-2]) && m.on[tIBAN] {
				sc.iban(i)
			}
			if sc.gluedAt(i) || (i > 0 && s[i-1] == '.') {
				for i+1 < n && isDigit(s[i+1]) {
					i++
				}
				continue
			}
			if (c == '+' || c == '(') && !isDigit(s[i+1]) {
				continue
			}
			if !enoughDigits(s[i:]) {
				for i+1 < n && isDigit(s[i+1]) {
					i++
				}
				continue
			}
			i = max(i, sc.number(i)-1)
		}
	}
	sc.keyContext(m.keyKind(key))
	for _, cd := range m.custom {
		if cd.global {
			for _, loc := range cd.re.FindAllIndex(s, -1) {
				sc.custom(cd, loc[0], loc[1])
			}
		}
	}
	return merge(sc.out)
}

// checkScan compares findIn with refFind on s as text, as wire text and under member names.
func checkScan(t *testing.T, m *Masker, s []byte) {
	t.Helper()
	sc := new(scan)
	for _, raw := range []bool{false, true} {
		for _, key := range [][]byte{nil, []byte("note"), []byte("api_token"), []byte("phone")} {
			want := m.refFind(s, 0, key, raw)
			got := m.findIn(sc, s, 0, key, raw, nil)
			if !slices.Equal(got, want) {
				t.Fatalf("raw %v key %q: scan found %v, reference %v in %q", raw, key, got, want, s)
			}
		}
	}
}

func scanSamples() []string {
	out := []string{
		"card 4111 1111 1111 1111 ssn 123-45-6788 call (415) 555-0132 x+14155550132 a(415) 555-0132",
		"iban DE89370400440532013000, xDE89370400440532013000 \\nDE89370400440532013000 \\\\nDE89370400440532013000",
		"DE89 3704 0044 0532 0130 00 and GB82WEST12345698765432.",
		"mail ann.lee@example.com user@host x@y.zz @@ a@",
		"aaaAKIAZ3MHQX7RBN2KLD4P AKIAZ3MHQX7RBN2KLD4P \\nAKIAZ3MHQX7RBN2KLD4P \\\\nAKIAZ3MHQX7RBN2KLD4P",
		"abc+4111111111111111 abc(415) 555-0132 1.4111111111111111 x]4111111111111111",
		"mypassword=Xk9mP2qLw7ZrQ8 db_token: \"Zx81kLm0Qp7TwR3v\" SSWS 00ZHSJQzhp9YXNBDdQPta2BGZPPRwcG3kgeToBOqjj",
		"key-1987afb0f05df044dcebe97445edf07e user-key-1987afb0f05df044dcebe97445edf07e",
		"ZbrNk3H27yLgXRgJIn43Qvesb8eg2k1rgdViklmIlWiVO+dWrurtB9tH/Zursimy3FP2iueSkRq2pzai1PySRA==",
	}
	for _, p := range maskingtest.ProviderSamples(5) {
		out = append(out, p.Line, "x"+p.Line, strings.ReplaceAll(p.Line, " ", "\\n"))
	}
	return out
}

// TestScanMatchesReference: the word-skipping scan finds exactly what the plain loop finds,
// on provider samples and on every shape of the generated corpus.
func TestScanMatchesReference(t *testing.T) {
	m, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scanSamples() {
		checkScan(t, m, []byte(s))
	}
	for _, shape := range maskingtest.Shapes {
		for _, d := range maskingtest.ShapeCorpus(2, shape, 64<<10) {
			checkScan(t, m, d.JSON)
		}
	}
}

// FuzzScan: the word-skipping scan agrees with the plain loop on any input.
func FuzzScan(f *testing.F) {
	for _, s := range scanSamples() {
		f.Add([]byte(s))
	}
	m, err := New(DefaultConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkScan(t, m, in)
	})
}

// checkNumber compares the scan of the JSON number v with keyOnly wherever maskNumber
// takes that shortcut.
func checkNumber(t *testing.T, m *Masker, v []byte, key []byte) {
	t.Helper()
	if numberRun(v) >= 9 || (len(key) > 0 && m.keywordIn(key)) {
		return
	}
	want := m.findIn(new(scan), v, 0, key, false, nil)
	if got := m.keyOnly(new(scan), v, key, m.keyKind(key), nil); !slices.Equal(got, want) {
		t.Fatalf("number %s under %q: shortcut found %v, scan %v", v, key, got, want)
	}
}

var numberKeys = [][]byte{nil, {}, []byte("id"), []byte("phone"), []byte("ssn"), []byte("password"), []byte("card_number"), []byte("pin")}

// TestNumberShortcut: a JSON number without a run of 9 digits a check starts on holds no
// finding but what its member name gives it.
func TestNumberShortcut(t *testing.T) {
	m, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	digits := "4111111111111111415555013212345678941555501320"
	for il := 0; il <= 12; il++ {
		for _, frac := range []string{"", ".5", ".4111111111111111", ".4155550132", ".123456789", "e12", ".5e-4111111111111111", "E+4155550132", "e-415555013", "e-41555501"} {
			for _, neg := range []string{"", "-"} {
				ip := digits[:il]
				if il == 0 {
					ip = "0"
				}
				v := []byte(neg + ip + frac)
				for _, k := range numberKeys {
					checkNumber(t, m, v, k)
				}
			}
		}
	}
}

// FuzzNumber: the shortcut agrees with the scan on any number under any member name.
func FuzzNumber(f *testing.F) {
	f.Add(int64(4111111111), uint32(0), uint8(0), "phone")
	f.Add(int64(-41555501), uint32(4111111), uint8(1), "ssn")
	f.Add(int64(12345678), uint32(99), uint8(2), "password")
	f.Add(int64(1), uint32(4111111111), uint8(4), "")
	m, err := New(DefaultConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, ip int64, frac uint32, form uint8, key string) {
		v := []byte(strconv.FormatInt(ip, 10))
		switch form % 6 {
		case 1:
			v = fmt.Appendf(v, ".%d", frac)
		case 2:
			v = fmt.Appendf(v, "e%d", frac)
		case 3:
			v = fmt.Appendf(v, ".%de-%d", frac, frac)
		case 4:
			v = fmt.Appendf(v, "e-%d", frac)
		case 5:
			v = fmt.Appendf(v, "E+%d", frac)
		}
		checkNumber(t, m, v, []byte(key))
	})
}

// TestNameMemoPerMasker: what a walker remembers of member names belongs to one Masker;
// masking with two configurations in turn gives each its own answers.
func TestNameMemoPerMasker(t *testing.T) {
	all, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.Detectors = slices.DeleteFunc(slices.Clone(c.Detectors), func(d string) bool { return d == "GENERIC_SECRET" || d == "EMAIL" })
	some, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	doc := []byte(`{"password":"hunter2hunter2","ann@example.com":1,"rows":[{"password":"Zx81kLm0Qp7TwR3v"}]}`)
	for range 3 {
		out, counts, err := all.JSON(doc)
		if err != nil || counts["GENERIC_SECRET"] != 2 || counts["EMAIL"] != 1 {
			t.Fatalf("all detectors: %s %v %v", out, counts, err)
		}
		out, counts, err = some.JSON(doc)
		if err != nil || len(counts) != 0 || string(out) != string(doc) {
			t.Fatalf("without GENERIC_SECRET and EMAIL: %s %v %v", out, counts, err)
		}
	}
}

// checkEntropy compares lowEntropy with the entropy it stands for.
func checkEntropy(t *testing.T, b []byte) {
	t.Helper()
	for _, th := range []float64{3.0, 3.5, 4.0} {
		if got, want := lowEntropy(b, th), entropy(b) < th; got != want {
			t.Fatalf("lowEntropy(%q, %v) = %v, entropy %v", b, th, got, entropy(b))
		}
	}
}

// TestLowEntropy: the bounds lowEntropy decides by agree with the entropy, on uniform
// texts (where the bounds meet the entropy exactly) and on tokens of every provider.
func TestLowEntropy(t *testing.T) {
	alpha := "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/"
	for d := 1; d <= len(alpha); d++ {
		for rep := 1; rep <= 5; rep++ {
			checkEntropy(t, []byte(strings.Repeat(alpha[:d], rep)))
			checkEntropy(t, []byte(strings.Repeat(alpha[:d], rep)+alpha[:1]))
		}
	}
	for _, s := range scanSamples() {
		for _, f := range strings.Fields(s) {
			checkEntropy(t, []byte(f))
		}
	}
}

// FuzzEntropy: lowEntropy agrees with the entropy on any bytes.
func FuzzEntropy(f *testing.F) {
	f.Add([]byte("abcdefgh"))
	f.Add([]byte("aabbccddeeffgghhiijjkkllmmnnoopp"))
	f.Add([]byte("Zx81kLm0Qp7TwR3v"))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkEntropy(t, b)
	})
}

// TestHex4: the \u escape reader takes exactly four hex digits of either case.
func TestHex4(t *testing.T) {
	for _, c := range []struct {
		in   string
		want rune
		n    int
	}{
		{"003c", '<', 4},
		{"00E9x", 'é', 4},
		{"D83D", 0xd83d, 4},
		{"ffff", 0xffff, 4},
		{"00g1", 0, -1},
		{"+123", 0, -1},
		{"12", 0, -1},
		{"", 0, -1},
		{"0x12", 0, -1},
		{"1_23", 0, -1},
	} {
		if r, n := hex4([]byte(c.in)); r != c.want || n != c.n {
			t.Errorf("hex4(%q) = %q, %d; want %q, %d", c.in, r, n, c.want, c.n)
		}
	}
}

// TestIndexShort: indexShort is bytes.IndexByte.
func TestIndexShort(t *testing.T) {
	for n := range 40 {
		for at := -1; at < n; at++ {
			b := []byte(strings.Repeat("a", n))
			if at >= 0 {
				b[at] = '\\'
			}
			if got := indexShort(b, '\\'); got != at {
				t.Fatalf("indexShort(%q) = %d, want %d", b, got, at)
			}
		}
	}
}
