package approvals

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mcpguard/mcpguard/identity"
)

// cookieName holds the approver's pasted token: HttpOnly and SameSite=Strict, so page
// scripts cannot read it and other sites cannot post with it.
const cookieName = "mcpguard_approver"

type page struct{ api *api }

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mcpguard approvals</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.4rem;vertical-align:top;text-align:left}
pre{white-space:pre-wrap;word-break:break-all;margin:0;max-height:12rem;overflow:auto}
.msg{padding:.5rem;background:#eef;margin-bottom:1rem}.err{background:#fee}
</style></head><body>
<h1>Pending approvals</h1>
{{if .Message}}<p class="msg{{if .Error}} err{{end}}" id="message">{{.Message}}</p>{{end}}
{{if not .SignedIn}}
<form method="post" action="/approvals/signin">
<p><label for="token">Paste your access token to sign in</label></p>
<p><textarea id="token" name="token" rows="4" cols="80" required></textarea></p>
<p><button type="submit" id="signin">Sign in</button></p>
</form>
{{else}}
<form method="post" action="/approvals/signout"><p>Signed in as <strong id="who">{{.Who}}</strong> <button type="submit">Sign out</button></p></form>
{{if not .Pending}}<p id="empty">Nothing is waiting for you.</p>{{else}}
<table id="pending"><thead><tr><th>Requested</th><th>Who asked</th><th>Tool</th><th>Arguments (masked)</th><th>Rule</th><th>Decision</th></tr></thead><tbody>
{{range .Pending}}<tr id="req-{{.ID}}">
<td>{{when .CreatedAt}}<br><small>expires {{when .ExpiresAt}}</small><br><small>{{.ID}}</small></td>
<td>{{.Requester.Subject}}{{if .Requester.ClientID}}<br><small>client {{.Requester.ClientID}}</small>{{end}}</td>
<td><code>{{.Tool}}</code></td>
<td><pre>{{printf "%s" .Arguments}}</pre></td>
<td>{{.Rule}}{{if .Reason}}<br><small>{{.Reason}}</small>{{end}}</td>
<td><form method="post" action="/approvals/{{.ID}}/decide">
<p><input name="reason" placeholder="reason" maxlength="1000" aria-label="reason"></p>
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form></td></tr>
{{end}}</tbody></table>{{end}}
{{end}}
</body></html>
`))

type pageData struct {
	SignedIn bool
	Who      string
	Pending  []Request
	Message  string
	Error    bool
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
	who, ok := p.who(r)
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
	d.SignedIn, d.Who = true, who.Subject
	for _, req := range list {
		if req.CanApprove(who) == nil {
			d.Pending = append(d.Pending, req)
		}
	}
	p.render(w, http.StatusOK, d)
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
	if tok == "" || err != nil {
		p.render(w, http.StatusUnauthorized, pageData{Message: "That token was not accepted.", Error: true})
		return
	}
	// Secure follows the connection: on a plain-HTTP loopback admin port a Secure cookie would
	// never be sent back. Behind TLS it is always Secure.
	http.SetCookie(w, &http.Cookie{ //nolint:gosec // G124: Secure is set whenever the page is served over TLS
		Name: cookieName, Value: tok, Path: "/approvals", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, Expires: id.ExpiresAt,
	})
	http.Redirect(w, r, "/approvals", http.StatusSeeOther)
}

func (p *page) signOut(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "cross-site request refused", http.StatusForbidden)
		return
	}
	http.SetCookie(w, &http.Cookie{ //nolint:gosec // G124: as in signIn, Secure whenever the page is served over TLS
		Name: cookieName, Value: "", Path: "/approvals", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, "/approvals", http.StatusSeeOther)
}

func (p *page) decide(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "cross-site request refused", http.StatusForbidden)
		return
	}
	who, ok := p.who(r)
	if !ok {
		http.Redirect(w, r, "/approvals", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	var approve bool
	switch r.PostFormValue("decision") {
	case "approve":
		approve = true
	case "deny":
	default:
		redirectMsg(w, r, "Unknown decision.", true)
		return
	}
	id := r.PathValue("id")
	_, status, msg := p.api.apply(r.Context(), id, who, approve, r.PostFormValue("reason"))
	if status != http.StatusOK {
		redirectMsg(w, r, "Not recorded: "+msg+".", true)
		return
	}
	verb := "Denied"
	if approve {
		verb = "Approved"
	}
	redirectMsg(w, r, verb+" "+id+".", false)
}

func redirectMsg(w http.ResponseWriter, r *http.Request, msg string, isErr bool) {
	q := url.Values{"msg": {msg}}
	if isErr {
		q.Set("err", "1")
	}
	http.Redirect(w, r, "/approvals?"+q.Encode(), http.StatusSeeOther)
}
