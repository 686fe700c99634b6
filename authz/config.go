package authz

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Config is the token verification and response shaping of the ext_authz service.
//
// Zero issuers is valid here: the wiring may add the development issuer with
// [WithStaticIssuer]. [NewVerifier] refuses to start with no issuer at all.
type Config struct {
	// Issuers are the trusted token issuers (Okta custom authorization servers or any OIDC issuer).
	Issuers []IssuerConfig `yaml:"issuers"`
	// Audience is the default required audience: the canonical URI of the MCP resource (RFC 8707).
	// A route's context extension or an issuer's own audience overrides it.
	Audience string `yaml:"audience"`
	// RequiredScopes must all be granted by every token; routes may require more.
	RequiredScopes []string `yaml:"required_scopes"`
	// Algorithms is the signature algorithm allow-list. "none" and HMAC are never accepted.
	Algorithms []string `yaml:"algorithms"`
	// Leeway is the clock skew tolerated on exp, nbf and iat.
	Leeway time.Duration `yaml:"leeway"`
	// GroupsClaim is the claim that carries the caller's groups.
	GroupsClaim string `yaml:"groups_claim"`
	// ForwardAuthorization keeps the Authorization header on the upstream request. MCP forbids
	// token passthrough, so this is off unless a route opts in.
	ForwardAuthorization bool `yaml:"forward_authorization"`
	// IdentityHeaders adds x-mcpguard-subject, x-mcpguard-client-id and x-mcpguard-groups upstream.
	IdentityHeaders bool `yaml:"identity_headers"`
	// ResourceMetadataURL is the RFC 9728 document advertised in WWW-Authenticate challenges.
	ResourceMetadataURL string `yaml:"resource_metadata_url"`
	// MaxTokenBytes refuses larger tokens before any parsing.
	MaxTokenBytes int `yaml:"max_token_bytes"`
	// Cache holds verified tokens so that repeated calls skip signature checks.
	Cache CacheConfig `yaml:"cache"`
	// JWKS controls how issuers' signing keys are fetched and refreshed.
	JWKS JWKSConfig `yaml:"jwks"`
}

// IssuerConfig is one trusted issuer.
type IssuerConfig struct {
	// Issuer is compared exactly with the token's iss claim and is the base of discovery.
	Issuer string `yaml:"issuer"`
	// JWKSURL skips discovery when set.
	JWKSURL string `yaml:"jwks_url"`
	// Audience overrides [Config.Audience] for tokens from this issuer.
	Audience string `yaml:"audience"`
}

// CacheConfig bounds the verified-token cache.
type CacheConfig struct {
	// MaxEntries is the number of verified tokens kept; 0 disables the cache.
	MaxEntries int `yaml:"max_entries"`
}

// JWKSConfig controls key fetching.
type JWKSConfig struct {
	// RefreshInterval is how often loaded key sets are fetched again.
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	// RetryInterval is how soon a failed fetch is retried (issuer not ready, or stale keys).
	RetryInterval time.Duration `yaml:"retry_interval"`
	// UnknownKIDMinInterval is the least time between two fetches caused by tokens with an
	// unknown key id, so a flood of made-up kids cannot hammer the IdP.
	UnknownKIDMinInterval time.Duration `yaml:"unknown_kid_min_interval"`
	// HTTPTimeout bounds each discovery or JWKS request.
	HTTPTimeout time.Duration `yaml:"http_timeout"`
}

// DefaultConfig returns the defaults; user YAML is decoded on top of it.
func DefaultConfig() Config {
	return Config{
		Algorithms:    []string{"RS256", "ES256"},
		Leeway:        30 * time.Second,
		GroupsClaim:   "groups",
		MaxTokenBytes: 8192,
		Cache:         CacheConfig{MaxEntries: 100000},
		JWKS: JWKSConfig{
			RefreshInterval:       time.Hour,
			RetryInterval:         10 * time.Second,
			UnknownKIDMinInterval: time.Minute,
			HTTPTimeout:           10 * time.Second,
		},
	}
}

// supportedAlgs are the asymmetric algorithms that may be allowed.
var supportedAlgs = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"EdDSA": true,
}

// Validate returns every problem in c, each prefixed with its field path.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	seen := map[string]int{}
	for i, is := range c.Issuers {
		p := fmt.Sprintf("issuers[%d]", i)
		switch is.Issuer {
		case "":
			add("%s.issuer: required", p)
		default:
			if err := checkURL(is.Issuer); err != nil {
				add("%s.issuer: %w", p, err)
			}
			if j, dup := seen[is.Issuer]; dup {
				add("%s.issuer: duplicate of issuers[%d]", p, j)
			}
			seen[is.Issuer] = i
		}
		if is.JWKSURL != "" {
			if err := checkURL(is.JWKSURL); err != nil {
				add("%s.jwks_url: %w", p, err)
			}
		}
		if is.Audience != "" && strings.TrimSpace(is.Audience) != is.Audience {
			add("%s.audience: must not have surrounding spaces", p)
		}
	}
	if c.Audience != "" && strings.TrimSpace(c.Audience) != c.Audience {
		add("audience: must not have surrounding spaces")
	}
	for i, s := range c.RequiredScopes {
		if s == "" || strings.ContainsAny(s, " \t\"\\") {
			add("required_scopes[%d]: must be a non-empty scope token", i)
		}
	}
	if len(c.Algorithms) == 0 {
		add("algorithms: required")
	}
	for i, a := range c.Algorithms {
		switch {
		case strings.EqualFold(a, "none"), strings.HasPrefix(strings.ToUpper(a), "HS"):
			add("algorithms[%d]: %s not allowed", i, a)
		case !supportedAlgs[a]:
			add("algorithms[%d]: unknown algorithm %q", i, a)
		}
	}
	if c.Leeway < 0 {
		add("leeway: must not be negative")
	}
	if c.Leeway > 5*time.Minute {
		add("leeway: must be at most 5m")
	}
	if c.GroupsClaim == "" {
		add("groups_claim: required")
	}
	if c.ResourceMetadataURL != "" {
		if err := checkHeaderParam(c.ResourceMetadataURL); err != nil {
			add("resource_metadata_url: %w", err)
		}
	}
	if c.MaxTokenBytes <= 0 {
		add("max_token_bytes: must be positive")
	}
	if c.Cache.MaxEntries < 0 {
		add("cache.max_entries: must not be negative")
	}
	if c.JWKS.RefreshInterval < time.Minute {
		add("jwks.refresh_interval: must be at least 1m")
	}
	if c.JWKS.RetryInterval <= 0 {
		add("jwks.retry_interval: must be positive")
	}
	if c.JWKS.UnknownKIDMinInterval < time.Second {
		add("jwks.unknown_kid_min_interval: must be at least 1s")
	}
	if c.JWKS.HTTPTimeout <= 0 {
		add("jwks.http_timeout: must be positive")
	}
	return errors.Join(errs...)
}

// checkURL accepts absolute https URLs, and http only on loopback (development).
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return errors.New("must be an absolute URL without query, fragment or credentials")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return errors.New("must use https (http only on loopback)")
	default:
		return errors.New("must use https")
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkHeaderParam keeps a value safe inside a quoted WWW-Authenticate parameter.
func checkHeaderParam(s string) error {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < 0x21 || b > 0x7e || b == '"' || b == '\\' {
			return errors.New("must be printable ASCII without spaces, quotes or backslashes")
		}
	}
	return nil
}
