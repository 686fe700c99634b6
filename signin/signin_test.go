package signin

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/mcpguard/mcpguard/signin/signintest"
)

var (
	alice = signintest.User{ID: "u-alice", Username: "alice", Password: "alice-pw", Email: "alice@example.com", Groups: []string{"mcp-approvers", "dba"}}
	bob   = signintest.User{ID: "u-bob", Username: "bob", Password: "bob-pw", Email: "bob@example.com"}
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a relying party (the SignIn under test on an HTTP server) and a real provider.
type env struct {
	s     *SignIn
	op    *signintest.Provider
	rp    *httptest.Server
	app   string // the public URL
	clock *clock
}

func newEnv(t testing.TB, edit func(*Config)) *env {
	t.Helper()
	rp := httptest.NewUnstartedServer(nil)
	app := "http://" + rp.Listener.Addr().String() + "/app"
	op := signintest.Start(t, []signintest.User{alice, bob}, []signintest.Client{
		{ID: "mcpguard", Secret: "s3cret", RedirectURIs: []string{app + "/signin/callback"}, PostLogoutRedirectURIs: []string{app + "/signedout"}},
		{ID: "other-app", Secret: "other", RedirectURIs: []string{"http://127.0.0.1:1/cb"}},
	})
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("s3cret\n"), 0o600))
	cfg := DefaultConfig()
	cfg.Issuer, cfg.ClientID, cfg.ClientSecretFile = op.Issuer, "mcpguard", secret
	if edit != nil {
		edit(&cfg)
	}
	c := &clock{t: time.Now()}
	s, err := New(cfg, Options{PublicURL: app, Now: c.Now})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /app/signin", s.Start)
	mux.HandleFunc("GET /app/signin/callback", s.Callback)
	mux.HandleFunc("POST /app/signout", s.SignOut)
	mux.HandleFunc("GET /app/signedout", s.SignedOut)
	mux.Handle("GET /app", s.Require(func(w http.ResponseWriter, _ *http.Request, sess Session) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"sub": sess.Identity.Subject, "iss": sess.Identity.Issuer,
			"groups": sess.Identity.Groups, "name": sess.Name, "csrf": s.CSRFToken(sess),
		})
	}))
	rp.Config.Handler = mux
	rp.Start()
	t.Cleanup(rp.Close)
	return &env{s: s, op: op, rp: rp, app: app, clock: c}
}

// browser is a cookie-keeping client that does not follow redirects.
func browser(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{
		Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func do(t testing.TB, c *http.Client, method, u string, form url.Values, hdr ...string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u, body)
	require.NoError(t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp, string(b)
}

// startFlow opens the sign-in and returns the provider's authorization URL.
func (e *env) startFlow(t testing.TB, c *http.Client) string {
	t.Helper()
	resp, _ := do(t, c, "GET", e.app+"/signin", nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	loc := resp.Header.Get("Location")
	require.True(t, strings.HasPrefix(loc, e.op.Issuer+"/"), loc)
	return loc
}

// signIn runs the whole flow as user and returns the page's view of the session.
func (e *env) signIn(t testing.TB, c *http.Client, u signintest.User) map[string]any {
	t.Helper()
	cb, err := e.op.Login(t.Context(), e.startFlow(t, c), u.Username, u.Password)
	require.NoError(t, err)
	resp, body := do(t, c, "GET", cb, nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	require.Equal(t, e.app, resp.Header.Get("Location"))
	return e.me(t, c)
}

func (e *env) me(t testing.TB, c *http.Client) map[string]any {
	t.Helper()
	resp, body := do(t, c, "GET", e.app, nil)
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &m))
	return m
}

func (e *env) cookie(t testing.TB, c *http.Client, name string) *http.Cookie {
	t.Helper()
	u, err := url.Parse(e.app)
	require.NoError(t, err)
	for _, k := range c.Jar.Cookies(u) {
		if k.Name == name {
			return k
		}
	}
	return nil
}

func TestSignIn(t *testing.T) {
	e := newEnv(t, nil)
	c := browser(t)
	require.Nil(t, e.me(t, c), "no session before signing in")

	auth, err := url.Parse(e.startFlow(t, c))
	require.NoError(t, err)
	q := auth.Query()
	require.Equal(t, "S256", q.Get("code_challenge_method"))
	require.NotEmpty(t, q.Get("code_challenge"))
	require.NotEmpty(t, q.Get("state"))
	require.NotEmpty(t, q.Get("nonce"))
	require.Equal(t, e.app+"/signin/callback", q.Get("redirect_uri"))

	me := e.signIn(t, c, alice)
	require.Equal(t, "u-alice", me["sub"])
	require.Equal(t, e.op.Issuer, me["iss"])
	require.Equal(t, []any{"mcp-approvers", "dba"}, me["groups"])
	require.Equal(t, "alice", me["name"])

	// The session cookie as the browser got it.
	resp, _ := do(t, browser(t), "GET", e.app+"/signin", nil)
	flow := resp.Cookies()[0]
	require.Equal(t, "mcpguard_signin", flow.Name)
	require.True(t, flow.HttpOnly)
	require.Equal(t, http.SameSiteLaxMode, flow.SameSite)
	sc := e.cookie(t, c, "mcpguard_session")
	require.NotNil(t, sc)
	require.NotContains(t, sc.Value, "eyJ", "nothing readable in the cookie (sealed)")
	require.NotContains(t, sc.Value, "alice")
	require.Nil(t, e.cookie(t, c, "mcpguard_signin"), "the flow cookie is gone after the callback")
}

func TestSignInCookieAttributes(t *testing.T) {
	e := newEnv(t, nil)
	c := browser(t)
	cb, err := e.op.Login(t.Context(), e.startFlow(t, c), alice.Username, alice.Password)
	require.NoError(t, err)
	resp, _ := do(t, c, "GET", cb, nil)
	var sess *http.Cookie
	for _, k := range resp.Cookies() {
		if k.Name == "mcpguard_session" {
			sess = k
		}
	}
	require.NotNil(t, sess)
	require.True(t, sess.HttpOnly)
	require.Equal(t, http.SameSiteLaxMode, sess.SameSite)
	require.Equal(t, "/", sess.Path)
	require.False(t, sess.Secure, "plain http on loopback only")
	require.InDelta(t, (8 * time.Hour).Seconds(), sess.MaxAge, 5, "bounded by session_ttl")

	// Over https the cookies are Secure and __Host- prefixed.
	cfg := DefaultConfig()
	cfg.Issuer, cfg.ClientID = "https://idp.example", "x"
	s, err := New(cfg, Options{PublicURL: "https://ops.example/gw/approvals"})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	s.setCookie(rec, s.sessionName, "v", 60)
	got := rec.Result().Cookies()[0]
	require.Equal(t, "__Host-mcpguard_session", got.Name)
	require.True(t, got.Secure)
	require.Equal(t, "/", got.Path)
	require.Empty(t, got.Domain)
	require.Equal(t, "https://ops.example/gw/approvals/signin/callback", s.callback)
}

func TestCallbackFailsClosed(t *testing.T) {
	e := newEnv(t, nil)
	noSession := func(t *testing.T, c *http.Client) {
		t.Helper()
		require.Nil(t, e.cookie(t, c, "mcpguard_session"))
		require.Nil(t, e.me(t, c))
	}
	// login runs a real flow up to the callback URL the provider redirects to.
	login := func(t *testing.T, c *http.Client) *url.URL {
		t.Helper()
		cb, err := e.op.Login(t.Context(), e.startFlow(t, c), alice.Username, alice.Password)
		require.NoError(t, err)
		u, err := url.Parse(cb)
		require.NoError(t, err)
		return u
	}
	// reflow rewrites the browser's sealed flow cookie (as only someone with the key could).
	reflow := func(t *testing.T, c *http.Client, edit func(*flowV1)) {
		t.Helper()
		k := e.cookie(t, c, e.s.flowName)
		require.NotNil(t, k)
		var f flowV1
		require.NoError(t, e.s.seal.open(e.s.flowName, k.Value, &f))
		edit(&f)
		v, err := e.s.seal.seal(e.s.flowName, f)
		require.NoError(t, err)
		u, _ := url.Parse(e.app)
		c.Jar.SetCookies(u, []*http.Cookie{{Name: e.s.flowName, Value: v, Path: "/"}})
	}

	t.Run("state mismatch", func(t *testing.T) {
		c := browser(t)
		cb := login(t, c)
		q := cb.Query()
		q.Set("state", q.Get("state")+"x")
		cb.RawQuery = q.Encode()
		resp, _ := do(t, c, "GET", cb.String(), nil)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		noSession(t, c)
	})
	t.Run("no flow cookie (callback from another browser)", func(t *testing.T) {
		cb := login(t, browser(t))
		c := browser(t)
		resp, _ := do(t, c, "GET", cb.String(), nil)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		noSession(t, c)
	})
	t.Run("replayed callback", func(t *testing.T) {
		c := browser(t)
		cb := login(t, c)
		resp, _ := do(t, c, "GET", cb.String(), nil)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		c2 := browser(t)
		resp, _ = do(t, c, "GET", cb.String(), nil) // flow cookie consumed
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		noSession(t, c2)
	})
	t.Run("nonce mismatch", func(t *testing.T) {
		e.op.ForgeNonce("not-the-nonce-we-sent")
		defer e.op.ForgeNonce("")
		c := browser(t)
		cb := login(t, c)
		resp, _ := do(t, c, "GET", cb.String(), nil)
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		noSession(t, c)
	})
	t.Run("PKCE verifier missing", func(t *testing.T) {
		c := browser(t)
		cb := login(t, c)
		reflow(t, c, func(f *flowV1) { f.Verifier = "" })
		resp, _ := do(t, c, "GET", cb.String(), nil)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		noSession(t, c)
	})
	t.Run("PKCE verifier wrong: the provider refuses the code", func(t *testing.T) {
		c := browser(t)
		cb := login(t, c)
		reflow(t, c, func(f *flowV1) { f.Verifier = oauth2.GenerateVerifier() })
		resp, _ := do(t, c, "GET", cb.String(), nil)
		require.Equal(t, http.StatusBadGateway, resp.StatusCode)
		noSession(t, c)
	})
	t.Run("flow expired", func(t *testing.T) {
		c := browser(t)
		cb := login(t, c)
		reflow(t, c, func(f *flowV1) { f.EXP = e.clock.Now().Add(-time.Second).Unix() })
		resp, _ := do(t, c, "GET", cb.String(), nil)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		noSession(t, c)
	})
	t.Run("provider error", func(t *testing.T) {
		c := browser(t)
		cb := login(t, c)
		q := cb.Query()
		q.Del("code")
		q.Set("error", "access_denied")
		cb.RawQuery = q.Encode()
		resp, _ := do(t, c, "GET", cb.String(), nil)
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		noSession(t, c)
	})
	t.Run("wrong password never reaches the callback", func(t *testing.T) {
		_, err := e.op.Login(t.Context(), e.startFlow(t, browser(t)), alice.Username, "guess")
		require.Error(t, err)
	})
}

// TestVerifyRefusesOtherAudience: an ID token the same provider issued to another client
// is refused, as are tokens with another nonce.
func TestVerifyRefusesOtherAudience(t *testing.T) {
	e := newEnv(t, nil)
	op, err := e.s.discover(t.Context())
	require.NoError(t, err)
	// Sign in to "other-app" at the same provider and redeem its code as that client.
	other := op.oauth
	other.ClientID, other.ClientSecret, other.RedirectURL = "other-app", "other", "http://127.0.0.1:1/cb"
	verifier := oauth2.GenerateVerifier()
	cb, err := e.op.Login(t.Context(), other.AuthCodeURL("st", oauth2.SetAuthURLParam("nonce", "n1"), oauth2.S256ChallengeOption(verifier)),
		alice.Username, alice.Password)
	require.NoError(t, err)
	u, err := url.Parse(cb)
	require.NoError(t, err)
	tok, err := other.Exchange(t.Context(), u.Query().Get("code"), oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	raw, _ := tok.Extra("id_token").(string)
	require.NotEmpty(t, raw)

	_, err = e.s.verify(t.Context(), op, raw, "n1", tok.AccessToken)
	require.ErrorContains(t, err, "audience")

	// The same token is fine for a relying party that is other-app (the check is real).
	cfg := e.s.cfg
	cfg.ClientID = "other-app"
	s2, err := New(cfg, Options{PublicURL: e.app})
	require.NoError(t, err)
	p2, err := s2.discover(t.Context())
	require.NoError(t, err)
	sess, err := s2.verify(t.Context(), p2, raw, "n1", tok.AccessToken)
	require.NoError(t, err)
	require.Equal(t, "u-alice", sess.Identity.Subject)
	_, err = s2.verify(t.Context(), p2, raw, "n2", tok.AccessToken)
	require.ErrorContains(t, err, "nonce")
	_, err = s2.verify(t.Context(), p2, raw, "n1", "another-access-token")
	require.ErrorContains(t, err, "at_hash")
}

func TestSessionCookie(t *testing.T) {
	key := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(key, []byte(strings.Repeat("k", 40)), 0o600))
	e := newEnv(t, func(c *Config) { c.CookieKeyFile = key })
	c := browser(t)
	e.signIn(t, c, alice)
	sc := e.cookie(t, c, "mcpguard_session")
	require.NotNil(t, sc)
	_, err := e.s.open(sc.Value)
	require.NoError(t, err)
	// variant is the same service (same key) with cfg edited.
	variant := func(t *testing.T, edit func(*Config)) *SignIn {
		t.Helper()
		cfg := e.s.cfg
		edit(&cfg)
		s, err := New(cfg, Options{PublicURL: e.app, Now: e.clock.Now})
		require.NoError(t, err)
		return s
	}
	_, err = variant(t, func(*Config) {}).open(sc.Value)
	require.NoError(t, err, "the same key opens it (the variants below are meaningful)")

	t.Run("tampered", func(t *testing.T) {
		raw, err := base64.RawURLEncoding.DecodeString(sc.Value)
		require.NoError(t, err)
		for _, pos := range []int{0, 12, len(raw) / 2, len(raw) - 1} { // nonce, ciphertext, tag
			b := bytes.Clone(raw)
			b[pos] ^= 0x01
			_, err := e.s.open(base64.RawURLEncoding.EncodeToString(b))
			require.Error(t, err, "byte %d changed", pos)
		}
		_, err = e.s.open(sc.Value[:len(sc.Value)-4])
		require.Error(t, err, "truncated")
		_, err = e.s.open(sc.Value + "AAAA")
		require.Error(t, err, "extended")
	})
	t.Run("sealed for another cookie", func(t *testing.T) {
		var f flowV1
		require.Error(t, e.s.seal.open(e.s.flowName, sc.Value, &f))
	})
	t.Run("another key", func(t *testing.T) {
		other := newEnv(t, nil)
		_, err := other.s.open(sc.Value)
		require.Error(t, err)
	})
	t.Run("expired", func(t *testing.T) {
		e.clock.Add(8*time.Hour + time.Second)
		defer e.clock.Add(-(8*time.Hour + time.Second))
		_, err := e.s.open(sc.Value)
		require.Error(t, err)
		require.Nil(t, e.me(t, c), "the page no longer sees a session")
	})
	t.Run("session_ttl shortened", func(t *testing.T) {
		_, err := variant(t, func(c *Config) { c.SessionTTL = time.Hour }).open(sc.Value)
		require.Error(t, err)
	})
	t.Run("issuer changed", func(t *testing.T) {
		_, err := variant(t, func(c *Config) { c.Issuer = "https://idp.example" }).open(sc.Value)
		require.Error(t, err)
	})
}

func TestCookieKeyFileSharedByReplicas(t *testing.T) {
	key := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(key, []byte(strings.Repeat("k", 40)), 0o600))
	e := newEnv(t, func(c *Config) { c.CookieKeyFile = key })
	c := browser(t)
	e.signIn(t, c, alice)
	sc := e.cookie(t, c, "mcpguard_session")
	replica, err := New(e.s.cfg, Options{PublicURL: e.app})
	require.NoError(t, err)
	sess, err := replica.open(sc.Value)
	require.NoError(t, err)
	require.Equal(t, "u-alice", sess.Identity.Subject)

	short := filepath.Join(t.TempDir(), "short")
	require.NoError(t, os.WriteFile(short, []byte("too short\n"), 0o600))
	cfg := e.s.cfg
	cfg.CookieKeyFile = short
	_, err = New(cfg, Options{PublicURL: e.app})
	require.ErrorContains(t, err, "at least 32")
	require.Len(t, cfg.CheckFiles(), 1)
}

func TestSignOut(t *testing.T) {
	e := newEnv(t, nil)
	c := browser(t)
	me := e.signIn(t, c, alice)
	csrf, _ := me["csrf"].(string)
	require.NotEmpty(t, csrf)

	resp, _ := do(t, c, "POST", e.app+"/signout", url.Values{}, "Origin", e.rp.URL)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "no CSRF token")
	resp, _ = do(t, c, "POST", e.app+"/signout", url.Values{"csrf": {csrf}}, "Sec-Fetch-Site", "cross-site")
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "cross-site")
	require.NotNil(t, e.me(t, c), "still signed in")

	resp, body := do(t, c, "POST", e.app+"/signout", url.Values{"csrf": {csrf}}, "Origin", e.rp.URL)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Nil(t, e.me(t, c), "signed out here")
	m := regexp.MustCompile(`id="signout-continue" href="([^"]+)"`).FindStringSubmatch(body)
	require.NotNil(t, m, body)
	require.Contains(t, body, `<meta http-equiv="refresh" content="0;url=`+m[1]+`">`, "moves on without a click")
	end, err := url.Parse(html.UnescapeString(m[1]))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(end.String(), e.op.Issuer+"/end_session"), end.String())
	require.Equal(t, e.app+"/signedout", end.Query().Get("post_logout_redirect_uri"))
	require.NotEmpty(t, end.Query().Get("id_token_hint"))

	// The provider ends its session and sends the browser back.
	resp, _ = do(t, c, "GET", end.String(), nil)
	require.Equal(t, http.StatusFound, resp.StatusCode)
	require.Equal(t, e.app+"/signedout", resp.Header.Get("Location"))
	require.EqualValues(t, 1, e.op.EndSessions())
	resp, body = do(t, c, "GET", e.app+"/signedout", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, "You have signed out.")
	resp, _ = do(t, c, "GET", e.app, nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "the page asks to sign in again")
	require.Equal(t, e.app+"/signin", resp.Header.Get("Location"))
}

func TestCSRFTokenBoundToSession(t *testing.T) {
	e := newEnv(t, nil)
	a, b := browser(t), browser(t)
	ma, mb := e.signIn(t, a, alice), e.signIn(t, b, alice)
	require.NotEqual(t, ma["csrf"], mb["csrf"], "each sign-in has its own token")
	resp, _ := do(t, a, "POST", e.app+"/signout", url.Values{"csrf": {mb["csrf"].(string)}}, "Origin", e.rp.URL)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
}

func TestProviderUnreachableAtStart(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Issuer, cfg.ClientID = "http://127.0.0.1:1", "x"
	s, err := New(cfg, Options{PublicURL: "http://127.0.0.1:9/approvals"})
	require.NoError(t, err, "no network at construction")
	rec := httptest.NewRecorder()
	s.Start(rec, httptest.NewRequest("GET", "/approvals/signin", nil))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Empty(t, rec.Result().Cookies())
}

func TestReturnPath(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "",
		"/gw/recordings/x?y=1":  "/gw/recordings/x?y=1",
		"//evil.example/x":      "",
		"/\\evil.example":       "",
		"https://evil.example/": "",
		"relative":              "",
		"/a\r\nSet-Cookie: x":   "",
	} {
		require.Equal(t, want, returnPath(in), in)
	}
	e := newEnv(t, nil)
	c := browser(t)
	resp, _ := do(t, c, "GET", e.app+"/signin?return="+url.QueryEscape("/gw/recordings/r1"), nil)
	cb, err := e.op.Login(t.Context(), resp.Header.Get("Location"), alice.Username, alice.Password)
	require.NoError(t, err)
	resp, _ = do(t, c, "GET", cb, nil)
	require.Equal(t, e.rp.URL+"/gw/recordings/r1", resp.Header.Get("Location"))
}

func TestGroupsClaim(t *testing.T) {
	for in, ok := range map[string]bool{
		``: true, `null`: true, `["a","b"]`: true, `"a"`: true,
		`[1]`: false, `{"a":1}`: false, `["a",""]`: false, `["a\u0000"]`: false, `true`: false,
	} {
		_, err := groupsOf(json.RawMessage(in))
		require.Equal(t, ok, err == nil, in)
	}
	// A custom claim name is read from the verified token.
	e := newEnv(t, func(c *Config) { c.GroupsClaim = "roles" })
	me := e.signIn(t, browser(t), alice)
	require.Nil(t, me["groups"], "the provider sends no roles claim: no groups")
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.Issuer, ok.ClientID = "https://example.okta.com", "0oa1"
	require.NoError(t, ok.Validate())
	require.NoError(t, DefaultConfig().Validate(), "off by default")
	cases := map[string]struct {
		edit func(*Config)
		want string
	}{
		"http issuer":        {func(c *Config) { c.Issuer = "http://idp.example" }, "issuer: "},
		"no client":          {func(c *Config) { c.ClientID = "" }, "client_id: required"},
		"no openid":          {func(c *Config) { c.Scopes = []string{"profile"} }, "scopes: must include openid"},
		"bad scope":          {func(c *Config) { c.Scopes = []string{"openid", "a b"} }, "scopes[1]"},
		"ttl too long":       {func(c *Config) { c.SessionTTL = 48 * time.Hour }, "session_ttl"},
		"no groups claim":    {func(c *Config) { c.GroupsClaim = "" }, "groups_claim: required"},
		"client without iss": {func(c *Config) { *c = DefaultConfig(); c.ClientID = "x" }, "issuer: required"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			require.ErrorContains(t, c.Validate(), tc.want)
		})
	}
	loop := ok
	loop.Issuer = "http://127.0.0.1:8080"
	require.NoError(t, loop.Validate(), "plain http on loopback for development")
	_, err := New(ok, Options{PublicURL: "http://ops.example/approvals"})
	require.ErrorContains(t, err, "must be https")
}

// TestSessionCookieSize: the ID token is left out of a session that would not fit a
// cookie, and a person whose groups alone do not fit is refused.
func TestSessionCookieSize(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Issuer, cfg.ClientID = "https://idp.example", "x"
	s, err := New(cfg, Options{PublicURL: "https://ops.example/approvals"})
	require.NoError(t, err)
	now := time.Now()
	sess := Session{ID: "sid", IssuedAt: now, idToken: strings.Repeat("t", 2500)}
	sess.Identity.Subject, sess.Identity.Issuer, sess.Identity.ExpiresAt = "u", cfg.Issuer, now.Add(time.Hour)
	for i := range 40 {
		sess.Identity.Groups = append(sess.Identity.Groups, fmt.Sprintf("group-%02d-0123456789", i))
	}
	v, err := s.sealSession(sess)
	require.NoError(t, err)
	require.LessOrEqual(t, len(v), maxCookie)
	got, err := s.open(v)
	require.NoError(t, err)
	require.Empty(t, got.idToken, "the ID token gave way")
	require.Len(t, got.Identity.Groups, 40, "the groups did not")

	for i := range 150 {
		sess.Identity.Groups = append(sess.Identity.Groups, fmt.Sprintf("more-%03d-0123456789", i))
	}
	_, err = s.sealSession(sess)
	require.ErrorContains(t, err, "too large")
}

// BenchmarkSignIn is the sign-in round trip without a browser: start → provider (login form
// posted) → callback (code exchange, ID token verification, session cookie) → the page.
func BenchmarkSignIn(b *testing.B) {
	e := newEnv(b, nil)
	for b.Loop() {
		e.signIn(b, browser(b), alice)
	}
}
