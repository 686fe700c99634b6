package devissuer

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []string
	}{
		{name: "defaults", mutate: func(*Config) {}},
		{name: "rs256 https root", mutate: func(c *Config) { c.Algorithm, c.Issuer = RS256, "https://dev.example.com" }},
		{name: "nested path", mutate: func(c *Config) { c.Issuer = "http://127.0.0.1:9002/oauth2/dev-1" }},
		{name: "issuer missing", mutate: func(c *Config) { c.Issuer = "" }, want: []string{"issuer: required"}},
		{name: "issuer relative", mutate: func(c *Config) { c.Issuer = "/dev" }, want: []string{"issuer: must be an absolute http or https URL"}},
		{name: "issuer other scheme", mutate: func(c *Config) { c.Issuer = "ftp://h/dev" }, want: []string{"issuer: must be an absolute"}},
		{name: "issuer opaque", mutate: func(c *Config) { c.Issuer = "http:dev" }, want: []string{"issuer: must be an absolute"}},
		{name: "issuer user info", mutate: func(c *Config) { c.Issuer = "http://u:p@h/dev" }, want: []string{"issuer: must not contain user info"}},
		{name: "issuer query", mutate: func(c *Config) { c.Issuer = "http://h/dev?x=1" }, want: []string{"issuer: must not have a query or fragment"}},
		{name: "issuer empty query", mutate: func(c *Config) { c.Issuer = "http://h/dev?" }, want: []string{"issuer: must not have a query"}},
		{name: "issuer fragment", mutate: func(c *Config) { c.Issuer = "http://h/dev#x" }, want: []string{"issuer: must not have a query or fragment"}},
		{name: "issuer trailing slash", mutate: func(c *Config) { c.Issuer = "http://h/dev/" }, want: []string{`issuer: must not end with "/"`}},
		{name: "issuer pattern chars", mutate: func(c *Config) { c.Issuer = "http://h/{dev}" }, want: []string{"issuer: path may only hold"}},
		{name: "issuer escaped", mutate: func(c *Config) { c.Issuer = "http://h/d%2Fev" }, want: []string{"issuer: path may only hold"}},
		{name: "issuer dot segment", mutate: func(c *Config) { c.Issuer = "http://h/a/../dev" }, want: []string{"issuer: path may only hold"}},
		{name: "issuer double slash", mutate: func(c *Config) { c.Issuer = "http://h//dev" }, want: []string{"issuer: path may only hold"}},
		{name: "algorithm", mutate: func(c *Config) { c.Algorithm = "HS256" }, want: []string{`algorithm: must be "ES256" or "RS256", got "HS256"`}},
		{name: "algorithm none", mutate: func(c *Config) { c.Algorithm = "none" }, want: []string{"algorithm: "}},
		{name: "audience", mutate: func(c *Config) { c.Audience = " " }, want: []string{"audience: required"}},
		{name: "max ttl zero", mutate: func(c *Config) { c.MaxTTL = 0 }, want: []string{"max_ttl: must be at least 1s"}},
		{name: "max ttl negative", mutate: func(c *Config) { c.MaxTTL = -time.Hour }, want: []string{"max_ttl: must be at least 1s"}},
		{
			name:   "every problem at once",
			mutate: func(c *Config) { *c = Config{} },
			want:   []string{"issuer: required", "algorithm: ", "audience: required", "max_ttl: "},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mutate(&c)
			err := c.Validate()
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
			require.Len(t, strings.Split(err.Error(), "\n"), len(tt.want))
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	require.False(t, c.Enabled, "only the embedded development config turns the issuer on")
	require.Equal(t, ES256, c.Algorithm)
	require.Equal(t, 24*time.Hour, c.MaxTTL)
	require.NoError(t, c.Validate())
}

func TestMintVerifiesAgainstJWKS(t *testing.T) {
	for _, alg := range []string{ES256, RS256} {
		t.Run(alg, func(t *testing.T) {
			c := DefaultConfig()
			c.Algorithm = alg
			iss := open(t, c, keyPath(t))

			tests := []struct {
				name  string
				opts  MintOptions
				check func(t *testing.T, claims jwt.MapClaims)
			}{
				{
					name: "all claims",
					opts: MintOptions{
						Subject: "agent-1", ClientID: "0oa-agent", Audience: []string{"https://mcp.example/mcp"},
						Scopes: []string{"mcp:tools", "mcp:read"}, Groups: []string{"sre"}, TTL: 10 * time.Minute,
						Extra: map[string]any{"tenant": "acme"},
					},
					check: func(t *testing.T, claims jwt.MapClaims) {
						t.Helper()
						require.Equal(t, "agent-1", claims["sub"])
						require.Equal(t, "0oa-agent", claims["cid"])
						require.Equal(t, "https://mcp.example/mcp", claims["aud"])
						require.Equal(t, []any{"mcp:tools", "mcp:read"}, claims["scp"])
						require.Equal(t, []any{"sre"}, claims["groups"])
						require.Equal(t, "acme", claims["tenant"])
						require.InDelta(t, (10 * time.Minute).Seconds(), claims["exp"].(float64)-claims["iat"].(float64), 0)
					},
				},
				{
					name: "defaults",
					opts: MintOptions{ClientID: "0oa-agent"},
					check: func(t *testing.T, claims jwt.MapClaims) {
						t.Helper()
						require.Equal(t, "0oa-agent", claims["sub"], "subject defaults to the client id")
						require.Equal(t, c.Audience, claims["aud"])
						require.NotContains(t, claims, "scp")
						require.NotContains(t, claims, "groups")
						require.InDelta(t, DefaultTTL.Seconds(), claims["exp"].(float64)-claims["iat"].(float64), 0)
					},
				},
				{
					name: "several audiences",
					opts: MintOptions{Subject: "s", Audience: []string{"a", "b"}},
					check: func(t *testing.T, claims jwt.MapClaims) {
						t.Helper()
						require.Equal(t, []any{"a", "b"}, claims["aud"])
						require.NotContains(t, claims, "cid")
					},
				},
			}
			kf, err := keyfunc.NewJWKSetJSON(iss.JWKS())
			require.NoError(t, err)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					tok, err := iss.Mint(tt.opts)
					require.NoError(t, err)
					aud := c.Audience
					if len(tt.opts.Audience) > 0 {
						aud = tt.opts.Audience[0]
					}
					claims := jwt.MapClaims{}
					parsed, err := jwt.ParseWithClaims(tok, claims, kf.Keyfunc,
						jwt.WithValidMethods([]string{alg}), jwt.WithIssuer(c.Issuer), jwt.WithAudience(aud),
						jwt.WithExpirationRequired(), jwt.WithIssuedAt())
					require.NoError(t, err)
					require.Equal(t, iss.KeyID(), parsed.Header["kid"])
					require.NotEmpty(t, claims["jti"])
					require.Equal(t, claims["iat"], claims["nbf"])
					tt.check(t, claims)
				})
			}
		})
	}
}

func TestMintUniqueJTI(t *testing.T) {
	iss := open(t, DefaultConfig(), keyPath(t))
	seen := map[string]bool{}
	for range 50 {
		tok, err := iss.Mint(MintOptions{Subject: "s"})
		require.NoError(t, err)
		claims := jwt.MapClaims{}
		_, _, err = jwt.NewParser().ParseUnverified(tok, claims)
		require.NoError(t, err)
		jti := claims["jti"].(string)
		require.False(t, seen[jti], "jti reused")
		seen[jti] = true
	}
}

func TestMintRefuses(t *testing.T) {
	c := DefaultConfig()
	c.MaxTTL = time.Hour
	iss := open(t, c, keyPath(t))
	tests := []struct {
		name string
		opts MintOptions
		want string
	}{
		{name: "ttl above max", opts: MintOptions{Subject: "s", TTL: time.Hour + time.Second}, want: "above max_ttl 1h0m0s"},
		{name: "ttl negative", opts: MintOptions{Subject: "s", TTL: -time.Minute}, want: "must be at least 1s"},
		{name: "ttl below a second", opts: MintOptions{Subject: "s", TTL: time.Millisecond}, want: "must be at least 1s"},
		{name: "no subject", opts: MintOptions{}, want: "subject or client id required"},
		{name: "empty audience", opts: MintOptions{Subject: "s", Audience: []string{""}}, want: "audience: must not be empty"},
		{name: "empty scope", opts: MintOptions{Subject: "s", Scopes: []string{"a", ""}}, want: "scope: must not be empty"},
		{name: "scope with space", opts: MintOptions{Subject: "s", Scopes: []string{"a b"}}, want: "must not contain white space"},
		{name: "empty group", opts: MintOptions{Subject: "s", Groups: []string{" "}}, want: "group: must not be empty"},
		{name: "extra overrides iss", opts: MintOptions{Subject: "s", Extra: map[string]any{"iss": "evil"}}, want: `extra claim "iss": set by the issuer`},
		{name: "extra overrides exp", opts: MintOptions{Subject: "s", Extra: map[string]any{"exp": 1}}, want: `extra claim "exp"`},
		{name: "extra not json", opts: MintOptions{Subject: "s", Extra: map[string]any{"f": func() {}}}, want: "mint token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := iss.Mint(tt.opts)
			require.ErrorContains(t, err, tt.want)
			require.Empty(t, tok)
		})
	}
	_, err := iss.Mint(MintOptions{Subject: "s", TTL: time.Hour})
	require.NoError(t, err, "exactly max_ttl is allowed")
}

func TestOpenPersistsKey(t *testing.T) {
	for _, alg := range []string{ES256, RS256} {
		t.Run(alg, func(t *testing.T) {
			c := DefaultConfig()
			c.Algorithm = alg
			path := filepath.Join(t.TempDir(), "data", "dev-issuer", "key.pem")
			first := open(t, c, path)

			fi, err := os.Stat(path)
			require.NoError(t, err)
			require.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())
			di, err := os.Stat(filepath.Dir(path))
			require.NoError(t, err)
			require.Equal(t, fs.FileMode(0o700), di.Mode().Perm())
			entries, err := os.ReadDir(filepath.Dir(path))
			require.NoError(t, err)
			require.Len(t, entries, 1, "no temporary files left behind")

			second := open(t, c, path)
			require.Equal(t, first.KeyID(), second.KeyID())
			require.JSONEq(t, string(first.JWKS()), string(second.JWKS()))

			// A token from one instance verifies with the keys published by the other.
			tok, err := first.Mint(MintOptions{Subject: "s"})
			require.NoError(t, err)
			kf, err := keyfunc.NewJWKSetJSON(second.JWKS())
			require.NoError(t, err)
			_, err = jwt.Parse(tok, kf.Keyfunc, jwt.WithValidMethods([]string{alg}))
			require.NoError(t, err)
		})
	}
}

func TestOpenRefusesExistingFile(t *testing.T) {
	esPath := keyPath(t)
	open(t, DefaultConfig(), esPath)
	esPEM, err := os.ReadFile(esPath)
	require.NoError(t, err)
	rs := DefaultConfig()
	rs.Algorithm = RS256

	tests := []struct {
		name    string
		cfg     Config
		content []byte
		mode    fs.FileMode
		want    string
	}{
		{name: "wrong algorithm", cfg: rs, content: esPEM, mode: 0o600, want: "does not fit RS256"},
		{name: "readable by others", cfg: DefaultConfig(), content: esPEM, mode: 0o644, want: "lets other users read it"},
		{name: "not pem", cfg: DefaultConfig(), content: []byte("hello"), mode: 0o600, want: "no PEM block"},
		{name: "trailing data", cfg: DefaultConfig(), content: append(append([]byte{}, esPEM...), esPEM...), mode: 0o600, want: "unexpected data after the key"},
		{name: "empty", cfg: DefaultConfig(), content: []byte{}, mode: 0o600, want: "no PEM block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := keyPath(t)
			require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
			require.NoError(t, os.WriteFile(path, tt.content, tt.mode))
			require.NoError(t, os.Chmod(path, tt.mode))
			_, openErr := Open(tt.cfg, path)
			require.ErrorContains(t, openErr, tt.want)
			require.NotContains(t, openErr.Error(), "PRIVATE KEY-----")
			after, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, tt.content, after, "a refused key file is never replaced")
		})
	}

	t.Run("directory", func(t *testing.T) {
		path := keyPath(t)
		require.NoError(t, os.MkdirAll(path, 0o700))
		_, err := Open(DefaultConfig(), path)
		require.ErrorContains(t, err, "not a regular file")
	})
	t.Run("invalid config", func(t *testing.T) {
		c := DefaultConfig()
		c.Algorithm = "HS256"
		path := keyPath(t)
		_, err := Open(c, path)
		require.ErrorContains(t, err, "algorithm: ")
		_, err = os.Stat(path)
		require.ErrorIs(t, err, fs.ErrNotExist, "no key created for an invalid config")
	})
	t.Run("no path", func(t *testing.T) {
		_, err := Open(DefaultConfig(), "")
		require.ErrorContains(t, err, "key file path required")
	})
}

func TestOpenConcurrentCreatesOneKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev-issuer", "key.pem")
	const n = 8
	kids := make([]string, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			iss, err := Open(DefaultConfig(), path)
			errs[i] = err
			if err == nil {
				kids[i] = iss.KeyID()
			}
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, kids[0], kids[i], "every opener uses the same key")
	}
	iss := open(t, DefaultConfig(), path)
	require.Equal(t, kids[0], iss.KeyID(), "the key on disk is the one everyone uses")
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary files left behind")
}

func TestJWKSIsPublicOnly(t *testing.T) {
	for _, alg := range []string{ES256, RS256} {
		t.Run(alg, func(t *testing.T) {
			c := DefaultConfig()
			c.Algorithm = alg
			iss := open(t, c, keyPath(t))
			var set struct {
				Keys []map[string]any `json:"keys"`
			}
			require.NoError(t, json.Unmarshal(iss.JWKS(), &set))
			require.Len(t, set.Keys, 1)
			k := set.Keys[0]
			for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
				require.NotContains(t, k, private)
			}
			require.Equal(t, "sig", k["use"])
			require.Equal(t, alg, k["alg"])
			require.Equal(t, iss.KeyID(), k["kid"])
			if alg == ES256 {
				require.Equal(t, "EC", k["kty"])
				require.Equal(t, "P-256", k["crv"])
			} else {
				require.Equal(t, "RSA", k["kty"])
				require.Equal(t, "AQAB", k["e"])
			}
		})
	}
}

func TestKeyIDIsThumbprint(t *testing.T) {
	// RFC 7638 section 3.1 example key and thumbprint.
	const n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	j := jwkPublic{Kty: "RSA", N: n, E: "AQAB"}
	require.Equal(t, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", thumbprint(j))
}

func TestHandler(t *testing.T) {
	c := DefaultConfig()
	srv := httptest.NewServer(nil)
	defer srv.Close()
	c.Issuer = srv.URL + "/dev"
	iss := open(t, c, keyPath(t))
	mux := http.NewServeMux()
	mux.Handle("/dev/", iss.Handler())
	srv.Config.Handler = mux

	tests := []struct {
		name   string
		method string
		path   string
		status int
	}{
		{name: "discovery", method: http.MethodGet, path: "/dev/.well-known/openid-configuration", status: http.StatusOK},
		{name: "keys", method: http.MethodGet, path: "/dev/keys", status: http.StatusOK},
		{name: "head keys", method: http.MethodHead, path: "/dev/keys", status: http.StatusOK},
		{name: "post keys", method: http.MethodPost, path: "/dev/keys", status: http.StatusMethodNotAllowed},
		{name: "unknown path", method: http.MethodGet, path: "/dev/token", status: http.StatusNotFound},
		{name: "key file name", method: http.MethodGet, path: "/dev/key.pem", status: http.StatusNotFound},
		{name: "root discovery", method: http.MethodGet, path: "/.well-known/openid-configuration", status: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+tt.path, nil)
			require.NoError(t, err)
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, tt.status, resp.StatusCode)
			if tt.status == http.StatusOK {
				require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			}
		})
	}

	t.Run("discovery leads to keys that verify tokens", func(t *testing.T) {
		var doc map[string]any
		getJSON(t, srv, c.Issuer+"/.well-known/openid-configuration", &doc)
		require.Equal(t, c.Issuer, doc["issuer"])
		require.Equal(t, c.Issuer+"/keys", doc["jwks_uri"])
		require.Equal(t, []any{"none"}, doc["token_endpoint_auth_methods_supported"])
		require.Equal(t, []any{ES256}, doc["id_token_signing_alg_values_supported"])
		require.Equal(t, []any{"public"}, doc["subject_types_supported"])
		require.NotEmpty(t, doc["response_types_supported"])
		require.Contains(t, doc["claims_supported"], "scp")

		var raw json.RawMessage
		getJSON(t, srv, doc["jwks_uri"].(string), &raw)
		require.JSONEq(t, string(iss.JWKS()), string(raw))
		kf, err := keyfunc.NewJWKSetJSON(raw)
		require.NoError(t, err)
		tok, err := iss.Mint(MintOptions{ClientID: "agent"})
		require.NoError(t, err)
		_, err = jwt.Parse(tok, kf.Keyfunc, jwt.WithIssuer(c.Issuer), jwt.WithValidMethods([]string{ES256}))
		require.NoError(t, err)
	})
}

func TestHandlerRootIssuer(t *testing.T) {
	c := DefaultConfig()
	c.Issuer = "http://127.0.0.1:9002"
	iss := open(t, c, keyPath(t))
	srv := httptest.NewServer(iss.Handler())
	defer srv.Close()
	var doc map[string]any
	getJSON(t, srv, srv.URL+"/.well-known/openid-configuration", &doc)
	require.Equal(t, "http://127.0.0.1:9002/keys", doc["jwks_uri"])
}

func open(t *testing.T, c Config, path string) *Issuer {
	t.Helper()
	iss, err := Open(c, path)
	require.NoError(t, err)
	require.Equal(t, c.Issuer, iss.Issuer())
	return iss
}

func keyPath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "dev-issuer", "key.pem")
}

func getJSON(t *testing.T, srv *httptest.Server, url string, v any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, v))
}
