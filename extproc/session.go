package extproc

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mcpguard/mcpguard/identity"
	"github.com/mcpguard/mcpguard/mcp"
	"github.com/mcpguard/mcpguard/policy"
)

// CodeSessionNotFound is the JSON-RPC error of a request naming a session the caller does
// not own (HTTP 404, as the MCP spec answers unknown sessions): whether the session exists
// for someone else is not disclosed.
const CodeSessionNotFound = -31004

// Sessions is the session stage: it binds every MCP session to the identity (issuer and
// subject) that opened it and refuses anyone else who names it, since mcpguard strips
// Authorization and the upstream cannot tell callers apart. On the 2024-11-05 HTTP+SSE
// transport it also correlates the responses arriving on the GET stream with the POSTed
// requests they answer (see [correlations]), so response stages know what was asked.
//
// Bindings live in the session store (shared by replicas when it is Redis) under
// "bind\x00<session id>", set if absent and refreshed on use with the store's TTL. A
// session id never bound (opened before this version, or the binding expired) binds to the
// first identity that uses it.
type Sessions struct {
	store    policy.Store
	corr     *correlations
	mismatch prometheus.Counter
}

var (
	_ RequestStage  = (*Sessions)(nil)
	_ ResponseStage = (*Sessions)(nil)
	_ FragmentStage = (*Sessions)(nil)
)

// NewSessions returns the stage keeping bindings in store.
func NewSessions(store policy.Store, reg prometheus.Registerer) (*Sessions, error) {
	if store == nil || reg == nil {
		return nil, errors.New("session stage: store and registerer are required")
	}
	s := &Sessions{
		store: store,
		corr:  newCorrelations(defaultCorrelationLimits()),
		mismatch: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpguard_extproc_session_identity_mismatch_total",
			Help: "Requests and upstream answers refused because the MCP session belongs to another identity.",
		}),
	}
	if err := reg.Register(s.mismatch); err != nil {
		return nil, fmt.Errorf("register session metrics: %w", err)
	}
	return s, nil
}

// Name implements [Stage].
func (*Sessions) Name() string { return "session" }

// OnRequest checks the session a request names (mcp-session-id, or the session query
// parameter of a 2024-11-05 POST) against its binding and, on the 2024-11-05 transport,
// remembers the requests so their answers on the GET stream can be matched.
func (s *Sessions) OnRequest(ctx context.Context, x *Exchange) (Verdict, error) {
	legacy := false
	sid, ambiguous := legacySession(x.Path)
	if ambiguous || (sid != "" && x.SessionID != "" && sid != x.SessionID) {
		// Which session the upstream serves would depend on how it reads the query.
		x.Log.Warn("request names more than one session; refused")
		return Verdict{
			Action: Deny, Status: http.StatusBadRequest,
			Err: &mcp.Error{Code: mcp.CodeInvalidRequest, Message: "invalid request: more than one session named"},
		}, nil
	}
	if x.SessionID == "" && x.Method == http.MethodPost && sid != "" {
		// The POST endpoint's session is the MCP session: policy counters, tool pins
		// and recordings are kept per session as on Streamable HTTP.
		x.SessionID, legacy = sid, true
	}
	if x.SessionID == "" {
		return Pass, nil
	}
	ok, err := s.bind(ctx, x, x.SessionID)
	if err != nil {
		return Verdict{}, err
	}
	if !ok {
		s.mismatch.Inc()
		x.Log.Warn("session named by another identity; refused", "subject", x.Identity.Subject)
		return Verdict{
			Action: Deny, Status: http.StatusNotFound,
			Err: &mcp.Error{Code: CodeSessionNotFound, Message: "session not found"},
		}, nil
	}
	if legacy && x.Body != nil {
		s.corr.add(x.SessionID, x.Body.Messages)
	}
	return Pass, nil
}

// OnResponse attaches to a response on a 2024-11-05 GET stream the request it answers.
func (s *Sessions) OnResponse(_ context.Context, x *Exchange, r *Response) (Verdict, error) {
	if !x.legacy || r.Request != nil || len(r.Msg.ID) == 0 {
		return Pass, nil
	}
	if r.Msg.Kind == mcp.KindResult || r.Msg.Kind == mcp.KindError {
		r.Request = s.corr.take(x.SessionID, r.Msg.ID)
	}
	return Pass, nil
}

// Fragments implements [FragmentStage]: an event too large to parse is no business of the
// session stage (policy decides whether it may pass); its request stays in the table until
// it expires.
func (*Sessions) Fragments(*Exchange) Filter { return passFilter{} }

// bind binds id to x's identity unless it is bound already, and reports whether the
// binding is x's identity.
func (s *Sessions) bind(ctx context.Context, x *Exchange, id string) (bool, error) {
	want := owner(x.Identity)
	got, err := s.store.Pin(ctx, "bind\x00"+id, want)
	if err != nil {
		return false, fmt.Errorf("bind session: %w", err)
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1, nil
}

// owner is what a binding stores: a digest of issuer and subject, so the shared store
// holds no identities and comparisons take the same time whoever asks.
func owner(id identity.Identity) string {
	h := sha256.New()
	h.Write([]byte(strconv.Itoa(len(id.Issuer))))
	h.Write([]byte{0})
	h.Write([]byte(id.Issuer))
	h.Write([]byte{0})
	h.Write([]byte(id.Subject))
	return hex.EncodeToString(h.Sum(nil))
}

// opened binds a session the upstream just named (the mcp-session-id of a response, or the
// session of a 2024-11-05 endpoint event) to the identity of the exchange that opened it.
// false means the id is bound to someone else: the answer must not reach this caller.
func (s *Sessions) opened(ctx context.Context, x *Exchange, id string) (bool, error) {
	ok, err := s.bind(ctx, x, id)
	if err != nil {
		return false, err
	}
	if !ok {
		s.mismatch.Inc()
		x.Log.Warn("upstream named a session bound to another identity; answer withheld", "subject", x.Identity.Subject)
	}
	return ok, nil
}

// sessionOpened runs when the upstream's response headers arrive: a session id the request
// did not name is a session the upstream opened for this caller (initialize) and is bound to
// it before the client learns the id. It returns a non-nil answer when the response must be
// refused instead.
func (st *stream) sessionOpened(ctx context.Context, h *extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) {
	sess := st.s.sess
	if sess == nil || st.x == nil {
		return nil, nil
	}
	var id string
	for _, hv := range h.GetHeaders().GetHeaders() {
		if strings.EqualFold(hv.GetKey(), mcp.HeaderSessionID) {
			if id = string(hv.GetRawValue()); id == "" {
				id = hv.GetValue()
			}
			break
		}
	}
	if id == "" || id == st.x.SessionID {
		return nil, nil
	}
	ok, err := sess.opened(ctx, st.x, id)
	if err == nil && ok {
		return nil, nil
	}
	if err != nil {
		st.s.m.decisions.WithLabelValues(sess.Name(), "error").Inc()
		st.log.Warn("session could not be bound; response withheld", "err", err)
	} else {
		st.s.m.decisions.WithLabelValues(sess.Name(), Deny.String()).Inc()
	}
	st.phase = finished
	return immediate(http.StatusBadGateway, mcp.ErrorResponse(st.x.requestID(), internal("session could not be established")),
		"mcpguard_session_not_bound"), nil
}

// endpoint handles the 2024-11-05 endpoint event of a GET stream: the session it announces
// is bound to the stream's identity before the client can POST to it, and the stream's
// later responses are matched against that session's requests. A session bound to another
// identity ends the stream (fail closed). An endpoint without a session query parameter
// passes unbound: there is nothing a later POST could be checked against.
func (st *stream) endpoint(ctx context.Context, ev mcp.Event) ([]byte, error) {
	sess := st.s.sess
	if sess == nil {
		return ev.Raw, nil
	}
	sid, ambiguous := legacySession(strings.TrimSpace(string(ev.Data)))
	if ambiguous {
		return nil, status.Error(codes.InvalidArgument, "2024-11-05 endpoint names more than one session")
	}
	if sid == "" {
		st.log.Warn("2024-11-05 endpoint without a session parameter; its POSTs are not bound to an identity")
		return ev.Raw, nil
	}
	ok, err := sess.opened(ctx, st.x, sid)
	if err != nil {
		st.log.Warn("session could not be bound; stream ended", "err", err)
		return nil, status.Error(codes.Unavailable, "session could not be bound")
	}
	if !ok {
		return nil, status.Error(codes.PermissionDenied, "session belongs to another identity")
	}
	st.x.SessionID, st.x.legacy = sid, true
	st.x.toolsLists = func() ([]json.RawMessage, bool) { return sess.corr.toolsLists(sid) }
	return ev.Raw, nil
}

// legacySession is the session id in the query of a 2024-11-05 POST endpoint: the SDKs name
// the parameter sessionId (TypeScript), session_id (Python) or sessionid (Go). ambiguous
// reports a query naming more than one session (two spellings, a repeated parameter, or a
// spelling that differs only by case, '_' or '-'): servers differ in which one they take,
// so the gateway could check one session while the upstream serves another.
func legacySession(uri string) (sid string, ambiguous bool) {
	_, query, ok := strings.Cut(uri, "?")
	if !ok {
		return "", false
	}
	if i := strings.IndexByte(query, '#'); i >= 0 {
		query = query[:i]
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", false
	}
	for k, vs := range q {
		if !sessionParam(k) {
			continue
		}
		for _, v := range vs {
			if sid != "" && v != sid {
				return "", true
			}
			sid = v
		}
	}
	return sid, false
}

// sessionParam reports whether a query parameter names the session, however it is cased
// or separated.
func sessionParam(k string) bool {
	k = strings.NewReplacer("_", "", "-", "").Replace(k)
	return strings.EqualFold(k, "sessionid")
}

// listsTools reports whether a result has the shape of a tools/list result (a top-level
// tools array); no other MCP result has one.
func listsTools(result json.RawMessage) bool {
	var r struct {
		Tools json.RawMessage `json:"tools"`
	}
	if json.Unmarshal(result, &r) != nil {
		return false
	}
	t := strings.TrimSpace(string(r.Tools))
	return strings.HasPrefix(t, "[")
}
