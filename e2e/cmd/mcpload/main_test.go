package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/e2e/mcpserver"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	for _, tc := range []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"median odd", ms(3, 1, 2), 50, 2 * time.Millisecond},
		{"p99 picks the tail", ms(1, 1, 1, 1, 1, 1, 1, 1, 1, 100), 99, 100 * time.Millisecond},
		{"p50 of ten", ms(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 50, 5 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, percentile(tc.in, tc.p))
		})
	}
}

func TestValidate(t *testing.T) {
	ok := options{
		gateway: "http://127.0.0.1:1/mcp", direct: "http://localhost:2/mcp", token: "t", concurrency: 1, count: 1,
		duration: time.Second, mode: "stateful",
	}
	for _, tc := range []struct {
		name string
		edit func(*options)
		want string
	}{
		{"ok", func(*options) {}, ""},
		{"remote host", func(o *options) { o.gateway = "http://example.com/mcp" }, "-gateway: \"http://example.com/mcp\": only loopback hosts are allowed"},
		{"https", func(o *options) { o.direct = "https://127.0.0.1/mcp" }, "only http"},
		{"no token", func(o *options) { o.token = "" }, "-token: required"},
		{"too many workers", func(o *options) { o.concurrency = maxConcurrency + 1 }, "-c: must be within"},
		{"zero count", func(o *options) { o.count = 0 }, "-n: must be within"},
		{"long", func(o *options) { o.duration = time.Hour }, "-duration: must be within"},
		{"huge result", func(o *options) { o.bigMB = 1000 }, "-big-mb: must be within"},
		{"sse mode", func(o *options) { o.mode = "sse" }, "-mode:"},
		{"self needs no urls", func(o *options) { o.self, o.gateway, o.direct, o.token = true, "", "", "" }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.edit(&o)
			err := o.validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestMeasure runs every phase against two upstreams (standing in for both paths, so the
// test needs no mcpguard) and checks the report accounts for every call.
func TestMeasure(t *testing.T) {
	start := func() *mcpserver.Server {
		s, err := mcpserver.Start(mcpserver.Options{Mode: mcpserver.Stateful})
		require.NoError(t, err)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 5*time.Second)
			defer cancel()
			require.NoError(t, s.Close(ctx))
		})
		return s
	}
	a, b := start(), start()
	o := options{
		gateway: a.URL(), direct: b.URL(), token: "unused", version: "2025-11-25", mode: "stateful",
		concurrency: 3, count: 30, duration: time.Minute, ttfeSamples: 3, bigMB: 1, bigSamples: 1,
	}
	require.NoError(t, o.validate())
	r, err := measure(t.Context(), o)
	require.NoError(t, err)
	for _, p := range []pathResult{r.gateway, r.direct} {
		require.Equal(t, 30, p.calls)
		require.Zero(t, p.errors)
		require.Positive(t, p.p50)
		require.GreaterOrEqual(t, p.p99, p.p50)
		require.Positive(t, p.ttfe50)
		require.Positive(t, p.bigMBps)
	}
	var out bytes.Buffer
	r.print(&out, o)
	require.Contains(t, out.String(), "added latency: p50")
	require.Contains(t, out.String(), "large result: 1 MiB")
}
