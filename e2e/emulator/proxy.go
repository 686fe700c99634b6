package emulator

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	procfv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// localReply is a response the proxy generates itself (Envoy's sendLocalReply). Returned as an error
// from any phase; if the downstream response already started, it becomes a stream reset.
type localReply struct {
	status    int
	details   string
	hdr       fields
	body      []byte
	immediate bool
}

func (l *localReply) Error() string { return fmt.Sprintf("local reply %d %s", l.status, l.details) }

type addrPort struct {
	host string
	port uint32
}

func parseAddr(s string) addrPort {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return addrPort{host: s}
	}
	n, _ := strconv.ParseUint(p, 10, 16)
	return addrPort{host: h, port: uint32(n)}
}

// hopByHop headers never cross the proxy.
var hopByHop = []string{"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te"}

// exchange is one downstream HTTP request going through the filter chain.
type exchange struct {
	e      *Emulator
	w      http.ResponseWriter
	r      *http.Request
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelCauseFunc
	start  time.Time

	id, method, path, authority, scheme, protocol string
	src, dst                                      addrPort

	hdr     fields                      // request headers without pseudo-headers
	respAdd []*corev3.HeaderValueOption // ext_authz response_headers_to_add, applied to the final response headers
	route   *route
	body    *source
	p       *proc
	started bool
	code    int

	metaMu sync.Mutex
	meta   map[string]*structpb.Struct

	timerMu  sync.Mutex
	idle     *time.Timer
	idleDur  time.Duration
	timers   []*time.Timer
	wg       sync.WaitGroup // pump goroutines of this exchange
	upstream *http.Response
	closers  []func()
	failed   bool

	timing  timing // time spent waiting on ext_authz, ext_proc and the upstream
	status  int    // downstream status, for the access log
	details string // %RESPONSE_CODE_DETAILS%
}

func (e *Emulator) serveHTTP(w http.ResponseWriter, r *http.Request) {
	x := e.newExchange(w, r)
	defer x.finish()
	x.conclude(x.run())
	x.timingTrailer()
}

func (e *Emulator) newExchange(w http.ResponseWriter, r *http.Request) *exchange {
	ctx, cancel := context.WithCancelCause(r.Context())
	x := &exchange{
		e: e, w: w, r: r, ctx: ctx, cancel: cancel, start: time.Now(),
		method: r.Method, path: r.URL.RequestURI(), authority: r.Host, scheme: "http",
		protocol: r.Proto, src: parseAddr(r.RemoteAddr), meta: map[string]*structpb.Struct{},
	}
	if r.RequestURI != "" && r.RequestURI != "*" {
		x.path = r.RequestURI
	}
	if r.ProtoMajor == 2 {
		x.protocol = "HTTP/2"
	}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		x.dst = parseAddr(a.String())
	}
	x.hdr = fromHTTP(r.Header)
	for _, k := range hopByHop {
		x.hdr.del(k)
	}
	if v, ok := x.hdr.get("x-request-id"); ok && v != "" {
		x.id = v
	} else if e.p.generateID {
		x.id = uuid()
		x.hdr.set("x-request-id", x.id)
	}
	x.hdr.set("x-forwarded-proto", x.scheme)
	if e.p.useRemote {
		if v, ok := x.hdr.get("x-forwarded-for"); ok {
			x.hdr.set("x-forwarded-for", v+","+x.src.host)
		} else {
			x.hdr.set("x-forwarded-for", x.src.host)
		}
	}
	x.log = e.log.With("request_id", x.id)
	return x
}

func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// wireRequestHeaders is the request header map as filters see it: pseudo-headers first.
func (x *exchange) wireRequestHeaders() fields {
	f := fields{{":authority", x.authority}, {":path", x.path}, {":method", x.method}, {":scheme", x.scheme}}
	return append(f, x.hdr...)
}

func (x *exchange) setMeta(ns string, s *structpb.Struct) {
	x.metaMu.Lock()
	defer x.metaMu.Unlock()
	x.meta[ns] = s
}

// abort ends the exchange from a timer: the main flow sees its context end and replies with lr (or
// resets the stream when the response already started).
func (x *exchange) abort(lr *localReply) { x.cancel(lr) }

func (x *exchange) after(d time.Duration, f func()) {
	if d <= 0 {
		return
	}
	x.timerMu.Lock()
	defer x.timerMu.Unlock()
	x.timers = append(x.timers, time.AfterFunc(d, f))
}

// touch restarts the idle timer on stream activity.
func (x *exchange) touch() {
	x.timerMu.Lock()
	defer x.timerMu.Unlock()
	if x.idle != nil {
		x.idle.Reset(x.idleDur)
	}
}

func (x *exchange) requestEnded() bool {
	if x.body == nil {
		return false
	}
	x.body.mu.Lock()
	defer x.body.mu.Unlock()
	return x.body.eos && len(x.body.q) == 0
}

func (x *exchange) run() error {
	rt := x.e.match(x.authority, x.path)
	if rt == nil {
		return &localReply{status: 404, details: "route_not_found"}
	}
	x.route = rt
	x.idleDur = x.e.p.streamIdle
	if rt.idleSet {
		x.idleDur = rt.idleTimeout
	}
	if x.idleDur > 0 {
		x.timerMu.Lock()
		x.idle = time.AfterFunc(x.idleDur, func() {
			st := 408
			if x.requestEnded() {
				st = 504
			}
			x.abort(&localReply{status: st, details: "stream_idle_timeout", body: []byte("stream timeout")})
		})
		x.timerMu.Unlock()
	}
	x.after(x.e.p.requestTimeout, func() {
		if !x.requestEnded() {
			x.abort(&localReply{status: 408, details: "request_overall_timeout", body: []byte("request timeout")})
		}
	})
	bodyless := x.r.Body == nil || x.r.Body == http.NoBody || x.r.ContentLength == 0
	if bodyless {
		x.body = emptySource()
	} else {
		x.body = startSource(&x.e.wg, x.r.Body, x.e.p.bufLimit, func() http.Header { return x.r.Trailer }, x.touch)
	}
	if x.e.p.authz != nil && !rt.authzOff {
		if err := x.checkAuthz(x.ctx); err != nil {
			return err
		}
	}
	if pc := x.e.p.proc; pc != nil && !rt.procOff {
		m, fo := pc.mode, pc.failOpen
		if rt.procMode != nil {
			m = *rt.procMode
		}
		if rt.procFailOpen != nil {
			fo = *rt.procFailOpen
		}
		x.p = newProc(x, pc, m, fo)
	}
	return x.forward(bodyless)
}

// match picks the first route whose virtual host domain and match apply.
func (e *Emulator) match(host, path string) *route {
	p := path
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	for _, vh := range e.p.vhosts {
		if !domainMatch(vh.domains, host) {
			continue
		}
		for _, r := range vh.routes {
			switch {
			case r.re != nil:
				if r.re.MatchString(p) {
					return r
				}
			case r.path != "":
				if p == r.path {
					return r
				}
			case strings.HasPrefix(path, r.prefix):
				return r
			}
		}
		return nil
	}
	return nil
}

func domainMatch(domains []string, host string) bool {
	h := strings.ToLower(host)
	bare := h
	if hh, _, err := net.SplitHostPort(h); err == nil {
		bare = hh
	}
	for _, d := range domains {
		d = strings.ToLower(d)
		switch {
		case d == "*", d == h, d == bare:
			return true
		case strings.HasPrefix(d, "*") && (strings.HasSuffix(h, d[1:]) || strings.HasSuffix(bare, d[1:])):
			return true
		case strings.HasSuffix(d, "*") && strings.HasPrefix(h, d[:len(d)-1]):
			return true
		}
	}
	return false
}

// phase runs one header/body/trailer exchange with the processor. A nil response with a nil error means
// the processor is out (pass-through).
func (x *exchange) phase(d dir, k kind, req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
	if err := x.p.send(d, k, req); err != nil {
		if errors.Is(err, errPass) {
			return nil, nil
		}
		return nil, err
	}
	resp, err := x.p.await(x.ctx, d)
	if errors.Is(err, errPass) {
		return nil, nil
	}
	return resp, err
}

func headersReq(d dir, h fields, eos bool) *extprocv3.ProcessingRequest {
	hh := &extprocv3.HttpHeaders{Headers: h.headerMap(), EndOfStream: eos}
	if d == reqDir {
		return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: hh}}
	}
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: hh}}
}

func bodyReq(d dir, b []byte, eos bool) *extprocv3.ProcessingRequest {
	hb := &extprocv3.HttpBody{Body: b, EndOfStream: eos}
	if d == reqDir {
		return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: hb}}
	}
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: hb}}
}

func trailersReq(d dir, h fields) *extprocv3.ProcessingRequest {
	ht := &extprocv3.HttpTrailers{Trailers: h.headerMap()}
	if d == reqDir {
		return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestTrailers{RequestTrailers: ht}}
	}
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseTrailers{ResponseTrailers: ht}}
}

func headersOf(r *extprocv3.ProcessingResponse) *extprocv3.CommonResponse {
	if h := r.GetRequestHeaders(); h != nil {
		return h.GetResponse()
	}
	return r.GetResponseHeaders().GetResponse()
}

// mutatedBody applies a body mutation to b.
func mutatedBody(cr *extprocv3.CommonResponse, b []byte) []byte {
	bm := cr.GetBodyMutation()
	switch {
	case bm.GetClearBody():
		return []byte{}
	case bm.GetBody() != nil:
		return bm.GetBody()
	}
	return b
}

// applyOverride merges a header response's mode_override over the filter's configured
// processing_mode (Envoy ≥1.34, ext_proc.cc Filter::onReceiveMessage: the config-level mode, not a
// per-route override, is the base) and checks allowed_override_modes against the merged mode.
func (p *proc) applyOverride(mo *procfv3.ProcessingMode) {
	if mo == nil || !p.c.allowOverride {
		return
	}
	base := p.c.modeProto
	if base.GetRequestBodyMode() == procfv3.ProcessingMode_FULL_DUPLEX_STREAMED ||
		base.GetResponseBodyMode() == procfv3.ProcessingMode_FULL_DUPLEX_STREAMED {
		return
	}
	merged := mergeModeProto(base, mo)
	if len(p.c.allowedOverrides) > 0 {
		ok := false
		for _, a := range p.c.allowedOverrides {
			if equalIgnoringReqHeaders(a, merged) {
				ok = true
				break
			}
		}
		if !ok {
			p.x.log.Debug("mode_override not in allowed_override_modes")
			return
		}
	}
	m := modeFrom(merged)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.m = m
	p.d[reqDir].fd = m.reqBody == procfv3.ProcessingMode_FULL_DUPLEX_STREAMED
	p.d[respDir].fd = m.respBody == procfv3.ProcessingMode_FULL_DUPLEX_STREAMED
}

// mergeModeProto is base with o merged over it: DEFAULT header and trailer modes leave base's
// value, body modes are always o's.
func mergeModeProto(base, o *procfv3.ProcessingMode) *procfv3.ProcessingMode {
	m := &procfv3.ProcessingMode{}
	if base != nil {
		m = proto.Clone(base).(*procfv3.ProcessingMode)
	}
	pick := func(dst *procfv3.ProcessingMode_HeaderSendMode, v procfv3.ProcessingMode_HeaderSendMode) {
		if v != procfv3.ProcessingMode_DEFAULT {
			*dst = v
		}
	}
	pick(&m.RequestHeaderMode, o.GetRequestHeaderMode())
	pick(&m.ResponseHeaderMode, o.GetResponseHeaderMode())
	pick(&m.RequestTrailerMode, o.GetRequestTrailerMode())
	pick(&m.ResponseTrailerMode, o.GetResponseTrailerMode())
	m.RequestBodyMode, m.ResponseBodyMode = o.GetRequestBodyMode(), o.GetResponseBodyMode()
	return m
}

func equalIgnoringReqHeaders(a, b *procfv3.ProcessingMode) bool {
	a2, b2 := proto.Clone(a).(*procfv3.ProcessingMode), proto.Clone(b).(*procfv3.ProcessingMode)
	a2.RequestHeaderMode, b2.RequestHeaderMode = 0, 0
	return proto.Equal(a2, b2)
}

// bodyMode is the current body mode of direction d, NONE when the processor is out.
func (x *exchange) bodyMode(d dir) procfv3.ProcessingMode_BodySendMode {
	if x.p == nil || !x.p.active() {
		return procfv3.ProcessingMode_NONE
	}
	m := x.p.mode()
	if d == reqDir {
		return m.reqBody
	}
	return m.respBody
}

func (x *exchange) sendsHeaders(d dir) bool {
	if x.p == nil || !x.p.active() {
		return false
	}
	m := x.p.mode()
	if d == reqDir {
		return m.reqHeaders
	}
	return m.respHeaders
}

func (x *exchange) sendsTrailers(d dir) bool {
	if x.p == nil || !x.p.active() {
		return false
	}
	m := x.p.mode()
	if d == reqDir {
		return m.reqTrailers
	}
	return m.respTrailers
}

// setRequestHeaders takes a mutated wire header list back into the exchange.
func (x *exchange) setRequestHeaders(f fields) {
	x.hdr = x.hdr[:0]
	for _, e := range f {
		if e.k == ":path" {
			x.path = e.v
			continue
		}
		if e.k == ":method" {
			x.method = e.v // changed only by a CONTINUE_AND_REPLACE answer
			continue
		}
		if strings.HasPrefix(e.k, ":") {
			continue
		}
		x.hdr = append(x.hdr, e)
	}
}

var errMismatch = errors.New("mismatch between content length and the length of the mutated body")

func checkLength(h fields, body []byte) error {
	if v, ok := h.get("content-length"); ok && v != strconv.Itoa(len(body)) {
		return errMismatch
	}
	return nil
}

func (x *exchange) mutationFailed(err error) error { return x.p.fail(err) }

// forward runs the request through ext_proc and the router, then the response back.
func (x *exchange) forward(bodyless bool) error {
	var replaced []byte
	reqDone := false // CONTINUE_AND_REPLACE: no more request messages
	headerSent := false
	if x.sendsHeaders(reqDir) {
		headerSent = true
		wire := x.wireRequestHeaders()
		resp, err := x.phase(reqDir, kHeaders, headersReq(reqDir, wire, bodyless))
		if err != nil {
			return err
		}
		if resp != nil {
			cr := headersOf(resp)
			replacing := cr.GetStatus() == extprocv3.CommonResponse_CONTINUE_AND_REPLACE
			if err := x.mutateReplacing(&wire, cr.GetHeaderMutation(), false, replacing); err != nil {
				return x.mutationFailed(err)
			}
			x.setRequestHeaders(wire)
			x.p.applyOverride(resp.GetModeOverride())
			if cr.GetStatus() == extprocv3.CommonResponse_CONTINUE_AND_REPLACE {
				replaced, reqDone = mutatedBody(cr, []byte{}), true
			}
		}
	}

	upCL := x.r.ContentLength
	var upBody io.Reader
	pumpErr := make(chan error, 1)
	mode := x.bodyMode(reqDir)
	switch {
	case reqDone:
		x.hdr.del("content-length")
		upBody, upCL = bytes.NewReader(replaced), -1
		if len(replaced) == 0 {
			upBody, upCL = nil, 0
		}
	case bodyless:
		upCL = 0
	case mode == procfv3.ProcessingMode_BUFFERED:
		data, err := x.body.readAll(x.ctx, x.e.p.bufLimit)
		if errors.Is(err, errOverLimit) {
			return &localReply{status: 413, details: "request_payload_too_large", body: []byte("Payload Too Large")}
		}
		if err != nil {
			return err
		}
		if !headerSent {
			x.hdr.del("content-length")
		}
		out, err := x.bufferedBody(reqDir, data, &x.hdr, x.body)
		if err != nil {
			return err
		}
		upBody, upCL = bytes.NewReader(out), int64(len(out))
		if _, ok := x.hdr.get("content-length"); !ok {
			upCL = -1
		}
	case mode == procfv3.ProcessingMode_BUFFERED_PARTIAL:
		x.hdr.del("content-length")
		c, err := x.body.readUpTo(x.ctx, x.e.p.bufLimit)
		if err != nil {
			return err
		}
		var tr http.Header
		if c.eos {
			tr = x.body.trailers()
		}
		resp, err := x.phase(reqDir, kBody, bodyReq(reqDir, c.data, c.eos && tr == nil))
		if err != nil {
			return err
		}
		if resp != nil {
			if err := x.partialHeaders(reqDir, bodyOf(resp).GetResponse(), nil); err != nil {
				return err
			}
			c.data = mutatedBody(bodyOf(resp).GetResponse(), c.data)
		}
		if tr != nil && x.sendsTrailers(reqDir) {
			if _, err := x.trailerPhase(reqDir, fromHTTP(tr)); err != nil {
				return err
			}
		}
		upBody, upCL = io.MultiReader(bytes.NewReader(c.data), x.body.reader(x.ctx)), -1
	case mode == procfv3.ProcessingMode_STREAMED || mode == procfv3.ProcessingMode_FULL_DUPLEX_STREAMED:
		x.hdr.del("content-length")
		pr, pw := io.Pipe()
		upBody, upCL = pr, -1
		x.closers = append(x.closers, func() { _ = pr.CloseWithError(context.Canceled) })
		x.wg.Add(1)
		go func() {
			defer x.wg.Done()
			err := x.pump(reqDir, x.body, func(b []byte) error {
				_, err := pw.Write(b)
				return err
			}, nil)
			if err != nil {
				var lr *localReply
				if errors.As(err, &lr) {
					x.abort(lr)
				}
				pumpErr <- err
				_ = pw.CloseWithError(err)
				return
			}
			_ = pw.Close()
		}()
	default:
		upBody = &trailerReader{r: x.body.reader(x.ctx), x: x, errc: pumpErr}
	}
	return x.route1(upBody, upCL, pumpErr)
}

// trailerReader forwards a request body that ext_proc does not see (body mode NONE) and, at its end,
// offers the request trailers when the trailer mode is SEND: Envoy sends request_trailers whatever the
// body mode (ext_proc.cc, Filter::decodeTrailers; ExtProcIntegrationTest
// HeaderMutationResultSizeFailWithRequestTrailer processes only trailers). A failed trailer exchange
// fails the upstream request and answers with its local reply, as a STREAMED pump does.
type trailerReader struct {
	r    io.Reader
	x    *exchange
	errc chan error
	done bool
}

func (t *trailerReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if !errors.Is(err, io.EOF) || t.done {
		return n, err
	}
	t.done = true
	tr := t.x.body.trailers()
	if tr == nil || !t.x.sendsTrailers(reqDir) {
		return n, err
	}
	if _, terr := t.x.trailerPhase(reqDir, fromHTTP(tr)); terr != nil {
		var lr *localReply
		if errors.As(terr, &lr) {
			t.x.abort(lr)
		}
		select {
		case t.errc <- terr:
		default:
		}
		return n, terr
	}
	return n, err
}

// bufferedBody runs one BUFFERED body exchange (plus trailers) and returns the body to forward. Header
// mutations in the body response apply (only in this mode); content-length must match the result.
func (x *exchange) bufferedBody(d dir, data []byte, h *fields, src *source) ([]byte, error) {
	out, _, err := x.bufferedBodyTrailers(d, data, h, src)
	return out, err
}

// bufferedBodyTrailers is bufferedBody that also returns the trailers to forward (mutated when they
// went to the processor), nil when the message has none.
func (x *exchange) bufferedBodyTrailers(d dir, data []byte, h *fields, src *source) ([]byte, fields, error) {
	tr := src.trailers()
	sendTr := tr != nil && x.sendsTrailers(d)
	var ft fields
	if tr != nil {
		ft = fromHTTP(tr)
	}
	if len(data) == 0 && tr != nil {
		// Headers then trailers with no data: Envoy buffered nothing, so it sends no body message
		// (ExtProcIntegrationTest SkipHeaderSendTrailerInBufferedMode).
		return data, ft, x.offerTrailers(d, sendTr, &ft)
	}
	// With trailers the body ends when they arrive: Envoy sends the buffered body from
	// decodeTrailers/encodeTrailers with end_of_stream false whatever the trailer mode
	// (ext_proc.cc, Filter::onTrailers -> sendBufferedData(state, false)).
	resp, err := x.phase(d, kBody, bodyReq(d, data, tr == nil))
	if err != nil {
		return nil, nil, err
	}
	if resp == nil {
		return data, ft, nil
	}
	cr := bodyOf(resp).GetResponse()
	wire := *h
	if d == reqDir {
		wire = x.wireRequestHeaders()
	}
	if err := x.mutate(&wire, cr.GetHeaderMutation(), d == respDir); err != nil {
		return nil, nil, x.mutationFailed(err)
	}
	if d == reqDir {
		x.setRequestHeaders(wire)
	} else {
		*h = wire
	}
	out := mutatedBody(cr, data)
	if err := checkLength(*h, out); err != nil {
		return nil, nil, x.mutationFailed(err)
	}
	return out, ft, x.offerTrailers(d, sendTr, &ft)
}

// offerTrailers runs the trailer phase when send is set and replaces *ft with the result.
func (x *exchange) offerTrailers(d dir, send bool, ft *fields) error {
	if !send {
		return nil
	}
	out, err := x.trailerPhase(d, *ft)
	if err != nil {
		return err
	}
	*ft = out
	return nil
}

// partialHeaders applies the header mutation of a BUFFERED_PARTIAL body answer: the headers are still
// held (they go out after this chunk), so Envoy applies it as in BUFFERED mode. h is the response
// header list; nil means the request headers.
func (x *exchange) partialHeaders(d dir, cr *extprocv3.CommonResponse, h *fields) error {
	if cr.GetHeaderMutation() == nil {
		return nil
	}
	wire := x.wireRequestHeaders()
	if h != nil {
		wire = *h
	}
	if err := x.mutate(&wire, cr.GetHeaderMutation(), d == respDir); err != nil {
		return x.mutationFailed(err)
	}
	if h != nil {
		*h = wire
		return nil
	}
	x.setRequestHeaders(wire)
	return nil
}

// trailerPhase sends trailers and returns them mutated.
func (x *exchange) trailerPhase(d dir, tr fields) (fields, error) {
	resp, err := x.phase(d, kTrailers, trailersReq(d, tr))
	if err != nil || resp == nil {
		return tr, err
	}
	m := resp.GetRequestTrailers().GetHeaderMutation()
	if d == respDir {
		m = resp.GetResponseTrailers().GetHeaderMutation()
	}
	if err := x.mutate(&tr, m, false); err != nil {
		return nil, x.mutationFailed(err)
	}
	return tr, nil
}

// pumpItem is one chunk between the sender and the in-order receiver of a streamed body.
type pumpItem struct {
	c        chunk
	raw      bool
	trailers fields
	err      error
}

// pump streams a body through the processor: STREAMED pipelines one message per chunk and applies one
// response per chunk in order; FULL_DUPLEX_STREAMED forwards what the server streams back (M:N).
func (x *exchange) pump(d dir, src *source, out func([]byte) error, outTrailers func(fields)) error {
	ctx, cancel := context.WithCancel(x.ctx)
	items := make(chan pumpItem, 16)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(items)
		first := true
		for {
			c, err := src.next(ctx, first)
			first = false
			it := pumpItem{c: c, err: err}
			if err == nil {
				var tr http.Header
				if c.eos {
					tr = src.trailers()
				}
				it.raw = !x.p.active()
				if !it.raw {
					// The last chunk before trailers carries end_of_stream false, sent or not.
					_ = x.p.send(d, kBody, bodyReq(d, c.data, c.eos && tr == nil))
				}
				if tr != nil {
					it.trailers = fromHTTP(tr)
				}
			}
			select {
			case items <- it:
			case <-ctx.Done():
				return
			}
			if err != nil || c.eos {
				return
			}
		}
	}()
	defer func() {
		cancel()
		for range items {
		}
		wg.Wait()
	}()
	x.p.mu.Lock()
	fd := x.p.d[d].fd
	x.p.mu.Unlock()
	if fd {
		return x.pumpDuplex(d, items, out, outTrailers)
	}
	for it := range items {
		if it.err != nil {
			return it.err
		}
		data := it.c.data
		if !it.raw {
			resp, err := x.p.await(x.ctx, d)
			switch {
			case errors.Is(err, errPass):
			case err != nil:
				return err
			default:
				data = mutatedBody(bodyOf(resp).GetResponse(), data)
			}
		}
		if len(data) > 0 {
			if err := out(data); err != nil {
				return err
			}
		}
		if err := x.finishTrailers(d, it, outTrailers); err != nil {
			return err
		}
	}
	return nil
}

func (x *exchange) finishTrailers(d dir, it pumpItem, outTrailers func(fields)) error {
	if it.trailers == nil {
		return nil
	}
	tr := it.trailers
	if !it.raw && x.sendsTrailers(d) {
		var err error
		if tr, err = x.trailerPhase(d, tr); err != nil {
			return err
		}
	}
	if outTrailers != nil {
		outTrailers(tr)
	}
	return nil
}

func (x *exchange) pumpDuplex(d dir, items chan pumpItem, out func([]byte) error, outTrailers func(fields)) error {
	for {
		resp, err := x.p.await(x.ctx, d)
		if errors.Is(err, errPass) {
			break
		}
		if err != nil {
			return err
		}
		sr := bodyOf(resp).GetResponse().GetBodyMutation().GetStreamedResponse()
		if len(sr.GetBody()) > 0 {
			if err := out(sr.GetBody()); err != nil {
				return err
			}
		}
		if sr.GetEndOfStream() {
			break
		}
	}
	for it := range items {
		if it.err != nil {
			return it.err
		}
		if it.raw && len(it.c.data) > 0 {
			if err := out(it.c.data); err != nil {
				return err
			}
		}
		if err := x.finishTrailers(d, it, outTrailers); err != nil {
			return err
		}
	}
	return nil
}

// route1 is the router: forward upstream over HTTP/1.1 and relay the response.
func (x *exchange) route1(body io.Reader, cl int64, pumpErr chan error) error {
	c := x.e.p.clusters[x.route.cluster]
	path, query, _ := strings.Cut(x.path, "?")
	host := c.addr
	if strings.HasPrefix(host, "unix:") {
		host = "localhost"
	}
	req := (&http.Request{
		Method:     x.method,
		URL:        &url.URL{Scheme: "http", Host: host, Opaque: path, RawQuery: query},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{},
		Host:          x.authority,
		ContentLength: cl,
	}).WithContext(x.ctx)
	if body != nil {
		req.Body = io.NopCloser(body)
	}
	x.hdr.toHTTP(req.Header)
	req.Header.Del("Host")
	if x.route.timeout > 0 {
		req.Header.Set("X-Envoy-Expected-Rq-Timeout-Ms", strconv.FormatInt(x.route.timeout.Milliseconds(), 10))
		x.after(x.route.timeout, func() {
			x.abort(&localReply{status: 504, details: "upstream_response_timeout", body: []byte("upstream request timeout")})
		})
	}
	t0 := time.Now()
	resp, err := x.e.transport[c.name].RoundTrip(req)
	x.timing.addUpstream(time.Since(t0))
	if err != nil {
		select {
		case perr := <-pumpErr:
			return perr
		default:
		}
		if cause := context.Cause(x.ctx); cause != nil {
			return cause
		}
		x.log.Debug("upstream request failed", "err", err)
		return &localReply{
			status: 503, details: "upstream_reset_before_response_started{connection_failure}",
			body: []byte("upstream connect error or disconnect/reset before headers. reset reason: connection failure"),
		}
	}
	x.upstream = resp
	return x.respond(resp)
}

func (x *exchange) respond(resp *http.Response) error {
	x.code = resp.StatusCode
	h := fromHTTP(resp.Header)
	for _, k := range hopByHop {
		h.del(k)
	}
	if resp.ContentLength >= 0 {
		h.set("content-length", strconv.FormatInt(resp.ContentLength, 10))
	}
	bodyless := resp.ContentLength == 0 || x.method == http.MethodHead || resp.StatusCode == 204 || resp.StatusCode == 304
	src := emptySource()
	if !bodyless {
		src = startSource(&x.e.wg, resp.Body, x.e.p.bufLimit, func() http.Header { return resp.Trailer }, x.touch)
	}
	wire := append(fields{{":status", strconv.Itoa(resp.StatusCode)}}, h...)
	var replaced []byte
	respDone, headerSent := false, false
	if x.sendsHeaders(respDir) {
		headerSent = true
		r, err := x.phase(respDir, kHeaders, headersReq(respDir, wire, bodyless))
		if err != nil {
			return err
		}
		if r != nil {
			cr := headersOf(r)
			if err := x.mutate(&wire, cr.GetHeaderMutation(), true); err != nil {
				return x.mutationFailed(err)
			}
			x.p.applyOverride(r.GetModeOverride())
			if cr.GetStatus() == extprocv3.CommonResponse_CONTINUE_AND_REPLACE {
				replaced, respDone = mutatedBody(cr, []byte{}), true
			}
		}
	}
	out := func(b []byte) error {
		if _, err := x.w.Write(b); err != nil {
			return fmt.Errorf("write downstream: %w", err)
		}
		http.NewResponseController(x.w).Flush()
		x.touch()
		return nil
	}
	trailers := func(tr fields) {
		for _, e := range tr {
			x.w.Header().Add(http.TrailerPrefix+e.k, e.v)
		}
	}
	mode := x.bodyMode(respDir)
	switch {
	case respDone:
		wire.del("content-length")
		x.writeHeaders(wire)
		return out(replaced)
	case bodyless:
		x.writeHeaders(wire)
		return nil
	case mode == procfv3.ProcessingMode_BUFFERED:
		data, err := src.readAll(x.ctx, x.e.p.bufLimit)
		if errors.Is(err, errOverLimit) {
			return &localReply{status: 500, details: "response_payload_too_large", body: []byte("Internal Server Error")}
		}
		if err != nil {
			return err
		}
		if !headerSent {
			wire.del("content-length")
		}
		body, tr, err := x.bufferedBodyTrailers(respDir, data, &wire, src)
		if err != nil {
			return err
		}
		x.writeHeaders(wire)
		if err := out(body); err != nil {
			return err
		}
		if tr != nil {
			trailers(tr)
		}
		return nil
	case mode == procfv3.ProcessingMode_BUFFERED_PARTIAL:
		wire.del("content-length")
		c, err := src.readUpTo(x.ctx, x.e.p.bufLimit)
		if err != nil {
			return err
		}
		r, err := x.phase(respDir, kBody, bodyReq(respDir, c.data, c.eos))
		if err != nil {
			return err
		}
		if r != nil {
			if err := x.partialHeaders(respDir, bodyOf(r).GetResponse(), &wire); err != nil {
				return err
			}
			c.data = mutatedBody(bodyOf(r).GetResponse(), c.data)
		}
		x.writeHeaders(wire)
		if err := out(c.data); err != nil {
			return err
		}
		return x.copyRaw(src, out, trailers)
	case mode == procfv3.ProcessingMode_STREAMED || mode == procfv3.ProcessingMode_FULL_DUPLEX_STREAMED:
		wire.del("content-length")
		x.writeHeaders(wire)
		return x.pump(respDir, src, out, trailers)
	default:
		x.writeHeaders(wire)
		return x.copyRaw(src, out, trailers)
	}
}

func (x *exchange) copyRaw(src *source, out func([]byte) error, trailers func(fields)) error {
	for {
		c, err := src.next(x.ctx, false)
		if err != nil {
			return err
		}
		if len(c.data) > 0 {
			if err := out(c.data); err != nil {
				return err
			}
		}
		if c.eos {
			if tr := src.trailers(); tr != nil {
				// copyRaw carries response bodies ext_proc does not see; their trailers still go to the
				// processor when the trailer mode is SEND (ExtProcIntegrationTest
				// GetAndSetHeadersAndTrailersOnResponse).
				ft := fromHTTP(tr)
				if err := x.offerTrailers(respDir, x.sendsTrailers(respDir), &ft); err != nil {
					return err
				}
				trailers(ft)
			}
			return nil
		}
	}
}

// writeHeaders sends the downstream response headers; from here on a failure resets the stream.
func (x *exchange) writeHeaders(wire fields) {
	st := x.code
	h := x.w.Header()
	for _, e := range wire {
		if e.k == ":status" {
			if n, err := strconv.Atoi(e.v); err == nil {
				st = n
			}
			continue
		}
		if strings.HasPrefix(e.k, ":") {
			continue
		}
		h.Add(e.k, e.v)
	}
	// ext_authz sits before ext_proc in the chain, so on the way back its encodeHeaders runs
	// last: response_headers_to_add act on the headers as ext_proc left them, and append,
	// overwrite, add-if-absent and overwrite-if-exists are judged against those (ext_authz.cc,
	// Filter::encodeHeaders).
	if len(x.respAdd) > 0 {
		final := fromHTTP(h)
		applyAuthz(&final, x.respAdd)
		clear(h)
		final.toHTTP(h)
	}
	x.setTimingHeader(h)
	x.status, x.details = st, "via_upstream"
	x.started = true
	x.w.WriteHeader(st)
	http.NewResponseController(x.w).Flush()
}

// conclude turns the outcome of run into a local reply, a reset, or nothing.
func (x *exchange) conclude(err error) {
	if err == nil {
		return
	}
	if cause := context.Cause(x.ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	var lr *localReply
	if errors.As(err, &lr) {
		x.reply(lr)
		return
	}
	if x.r.Context().Err() != nil {
		return // downstream went away
	}
	x.log.Debug("stream failed", "err", err)
	if !x.started {
		x.reply(&localReply{status: 503, details: "upstream_reset_after_response_started", body: []byte("upstream connect error or disconnect/reset before headers")})
		return
	}
	x.reset("upstream_reset_after_response_started")
}

func (x *exchange) reply(lr *localReply) {
	if x.started {
		x.reset(lr.details)
		return
	}
	x.e.trace(TraceEvent{RequestID: x.id, Kind: TraceLocalReply, Status: lr.status, Details: lr.details})
	h := x.w.Header()
	for _, e := range lr.hdr {
		if !strings.HasPrefix(e.k, ":") {
			h.Add(e.k, e.v)
		}
	}
	if len(lr.body) > 0 && h.Get("Content-Type") == "" {
		h.Set("Content-Type", "text/plain")
	}
	h.Set("Content-Length", strconv.Itoa(len(lr.body)))
	x.setTimingHeader(h)
	x.status, x.details = lr.status, lr.details
	x.started = true
	x.w.WriteHeader(lr.status)
	_, _ = x.w.Write(lr.body)
}

// reset aborts the downstream stream: HTTP/1 closes the connection mid-body, HTTP/2 sends RST_STREAM.
func (x *exchange) reset(details string) {
	x.e.trace(TraceEvent{RequestID: x.id, Kind: TraceReset, Details: details})
	x.details = details
	x.failed = true
	panic(http.ErrAbortHandler)
}

func (x *exchange) finish() {
	x.timerMu.Lock()
	if x.idle != nil {
		x.idle.Stop()
	}
	for _, t := range x.timers {
		t.Stop()
	}
	x.timerMu.Unlock()
	failed := x.failed || x.r.Context().Err() != nil || x.ctx.Err() != nil
	x.cancel(context.Canceled)
	if x.body != nil {
		x.body.abort(context.Canceled)
	}
	if x.upstream != nil {
		_ = x.upstream.Body.Close()
	}
	for _, c := range x.closers {
		c()
	}
	x.wg.Wait()
	if x.p != nil {
		x.p.close(failed)
	}
	x.accessLog()
}
