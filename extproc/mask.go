package extproc

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpguard/mcpguard/masking"
	"github.com/mcpguard/mcpguard/mcp"
)

// Masking is the response stage that masks secrets and personal data in every message
// coming back from upstream: the result of a response (tool results, resources, prompts,
// task results), the params of notifications and server→client requests, the error
// object of an error, and the id: field of the server-sent event that carried the message.
// Envelope members (jsonrpc, id, method) are never touched. A message
// that cannot be masked is withheld. Each masked message leaves a "masking"/"masked" note
// with counts per type, never values.
type Masking struct {
	m        *masking.Masker
	findings *prometheus.CounterVec
}

var (
	_ ResponseStage = (*Masking)(nil)
	_ FragmentStage = (*Masking)(nil)
	_ HeaderStage   = (*Masking)(nil)
	_ RawEventStage = (*Masking)(nil)
)

// NewMasking returns the stage for m and registers its findings counter on reg.
func NewMasking(m *masking.Masker, reg prometheus.Registerer) (*Masking, error) {
	if m == nil || reg == nil {
		return nil, errors.New("masking stage: masker and registerer are required")
	}
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mcpguard_masking_findings_total",
		Help: "Values masked in upstream responses, by detector type.",
	}, []string{"type"})
	if err := reg.Register(c); err != nil {
		return nil, fmt.Errorf("register masking metrics: %w", err)
	}
	return &Masking{m: m, findings: c}, nil
}

// Name implements [Stage].
func (*Masking) Name() string { return "masking" }

// OnResponse masks the payload member of r's message and replaces the message when
// anything was found.
func (s *Masking) OnResponse(_ context.Context, x *Exchange, r *Response) (Verdict, error) {
	raw := r.Msg.Raw
	member := "result"
	switch r.Msg.Kind {
	case mcp.KindRequest, mcp.KindNotification:
		member = "params"
	case mcp.KindError:
		member = "error"
	case mcp.KindResult:
		// "result", as initialised.
	}
	out, counts, err := s.m.Member(raw, member)
	if err != nil {
		return Verdict{}, fmt.Errorf("mask %s: %w", member, err)
	}
	if ev := r.Event; ev != nil && ev.HasID {
		// The id: line reaches the agent (and comes back as Last-Event-ID) and the
		// recording: it is masked like text. The stream re-encodes the event from *ev when
		// the message is replaced, so a masked id alone still replaces the message.
		if id, c := s.m.Text([]byte(ev.ID)); len(c) > 0 {
			ev.ID = string(id)
			if counts == nil {
				counts = masking.Counts{}
			}
			for t, n := range c {
				counts[t] += n
			}
		}
	}
	if len(counts) == 0 {
		return Pass, nil
	}
	s.note(x, counts)
	x.masked(s.Name(), "response", "", counts)
	return Verdict{Action: Replace, Message: out}, nil
}

// ResponseHeader implements [HeaderStage]: header values are masked like text, with the
// header's name as context (see [masking.Masker.Header] for the headers left alone).
func (s *Masking) ResponseHeader(x *Exchange, name, value string) (string, bool) {
	out, counts := s.m.Header(name, value)
	if len(counts) == 0 {
		return value, false
	}
	s.note(x, counts)
	x.masked(s.Name(), "response", "", counts)
	return out, true
}

// RawEvent implements [RawEventStage]: the event's lines are masked as text. A redaction
// holds no line break, so the event's framing is kept.
func (s *Masking) RawEvent(x *Exchange, raw []byte) []byte {
	out, counts := s.m.Text(raw)
	if len(counts) == 0 {
		return raw
	}
	s.note(x, counts)
	x.masked(s.Name(), "response", "", counts)
	return out
}

func (s *Masking) note(x *Exchange, counts masking.Counts) {
	for t, n := range counts {
		s.findings.WithLabelValues(t).Add(float64(n))
	}
	x.AddNote(Note{Stage: "masking", Kind: "masked", Attrs: map[string]any{"counts": map[string]int(counts)}})
}

// Fragments implements [FragmentStage]: an oversized event streams through a hold-back
// masker over its wire bytes.
func (s *Masking) Fragments(x *Exchange) Filter {
	return &maskFilter{s: s, x: x, st: s.m.NewStream()}
}

type maskFilter struct {
	s  *Masking
	x  *Exchange
	st *masking.Stream
}

func (f *maskFilter) Write(p []byte) []byte { return f.st.Write(p) }

func (f *maskFilter) Close() []byte {
	out := f.st.Close()
	if c := f.st.Counts(); len(c) > 0 {
		f.s.note(f.x, c)
		f.x.masked(f.s.Name(), "response", "", c)
	}
	return out
}
