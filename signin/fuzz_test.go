package signin

import (
	"crypto/rand"
	"encoding/base64"
	"testing"
	"time"
)

// fuzzSealer is a fixed-key sealer for the fuzz targets.
func fuzzSealer(f *testing.F) sealer {
	f.Helper()
	s, err := newSealer(make([]byte, 32))
	if err != nil {
		f.Fatal(err)
	}
	return s
}

// FuzzOpenSession: a cookie value from the browser (attacker-controlled) never panics the
// decoder and never opens unless it was sealed with the key.
func FuzzOpenSession(f *testing.F) {
	s := fuzzSealer(f)
	// Sealed with a fixed nonce so every fuzz worker knows the one value that may open.
	nonce := make([]byte, s.aead.NonceSize())
	good := base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce,
		[]byte(`{"v":1,"sid":"s","sub":"u","iss":"i","iat":1,"exp":2}`), []byte("mcpguard_session")))
	f.Add(good)
	f.Add("")
	f.Add("AAAA")
	f.Add(good[:len(good)-1] + "A")
	f.Fuzz(func(t *testing.T, value string) {
		var v sessionV1
		err := s.open("mcpguard_session", value, &v)
		if err == nil && value != good {
			t.Fatalf("a value not sealed here opened: %q", value)
		}
	})
}

// FuzzSessionPayload: whatever a sealed cookie holds (a bug, an old version, a key shared
// with something else), the strict decoder and the session checks either refuse it or
// return a session that keeps the invariants.
func FuzzSessionPayload(f *testing.F) {
	s := fuzzSealer(f)
	now := time.Unix(1_900_000_000, 0)
	f.Add([]byte(`{"v":1,"sid":"s","sub":"alice","iss":"https://idp","grp":["a"],"iat":1900000000,"exp":1900003600}`))
	f.Add([]byte(`{"v":1,"sid":"s","sub":"alice","iss":"https://idp","iat":1900000000,"exp":1900003600,"x":1}`))
	f.Add([]byte(`{"v":2}`))
	f.Add([]byte(`{"v":1,"sid":"s","sub":"a\u0000","iss":"https://idp","iat":1900000000,"exp":1900003600}`))
	f.Add([]byte(`{"v":1,"sid":"s","sub":"a","iss":"https://idp","grp":[""],"iat":1900000000,"exp":1900003600}{}`))
	f.Fuzz(func(t *testing.T, plain []byte) {
		nonce := make([]byte, s.aead.NonceSize())
		_, _ = rand.Read(nonce)
		value := base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte("mcpguard_session")))
		var v sessionV1
		if s.open("mcpguard_session", value, &v) != nil {
			return
		}
		sess, err := sessionFrom(v, "https://idp", 8*time.Hour, now)
		if err != nil {
			return
		}
		id := sess.Identity
		switch {
		case id.Subject == "" || !textOK(id.Subject) || id.Issuer != "https://idp" || sess.ID == "":
			t.Fatalf("accepted a session without a usable subject, issuer or id: %+v", sess)
		case !now.Before(id.ExpiresAt) || id.ExpiresAt.Sub(sess.IssuedAt) > 8*time.Hour:
			t.Fatalf("accepted a session outside its lifetime: %+v", sess)
		case len(id.Groups) > maxGroups:
			t.Fatalf("accepted %d groups", len(id.Groups))
		}
		for _, g := range id.Groups {
			if g == "" || !textOK(g) {
				t.Fatalf("accepted group %q", g)
			}
		}
	})
}
