// Package signintest runs a real OpenID provider on 127.0.0.1 for tests: zitadel/oidc's
// provider package (discovery, authorization with PKCE, token, keys, end_session) over the
// in-memory storage of zitadel/oidc's example server, with users that carry groups and a
// plain HTML login form a browser (or [Provider.Login]) fills in.
package signintest

import (
	"context"
	"crypto/rand"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// User is a person who can sign in at the provider.
type User struct {
	ID, Username, Password, Email string
	Groups                        []string
}

// Client is a registered relying party (a confidential web client, client_secret_basic
// or _post).
type Client struct {
	ID, Secret             string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
}

// Provider is a running OpenID provider.
type Provider struct {
	// Issuer is http://127.0.0.1:PORT.
	Issuer string
	srv    *httptest.Server
	st     *store
}

// Start runs a provider with the given users and clients until the test ends.
func Start(t testing.TB, users []User, clients []Client) *Provider {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	st := &store{users: map[string]User{}, clients: map[string]*client{}}
	for _, u := range users {
		st.users[u.ID] = u
	}
	for _, c := range clients {
		st.clients[c.ID] = &client{Client: c}
	}
	st.Storage = storage.NewStorageWithClients(userStore{st}, nil)
	var key [32]byte
	_, _ = rand.Read(key[:])
	p, err := op.NewProvider(&op.Config{
		CryptoKey: key, CodeMethodS256: true, AuthMethodPost: true,
		SupportedUILocales: []language.Tag{language.English},
	}, st, op.StaticIssuer(issuer), op.WithAllowInsecure())
	if err != nil {
		t.Fatalf("openid provider: %v", err)
	}
	login := op.NewIssuerInterceptor(p.IssuerFromRequest)
	callback := op.AuthCallbackURL(p)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		renderLogin(w, r.URL.Query().Get("authRequestID"), "")
	})
	mux.Handle("POST /login", login.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PostFormValue("id")
		if err := st.CheckUsernamePassword(r.PostFormValue("username"), r.PostFormValue("password"), id); err != nil {
			renderLogin(w, id, "Wrong username or password.")
			return
		}
		st.logins.Add(1)
		http.Redirect(w, r, callback(r.Context(), id), http.StatusFound)
	}))
	mux.Handle("/", p)
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	return &Provider{Issuer: issuer, srv: srv, st: st}
}

// ForgeNonce makes the provider put nonce in the ID tokens it issues from now on instead
// of the one the client asked for (a misbehaving or replaying provider); "" stops.
func (p *Provider) ForgeNonce(nonce string) {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	p.st.forgeNonce = nonce
}

// Logins counts successful logins at the form.
func (p *Provider) Logins() int64 { return p.st.logins.Load() }

// EndSessions counts requests to the end_session endpoint.
func (p *Provider) EndSessions() int64 { return p.st.ended.Load() }

var loginTmpl = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test provider: sign in</title></head><body>
<h1>Test provider</h1>{{if .Error}}<p id="login-error">{{.Error}}</p>{{end}}
<form method="post" action="/login">
<input type="hidden" name="id" value="{{.ID}}">
<p><label>Username <input id="username" name="username" autocomplete="username"></label></p>
<p><label>Password <input id="password" name="password" type="password"></label></p>
<p><button id="login" type="submit">Sign in</button></p>
</form></body></html>
`))

func renderLogin(w http.ResponseWriter, id, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = loginTmpl.Execute(w, struct{ ID, Error string }{id, msg})
}

var loginForm = regexp.MustCompile(`name="id" value="([^"]*)"`)

// Login signs in as a browser without scripts would: it follows authorizeURL (the
// provider's authorization request, as the relying party redirected to it) to the login
// form, posts username and password, and returns the URL the provider then redirects to
// (the relying party's callback with code and state) without following it.
func (p *Provider) Login(ctx context.Context, authorizeURL, username, password string) (string, error) {
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if !strings.HasPrefix(r.URL.String(), p.Issuer+"/") {
			return http.ErrUseLastResponse // leaving the provider: that is the answer
		}
		return nil
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authorizeURL, nil)
	if err != nil {
		return "", fmt.Errorf("authorize request: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("authorize: %w", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 {
		return loc, nil // an error (or a login that was not needed) sent straight back
	}
	m := loginForm.FindSubmatch(body)
	if m == nil {
		return "", fmt.Errorf("no login form at %s (status %d)", resp.Request.URL, resp.StatusCode)
	}
	form := url.Values{"id": {string(m[1])}, "username": {username}, "password": {password}}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, p.Issuer+"/login", strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("login request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = c.Do(req)
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	_ = resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode/100 != 3 || loc == "" {
		return "", fmt.Errorf("login refused (status %d)", resp.StatusCode)
	}
	return loc, nil
}

// store is the example storage with this package's users and clients, groups in the ID
// token, and the hooks above.
type store struct {
	*storage.Storage
	users      map[string]User
	clients    map[string]*client
	mu         sync.Mutex
	forgeNonce string
	logins     atomic.Int64
	ended      atomic.Int64
}

func (s *store) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c, ok := s.clients[id]
	if !ok {
		return nil, fmt.Errorf("client %q not found", id)
	}
	return c, nil
}

func (s *store) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c, ok := s.clients[id]
	if !ok || c.Secret != secret {
		return fmt.Errorf("client %q: invalid secret", id)
	}
	return nil
}

// SetUserinfoFromRequest adds the user's groups (claim "groups") and email to what the
// example storage puts in ID tokens.
func (s *store) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, info, req, scopes); err != nil {
		return err
	}
	u := s.users[req.GetSubject()]
	info.PreferredUsername = u.Username
	info.Email = u.Email
	info.AppendClaims("groups", u.Groups)
	return nil
}

// AuthRequestByCode serves the token endpoint; with ForgeNonce it hands out a copy of the
// request with another nonce.
func (s *store) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	r, err := s.Storage.AuthRequestByCode(ctx, code)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	forged := s.forgeNonce
	s.mu.Unlock()
	if ar, ok := r.(*storage.AuthRequest); ok && forged != "" {
		cp := *ar
		cp.Nonce = forged
		return &cp, nil
	}
	return r, nil
}

func (s *store) TerminateSession(ctx context.Context, userID, clientID string) error {
	s.ended.Add(1)
	return s.Storage.TerminateSession(ctx, userID, clientID)
}

// userStore gives the example storage this package's users.
type userStore struct{ s *store }

func (u userStore) GetUserByID(id string) *storage.User {
	if x, ok := u.s.users[id]; ok {
		return &storage.User{
			ID: x.ID, Username: x.Username, Password: x.Password, Email: x.Email, EmailVerified: true,
			FirstName: x.Username, PreferredLanguage: language.English,
		}
	}
	return nil
}

func (u userStore) GetUserByUsername(name string) *storage.User {
	for _, x := range u.s.users {
		if x.Username == name {
			return u.GetUserByID(x.ID)
		}
	}
	return nil
}

func (u userStore) ExampleClientID() string { return "" }

// client is a confidential web client; DevMode lets its redirect URIs be plain http on
// 127.0.0.1.
type client struct{ Client }

var _ op.Client = (*client)(nil)

func (c *client) GetID() string                       { return c.ID }
func (c *client) RedirectURIs() []string              { return c.Client.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string    { return c.Client.PostLogoutRedirectURIs }
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *client) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

func (c *client) GrantTypes() []oidc.GrantType { return []oidc.GrantType{oidc.GrantTypeCode} }

func (c *client) LoginURL(id string) string           { return "/login?authRequestID=" + url.QueryEscape(id) }
func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration      { return time.Hour }
func (c *client) DevMode() bool                       { return true }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string { //nolint:revive // op.Client's name
	return func(s []string) []string { return s }
}

func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) IsScopeAllowed(string) bool           { return false }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *client) ClockSkew() time.Duration             { return 0 }
