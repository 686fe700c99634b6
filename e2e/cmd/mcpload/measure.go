package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpguard/mcpguard/e2e/harness"
	"github.com/mcpguard/mcpguard/e2e/mcpserver"
)

// pathResult is what one path (gateway or direct) measured.
type pathResult struct {
	calls    int
	errors   int
	elapsed  time.Duration
	p50, p99 time.Duration
	split    split         // where the time of each call went, from x-emulator-timing
	ttfe50   time.Duration // time to first progress event
	ttfe99   time.Duration
	bigMBps  float64
	bigErr   error // the large result did not arrive intact (reported, not fatal)
}

type report struct{ gateway, direct pathResult }

func measure(ctx context.Context, o options) (*report, error) {
	var r report
	var err error
	// Direct first: the upstream warms up (JIT-free Go, but connection pools and the GC
	// heap size) before the gateway path is measured, never the other way round.
	if r.direct, err = measurePath(ctx, o, o.direct, ""); err != nil {
		return nil, fmt.Errorf("direct path: %w", err)
	}
	if r.gateway, err = measurePath(ctx, o, o.gateway, o.token); err != nil {
		return nil, fmt.Errorf("gateway path: %w", err)
	}
	return &r, nil
}

func measurePath(ctx context.Context, o options, endpoint, token string) (pathResult, error) {
	var res pathResult
	samples, errs, elapsed, err := echoLoad(ctx, o, endpoint, token)
	if err != nil {
		return res, err
	}
	lat := make([]time.Duration, len(samples))
	for i, s := range samples {
		lat[i] = s.total
	}
	res.calls, res.errors, res.elapsed = len(lat), errs, elapsed
	res.p50, res.p99 = percentile(lat, 50), percentile(lat, 99)
	res.split = splitOf(samples)
	if o.ttfeSamples > 0 {
		ttfe, err := firstEvent(ctx, o, endpoint, token)
		if err != nil {
			return res, err
		}
		res.ttfe50, res.ttfe99 = percentile(ttfe, 50), percentile(ttfe, 99)
	}
	if o.bigMB > 0 && o.bigSamples > 0 {
		res.bigMBps, res.bigErr = bigThroughput(ctx, o, endpoint, token)
	}
	return res, nil
}

// sample is one successful echo call: its latency as the client saw it and, through a gateway that
// reports it, the emulator's timing of the HTTP exchange.
type sample struct {
	total  time.Duration
	timing timingResult
}

// echoLoad runs o.count echo calls over o.concurrency sessions (or until o.duration) and
// returns the successful ones and the number of failures. With o.rate the calls start on a
// fixed schedule (a session that is still busy delays the next start: the achieved rate is
// what the report shows); without it every session calls back to back.
func echoLoad(ctx context.Context, o options, endpoint, token string) ([]sample, int, time.Duration, error) {
	sessions := make([]*mcp.ClientSession, o.concurrency)
	defer func() {
		for _, s := range sessions {
			if s != nil {
				_ = s.Close()
			}
		}
	}()
	hc := harness.HTTPClient(token)
	hc.Transport = timingTransport{next: hc.Transport}
	for i := range sessions {
		s, err := harness.Connect(ctx, harness.ClientOptions{Endpoint: endpoint, Version: o.version, HTTP: hc, DisableStandaloneSSE: true})
		if err != nil {
			return nil, 0, 0, err
		}
		sessions[i] = s
	}
	ctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	jobs := make(chan struct{})
	go schedule(ctx, o, jobs)
	var failed atomic.Int64
	out := make([][]sample, o.concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for i, s := range sessions {
		wg.Go(func() {
			args := map[string]any{"text": "ping"}
			for range jobs {
				ct := newCallTiming()
				t0 := time.Now()
				_, err := s.CallTool(withCallTiming(ctx, ct), &mcp.CallToolParams{Name: "echo", Arguments: args})
				total := time.Since(t0)
				if err != nil {
					if ctx.Err() == nil { // calls cut off by -duration are not failures
						failed.Add(1)
					}
					continue
				}
				// The SDK finishes reading the response body (and its trailer) right after
				// it hands over the result.
				out[i] = append(out[i], sample{total: total, timing: ct.wait(ctx, 2*time.Second)})
			}
		})
	}
	wg.Wait()
	return slices.Concat(out...), int(failed.Load()), time.Since(start), nil
}

// schedule hands out o.count calls: at o.rate per second, or as fast as sessions take them.
func schedule(ctx context.Context, o options, jobs chan<- struct{}) {
	defer close(jobs)
	var tick <-chan time.Time
	if o.rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / o.rate))
		defer t.Stop()
		tick = t.C
	}
	for range o.count {
		if tick != nil {
			select {
			case <-tick:
			case <-ctx.Done():
				return
			}
		}
		select {
		case jobs <- struct{}{}:
		case <-ctx.Done():
			return
		}
	}
}

// split is the per-call breakdown of the calls that carried a timing.
type split struct {
	timed, bad                   int // calls with a timing; calls whose timing did not parse
	guard, authz, proc, up, rest [2]time.Duration
	msgs                         int // ext_proc round trips per call (median)
	hasUp                        bool
}

func splitOf(samples []sample) split {
	var sp split
	var guard, authz, proc, up, rest []time.Duration
	var msgs []time.Duration
	for _, s := range samples {
		if s.timing.err != nil {
			sp.bad++
		}
		if !s.timing.ok {
			continue
		}
		t := s.timing.t
		guard = append(guard, t.guard())
		authz = append(authz, t.authz)
		proc = append(proc, t.extproc)
		msgs = append(msgs, time.Duration(t.n))
		if t.hasUpstream {
			up = append(up, t.upstream)
			rest = append(rest, s.total-t.guard()-t.upstream)
		}
	}
	sp.timed = len(guard)
	pp := func(d []time.Duration) [2]time.Duration {
		return [2]time.Duration{percentile(d, 50), percentile(d, 99)}
	}
	sp.guard, sp.authz, sp.proc, sp.up, sp.rest = pp(guard), pp(authz), pp(proc), pp(up), pp(rest)
	sp.msgs = int(percentile(msgs, 50))
	sp.hasUp = len(up) == len(guard) && len(up) > 0
	return sp
}

// firstEvent measures, call by call, the time from sending tools/call slow to receiving
// its first progress notification on the SSE response.
func firstEvent(ctx context.Context, o options, endpoint, token string) ([]time.Duration, error) {
	// Progress handlers run asynchronously, so a late notification of the previous call
	// can arrive during the next one: only a notification carrying the current call's
	// progress token counts.
	first := make(chan any, 64)
	s, err := harness.Connect(ctx, harness.ClientOptions{
		Endpoint: endpoint, Token: token, Version: o.version, DisableStandaloneSSE: true,
		Client: &mcp.ClientOptions{ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			select {
			case first <- r.Params.ProgressToken:
			default:
			}
		}},
	})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	out := make([]time.Duration, 0, o.ttfeSamples)
	for i := range o.ttfeSamples {
		p := &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{"steps": 2, "delay_ms": 5}}
		want := fmt.Sprintf("t%d", i)
		p.SetProgressToken(want)
		done := make(chan error, 1)
		t0 := time.Now()
		go func() {
			_, err := s.CallTool(ctx, p)
			done <- err
		}()
	wait:
		for {
			select {
			case tok := <-first:
				if tok != want {
					continue
				}
				out = append(out, time.Since(t0))
				if err := <-done; err != nil {
					return nil, fmt.Errorf("slow: %w", err)
				}
				break wait
			case err := <-done:
				if err != nil {
					return nil, fmt.Errorf("slow: %w", err)
				}
				return nil, errors.New("slow returned without a progress event (JSON responses carry none: use an SSE mode)")
			}
		}
	}
	return out, nil
}

// bigThroughput is the MB/s of o.bigSamples sequential big calls.
func bigThroughput(ctx context.Context, o options, endpoint, token string) (float64, error) {
	s, err := harness.Connect(ctx, harness.ClientOptions{Endpoint: endpoint, Token: token, Version: o.version, DisableStandaloneSSE: true})
	if err != nil {
		return 0, err
	}
	defer s.Close()
	var bytes int
	start := time.Now()
	for range o.bigSamples {
		r, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "big", Arguments: map[string]any{"mb": o.bigMB}})
		if err != nil {
			return 0, fmt.Errorf("big: %w", err)
		}
		tc, ok := r.Content[0].(*mcp.TextContent)
		if !ok || len(tc.Text) != o.bigMB<<20 {
			return 0, errors.New("big: result truncated or altered")
		}
		bytes += len(tc.Text)
	}
	return float64(bytes) / (1 << 20) / time.Since(start).Seconds(), nil
}

// percentile is the p-th percentile (nearest rank) of d; 0 for no samples.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func (r *report) print(w io.Writer, o options) {
	pace := "back to back"
	if o.rate > 0 {
		pace = fmt.Sprintf("started at %g/s", o.rate)
	}
	fmt.Fprintf(w, "mcpload: revision %s, %d sessions, up to %d echo calls per path (%s, at most %s)\n", o.version, o.concurrency, o.count, pace, o.duration)
	fmt.Fprintf(w, "%-8s %7s %6s %10s %10s %10s %11s %11s %9s\n", "path", "calls", "errors", "calls/s", "p50", "p99", "ttfe p50", "ttfe p99", "big MB/s")
	for _, row := range []struct {
		name string
		p    pathResult
	}{{"direct", r.direct}, {"gateway", r.gateway}} {
		p := row.p
		fmt.Fprintf(w, "%-8s %7d %6d %10.0f %10s %10s %11s %11s %9.1f\n", row.name, p.calls, p.errors,
			float64(p.calls)/p.elapsed.Seconds(), p.p50.Round(time.Microsecond), p.p99.Round(time.Microsecond),
			p.ttfe50.Round(time.Microsecond), p.ttfe99.Round(time.Microsecond), p.bigMBps)
	}
	ratio := func(g, d time.Duration) string {
		if d == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2fx", float64(g)/float64(d))
	}
	fmt.Fprintf(w, "added latency: p50 +%s (%s), p99 +%s (%s); first event +%s (%s)\n",
		(r.gateway.p50 - r.direct.p50).Round(time.Microsecond), ratio(r.gateway.p50, r.direct.p50),
		(r.gateway.p99 - r.direct.p99).Round(time.Microsecond), ratio(r.gateway.p99, r.direct.p99),
		(r.gateway.ttfe50 - r.direct.ttfe50).Round(time.Microsecond), ratio(r.gateway.ttfe50, r.direct.ttfe50))
	r.gateway.split.print(w, r.gateway)
	for _, row := range []struct {
		name string
		err  error
	}{{"direct", r.direct.bigErr}, {"gateway", r.gateway.bigErr}} {
		if row.err != nil {
			fmt.Fprintf(w, "large result failed on the %s path: %v\n", row.name, row.err)
		}
	}
	if r.direct.bigMBps > 0 && r.gateway.bigMBps > 0 {
		fmt.Fprintf(w, "large result: %d MiB at %.1f MB/s through the gateway vs %.1f MB/s direct (%.2fx)\n",
			o.bigMB, r.gateway.bigMBps, r.direct.bigMBps, r.gateway.bigMBps/r.direct.bigMBps)
	}
}

// selfEnv is everything -self started.
type selfEnv struct {
	gateway, direct, token string
	dir                    string
	guard                  *harness.Guard
	gw                     *harness.Gateway
	up                     *mcpserver.Server
}

func startSelf(ctx context.Context, o options, stderr io.Writer) (_ *selfEnv, err error) {
	ctx, cancel := context.WithTimeout(ctx, o.startupTimeout)
	defer cancel()
	e := &selfEnv{}
	defer func() {
		if err != nil {
			e.close(stderr)
		}
	}()
	if e.dir, err = os.MkdirTemp("", "mcpload-"); err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	root, err := harness.ModuleRoot(ctx)
	if err != nil {
		return nil, err
	}
	bin := o.bin
	if bin == "" {
		if bin, err = harness.Build(ctx, root, e.dir); err != nil {
			return nil, err
		}
	}
	// info, not debug: per-request logging would measure the logger.
	if e.guard, err = harness.StartGuard(ctx, harness.GuardOptions{Bin: bin, Dir: e.dir}); err != nil {
		return nil, err
	}
	if e.token, err = e.guard.Token(ctx, harness.TokenOptions{Subject: "mcpload", Scopes: []string{"mcp:tools"}}); err != nil {
		return nil, err
	}
	if e.up, err = mcpserver.Start(mcpserver.Options{Mode: mcpserver.Mode(o.mode)}); err != nil {
		return nil, err
	}
	e.gw, err = harness.StartGateway(ctx, harness.GatewayOptions{
		Root: root, GRPC: e.guard.GRPC, Admin: e.guard.Admin, Upstream: e.up.Addr(),
		Log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		// Splits each call's latency into mcpguard's, the upstream's and the rest.
		TimingHeader: true,
	})
	if err != nil {
		return nil, err
	}
	e.gateway, e.direct = e.gw.URL(), e.up.URL()
	return e, nil
}

// close stops what startSelf started, in reverse order, and reports problems on stderr.
func (e *selfEnv) close(stderr io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if e.gw != nil {
		if err := e.gw.Close(ctx); err != nil {
			fmt.Fprintln(stderr, "mcpload:", err)
		}
	}
	if e.up != nil {
		if err := e.up.Close(ctx); err != nil {
			fmt.Fprintln(stderr, "mcpload:", err)
		}
	}
	if e.guard != nil {
		if err := e.guard.Stop(ctx); err != nil {
			fmt.Fprintf(stderr, "mcpload: %v\n%s", err, e.guard.Logs())
		}
	}
	if e.dir != "" {
		_ = os.RemoveAll(e.dir)
	}
}

// print reports where a gateway call's time went; nothing when the gateway sent no timings.
func (sp split) print(w io.Writer, p pathResult) {
	if sp.bad > 0 {
		fmt.Fprintf(w, "gateway: %d calls carried an unreadable x-emulator-timing\n", sp.bad)
	}
	if sp.timed == 0 {
		fmt.Fprintln(w, "gateway: no x-emulator-timing on the responses: mcpguard's own time is not known (use -self)")
		return
	}
	us := func(d time.Duration) string { return d.Round(time.Microsecond).String() }
	fmt.Fprintf(w, "gateway, per tools/call (%d of %d calls timed by the emulator, %d ext_proc round trips each):\n", sp.timed, p.calls, sp.msgs)
	fmt.Fprintf(w, "  %-10s %10s %10s  %s\n", "", "p50", "p99", "")
	type row struct {
		name string
		v    [2]time.Duration
		note string
	}
	rows := []row{
		{"total", [2]time.Duration{p.p50, p.p99}, "as the client saw it"},
		{"mcpguard", sp.guard, "ext_authz Check + ext_proc round trips"},
		{"ext_authz", sp.authz, ""},
		{"ext_proc", sp.proc, ""},
	}
	if sp.hasUp {
		rows = append(rows,
			row{"upstream", sp.up, "emulator to MCP server, until response headers"},
			row{"rest", sp.rest, "total - mcpguard - upstream: client, emulator, loopback"})
	}
	for _, r := range rows {
		fmt.Fprintf(w, "  %-10s %10s %10s  %s\n", r.name, us(r.v[0]), us(r.v[1]), r.note)
	}
}
