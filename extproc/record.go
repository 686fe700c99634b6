package extproc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/mcpguard/mcpguard/masking"
	"github.com/mcpguard/mcpguard/mcp"
	"github.com/mcpguard/mcpguard/recordings"
)

// Observer is a stage that also watches each exchange from outside the pipeline: it sees
// the gateway's own answers (immediate responses), and it can hold back the last answer of
// an exchange until its own work is done. A stage given to [NewServer] that implements
// Observer is called as one.
type Observer interface {
	Stage
	// Completing is called before the exchange's final answer goes to Envoy; refusal is
	// non-nil when that answer is an immediate response. An error withholds the answer
	// and fails the stream (closed).
	Completing(ctx context.Context, x *Exchange, refusal *Refusal) error
	// Ended is called once when the stream ends, whether or not the exchange completed.
	Ended(x *Exchange)
}

// Refusal is an immediate response the gateway sends instead of the upstream's.
type Refusal struct {
	Status int
	Body   []byte // the JSON-RPC error
}

// recorder is what the recording stage uses of [recordings.Recorder].
type recorder interface {
	Admit() error
	Record(ev recordings.Event) error
	Sync(ctx context.Context) error
}

// Recording records what crossed the gateway: requests as forwarded, the gateway's
// refusals, response messages and SSE events as delivered (it is the last response stage,
// after masking), and the notes earlier stages left. Every event carries the time it
// happened: a request its time of receipt, notes (policy decision, approval requested,
// held, decided, released) theirs, a forward event the time the request went upstream,
// a response the time it arrived from upstream; they are recorded in that order, once the
// request stages are done. An exchange's final answer waits until its events are durable
// in the spool.
//
// An exchange that names no session is recorded once its response headers arrive: an
// initialize answered with an Mcp-Session-Id starts that session's recording, anything
// else is grouped by identity and client ([recordings.SessionKey]). A sessionless
// server/discover (the probe clients send before they fall back to initialize) changes
// nothing upstream: it is answered before its events are durable, and they wait (up to
// [preludeWait]) for the same caller's next exchange, whose recording they start; when
// none comes they go to the caller's stateless recording.
//
// With a masker, the arguments of recorded tools/call and prompts/get requests are masked
// (the upstream still receives what the request stages let through); with a sealer, a
// request whose recorded form differs from what the client sent keeps the original sealed.
type Recording struct {
	rec  recorder
	mask *masking.Masker
	seal *recordings.Sealer

	mu       sync.Mutex
	xs       map[*Exchange]*recState
	preludes map[string]*prelude // sessionless server/discover events by stateless key
	waiting  atomic.Int32        // len(preludes), read without the lock on every exchange
	closed   bool
}

// preludeWait is how long a discovery probe's events wait for the caller's next exchange;
// maxPreludes bounds how many callers may have some waiting and maxPreludeEvents how many
// events one caller may have waiting (beyond, they are recorded at once in the stateless
// recording).
const (
	preludeWait      = 30 * time.Second
	maxPreludes      = 4096
	maxPreludeEvents = 64
)

// prelude is the recorded events of a caller's discovery probes, waiting for its next
// exchange.
type prelude struct {
	session string // the stateless key they go to when nothing claims them
	evs     []recordings.Event
	timer   *time.Timer
}

type recState struct {
	session   string             // empty until known
	pending   []recordings.Event // recorded before the session was known
	requested bool
	forwarded bool
	completed bool
	notes     int
	lost      bool
}

var (
	_ RequestStage  = (*Recording)(nil)
	_ FragmentStage = (*Recording)(nil)
	_ Observer      = (*Recording)(nil)
)

// RecordingOptions are how the recording stage treats request arguments.
type RecordingOptions struct {
	// Mask masks the arguments of recorded requests; nil records them as forwarded.
	Mask *masking.Masker
	// Seal keeps the request as sent, encrypted, when its recorded form was masked.
	Seal *recordings.Sealer
}

// NewRecording returns the recording stage writing to rec.
func NewRecording(rec *recordings.Recorder, o RecordingOptions) *Recording {
	return &Recording{rec: rec, mask: o.Mask, seal: o.Seal, xs: map[*Exchange]*recState{}, preludes: map[string]*prelude{}}
}

// Name implements [Stage].
func (*Recording) Name() string { return "recording" }

func (s *Recording) state(x *Exchange) *recState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.xs[x]
	if st == nil {
		st = &recState{}
		s.xs[x] = st
	}
	return st
}

func identityOf(x *Exchange) *recordings.Identity {
	if x.Identity.Subject == "" {
		return nil
	}
	return &recordings.Identity{Subject: x.Identity.Subject, ClientID: x.Identity.ClientID, Issuer: x.Identity.Issuer, Groups: x.Identity.Groups}
}

// sessionOf is the MCP session of x: the one it named, else the one its response opened.
func sessionOf(x *Exchange) string {
	if x.SessionID != "" {
		return x.SessionID
	}
	return x.OpenedSessionID
}

// maxClientName bounds the client name taken into a stateless session key.
const maxClientName = 256

// clientName is the name the client gives itself: params._meta clientInfo on 2026-07-28
// requests, params.clientInfo on initialize. Only the first message is read.
func clientName(x *Exchange) string {
	b := x.Body
	if x.sent != nil {
		b = x.sent
	}
	if b == nil || len(b.Messages) == 0 {
		return ""
	}
	m := &b.Messages[0]
	var info struct {
		Name string `json:"name"`
	}
	switch {
	case len(m.Meta) > 0:
		var meta struct {
			Info json.RawMessage `json:"io.modelcontextprotocol/clientInfo"`
		}
		if json.Unmarshal(m.Meta, &meta) != nil || json.Unmarshal(meta.Info, &info) != nil {
			return ""
		}
	case m.Method == "initialize":
		var p struct {
			Info json.RawMessage `json:"clientInfo"`
		}
		if json.Unmarshal(m.Params, &p) != nil || json.Unmarshal(p.Info, &info) != nil {
			return ""
		}
	}
	if len(info.Name) > maxClientName {
		return info.Name[:maxClientName]
	}
	return info.Name
}

// record appends one event of x, stamped now unless it carries its time. Until x's session
// is known (it named none and no response said) events wait in st; settle records them. A
// failure is remembered and fails the exchange closed.
func (s *Recording) record(x *Exchange, st *recState, ev recordings.Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	ev.Time = ev.Time.UTC()
	ev.RequestID = x.RequestID
	if st.session == "" && sessionOf(x) == "" && !st.completed && (x.Status == 0 || discovers(x)) {
		st.pending = append(st.pending, ev)
		return
	}
	s.settle(x, st)
	s.append(x, st, ev)
}

// settle fixes the session of x and records what waited for it: the caller's discovery
// probe first (it happened earlier), then x's own events.
func (s *Recording) settle(x *Exchange, st *recState) {
	first := st.session == ""
	if first || x.legacy {
		// A 2024-11-05 GET stream learns its session from the endpoint event, after its own
		// request was recorded: the answers it carries go with the session's POSTs.
		st.session = recordings.SessionKey(sessionOf(x), identityOf(x), clientName(x))
	}
	pending := st.pending
	st.pending = nil
	if first && s.waiting.Load() > 0 {
		if p := s.takePrelude(recordings.SessionKey("", identityOf(x), clientName(x))); p != nil {
			pending = append(p.evs, pending...)
		}
	}
	for _, ev := range pending {
		s.append(x, st, ev)
	}
}

// discovers reports an exchange that is a single server/discover request.
func discovers(x *Exchange) bool {
	return x.Body != nil && len(x.Body.Messages) == 1 && x.Body.Messages[0].Method == "server/discover"
}

// isProbe reports a sessionless server/discover exchange that went upstream and was
// answered: its events may wait for the caller's next exchange.
func isProbe(x *Exchange, st *recState, refusal *Refusal) bool {
	return refusal == nil && st.forwarded && sessionOf(x) == "" && discovers(x)
}

// keepPrelude parks a probe's events for the caller's next exchange; false when they must
// be recorded now (too many waiting, or shutting down).
func (s *Recording) keepPrelude(x *Exchange, st *recState) bool {
	key := recordings.SessionKey("", identityOf(x), clientName(x))
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.preludes[key]
	if s.closed || (p == nil && len(s.preludes) >= maxPreludes) || (p != nil && len(p.evs) >= maxPreludeEvents) {
		return false
	}
	if p == nil {
		p = &prelude{session: key}
		s.preludes[key] = p
		s.waiting.Add(1)
		p.timer = time.AfterFunc(preludeWait, func() { _ = s.flushPrelude(key, x.Log) }) // logged there
	}
	p.evs = append(p.evs, st.pending...)
	st.pending = nil
	st.session = key
	return true
}

func (s *Recording) takePrelude(key string) *prelude {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.preludes[key]
	if p != nil {
		delete(s.preludes, key)
		s.waiting.Add(-1)
		p.timer.Stop()
	}
	return p
}

// flushPrelude records a probe no exchange claimed in the caller's stateless recording.
func (s *Recording) flushPrelude(key string, log *slog.Logger) error {
	p := s.takePrelude(key)
	if p == nil {
		return nil
	}
	var errs []error
	for _, ev := range p.evs {
		ev.Session = p.session
		if err := s.rec.Record(ev); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		log.Error("recording of a discovery probe lost", "err", err.Error())
		return err
	}
	return nil
}

// Close records the discovery probes still waiting; call it before closing the recorder.
func (s *Recording) Close(context.Context) error {
	s.mu.Lock()
	s.closed = true
	keys := make([]string, 0, len(s.preludes))
	for k := range s.preludes {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	var errs []error
	for _, k := range keys {
		errs = append(errs, s.flushPrelude(k, slog.New(slog.DiscardHandler)))
	}
	return errors.Join(errs...)
}

func (s *Recording) append(x *Exchange, st *recState, ev recordings.Event) {
	ev.Session = st.session
	ev.MCPSessionID = sessionOf(x)
	if err := s.rec.Record(ev); err != nil {
		st.lost = true
		x.Log.Error("recording event lost; exchange fails closed", "err", err.Error())
	}
}

// OnRequest refuses new requests while the spool is full (fail_closed) and records the
// request (at its time of receipt), the notes of the stages before (policy, approvals,
// with their times) and its release upstream.
func (s *Recording) OnRequest(_ context.Context, x *Exchange) (Verdict, error) {
	if err := s.rec.Admit(); err != nil {
		if errors.Is(err, recordings.ErrSpoolFull) {
			return Verdict{
				Action: Deny, Status: http.StatusServiceUnavailable,
				Err: &mcp.Error{Code: mcp.CodeInternal, Message: "recording unavailable: storage full, retry later"},
			}, nil
		}
		return Verdict{}, fmt.Errorf("admit recording: %w", err)
	}
	st := s.state(x)
	s.recordRequest(x, st)
	s.recordNotes(x, st)
	if !st.forwarded {
		st.forwarded = true
		ev := recordings.Event{Kind: recordings.KindForward, HTTP: x.Method + " " + x.Path, Note: &recordings.Note{
			Stage: "recording", Kind: "forward", Attrs: map[string]any{"waited_ms": time.Since(x.Received).Milliseconds()},
		}}
		if x.Body != nil && len(x.Body.Messages) == 1 {
			ev.Method, ev.Tool = x.Body.Messages[0].Method, x.Body.Messages[0].Tool
		}
		s.record(x, st, ev)
	}
	return Pass, nil
}

func (s *Recording) recordRequest(x *Exchange, st *recState) {
	if st.requested {
		return
	}
	st.requested = true
	id := identityOf(x)
	httpLine := x.Method + " " + x.Path
	at := x.Received
	if x.Body == nil {
		s.record(x, st, recordings.Event{Time: at, Kind: recordings.KindRequest, Identity: id, HTTP: httpLine})
		return
	}
	for i, m := range x.Body.Messages {
		ev := recordings.Event{
			Time: at, Kind: recordings.KindRequest, Identity: id, HTTP: httpLine,
			Method: m.Method, Tool: m.Tool, Message: m.Raw,
		}
		sent := m.Raw
		if x.sent != nil && i < len(x.sent.Messages) {
			sent = x.sent.Messages[i].Raw
		}
		s.protect(x, &ev, &m, sent)
		s.record(x, st, ev)
	}
}

// protect masks the arguments of ev's message for the recording and, when the recorded
// message is not what the client sent, seals the original into ev. A message that cannot
// be masked is recorded without its body.
func (s *Recording) protect(x *Exchange, ev *recordings.Event, m *mcp.Message, sent json.RawMessage) {
	if s.mask != nil && (m.Method == "tools/call" || m.Method == "prompts/get") {
		out, counts, err := s.mask.Member(m.Raw, "params", "arguments")
		switch {
		case err != nil:
			x.Log.Warn("recorded arguments could not be masked; message recorded without its body", "err", err.Error())
			ev.Message = nil
			ev.Note = &recordings.Note{Stage: "recording", Kind: "unmaskable"}
		case len(counts) > 0:
			ev.Message = out
			ev.Note = &recordings.Note{Stage: "recording", Kind: "masked", Attrs: map[string]any{"counts": map[string]int(counts)}}
		}
	}
	if s.seal == nil || bytes.Equal(ev.Message, sent) {
		return
	}
	sealed, err := s.seal.Seal(sent)
	if err != nil {
		// Nothing leaks: the recording keeps the masked form and says the original is lost.
		x.Log.Error("original request could not be sealed; recorded masked only", "err", err.Error())
		return
	}
	ev.Sealed = sealed
}

func (s *Recording) recordNotes(x *Exchange, st *recState) {
	notes := x.Notes()
	for _, n := range notes[min(st.notes, len(notes)):] {
		s.record(x, st, recordings.Event{Time: n.Time, Kind: recordings.KindNote, Note: &recordings.Note{Stage: n.Stage, Kind: n.Kind, Attrs: n.Attrs}})
	}
	st.notes = len(notes)
}

// OnResponse records one message as the client will receive it, at the time it arrived.
func (s *Recording) OnResponse(_ context.Context, x *Exchange, r *Response) (Verdict, error) {
	st := s.state(x)
	s.recordNotes(x, st)
	ev := recordings.Event{Time: r.Received, Kind: recordings.KindResponse, Status: x.Status, Method: r.Msg.Method, Message: r.Msg.Raw}
	if ev.Method == "" && x.Body != nil {
		for _, m := range x.Body.Messages {
			if m.Kind == mcp.KindRequest && string(m.ID) == string(r.Msg.ID) {
				ev.Method, ev.Tool = m.Method, m.Tool
			}
		}
	}
	if r.Event != nil {
		ev.SSE = &recordings.SSE{ID: r.Event.ID, Name: r.Event.Name}
	}
	s.record(x, st, ev)
	return Pass, nil
}

// Completing records a refusal and the remaining notes, ends the session on a successful
// DELETE, and waits until the exchange's events are durable.
func (s *Recording) Completing(ctx context.Context, x *Exchange, refusal *Refusal) error {
	st := s.state(x)
	if refusal != nil {
		s.recordRequest(x, st) // refused before reaching this stage: record what was attempted
	}
	s.recordNotes(x, st)
	if refusal != nil {
		s.record(x, st, recordings.Event{Kind: recordings.KindDenial, Status: refusal.Status, Message: refusal.Body})
	}
	st.completed = true
	if st.session == "" && isProbe(x, st, refusal) && !st.lost && s.keepPrelude(x, st) {
		return nil
	}
	s.settle(x, st)
	if x.Method == http.MethodDelete && x.SessionID != "" && x.Status >= 200 && x.Status < 300 {
		s.record(x, st, recordings.Event{
			Kind: recordings.KindSessionEnd,
			Note: &recordings.Note{Stage: "recording", Kind: "session_end", Attrs: map[string]any{"reason": "deleted"}},
		})
	}
	if st.lost {
		return errors.New("recording incomplete")
	}
	if err := s.rec.Sync(ctx); err != nil {
		return fmt.Errorf("commit recording: %w", err)
	}
	return nil
}

// Ended forgets the exchange. Events still waiting for their session are recorded. A
// request that never left the gateway nor got an answer (the client went away while it was
// held, say) is recorded with its notes and an "abandoned" note.
func (s *Recording) Ended(x *Exchange) {
	s.mu.Lock()
	st := s.xs[x]
	delete(s.xs, x)
	s.mu.Unlock()
	if x.Received.IsZero() || (st != nil && st.completed) {
		return
	}
	if st == nil {
		st = &recState{}
	}
	st.completed = true
	if !st.forwarded {
		s.recordRequest(x, st)
		s.recordNotes(x, st)
		s.record(x, st, recordings.Event{Kind: recordings.KindNote, Note: &recordings.Note{
			Stage: "recording", Kind: "abandoned", Attrs: map[string]any{"reason": "the stream ended before the request was forwarded or answered"},
		}})
	}
	s.settle(x, st)
}

// Fragments lets an event too large to parse stream through; it is recorded as its size.
func (s *Recording) Fragments(x *Exchange) Filter {
	return &recFilter{s: s, x: x}
}

type recFilter struct {
	s *Recording
	x *Exchange
	n int
}

func (f *recFilter) Write(p []byte) []byte { f.n += len(p); return p }

func (f *recFilter) Close() []byte {
	st := f.s.state(f.x)
	f.s.record(f.x, st, recordings.Event{
		Kind: recordings.KindResponse, Status: f.x.Status, SSE: &recordings.SSE{},
		Note: &recordings.Note{Stage: "recording", Kind: "oversize_event", Attrs: map[string]any{"bytes": f.n}},
	})
	return nil
}

// completing tells the observers that resp is the exchange's final answer.
func (st *stream) completing(ctx context.Context, resp *extprocv3.ProcessingResponse) error {
	if st.x == nil {
		return nil
	}
	var ref *Refusal
	if im := resp.GetImmediateResponse(); im != nil {
		ref = &Refusal{Status: int(im.GetStatus().GetCode()), Body: im.GetBody()}
	}
	for _, o := range st.s.obs {
		if err := o.Completing(ctx, st.x, ref); err != nil {
			return fmt.Errorf("%s: %w", o.Name(), err)
		}
	}
	return nil
}

// ended tells the observers the stream is over.
func (st *stream) ended() {
	if st.x == nil {
		return
	}
	for _, o := range st.s.obs {
		o.Ended(st.x)
	}
}
