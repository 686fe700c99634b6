package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/mcpguard/mcpguard/identity"
)

// Authenticator verifies an approver's bearer token (signature, issuer, audience, expiry)
// and returns who they are. [ErrAgentToken] means a valid token for the wrong party (403);
// any other error means "not authenticated" (401).
type Authenticator interface {
	Authenticate(ctx context.Context, bearer string) (identity.Identity, error)
}

// ErrAgentToken reports a token issued for the MCP resource (an agent's token). Approvers
// authenticate with tokens for the approvals audience (approvals.api.audience), so an agent
// cannot approve calls, its own or another agent's, whatever groups its token carries.
var ErrAgentToken = errors.New("token issued for the MCP audience")

// agentTokenMsg is what a client presenting an agent token is told.
const agentTokenMsg = "agent tokens cannot decide approvals: this token is valid for the MCP audience; " +
	"use a token issued for the approvals audience (approvals.api.audience)"

// maxReason bounds a decision's reason; maxBody bounds what a decision request may send.
const (
	maxReason = 1000
	maxBody   = 16 << 10
)

// Routes returns the approver HTTP API and the approvals page, keyed by ServeMux pattern,
// for the admin port:
//
//	GET  /v1/approvals?state=pending     requests the caller may decide or asked for
//	GET  /v1/approvals/{id}
//	POST /v1/approvals/{id}/approve      {"reason": "..."}
//	POST /v1/approvals/{id}/deny         {"reason": "..."} (reason required)
//	GET  /approvals                      the page (sign in by pasting a token, or with
//	                                     OpenID Connect under /approvals/signin: see [WithSignIn])
//
// Every route requires an authenticated approver; anonymous calls get 401.
func (s *Service) Routes(auth Authenticator, log *slog.Logger) map[string]http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &api{s: s, auth: auth, log: log}
	p := &page{api: a, people: s.people}
	m := map[string]http.Handler{
		"GET /v1/approvals":               a.authed(a.list),
		"GET /v1/approvals/{id}":          a.authed(a.get),
		"POST /v1/approvals/{id}/approve": a.authed(a.decide(true)),
		"POST /v1/approvals/{id}/deny":    a.authed(a.decide(false)),
		"GET /approvals":                  http.HandlerFunc(p.show),
		"POST /approvals/signin":          http.HandlerFunc(p.signIn),
		"POST /approvals/signout":         http.HandlerFunc(p.signOut),
		"POST /approvals/{id}/decide":     http.HandlerFunc(p.decide),
	}
	s.mountSignIn(m)
	return m
}

type api struct {
	s    *Service
	auth Authenticator
	log  *slog.Logger
}

type authedFunc func(w http.ResponseWriter, r *http.Request, who identity.Identity)

// authed requires a valid bearer token.
func (a *api) authed(next authedFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mcpguard-approvals"`)
			writeError(w, http.StatusUnauthorized, "bearer token required")
			return
		}
		who, err := a.auth.Authenticate(r.Context(), tok)
		if errors.Is(err, ErrAgentToken) {
			a.log.Warn("agent token refused on the approvals API")
			writeError(w, http.StatusForbidden, agentTokenMsg)
			return
		}
		if err != nil {
			a.log.Info("approver authentication failed", "err", err.Error())
			w.Header().Set("WWW-Authenticate", `Bearer realm="mcpguard-approvals", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "invalid token")
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

func (a *api) list(w http.ResponseWriter, r *http.Request, who identity.Identity) {
	st := State(r.URL.Query().Get("state"))
	if st != "" && st.Validate() != nil {
		writeError(w, http.StatusBadRequest, "unknown state")
		return
	}
	list, err := a.s.List(r.Context(), who, st)
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]View, 0, len(list))
	for _, q := range list {
		out = append(out, view(q))
	}
	writeJSON(w, http.StatusOK, map[string]any{"approvals": out})
}

func (a *api) get(w http.ResponseWriter, r *http.Request, who identity.Identity) {
	req, err := a.s.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	// Someone who could neither decide nor asked does not learn the request exists.
	if !PartyOf(who).Same(req.Requester) && !inGroups(who, req.Approvers) {
		writeError(w, http.StatusNotFound, "not found")
		return
	}
	writeJSON(w, http.StatusOK, view(req))
}

func (a *api) decide(approve bool) authedFunc {
	return func(w http.ResponseWriter, r *http.Request, who identity.Identity) {
		var body struct {
			Reason string `json:"reason"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			writeError(w, http.StatusBadRequest, `body must be {"reason": "..."}`)
			return
		}
		req, status, msg := a.apply(r.Context(), r.PathValue("id"), who, approve, body.Reason)
		if status != http.StatusOK {
			writeError(w, status, msg)
			return
		}
		writeJSON(w, http.StatusOK, view(req))
	}
}

// apply validates and records a decision; it returns the HTTP status and client message.
func (a *api) apply(ctx context.Context, id string, who identity.Identity, approve bool, reason string) (Request, int, string) {
	reason = strings.TrimSpace(reason)
	switch {
	case !utf8.ValidString(reason) || len(reason) > maxReason:
		return Request{}, http.StatusBadRequest, "reason must be UTF-8 text of at most 1000 bytes"
	case !approve && reason == "":
		return Request{}, http.StatusBadRequest, "a denial needs a reason"
	}
	req, err := a.s.Decide(ctx, id, who, approve, reason)
	switch {
	case err == nil:
		return req, http.StatusOK, ""
	case errors.Is(err, ErrNotFound):
		return Request{}, http.StatusNotFound, "not found"
	case errors.Is(err, ErrForbidden):
		return Request{}, http.StatusForbidden, strings.TrimPrefix(err.Error(), "decide approval "+id+": ")
	case errors.Is(err, ErrConflict):
		return Request{}, http.StatusConflict, "request is no longer pending"
	default:
		a.log.Error("approval decision failed", "approval_id", id, "err", err.Error())
		return Request{}, http.StatusInternalServerError, "internal error"
	}
}

func (a *api) fail(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, "not found")
		return
	}
	a.log.Error("approvals api", "err", err.Error())
	writeError(w, http.StatusInternalServerError, "internal error")
}

func inGroups(id identity.Identity, groups []string) bool {
	for _, g := range id.Groups {
		for _, a := range groups {
			if g == a {
				return true
			}
		}
	}
	return false
}

// View is a request as the API and webhooks show it: without its internal index keys, and
// with Fields, every leaf of params made visible (see [Visible]) and complete.
type View struct {
	Request
	Fields []Field `json:"fields"`
}

// view is the [View] of r.
func view(r Request) View {
	r.Keys = nil
	return View{Request: r, Fields: shownFields(r)}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
