package approvals

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mcpguard/mcpguard/identity"
	"github.com/mcpguard/mcpguard/signin"
)

// cookieName holds the approver's pasted token: HttpOnly and SameSite=Strict, so page
// scripts cannot read it and other sites cannot post with it.
const cookieName = "mcpguard_approver"

type page struct {
	api    *api
	people *signin.SignIn // nil: sign in by pasting a token
}

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"when":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"fields": func(r Request) []Field { return shownFields(r) },
	"spans":  spans,
	"long":   func(v string) bool { return utf8.RuneCountInString(v) > longValue },
	"head":   head,
	"runes":  utf8.RuneCountInString,
	"join":   func(s []string) string { return strings.Join(s, ", ") },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mcpguard approvals</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;max-width:80rem}
article{border:1px solid #ccc;padding:.6rem 1rem;margin-bottom:1.5rem}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ddd;padding:.3rem;vertical-align:top;text-align:left}
code,.v{font-family:ui-monospace,monospace;white-space:pre-wrap;word-break:break-all}
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dt{font-weight:bold}dd{margin:0}
mark.masked{background:#fd8}
.msg{padding:.5rem;background:#eef;margin-bottom:1rem}.err{background:#fee}.rulemsg{font-size:1.1rem;background:#ffd;padding:.3rem}
</style></head><body>
<h1>Pending approvals</h1>
{{if .Message}}<p class="msg{{if .Error}} err{{end}}" id="message">{{.Message}}</p>{{end}}
{{if not .SignedIn}}
<form method="post" action="approvals/signin">
<p><label for="token">Paste your approver access token to sign in</label></p>
<p><textarea id="token" name="token" rows="4" cols="80" required></textarea></p>
<p><button type="submit" id="signin">Sign in</button></p>
</form>
{{else}}
<form method="post" action="approvals/signout">{{if .CSRF}}<input type="hidden" name="csrf" value="{{.CSRF}}">{{end}}<p>Signed in as <strong id="who">{{.Who}}</strong> <button type="submit" id="signout">Sign out</button></p></form>
{{if not .Pending}}<p id="empty">Nothing is waiting for you.</p>{{else}}
<p>Values are shown in full. Escapes make hidden characters visible: <code>\t \n \r \\</code>, <code>\uXXXX</code> for control, zero-width and bidirectional characters, <code>␠×N</code> for N spaces in a row. <mark class="masked">[REDACTED:TYPE]</mark> marks what a masking detector removed.</p>
{{range .Pending}}<article id="req-{{.ID}}">
<h2><code>{{.Tool}}</code> — rule {{.Rule}}</h2>
{{if .Message}}<p class="rulemsg" id="message-{{.ID}}">{{.Message}}</p>{{end}}
<dl>
{{if .Reason}}<dt>Why held</dt><dd>{{.Reason}}</dd>{{end}}
<dt>Requested by</dt><dd class="requester">{{.Requester.Subject}}{{if .Requester.ClientID}} (client {{.Requester.ClientID}}){{end}}</dd>
<dt>Issuer</dt><dd>{{.Requester.Issuer}}</dd>
<dt>Groups</dt><dd class="groups">{{if .Requester.Groups}}{{join .Requester.Groups}}{{else}}(none){{end}}</dd>
<dt>MCP server</dt><dd class="route">{{if .Route.Authority}}{{.Route.Authority}}{{.Route.Path}}{{else}}(unknown){{end}}</dd>
<dt>Session</dt><dd>{{if .SessionID}}{{.SessionID}}{{else}}(none){{end}}</dd>
<dt>Policy version</dt><dd class="policy">{{if .PolicyVersion}}{{.PolicyVersion}}{{else}}(unknown){{end}}</dd>
<dt>Approver groups</dt><dd>{{join .Approvers}}</dd>
<dt>Requested</dt><dd>{{when .CreatedAt}}</dd>
<dt>Expires</dt><dd>{{when .ExpiresAt}}</dd>
<dt>Request</dt><dd>{{.ID}}{{if .RequestID}} (HTTP request {{.RequestID}}){{end}}</dd>
{{with index $.Recordings .ID}}<dt>Recording</dt><dd><a class="recording" href="{{.}}">the session's recording</a></dd>{{end}}
</dl>
<table class="params"><thead><tr><th>Parameter</th><th>Value (complete)</th></tr></thead><tbody>
{{range fields .}}<tr><td><code>params{{.Path}}</code></td><td class="v">{{if long .Value}}<details><summary>{{head .Value}} … ({{runes .Value}} characters: show all)</summary>{{range spans .Value}}{{if .Masked}}<mark class="masked">{{.Text}}</mark>{{else}}{{.Text}}{{end}}{{end}}</details>{{else}}{{range spans .Value}}{{if .Masked}}<mark class="masked">{{.Text}}</mark>{{else}}{{.Text}}{{end}}{{end}}{{end}}{{if ne .Kind "string"}} <small>({{.Kind}})</small>{{end}}</td></tr>
{{end}}</tbody></table>
<form method="post" action="approvals/{{.ID}}/decide">{{if $.CSRF}}<input type="hidden" name="csrf" value="{{$.CSRF}}">{{end}}
<p><input name="reason" placeholder="reason" maxlength="1000" aria-label="reason">
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button></p>
</form></article>
{{end}}{{end}}
{{end}}
</body></html>
`))

// longValue is the length in characters above which a value is folded (still complete,
// behind a click); headValue is how much of it shows folded.
const (
	longValue = 200
	headValue = 120
)

func head(v string) string {
	n := 0
	for i := range v {
		if n == headValue {
			return v[:i]
		}
		n++
	}
	return v
}

// shownFields are the leaves approvers see: of the whole params, or of the arguments for
// requests stored without params.
func shownFields(r Request) []Field {
	if len(r.Params) > 0 {
		return Fields(r.Params)
	}
	return Fields(r.Arguments)
}

type pageData struct {
	SignedIn bool
	Who      string
	CSRF     string // the session's CSRF token (OpenID Connect sign-in only)
	Pending  []Request
	// Recordings are links to the recording of each pending request's session, by ID.
	Recordings map[string]string
	Message    string
	Error      bool
}

func (p *page) render(w http.ResponseWriter, code int, d pageData) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = pageTmpl.Execute(w, d)
}

// who authenticates the page's cookie; ok is false when there is none or it is invalid.
func (p *page) who(r *http.Request) (identity.Identity, bool) {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return identity.Identity{}, false
	}
	id, err := p.api.auth.Authenticate(r.Context(), c.Value)
	if err != nil {
		return identity.Identity{}, false
	}
	return id, true
}

func (p *page) show(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := pageData{Message: q.Get("msg"), Error: q.Get("err") != ""}
	if len(d.Message) > 200 {
		d.Message = d.Message[:200]
	}
	var who identity.Identity
	var ok bool
	if p.people != nil {
		// OpenID Connect sign-in: without a session, off to the provider.
		sess, signedIn := p.people.Session(r)
		if !signedIn {
			seeOther(w, "approvals/signin")
			return
		}
		who, ok, d.Who, d.CSRF = sess.Identity, true, sess.Name, p.people.CSRFToken(sess)
	} else if who, ok = p.who(r); ok {
		d.Who = who.Subject
	}
	if !ok {
		if _, had := r.Cookie(cookieName); had == nil && d.Message == "" {
			d.Message, d.Error = "Your token is not valid (expired?); sign in again.", true
		}
		p.render(w, http.StatusOK, d)
		return
	}
	list, err := p.api.s.List(r.Context(), who, Pending)
	if err != nil {
		p.api.log.Error("approvals page", "err", err.Error())
		d.Message, d.Error = "Could not load requests.", true
	}
	d.SignedIn = true
	for _, req := range list {
		if req.CanApprove(who) == nil {
			d.Pending = append(d.Pending, req)
			if l := p.recordingLink(req); l != "" {
				if d.Recordings == nil {
					d.Recordings = map[string]string{}
				}
				d.Recordings[req.ID] = l
			}
		}
	}
	p.render(w, http.StatusOK, d)
}

func (p *page) recordingLink(req Request) string {
	if p.api.s.recording == nil {
		return ""
	}
	return p.api.s.recording(req)
}

// sameOrigin refuses cross-site form posts even from browsers without SameSite support.
func sameOrigin(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	return true
}

func (p *page) signIn(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "cross-site request refused", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	tok := strings.TrimSpace(r.PostFormValue("token"))
	tok = strings.TrimSpace(strings.TrimPrefix(tok, "Bearer "))
	id, err := p.api.auth.Authenticate(r.Context(), tok)
	if errors.Is(err, ErrAgentToken) {
		p.render(w, http.StatusForbidden, pageData{Message: "That is an agent token: " + agentTokenMsg + ".", Error: true})
		return
	}
	if tok == "" || err != nil {
		p.render(w, http.StatusUnauthorized, pageData{Message: "That token was not accepted.", Error: true})
		return
	}
	// Secure follows the connection: on a plain-HTTP loopback admin port a Secure cookie would
	// never be sent back. Behind TLS it is always Secure.
	http.SetCookie(w, &http.Cookie{ //nolint:gosec // G124: Secure is set whenever the page is served over TLS
		Name: cookieName, Value: tok, Path: p.cookiePath(), HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, Expires: id.ExpiresAt,
	})
	seeOther(w, "../approvals")
}

func (p *page) signOut(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "cross-site request refused", http.StatusForbidden)
		return
	}
	http.SetCookie(w, &http.Cookie{ //nolint:gosec // G124: as in signIn, Secure whenever the page is served over TLS
		Name: cookieName, Value: "", Path: p.cookiePath(), MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	seeOther(w, "../approvals")
}

func (p *page) decide(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "cross-site request refused", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	var who identity.Identity
	var ok bool
	if p.people != nil {
		var sess signin.Session
		if sess, ok = p.people.Session(r); ok && !p.people.ValidCSRF(r, sess) {
			// A cookie session goes with every request the browser makes: the form must
			// prove it came from the page (its session's token).
			http.Error(w, "cross-site request refused", http.StatusForbidden)
			return
		}
		who = sess.Identity
	} else {
		who, ok = p.who(r)
	}
	if !ok {
		seeOther(w, "../../approvals")
		return
	}
	var approve bool
	switch r.PostFormValue("decision") {
	case "approve":
		approve = true
	case "deny":
	default:
		redirectMsg(w, "Unknown decision.", true)
		return
	}
	id := r.PathValue("id")
	_, status, msg := p.api.apply(r.Context(), id, who, approve, r.PostFormValue("reason"))
	if status != http.StatusOK {
		redirectMsg(w, "Not recorded: "+msg+".", true)
		return
	}
	verb := "Denied"
	if approve {
		verb = "Approved"
	}
	redirectMsg(w, verb+" "+id+".", false)
}

// redirectMsg sends the browser from a decision (approvals/{id}/decide) back to the page.
func redirectMsg(w http.ResponseWriter, msg string, isErr bool) {
	q := url.Values{"msg": {msg}}
	if isErr {
		q.Set("err", "1")
	}
	seeOther(w, "../../approvals?"+q.Encode())
}

// seeOther redirects to a location relative to the request's URL as the browser sees it.
// http.Redirect would make it absolute from the path mcpguard received, which is wrong
// behind a proxy that serves the page under a path prefix.
func seeOther(w http.ResponseWriter, rel string) {
	w.Header().Set("Location", rel)
	w.WriteHeader(http.StatusSeeOther)
}

// cookiePath scopes the sign-in cookie to the page as browsers reach it (the path of
// approvals.public_url), so it is sent to the page, its forms and anything added below it
// later (a sign-in callback), and nowhere else on the host.
func (p *page) cookiePath() string {
	u, err := url.Parse(p.api.s.cfg.PublicURL)
	if err != nil || u.Path == "" {
		return "/approvals"
	}
	return u.Path
}
