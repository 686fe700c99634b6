package extproc

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpguard/mcpguard/masking"
)

// ArgumentMasking is the request stage that masks the arguments of tools/call messages
// before they go upstream (masking.requests.tool_arguments). It must come after policy
// and approvals in the pipeline: they decide on the arguments as the agent sent them (a
// rule or an approver judging a masked value would judge something else), while the
// upstream and the recording receive them masked. Only params.arguments changes; the
// envelope, the tool name and _meta stay as sent. A body whose arguments cannot be masked
// is refused. Each masked call leaves an "argument_masking"/"masked" note with the tool and
// counts per type, never values.
type ArgumentMasking struct {
	m        *masking.Masker
	findings *prometheus.CounterVec
}

var _ RequestStage = (*ArgumentMasking)(nil)

// NewArgumentMasking returns the stage for m and registers its findings counter on reg.
func NewArgumentMasking(m *masking.Masker, reg prometheus.Registerer) (*ArgumentMasking, error) {
	if m == nil || reg == nil {
		return nil, errors.New("argument masking stage: masker and registerer are required")
	}
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mcpguard_masking_argument_findings_total",
		Help: "Values masked in tool-call arguments before they went upstream, by detector type.",
	}, []string{"type"})
	if err := reg.Register(c); err != nil {
		return nil, fmt.Errorf("register argument masking metrics: %w", err)
	}
	return &ArgumentMasking{m: m, findings: c}, nil
}

// Name implements [Stage].
func (*ArgumentMasking) Name() string { return "argument_masking" }

// OnRequest masks the arguments of every tools/call message of the body and replaces the
// body when anything was found; in a batch only the masked elements change.
func (s *ArgumentMasking) OnRequest(_ context.Context, x *Exchange) (Verdict, error) {
	if x.Body == nil {
		return Pass, nil
	}
	var parts [][]byte // nil until a message changes
	for i, msg := range x.Body.Messages {
		if msg.Method != "tools/call" || msg.Arguments == nil {
			continue
		}
		out, counts, err := s.m.Member(msg.Raw, "params", "arguments")
		if err != nil {
			return Verdict{}, fmt.Errorf("mask tool arguments: %w", err)
		}
		if len(counts) == 0 {
			continue
		}
		if parts == nil {
			parts = make([][]byte, len(x.Body.Messages))
			for j, m := range x.Body.Messages {
				parts[j] = m.Raw
			}
		}
		parts[i] = out
		for t, n := range counts {
			s.findings.WithLabelValues(t).Add(float64(n))
		}
		x.AddNote(Note{Stage: s.Name(), Kind: "masked", Attrs: map[string]any{
			"tool": msg.Tool, "counts": map[string]int(counts),
		}})
		x.masked(s.Name(), "request", msg.Tool, counts)
	}
	if parts == nil {
		return Pass, nil
	}
	if !x.Body.Batch {
		return Verdict{Action: Replace, Message: parts[0]}, nil
	}
	return Verdict{Action: Replace, Message: joinArray(parts)}, nil
}
