package extproc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

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
// after masking), and the notes earlier stages left. An exchange's final answer waits
// until its events are durable in the spool.
type Recording struct {
	rec recorder

	mu sync.Mutex
	xs map[*Exchange]*recState
}

type recState struct {
	session   string
	requested bool
	notes     int
	lost      bool
}

var (
	_ RequestStage  = (*Recording)(nil)
	_ FragmentStage = (*Recording)(nil)
	_ Observer      = (*Recording)(nil)
)

// NewRecording returns the recording stage writing to rec.
func NewRecording(rec *recordings.Recorder) *Recording {
	return &Recording{rec: rec, xs: map[*Exchange]*recState{}}
}

// Name implements [Stage].
func (*Recording) Name() string { return "recording" }

func (s *Recording) state(x *Exchange) *recState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.xs[x]
	if st == nil {
		st = &recState{session: recordings.SessionKey(x.SessionID, identityOf(x))}
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

// record appends one event of x; a failure is remembered and fails the exchange closed.
func (s *Recording) record(x *Exchange, st *recState, ev recordings.Event) {
	if x.legacy {
		// A 2024-11-05 GET stream learns its session from the endpoint event, after its own
		// request was recorded: the answers it carries go with the session's POSTs.
		st.session = recordings.SessionKey(x.SessionID, identityOf(x))
	}
	ev.Session, ev.RequestID = st.session, x.RequestID
	ev.MCPSessionID = x.SessionID
	if err := s.rec.Record(ev); err != nil {
		st.lost = true
		x.Log.Error("recording event lost; exchange fails closed", "err", err.Error())
	}
}

// OnRequest refuses new requests while the spool is full (fail_closed) and records the
// request messages as they go upstream.
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
	return Pass, nil
}

func (s *Recording) recordRequest(x *Exchange, st *recState) {
	if st.requested {
		return
	}
	st.requested = true
	id := identityOf(x)
	httpLine := x.Method + " " + x.Path
	if x.Body == nil {
		s.record(x, st, recordings.Event{Kind: recordings.KindRequest, Identity: id, HTTP: httpLine})
		return
	}
	for _, m := range x.Body.Messages {
		s.record(x, st, recordings.Event{
			Kind: recordings.KindRequest, Identity: id, HTTP: httpLine,
			Method: m.Method, Tool: m.Tool, Message: m.Raw,
		})
	}
}

func (s *Recording) recordNotes(x *Exchange, st *recState) {
	notes := x.Notes()
	for _, n := range notes[min(st.notes, len(notes)):] {
		s.record(x, st, recordings.Event{Kind: recordings.KindNote, Note: &recordings.Note{Stage: n.Stage, Kind: n.Kind, Attrs: n.Attrs}})
	}
	st.notes = len(notes)
}

// OnResponse records one message as the client will receive it.
func (s *Recording) OnResponse(_ context.Context, x *Exchange, r *Response) (Verdict, error) {
	st := s.state(x)
	s.recordNotes(x, st)
	ev := recordings.Event{Kind: recordings.KindResponse, Status: x.Status, Method: r.Msg.Method, Message: r.Msg.Raw}
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

// Ended forgets the exchange.
func (s *Recording) Ended(x *Exchange) {
	s.mu.Lock()
	delete(s.xs, x)
	s.mu.Unlock()
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
		cctx, sp := st.stageSpan(ctx, o.Name()+" commit", "response")
		err := o.Completing(cctx, st.x, ref)
		endStage(sp, Pass, err)
		if err != nil {
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
