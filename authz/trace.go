package authz

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpguard/mcpguard/audit"
)

// Auditor receives the audit event of every refused check; [audit.Log] implements it. An
// allowed check emits none: the ext_proc exchange that follows emits the call's own event.
type Auditor interface {
	Emit(ev audit.Event, sc trace.SpanContext)
}

var _ Auditor = (*audit.Log)(nil)

// instrumentation is the tracer name of the spans this package starts.
const instrumentation = "github.com/mcpguard/mcpguard/authz"

// Instrument turns on a span per check (tp non-nil) and audit events of refused checks (a
// non-nil). Call it before serving.
func (s *Server) Instrument(tp trace.TracerProvider, a Auditor) {
	if tp != nil {
		s.tracer = tp.Tracer(instrumentation)
	}
	s.audit = a
}

// startSpan starts the check's span as a child of the W3C trace context in the request
// headers Envoy sent (traceparent, tracestate); an invalid or absent one starts a new trace.
func (s *Server) startSpan(ctx context.Context, h headers, rid string, start time.Time) (context.Context, trace.Span) {
	if p := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), headerCarrier{h})); p.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, p)
	}
	return s.tracer.Start(ctx, "ext_authz check", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start),
		trace.WithAttributes(attribute.String("mcpguard.request_id", rid)))
}

// observe puts the outcome on the span and emits the audit event of a refusal.
func (s *Server) observe(ctx context.Context, span trace.Span, o outcome, rid, result, reason string) {
	if span != nil && span.IsRecording() {
		span.SetAttributes(attribute.String("mcpguard.decision", result))
		if o.subject != "" {
			span.SetAttributes(attribute.String("enduser.id", o.subject), attribute.String("mcpguard.client_id", o.clientID))
		}
		if reason != "" {
			span.SetAttributes(attribute.String("mcpguard.reason", reason))
		}
		if result == resultError {
			span.SetStatus(codes.Error, "check failed")
		}
	}
	if s.audit == nil || o.d == nil {
		return
	}
	sc := trace.SpanContextFromContext(ctx)
	ev := audit.Event{
		Time: time.Now().UTC(), Outcome: audit.Denied, Stage: "authz", RequestID: rid,
		Subject: o.subject, ClientID: o.clientID, Issuer: o.issuer, Reason: reason,
		Status: int(o.resp.GetDeniedResponse().GetStatus().GetCode()),
	}
	if sc.IsValid() {
		ev.TraceID, ev.SpanID = sc.TraceID().String(), sc.SpanID().String()
	}
	s.audit.Emit(ev, sc)
}

// headerCarrier reads the trace headers from Envoy's CheckRequest.
type headerCarrier struct{ h headers }

func (c headerCarrier) Get(k string) string {
	v, n := c.h.get(k)
	if n > 1 {
		return "" // repeated: ambiguous, start a new trace
	}
	return v
}
func (headerCarrier) Set(string, string) {}
func (headerCarrier) Keys() []string     { return []string{"traceparent", "tracestate"} }
