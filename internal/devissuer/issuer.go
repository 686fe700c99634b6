package devissuer

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultTTL is the lifetime of a token minted without a TTL, capped at the configured max_ttl.
const DefaultTTL = time.Hour

// reserved claims are set by Mint and may not be overridden through MintOptions.Extra.
var reserved = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "cid", "scp", "groups"}

// Issuer signs development tokens with one key and publishes its public half.
type Issuer struct {
	cfg       Config
	key       crypto.Signer
	method    jwt.SigningMethod
	kid       string
	jwks      []byte
	discovery []byte
	path      string // the issuer URL's path, the prefix of the HTTP routes
	now       func() time.Time
}

// Open loads the signing key from keyFile, creating it (mode 0600, parent directory 0700) on first use.
// Two processes opening a fresh path at once end up with the same key. An existing file with a key that
// does not fit c.Algorithm, or that other users can read, is refused rather than replaced.
// Open does not look at c.Enabled: deciding whether to run the issuer is the caller's job.
func Open(c Config, keyFile string) (*Issuer, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("open dev issuer: %w", err)
	}
	if keyFile == "" {
		return nil, errors.New("open dev issuer: key file path required")
	}
	b, err := loadOrCreate(keyFile, c.Algorithm)
	if err != nil {
		return nil, fmt.Errorf("open dev issuer: %w", err)
	}
	key, err := parseKey(b, c.Algorithm)
	clear(b)
	if err != nil {
		return nil, fmt.Errorf("open dev issuer: key file %s: %w", keyFile, err)
	}
	return newIssuer(c, key)
}

func newIssuer(c Config, key crypto.Signer) (*Issuer, error) {
	jwk, err := publicJWK(key, c.Algorithm)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(c.Issuer) // validated
	if err != nil {
		return nil, fmt.Errorf("parse issuer: %w", err)
	}
	i := &Issuer{
		cfg:    c,
		key:    key,
		method: jwt.GetSigningMethod(c.Algorithm),
		kid:    jwk.Kid,
		path:   u.Path,
		now:    time.Now,
	}
	if i.jwks, err = json.Marshal(jwkSet{Keys: []jwkPublic{jwk}}); err != nil {
		return nil, fmt.Errorf("encode jwks: %w", err)
	}
	if i.discovery, err = json.Marshal(discovery{
		Issuer:             c.Issuer,
		JWKSURI:            c.Issuer + "/keys",
		SubjectTypes:       []string{"public"},
		ResponseTypes:      []string{"token"},
		TokenEndpointAuth:  []string{"none"},
		IDTokenSigningAlgs: []string{c.Algorithm},
		ClaimsSupported:    reserved,
	}); err != nil {
		return nil, fmt.Errorf("encode discovery: %w", err)
	}
	return i, nil
}

// Issuer returns the iss claim of minted tokens, which is also the base URL of [Issuer.Handler].
func (i *Issuer) Issuer() string { return i.cfg.Issuer }

// KeyID returns the kid of the signing key: its RFC 7638 thumbprint.
func (i *Issuer) KeyID() string { return i.kid }

// JWKS returns the RFC 7517 key set holding the public signing key, as a copy the caller may keep.
func (i *Issuer) JWKS() []byte { return bytes.Clone(i.jwks) }

// MintOptions describes one token. Subject defaults to ClientID (Okta's client-credentials tokens carry
// the client ID as sub); Audience defaults to the configured audience; TTL defaults to [DefaultTTL].
type MintOptions struct {
	Subject  string
	ClientID string
	Audience []string
	Scopes   []string
	Groups   []string
	TTL      time.Duration
	Extra    map[string]any // further claims; may not override the ones Mint sets
}

// Mint signs a token with iss, sub, aud, iat, nbf, exp and a random jti, plus Okta-style claims:
// cid (client ID), scp (array of scopes) and groups, each only when given.
func (i *Issuer) Mint(o MintOptions) (string, error) {
	claims, err := i.claims(o)
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	t := jwt.NewWithClaims(i.method, claims)
	t.Header["kid"] = i.kid
	s, err := t.SignedString(i.key)
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	return s, nil
}

func (i *Issuer) claims(o MintOptions) (jwt.MapClaims, error) {
	ttl := o.TTL
	switch {
	case ttl == 0:
		ttl = min(DefaultTTL, i.cfg.MaxTTL)
	case ttl < time.Second:
		return nil, fmt.Errorf("ttl %s: must be at least 1s", o.TTL)
	case ttl > i.cfg.MaxTTL:
		return nil, fmt.Errorf("ttl %s: above max_ttl %s", o.TTL, i.cfg.MaxTTL)
	}
	sub := o.Subject
	if sub == "" {
		sub = o.ClientID
	}
	if sub == "" {
		return nil, errors.New("subject or client id required")
	}
	aud := o.Audience
	if len(aud) == 0 {
		aud = []string{i.cfg.Audience}
	}
	if err := nonEmpty("audience", aud); err != nil {
		return nil, err
	}
	if err := nonEmpty("scope", o.Scopes); err != nil {
		return nil, err
	}
	for _, s := range o.Scopes {
		if strings.ContainsAny(s, " \t\r\n") {
			return nil, fmt.Errorf("scope %q: must not contain white space", s)
		}
	}
	if err := nonEmpty("group", o.Groups); err != nil {
		return nil, err
	}
	jti := make([]byte, 16)
	_, _ = rand.Read(jti) // crypto/rand.Read never fails

	c := make(jwt.MapClaims, len(reserved)+len(o.Extra))
	for k, v := range o.Extra {
		if slices.Contains(reserved, k) {
			return nil, fmt.Errorf("extra claim %q: set by the issuer", k)
		}
		c[k] = v
	}
	now := i.now().Truncate(time.Second)
	c["iss"] = i.cfg.Issuer
	c["sub"] = sub
	c["iat"] = now.Unix()
	c["nbf"] = now.Unix()
	c["exp"] = now.Add(ttl).Unix()
	c["jti"] = base64.RawURLEncoding.EncodeToString(jti)
	if len(aud) == 1 {
		c["aud"] = aud[0]
	} else {
		c["aud"] = slices.Clone(aud)
	}
	if o.ClientID != "" {
		c["cid"] = o.ClientID
	}
	if len(o.Scopes) > 0 {
		c["scp"] = slices.Clone(o.Scopes)
	}
	if len(o.Groups) > 0 {
		c["groups"] = slices.Clone(o.Groups)
	}
	return c, nil
}

func nonEmpty(what string, vals []string) error {
	for _, v := range vals {
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("%s: must not be empty", what)
		}
	}
	return nil
}

// Handler serves the discovery document at {path}/.well-known/openid-configuration and the key set at
// {path}/keys, where {path} is the issuer URL's path. Register it with mux.Handle(path+"/", h).
// Only GET and HEAD are allowed; every other path is 404.
func (i *Issuer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+i.path+"/.well-known/openid-configuration", jsonDoc(i.discovery))
	mux.Handle("GET "+i.path+"/keys", jsonDoc(i.jwks))
	return mux
}

func jsonDoc(b []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=300")
		h.Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(b)
	})
}

// discovery is the subset of OpenID Connect Discovery 1.0 metadata a verifier needs. There is no token
// endpoint (tokens come from `mcpguard token`), hence no token_endpoint and the auth method "none".
type discovery struct {
	Issuer             string   `json:"issuer"`
	JWKSURI            string   `json:"jwks_uri"`
	SubjectTypes       []string `json:"subject_types_supported"`
	ResponseTypes      []string `json:"response_types_supported"`
	TokenEndpointAuth  []string `json:"token_endpoint_auth_methods_supported"`
	IDTokenSigningAlgs []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported    []string `json:"claims_supported"`
}

type jwkSet struct {
	Keys []jwkPublic `json:"keys"`
}

// jwkPublic has fields for public key parameters only, so a private part cannot be serialised by mistake.
type jwkPublic struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
}

func publicJWK(key crypto.Signer, alg string) (jwkPublic, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	var j jwkPublic
	switch pub := key.Public().(type) {
	case *ecdsa.PublicKey:
		ep, err := pub.ECDH()
		if err != nil {
			return j, fmt.Errorf("encode public key: %w", err)
		}
		raw := ep.Bytes() // 0x04 || X || Y, fixed-length coordinates
		n := (len(raw) - 1) / 2
		j = jwkPublic{Kty: "EC", Crv: "P-256", X: b64(raw[1 : 1+n]), Y: b64(raw[1+n:])}
	case *rsa.PublicKey:
		j = jwkPublic{Kty: "RSA", N: b64(pub.N.Bytes()), E: b64(big.NewInt(int64(pub.E)).Bytes())}
	default:
		return j, fmt.Errorf("encode public key: unsupported %T", pub)
	}
	j.Use, j.Alg, j.Kid = "sig", alg, thumbprint(j)
	return j, nil
}

// thumbprint is the RFC 7638 SHA-256 thumbprint: the required members only, in lexicographic order,
// without white space. Member values are base64url or fixed names, so %q needs no JSON escaping.
func thumbprint(j jwkPublic) string {
	var doc string
	if j.Kty == "RSA" {
		doc = fmt.Sprintf(`{"e":%q,"kty":%q,"n":%q}`, j.E, j.Kty, j.N)
	} else {
		doc = fmt.Sprintf(`{"crv":%q,"kty":%q,"x":%q,"y":%q}`, j.Crv, j.Kty, j.X, j.Y)
	}
	sum := sha256.Sum256([]byte(doc))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// CheckKey reports whether the key file at keyFile would open: readable by its owner only and
// a key of c's algorithm. A file that does not exist is fine (Open creates it); nothing is
// created here.
func CheckKey(c Config, keyFile string) error {
	b, err := readKey(keyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer clear(b)
	if _, err := parseKey(b, c.Algorithm); err != nil {
		return err
	}
	return nil
}
