package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/log/embedded"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpguard/mcpguard/audit"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    audit.Config
		want []string
	}{
		{name: "default", c: audit.DefaultConfig()},
		{name: "no output", c: audit.Config{QueueSize: 1}, want: []string{"output: required"}},
		{name: "nowhere", c: audit.Config{Enabled: true, Output: "none", QueueSize: 1}, want: []string{"output: none needs otel"}},
		{name: "queue", c: audit.Config{Output: "stdout"}, want: []string{"queue_size: must be within"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if len(tc.want) == 0 {
				require.NoError(t, err)
				return
			}
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the writer goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// recorder is a hand-written OpenTelemetry logger that keeps the records it is given.
type recorder struct {
	embedded.Logger
	mu   sync.Mutex
	recs []otellog.Record
	scs  []trace.SpanContext
}

func (r *recorder) Emit(ctx context.Context, rec otellog.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	r.scs = append(r.scs, trace.SpanContextFromContext(ctx))
}

func (r *recorder) Enabled(context.Context, otellog.EnabledParameters) bool { return true }

func TestLogWritesLinesAndRecords(t *testing.T) {
	var out syncBuffer
	rec := &recorder{}
	reg := prometheus.NewRegistry()
	c := audit.DefaultConfig()
	c.Enabled, c.OTel = true, true
	l, err := audit.Open(c, &out, rec, nil, reg)
	require.NoError(t, err)
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5}, TraceFlags: trace.FlagsSampled,
	})
	at := time.Date(2026, 12, 2, 11, 0, 0, 0, time.UTC)
	l.Emit(audit.Event{
		Time: at, Outcome: audit.Denied, Stage: "policy", Subject: "agent-1", Tool: "execute_sql",
		Rule: "sql-destructive", Status: 403, TraceID: sc.TraceID().String(), SpanID: sc.SpanID().String(),
	}, sc)
	l.Emit(audit.Event{Time: at, Outcome: audit.Masked, Stage: "masking", Masked: map[string]int{"EMAIL": 2, "CREDIT_CARD": 1}}, trace.SpanContext{})
	require.NoError(t, l.Close(t.Context()))

	lines := bytes.Split(bytes.TrimSpace([]byte(out.String())), []byte("\n"))
	require.Len(t, lines, 2)
	var ev map[string]any
	require.NoError(t, json.Unmarshal(lines[0], &ev))
	require.Equal(t, map[string]any{
		"time": "2026-12-02T11:00:00Z", "outcome": "denied", "stage": "policy", "subject": "agent-1", "tool": "execute_sql",
		"rule": "sql-destructive", "status": 403.0, "trace_id": sc.TraceID().String(), "span_id": sc.SpanID().String(),
	}, ev, "empty fields are left out")

	require.Len(t, rec.recs, 2)
	r := rec.recs[0]
	require.Equal(t, audit.EventName, r.EventName())
	require.Equal(t, otellog.SeverityInfo, r.Severity())
	require.Equal(t, at, r.Timestamp())
	require.Equal(t, "denied", r.Body().AsString())
	attrs := map[string]attribute.Value{}
	r.WalkAttributes(func(kv attribute.KeyValue) bool { attrs[string(kv.Key)] = kv.Value; return true })
	require.Equal(t, "sql-destructive", attrs["rule"].AsString())
	require.Equal(t, int64(403), attrs["status"].AsInt64())
	require.Equal(t, sc.TraceID(), rec.scs[0].TraceID(), "the record carries the exchange's trace context")
	require.False(t, rec.scs[1].IsValid())
	m := map[string]int64{}
	rec.recs[1].WalkAttributes(func(kv attribute.KeyValue) bool {
		if kv.Key == "masked" {
			for _, e := range kv.Value.AsMap() {
				m[string(e.Key)] = e.Value.AsInt64()
			}
		}
		return true
	})
	require.Equal(t, map[string]int64{"EMAIL": 2, "CREDIT_CARD": 1}, m)
	n, err := testutil.GatherAndCount(reg, "mcpguard_audit_events_total")
	require.NoError(t, err)
	require.Equal(t, 6, n, "one series per outcome, from the start")
	require.InDelta(t, 1, outcomeCount(t, reg, "denied"), 0)
	require.InDelta(t, 1, outcomeCount(t, reg, "masked"), 0)
	require.InDelta(t, 0, outcomeCount(t, reg, "held"), 0)
}

func outcomeCount(t *testing.T, reg *prometheus.Registry, outcome string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			if f.GetName() == "mcpguard_audit_events_total" && m.GetLabel()[0].GetValue() == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no counter for %s", outcome)
	return 0
}

// blocked is a writer that blocks until released, as a stuck pipe would.
type blocked struct{ release chan struct{} }

func (b blocked) Write(p []byte) (int, error) {
	<-b.release
	return len(p), nil
}

// TestLogDropsWhenFull: a stuck output never blocks Emit; what does not fit is counted.
func TestLogDropsWhenFull(t *testing.T) {
	w := blocked{release: make(chan struct{})}
	reg := prometheus.NewRegistry()
	c := audit.Config{Enabled: true, Output: "stdout", QueueSize: 2}
	l, err := audit.Open(c, w, nil, nil, reg)
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 100 {
			l.Emit(audit.Event{Time: time.Now(), Outcome: audit.Allowed, Stage: "policy", Method: string(make([]byte, 70<<10/100))}, trace.SpanContext{})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Emit blocked on a stuck output")
	}
	fams, err := reg.Gather()
	require.NoError(t, err)
	var dropped float64
	for _, f := range fams {
		if f.GetName() == "mcpguard_audit_dropped_total" {
			dropped = f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	require.Greater(t, dropped, 0.0)
	close(w.release)
	require.NoError(t, l.Close(t.Context()))
	l.Emit(audit.Event{Outcome: audit.Allowed}, trace.SpanContext{}) // after Close: dropped, no panic
}

func TestLogFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	c := audit.Config{Enabled: true, Output: path, QueueSize: 8}
	for range 2 { // appends across restarts
		l, err := audit.Open(c, nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		l.Emit(audit.Event{Time: time.Now(), Outcome: audit.Held, Stage: "approvals"}, trace.SpanContext{})
		require.NoError(t, l.Close(t.Context()))
	}
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, 2, bytes.Count(raw, []byte(`"outcome":"held"`)))
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
}
