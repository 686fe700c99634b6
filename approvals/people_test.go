package approvals

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/identity"
	"github.com/mcpguard/mcpguard/signin"
	"github.com/mcpguard/mcpguard/signin/signintest"
)

var (
	personAlice = signintest.User{ID: "u-alice", Username: "alice", Password: "alice-pw", Email: "alice@example.com", Groups: []string{"dba"}}
	personBob   = signintest.User{ID: "u-bob", Username: "bob", Password: "bob-pw", Email: "bob@example.com", Groups: []string{"dev"}}
)

// peopleEnv is the approvals page with OpenID Connect sign-in against a real provider.
type peopleEnv struct {
	s    *Service
	op   *signintest.Provider
	srv  *httptest.Server
	page string
}

func newPeopleEnv(t *testing.T) *peopleEnv {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	page := "http://" + srv.Listener.Addr().String() + "/approvals"
	op := signintest.Start(t, []signintest.User{personAlice, personBob}, []signintest.Client{{
		ID: "mcpguard-approvals", Secret: "s3cret",
		RedirectURIs: []string{page + "/signin/callback"}, PostLogoutRedirectURIs: []string{page + "/signedout"},
	}})
	secret := t.TempDir() + "/client-secret"
	require.NoError(t, os.WriteFile(secret, []byte("s3cret\n"), 0o600))
	sc := signin.DefaultConfig()
	sc.Issuer, sc.ClientID, sc.ClientSecretFile = op.Issuer, "mcpguard-approvals", secret
	s, _, _, _ := newTestService(t, func(c *Config) { c.PublicURL, c.SignIn = page, sc })
	si, err := signin.New(sc, signin.Options{PublicURL: page})
	require.NoError(t, err)
	WithSignIn(si)(s)
	mux := http.NewServeMux()
	for p, h := range s.Routes(tokens{"dba": dba, "agent": agent}, nil) {
		mux.Handle(p, h)
	}
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	return &peopleEnv{s: s, op: op, srv: srv, page: page}
}

// person is a browser without scripts: a cookie jar, redirects taken one at a time.
type person struct {
	t *testing.T
	c *http.Client
	e *peopleEnv
}

func (e *peopleEnv) person(t *testing.T) *person {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &person{t: t, e: e, c: &http.Client{
		Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (p *person) do(method, u string, form url.Values, hdr ...string) (*http.Response, string) {
	p.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(p.t.Context(), method, u, body)
	require.NoError(p.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := p.c.Do(req)
	require.NoError(p.t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(p.t, err)
	_ = resp.Body.Close()
	return resp, string(b)
}

// signIn opens the page, follows it to the provider, logs in and comes back.
func (p *person) signIn(u signintest.User) string {
	p.t.Helper()
	resp, _ := p.do("GET", p.e.page, nil)
	require.Equal(p.t, http.StatusSeeOther, resp.StatusCode, "the page sends people to sign in")
	require.Equal(p.t, "approvals/signin", resp.Header.Get("Location"))
	resp, _ = p.do("GET", p.e.page+"/signin", nil)
	require.Equal(p.t, http.StatusSeeOther, resp.StatusCode)
	cb, err := p.e.op.Login(p.t.Context(), resp.Header.Get("Location"), u.Username, u.Password)
	require.NoError(p.t, err)
	resp, _ = p.do("GET", cb, nil)
	require.Equal(p.t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(p.t, p.e.page, resp.Header.Get("Location"))
	return p.page()
}

func (p *person) page() string {
	p.t.Helper()
	resp, body := p.do("GET", p.e.page, nil)
	require.Equal(p.t, http.StatusOK, resp.StatusCode)
	return body
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(body)
	require.NotNil(t, m, "forms carry the CSRF token")
	return m[1]
}

func (p *person) decide(id string, form url.Values, hdr ...string) *http.Response {
	p.t.Helper()
	if len(hdr) == 0 {
		hdr = []string{"Origin", p.e.srv.URL}
	}
	resp, _ := p.do("POST", p.e.page+"/"+id+"/decide", form, hdr...)
	return resp
}

func TestPageSignIn(t *testing.T) {
	e := newPeopleEnv(t)
	res, err := e.s.Begin(t.Context(), sqlCall(`{"query":"drop table t"}`))
	require.NoError(t, err)
	id := res.Request.ID
	pending := func(t *testing.T) {
		t.Helper()
		r, err := e.s.Get(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, Pending, r.State)
	}

	alice := e.person(t)
	body := alice.signIn(personAlice)
	require.Contains(t, body, `<strong id="who">alice</strong>`)
	require.Contains(t, body, "req-"+id, "an approver (group dba) sees the request")
	csrf := csrfOf(t, body)
	require.NotContains(t, body, `id="token"`, "no token form with OpenID Connect sign-in")

	t.Run("pasted tokens are not a way in", func(t *testing.T) {
		p := e.person(t)
		resp, _ := p.do("POST", e.page+"/signin", url.Values{"token": {"dba"}})
		require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
		u, _ := url.Parse(e.page)
		p.c.Jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: "dba", Path: "/approvals"}})
		resp, _ = p.do("GET", e.page, nil)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, "a token cookie is ignored")
		resp = p.decide(id, url.Values{"decision": {"approve"}})
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		pending(t)
	})
	t.Run("decision without CSRF token refused", func(t *testing.T) {
		resp := alice.decide(id, url.Values{"decision": {"approve"}})
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		resp = alice.decide(id, url.Values{"decision": {"approve"}, "csrf": {"forged"}})
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		pending(t)
	})
	t.Run("cross-site decision refused even with the token", func(t *testing.T) {
		resp := alice.decide(id, url.Values{"decision": {"approve"}, "csrf": {csrf}}, "Sec-Fetch-Site", "cross-site")
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		pending(t)
	})
	t.Run("another session's token refused", func(t *testing.T) {
		other := e.person(t)
		otherCSRF := csrfOf(t, other.signIn(personAlice))
		require.NotEqual(t, csrf, otherCSRF)
		resp := alice.decide(id, url.Values{"decision": {"approve"}, "csrf": {otherCSRF}})
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		pending(t)
	})
	t.Run("a person outside the approver groups sees nothing and cannot decide", func(t *testing.T) {
		bob := e.person(t)
		b := bob.signIn(personBob)
		require.Contains(t, b, `id="empty"`)
		require.NotContains(t, b, "req-"+id)
		resp := bob.decide(id, url.Values{"decision": {"approve"}, "csrf": {csrfOf(t, b)}})
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		require.Contains(t, resp.Header.Get("Location"), "Not+recorded")
		pending(t)
	})
	t.Run("the requester cannot approve their own call", func(t *testing.T) {
		self := sqlCall(`{"query":"drop table mine"}`)
		self.Requester = identity.Identity{Subject: personAlice.ID, Issuer: e.op.Issuer, Groups: []string{"dba"}}
		own, err := e.s.Begin(t.Context(), self)
		require.NoError(t, err)
		require.NotContains(t, alice.page(), "req-"+own.Request.ID)
		resp := alice.decide(own.Request.ID, url.Values{"decision": {"approve"}, "csrf": {csrf}})
		require.Contains(t, resp.Header.Get("Location"), "requester+cannot+approve")
		r, err := e.s.Get(t.Context(), own.Request.ID)
		require.NoError(t, err)
		require.Equal(t, Pending, r.State)
	})
	t.Run("approve from the page as the signed-in person", func(t *testing.T) {
		resp := alice.decide(id, url.Values{"decision": {"approve"}, "reason": {"ok"}, "csrf": {csrf}})
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		require.Contains(t, resp.Header.Get("Location"), "Approved")
		r, err := e.s.Get(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, Approved, r.State)
		require.Equal(t, personAlice.ID, r.Decision.By.Subject)
		require.Equal(t, e.op.Issuer, r.Decision.By.Issuer)
		require.Equal(t, []string{"dba"}, r.Decision.By.Groups)
	})
	t.Run("the bearer API is unchanged", func(t *testing.T) {
		code, _ := call(t, e.srv, "GET", "/v1/approvals?state=pending", "dba", "")
		require.Equal(t, http.StatusOK, code)
		code, _ = call(t, e.srv, "GET", "/v1/approvals?state=pending", "", "")
		require.Equal(t, http.StatusUnauthorized, code)
	})
	t.Run("sign out", func(t *testing.T) {
		resp, body := alice.do("POST", e.page+"/signout", url.Values{"csrf": {csrf}}, "Origin", e.srv.URL)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, body, `href="`+e.op.Issuer+`/end_session?`, "on to the provider's sign-out")
		resp, _ = alice.do("GET", e.page, nil)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, "signed out: the page asks to sign in again")
		resp = alice.decide(id, url.Values{"decision": {"deny"}, "reason": {"x"}, "csrf": {csrf}})
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		require.Equal(t, "../../approvals", resp.Header.Get("Location"), "no session: nothing recorded")
	})
}

func TestConfigSignIn(t *testing.T) {
	c := DefaultConfig()
	c.SignIn.Issuer, c.SignIn.ClientID = "https://example.okta.com", "0oa1"
	c.PublicURL = "https://ops.example/approvals"
	require.NoError(t, c.Validate())
	c.PublicURL = "http://ops.example/approvals"
	require.ErrorContains(t, c.Validate(), "public_url: \"http://ops.example/approvals\" must be https when signin is configured")
	c.PublicURL = "http://127.0.0.1:9002/approvals"
	require.NoError(t, c.Validate())
	c.SignIn.ClientID, c.SignIn.SessionTTL = "", 0
	err := c.Validate()
	require.ErrorContains(t, err, "signin.client_id: required")
	require.ErrorContains(t, err, "signin.session_ttl: must be between")
}
