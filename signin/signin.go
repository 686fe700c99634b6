package signin

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/mcpguard/mcpguard/identity"
)

// Session is a signed-in person.
type Session struct {
	// Identity is who signed in: Subject and Issuer from the verified ID token, Groups
	// from its groups claim, ExpiresAt the end of the session.
	Identity identity.Identity
	// Name is for display: preferred_username, else email, else name, else the subject.
	Name string
	// ID identifies the session (random, per sign-in); CSRF tokens are bound to it.
	ID string
	// IssuedAt is when the person signed in.
	IssuedAt time.Time

	idToken string
}

// Options are what [New] needs besides the [Config].
type Options struct {
	// PublicURL is where browsers reach the page the handlers are mounted under: the
	// redirect URI is PublicURL+"/signin/callback", sign-out returns to
	// PublicURL+"/signedout", and a completed sign-in lands on PublicURL. An https URL
	// makes the cookies Secure and __Host- prefixed.
	PublicURL string
	// Log receives sign-in outcomes (never tokens or codes). Nil discards.
	Log *slog.Logger
	// HTTPClient talks to the provider; nil uses one with a 10 s timeout.
	HTTPClient *http.Client
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// SignIn runs the OpenID Connect authorization code flow with PKCE and keeps sessions in
// sealed cookies. Its handlers are safe for concurrent use.
type SignIn struct {
	cfg         Config
	secret      string
	public      *url.URL
	callback    string
	signedOut   string
	secure      bool
	sessionName string
	flowName    string
	seal        sealer
	csrfKey     []byte
	log         *slog.Logger
	client      *http.Client
	now         func() time.Time
	crossOrigin *http.CrossOriginProtection
	mu          sync.Mutex
	op          *provider
}

// provider is what discovery found.
type provider struct {
	oauth      oauth2.Config
	verifier   *oidc.IDTokenVerifier
	endSession string
}

// flowTTL bounds how long a person may take at the provider's login page.
const flowTTL = 10 * time.Minute

// New checks cfg, reads its files and returns a SignIn. It does not contact the provider:
// discovery happens on the first sign-in, so an unreachable provider does not stop the
// service.
func New(cfg Config, o Options) (*SignIn, error) {
	if !cfg.Enabled() {
		return nil, errors.New("signin: no issuer configured")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("signin config: %w", err)
	}
	pub, err := url.Parse(strings.TrimRight(o.PublicURL, "/"))
	if err != nil || !pub.IsAbs() || pub.Host == "" || (pub.Scheme != "https" && pub.Scheme != "http") {
		return nil, fmt.Errorf("signin: public url %q is not an absolute http(s) URL", o.PublicURL)
	}
	if pub.Scheme == "http" && !Loopback(pub.Hostname()) {
		return nil, fmt.Errorf("signin: public url %q must be https (http only on a loopback address)", o.PublicURL)
	}
	s := &SignIn{
		cfg: cfg, public: pub, log: o.Log, client: o.HTTPClient, now: o.Now,
		callback:    pub.String() + "/signin/callback",
		signedOut:   pub.String() + "/signedout",
		secure:      pub.Scheme == "https",
		crossOrigin: http.NewCrossOriginProtection(),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: 10 * time.Second}
	}
	if s.now == nil {
		s.now = time.Now
	}
	// __Host- makes browsers refuse the cookie unless it is Secure, host-only and for
	// path /, so a sibling subdomain cannot plant a session (RFC 6265bis §4.1.3.2).
	s.sessionName, s.flowName = "mcpguard_session", "mcpguard_signin"
	if s.secure {
		s.sessionName, s.flowName = "__Host-"+s.sessionName, "__Host-"+s.flowName
	}
	if cfg.ClientSecretFile != "" {
		if s.secret, err = readSecret(cfg.ClientSecretFile); err != nil {
			return nil, err
		}
	}
	var key []byte
	if cfg.CookieKeyFile != "" {
		if key, err = ReadKey(cfg.CookieKeyFile); err != nil {
			return nil, err
		}
	} else {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generate cookie key: %w", err)
		}
		s.log.Warn("approvals.signin.cookie_key_file is not set: generated a cookie key; sessions end when the process stops and are not shared between replicas")
	}
	sealKey, csrfKey, err := deriveKeys(key)
	if err != nil {
		return nil, err
	}
	if s.seal, err = newSealer(sealKey); err != nil {
		return nil, err
	}
	s.csrfKey = csrfKey
	return s, nil
}

// discover reads the provider's discovery document once; a failure is retried on the
// next sign-in.
func (s *SignIn) discover(ctx context.Context) (*provider, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.op != nil {
		return s.op, nil
	}
	ctx = oidc.ClientContext(ctx, s.client)
	p, err := oidc.NewProvider(ctx, s.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", s.cfg.Issuer, err)
	}
	var meta struct {
		EndSession string   `json:"end_session_endpoint"`
		PKCE       []string `json:"code_challenge_methods_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, fmt.Errorf("discover %s: %w", s.cfg.Issuer, err)
	}
	if len(meta.PKCE) > 0 && !slices.Contains(meta.PKCE, "S256") {
		return nil, fmt.Errorf("discover %s: the provider does not support PKCE with S256", s.cfg.Issuer)
	}
	if meta.EndSession != "" {
		if u, err := url.Parse(meta.EndSession); err != nil || !u.IsAbs() {
			return nil, fmt.Errorf("discover %s: end_session_endpoint %q is not an absolute URL", s.cfg.Issuer, meta.EndSession)
		}
	}
	// The key set fetches with a context of its own (the request's ends with it).
	keys := oidc.ClientContext(context.WithoutCancel(ctx), s.client)
	s.op = &provider{
		oauth: oauth2.Config{
			ClientID: s.cfg.ClientID, ClientSecret: s.secret, Endpoint: p.Endpoint(),
			RedirectURL: s.callback, Scopes: s.cfg.Scopes,
		},
		verifier:   p.VerifierContext(keys, &oidc.Config{ClientID: s.cfg.ClientID, Now: s.now}),
		endSession: meta.EndSession,
	}
	return s.op, nil
}

// Start begins a sign-in: it remembers state, nonce and PKCE verifier in a short-lived
// sealed cookie and sends the browser to the provider. A return query parameter (a path
// on the public host, such as /mcpguard/recordings/x) says where to land afterwards;
// anything else lands on the public URL.
func (s *SignIn) Start(w http.ResponseWriter, r *http.Request) {
	op, err := s.discover(r.Context())
	if err != nil {
		s.log.Error("sign-in provider unavailable", "err", err.Error())
		s.fail(w, http.StatusServiceUnavailable, "The sign-in provider cannot be reached. Try again in a minute.")
		return
	}
	f := flowV1{
		V: 1, State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier(),
		Return: returnPath(r.URL.Query().Get("return")), EXP: s.now().Add(flowTTL).Unix(),
	}
	v, err := s.seal.seal(s.flowName, f)
	if err != nil {
		s.log.Error("sign-in flow cookie", "err", err.Error())
		s.fail(w, http.StatusInternalServerError, "Sign-in could not start.")
		return
	}
	// Lax, not Strict: the callback is a top-level navigation from the provider's site,
	// and a Strict cookie would not come with it.
	s.setCookie(w, s.flowName, v, int(flowTTL/time.Second))
	to := op.oauth.AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// Callback completes a sign-in: the state must match the flow cookie, the code is
// exchanged with the PKCE verifier, and the ID token must verify (signature, issuer,
// audience, expiry) and carry the flow's nonce. Then the session cookie is set.
func (s *SignIn) Callback(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	sess, ret, err := s.complete(r)
	// The flow cookie is single-use whatever happened.
	s.setCookie(w, s.flowName, "", -1)
	if err != nil {
		var ce *callbackError
		if !errors.As(err, &ce) {
			ce = &callbackError{status: http.StatusBadGateway, msg: "Sign-in failed."}
		}
		s.log.Warn("sign-in refused", "err", err.Error())
		s.fail(w, ce.status, ce.msg)
		return
	}
	v, err := s.sealSession(sess)
	if err != nil {
		s.log.Warn("sign-in refused", "sub", sess.Identity.Subject, "err", err.Error())
		s.fail(w, http.StatusForbidden, "Your account carries too many groups for a session cookie.")
		return
	}
	s.setCookie(w, s.sessionName, v, int(sess.Identity.ExpiresAt.Sub(s.now())/time.Second))
	s.log.Info("signed in", "sub", sess.Identity.Subject, "groups", len(sess.Identity.Groups))
	// ret is a path checked by returnPath (or the public URL's): the host is always ours.
	http.Redirect(w, r, s.public.Scheme+"://"+s.public.Host+ret, http.StatusSeeOther) //nolint:gosec // G710: see above
}

// callbackError is a refusal with what the browser is told.
type callbackError struct {
	status int
	msg    string
	err    error
}

func (e *callbackError) Error() string { return e.err.Error() }
func (e *callbackError) Unwrap() error { return e.err }

func refuse(status int, msg string, err error) error {
	return &callbackError{status: status, msg: msg, err: err}
}

const againMsg = "Sign-in did not complete. Start again from the page."

func (s *SignIn) complete(r *http.Request) (Session, string, error) {
	q := r.URL.Query()
	c, err := r.Cookie(s.flowName)
	if err != nil {
		return Session{}, "", refuse(http.StatusBadRequest, againMsg, errors.New("no sign-in flow cookie"))
	}
	var f flowV1
	if err := s.seal.open(s.flowName, c.Value, &f); err != nil || f.V != 1 {
		return Session{}, "", refuse(http.StatusBadRequest, againMsg, errors.New("unreadable sign-in flow cookie"))
	}
	if !s.now().Before(time.Unix(f.EXP, 0)) {
		return Session{}, "", refuse(http.StatusBadRequest, againMsg, errors.New("sign-in flow expired"))
	}
	if f.State == "" || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.State)) != 1 {
		return Session{}, "", refuse(http.StatusBadRequest, againMsg, errors.New("state mismatch"))
	}
	if e := q.Get("error"); e != "" {
		return Session{}, "", refuse(http.StatusForbidden, "The sign-in provider refused the sign-in.",
			fmt.Errorf("provider error %.64q", e))
	}
	code := q.Get("code")
	if code == "" || f.Nonce == "" || f.Verifier == "" {
		return Session{}, "", refuse(http.StatusBadRequest, againMsg, errors.New("code, nonce or PKCE verifier missing"))
	}
	op, err := s.discover(r.Context())
	if err != nil {
		return Session{}, "", refuse(http.StatusServiceUnavailable, "The sign-in provider cannot be reached.", err)
	}
	ctx := context.WithValue(r.Context(), oauth2.HTTPClient, s.client)
	tok, err := op.oauth.Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return Session{}, "", refuse(http.StatusBadGateway, "The sign-in provider did not accept the sign-in.", fmt.Errorf("exchange code: %w", redact(err)))
	}
	raw, _ := tok.Extra("id_token").(string)
	sess, err := s.verify(r.Context(), op, raw, f.Nonce, tok.AccessToken)
	if err != nil {
		return Session{}, "", refuse(http.StatusForbidden, "The sign-in could not be verified.", err)
	}
	ret := f.Return
	if ret == "" {
		ret = s.public.EscapedPath()
		if ret == "" {
			ret = "/"
		}
	}
	return sess, ret, nil
}

// redact keeps the provider's error code and drops the rest (a token response body may
// echo what was sent).
func redact(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return fmt.Errorf("provider answered %d %.64q", re.Response.StatusCode, re.ErrorCode)
	}
	return err
}

// verify checks an ID token from the token endpoint and turns it into a session.
func (s *SignIn) verify(ctx context.Context, op *provider, raw, nonce, accessToken string) (Session, error) {
	if raw == "" {
		return Session{}, errors.New("token response without id_token")
	}
	idt, err := op.verifier.Verify(ctx, raw)
	if err != nil {
		return Session{}, fmt.Errorf("verify id token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return Session{}, errors.New("id token nonce mismatch")
	}
	if idt.AccessTokenHash != "" && accessToken != "" {
		if err := idt.VerifyAccessToken(accessToken); err != nil {
			return Session{}, fmt.Errorf("id token at_hash: %w", err)
		}
	}
	var claims map[string]json.RawMessage
	if err := idt.Claims(&claims); err != nil {
		return Session{}, fmt.Errorf("id token claims: %w", err)
	}
	// With several audiences the token must name this client as its authorized party
	// (OpenID Connect Core §3.1.3.7).
	if azp := str(claims["azp"]); (len(idt.Audience) > 1 || azp != "") && azp != s.cfg.ClientID {
		return Session{}, fmt.Errorf("id token azp %.64q is not this client", azp)
	}
	if !textOK(idt.Subject) || idt.Subject == "" {
		return Session{}, errors.New("id token subject unusable")
	}
	groups, err := groupsOf(claims[s.cfg.GroupsClaim])
	if err != nil {
		return Session{}, fmt.Errorf("id token claim %s: %w", s.cfg.GroupsClaim, err)
	}
	now := s.now()
	sess := Session{ID: random(), IssuedAt: now, idToken: raw}
	sess.Identity = identity.Identity{
		Subject: idt.Subject, Issuer: idt.Issuer, Groups: groups,
		ExpiresAt: now.Add(s.cfg.SessionTTL),
	}
	for _, c := range []string{"preferred_username", "email", "name"} {
		if n := str(claims[c]); n != "" && textOK(n) {
			sess.Name = n
			break
		}
	}
	if sess.Name == "" {
		sess.Name = idt.Subject
	}
	return sess, nil
}

func str(raw json.RawMessage) string {
	var v string
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	return v
}

// groupsOf reads a groups claim: absent means none; a list of strings (or one string) is
// taken; anything else refuses the sign-in rather than guessing.
func groupsOf(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		var one string
		if json.Unmarshal(raw, &one) != nil {
			return nil, errors.New("not a list of strings")
		}
		list = []string{one}
	}
	if len(list) > maxGroups {
		return nil, fmt.Errorf("%d groups, at most %d", len(list), maxGroups)
	}
	for _, g := range list {
		if g == "" || !textOK(g) {
			return nil, errors.New("a group name is empty, too long or has control characters")
		}
	}
	return list, nil
}

// sealSession writes the session cookie value, leaving out the ID token (kept only for
// the provider's sign-out) when it would make the cookie too large.
func (s *SignIn) sealSession(sess Session) (string, error) {
	v := sessionV1{
		V: 1, SID: sess.ID, Sub: sess.Identity.Subject, Iss: sess.Identity.Issuer, Name: sess.Name,
		Groups: sess.Identity.Groups, IAT: sess.IssuedAt.Unix(), EXP: sess.Identity.ExpiresAt.Unix(), IDT: sess.idToken,
	}
	out, err := s.seal.seal(s.sessionName, v)
	if err != nil && v.IDT != "" {
		v.IDT = ""
		out, err = s.seal.seal(s.sessionName, v)
	}
	return out, err
}

// Session returns the signed-in person of r; ok is false when there is no valid session
// (none, unreadable, tampered, expired, or from another issuer).
func (s *SignIn) Session(r *http.Request) (Session, bool) {
	c, err := r.Cookie(s.sessionName)
	if err != nil {
		return Session{}, false
	}
	sess, err := s.open(c.Value)
	return sess, err == nil
}

func (s *SignIn) open(value string) (Session, error) {
	var v sessionV1
	if err := s.seal.open(s.sessionName, value, &v); err != nil {
		return Session{}, err
	}
	return sessionFrom(v, s.cfg.Issuer, s.cfg.SessionTTL, s.now())
}

// Require passes requests with a valid session to next. Without one, a GET is sent to
// sign in (start, relative to the public URL) and anything else gets 401.
func (s *SignIn) Require(next func(http.ResponseWriter, *http.Request, Session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sess, ok := s.Session(r); ok {
			next(w, r, sess)
			return
		}
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, s.StartURL(""), http.StatusSeeOther)
			return
		}
		http.Error(w, "sign in required", http.StatusUnauthorized)
	})
}

// StartURL is the absolute sign-in address, landing on returnPath (a path on the public
// host) afterwards, or on the public URL when it is empty.
func (s *SignIn) StartURL(returnPath string) string {
	u := s.public.String() + "/signin"
	if returnPath != "" {
		u += "?" + url.Values{"return": {returnPath}}.Encode()
	}
	return u
}

// CSRFToken is the token forms carry for sess (field "csrf"): an HMAC of the session ID,
// so it changes with every sign-in and cannot be computed without the cookie key.
func (s *SignIn) CSRFToken(sess Session) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte(sess.ID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// ValidCSRF reports whether a form post belongs to sess: it must come from the same origin
// (Sec-Fetch-Site or Origin) and carry sess's CSRF token. Limit r.Body before calling.
func (s *SignIn) ValidCSRF(r *http.Request, sess Session) bool {
	if s.crossOrigin.Check(r) != nil {
		return false
	}
	got := r.PostFormValue("csrf")
	return got != "" && hmac.Equal([]byte(got), []byte(s.CSRFToken(sess)))
}

// SignOut ends the session (POST with the session's CSRF token) and, when the provider
// has an end_session_endpoint, sends the browser there to end the provider's session too
// (OpenID Connect RP-Initiated Logout); it returns to PublicURL+"/signedout".
func (s *SignIn) SignOut(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	sess, ok := s.Session(r)
	if !ok {
		s.setCookie(w, s.sessionName, "", -1)
		http.Redirect(w, r, s.signedOut, http.StatusSeeOther)
		return
	}
	if !s.ValidCSRF(r, sess) {
		s.fail(w, http.StatusForbidden, "Cross-site request refused.")
		return
	}
	s.setCookie(w, s.sessionName, "", -1)
	s.log.Info("signed out", "sub", sess.Identity.Subject)
	op, err := s.discover(r.Context())
	if err != nil || op.endSession == "" {
		http.Redirect(w, r, s.signedOut, http.StatusSeeOther)
		return
	}
	q := url.Values{"client_id": {s.cfg.ClientID}, "post_logout_redirect_uri": {s.signedOut}}
	if sess.idToken != "" {
		q.Set("id_token_hint", sess.idToken)
	}
	u, _ := url.Parse(op.endSession) // checked at discovery
	if u.RawQuery != "" {
		u.RawQuery += "&"
	}
	u.RawQuery += q.Encode()
	// Not a redirect: browsers hold the redirects of a form post to the posting page's
	// Content-Security-Policy form-action ('self' on the approvals page), which the
	// provider's origin is not. This page moves on by itself (meta refresh, no script).
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	_ = endSessionTmpl.Execute(w, template.URL(u.String())) //nolint:gosec // G203: built from the discovered endpoint and encoded parameters
}

var endSessionTmpl = template.Must(template.New("end").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={{.}}">
<title>mcpguard: signing out</title></head>
<body style="font-family:system-ui,sans-serif;margin:2rem">
<p>Signed out here. Ending the session at the sign-in provider…</p>
<p><a id="signout-continue" href="{{.}}">Continue</a></p>
</body></html>
`))

var signedOutTmpl = template.Must(template.New("out").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mcpguard: {{.Title}}</title></head>
<body style="font-family:system-ui,sans-serif;margin:2rem">
<h1>{{.Title}}</h1><p id="signin-message">{{.Message}}</p>
<p><a id="signin-again" href="{{.Again}}">Sign in</a></p>
</body></html>
`))

// SignedOut is the page sign-out returns to: it says so and offers to sign in again, and
// never signs in by itself (the provider may still remember the person).
func (s *SignIn) SignedOut(w http.ResponseWriter, _ *http.Request) {
	s.page(w, http.StatusOK, "Signed out", "You have signed out.")
}

func (s *SignIn) fail(w http.ResponseWriter, status int, msg string) {
	s.page(w, status, "Not signed in", msg)
}

func (s *SignIn) page(w http.ResponseWriter, status int, title, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = signedOutTmpl.Execute(w, struct{ Title, Message, Again string }{title, msg, s.StartURL("")})
}

// setCookie writes one of the two cookies: HttpOnly, SameSite=Lax, Secure (and __Host-)
// when the public URL is https, for path / so every page under the public host (the
// approvals page, a recordings replay) shares the session. maxAge < 0 deletes.
func (s *SignIn) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{ //nolint:gosec // G124: Secure whenever the public URL is https; plain HTTP is allowed on loopback only
		Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true, Secure: s.secure,
		SameSite: http.SameSiteLaxMode,
	})
}

// random is 256 bits from crypto/rand, URL-safe.
func random() string {
	return rand.Text() + rand.Text()
}

// returnPath accepts a path on this host ("/x/y?z") and nothing else: no scheme, host,
// protocol-relative "//" or backslash, so a sign-in link cannot send people elsewhere.
func returnPath(p string) string {
	if p == "" || len(p) > 1024 || p[0] != '/' || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n\t") {
		return ""
	}
	u, err := url.Parse(p)
	if err != nil || u.IsAbs() || u.Host != "" || u.User != nil {
		return ""
	}
	return u.RequestURI()
}
