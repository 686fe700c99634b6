package authz

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mcpguard/mcpguard/authz/authztest"
)

func allowed(t *testing.T, e *env, tok string, ext map[string]string) bool {
	t.Helper()
	resp, err := e.client.Check(t.Context(), request("Bearer "+tok, nil, ext))
	require.NoError(t, err)
	return resp.GetStatus().GetCode() == int32(codes.OK)
}

func TestUnknownKIDRefresh(t *testing.T) {
	e := newEnv(t, nil)
	before := e.iss.Fetches()
	require.NoError(t, e.iss.Rotate())
	require.True(t, allowed(t, e, e.iss.Mint(e.iss.Claims(testAudience, testScope)), nil), "new kid is fetched and accepted")
	require.Equal(t, before+1, e.iss.Fetches())
	require.True(t, allowed(t, e, e.iss.Mint(e.iss.Claims(testAudience, testScope)), nil))
	require.Equal(t, before+1, e.iss.Fetches(), "known kid needs no fetch")
}

func TestUnknownKIDFloodIsRateLimited(t *testing.T) {
	e := newEnv(t, nil)
	before := e.iss.Fetches()
	claims := e.iss.Claims(testAudience, testScope)
	signed := e.iss.Mint(claims)
	rest := signed[strings.Index(signed, "."):]
	// The kid is checked before the signature, so a spliced header is enough (and cheap to make).
	bogus := func(w, i int) string { return b64(fmt.Sprintf(`{"alg":"RS256","kid":"bogus-%d-%d"}`, w, i)) + rest }
	var wg sync.WaitGroup
	var mu sync.Mutex
	denied := 0
	for w := range 20 {
		wg.Go(func() {
			for i := range 50 {
				resp, err := e.client.Check(t.Context(), request("Bearer "+bogus(w, i), nil, nil))
				if err == nil && resp.GetStatus().GetCode() == int32(codes.Unauthenticated) &&
					strings.Contains(resp.GetDeniedResponse().GetBody(), "unknown signing key") {
					mu.Lock()
					denied++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	require.Equal(t, 1000, denied)
	require.LessOrEqual(t, e.iss.Fetches()-before, 1, "1,000 unknown kids cause at most one fetch per unknown_kid_min_interval")
	require.True(t, allowed(t, e, e.iss.Mint(claims), nil), "known keys still work")
}

func TestJWKSDownAtStart(t *testing.T) {
	iss := authztest.NewIssuer(t)
	iss.SetDown(true)
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	cfg := testConfig(iss)
	v, err := NewVerifier(t.Context(), cfg, log, prometheus.NewRegistry())
	require.NoError(t, err, "an unreachable IdP does not stop the service")
	t.Cleanup(v.Close)
	err = v.Ready()
	require.Error(t, err)
	require.Contains(t, err.Error(), iss.URL)
	require.Contains(t, logs.String(), "jwks unavailable; issuer not ready")
	require.Contains(t, logs.String(), iss.URL)
	client := serve(t, NewServer(v, cfg, log, prometheus.NewRegistry()))
	tok := iss.Mint(iss.Claims(testAudience, testScope))
	_, err = client.Check(t.Context(), request("Bearer "+tok, nil, nil))
	require.Equal(t, codes.Unavailable, status.Code(err), "no keys is an internal fault, Envoy fails closed")

	iss.SetDown(false)
	require.Eventually(t, func() bool { return v.Ready() == nil }, 10*time.Second, 10*time.Millisecond)
	resp, err := client.Check(t.Context(), request("Bearer "+tok, nil, nil))
	require.NoError(t, err)
	require.Equal(t, int32(codes.OK), resp.GetStatus().GetCode())
	require.Contains(t, logs.String(), "jwks loaded")
}

func TestJWKSDownLater(t *testing.T) {
	e := newEnv(t, nil)
	require.NoError(t, e.v.Ready())
	e.iss.SetDown(true)
	claims := e.iss.Claims(testAudience, testScope)
	// An unknown kid forces a refresh while the IdP is down; it fails and the loaded keys stay.
	require.False(t, allowed(t, e, e.iss.MintWithKID("bogus", claims), nil))
	require.Positive(t, value(t, e.v.met.refreshes.WithLabelValues(e.iss.URL, "failure")))
	require.NoError(t, e.v.Ready(), "loaded keys keep the issuer ready")
	require.True(t, allowed(t, e, e.iss.Mint(claims), nil), "a never-seen token verifies with cached keys")
	require.True(t, allowed(t, e, e.iss.MintES256(claims), nil))
	require.Contains(t, e.logs.String(), "keeping the keys already loaded")
}

func TestDiscovery(t *testing.T) {
	cases := []struct {
		name string
		opts []authztest.Option
		jwks bool
	}{
		{name: "openid configuration"},
		{name: "oauth authorization server fallback", opts: []authztest.Option{authztest.WithoutOpenIDConfiguration()}},
		{name: "explicit jwks_url", jwks: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			iss := authztest.NewIssuer(t, tc.opts...)
			cfg := testConfig(iss)
			if tc.jwks {
				cfg.Issuers[0].JWKSURL = iss.JWKSURL()
			}
			v, err := NewVerifier(t.Context(), cfg, slog.New(slog.DiscardHandler), nil)
			require.NoError(t, err)
			t.Cleanup(v.Close)
			require.NoError(t, v.Ready())
			_, err = v.verify(t.Context(), iss.Mint(iss.Claims(testAudience, testScope)))
			require.NoError(t, err)
		})
	}
}

func TestDiscoveryRejectsMismatchedIssuer(t *testing.T) {
	iss := authztest.NewIssuer(t)
	cfg := testConfig(nil)
	cfg.Issuers = []IssuerConfig{{Issuer: iss.URL + "/"}} // discovery answers with iss.URL: not exact
	v, err := NewVerifier(t.Context(), cfg, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	t.Cleanup(v.Close)
	require.ErrorContains(t, v.Ready(), "does not match")
}

func TestStaticIssuer(t *testing.T) {
	iss := authztest.NewIssuer(t)
	cfg := testConfig(nil)
	v, err := NewVerifier(t.Context(), cfg, slog.New(slog.DiscardHandler), nil, WithStaticIssuer(iss.URL, iss.JWKS()))
	require.NoError(t, err)
	t.Cleanup(v.Close)
	require.NoError(t, v.Ready())
	_, err = v.verify(t.Context(), iss.Mint(iss.Claims(testAudience, testScope)))
	require.NoError(t, err)
	require.Zero(t, iss.Fetches(), "static keys need no HTTP")
	require.NoError(t, iss.Rotate())
	_, err = v.verify(t.Context(), iss.Mint(iss.Claims(testAudience, testScope)))
	require.ErrorContains(t, err, "unknown signing key")
}

func TestNewVerifierErrors(t *testing.T) {
	iss := authztest.NewIssuer(t)
	cases := []struct {
		name string
		cfg  Config
		opts []Option
		want string
	}{
		{name: "no issuer", cfg: testConfig(nil), want: "no issuer"},
		{name: "invalid config", cfg: func() Config { c := testConfig(nil); c.Algorithms = []string{"HS256"}; return c }(), want: "algorithms[0]: HS256 not allowed"},
		{name: "bad static jwks", cfg: testConfig(nil), opts: []Option{WithStaticIssuer(iss.URL, []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`))}, want: "no usable signature keys"},
		{name: "static duplicates config", cfg: testConfig(iss), opts: []Option{WithStaticIssuer(iss.URL, iss.JWKS())}, want: "configured twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVerifier(t.Context(), tc.cfg, slog.New(slog.DiscardHandler), nil, tc.opts...)
			require.ErrorContains(t, err, tc.want)
			require.Nil(t, v)
		})
	}
}

func TestParseJWKSSkipsUnusableKeys(t *testing.T) {
	iss := authztest.NewIssuer(t)
	good := strings.TrimSuffix(strings.TrimPrefix(string(iss.JWKS()), `{"keys":[`), `]}`)
	raw := `{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"hmac"},{"kty":"RSA","use":"enc","kid":"enc","n":"AQAB","e":"AQAB"},` + good + `]}`
	kf, err := parseJWKS([]byte(raw))
	require.NoError(t, err)
	keys, err := kf.Storage().KeyReadAll(t.Context())
	require.NoError(t, err)
	require.Len(t, keys, 2, "only the RSA and EC signature keys remain")
	for _, bad := range []string{``, `{}`, `{"keys":[]}`, `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`, `[`} {
		_, err := parseJWKS([]byte(bad))
		require.Error(t, err, bad)
	}
}

func TestCacheNeverOutlivesExp(t *testing.T) {
	clk := &clock{t: time.Now()}
	e := newEnv(t, func(c *Config) { c.Leeway = 0 }, withClock(clk.now))
	c := e.iss.Claims(testAudience, testScope)
	c["iat"], c["exp"] = clk.now().Unix(), clk.now().Add(60*time.Second).Unix()
	tok := e.iss.Mint(c)
	hits := e.v.met.cache.WithLabelValues("hit")
	require.True(t, allowed(t, e, tok, nil))
	require.True(t, allowed(t, e, tok, nil))
	require.InDelta(t, 1.0, value(t, hits), 1e-9, "second check is served from the cache")
	require.False(t, allowed(t, e, tok, map[string]string{"audience": "https://b.example/mcp"}),
		"a cache hit still runs the route's audience check")
	require.InDelta(t, 2.0, value(t, hits), 1e-9)
	clk.advance(61 * time.Second)
	resp, err := e.client.Check(t.Context(), request("Bearer "+tok, nil, nil))
	require.NoError(t, err)
	require.Contains(t, resp.GetDeniedResponse().GetBody(), "token expired")
	require.InDelta(t, 2.0, value(t, hits), 1e-9, "no hit past exp")
}

func TestCacheBounded(t *testing.T) {
	now := time.Now()
	c := newCache(4)
	for i := range 10 {
		c.put([32]byte{byte(i)}, &verified{}, now) // zero ExpiresAt: already expired
	}
	require.LessOrEqual(t, c.len(), 4)
	live := func(i int) *verified {
		v := &verified{}
		v.id.ExpiresAt = now.Add(time.Duration(i+1) * time.Minute)
		return v
	}
	for i := range 10 {
		c.put([32]byte{byte(i), 1}, live(i), now)
	}
	require.Equal(t, 4, c.len())
	require.Nil(t, c.get([32]byte{9}, now), "expired entries are never served")
	off := newCache(0)
	off.put([32]byte{1}, live(1), now)
	require.Nil(t, off.get([32]byte{1}, now))
}

func TestCloseStopsRefresh(t *testing.T) {
	iss := authztest.NewIssuer(t)
	iss.SetDown(true)
	v, err := NewVerifier(t.Context(), testConfig(iss), slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	v.Close()
	v.Close()
	n := iss.Fetches()
	time.Sleep(100 * time.Millisecond) // five retry intervals: none may happen after Close
	require.Equal(t, n, iss.Fetches())
}
