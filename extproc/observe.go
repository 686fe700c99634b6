package extproc

import (
	"cmp"
	"context"
	"encoding/json"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpguard/mcpguard/approvals"
	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/masking"
	"github.com/mcpguard/mcpguard/mcp"
	"github.com/mcpguard/mcpguard/policy"
)

// Auditor receives one event per decision; [audit.Log] implements it. Emit must not block.
type Auditor interface {
	Emit(ev audit.Event, sc trace.SpanContext)
}

var _ Auditor = (*audit.Log)(nil)

// instrumentation is the tracer name of the spans this package starts.
const instrumentation = "github.com/mcpguard/mcpguard/extproc"

// Instrument turns on traces (tp non-nil) and audit events (a non-nil) for the exchanges
// served from now on. Call it before serving. With both nil nothing is traced or audited and
// the pipeline does no extra work.
func (s *Server) Instrument(tp trace.TracerProvider, a Auditor) {
	if tp != nil {
		s.tracer = tp.Tracer(instrumentation)
	}
	s.audit = a
}

// observed is what tracing and auditing remember of one exchange; nil on the exchange when
// both are off.
type observed struct {
	audit     Auditor
	span      trace.Span // the exchange's span; nil when tracing is off
	sc        trace.SpanContext
	decisions []decided
	approval  *approvalState
	audited   bool
}

// decided is a policy decision about one message of the body, by its index (a later stage
// may replace the body with the same messages re-encoded).
type decided struct {
	i int
	d policy.Decision
}

type approvalState struct {
	id, step, approver string
}

// decided remembers the policy decision about m, replacing an earlier one (a call decided
// again after the policy changed while it was held).
func (x *Exchange) decided(m *mcp.Message, d policy.Decision) {
	o := x.obs
	if o == nil || x.Body == nil {
		return
	}
	i := -1
	for j := range x.Body.Messages {
		if &x.Body.Messages[j] == m {
			i = j
		}
	}
	if i < 0 {
		return // not a message of the body (a tools/list entry decided for visibility)
	}
	for k := range o.decisions {
		if o.decisions[k].i == i {
			o.decisions[k].d = d
			return
		}
	}
	o.decisions = append(o.decisions, decided{i: i, d: d})
}

// approvalStep remembers the latest step of the exchange's approval.
func (x *Exchange) approvalStep(step string, r approvals.Request) {
	if x.obs == nil {
		return
	}
	a := &approvalState{id: r.ID, step: step}
	if r.Decision != nil {
		a.approver = r.Decision.By.Subject
	}
	x.obs.approval = a
}

// held emits the held event of a call that waits for an approver.
func (x *Exchange) held(r approvals.Request) {
	o := x.obs
	if o == nil || o.audit == nil {
		return
	}
	ev := x.event(audit.Held, "approvals")
	if m := x.single(); m != nil {
		ev.Method, ev.Tool = m.Method, auditTarget(m)
	}
	ev.Rule, ev.Action, ev.ApprovalID = r.Rule, string(policy.RequireApproval), r.ID
	o.audit.Emit(ev, o.sc)
}

// masked emits the masked event of a message in which stage masked values.
func (x *Exchange) masked(stage, direction, tool string, counts masking.Counts) {
	o := x.obs
	if o == nil {
		return
	}
	if o.span != nil && o.span.IsRecording() {
		n := 0
		for _, c := range counts {
			n += c
		}
		o.span.AddEvent("masked", trace.WithAttributes(attribute.String("mcpguard.stage", stage),
			attribute.String("mcpguard.direction", direction), attribute.Int("mcpguard.masked.count", n)))
	}
	if o.audit == nil {
		return
	}
	ev := x.event(audit.Masked, stage)
	ev.Direction = direction
	ev.Method, ev.Tool = "", tool
	if m := x.single(); m != nil {
		ev.Method = m.Method
		if tool == "" {
			ev.Tool = auditTarget(m)
		}
	}
	ev.Masked = make(map[string]int, len(counts))
	for t, n := range counts {
		ev.Masked[t] = n
	}
	o.audit.Emit(ev, o.sc)
}

// auditTarget is what an event names as the tool: the tool, prompt or resource; "" when the
// method targets nothing (initialize, tools/list).
func auditTarget(m *mcp.Message) string {
	if t := target(m); t != m.Method {
		return t
	}
	return ""
}

// single is the one message of a body that is not a batch, nil otherwise.
func (x *Exchange) single() *mcp.Message {
	if x.Body == nil || x.Body.Batch || len(x.Body.Messages) != 1 {
		return nil
	}
	return &x.Body.Messages[0]
}

// event is an audit event about x with the caller, ids and trace filled in.
func (x *Exchange) event(o audit.Outcome, stage string) audit.Event {
	ev := audit.Event{
		Time: time.Now().UTC(), Outcome: o, Stage: stage,
		Subject: x.Identity.Subject, ClientID: x.Identity.ClientID, Issuer: x.Identity.Issuer,
		RequestID: x.RequestID, SessionID: x.SessionID,
	}
	if x.obs != nil && x.obs.audit != nil && x.obs.sc.IsValid() {
		ev.TraceID, ev.SpanID = x.obs.sc.TraceID().String(), x.obs.sc.SpanID().String()
	}
	return ev
}

// observe starts what tracing and auditing keep of the exchange once its request is known:
// the exchange's span, whose parent is the caller's W3C trace context, and the trace ids on
// the exchange's log lines. It does nothing when both are off.
func (st *stream) observe(body *mcp.Body) {
	s, x := st.s, st.x
	if (s.tracer == nil && s.audit == nil) || x == nil || x.obs != nil {
		return
	}
	x.obs = &observed{audit: s.audit}
	if s.tracer == nil {
		return
	}
	ctx := context.Background()
	if p := parentOf(x.Headers, body); p.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, p)
	}
	name, method, tool := "mcp "+x.Method, x.Method, ""
	if body != nil && len(body.Messages) > 0 {
		m := &body.Messages[0]
		// The tool or prompt name only: a resource URI may name data, and stays out of traces.
		method, tool, name = m.Method, cmp.Or(m.Tool, m.Prompt), m.Method
		if tool != "" {
			name = method + " " + tool
		}
	}
	_, span := s.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(st.t0))
	x.obs.span = span
	if !span.IsRecording() {
		return // not sampled: no attributes, no ids on logs and events, no stage spans
	}
	x.obs.sc = span.SpanContext()
	attrs := []attribute.KeyValue{
		attribute.String("mcp.method.name", method),
		attribute.String("http.request.method", x.Method),
		attribute.String("enduser.id", x.Identity.Subject),
		attribute.String("mcpguard.client_id", x.Identity.ClientID),
		attribute.String("mcpguard.request_id", x.RequestID),
	}
	if tool != "" && method == "tools/call" {
		attrs = append(attrs, attribute.String("gen_ai.tool.name", tool))
	} else if tool != "" {
		attrs = append(attrs, attribute.String("gen_ai.prompt.name", tool))
	}
	if x.SessionID != "" {
		attrs = append(attrs, attribute.String("mcp.session.id", x.SessionID))
	}
	if body != nil && !body.Batch && len(body.Messages) == 1 && body.Messages[0].ID != nil {
		attrs = append(attrs, attribute.String("jsonrpc.request.id", string(body.Messages[0].ID)))
	}
	if body != nil && body.Batch {
		attrs = append(attrs, attribute.Int("mcpguard.batch.size", len(body.Messages)))
	}
	span.SetAttributes(attrs...)
	x.Log = x.Log.With("trace_id", x.obs.sc.TraceID().String(), "span_id", x.obs.sc.SpanID().String())
	st.log = x.Log
}

// span is the exchange's span when it records, nil otherwise (tracing off, or not sampled).
func (st *stream) span() trace.Span {
	if st.x == nil || st.x.obs == nil || st.x.obs.span == nil || !st.x.obs.span.IsRecording() {
		return nil
	}
	return st.x.obs.span
}

// stageSpan starts the child span of one stage run; nil when the exchange is not recorded.
func (st *stream) stageSpan(ctx context.Context, name, direction string) (context.Context, trace.Span) {
	sp := st.span()
	if sp == nil {
		return ctx, nil
	}
	return st.s.tracer.Start(trace.ContextWithSpan(ctx, sp), "mcpguard "+name,
		trace.WithAttributes(attribute.String("mcpguard.direction", direction)))
}

// endStage ends a stage's span with its verdict.
func endStage(sp trace.Span, v Verdict, err error) {
	if sp == nil {
		return
	}
	if err != nil {
		sp.SetStatus(codes.Error, "stage failed")
	} else {
		sp.SetAttributes(attribute.String("mcpguard.stage.action", v.Action.String()))
	}
	sp.End()
}

// requestDecided emits the audit events of the request's decision, once: one per JSON-RPC
// request or notification of the body (one for a request without body), and puts the
// decision on the exchange's span.
func (st *stream) requestDecided(resp *extprocv3.ProcessingResponse) {
	x := st.x
	if x == nil || x.obs == nil || x.obs.audited || st.phase == awaitRequestBody {
		return
	}
	o := x.obs
	o.audited = true
	status, refused := 0, false
	if im := resp.GetImmediateResponse(); im != nil {
		status, refused = int(im.GetStatus().GetCode()), true
	}
	stage := st.deniedBy
	if refused && stage == "" {
		stage = "protocol"
	}
	var msgs []int
	if x.Body != nil {
		for i := range x.Body.Messages {
			if m := &x.Body.Messages[i]; m.Kind == mcp.KindRequest || m.Kind == mcp.KindNotification {
				msgs = append(msgs, i)
			}
		}
	}
	if len(msgs) == 0 {
		msgs = append(msgs, -1)
	}
	var overall audit.Outcome
	var rule string
	for _, i := range msgs {
		ev := x.event(audit.Allowed, "policy")
		if i < 0 {
			ev.Method = x.Method
		} else {
			m := &x.Body.Messages[i]
			ev.Method, ev.Tool = m.Method, auditTarget(m)
		}
		ev.Direction = "request"
		var d *policy.Decision
		for k := range o.decisions {
			if o.decisions[k].i == i {
				d = &o.decisions[k].d
			}
		}
		if d != nil {
			ev.Rule, ev.Action, ev.Observe, ev.Reason = ruleLabel(d.Rule), string(d.Action), d.DryRun, d.Reason
			if !d.Enforced() && !d.DryRun && len(d.Observed) > 0 {
				// Allowed, but an observe rule matched on the way: that is what the SIEM wants.
				ob := d.Observed[0]
				ev.Rule, ev.Action, ev.Observe, ev.Reason = ob.Rule, string(ob.Would), true, ob.Reason
			}
			rule = ev.Rule
		}
		a := o.approval
		if d == nil || d.Action != policy.RequireApproval {
			a = nil
		}
		if a != nil {
			ev.ApprovalID, ev.Approver = a.id, a.approver
		}
		switch {
		case refused && a != nil && a.step == "deferred":
			ev.Outcome, ev.Stage = audit.Deferred, "approvals"
		case refused:
			ev.Outcome, ev.Stage, ev.Status = audit.Denied, stage, status
			if a != nil && stage == "policy" {
				ev.Stage = "approvals"
				if ev.Reason == "" || a.step != "denied" {
					ev.Reason = "approval " + a.step
				}
			}
		case a != nil && a.step == "granted":
			ev.Outcome, ev.Stage = audit.Approved, "approvals"
		}
		if overall == "" || ev.Outcome != audit.Allowed {
			overall = ev.Outcome
		}
		if o.audit != nil {
			o.audit.Emit(ev, o.sc)
		}
	}
	if sp := st.span(); sp != nil {
		attrs := []attribute.KeyValue{attribute.String("mcpguard.decision", string(overall))}
		if rule != "" {
			attrs = append(attrs, attribute.String("mcpguard.policy.rule", rule))
		}
		if refused {
			attrs = append(attrs, attribute.String("mcpguard.denied_by", stage), attribute.Int("http.response.status_code", status))
		}
		if a := o.approval; a != nil {
			attrs = append(attrs, attribute.String("mcpguard.approval.id", a.id), attribute.String("mcpguard.approval.step", a.step))
		}
		sp.SetAttributes(attrs...)
	}
}

// endTrace ends the exchange's span when the stream is over.
func (st *stream) endTrace(err error) {
	if st.x == nil || st.x.obs == nil || st.x.obs.span == nil {
		return
	}
	sp := st.x.obs.span
	if sp.IsRecording() {
		if st.x.Status != 0 && !st.x.obs.audited {
			sp.SetAttributes(attribute.Int("http.response.status_code", st.x.Status))
		} else if st.x.Status != 0 {
			sp.SetAttributes(attribute.Int("mcpguard.upstream.status_code", st.x.Status))
		}
		if err != nil {
			sp.SetStatus(codes.Error, "ext_proc stream failed")
		}
	}
	sp.End()
}

// parentOf is the caller's trace context: params._meta.traceparent (and tracestate) of the
// first message that carries a valid one, as Envoy's MCP filter takes it (it then replaces
// the traceparent and tracestate headers), else the traceparent/tracestate headers. Invalid
// values are ignored (a new trace starts), as W3C Trace Context prescribes.
func parentOf(h Headers, body *mcp.Body) trace.SpanContext {
	var tc propagation.TraceContext
	if body != nil {
		for i := range body.Messages {
			if sc := metaParent(tc, body.Messages[i].Meta); sc.IsValid() {
				return sc
			}
		}
	}
	return trace.SpanContextFromContext(tc.Extract(context.Background(), headerCarrier(h)))
}

// metaParent reads traceparent and tracestate from a params._meta object; a member that is
// not a string is ignored.
func metaParent(tc propagation.TraceContext, meta json.RawMessage) trace.SpanContext {
	if len(meta) == 0 {
		return trace.SpanContext{}
	}
	// A map, not a struct: encoding/json matches struct fields case-insensitively and would
	// take "TraceParent". Duplicate names never get here: mcp.Parse refuses them.
	var m map[string]json.RawMessage
	if json.Unmarshal(meta, &m) != nil || len(m["traceparent"]) == 0 {
		return trace.SpanContext{}
	}
	var c metaCarrier
	if json.Unmarshal(m["traceparent"], &c.parent) != nil {
		return trace.SpanContext{}
	}
	if ts := m["tracestate"]; len(ts) > 0 {
		_ = json.Unmarshal(ts, &c.state) // a tracestate that is not a string is dropped
	}
	return trace.SpanContextFromContext(tc.Extract(context.Background(), c))
}

type metaCarrier struct{ parent, state string }

func (c metaCarrier) Get(k string) string {
	switch k {
	case "traceparent":
		return c.parent
	case "tracestate":
		return c.state
	}
	return ""
}
func (metaCarrier) Set(string, string) {}
func (metaCarrier) Keys() []string     { return []string{"traceparent", "tracestate"} }

type headerCarrier Headers

func (h headerCarrier) Get(k string) string { return h[k] }
func (headerCarrier) Set(string, string)    {}
func (h headerCarrier) Keys() []string {
	return []string{"traceparent", "tracestate"}
}
