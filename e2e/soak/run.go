// Package soak drives mcpguard behind the Envoy emulator at a steady rate with a mix of
// allowed, denied, masked and approved calls, samples its RSS, CPU and goroutines, and
// after shutdown checks that nothing grew, every exchange was recorded and verifies, and no
// error came back beyond the expected ones. It also measures capacity per CPU core.
package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mcpguard/mcpguard/e2e/harness"
	"github.com/mcpguard/mcpguard/e2e/mcpserver"
)

// Options locate the pieces a run starts; zero values are found or created.
type Options struct {
	Root string    // module root; from `go env GOMOD` when empty
	Bin  string    // the mcpguard binary; built into Dir when empty
	Dir  string    // config and data; a temporary directory (removed afterwards) when empty
	Log  io.Writer // progress lines; nil discards
	// Profile, when set, turns on admin.pprof and writes mcpguard's CPU profile of each
	// measured phase into this directory (NAME.pprof), for `go tool pprof`.
	Profile string
	// Classes limits Capacity to these traffic classes (allowed, masked, recorded,
	// masked+recorded, floor); empty measures all.
	Classes []string
	// Env is added to mcpguard's environment only (not the load generator's), e.g.
	// GOMAXPROCS=1 to see what a one-core limit does.
	Env []string
}

// approvalRule is added to the embedded default policy: echo calls whose text starts with
// "approve-" need the release group's approval.
var approvalRule = map[string]any{
	"name":      "soak-approval",
	"when":      `request.tool == "echo" && request.arguments.text.startsWith("approve-")`,
	"action":    "require_approval",
	"approvers": []string{"release"},
	"message":   "soak: approved by the approver goroutine",
}

// env is what a run started, stopped in reverse order by close.
type env struct {
	o      Options
	guard  *harness.Guard
	proc   Proc
	ups    []*mcpserver.Server
	gws    []*harness.Gateway
	urls   []string
	agent  string // requester token
	admin  string // approver token (group release)
	stopEr error  // mcpguard's exit after SIGTERM
}

func (o Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

// warnings is the emulator's log: warnings and errors only (local replies, resets,
// timeouts), so an unexpected error of a call can be traced to what the gateway saw.
func (o Options) warnings() *slog.Logger {
	w := o.Log
	if w == nil {
		w = io.Discard
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// lockedWriter serialises the progress lines of the sampler and the emulator's log.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// prepare fills in Root, Bin and Dir, and makes Log safe for concurrent writers.
func prepare(ctx context.Context, o Options) (Options, bool, error) {
	var err error
	if o.Log != nil {
		if _, ok := o.Log.(*lockedWriter); !ok {
			o.Log = &lockedWriter{w: o.Log}
		}
	}
	tmp := false
	if o.Dir == "" {
		if o.Dir, err = os.MkdirTemp("", "mcpguard-soak-"); err != nil {
			return o, false, fmt.Errorf("temp dir: %w", err)
		}
		tmp = true
	}
	if o.Root == "" {
		if o.Root, err = harness.ModuleRoot(ctx); err != nil {
			return o, tmp, err
		}
	}
	if o.Bin == "" {
		o.logf("building mcpguard")
		if o.Bin, err = harness.Build(ctx, o.Root, o.Dir); err != nil {
			return o, tmp, err
		}
	}
	return o, tmp, nil
}

// start runs mcpguard with config, one upstream per mode, a gateway for each, and mints
// the tokens (valid for ttl).
func start(ctx context.Context, o Options, config map[string]any, modes []mcpserver.Mode, ttl time.Duration) (e *env, err error) {
	e = &env{o: o}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return e, fmt.Errorf("mkdir: %w", err)
	}
	if e.guard, err = harness.StartGuard(ctx, harness.GuardOptions{Bin: o.Bin, Dir: o.Dir, Config: config, Env: o.Env}); err != nil {
		return e, err
	}
	if e.proc, err = FindProc(e.guard.ConfigPath); err != nil {
		return e, err
	}
	if e.agent, err = e.guard.Token(ctx, harness.TokenOptions{Subject: "soak-agent", Scopes: []string{"mcp:tools"}, TTL: ttl}); err != nil {
		return e, err
	}
	if e.admin, err = e.guard.Token(ctx, harness.TokenOptions{Subject: "soak-approver", Scopes: []string{"mcp:tools"}, Groups: []string{"release"}, Audience: harness.ApproverAudience, TTL: ttl}); err != nil {
		return e, err
	}
	for _, m := range modes {
		up, err := mcpserver.Start(mcpserver.Options{Mode: m})
		if err != nil {
			return e, err
		}
		e.ups = append(e.ups, up)
		gw, err := harness.StartGateway(ctx, harness.GatewayOptions{
			Root: o.Root, GRPC: e.guard.GRPC, Admin: e.guard.Admin, Upstream: up.Addr(),
			Log: o.warnings(),
		})
		if err != nil {
			return e, err
		}
		e.gws = append(e.gws, gw)
		e.urls = append(e.urls, up.URLVia(gw.Addr()))
	}
	return e, nil
}

// close stops gateways, upstreams and then mcpguard (SIGTERM: it closes every open session
// and uploads its recordings before exiting).
func (e *env) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, gw := range e.gws {
		_ = gw.Close(ctx) // streams still open (standalone GETs) are cut: expected here
	}
	for _, up := range e.ups {
		_ = up.Close(ctx)
	}
	e.gws, e.ups = nil, nil
	if e.guard != nil {
		e.stopEr = e.guard.Stop(ctx)
		if e.stopEr != nil {
			e.o.logf("mcpguard log:\n%s", e.guard.Logs())
		}
		e.guard = nil
	}
}

// soakPolicy is the embedded default policy plus [approvalRule], written under dir.
func soakPolicy(root, dir string) (string, error) {
	raw, err := os.ReadFile(filepath.Join(root, "policy", "default.yaml"))
	if err != nil {
		return "", fmt.Errorf("read default policy: %w", err)
	}
	var p map[string]any
	if err := yaml.Unmarshal(raw, &p); err != nil {
		return "", fmt.Errorf("parse default policy: %w", err)
	}
	rules, _ := p["rules"].([]any)
	p["rules"] = append(rules, approvalRule)
	out, err := yaml.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("encode policy: %w", err)
	}
	path := filepath.Join(dir, "soak-policy.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return "", fmt.Errorf("write policy: %w", err)
	}
	return path, nil
}

// Run starts mcpguard (recordings to a directory), two upstreams (SSE and JSON responses)
// behind two gateways, drives the load for c.Duration with an approver and a sampler
// running, stops everything and checks the outcome. An error means the run could not be
// made; a run that was made and failed a check returns a [Report] whose Err is not nil.
func Run(ctx context.Context, o Options, c Config) (*Report, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("soak config: %w", err)
	}
	o, tmp, err := prepare(ctx, o)
	if tmp {
		defer os.RemoveAll(o.Dir)
	}
	if err != nil {
		return nil, err
	}
	pol, err := soakPolicy(o.Root, o.Dir)
	if err != nil {
		return nil, err
	}
	config := map[string]any{
		"policy":     map[string]any{"file": pol},
		"approvals":  map[string]any{"hold": "25s"},
		"recordings": map[string]any{"replica_id": "soak"},
		"shutdown":   map[string]any{"drain": "0s", "timeout": "60s"},
	}
	o.withProfiling(config)
	e, err := start(ctx, o, config, []mcpserver.Mode{mcpserver.Stateful, mcpserver.StatefulJSON}, c.Duration+time.Hour)
	if err != nil {
		return nil, err
	}
	defer e.close()
	bin, cfgPath := o.Bin, e.guard.ConfigPath
	admin := e.guard.Admin
	o.logf("mcpguard pid %d; %s at %.0f calls/s, %d sessions", e.proc.PID, c.Duration, c.Rate, c.Workers)

	r := &Report{Config: c, Started: time.Now()}
	var t tally
	cpu0, err := e.proc.CPU()
	if err != nil {
		return nil, err
	}
	bg, stopBG := context.WithCancel(ctx)
	ap := &approver{admin: admin, token: e.admin, poll: c.ApproverPoll, c: &http.Client{Timeout: 10 * time.Second}}
	smp := &sampler{proc: e.proc, metrics: "http://" + admin + "/metrics", every: c.Sample, start: r.Started, calls: t.count, log: o}
	var wg sync.WaitGroup
	wg.Go(func() { ap.run(bg) })
	wg.Go(func() { smp.run(bg) })
	profiled := e.profile(ctx, "soak", c.Duration)
	drive(ctx, c, c.Duration, e.urls, e.agent, r.Started, &t)
	r.Elapsed = time.Since(r.Started)
	cpu1, cpuErr := e.proc.CPU()
	smp.take(ctx) // the last sample, after the load
	stopBG()
	wg.Wait()
	r.CPU = cpu1 - cpu0
	if err := profiled(); err != nil {
		return nil, err
	}

	e.close()
	r.StopErr = e.stopEr
	r.tallied(&t)
	r.Approved, r.Listings, r.ApproverErrs = ap.result()
	r.Samples, r.SampleErrs = smp.result()
	r.Growth = growths(r.Samples, c.WarmUp, c.Tolerance)
	if cpuErr != nil {
		r.SampleErrs = append(r.SampleErrs, cpuErr.Error())
	}

	o.logf("verifying recordings")
	r.Storage.Verified, r.Storage.VerifyErr = verifyAll(ctx, bin, cfgPath)
	st, err := scanStorage(ctx, filepath.Join(o.Dir, "data", "recordings"), t.snapshot())
	if err != nil {
		return nil, err
	}
	st.Verified, st.VerifyErr = r.Storage.Verified, r.Storage.VerifyErr
	r.Storage = st
	return r, nil
}

// sampler reads mcpguard's resource use every `every` until its context ends.
type sampler struct {
	proc    Proc
	metrics string
	every   time.Duration
	start   time.Time
	calls   func() int
	log     Options

	mu      sync.Mutex
	samples []Sample
	errs    []string
}

func (s *sampler) run(ctx context.Context) {
	tick := time.NewTicker(s.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.take(ctx)
		}
	}
}

func (s *sampler) take(ctx context.Context) {
	smp, err := s.read(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			s.errs = append(s.errs, err.Error())
		}
		return
	}
	s.samples = append(s.samples, smp)
	s.log.logf("%8s calls %7d  rss %6.1f MiB  heap %6.1f MiB  goroutines %5d  cpu %s",
		smp.At.Round(time.Second), smp.Calls, mib(smp.RSS), mib(smp.Heap), smp.Goroutines, smp.CPU.Round(10*time.Millisecond))
}

var scrapeClient = &http.Client{Timeout: 10 * time.Second}

func (s *sampler) read(ctx context.Context) (Sample, error) {
	smp := Sample{At: time.Since(s.start), Calls: s.calls()}
	mem, err := s.proc.Mem()
	if err != nil {
		return smp, err
	}
	smp.RSS, smp.RSSAnon = mem.RSS, mem.RSSAnon
	if smp.CPU, err = s.proc.CPU(); err != nil {
		return smp, err
	}
	text, err := scrape(ctx, scrapeClient, s.metrics)
	if err != nil {
		return smp, err
	}
	g, err := gauge(text, "go_goroutines")
	if err != nil {
		return smp, err
	}
	h, err := gauge(text, "go_memstats_heap_inuse_bytes")
	if err != nil {
		return smp, err
	}
	smp.Goroutines, smp.Heap = int(g), int64(h)
	return smp, nil
}

func (s *sampler) result() ([]Sample, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples, s.errs
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// errNoCalls is reported when the load produced nothing to judge.
var errNoCalls = errors.New("no calls were made")
