package telemetry_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/grpc"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/internal/telemetry"
)

// logsReceiver is a minimal OTLP/gRPC logs receiver standing in for an OpenTelemetry
// Collector (Jaeger, the trace backend of the e2e tests, stores no logs). It keeps what the
// real exporter sends.
type logsReceiver struct {
	collogs.UnimplementedLogsServiceServer
	mu   sync.Mutex
	recs []*logspb.LogRecord
}

func (r *logsReceiver) Export(_ context.Context, req *collogs.ExportLogsServiceRequest) (*collogs.ExportLogsServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rl := range req.GetResourceLogs() {
		for _, sl := range rl.GetScopeLogs() {
			r.recs = append(r.recs, sl.GetLogRecords()...)
		}
	}
	return &collogs.ExportLogsServiceResponse{}, nil
}

// TestAuditRecordsOverOTLP sends audit events through the OpenTelemetry log SDK and the
// OTLP/gRPC exporter to a receiver on 127.0.0.1 and checks what arrives.
func TestAuditRecordsOverOTLP(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	rcv := &logsReceiver{}
	gs := grpc.NewServer()
	collogs.RegisterLogsServiceServer(gs, rcv)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)

	tc := telemetry.DefaultTracing()
	tc.Endpoint = "http://" + lis.Addr().String()
	o, err := telemetry.NewOTel(t.Context(), tc, "test", true)
	require.NoError(t, err)
	require.Nil(t, o.Tracer, "logs alone do not turn tracing on")
	require.NotNil(t, o.Logs)
	ac := audit.DefaultConfig()
	ac.Enabled, ac.Output, ac.OTel = true, "none", true
	l, err := audit.Open(ac, nil, o.Logs.Logger("audit-test"), nil, prometheus.NewRegistry())
	require.NoError(t, err)
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{7}, SpanID: trace.SpanID{8}, TraceFlags: trace.FlagsSampled})
	l.Emit(audit.Event{Time: time.Now(), Outcome: audit.Deferred, Stage: "approvals", Subject: "agent-1", Tool: "deploy", ApprovalID: "A1"}, sc)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	require.NoError(t, l.Close(ctx))
	require.NoError(t, o.Shutdown(ctx), "shutdown flushes the batch")

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	require.Len(t, rcv.recs, 1)
	r := rcv.recs[0]
	require.Equal(t, audit.EventName, r.GetEventName())
	require.Equal(t, "deferred", r.GetBody().GetStringValue())
	require.Equal(t, logspb.SeverityNumber_SEVERITY_NUMBER_INFO, r.GetSeverityNumber())
	require.Equal(t, sc.TraceID().String(), trace.TraceID(r.GetTraceId()).String())
	require.Equal(t, sc.SpanID().String(), trace.SpanID(r.GetSpanId()).String())
	attrs := map[string]string{}
	for _, kv := range r.GetAttributes() {
		attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
	}
	require.Equal(t, map[string]string{
		"outcome": "deferred", "stage": "approvals", "subject": "agent-1", "tool": "deploy", "approval_id": "A1",
	}, attrs)
}
