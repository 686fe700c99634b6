package emulator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	procfv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

type dir int

const (
	reqDir dir = iota
	respDir
)

type kind int

const (
	kHeaders kind = iota
	kBody
	kTrailers
)

// errPass means the processor is out of the picture (closed OK, or failed open): continue unprocessed.
var errPass = errors.New("ext_proc: continue without processor")

type endKind int

const (
	endDone endKind = iota // we finished: all messages answered
	endClosed
	endGrpcError
	endTimeout
	endSpurious
	endImmediate
	endOverflow
)

type ending struct {
	kind endKind
	code codes.Code
	msg  string
	imm  *extprocv3.ImmediateResponse
	lr   *localReply // the reply when the filter itself decided it (a refused mutation)
}

// proc is the ext_proc filter for one HTTP request: one lazily opened Process stream shared by both
// directions, a receive goroutine that validates every response against what is outstanding, and one
// message timer per direction.
type proc struct {
	x        *exchange
	c        *procConf
	failOpen bool

	mu        sync.Mutex
	m         mode
	st        extprocv3.ExternalProcessor_ProcessClient
	cancel    context.CancelFunc
	release   func()
	sentFirst bool
	attrsSent [2]bool
	d         [2]*dirState
	done      chan struct{}
	end       *ending
	fdFlowed  bool
	recvDone  chan struct{}

	sendMu sync.Mutex
}

type dirState struct {
	out        []kind
	q          []*extprocv3.ProcessingResponse
	wake       chan struct{}
	timer      *time.Timer
	gen        int
	overridden bool // override_message_timeout used since the last message was sent or answered
	fd         bool // body messages answered with streamed_response (M:N)
	fdSent     bool
	fdEOS      bool
	sentAt     []time.Time // send time of each entry of out, for the round-trip timings
}

func newProc(x *exchange, c *procConf, m mode, failOpen bool) *proc {
	p := &proc{x: x, c: c, m: m, failOpen: failOpen, done: make(chan struct{})}
	for i := range p.d {
		p.d[i] = &dirState{wake: make(chan struct{}, 1)}
	}
	p.d[reqDir].fd = m.reqBody == procfv3.ProcessingMode_FULL_DUPLEX_STREAMED
	p.d[respDir].fd = m.respBody == procfv3.ProcessingMode_FULL_DUPLEX_STREAMED
	return p
}

func (p *proc) mode() mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m
}

// open starts the stream on first use; it is called with p.mu held.
func (p *proc) openLocked() error {
	if p.st != nil {
		return nil
	}
	release, ok := p.x.e.acquire(p.c.cluster)
	if !ok {
		p.finishLocked(&ending{kind: endOverflow, code: codes.Unavailable, msg: "upstream connect error or disconnect/reset before headers. reset reason: overflow"})
		return p.resultLocked()
	}
	p.release = release
	ctx, cancel := context.WithCancel(context.WithoutCancel(p.x.ctx))
	ctx = withInitialMetadata(ctx, p.c.metadata)
	var opts []grpc.CallOption
	if p.c.authority != "" {
		opts = append(opts, grpc.CallAuthority(p.c.authority))
	}
	st, err := extprocv3.NewExternalProcessorClient(p.x.e.conns[p.c.cluster]).Process(ctx, opts...)
	if err != nil {
		cancel()
		release()
		p.finishLocked(&ending{kind: endGrpcError, code: status.Code(err), msg: status.Convert(err).Message()})
		return p.resultLocked()
	}
	p.st, p.cancel = st, cancel
	p.recvDone = make(chan struct{})
	go p.recv(st)
	return nil
}

// send sends one message of kind k in direction d and arms that direction's timer.
func (p *proc) send(d dir, k kind, req *extprocv3.ProcessingRequest) error {
	p.mu.Lock()
	if p.end != nil {
		err := p.resultLocked()
		p.mu.Unlock()
		return err
	}
	if err := p.openLocked(); err != nil {
		p.mu.Unlock()
		return err
	}
	if !p.sentFirst {
		p.sentFirst = true
		req.ProtocolConfig = &extprocv3.ProtocolConfiguration{RequestBodyMode: p.m.reqBody, ResponseBodyMode: p.m.respBody}
	}
	if !p.attrsSent[d] {
		p.attrsSent[d] = true
		names := p.c.reqAttrs
		if d == respDir {
			names = p.c.respAttrs
		}
		if len(names) > 0 {
			req.Attributes = map[string]*structpb.Struct{filterExtProc: p.x.attributes(names)}
		}
	}
	req.MetadataContext = p.x.metadataContext(p.c.forwardNS)
	ds := p.d[d]
	if k == kBody && ds.fd {
		ds.fdSent = true
		p.fdFlowed = true
	} else {
		ds.out = append(ds.out, k)
		p.noteSentLocked(d)
	}
	if !ds.fd {
		p.armLocked(d, p.c.msgTimeout)
		// A new outstanding message may be extended once more (onStartProcessorCall clears it).
		ds.overridden = false
	}
	st := p.st
	p.sendMu.Lock()
	p.mu.Unlock()
	p.x.e.trace(TraceEvent{RequestID: p.x.id, Kind: TraceProcessingRequest, Message: req})
	err := st.Send(req)
	p.sendMu.Unlock()
	if err != nil && !errors.Is(err, io.EOF) {
		p.mu.Lock()
		p.finishLocked(&ending{kind: endGrpcError, code: status.Code(err), msg: status.Convert(err).Message()})
		p.mu.Unlock()
	}
	// On io.EOF the stream already ended; recv reports how.
	return nil
}

func (p *proc) armLocked(d dir, after time.Duration) {
	ds := p.d[d]
	ds.gen++
	gen := ds.gen
	if ds.timer != nil {
		ds.timer.Stop()
	}
	ds.timer = time.AfterFunc(after, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if ds.gen == gen && len(ds.out) > 0 && p.end == nil {
			p.finishLocked(&ending{kind: endTimeout})
		}
	})
}

func (p *proc) disarmLocked(d dir) {
	ds := p.d[d]
	ds.gen++
	if ds.timer != nil {
		ds.timer.Stop()
	}
}

func (p *proc) recv(st extprocv3.ExternalProcessor_ProcessClient) {
	defer close(p.recvDone)
	for {
		resp, err := st.Recv()
		if err != nil {
			p.mu.Lock()
			first := p.end == nil
			if errors.Is(err, io.EOF) {
				p.finishLocked(&ending{kind: endClosed})
			} else {
				p.finishLocked(&ending{kind: endGrpcError, code: status.Code(err), msg: status.Convert(err).Message()})
			}
			var res error
			if first {
				res = p.resultLocked()
			}
			p.mu.Unlock()
			p.abortOutOfLine(res)
			return
		}
		p.x.e.trace(TraceEvent{RequestID: p.x.id, Kind: TraceProcessingResponse, Message: resp})
		p.onResponse(resp)
	}
}

// abortOutOfLine ends the HTTP request with res when it is a local reply: a stream error that comes
// while no message is outstanding fails the request at once, as Envoy's onGrpcError does
// (ExtProcIntegrationTest GetAndFailStreamOutOfLine: 500), instead of when the next message is due.
func (p *proc) abortOutOfLine(res error) {
	var lr *localReply
	if errors.As(res, &lr) {
		p.x.abort(lr)
	}
}

func (p *proc) onResponse(resp *extprocv3.ProcessingResponse) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.end != nil {
		return // messages after processing completed are ignored
	}
	if ot := resp.GetOverrideMessageTimeout(); ot != nil {
		p.overrideLocked(ot.AsDuration())
		return
	}
	if resp.GetResponse() == nil && resp.GetModeOverride() != nil {
		p.standaloneOverrideLocked(resp.GetModeOverride())
		return
	}
	var d dir
	var k kind
	switch resp.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_ImmediateResponse:
		if p.c.disableImmediate {
			p.finishLocked(&ending{kind: endSpurious})
			return
		}
		p.finishLocked(&ending{kind: endImmediate, imm: resp.GetImmediateResponse()})
		return
	case *extprocv3.ProcessingResponse_RequestHeaders:
		d, k = reqDir, kHeaders
	case *extprocv3.ProcessingResponse_RequestBody:
		d, k = reqDir, kBody
	case *extprocv3.ProcessingResponse_RequestTrailers:
		d, k = reqDir, kTrailers
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		d, k = respDir, kHeaders
	case *extprocv3.ProcessingResponse_ResponseBody:
		d, k = respDir, kBody
	case *extprocv3.ProcessingResponse_ResponseTrailers:
		d, k = respDir, kTrailers
	default:
		p.finishLocked(&ending{kind: endSpurious})
		return
	}
	ds := p.d[d]
	streamed := bodyOf(resp).GetResponse().GetBodyMutation().GetStreamedResponse() != nil
	switch {
	case k == kBody && ds.fd:
		bm := bodyOf(resp).GetResponse().GetBodyMutation()
		if !streamed || bm.GetBody() != nil || !ds.fdSent || ds.fdEOS || (len(ds.out) > 0 && ds.out[0] == kHeaders) {
			p.finishLocked(&ending{kind: endSpurious})
			return
		}
		ds.fdEOS = bm.GetStreamedResponse().GetEndOfStream()
	case len(ds.out) == 0 || ds.out[0] != k || (k == kBody && streamed):
		p.finishLocked(&ending{kind: endSpurious})
		return
	default:
		p.noteAnsweredLocked(d, k)
		ds.out = ds.out[1:]
		p.disarmLocked(d)
		ds.overridden = false // onFinishProcessorCall clears it too
	}
	p.receiveMetadata(resp.GetDynamicMetadata())
	ds.q = append(ds.q, resp)
	select {
	case ds.wake <- struct{}{}:
	default:
	}
}

func bodyOf(r *extprocv3.ProcessingResponse) *extprocv3.BodyResponse {
	if b := r.GetRequestBody(); b != nil {
		return b
	}
	return r.GetResponseBody()
}

// receiveMetadata stores dynamic metadata, keeping only the configured receiving namespaces.
func (p *proc) receiveMetadata(s *structpb.Struct) {
	for ns, v := range s.GetFields() {
		if !contains(p.c.receiveNS, ns) || v.GetStructValue() == nil {
			continue
		}
		p.x.setMeta(ns, v.GetStructValue())
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// overrideLocked handles a response that carries override_message_timeout: only a timer restart for
// the direction that is waiting, within [1ms, max_message_timeout], once per outstanding message;
// otherwise ignored. The once-flag is ProcessorState's, cleared by onStartProcessorCall and
// onFinishProcessorCall (processor_state.cc), so each message sent or answered allows one more.
func (p *proc) overrideLocked(d time.Duration) {
	for _, dd := range []dir{reqDir, respDir} {
		ds := p.d[dd]
		if len(ds.out) == 0 || ds.fd {
			continue
		}
		if d < time.Millisecond || d > p.c.maxMsgTimeout || ds.overridden {
			p.x.log.Debug("override_message_timeout ignored", "timeout", d)
			return
		}
		ds.overridden = true
		p.armLocked(dd, d)
		return
	}
}

// standaloneOverrideLocked handles a ProcessingResponse that carries only mode_override (API 1.40,
// envoyproxy/envoy#46318): sent after request_headers and before their answer, it may only move the
// request body from NONE or STREAMED to FULL_DUPLEX_STREAMED, with request trailers SEND. It answers
// nothing: the request_headers response must still follow. Any other such message is ignored, like
// an override Envoy does not accept (allow_mode_override false, or not in allowed_override_modes).
func (p *proc) standaloneOverrideLocked(mo *procfv3.ProcessingMode) {
	ds := p.d[reqDir]
	cur := p.m.reqBody
	ok := p.c.allowOverride && len(ds.out) > 0 && ds.out[0] == kHeaders &&
		(cur == procfv3.ProcessingMode_NONE || cur == procfv3.ProcessingMode_STREAMED) &&
		mo.GetRequestBodyMode() == procfv3.ProcessingMode_FULL_DUPLEX_STREAMED &&
		mo.GetRequestTrailerMode() == procfv3.ProcessingMode_SEND
	if ok && len(p.c.allowedOverrides) > 0 {
		merged := mergeModeProto(p.c.modeProto, mo)
		merged.ResponseBodyMode = p.c.modeProto.GetResponseBodyMode()
		ok = false
		for _, a := range p.c.allowedOverrides {
			ok = ok || equalIgnoringReqHeaders(a, merged)
		}
	}
	if !ok {
		p.x.log.Debug("standalone mode_override ignored")
		return
	}
	p.m.reqBody, p.m.reqTrailers = procfv3.ProcessingMode_FULL_DUPLEX_STREAMED, true
	ds.fd = true
}

// finishLocked ends processing once: timers stop and the stream is cancelled, except after a normal
// finish, where the stream is half-closed and given time to close.
func (p *proc) finishLocked(e *ending) {
	if p.end != nil {
		return
	}
	p.end = e
	p.noteEndedLocked()
	close(p.done)
	for i := range p.d {
		p.disarmLocked(dir(i))
	}
	if p.st == nil {
		return
	}
	if e.kind != endDone && e.kind != endClosed {
		p.cancel()
	}
	// An immediate response, a gRPC error or a timer acts at once, not when the filter next sends:
	// Envoy's sendLocalReply resets the upstream request even while the router is still waiting
	// for it (ext_proc.cc Filter::onReceiveMessage -> sendImmediateResponse, Filter::onGrpcError).
	// The exchange's flow sees its context end with the reply as the cause.
	if p.x.ctx.Err() == nil {
		var lr *localReply
		if errors.As(p.resultLocked(), &lr) {
			p.x.abort(lr)
		}
	}
}

// resultLocked maps how processing ended to what the filter does now.
func (p *proc) resultLocked() error {
	e := p.end
	failOpen := p.failOpen && !p.fdFlowed
	if e.lr != nil {
		return e.lr
	}
	switch e.kind {
	case endDone, endClosed:
		return errPass
	case endImmediate:
		return p.immediate(e.imm)
	case endTimeout:
		if failOpen {
			return errPass
		}
		return &localReply{status: 504, details: "ext_proc_error_per-message_timeout_exceeded"}
	case endSpurious:
		if failOpen {
			return errPass
		}
		return &localReply{status: p.c.statusOnError, details: "ext_proc_error_spurious_message"}
	default:
		if failOpen {
			return errPass
		}
		return &localReply{status: p.c.statusOnError, details: details(fmt.Sprintf("ext_proc_error_gRPC_error_%d{%s}", e.code, e.msg))}
	}
}

// details replaces whitespace as Envoy does for %RESPONSE_CODE_DETAILS%.
func details(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
			return '_'
		}
		return r
	}, s)
}

func (p *proc) immediate(ir *extprocv3.ImmediateResponse) error {
	st := int(ir.GetStatus().GetCode())
	if st < 200 {
		st = 200
	}
	var h fields
	if _, err := applyProc(&h, ir.GetHeaders(), true); err != nil {
		// Envoy only logs a failed immediate-response header mutation.
		p.x.log.Debug("immediate response headers", "err", err)
	}
	d := ir.GetDetails()
	if d == "" {
		d = "ext_proc_immediate_response"
	}
	return &localReply{status: st, details: details(d), hdr: h, body: ir.GetBody(), immediate: true}
}

// await returns the next response for direction d, or how processing ended.
func (p *proc) await(ctx context.Context, d dir) (*extprocv3.ProcessingResponse, error) {
	ds := p.d[d]
	for {
		p.mu.Lock()
		if len(ds.q) > 0 {
			r := ds.q[0]
			ds.q = ds.q[1:]
			p.mu.Unlock()
			return r, nil
		}
		if p.end != nil {
			err := p.resultLocked()
			p.mu.Unlock()
			return nil, err
		}
		p.mu.Unlock()
		select {
		case <-ds.wake:
		case <-p.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// fail ends processing with a mutation error: never failed open.
func (p *proc) fail(err error) *localReply {
	lr := &localReply{status: p.c.statusOnError, details: "ext_proc_error_invalid_mutation"}
	if errors.Is(err, errMismatch) {
		// Envoy turns the failed check into an immediate response without a body, the message as
		// its details (processor_state.cc, handleBodyResponse; ext_proc.cc, onReceiveMessage).
		lr.details = details(errMismatch.Error())
	}
	p.mu.Lock()
	p.finishLocked(&ending{kind: endGrpcError, code: codes.Internal, msg: err.Error(), lr: lr})
	p.mu.Unlock()
	p.x.log.Debug("ext_proc mutation refused", "err", err)
	return lr
}

// active reports whether messages may still be sent.
func (p *proc) active() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.end == nil
}

// close ends the stream when the HTTP request is over, as Envoy does by default: half-close, then reset
// at once. The graceful close (wait for the server to end the stream) is the runtime guard
// envoy.reloadable_features.ext_proc_graceful_grpc_close, false in runtime_features.cc; without it
// ExternalProcessorStreamImpl::closeLocalStream is followed by resetStream, so the server sees the stream
// cancelled right after the last response it needed.
func (p *proc) close(reset bool) {
	p.mu.Lock()
	if p.end == nil {
		if reset {
			p.finishLocked(&ending{kind: endGrpcError, code: codes.Canceled, msg: "downstream reset"})
		} else {
			p.finishLocked(&ending{kind: endDone})
		}
	}
	st, cancel, recvDone, release := p.st, p.cancel, p.recvDone, p.release
	p.mu.Unlock()
	if st == nil {
		return
	}
	e := p.x.e
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer release()
		p.sendMu.Lock()
		_ = st.CloseSend()
		p.sendMu.Unlock()
		cancel()
		<-recvDone
	}()
}
