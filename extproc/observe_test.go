package extproc_test

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/extproc"
	"github.com/mcpguard/mcpguard/masking"
)

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

func (a *auditLog) events() []audit.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]audit.Event(nil), a.evs...)
}

// startInstrumented is start with tracing (tp) and audit events (a) on.
func startInstrumented(t testing.TB, tp trace.TracerProvider, a extproc.Auditor, stages ...extproc.Stage) *harness {
	t.Helper()
	cfg := extproc.DefaultConfig()
	reg := prometheus.NewRegistry()
	srv, err := extproc.NewServer(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), reg, stages...)
	require.NoError(t, err)
	if a != nil {
		srv.Instrument(tp, a)
	} else {
		srv.Instrument(tp, nil) // an untyped nil: a nil *auditLog would be a non-nil Auditor
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(cfg.RecvMsgSize()))
	srv.Register(gs)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gs.Serve(lis)
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = conn.Close()
		gs.Stop()
		<-served
	})
	return &harness{client: extprocv3.NewExternalProcessorClient(conn), reg: reg, gs: gs}
}

const (
	headerParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	metaParent   = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
)

// exchange runs one tools/call with a JSON result through a fresh stream and returns the
// request-phase answer.
func exchange(t *testing.T, h *harness, body string, kv ...string) *extprocv3.ProcessingResponse {
	t.Helper()
	e := h.open(t, t.Context())
	e.post(body, append([]string{"mcp-protocol-version", "2025-06-18", "mcp-session-id", "s1"}, kv...)...)
	r := e.recv()
	if r.GetImmediateResponse() != nil {
		return r
	}
	e.responseHeaders(false, ":status", "200", "content-type", "application/json", "content-length", "60")
	e.recv()
	e.responseBody([]byte(result(1, "card 4111 1111 1111 1111")), true)
	e.recv()
	_, err := e.s.Recv()
	require.ErrorIs(t, err, io.EOF)
	return r
}

func spanNamed(t *testing.T, spans []sdktrace.ReadOnlySpan, name string, direction ...string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name && (len(direction) == 0 || attrs(s)["mcpguard.direction"] == direction[0]) {
			require.Nil(t, found, "two spans named %q", name)
			found = s
		}
	}
	require.NotNil(t, found, "no span named %q", name)
	return found
}

func attrs(s sdktrace.ReadOnlySpan) map[string]string {
	out := map[string]string{}
	for _, kv := range s.Attributes() {
		out[string(kv.Key)] = kv.Value.String()
	}
	return out
}

func TestTraceExchange(t *testing.T) {
	m, err := masking.New(masking.DefaultConfig())
	require.NoError(t, err)
	ms, err := extproc.NewMasking(m, prometheus.NewRegistry())
	require.NoError(t, err)
	withMeta := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"execute_sql","arguments":{"query":"select 1"},` +
		`"_meta":{"traceparent":"` + metaParent + `","tracestate":"vendor=meta"}}}`
	badMeta := strings.Replace(withMeta, metaParent, "00-00000000000000000000000000000000-00f067aa0ba902b7-01", 1)
	for _, tc := range []struct {
		name, body  string
		headers     []string
		traceID     string // "" means a new trace
		parentSpan  string
		decision    string
		denyingRule string
	}{
		{
			name: "traceparent header is the parent", body: toolsCall(1, "execute_sql"),
			headers: []string{"traceparent", headerParent, "tracestate", "vendor=header"},
			traceID: "0af7651916cd43dd8448eb211c80319c", parentSpan: "b7ad6b7169203331", decision: "allowed",
		},
		{
			name: "params._meta.traceparent wins over the header", body: withMeta,
			headers: []string{"traceparent", headerParent},
			traceID: "4bf92f3577b34da6a3ce929d0e0e4736", parentSpan: "00f067aa0ba902b7", decision: "allowed",
		},
		{
			name: "an invalid _meta traceparent falls back to the header", body: badMeta,
			headers: []string{"traceparent", headerParent},
			traceID: "0af7651916cd43dd8448eb211c80319c", parentSpan: "b7ad6b7169203331", decision: "allowed",
		},
		{name: "no trace context starts a new trace", body: toolsCall(1, "execute_sql"), decision: "allowed"},
		{
			name: "a policy denial is the decision", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"execute_sql","arguments":{"query":"DROP TABLE users"}}}`,
			headers: []string{"traceparent", headerParent},
			traceID: "0af7651916cd43dd8448eb211c80319c", parentSpan: "b7ad6b7169203331", decision: "denied", denyingRule: "sql-destructive",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			h := startInstrumented(t, tp, nil, policyStage(t, nil), ms)
			exchange(t, h, tc.body, tc.headers...)
			// The exchange span ends when the server's stream handler returns, which may be
			// after the client has read its last answer (an immediate response ends the stream).
			var spans []sdktrace.ReadOnlySpan
			require.Eventually(t, func() bool {
				spans = rec.Ended()
				for _, s := range spans {
					if s.Name() == "tools/call execute_sql" {
						return true
					}
				}
				return false
			}, 5*time.Second, time.Millisecond)
			x := spanNamed(t, spans, "tools/call execute_sql")
			require.Equal(t, trace.SpanKindServer, x.SpanKind())
			if tc.traceID != "" {
				require.Equal(t, tc.traceID, x.SpanContext().TraceID().String())
				require.Equal(t, tc.parentSpan, x.Parent().SpanID().String())
				require.True(t, x.Parent().IsRemote())
			} else {
				require.False(t, x.Parent().IsValid())
			}
			if tc.parentSpan == "00f067aa0ba902b7" {
				require.Equal(t, "vendor=meta", x.SpanContext().TraceState().String(), "tracestate comes with the traceparent it belongs to")
			}
			a := attrs(x)
			require.Equal(t, "svc-reports", a["enduser.id"])
			require.Equal(t, "0oa1", a["mcpguard.client_id"])
			require.Equal(t, "execute_sql", a["gen_ai.tool.name"])
			require.Equal(t, "tools/call", a["mcp.method.name"])
			require.Equal(t, tc.decision, a["mcpguard.decision"])
			if tc.denyingRule != "" {
				require.Equal(t, tc.denyingRule, a["mcpguard.policy.rule"])
				require.Equal(t, "policy", a["mcpguard.denied_by"])
			} else {
				require.Equal(t, "default", a["mcpguard.policy.rule"])
			}
			// Every stage that ran is a child of the exchange's span.
			pol := spanNamed(t, spans, "mcpguard policy", "request")
			require.Equal(t, x.SpanContext().SpanID(), pol.Parent().SpanID())
			require.Equal(t, x.SpanContext().TraceID(), pol.SpanContext().TraceID())
			if tc.decision == "allowed" {
				mask := spanNamed(t, spans, "mcpguard masking")
				require.Equal(t, x.SpanContext().SpanID(), mask.Parent().SpanID())
				require.Equal(t, "replace", attrs(mask)["mcpguard.stage.action"])
			}
			// No argument value, result or token reaches a span.
			for _, s := range spans {
				for _, kv := range s.Attributes() {
					v := kv.Value.String()
					require.NotContains(t, v, "select 1", "span %s attribute %s", s.Name(), kv.Key)
					require.NotContains(t, v, "DROP", "span %s attribute %s", s.Name(), kv.Key)
					require.NotContains(t, v, "4111", "span %s attribute %s", s.Name(), kv.Key)
				}
			}
		})
	}
}

// TestTraceUnsampled: a caller that decided not to sample gets no span recorded, and the
// stages start no child spans.
func TestTraceUnsampled(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
	h := startInstrumented(t, tp, nil, policyStage(t, nil))
	exchange(t, h, toolsCall(1, "execute_sql"), "traceparent", strings.TrimSuffix(headerParent, "01")+"00")
	require.Empty(t, rec.Ended())
}

func TestAuditEvents(t *testing.T) {
	m, err := masking.New(masking.DefaultConfig())
	require.NoError(t, err)
	ms, err := extproc.NewMasking(m, prometheus.NewRegistry())
	require.NoError(t, err)
	al := &auditLog{}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	h := startInstrumented(t, tp, al, policyStage(t, nil), ms)

	exchange(t, h, toolsCall(1, "execute_sql"), "traceparent", headerParent)
	r := exchange(t, h, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"execute_sql","arguments":{"query":"DROP TABLE users"}}}`)
	require.NotNil(t, r.GetImmediateResponse())

	evs := al.events()
	require.Len(t, evs, 3, "allowed, masked (the result), denied: %+v", evs)
	allowed, masked, denied := evs[0], evs[1], evs[2]

	require.Equal(t, audit.Allowed, allowed.Outcome)
	require.Equal(t, "policy", allowed.Stage)
	require.Equal(t, "tools/call", allowed.Method)
	require.Equal(t, "execute_sql", allowed.Tool)
	require.Equal(t, "default", allowed.Rule)
	require.Equal(t, "svc-reports", allowed.Subject)
	require.Equal(t, "0oa1", allowed.ClientID)
	require.Equal(t, "req-1", allowed.RequestID)
	require.Equal(t, "s1", allowed.SessionID)
	require.Equal(t, "0af7651916cd43dd8448eb211c80319c", allowed.TraceID)
	require.NotEmpty(t, allowed.SpanID)

	require.Equal(t, audit.Masked, masked.Outcome)
	require.Equal(t, "masking", masked.Stage)
	require.Equal(t, "response", masked.Direction)
	require.Equal(t, map[string]int{"CREDIT_CARD": 1}, masked.Masked)
	require.Equal(t, allowed.TraceID, masked.TraceID)

	require.Equal(t, audit.Denied, denied.Outcome)
	require.Equal(t, "policy", denied.Stage)
	require.Equal(t, "sql-destructive", denied.Rule)
	require.Equal(t, "deny", denied.Action)
	require.Equal(t, 200, denied.Status, "the rule replies with a tool error")
	require.NotEqual(t, allowed.TraceID, denied.TraceID, "a call without trace context starts its own trace")

	for _, ev := range evs {
		require.NoError(t, ev.Outcome.Validate())
		require.NotContains(t, ev.Reason, "users", "no argument value in an event")
	}
}
