package extproc_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/extproc"
	"github.com/mcpguard/mcpguard/policy"
)

func benchPolicyStage(b *testing.B, ap extproc.Approver) *extproc.Policy {
	b.Helper()
	set, err := policy.Compile([]byte(stagePolicy))
	require.NoError(b, err)
	p, err := extproc.NewPolicy(fixedSource{set}, policy.NewMemory(time.Hour), ap, prometheus.NewRegistry())
	require.NoError(b, err)
	return p
}

// BenchmarkHeldCalls holds b.N calls at once on one ext_proc server (real gRPC over
// loopback, file store) and reports the memory and goroutines each held call costs. Client
// streams live in the same process, so the figures are an upper bound for the server.
// Run with a fixed count, e.g. -benchtime=5000x.
func BenchmarkHeldCalls(b *testing.B) {
	svc := approvalService(b, 10*time.Minute)
	ap, err := extproc.NewApprovals(svc)
	require.NoError(b, err)
	h := start(b, extproc.DefaultConfig(), benchPolicyStage(b, ap))
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		e := h.open(b, ctx)
		e.post(deploy(i, "prod"), "mcp-protocol-version", "2025-06-18")
		r := e.recv()
		require.NotNil(b, r.GetOverrideMessageTimeout(), "call %d not held", i)
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/float64(i), "heap-B/held")
	b.ReportMetric(float64(after.StackInuse-before.StackInuse)/float64(i), "stack-B/held")
	b.ReportMetric(float64(runtime.NumGoroutine()-g0)/float64(i), "goroutines/held")
}
