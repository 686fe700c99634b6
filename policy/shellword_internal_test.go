package policy

import "testing"

// TestANSIC: $'…' is decoded as bash decodes it, so `$'\x72\x6d'` is the program rm.
func TestANSIC(t *testing.T) {
	for in, want := range map[string]string{
		`\x72\x6d`: "rm", `\162\155`: "rm", `a\tb`: "a\tb", `\u00e9`: "é", `\xZZ`: `\xZZ`, `\x41B`: "AB",
		`\101`: "A", `\cA`: "\x01", `\'`: "'", `\q`: `\q`, `\777`: "\xff",
	} {
		if got := ansiC(in); got != want && !(in == `\777` && got == "\uFFFD") {
			t.Errorf("ansiC(%q) = %q, want %q", in, got, want)
		}
	}
}
