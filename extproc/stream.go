package extproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/mcpguard/mcpguard/identity"
	"github.com/mcpguard/mcpguard/mcp"
)

// phase is what the stream expects next from Envoy.
type phase uint8

const (
	awaitRequestHeaders phase = iota
	awaitRequestBody
	awaitResponseHeaders
	awaitResponseBody
	awaitResponseEnd // an accumulated JSON body was answered whole; what follows must be empty
	finished
)

func (p phase) String() string {
	return [...]string{"request_headers", "request_body", "response_headers", "response_body", "response_end", "finished"}[p]
}

// respMode is how the response body is processed.
type respMode uint8

const (
	respBuffered   respMode = iota // Envoy buffers; one body message
	respEvents                     // text/event-stream, STREAMED, event by event
	respAccumulate                 // large JSON, STREAMED, accumulated here
)

// attrNamespace is where Envoy puts request_attributes.
const attrNamespace = "envoy.filters.http.ext_proc"

// codeNoIdentity is the JSON-RPC error for a request that did not pass ext_authz; an
// application code outside the range the JSON-RPC and MCP specs reserve.
const codeNoIdentity = -31001

// errNotInspectable marks a body that cannot be parsed as JSON-RPC.
var errNotInspectable = errors.New("body is not inspectable JSON-RPC")

// stream is the state of one ext_proc stream; used by its Process goroutine only.
type stream struct {
	s   *Server
	srv extprocv3.ExternalProcessor_ProcessServer
	log *slog.Logger

	phase       phase
	x           *Exchange
	idErr       error
	held        [finished + 1]bool
	reqMode     filterv3.ProcessingMode_BodySendMode // configured, from protocol_config
	respMode    filterv3.ProcessingMode_BodySendMode
	mode        respMode
	methods     map[string]string // request id → method, to label results
	dec         mcp.Decoder
	acc         []byte
	accOver     bool
	accEnd      valueEnd // where the accumulated JSON body ends (jsonend.go)
	completed   bool     // the observers were told the exchange is complete
	frag        []Filter // filters of the oversized event streaming through (maskstream.go)
	reqBody     []byte   // request body as replaced by a request stage; nil when unchanged
	codec       *decoder // content decoder of a coded response body (encoding.go); nil when plain
	codecLogged bool
}

func newStream(s *Server, srv extprocv3.ExternalProcessor_ProcessServer) *stream {
	return &stream{
		s: s, srv: srv, log: s.log,
		reqMode:  filterv3.ProcessingMode_BUFFERED,
		respMode: filterv3.ProcessingMode_BUFFERED,
		dec:      mcp.Decoder{MaxEvent: s.cfg.MaxEventBytes},
	}
}

// handle answers one Envoy message; a non-nil error ends the stream with a gRPC error.
func (st *stream) handle(ctx context.Context, req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
	if req.GetObservabilityMode() {
		return nil, status.Error(codes.FailedPrecondition, "observability mode cannot enforce; configure ext_proc without it")
	}
	switch r := req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		if err := st.expect(awaitRequestHeaders, "request_headers"); err != nil {
			return nil, err
		}
		if pc := req.GetProtocolConfig(); pc != nil {
			st.reqMode, st.respMode = pc.GetRequestBodyMode(), pc.GetResponseBodyMode()
		}
		return st.requestHeaders(ctx, req, r.RequestHeaders)
	case *extprocv3.ProcessingRequest_RequestBody:
		if err := st.expect(awaitRequestBody, "request_body"); err != nil {
			return nil, err
		}
		return st.requestBody(ctx, r.RequestBody)
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		if err := st.expect(awaitResponseHeaders, "response_headers"); err != nil {
			return nil, err
		}
		if resp, err := st.sessionOpened(ctx, r.ResponseHeaders); resp != nil || err != nil {
			return resp, err
		}
		return st.responseHeaders(r.ResponseHeaders)
	case *extprocv3.ProcessingRequest_ResponseBody:
		if st.phase != awaitResponseEnd {
			if err := st.expect(awaitResponseBody, "response_body"); err != nil {
				return nil, err
			}
		}
		return st.decodedBody(ctx, r.ResponseBody)
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		return st.responseTrailers()
	default:
		return nil, status.Errorf(codes.FailedPrecondition, "unexpected %T in phase %s", r, st.phase)
	}
}

func (st *stream) expect(p phase, got string) error {
	if st.phase != p {
		return status.Errorf(codes.FailedPrecondition, "%s out of order: expecting %s", got, st.phase)
	}
	return nil
}

func (st *stream) requestHeaders(ctx context.Context, req *extprocv3.ProcessingRequest, h *extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) {
	hs := readHeaders(h.GetHeaders())
	x := &Exchange{
		Received:  time.Now(),
		RequestID: req.GetAttributes()[attrNamespace].GetFields()["request.id"].GetStringValue(),
		SessionID: hs.Get("mcp-session-id"),
		Method:    hs.Get(":method"),
		Path:      hs.Get(":path"),
		Headers:   hs,
	}
	if x.RequestID == "" {
		x.RequestID = hs.Get("x-request-id")
	}
	x.Log = st.s.log.With("request_id", x.RequestID, "session_id", x.SessionID)
	st.log = x.Log
	st.x = x
	// Only Envoy's metadata_context is trusted: it carries what ext_authz established.
	x.Identity, st.idErr = identity.FromStruct(req.GetMetadataContext().GetFilterMetadata()[identity.Namespace])

	if h.GetEndOfStream() {
		st.phase = awaitResponseHeaders
		return st.decide(ctx, awaitRequestHeaders, requestHeadersPass)
	}
	if r := st.codedRequest(hs); r != nil {
		return r, st.finish()
	}
	if st.reqMode != filterv3.ProcessingMode_BUFFERED {
		return nil, status.Errorf(codes.FailedPrecondition, "request body mode %s: must be BUFFERED to inspect MCP requests", st.reqMode)
	}
	// Envoy holds the request until the buffered body is answered, so deciding there
	// (where the JSON-RPC id is known) lets nothing through early.
	st.phase = awaitRequestBody
	return requestHeadersPass(), nil
}

func (st *stream) requestBody(ctx context.Context, b *extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
	// BUFFERED (required in requestHeaders) sends the whole body in one message. It carries
	// end_of_stream false when the request has trailers: Envoy sends the buffered body as the
	// trailers arrive, and forwards them only in trailer mode SEND.
	st.phase = awaitResponseHeaders
	if len(b.GetBody()) > st.s.cfg.MaxRequestBytes {
		return immediate(http.StatusRequestEntityTooLarge, mcp.ErrorResponse(nil, &mcp.Error{
			Code: mcp.CodeInvalidRequest, Message: "request body too large",
		}), "mcpguard_request_too_large"), st.finish()
	}
	body, perr := mcp.Parse(b.GetBody())
	if perr == nil {
		st.x.Body = body
	}
	if st.idErr == nil && perr != nil {
		e := asRPC(perr)
		return immediate(e.HTTPStatus(), mcp.ErrorResponse(e.ID(), e), "mcpguard_unparsable_request"), st.finish()
	}
	return st.decide(ctx, awaitRequestBody, func() *extprocv3.ProcessingResponse {
		c := &extprocv3.CommonResponse{}
		if st.reqBody != nil {
			// BUFFERED with headers sent keeps content-length, and Envoy refuses a mutated
			// body whose length differs from it: the length travels with the new body.
			c.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: st.reqBody}}
			c.HeaderMutation = &extprocv3.HeaderMutation{
				SetHeaders: []*corev3.HeaderValueOption{header("content-length", strconv.Itoa(len(st.reqBody)))},
			}
		}
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{
			RequestBody: &extprocv3.BodyResponse{Response: c},
		}}
	})
}

// decide runs the request pipeline; pass builds the answer that lets the request go on.
func (st *stream) decide(ctx context.Context, p phase, pass func() *extprocv3.ProcessingResponse) (*extprocv3.ProcessingResponse, error) {
	x := st.x
	if st.idErr != nil {
		st.s.m.decisions.WithLabelValues("identity", Deny.String()).Inc()
		x.Log.Warn("request without verified identity refused", "err", st.idErr)
		return immediate(http.StatusForbidden, st.errorBody(&mcp.Error{
			Code: codeNoIdentity, Message: "forbidden: no verified identity",
		}), "mcpguard_no_identity"), st.finish()
	}
	st.countRequest()
	x.hold = st.holder(p)
	defer func() { x.hold = nil }()
	for _, stg := range st.s.req {
		start := time.Now()
		v, err := stg.OnRequest(ctx, x)
		st.s.m.duration.WithLabelValues(stg.Name()).Observe(time.Since(start).Seconds())
		if err != nil {
			if ctx.Err() != nil {
				return nil, status.FromContextError(ctx.Err()).Err()
			}
			st.s.m.decisions.WithLabelValues(stg.Name(), "error").Inc()
			x.Log.Warn("request stage failed", "stage", stg.Name(), "err", err)
			v = Verdict{Action: Deny, Err: internal("request could not be checked")}
		} else {
			st.s.m.decisions.WithLabelValues(stg.Name(), v.Action.String()).Inc()
		}
		switch v.Action {
		case Continue:
			continue
		case Replace:
			err := st.replaceBody(v.Message)
			if err == nil {
				continue
			}
			x.Log.Warn("request stage produced an invalid replacement; refused", "stage", stg.Name(), "err", err)
			v = Verdict{Action: Deny, Err: internal("request could not be checked")}
		case Deny:
		default: // anything unknown: fail closed
			x.Log.Warn("request stage returned an action requests do not support", "stage", stg.Name(), "action", v.Action.String())
			v = Verdict{Action: Deny, Err: internal("request could not be checked")}
		}
		if v.Action == Deny && v.Answer != nil {
			code := v.Status
			if code == 0 {
				code = http.StatusOK
			}
			return immediate(code, v.Answer, "mcpguard_denied_by_"+stg.Name()), st.finish()
		}
		if v.Err == nil {
			v.Err = internal("request refused")
		}
		code := v.Status
		if code == 0 {
			code = v.Err.HTTPStatusFor(x.Revision)
		}
		return immediate(code, st.errorBody(v.Err), "mcpguard_denied_by_"+stg.Name()), st.finish()
	}
	return pass(), nil
}

// replaceBody takes a request stage's replacement of the body (see [Replace]): stages may
// change what the messages carry, never which messages go upstream or what policy decided
// on, so a replacement that differs there is refused.
func (st *stream) replaceBody(raw []byte) error {
	old := st.x.Body
	if old == nil {
		return errors.New("no request body to replace")
	}
	b, err := mcp.Parse(raw)
	if err != nil {
		return fmt.Errorf("parse replacement: %w", err)
	}
	if b.Batch != old.Batch || len(b.Messages) != len(old.Messages) {
		return errors.New("replacement changes the messages of the body")
	}
	for i := range b.Messages {
		if !sameTarget(&old.Messages[i], &b.Messages[i]) {
			return fmt.Errorf("replacement changes the envelope of message %d", i)
		}
	}
	if st.x.sent == nil {
		st.x.sent = old
	}
	st.x.Body, st.reqBody = b, raw
	return nil
}

// sameTarget reports whether a and b are the same call: what the envelope and policy see.
func sameTarget(a, b *mcp.Message) bool {
	return a.Kind == b.Kind && bytes.Equal(a.ID, b.ID) && a.Method == b.Method && a.Tool == b.Tool &&
		a.URI == b.URI && a.Prompt == b.Prompt && a.MetaVersion == b.MetaVersion && a.HasMetaVersion == b.HasMetaVersion
}

// errorBody is the JSON-RPC answer to a refused request: one error per request id for a
// batch the revision allows, otherwise one error for the single request's id (or null).
func (st *stream) errorBody(e *mcp.Error) []byte {
	x := st.x
	if id := e.ID(); id != nil {
		return mcp.ErrorResponse(id, e)
	}
	if x.Body != nil && x.Body.Batch && x.Revision != "" && x.Revision.AllowsBatch() {
		if ids := x.ids(); len(ids) > 0 {
			parts := make([][]byte, len(ids))
			for i, id := range ids {
				parts[i] = mcp.ErrorResponse(id, e)
			}
			return joinArray(parts)
		}
	}
	return mcp.ErrorResponse(x.requestID(), e)
}

func (st *stream) countRequest() {
	if st.x.Body == nil {
		return
	}
	st.methods = make(map[string]string, len(st.x.Body.Messages))
	for _, m := range st.x.Body.Messages {
		st.s.m.messages.WithLabelValues("request", methodLabel(m.Method)).Inc()
		if m.Kind == mcp.KindRequest {
			st.methods[string(m.ID)] = m.Method
		}
	}
}

// holder sends override_message_timeout for phase p, at most once (Envoy ignores more).
func (st *stream) holder(p phase) func(time.Duration) (time.Duration, error) {
	return func(d time.Duration) (time.Duration, error) {
		if st.held[p] {
			return 0, fmt.Errorf("hold: message timeout already extended in %s", p)
		}
		d = min(d, st.s.cfg.MaxHold)
		if d < time.Millisecond {
			return 0, errors.New("hold: duration below 1ms")
		}
		if err := st.srv.Send(&extprocv3.ProcessingResponse{OverrideMessageTimeout: durationpb.New(d)}); err != nil {
			return 0, fmt.Errorf("send message timeout override: %w", err)
		}
		st.held[p] = true
		return d, nil
	}
}

// finish marks the exchange complete: Envoy expects nothing more after an immediate response.
func (st *stream) finish() error {
	st.phase = finished
	return nil
}

func (st *stream) responseHeaders(h *extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) {
	hs := readHeaders(h.GetHeaders())
	code, err := strconv.Atoi(hs.Get(":status"))
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "response headers without a valid :status")
	}
	st.x.Status = code
	st.x.ContentType = mediaType(hs.Get("content-type"))
	if id := hs.Get("mcp-session-id"); id != "" && id != st.x.SessionID {
		// Accepted by the session stage (sessionOpened) when there is one.
		st.x.OpenedSessionID = id
	}
	resp := &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{}}
	out := &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: resp}}
	if h.GetEndOfStream() {
		st.phase = finished
		return out, nil
	}
	st.phase = awaitResponseBody
	want := filterv3.ProcessingMode_BUFFERED
	switch st.x.ContentType {
	case "text/event-stream":
		st.mode, want = respEvents, filterv3.ProcessingMode_STREAMED
		// Intermediaries must not buffer the stream: a progress event has to arrive live.
		resp.Response.HeaderMutation = &extprocv3.HeaderMutation{
			SetHeaders: []*corev3.HeaderValueOption{header("x-accel-buffering", "no")},
		}
	case "application/json":
		n, err := strconv.Atoi(hs.Get("content-length"))
		if err != nil || n > st.s.cfg.BufferResponseBytes {
			st.mode, want = respAccumulate, filterv3.ProcessingMode_STREAMED
		}
	}
	if r := st.codedResponse(hs, resp.Response); r != nil {
		return r, nil
	}
	st.maskHeaders(h.GetHeaders(), resp.Response)
	if want == filterv3.ProcessingMode_STREAMED {
		// Envoy drops content-length for a streamed body only when the configured mode is
		// streamed, decided as the headers arrive; after a mode_override it keeps the
		// upstream's, and a body whose length masking changed would then be cut or hang
		// (Filter::encodeHeaders in ext_proc.cc). The length goes with the override.
		if resp.Response.HeaderMutation == nil {
			resp.Response.HeaderMutation = &extprocv3.HeaderMutation{}
		}
		resp.Response.HeaderMutation.RemoveHeaders = append(resp.Response.HeaderMutation.RemoveHeaders, "content-length")
	}
	if want != st.respMode || st.mode == respAccumulate {
		// Envoy ≥1.34 takes both body modes from an override: set the request one too.
		out.ModeOverride = &filterv3.ProcessingMode{RequestBodyMode: st.reqMode, ResponseBodyMode: want}
		if st.mode == respAccumulate {
			// Trailers end an accumulated body without end_of_stream: see them (responseTrailers).
			out.ModeOverride.ResponseTrailerMode = filterv3.ProcessingMode_SEND
		}
	}
	return out, nil
}

// responseTrailers answers the trailers of an accumulated JSON body (the only case that
// asks for them, in its mode_override). A body answered whole lets them pass; a body whose
// JSON value had not ended when they came was cut short, and all of its chunks were
// answered empty: the stream fails, so Envoy resets the response instead of ending it as
// an empty 200.
func (st *stream) responseTrailers() (*extprocv3.ProcessingResponse, error) {
	switch {
	case st.phase == awaitResponseEnd:
	case st.phase == awaitResponseBody && st.mode == respAccumulate:
		st.log.Warn("upstream JSON response ended before its value; reset")
		return nil, status.Error(codes.DataLoss, "JSON response ended before its value")
	default:
		return nil, status.Errorf(codes.FailedPrecondition, "response_trailers out of order: expecting %s", st.phase)
	}
	st.phase = finished
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{
		ResponseTrailers: &extprocv3.TrailersResponse{},
	}}, nil
}

func (st *stream) responseBody(ctx context.Context, b *extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
	switch st.mode {
	case respEvents:
		return st.events(ctx, b)
	case respAccumulate:
		return st.accumulate(ctx, b)
	case respBuffered:
		// handled below: the whole body in one message
	}
	// One message holds the whole buffered body (configured, or set by this stream's
	// mode_override); end_of_stream is false when trailers follow. Were the override not
	// honoured, a first chunk of a streamed body would fail to parse and be refused.
	st.phase = finished
	body := b.GetBody()
	if st.x.ContentType != "application/json" {
		return st.otherBody(body), nil
	}
	if len(body) > st.s.cfg.MaxResponseBytes {
		return immediate(http.StatusBadGateway, mcp.ErrorResponse(st.x.requestID(), internal("response too large to inspect")),
			"mcpguard_response_too_large"), nil
	}
	out, changed, err := st.inspectJSON(ctx, body)
	if errors.Is(err, errNotInspectable) {
		st.log.Warn("upstream JSON response not inspectable; withheld")
		return immediate(http.StatusBadGateway, mcp.ErrorResponse(st.x.requestID(), internal("upstream response could not be inspected")),
			"mcpguard_unparsable_response"), nil
	}
	if err != nil {
		return nil, err
	}
	if !changed {
		return bodyResponse(nil, nil), nil
	}
	return bodyResponse(out, &extprocv3.HeaderMutation{
		SetHeaders: []*corev3.HeaderValueOption{header("content-length", strconv.Itoa(len(out)))},
	}), nil
}

// otherBody handles a non-MCP content type. A 202 carries no MCP message (2024-11-05
// servers answer "Accepted"), so its body is dropped; any other non-empty body cannot be
// inspected and is refused: error statuses keep their code, others become 502.
func (st *stream) otherBody(body []byte) *extprocv3.ProcessingResponse {
	if len(body) == 0 {
		return bodyResponse(nil, nil)
	}
	if st.x.Status == http.StatusAccepted {
		return bodyResponse([]byte{}, &extprocv3.HeaderMutation{
			SetHeaders: []*corev3.HeaderValueOption{header("content-length", "0")},
		})
	}
	code := http.StatusBadGateway
	if st.x.Status >= 400 {
		code = st.x.Status
	}
	return immediate(code, mcp.ErrorResponse(st.x.requestID(), internal("upstream response has an unsupported content type")),
		"mcpguard_unsupported_content_type")
}

// accumulate collects a large JSON body streamed by Envoy: earlier chunks are answered
// empty, the one that ends the body carries the whole inspected body. Headers already went
// out, so an over-size or unparsable body becomes a JSON-RPC error body instead of an
// immediate response.
//
// The body ends with the chunk carrying end_of_stream or with the one closing its JSON
// value, whichever comes first. The second matters when trailers follow: Envoy then sends
// the last chunk with end_of_stream false (ext_proc.cc, Filter::onTrailers), and answers
// to that chunk are all the processor can change; the trailers message comes only after
// it was answered. Anything after the value must be whitespace (accumulated).
func (st *stream) accumulate(ctx context.Context, b *extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
	if st.phase == awaitResponseEnd {
		return st.accumulated(b)
	}
	data, rest := b.GetBody(), []byte(nil)
	end := b.GetEndOfStream()
	if i := st.accEnd.feed(data); i >= 0 {
		data, rest, end = data[:i], data[i:], true
	}
	if !st.accOver {
		if len(st.acc)+len(data) > st.s.cfg.MaxResponseBytes {
			st.accOver, st.acc = true, nil
		} else {
			st.acc = append(st.acc, data...)
		}
	}
	if !end {
		return bodyResponse([]byte{}, nil), nil
	}
	st.phase = awaitResponseEnd
	if b.GetEndOfStream() {
		st.phase = finished
	}
	var out []byte
	switch {
	case st.accOver:
		st.log.Warn("upstream JSON response over max_response_bytes; withheld")
		out = mcp.ErrorResponse(st.x.requestID(), internal("response too large to inspect"))
	case !onlySpace(rest):
		st.log.Warn("upstream JSON response continues after its value; withheld")
		out = mcp.ErrorResponse(st.x.requestID(), internal("upstream response could not be inspected"))
	default:
		var err error
		out, _, err = st.inspectJSON(ctx, st.acc)
		if errors.Is(err, errNotInspectable) {
			st.log.Warn("upstream JSON response not inspectable; withheld")
			out = mcp.ErrorResponse(st.x.requestID(), internal("upstream response could not be inspected"))
		} else if err != nil {
			return nil, err
		}
	}
	st.acc = nil
	// Envoy ignores header mutations in STREAMED mode; content-length is set anyway in
	// case the override was not honoured and the body arrived BUFFERED with its length.
	return bodyResponse(out, &extprocv3.HeaderMutation{
		SetHeaders: []*corev3.HeaderValueOption{header("content-length", strconv.Itoa(len(out)))},
	}), nil
}

// accumulated answers what follows an accumulated body's JSON value: whitespace is
// dropped; anything else was never inspected and, as the inspected body already went out,
// fails the stream (Envoy resets the response).
func (st *stream) accumulated(b *extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
	if !onlySpace(b.GetBody()) {
		st.log.Warn("upstream JSON response continues after its value; reset")
		return nil, status.Error(codes.InvalidArgument, "JSON response continues after its value")
	}
	if b.GetEndOfStream() {
		st.phase = finished
	}
	return bodyResponse([]byte{}, nil), nil
}

// events passes every complete server-sent event on as soon as the chunk completing it
// arrives; the bytes of an incomplete event are held back and released with the chunk
// that completes it. Unchanged events are re-emitted byte for byte.
func (st *stream) events(ctx context.Context, b *extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
	var out []byte
	for _, ev := range st.dec.Feed(b.GetBody()) {
		if ev.Oversize {
			o, err := st.oversize(ev)
			if err != nil {
				return nil, err
			}
			out = append(out, o...)
			continue
		}
		o, err := st.inspectEvent(ctx, ev)
		if err != nil {
			return nil, err
		}
		out = append(out, o...)
	}
	if b.GetEndOfStream() {
		st.phase = finished
		// SSE clients discard an unterminated last event; never pass uninspected bytes.
		if rest := st.dec.Flush(); len(rest) > 0 {
			st.log.Debug("dropped unterminated trailing event", "bytes", len(rest))
		}
	}
	if string(out) == string(b.GetBody()) {
		return bodyResponse(nil, nil), nil
	}
	if out == nil {
		out = []byte{}
	}
	return bodyResponse(out, nil), nil
}

// inspectEvent returns the bytes to emit for one event. Events without data (comments,
// priming events) and the 2024-11-05 endpoint announcement pass; a message event whose
// data is not JSON-RPC, or an unknown event type, ends the stream (fail closed).
func (st *stream) inspectEvent(ctx context.Context, ev mcp.Event) ([]byte, error) {
	if ev.Comment || len(ev.Data) == 0 {
		return st.rawEvent(ev.Raw), nil
	}
	switch ev.Name {
	case "", "message":
	case "endpoint":
		return st.endpoint(ctx, ev)
	default:
		return nil, status.Error(codes.InvalidArgument, "server-sent event of unknown type")
	}
	body, err := mcp.Parse(ev.Data)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "server-sent event data is not JSON-RPC")
	}
	parts := make([][]byte, 0, len(body.Messages))
	changed := false
	for i := range body.Messages {
		m := &body.Messages[i]
		raw, ch, err := st.inspectMessage(ctx, &Response{Msg: m, Event: &ev}, true)
		if err != nil {
			return nil, err
		}
		changed = changed || ch
		if raw != nil {
			parts = append(parts, raw)
		}
	}
	if !changed {
		return ev.Raw, nil
	}
	if len(parts) == 0 {
		return nil, nil
	}
	e := ev
	e.Data = parts[0]
	if body.Batch {
		e.Data = joinArray(parts)
	}
	return e.Encode(), nil
}

// inspectJSON runs the response stages over a JSON body and returns the body to send.
func (st *stream) inspectJSON(ctx context.Context, body []byte) ([]byte, bool, error) {
	parsed, err := mcp.Parse(body)
	if err != nil {
		return nil, false, errNotInspectable
	}
	parts := make([][]byte, 0, len(parsed.Messages))
	changed := false
	for i := range parsed.Messages {
		raw, ch, err := st.inspectMessage(ctx, &Response{Msg: &parsed.Messages[i]}, false)
		if err != nil {
			return nil, false, err
		}
		changed = changed || ch
		parts = append(parts, raw)
	}
	if !changed {
		return body, false, nil
	}
	if parsed.Batch {
		return joinArray(parts), true, nil
	}
	return parts[0], true, nil
}

// inspectMessage runs the response stages on one message. It returns the message's bytes
// (nil when dropped) and whether they differ from the original.
func (st *stream) inspectMessage(ctx context.Context, r *Response, onStream bool) ([]byte, bool, error) {
	x := st.x
	orig := r.Msg
	if r.Received.IsZero() {
		r.Received = time.Now()
	}
	st.s.m.messages.WithLabelValues("response", methodLabel(st.responseMethod(orig))).Inc()
	x.hold = st.holder(awaitResponseBody)
	defer func() { x.hold = nil }()
	changed := false
	for _, stg := range st.s.resp {
		start := time.Now()
		v, err := stg.OnResponse(ctx, x, r)
		st.s.m.duration.WithLabelValues(stg.Name()).Observe(time.Since(start).Seconds())
		if err != nil {
			if ctx.Err() != nil {
				return nil, false, status.FromContextError(ctx.Err()).Err()
			}
			st.s.m.decisions.WithLabelValues(stg.Name(), "error").Inc()
			x.Log.Warn("response stage failed; message withheld", "stage", stg.Name(), "err", err)
			v = Verdict{Action: Deny, Err: internal("response withheld")}
		} else {
			st.s.m.decisions.WithLabelValues(stg.Name(), v.Action.String()).Inc()
		}
		switch v.Action {
		case Continue:
		case Replace:
			b, perr := mcp.Parse(v.Message)
			if perr != nil || b.Batch || len(b.Messages) != 1 {
				x.Log.Warn("response stage produced an invalid message; withheld", "stage", stg.Name())
				return st.denied(orig, internal("response withheld"), onStream), true, nil
			}
			r.Msg, changed = &b.Messages[0], true
		case Deny:
			if v.Err == nil {
				v.Err = internal("response withheld")
			}
			return st.denied(orig, v.Err, onStream), true, nil
		default:
			return st.denied(orig, internal("response withheld"), onStream), true, nil
		}
	}
	return r.Msg.Raw, changed, nil
}

// denied is what replaces a refused response message: a JSON-RPC error for its id. On a
// stream, notifications and server requests (which no client request waits on) are dropped.
func (st *stream) denied(m *mcp.Message, e *mcp.Error, onStream bool) []byte {
	if onStream && (m.Kind == mcp.KindNotification || m.Kind == mcp.KindRequest) {
		return nil
	}
	return mcp.ErrorResponse(m.ID, e)
}

func (st *stream) responseMethod(m *mcp.Message) string {
	if m.Method != "" {
		return m.Method
	}
	return st.methods[string(m.ID)]
}

func internal(msg string) *mcp.Error { return &mcp.Error{Code: mcp.CodeInternal, Message: msg} }

func asRPC(err error) *mcp.Error {
	var e *mcp.Error
	if errors.As(err, &e) {
		return e
	}
	return &mcp.Error{Code: mcp.CodeParse, Message: "parse error"}
}

func joinArray(parts [][]byte) []byte {
	n := 2
	for _, p := range parts {
		n += len(p) + 1
	}
	out := make([]byte, 0, n)
	out = append(out, '[')
	for i, p := range parts {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, p...)
	}
	return append(out, ']')
}

func readHeaders(m *corev3.HeaderMap) Headers {
	out := make(Headers, len(m.GetHeaders()))
	for _, h := range m.GetHeaders() {
		k := strings.ToLower(h.GetKey())
		v := string(h.GetRawValue())
		if v == "" {
			v = h.GetValue()
		}
		if old, ok := out[k]; ok {
			v = old + "," + v
		}
		out[k] = v
	}
	return out
}

func mediaType(ct string) string {
	t, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(t))
}

// header builds a mutation entry; ext_proc reads raw_value only and overwrites by default.
func header(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, RawValue: []byte(v)}}
}

func bodyResponse(body []byte, hm *extprocv3.HeaderMutation) *extprocv3.ProcessingResponse {
	c := &extprocv3.CommonResponse{HeaderMutation: hm}
	if body != nil {
		c.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: body}}
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{
		ResponseBody: &extprocv3.BodyResponse{Response: c},
	}}
}

func immediate(code int, body []byte, details string) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
		ImmediateResponse: &extprocv3.ImmediateResponse{
			Status: httpStatus(code),
			Headers: &extprocv3.HeaderMutation{
				SetHeaders: []*corev3.HeaderValueOption{header("content-type", "application/json")},
			},
			Body:    body,
			Details: details,
		},
	}}
}

func httpStatus(code int) *typev3.HttpStatus {
	c := typev3.StatusCode(http.StatusInternalServerError)
	if code >= 200 && code <= 599 {
		if _, ok := typev3.StatusCode_name[int32(code)]; ok {
			c = typev3.StatusCode(code)
		}
	}
	return &typev3.HttpStatus{Code: c}
}
