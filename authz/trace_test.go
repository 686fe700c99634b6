package authz

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpguard/mcpguard/audit"
)

// spanLogger records the trace id of the context each line is logged with, as the service's
// handler (internal/telemetry.WithTrace) does.
type spanLogger struct{ slog.Handler }

func (h spanLogger) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

// auditLog is a hand-written Auditor that keeps the events.
type auditLog struct {
	mu  sync.Mutex
	evs []audit.Event
}

func (a *auditLog) Emit(ev audit.Event, _ trace.SpanContext) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.evs = append(a.evs, ev)
}

func TestCheckTracedAndAudited(t *testing.T) {
	e := newEnv(t, nil)
	rec := tracetest.NewSpanRecorder()
	logs := &syncBuffer{}
	log := slog.New(spanLogger{slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})})
	s := NewServer(e.v, e.cfg, log, prometheus.NewRegistry())
	al := &auditLog{}
	s.Instrument(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)), al)
	client := serve(t, s)

	const parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	tok := e.iss.Mint(e.iss.Claims(testAudience, testScope))
	_, err := client.Check(t.Context(), request("Bearer "+tok, map[string]string{"traceparent": parent}, nil))
	require.NoError(t, err)
	_, err = client.Check(t.Context(), request("", map[string]string{"traceparent": parent}, nil))
	require.NoError(t, err)

	spans := rec.Ended()
	require.Len(t, spans, 2)
	for i, want := range []string{"allowed", "denied_unauthenticated"} {
		sp := spans[i]
		require.Equal(t, "ext_authz check", sp.Name())
		require.Equal(t, trace.SpanKindServer, sp.SpanKind())
		require.Equal(t, "0af7651916cd43dd8448eb211c80319c", sp.SpanContext().TraceID().String())
		require.Equal(t, "b7ad6b7169203331", sp.Parent().SpanID().String())
		a := map[string]string{}
		for _, kv := range sp.Attributes() {
			a[string(kv.Key)] = kv.Value.String()
			require.NotContains(t, kv.Value.String(), tok[:20], "no token in a span")
		}
		require.Equal(t, want, a["mcpguard.decision"])
		if i == 0 {
			require.Equal(t, e.iss.Claims(testAudience, testScope)["sub"], a["enduser.id"])
		} else {
			require.Equal(t, "missing_token", a["mcpguard.reason"])
		}
	}

	require.Len(t, al.evs, 1, "only the refusal is an audit event")
	ev := al.evs[0]
	require.Equal(t, audit.Denied, ev.Outcome)
	require.Equal(t, "authz", ev.Stage)
	require.Equal(t, 401, ev.Status)
	require.Equal(t, "req-1", ev.RequestID)
	require.Equal(t, spans[1].SpanContext().SpanID().String(), ev.SpanID)

	// The decision's log line carries the trace.
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "authz decision") {
			require.Contains(t, line, `"trace_id":"0af7651916cd43dd8448eb211c80319c"`)
		}
	}
	require.Contains(t, logs.String(), "authz decision")
}
