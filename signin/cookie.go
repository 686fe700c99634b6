package signin

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// maxCookie bounds a cookie value mcpguard writes or reads: browsers keep about 4 KiB per
// cookie, and anything longer was not written here.
const maxCookie = 3800

// Limits on what a session may carry, so a cookie that decrypts still cannot carry
// surprises: groups beyond these are not kept (see [Session]).
const (
	maxGroups   = 200
	maxClaimLen = 256
)

// errCookie is every reason a cookie is not accepted; callers only learn "not signed in".
var errCookie = errors.New("invalid cookie")

// sealer encrypts and authenticates cookie payloads with AES-256-GCM. The cookie's name is
// the additional data, so a value cut from one cookie (the sign-in flow) never opens as
// another (the session).
type sealer struct{ aead cipher.AEAD }

// deriveKeys expands the operator's secret into independent keys for sealing and for
// CSRF tokens.
func deriveKeys(secret []byte) (seal, csrf []byte, err error) {
	seal, err = hkdf.Key(sha256.New, secret, nil, "mcpguard signin cookie v1", 32)
	if err != nil {
		return nil, nil, fmt.Errorf("derive cookie key: %w", err)
	}
	csrf, err = hkdf.Key(sha256.New, secret, nil, "mcpguard signin csrf v1", 32)
	if err != nil {
		return nil, nil, fmt.Errorf("derive csrf key: %w", err)
	}
	return seal, csrf, nil
}

func newSealer(key []byte) (sealer, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return sealer{}, fmt.Errorf("cookie cipher: %w", err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return sealer{}, fmt.Errorf("cookie cipher: %w", err)
	}
	return sealer{aead: g}, nil
}

// seal encrypts v (JSON) for the cookie called name.
func (s sealer) seal(name string, v any) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode cookie: %w", err)
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("cookie nonce: %w", err)
	}
	out := base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(name)))
	if len(out) > maxCookie {
		return "", fmt.Errorf("cookie %s: %d bytes is too large", name, len(out))
	}
	return out, nil
}

// open decrypts a cookie value sealed for name into v, strictly: unknown fields, trailing
// data, oversize or anything that does not authenticate is [errCookie].
func (s sealer) open(name, value string, v any) error {
	if value == "" || len(value) > maxCookie {
		return errCookie
	}
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead() {
		return errCookie
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(name))
	if err != nil {
		return errCookie
	}
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		return errCookie
	}
	return nil
}

// sessionV1 is the session cookie's content: who signed in, until when, and the ID token
// only as far as the provider's sign-out needs it (id_token_hint).
type sessionV1 struct {
	V      int      `json:"v"`
	SID    string   `json:"sid"`
	Sub    string   `json:"sub"`
	Iss    string   `json:"iss"`
	Name   string   `json:"name,omitempty"`
	Groups []string `json:"grp,omitempty"`
	IAT    int64    `json:"iat"`
	EXP    int64    `json:"exp"`
	IDT    string   `json:"idt,omitempty"`
}

// flowV1 is the sign-in flow cookie: what the callback must find again. It lives only
// between the redirect to the provider and the callback.
type flowV1 struct {
	V        int    `json:"v"`
	State    string `json:"state"`
	Nonce    string `json:"nonce"`
	Verifier string `json:"pkce"`
	Return   string `json:"ret,omitempty"`
	EXP      int64  `json:"exp"`
}

// sessionFrom checks a decrypted session against the configuration and the clock.
func sessionFrom(v sessionV1, issuer string, ttl time.Duration, now time.Time) (Session, error) {
	iat, exp := time.Unix(v.IAT, 0), time.Unix(v.EXP, 0)
	switch {
	case v.V != 1:
		return Session{}, errCookie
	case v.SID == "" || v.Sub == "" || !textOK(v.Sub) || !textOK(v.Name) || !utf8.ValidString(v.IDT):
		return Session{}, errCookie
	case v.Iss != issuer:
		// Sessions from another issuer (the config changed) are not trusted.
		return Session{}, errCookie
	case !now.Before(exp), iat.After(now.Add(clockSkew)), exp.Sub(iat) > ttl:
		// Expired, from the future, or sealed for a longer session than allowed now.
		return Session{}, errCookie
	case len(v.Groups) > maxGroups:
		return Session{}, errCookie
	}
	for _, g := range v.Groups {
		if g == "" || !textOK(g) {
			return Session{}, errCookie
		}
	}
	s := Session{ID: v.SID, Name: v.Name, IssuedAt: iat, idToken: v.IDT}
	s.Identity.Subject, s.Identity.Issuer, s.Identity.ExpiresAt = v.Sub, v.Iss, exp
	s.Identity.Groups = v.Groups
	return s, nil
}

// textOK accepts short valid UTF-8 without control characters: claims end up in pages,
// logs and decisions.
func textOK(s string) bool {
	if len(s) > maxClaimLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// clockSkew tolerates clocks of replicas sharing a cookie key that disagree a little.
const clockSkew = time.Minute
