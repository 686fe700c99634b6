package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/e2e/emulator"
	"github.com/mcpguard/mcpguard/e2e/emulator/emulatortest"
	"github.com/mcpguard/mcpguard/e2e/harness"
	"github.com/mcpguard/mcpguard/e2e/mcpserver"
)

func TestParseTiming(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name string
		in   string
		want procTiming
		err  string
	}{
		{name: "full", in: "authz=0.120ms;extproc=0.300ms;n=4;upstream=1.5ms", want: procTiming{authz: 120 * time.Microsecond, extproc: 300 * time.Microsecond, n: 4, upstream: 1500 * time.Microsecond, hasUpstream: true}},
		{name: "local reply has no upstream", in: "authz=2ms;extproc=0.000ms;n=0", want: procTiming{authz: 2 * ms}},
		{name: "unknown field", in: "authz=1ms;extproc=1ms;n=1;x=1", err: "unknown field"},
		{name: "twice", in: "authz=1ms;authz=1ms;extproc=1ms;n=1", err: "authz twice"},
		{name: "missing n", in: "authz=1ms;extproc=1ms", err: "n missing"},
		{name: "no unit", in: "authz=1;extproc=1ms;n=1", err: "not in ms"},
		{name: "negative", in: "authz=-1ms;extproc=1ms;n=1", err: "out of range"},
		{name: "nan", in: "authz=NaNms;extproc=1ms;n=1", err: "out of range"},
		{name: "inf", in: "authz=+Infms;extproc=1ms;n=1", err: "out of range"},
		{name: "huge n", in: "authz=1ms;extproc=1ms;n=99999999", err: "n:"},
		{name: "empty", in: "", err: "no value"},
		{name: "too long", in: "authz=1ms;extproc=1ms;n=1;" + strings.Repeat("x", maxTimingLen), err: "too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTiming(tc.in)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func FuzzParseTiming(f *testing.F) {
	for _, s := range []string{"authz=0.120ms;extproc=0.300ms;n=4;upstream=1.002ms", "authz=1e3ms;extproc=0ms;n=0", "n=1;n=2", "=;=", "authz=0x1p3ms;extproc=1ms;n=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseTiming(s)
		if err != nil {
			return
		}
		for _, d := range []time.Duration{p.authz, p.extproc, p.upstream} {
			if d < 0 || d > maxTimingMS*time.Millisecond {
				t.Fatalf("%q: duration %v out of range", s, d)
			}
		}
		if p.guard() < p.authz || p.guard() < p.extproc {
			t.Fatalf("%q: guard time overflowed", s)
		}
	})
}

// TestTimingTransport checks the value is taken at the end of the body, from the trailer when the
// server sent one, and only for requests that ask for it.
func TestTimingTransport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(emulator.TimingHeader, "authz=1ms;extproc=2ms;n=3;upstream=4ms")
		if r.URL.Path == "/trailer" {
			w.Header().Set("Trailer", emulator.TimingHeader)
		}
		_, _ = io.WriteString(w, "body")
		http.NewResponseController(w).Flush()
		if r.URL.Path == "/trailer" {
			w.Header().Set(emulator.TimingHeader, "authz=1ms;extproc=5ms;n=4;upstream=4ms")
		}
	}))
	t.Cleanup(srv.Close)
	hc := &http.Client{Transport: timingTransport{next: http.DefaultTransport}}
	get := func(path string, c *callTiming) {
		ctx := t.Context()
		if c != nil {
			ctx = withCallTiming(ctx, c)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		require.NoError(t, err)
		resp, err := hc.Do(req)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, "body", string(b))
		require.NoError(t, resp.Body.Close())
	}

	c := newCallTiming()
	get("/header", c)
	r := c.wait(t.Context(), 5*time.Second)
	require.True(t, r.ok)
	require.Equal(t, 2*time.Millisecond, r.t.extproc)
	require.Equal(t, 3*time.Millisecond, r.t.guard())

	c = newCallTiming()
	get("/trailer", c)
	r = c.wait(t.Context(), 5*time.Second)
	require.True(t, r.ok)
	require.Equal(t, 5*time.Millisecond, r.t.extproc, "trailer wins")
	require.Equal(t, 4, r.t.n)

	get("/header", nil) // no callTiming in the context: passes through
}

// TestMeasureSplitsGatewayTime runs the load through the emulator (envoy/envoy.yaml) with scripted
// ext_authz/ext_proc servers that take a known minimum time per message, and checks the report
// attributes at least that much to mcpguard.
func TestMeasureSplitsGatewayTime(t *testing.T) {
	const perMsg = 2 * time.Millisecond
	proc := &emulatortest.Processor{Handle: func(ctx context.Context, _ *emulatortest.Stream, r *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
		select {
		case <-time.After(perMsg):
		case <-ctx.Done():
		}
		return []*extprocv3.ProcessingResponse{emulatortest.Continue(r)}, nil
	}}
	grpcAddr := emulatortest.Serve(t, proc, &emulatortest.Authorizer{})
	up, err := mcpserver.Start(mcpserver.Options{Mode: mcpserver.StatefulJSON})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 5*time.Second)
		defer cancel()
		require.NoError(t, up.Close(ctx))
	})
	root, err := harness.ModuleRoot(t.Context())
	require.NoError(t, err)
	gw, err := harness.StartGateway(t.Context(), harness.GatewayOptions{
		Root: root, GRPC: grpcAddr, Admin: "127.0.0.1:1", Upstream: up.Addr(), TimingHeader: true,
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 5*time.Second)
		defer cancel()
		require.NoError(t, gw.Close(ctx))
	})
	o := options{
		gateway: gw.URL(), direct: up.URL(), token: "unused", version: "2025-11-25", mode: "stateful-json",
		concurrency: 2, count: 20, rate: 200, duration: time.Minute,
	}
	require.NoError(t, o.validate())
	r, err := measure(t.Context(), o)
	require.NoError(t, err)
	require.Equal(t, 20, r.gateway.calls)
	sp := r.gateway.split
	require.Equal(t, 20, sp.timed, "every gateway call carried its timing")
	require.Zero(t, sp.bad)
	require.Equal(t, 4, sp.msgs, "request and response headers and bodies")
	require.GreaterOrEqual(t, sp.proc[0], 4*perMsg)
	require.GreaterOrEqual(t, sp.guard[0], sp.proc[0])
	require.True(t, sp.hasUp)
	require.Positive(t, sp.up[0])
	require.LessOrEqual(t, sp.guard[0], r.gateway.p99, "mcpguard's part is inside the total")
	require.Zero(t, r.direct.split.timed, "the upstream sends no timing")

	var out bytes.Buffer
	r.print(&out, o)
	require.Contains(t, out.String(), "mcpguard")
	require.Contains(t, out.String(), "20 of 20 calls timed")
	require.Contains(t, out.String(), "started at 200/s")
}
