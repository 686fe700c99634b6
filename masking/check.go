package masking

import (
	"encoding/base64"
	"math"
)

// validators are the checks a custom detector can name.
var validators = map[string]func([]byte) bool{
	"luhn":    luhnDigits,
	"mod97":   ibanOK,
	"entropy": func(b []byte) bool { return !lowEntropy(b, 3.0) },
}

func luhnDigits(b []byte) bool {
	var d []byte
	for _, c := range b {
		if isDigit(c) {
			d = append(d, c)
		}
	}
	return len(d) > 1 && luhn(d)
}

// luhn checks the mod-10 check digit of a string of digits.
func luhn(d []byte) bool {
	sum, dbl := 0, false
	for i := len(d) - 1; i >= 0; i-- {
		n := int(d[i] - '0')
		if dbl {
			n *= 2
			if n > 9 {
				n -= 9
			}
		}
		sum += n
		dbl = !dbl
	}
	return sum%10 == 0
}

// cardIssuer reports whether digits d start like a card of a known network with a length it issues.
func cardIssuer(d []byte) bool {
	n := len(d)
	p := func(k int) int {
		v := 0
		for _, c := range d[:k] {
			v = v*10 + int(c-'0')
		}
		return v
	}
	switch {
	case d[0] == '4':
		return n == 13 || n == 16 || n == 19 // Visa
	case p(2) >= 51 && p(2) <= 55, p(4) >= 2221 && p(4) <= 2720:
		return n == 16 // Mastercard
	case p(2) == 34 || p(2) == 37:
		return n == 15 // Amex
	case p(4) == 6011 || p(2) == 65 || (p(3) >= 644 && p(3) <= 649):
		return n >= 16 && n <= 19 // Discover
	case p(4) >= 3528 && p(4) <= 3589:
		return n >= 16 && n <= 19 // JCB
	case (p(3) >= 300 && p(3) <= 305) || p(2) == 36 || p(2) == 38:
		return n >= 14 && n <= 19 // Diners
	case p(2) == 62:
		return n >= 16 && n <= 19 // UnionPay
	}
	return false
}

// ssnOK applies the SSA's rules: area not 000, 666 or 9xx, group not 00, serial not 0000.
func ssnOK(d []byte) bool {
	if len(d) != 9 {
		return false
	}
	area := string(d[:3])
	if area == "000" || area == "666" || d[0] == '9' || string(d[3:5]) == "00" || string(d[5:]) == "0000" {
		return false
	}
	// Numbers published in advertising and never valid.
	s := string(d)
	return s != "078051120" && s != "219099999" && s != "123456789"
}

// ibanOK checks an IBAN without spaces: length and the ISO 7064 mod-97 check.
func ibanOK(b []byte) bool {
	var c []byte
	for _, x := range b {
		if x != ' ' {
			c = append(c, x)
		}
	}
	if len(c) < 15 || len(c) > 34 || !isUpper(c[0]) || !isUpper(c[1]) || !isDigit(c[2]) || !isDigit(c[3]) {
		return false
	}
	if cd := string(c[2:4]); cd < "02" || cd > "98" {
		return false // ISO 13616 check digits are 02-98
	}
	rem := 0
	step := func(v int) {
		if v >= 10 {
			rem = (rem*100 + v) % 97
		} else {
			rem = (rem*10 + v) % 97
		}
	}
	for _, x := range append(c[4:len(c):len(c)], c[:4]...) {
		switch {
		case isDigit(x):
			step(int(x - '0'))
		case isUpper(x):
			step(int(x-'A') + 10)
		default:
			return false
		}
	}
	return rem == 1
}

// lowEntropy reports whether the Shannon entropy of b is below t bits per byte, as
// entropy(b) < t. Two bounds decide most cases without a logarithm: the entropy is at most
// log2 of the number of distinct bytes, and at least the min-entropy, -log2 of the largest
// byte frequency. Only between them is entropy computed.
func lowEntropy(b []byte, t float64) bool {
	if len(b) == 0 || len(b) > 1<<16 {
		return entropy(b) < t
	}
	var f [256]uint16
	distinct, top := 0, uint16(0)
	for _, c := range b {
		k := f[c] + 1
		f[c] = k
		if k == 1 {
			distinct++
		}
		top = max(top, k)
	}
	pow := math.Exp2(t)
	switch {
	case float64(distinct) < pow:
		return true
	case float64(top)*pow <= float64(len(b)):
		return false
	}
	h, n := 0.0, float64(len(b))
	for _, k := range f { // the sum of entropy, term by term and in the same order
		if k > 0 {
			p := float64(k) / n
			h -= p * math.Log2(p)
		}
	}
	return h < t
}

// entropy is the Shannon entropy of b in bits per byte.
func entropy(b []byte) float64 {
	if len(b) == 0 {
		return 0
	}
	var f [256]int
	for _, c := range b {
		f[c]++
	}
	h, n := 0.0, float64(len(b))
	for _, k := range f {
		if k > 0 {
			p := float64(k) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

// jwtHeaderOK decodes a JWT's first segment and looks for an alg member.
func jwtHeaderOK(seg []byte) bool {
	if len(seg) > 2048 {
		return false
	}
	out := make([]byte, base64.RawURLEncoding.DecodedLen(len(seg)))
	n, err := base64.RawURLEncoding.Decode(out, seg)
	if err != nil {
		return false
	}
	return containsFold(out[:n], []byte(`"alg"`))
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isAlnum(c byte) bool { return isDigit(c) || c|0x20 >= 'a' && c|0x20 <= 'z' }
func isWord(c byte) bool  { return isAlnum(c) || c == '_' }
func isB64URL(c byte) bool {
	return isAlnum(c) || c == '-' || c == '_'
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c | 0x20
	}
	return c
}

// hasPrefixFold reports whether s starts with the lower-case ASCII prefix p, ignoring case.
func hasPrefixFold(s, p []byte) bool {
	if len(s) < len(p) {
		return false
	}
	for i, c := range p {
		if lower(s[i]) != c {
			return false
		}
	}
	return true
}

// containsFold reports whether s contains the lower-case ASCII needle, ignoring case.
func containsFold(s, needle []byte) bool {
	for i := 0; i+len(needle) <= len(s); i++ {
		if lower(s[i]) == needle[0] && hasPrefixFold(s[i:], needle) {
			return true
		}
	}
	return false
}
