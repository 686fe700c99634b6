// Package devissuer is a local token issuer for development: it signs Okta-like access tokens with a key
// kept on disk and publishes the public key as a JWKS, so the service runs with no identity provider.
// It is never meant for production: keys are long-lived files and anyone who can run `mcpguard token`
// can mint any identity. The private key never leaves the key file; JWKS and discovery are public-only.
package devissuer

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Supported signing algorithms.
const (
	ES256 = "ES256" // ECDSA P-256 with SHA-256
	RS256 = "RS256" // RSA PKCS#1 v1.5 (2048-bit key) with SHA-256
)

// Config configures the development issuer. KeyFile is resolved by the caller (empty means
// <data_dir>/dev-issuer/key.pem) and passed to [Open].
type Config struct {
	Enabled   bool          `yaml:"enabled"`
	Issuer    string        `yaml:"issuer"`
	Algorithm string        `yaml:"algorithm"`
	KeyFile   string        `yaml:"key_file"`
	Audience  string        `yaml:"audience"`
	MaxTTL    time.Duration `yaml:"max_ttl"`
}

// DefaultConfig returns the defaults: disabled (the embedded development config turns it on), served
// under /dev on the admin port, ES256, tokens for the local MCP endpoint, living at most 24h.
func DefaultConfig() Config {
	return Config{
		Issuer:    "http://127.0.0.1:9002/dev",
		Algorithm: ES256,
		Audience:  "http://localhost:8080/mcp",
		MaxTTL:    24 * time.Hour,
	}
}

// Validate returns every problem at once. The issuer URL's path becomes HTTP routes, so it is limited
// to plain path characters.
func (c Config) Validate() error {
	var errs []error
	if err := validateIssuer(c.Issuer); err != nil {
		errs = append(errs, fmt.Errorf("issuer: %w", err))
	}
	if c.Algorithm != ES256 && c.Algorithm != RS256 {
		errs = append(errs, fmt.Errorf("algorithm: must be %q or %q, got %q", ES256, RS256, c.Algorithm))
	}
	if strings.TrimSpace(c.Audience) == "" {
		errs = append(errs, errors.New("audience: required"))
	}
	if c.MaxTTL < time.Second {
		errs = append(errs, errors.New("max_ttl: must be at least 1s"))
	}
	return errors.Join(errs...)
}

func validateIssuer(s string) error {
	if s == "" {
		return errors.New("required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("must be an absolute http or https URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.Opaque != "":
		return errors.New("must be an absolute http or https URL")
	case u.User != nil:
		return errors.New("must not contain user info")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(s, "?#"):
		return errors.New("must not have a query or fragment")
	case strings.HasSuffix(u.Path, "/"):
		return errors.New(`must not end with "/"`)
	case u.RawPath != "" || !cleanPath(u.Path):
		return errors.New("path may only hold letters, digits and -._~ in non-empty segments")
	}
	return nil
}

func cleanPath(p string) bool {
	if p == "" {
		return true
	}
	for _, seg := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for _, r := range seg {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~", r)) {
				return false
			}
		}
	}
	return true
}
