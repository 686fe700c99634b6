package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpguard/mcpguard/internal/telemetry"
)

func TestLoggerAddsTraceIDs(t *testing.T) {
	var buf bytes.Buffer
	log := telemetry.NewLogger(&buf, "info", "json").With("request_id", "r1")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0xab}, SpanID: trace.SpanID{0xcd}})
	log.InfoContext(trace.ContextWithSpanContext(context.Background(), sc), "with span")
	log.InfoContext(context.Background(), "without span")
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	require.Len(t, lines, 2)
	var a, b map[string]any
	require.NoError(t, json.Unmarshal(lines[0], &a))
	require.NoError(t, json.Unmarshal(lines[1], &b))
	require.Equal(t, "ab000000000000000000000000000000", a["trace_id"])
	require.Equal(t, "cd00000000000000", a["span_id"])
	require.Equal(t, "r1", a["request_id"], "attributes added with With are kept")
	require.NotContains(t, b, "trace_id")
}

func TestTracingValidate(t *testing.T) {
	bad, ok := 1.5, 0.25
	c := telemetry.DefaultTracing()
	require.NoError(t, c.Validate())
	c.Sampler.Ratio = &ok
	c.Endpoint = "http://127.0.0.1:4317"
	require.NoError(t, c.Validate())
	c.Sampler.Ratio, c.Endpoint, c.ServiceName = &bad, "127.0.0.1:4317", ""
	err := c.Validate()
	require.ErrorContains(t, err, "endpoint: \"127.0.0.1:4317\" is not an http:// or https:// URL")
	require.ErrorContains(t, err, "service_name: required")
	require.ErrorContains(t, err, "sampler.ratio: must be within 0..1")
}

func TestOTelOff(t *testing.T) {
	o, err := telemetry.NewOTel(t.Context(), telemetry.DefaultTracing(), "test", false)
	require.NoError(t, err)
	require.Nil(t, o.Tracer, "tracing off: no provider, so no span work")
	require.NoError(t, o.Shutdown(t.Context()))

	t.Setenv("OTEL_SDK_DISABLED", "true")
	on := telemetry.DefaultTracing()
	on.Enabled = true
	o, err = telemetry.NewOTel(t.Context(), on, "test", false)
	require.NoError(t, err)
	require.Nil(t, o.Tracer, "OTEL_SDK_DISABLED=true wins over the file")
}
