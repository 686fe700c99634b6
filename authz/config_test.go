package authz

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDefaultConfigValid(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate(), "zero issuers is valid: the wiring may add a static one")
	d := DefaultConfig()
	require.Equal(t, []string{"RS256", "ES256"}, d.Algorithms)
	require.Equal(t, 30*time.Second, d.Leeway)
	require.Equal(t, "groups", d.GroupsClaim)
	require.Equal(t, 8192, d.MaxTokenBytes)
	require.Equal(t, 100000, d.Cache.MaxEntries)
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		{"issuer required", func(c *Config) { c.Issuers = []IssuerConfig{{}} }, []string{"issuers[0].issuer: required"}},
		{"issuer http remote", func(c *Config) { c.Issuers = []IssuerConfig{{Issuer: "http://idp.example.com"}} }, []string{"issuers[0].issuer: must use https"}},
		{"issuer not absolute", func(c *Config) { c.Issuers = []IssuerConfig{{Issuer: "idp.example.com"}} }, []string{"issuers[0].issuer: must be an absolute URL"}},
		{"issuer duplicate", func(c *Config) {
			c.Issuers = []IssuerConfig{{Issuer: "https://a.example"}, {Issuer: "https://a.example"}}
		}, []string{"issuers[1].issuer: duplicate of issuers[0]"}},
		{"jwks url", func(c *Config) {
			c.Issuers = []IssuerConfig{{Issuer: "https://a.example", JWKSURL: "ftp://a.example/keys"}}
		}, []string{"issuers[0].jwks_url: must use https"}},
		{"issuer audience spaces", func(c *Config) {
			c.Issuers = []IssuerConfig{{Issuer: "https://a.example", Audience: " x"}}
		}, []string{"issuers[0].audience: must not have surrounding spaces"}},
		{"loopback http ok", func(c *Config) { c.Issuers = []IssuerConfig{{Issuer: "http://127.0.0.1:9002/dev"}} }, nil},
		{"audience spaces", func(c *Config) { c.Audience = "x " }, []string{"audience: must not have surrounding spaces"}},
		{"scope", func(c *Config) { c.RequiredScopes = []string{"ok", "a b"} }, []string{"required_scopes[1]: must be a non-empty scope token"}},
		{"no algorithms", func(c *Config) { c.Algorithms = nil }, []string{"algorithms: required"}},
		{"hmac and none", func(c *Config) { c.Algorithms = []string{"RS256", "HS256", "none", "hs512"} }, []string{
			"algorithms[1]: HS256 not allowed", "algorithms[2]: none not allowed", "algorithms[3]: hs512 not allowed",
		}},
		{"unknown algorithm", func(c *Config) { c.Algorithms = []string{"XX1"} }, []string{`algorithms[0]: unknown algorithm "XX1"`}},
		{"negative leeway", func(c *Config) { c.Leeway = -time.Second }, []string{"leeway: must not be negative"}},
		{"huge leeway", func(c *Config) { c.Leeway = time.Hour }, []string{"leeway: must be at most 5m"}},
		{"groups claim", func(c *Config) { c.GroupsClaim = "" }, []string{"groups_claim: required"}},
		{"metadata url", func(c *Config) { c.ResourceMetadataURL = `https://x/"a"` }, []string{"resource_metadata_url: must be printable ASCII"}},
		{"max token bytes", func(c *Config) { c.MaxTokenBytes = 0 }, []string{"max_token_bytes: must be positive"}},
		{"cache", func(c *Config) { c.Cache.MaxEntries = -1 }, []string{"cache.max_entries: must not be negative"}},
		{"jwks", func(c *Config) { c.JWKS = JWKSConfig{RefreshInterval: time.Second} }, []string{
			"jwks.refresh_interval: must be at least 1m", "jwks.retry_interval: must be positive",
			"jwks.unknown_kid_min_interval: must be at least 1s", "jwks.http_timeout: must be positive",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mutate(&c)
			err := c.Validate()
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			lines := strings.Split(err.Error(), "\n")
			require.Len(t, lines, len(tc.want), "every problem reported once: %v", err)
			for i, w := range tc.want {
				require.True(t, strings.HasPrefix(lines[i], w), "line %q should start with %q", lines[i], w)
			}
		})
	}
}
