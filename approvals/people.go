package approvals

import (
	"net/http"

	"github.com/mcpguard/mcpguard/signin"
)

// WithSignIn lets people sign in to the page with OpenID Connect instead of pasting a
// token: the page then sends anyone without a session to the provider, takes the approver's
// identity (subject, issuer, groups) from the session, and requires the session's CSRF
// token on every form. The bearer-token API is unchanged.
func WithSignIn(si *signin.SignIn) Option { return func(s *Service) { s.people = si } }

// mountSignIn replaces the page's token sign-in with si's handlers, below the page's path
// as signin expects (approvals.public_url + /signin, /signin/callback, /signedout).
func (s *Service) mountSignIn(m map[string]http.Handler) {
	if s.people == nil {
		return
	}
	delete(m, "POST /approvals/signin")
	m["GET /approvals/signin"] = http.HandlerFunc(s.people.Start)
	m["GET /approvals/signin/callback"] = http.HandlerFunc(s.people.Callback)
	m["POST /approvals/signout"] = http.HandlerFunc(s.people.SignOut)
	m["GET /approvals/signedout"] = http.HandlerFunc(s.people.SignedOut)
}
