package replay

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mcpguard/mcpguard/approvals"
	"github.com/mcpguard/mcpguard/identity"
	"github.com/mcpguard/mcpguard/recordings"
	"github.com/mcpguard/mcpguard/signin"
)

// Authenticator checks a bearer token (approver audience) when OpenID Connect sign-in is off.
type Authenticator interface {
	Authenticate(ctx context.Context, bearer string) (identity.Identity, error)
}

// Options are what [New] needs.
type Options struct {
	// Readers are the groups whose members may read recordings.
	Readers []string
	// SignIn is the approvals page's sign-in; nil takes approver bearer tokens through Auth.
	SignIn *signin.SignIn
	// Auth authenticates bearer tokens when SignIn is nil.
	Auth Authenticator
	// PublicKey verifies manifests.
	PublicKey ed25519.PublicKey
	// Log receives access refusals and read errors (never values).
	Log *slog.Logger
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// Replay serves the web replay.
type Replay struct {
	sink   recordings.Sink
	prefix string
	o      Options
}

// maxResults bounds the sessions one search lists; the page says when there were more.
const maxResults = 500

// New returns the replay of the recordings stored under prefix in sink.
func New(sink recordings.Sink, prefix string, o Options) (*Replay, error) {
	if len(o.Readers) == 0 {
		return nil, errors.New("replay: no reader groups")
	}
	if o.SignIn == nil && o.Auth == nil {
		return nil, errors.New("replay: neither sign-in nor token authentication")
	}
	if len(o.PublicKey) != ed25519.PublicKeySize {
		return nil, errors.New("replay: no public key to verify with")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Replay{sink: sink, prefix: prefix, o: o}, nil
}

// Routes are the replay's handlers for the admin mux: GET only.
//
//	GET /recordings            search (filters as query parameters) and results
//	GET /recordings/{session}  one session's timeline and verification (id or unique prefix)
func (rp *Replay) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"GET /recordings":           rp.reader(rp.search),
		"GET /recordings/{session}": rp.reader(rp.session),
	}
}

type readerFunc func(w http.ResponseWriter, r *http.Request, who string)

// reader admits signed-in members of a reader group.
func (rp *Replay) reader(next readerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var id identity.Identity
		var who string
		if rp.o.SignIn != nil {
			sess, ok := rp.o.SignIn.Session(r)
			if !ok {
				w.Header().Set("Cache-Control", "no-store")
				// StartURL is on the public URL; signin accepts only a path on it as the return.
				http.Redirect(w, r, rp.o.SignIn.StartURL(r.URL.RequestURI()), http.StatusSeeOther) //nolint:gosec // G710: see above
				return
			}
			id, who = sess.Identity, sess.Name
		} else {
			tok, ok := bearer(r.Header.Get("Authorization"))
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="mcpguard-recordings"`)
				rp.refuse(w, http.StatusUnauthorized, "Sign in required: send an approver token (Authorization: Bearer), or configure approvals.signin.")
				return
			}
			var err error
			id, err = rp.o.Auth.Authenticate(r.Context(), tok)
			if errors.Is(err, approvals.ErrAgentToken) {
				rp.o.Log.Warn("agent token refused on the recordings replay")
				rp.refuse(w, http.StatusForbidden, "Agent tokens cannot read recordings.")
				return
			}
			if err != nil {
				rp.o.Log.Info("recordings replay authentication failed", "err", err.Error())
				w.Header().Set("WWW-Authenticate", `Bearer realm="mcpguard-recordings", error="invalid_token"`)
				rp.refuse(w, http.StatusUnauthorized, "That token was not accepted.")
				return
			}
			who = id.Subject
		}
		if !slices.ContainsFunc(id.Groups, func(g string) bool { return slices.Contains(rp.o.Readers, g) }) {
			rp.o.Log.Warn("recordings replay refused: not in a reader group", "subject", id.Subject, "issuer", id.Issuer)
			rp.refuse(w, http.StatusForbidden, "You are signed in, but not in a group that may read recordings (recordings.web.readers).")
			return
		}
		next(w, r, who)
	})
}

func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// filters are the search form's fields, named as the CLI's flags.
type filters struct {
	Since, Until, Identity, Tool, Rule, Decision, RequestID, Session string
}

func (f filters) empty() bool { return f == filters{} }

// fields are f's values by parameter name, in the form's order.
func (f filters) fields() [][2]string {
	return [][2]string{
		{"since", f.Since},
		{"until", f.Until},
		{"identity", f.Identity},
		{"tool", f.Tool},
		{"rule", f.Rule},
		{"decision", f.Decision},
		{"request_id", f.RequestID},
		{"session", f.Session},
	}
}

// encode is the query string of f (links to a session keep the search).
func (f filters) encode() string {
	v := url.Values{}
	for _, kv := range f.fields() {
		if kv[1] != "" {
			v.Set(kv[0], kv[1])
		}
	}
	return v.Encode()
}

// maxFilter bounds a filter value; longer ones are refused, not cut.
const maxFilter = 256

func (rp *Replay) parse(r *http.Request) (filters, recordings.Query, error) {
	q := r.URL.Query()
	f := filters{
		Since: q.Get("since"), Until: q.Get("until"), Identity: q.Get("identity"), Tool: q.Get("tool"),
		Rule: q.Get("rule"), Decision: q.Get("decision"), RequestID: q.Get("request_id"), Session: q.Get("session"),
	}
	var errs []error
	for _, kv := range f.fields() {
		if len(kv[1]) > maxFilter {
			errs = append(errs, fmt.Errorf("%s: longer than %d bytes", kv[0], maxFilter))
		}
	}
	rq := recordings.Query{
		Identity: f.Identity, Tool: f.Tool, Rule: f.Rule, Decision: f.Decision,
		RequestID: f.RequestID, Prefix: f.Session,
	}
	now := rp.o.Now()
	var err error
	if f.Since != "" {
		if rq.Since, err = recordings.ParseTime(f.Since, now); err != nil {
			errs = append(errs, fmt.Errorf("since: %w", err))
		}
	}
	if f.Until != "" {
		if rq.Until, err = recordings.ParseTime(f.Until, now); err != nil {
			errs = append(errs, fmt.Errorf("until: %w", err))
		}
	}
	return f, rq, errors.Join(errs...)
}

// Link is the address, relative to the admin port's root page paths (/approvals), of the
// recording of a request: its session at the request when the session is known
// (session is the recording's name, see [recordings.SessionKey]), else a search by request id.
func Link(session, requestID string) string {
	switch {
	case session != "" && requestID != "":
		return "recordings/" + url.PathEscape(session) + "#" + anchor(requestID)
	case session != "":
		return "recordings/" + url.PathEscape(session)
	case requestID != "":
		return "recordings?" + url.Values{"request_id": {requestID}}.Encode()
	}
	return ""
}
