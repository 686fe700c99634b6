package signin

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// Config is how people sign in. Sign-in is off while Issuer is empty.
type Config struct {
	// Issuer is the OpenID provider (for Okta, https://ORG.okta.com or an authorization
	// server such as https://ORG.okta.com/oauth2/default); its discovery document is read
	// on first use.
	Issuer string `yaml:"issuer"`
	// ClientID is the OpenID Connect client (an Okta "Web" app integration).
	ClientID string `yaml:"client_id"`
	// ClientSecretFile holds the client secret; empty for a public client (PKCE only).
	ClientSecretFile string `yaml:"client_secret_file"`
	// Scopes requested; must include openid. Add the scope that releases the groups claim
	// when the provider needs one (Okta's org authorization server: groups).
	Scopes []string `yaml:"scopes"`
	// GroupsClaim is the ID token claim that lists the person's groups.
	GroupsClaim string `yaml:"groups_claim"`
	// CookieKeyFile holds at least 32 bytes of secret that seal session cookies; empty
	// generates a key at start (sessions then end with the process and are not shared
	// between replicas).
	CookieKeyFile string `yaml:"cookie_key_file"`
	// SessionTTL bounds a session from sign-in, whatever the ID token's own expiry.
	SessionTTL time.Duration `yaml:"session_ttl"`
}

// maxSessionTTL bounds session_ttl: a session cannot be revoked before it ends, so it is
// kept to a working day.
const maxSessionTTL = 24 * time.Hour // keep the message in Validate in step

// DefaultConfig returns the defaults; sign-in stays off until an issuer is set.
func DefaultConfig() Config {
	return Config{
		Scopes:      []string{"openid", "profile", "email"},
		GroupsClaim: "groups",
		SessionTTL:  8 * time.Hour,
	}
}

// Enabled reports whether sign-in is configured.
func (c Config) Enabled() bool { return c.Issuer != "" }

// Validate reports every problem, each prefixed with its field path.
func (c Config) Validate() error {
	if !c.Enabled() {
		if c.ClientID != "" || c.ClientSecretFile != "" || c.CookieKeyFile != "" {
			return errors.New("issuer: required when sign-in is configured")
		}
		return nil
	}
	var errs []error
	if u, err := url.Parse(c.Issuer); err != nil || !u.IsAbs() || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		errs = append(errs, fmt.Errorf("issuer: %q is not an absolute URL without query or fragment", c.Issuer))
	} else if u.Scheme != "https" && (u.Scheme != "http" || !Loopback(u.Hostname())) {
		errs = append(errs, fmt.Errorf("issuer: %q must be https (http only on a loopback address)", c.Issuer))
	}
	if c.ClientID == "" {
		errs = append(errs, errors.New("client_id: required"))
	}
	if !slices.Contains(c.Scopes, "openid") {
		errs = append(errs, errors.New("scopes: must include openid"))
	}
	for i, s := range c.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			errs = append(errs, fmt.Errorf("scopes[%d]: %q is not a scope", i, s))
		}
	}
	if c.GroupsClaim == "" {
		errs = append(errs, errors.New("groups_claim: required"))
	}
	if c.SessionTTL < time.Minute || c.SessionTTL > maxSessionTTL {
		errs = append(errs, errors.New("session_ttl: must be between 1m and 24h"))
	}
	return errors.Join(errs...)
}

// CheckFiles reads the files c names the way [New] does and reports what would fail,
// each problem prefixed with its field path.
func (c Config) CheckFiles() []error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	if c.ClientSecretFile != "" {
		if _, err := readSecret(c.ClientSecretFile); err != nil {
			errs = append(errs, fmt.Errorf("client_secret_file: %w", err))
		}
	}
	if c.CookieKeyFile != "" {
		if _, err := ReadKey(c.CookieKeyFile); err != nil {
			errs = append(errs, fmt.Errorf("cookie_key_file: %w", err))
		}
	}
	return errs
}

// Loopback reports whether host is a loopback name or address, where plain HTTP and
// cookies without Secure are acceptable (development).
func Loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// minKey is the least secret a cookie key file must hold.
const minKey = 32

// ReadKey reads a cookie key file: at least 32 bytes once surrounding whitespace is
// trimmed (for example `openssl rand -base64 48`).
func ReadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path) //nolint:gosec // G304: the operator's config names the file
	if err != nil {
		return nil, fmt.Errorf("read cookie key: %w", err)
	}
	k := []byte(strings.TrimSpace(string(b)))
	if len(k) < minKey {
		return nil, fmt.Errorf("%s holds %d bytes, need at least %d", path, len(k), minKey)
	}
	return k, nil
}

func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path) //nolint:gosec // G304: the operator's config names the file
	if err != nil {
		return "", fmt.Errorf("read client secret: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}
