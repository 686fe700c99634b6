// Package authztest is an in-process OIDC issuer for tests: discovery documents and a JWKS on a
// loopback httptest server, tokens minted on demand, key rotation, an outage switch and fetch counters.
// Keys are generated per issuer and never leave the process.
package authztest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer is a running test issuer. Its identifier is URL, shaped like an Okta custom
// authorization server (https://host/oauth2/default).
type Issuer struct {
	// URL is the issuer identifier (the iss claim).
	URL string

	srv     *httptest.Server
	oidc    bool
	fetches atomic.Int64

	mu     sync.Mutex
	down   bool
	gen    int
	rsa    *rsa.PrivateKey
	rsaKID string
	ec     *ecdsa.PrivateKey
	ecKID  string
}

// Option changes a test issuer.
type Option func(*Issuer)

// WithoutOpenIDConfiguration serves only /.well-known/oauth-authorization-server, so verifiers
// must use the fallback discovery document.
func WithoutOpenIDConfiguration() Option { return func(i *Issuer) { i.oidc = false } }

// NewIssuer starts an issuer that stops when t ends.
func NewIssuer(t testing.TB, opts ...Option) *Issuer {
	t.Helper()
	i, err := New(opts...)
	if err != nil {
		t.Fatalf("start test issuer: %v", err)
	}
	t.Cleanup(i.Close)
	return i
}

// New starts an issuer for programs that have no testing.TB (load tools); call Close when done.
func New(opts ...Option) (*Issuer, error) {
	i := &Issuer{oidc: true}
	for _, o := range opts {
		o(i)
	}
	if err := i.Rotate(); err != nil {
		return nil, err
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ec key: %w", err)
	}
	i.ec, i.ecKID = ec, "ec-1"
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oauth2/default/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		if !i.oidc {
			http.NotFound(w, r)
			return
		}
		i.discovery(w)
	})
	mux.HandleFunc("GET /oauth2/default/.well-known/oauth-authorization-server", func(w http.ResponseWriter, _ *http.Request) {
		i.discovery(w)
	})
	mux.HandleFunc("GET /oauth2/default/v1/keys", func(w http.ResponseWriter, _ *http.Request) {
		i.fetches.Add(1)
		if i.isDown(w) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(i.JWKS())
	})
	i.srv = httptest.NewServer(mux)
	i.URL = i.srv.URL + "/oauth2/default"
	return i, nil
}

// Close stops the server.
func (i *Issuer) Close() { i.srv.Close() }

// JWKSURL is where the key set is served.
func (i *Issuer) JWKSURL() string { return i.URL + "/v1/keys" }

func (i *Issuer) isDown(w http.ResponseWriter) bool {
	i.mu.Lock()
	down := i.down
	i.mu.Unlock()
	if down {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	}
	return down
}

func (i *Issuer) discovery(w http.ResponseWriter) {
	if i.isDown(w) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer": i.URL, "jwks_uri": i.JWKSURL(),
		"token_endpoint":                        i.URL + "/v1/token",
		"id_token_signing_alg_values_supported": []string{"RS256"},
	})
}

// Rotate replaces the RSA signing key with a new one under a new kid; the old key leaves the JWKS.
func (i *Issuer) Rotate() error {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generate rsa key: %w", err)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.gen++
	i.rsa, i.rsaKID = k, fmt.Sprintf("rsa-%d", i.gen)
	return nil
}

// SetDown makes every endpoint answer 503 (an IdP outage) until SetDown(false).
func (i *Issuer) SetDown(down bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.down = down
}

// Fetches is how many times the JWKS was requested (including refused requests while down).
func (i *Issuer) Fetches() int { return int(i.fetches.Load()) }

// RSAPublicKey is the current RSA verification key.
func (i *Issuer) RSAPublicKey() *rsa.PublicKey {
	i.mu.Lock()
	defer i.mu.Unlock()
	return &i.rsa.PublicKey
}

// KID is the current RSA key id.
func (i *Issuer) KID() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.rsaKID
}

// JWKS is the public key set as served.
func (i *Issuer) JWKS() []byte {
	i.mu.Lock()
	defer i.mu.Unlock()
	b64 := base64.RawURLEncoding.EncodeToString
	pt, err := i.ec.PublicKey.Bytes() // uncompressed point: 0x04 || X || Y
	if err != nil {
		panic(err) // a generated P-256 key always encodes
	}
	size := (len(pt) - 1) / 2
	set := map[string]any{"keys": []map[string]string{
		{
			"kty": "RSA", "use": "sig", "alg": "RS256", "kid": i.rsaKID,
			"n": b64(i.rsa.N.Bytes()), "e": b64(big.NewInt(int64(i.rsa.E)).Bytes()),
		},
		{
			"kty": "EC", "use": "sig", "alg": "ES256", "kid": i.ecKID, "crv": "P-256",
			"x": b64(pt[1 : 1+size]), "y": b64(pt[1+size:]),
		},
	}}
	b, _ := json.Marshal(set)
	return b
}

// Claims returns valid claims for audience: iss, sub, aud, iat, exp (+5m), cid, jti and scp.
func (i *Issuer) Claims(audience string, scopes ...string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": i.URL, "sub": "0oa-agent-1", "aud": audience, "cid": "0oa-agent-1",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"jti": fmt.Sprintf("AT.%d", now.UnixNano()), "scp": scopes,
	}
}

// Mint signs claims with the current RSA key (RS256). It panics if signing fails.
func (i *Issuer) Mint(claims map[string]any) string {
	return i.MintWithKID(i.KID(), claims)
}

// MintWithKID signs with the current RSA key but names kid in the header (unknown-kid tests).
func (i *Issuer) MintWithKID(kid string, claims map[string]any) string {
	i.mu.Lock()
	k := i.rsa
	i.mu.Unlock()
	return sign(jwt.SigningMethodRS256, kid, k, claims)
}

// MintES256 signs claims with the EC P-256 key.
func (i *Issuer) MintES256(claims map[string]any) string {
	return sign(jwt.SigningMethodES256, i.ecKID, i.ec, claims)
}

func sign(m jwt.SigningMethod, kid string, key crypto.Signer, claims map[string]any) string {
	t := jwt.NewWithClaims(m, jwt.MapClaims(claims))
	if kid != "" {
		t.Header["kid"] = kid
	}
	s, err := t.SignedString(key)
	if err != nil {
		panic(fmt.Sprintf("authztest: sign token: %v", err))
	}
	return s
}
