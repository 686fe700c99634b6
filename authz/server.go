package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Header names the service reads or writes.
const (
	headerPrefix   = "x-mcpguard-"
	headerSubject  = "x-mcpguard-subject"
	headerClientID = "x-mcpguard-client-id"
	headerGroups   = "x-mcpguard-groups"
)

// Metric results.
const (
	resultAllowed         = "allowed"
	resultUnauthenticated = "denied_unauthenticated"
	resultForbidden       = "denied_forbidden"
	resultError           = "error"
)

// Server implements envoy.service.auth.v3.Authorization.
type Server struct {
	authv3.UnimplementedAuthorizationServer

	v         *Verifier
	cfg       Config
	issuerAud map[string]string
	log       *slog.Logger
	met       *metrics
	tracer    trace.Tracer // nil: tracing off (trace.go)
	audit     Auditor      // nil: no audit events
}

var _ authv3.AuthorizationServer = (*Server)(nil)

// NewServer answers ext_authz checks with v. cfg must be the config v was built from (it has
// been validated there). Like prometheus.MustRegister, it panics if reg rejects its metrics.
func NewServer(v *Verifier, cfg Config, log *slog.Logger, reg prometheus.Registerer) *Server {
	met, err := newServerMetrics(reg)
	if err != nil {
		panic(fmt.Sprintf("authz: %v", err))
	}
	aud := map[string]string{}
	for _, is := range cfg.Issuers {
		if is.Audience != "" {
			aud[is.Issuer] = is.Audience
		}
	}
	return &Server{v: v, cfg: cfg, issuerAud: aud, log: log, met: met}
}

// Register registers the service on r.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	authv3.RegisterAuthorizationServer(r, s)
}

// Check decides one HTTP request. Denials are responses; the error is non-nil only for an
// internal fault (route misconfiguration, issuer keys never loaded), which Envoy treats as a failure.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	start := time.Now()
	httpReq := req.GetAttributes().GetRequest().GetHttp()
	h := headers{m: httpReq.GetHeaders(), hm: httpReq.GetHeaderMap().GetHeaders()}
	rid := httpReq.GetId()
	if rid == "" {
		rid, _ = h.get("x-request-id")
	}
	var span trace.Span
	if s.tracer != nil {
		ctx, span = s.startSpan(ctx, h, rid, start)
		defer span.End()
	}
	o, err := s.decide(ctx, req, httpReq, h, rid)
	result, reasonClass := resultAllowed, ""
	switch {
	case err != nil:
		result = resultError
	case o.d != nil:
		result, reasonClass = resultUnauthenticated, o.d.r.class()
		if o.d.r == reasonScope {
			result = resultForbidden
		}
	}
	s.met.checks.WithLabelValues(result).Inc()
	s.met.duration.Observe(time.Since(start).Seconds())
	if span != nil || s.audit != nil {
		s.observe(ctx, span, o, rid, result, reasonClass)
	}
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "authz check failed", slog.String("request_id", rid), slog.String("err", err.Error()))
		return nil, err
	}
	s.log.LogAttrs(ctx, slog.LevelDebug, "authz decision", slog.String("request_id", rid),
		slog.String("subject", o.subject), slog.String("result", result), slog.String("reason", reasonClass))
	return o.resp, nil
}

// outcome is a decision: the response, why it denies (nil when allowed) and who asked.
type outcome struct {
	resp     *authv3.CheckResponse
	d        *denial
	subject  string
	clientID string
	issuer   string
}

func (s *Server) decide(ctx context.Context, req *authv3.CheckRequest, httpReq *authv3.AttributeContext_HttpRequest, h headers, rid string) (outcome, error) {
	rt, err := s.route(req.GetAttributes().GetContextExtensions())
	if err != nil {
		return outcome{}, status.Errorf(codes.Internal, "authz route misconfigured (request %s): %v", rid, err)
	}
	p := httpReq.GetPath()
	if p == "" {
		p, _ = h.get(":path")
	}
	if queryHasToken(p) {
		return s.denied(rt, deny(reasonQueryToken)), nil
	}
	token, r := bearer(h)
	if r != reasonNone {
		return s.denied(rt, deny(r)), nil
	}
	vf, err := s.v.verify(ctx, token)
	var d *denial
	switch {
	case errors.As(err, &d):
		return s.denied(rt, d), nil
	case errors.Is(err, errNoKeys):
		return outcome{}, status.Errorf(codes.Unavailable, "signing keys unavailable (request %s)", rid)
	case err != nil:
		return outcome{}, status.Errorf(codes.Internal, "verify token (request %s): %v", rid, err)
	}
	aud := cmpOr(rt.audience, s.issuerAud[vf.id.Issuer], s.cfg.Audience)
	if aud == "" {
		return outcome{}, status.Errorf(codes.Internal, "authz: no audience configured for this route (request %s)", rid)
	}
	if !slices.Contains(vf.aud, aud) {
		o := s.denied(rt, deny(reasonAudience))
		o.subject, o.clientID, o.issuer = vf.id.Subject, vf.id.ClientID, vf.id.Issuer
		return o, nil
	}
	for _, sc := range rt.scopes {
		if !slices.Contains(vf.id.Scopes, sc) {
			o := s.denied(rt, deny(reasonScope))
			o.subject, o.clientID, o.issuer = vf.id.Subject, vf.id.ClientID, vf.id.Issuer
			return o, nil
		}
	}
	return outcome{resp: s.allowed(rt, h, vf), subject: vf.id.Subject, clientID: vf.id.ClientID, issuer: vf.id.Issuer}, nil
}

func cmpOr(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// route is the effective per-route settings: config defaults overridden by context_extensions.
type route struct {
	audience string
	scopes   []string // all required: config's then the route's
	metadata string
	forward  bool
}

func (s *Server) route(ext map[string]string) (route, error) {
	rt := route{scopes: s.cfg.RequiredScopes, metadata: s.cfg.ResourceMetadataURL, forward: s.cfg.ForwardAuthorization}
	if len(ext) == 0 {
		return rt, nil
	}
	var errs []error
	for k, v := range ext {
		switch k {
		case "audience":
			if v == "" || strings.TrimSpace(v) != v {
				errs = append(errs, errors.New("context_extensions.audience: must be a non-empty URI"))
			}
			rt.audience = v
		case "scopes":
			extra := strings.Split(v, " ")
			for _, sc := range extra {
				if sc == "" || strings.ContainsAny(sc, "\t\"\\") || !printable(sc) {
					errs = append(errs, errors.New("context_extensions.scopes: must be scope tokens separated by single spaces"))
					break
				}
			}
			rt.scopes = append(slices.Clip(rt.scopes), extra...)
		case "resource_metadata":
			if err := checkHeaderParam(v); err != nil || v == "" {
				errs = append(errs, errors.New("context_extensions.resource_metadata: must be a URL of printable ASCII"))
			}
			rt.metadata = v
		case "forward_authorization":
			switch v {
			case "true":
				rt.forward = true
			case "false":
				rt.forward = false
			default:
				errs = append(errs, errors.New(`context_extensions.forward_authorization: must be "true" or "false"`))
			}
		default:
			errs = append(errs, fmt.Errorf("context_extensions: unknown key %q", printableOrHex(k)))
		}
	}
	return rt, errors.Join(errs...)
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func printableOrHex(s string) string {
	if printable(s) && len(s) <= 64 {
		return s
	}
	return fmt.Sprintf("%.64x", s)
}

// headers reads the request headers Envoy sent: the headers map (lower-case keys, repeated
// headers comma-joined) or, with encode_raw_headers, the header_map list.
type headers struct {
	m  map[string]string
	hm []*corev3.HeaderValue
}

// get returns the value of name and how many times it appears.
func (h headers) get(name string) (string, int) {
	if v, ok := h.m[name]; ok {
		return v, 1
	}
	val, n := "", 0
	for _, hv := range h.hm {
		if strings.EqualFold(hv.GetKey(), name) {
			n++
			val = hv.GetValue()
			if raw := hv.GetRawValue(); len(raw) > 0 {
				val = string(raw)
			}
		}
	}
	return val, n
}

// prefixed lists the names starting with prefix (lower-cased).
func (h headers) prefixed(prefix string) []string {
	var out []string
	for k := range h.m {
		if len(k) >= len(prefix) && strings.EqualFold(k[:len(prefix)], prefix) {
			out = append(out, strings.ToLower(k))
		}
	}
	for _, hv := range h.hm {
		k := hv.GetKey()
		if len(k) >= len(prefix) && strings.EqualFold(k[:len(prefix)], prefix) {
			out = append(out, strings.ToLower(k))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// bearer extracts the token from the single Authorization header: scheme "Bearer" (any case),
// one or more spaces, then a token68 value. Anything else is refused.
func bearer(h headers) (string, reason) {
	v, n := h.get("authorization")
	switch {
	case n == 0 || v == "":
		return "", reasonMissing
	case n > 1:
		return "", reasonMalformedHeader
	}
	scheme, tok, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", reasonMalformedHeader
	}
	tok = strings.TrimLeft(tok, " ")
	if !isToken68(tok) {
		return "", reasonMalformedHeader
	}
	return tok, reasonNone
}

// isToken68 reports whether s is an RFC 7235 token68: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isToken68(s string) bool {
	end := len(s)
	for end > 0 && s[end-1] == '=' {
		end--
	}
	if end == 0 {
		return false
	}
	for i := 0; i < end; i++ {
		if !token68Char[s[i]] {
			return false
		}
	}
	return true
}

// token68Char marks the bytes a token68 may contain before its trailing '='s. A table, since
// every check scans the whole token.
var token68Char = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
	}
	return t
}()

// queryHasToken reports an access_token query parameter (RFC 6750 §2.3), which MCP forbids.
func queryHasToken(path string) bool {
	_, q, ok := strings.Cut(path, "?")
	if !ok {
		return false
	}
	q, _, _ = strings.Cut(q, "#")
	for q != "" {
		var part string
		part, q, _ = strings.Cut(q, "&")
		for _, p := range strings.Split(part, ";") {
			key, _, _ := strings.Cut(p, "=")
			if k, err := url.QueryUnescape(key); err == nil {
				key = k
			}
			if strings.EqualFold(strings.TrimSpace(key), "access_token") {
				return true
			}
		}
	}
	return false
}

func (s *Server) allowed(rt route, h headers, vf *verified) *authv3.CheckResponse {
	ok := &authv3.OkHttpResponse{}
	set := map[string]bool{}
	if s.cfg.IdentityHeaders {
		groups := make([]string, len(vf.id.Groups))
		for i, g := range vf.id.Groups {
			groups[i] = escapeHeader(g, ',')
		}
		for _, kv := range [][2]string{
			{headerSubject, escapeHeader(vf.id.Subject, 0)},
			{headerClientID, escapeHeader(vf.id.ClientID, 0)},
			{headerGroups, strings.Join(groups, ",")},
		} {
			set[kv[0]] = true
			ok.Headers = append(ok.Headers, &corev3.HeaderValueOption{
				Header: &corev3.HeaderValue{Key: kv[0], Value: kv[1]},
				// append (deprecated) rather than append_action: ext_proc honours only append, and
				// Envoy refuses an option that sets both. false = overwrite.
				Append: wrapperspb.Bool(false),
			})
		}
	}
	// Headers this response sets are overwritten (append=false) rather than also removed,
	// so the outcome does not depend on the order in which Envoy applies the two lists.
	for _, name := range h.prefixed(headerPrefix) {
		if !set[name] {
			ok.HeadersToRemove = append(ok.HeadersToRemove, name)
		}
	}
	if !rt.forward {
		ok.HeadersToRemove = append(ok.HeadersToRemove, "authorization")
	}
	return &authv3.CheckResponse{
		Status:          &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse:    &authv3.CheckResponse_OkResponse{OkResponse: ok},
		DynamicMetadata: vf.meta,
	}
}

// escapeHeader percent-encodes '%', extra and bytes outside printable ASCII, so claim values
// are always valid header values.
func escapeHeader(s string, extra byte) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '%' || (extra != 0 && c == extra) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '%' || (extra != 0 && c == extra) {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// denied builds the 401/403 answer for d: a denial is a response, never an error.
func (s *Server) denied(rt route, d *denial) outcome {
	var params []string
	code, httpCode, errCode := codes.Unauthenticated, typev3.StatusCode_Unauthorized, "invalid_token"
	switch d.r {
	case reasonMissing:
		// RFC 6750 §3.1: no error code when the request carried no credentials.
		errCode = "unauthorized"
	case reasonScope:
		code, httpCode, errCode = codes.PermissionDenied, typev3.StatusCode_Forbidden, "insufficient_scope"
		params = append(params, `error="insufficient_scope"`, `scope="`+strings.Join(rt.scopes, " ")+`"`)
	default:
		params = append(params, `error="invalid_token"`, `error_description="`+d.r.description()+`"`)
	}
	if rt.metadata != "" {
		params = append(params, `resource_metadata="`+rt.metadata+`"`)
	}
	challenge := "Bearer"
	if len(params) > 0 {
		challenge += " " + strings.Join(params, ", ")
	}
	body, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{errCode, d.r.description()})
	return outcome{d: d, resp: &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(code), Message: d.r.description()},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: httpCode},
			Headers: []*corev3.HeaderValueOption{
				{Header: &corev3.HeaderValue{Key: "www-authenticate", Value: challenge}, Append: wrapperspb.Bool(false)},
				{Header: &corev3.HeaderValue{Key: "content-type", Value: "application/json"}, Append: wrapperspb.Bool(false)},
			},
			Body: string(body),
		}},
	}}
}
