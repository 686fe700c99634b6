// Command mcpload measures what the gateway costs: it drives tools/call through the Envoy
// emulator + mcpguard and directly to the upstream MCP server at a fixed concurrency, and
// reports latency percentiles, time to the first SSE event and large-result throughput for
// both paths. Loopback only; counts, concurrency and duration are bounded.
//
//	mcpload -self                      # build and start mcpguard, emulator and upstream itself
//	mcpload -gateway URL -direct URL -token JWT
//
// Through a gateway that sends x-emulator-timing (the emulator with Options.TimingHeader, which
// -self turns on), each call's time is split into mcpguard's own (ext_authz + ext_proc), the
// upstream's and the rest.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mcpload:", err)
		os.Exit(1)
	}
}

// options are the command-line settings, validated by [options.validate].
type options struct {
	self           bool
	bin            string
	gateway        string
	direct         string
	token          string
	version        string
	mode           string
	concurrency    int
	rate           float64
	count          int
	duration       time.Duration
	ttfeSamples    int
	bigMB          int
	bigSamples     int
	startupTimeout time.Duration
}

// Bounds keep the tool from becoming a denial of service on a shared machine.
const (
	maxConcurrency = 256
	maxCount       = 200000
	maxRate        = 5000
	maxDuration    = 10 * time.Minute
	maxSamples     = 1000
	maxBigMB       = 64
)

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mcpload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.BoolVar(&o.self, "self", false, "start mcpguard, the emulator (envoy/envoy.yaml) and an upstream MCP server")
	fs.StringVar(&o.bin, "bin", "", "with -self: the mcpguard binary to measure (default: build this checkout)")
	fs.StringVar(&o.gateway, "gateway", "", "MCP URL through the gateway (without -self)")
	fs.StringVar(&o.direct, "direct", "", "MCP URL of the upstream itself (without -self)")
	fs.StringVar(&o.token, "token", "", "bearer token for the gateway path (without -self); or env MCPLOAD_TOKEN")
	fs.StringVar(&o.version, "version", "2025-11-25", "protocol revision the clients pin")
	fs.StringVar(&o.mode, "mode", "stateful", "upstream transport with -self: stateful, stateful-json, stateless, stateless-json")
	fs.IntVar(&o.concurrency, "c", 8, "concurrent sessions per path")
	fs.Float64Var(&o.rate, "rate", 0, "echo calls per second per path, started on a fixed schedule (0: each session calls back to back)")
	fs.IntVar(&o.count, "n", 2000, "echo calls per path")
	fs.DurationVar(&o.duration, "duration", time.Minute, "stop each path's echo phase after this long")
	fs.IntVar(&o.ttfeSamples, "ttfe-n", 50, "slow calls per path for time to first event")
	fs.IntVar(&o.bigMB, "big-mb", 20, "size of the large result in MiB (0 skips)")
	fs.IntVar(&o.bigSamples, "big-n", 3, "large results per path")
	fs.DurationVar(&o.startupTimeout, "startup-timeout", 3*time.Minute, "with -self: bound on build and start")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.token == "" {
		o.token = os.Getenv("MCPLOAD_TOKEN")
	}
	if err := o.validate(); err != nil {
		return err
	}
	if o.bin != "" {
		abs, err := filepath.Abs(o.bin)
		if err != nil {
			return fmt.Errorf("-bin: %w", err)
		}
		o.bin = abs
	}
	if o.self {
		env, err := startSelf(ctx, o, stderr)
		if err != nil {
			return err
		}
		defer env.close(stderr)
		o.gateway, o.direct, o.token = env.gateway, env.direct, env.token
	}
	rep, err := measure(ctx, o)
	if err != nil {
		return err
	}
	rep.print(stdout, o)
	return nil
}

func (o options) validate() error {
	var errs []error
	if !o.self {
		for name, u := range map[string]string{"gateway": o.gateway, "direct": o.direct} {
			if err := loopbackURL(u); err != nil {
				errs = append(errs, fmt.Errorf("-%s: %w", name, err))
			}
		}
		if o.token == "" {
			errs = append(errs, errors.New("-token: required without -self"))
		}
	}
	if o.concurrency < 1 || o.concurrency > maxConcurrency {
		errs = append(errs, fmt.Errorf("-c: must be within 1..%d", maxConcurrency))
	}
	if math.IsNaN(o.rate) || o.rate < 0 || o.rate > maxRate {
		errs = append(errs, fmt.Errorf("-rate: must be within 0..%d", maxRate))
	}
	if o.count < 1 || o.count > maxCount {
		errs = append(errs, fmt.Errorf("-n: must be within 1..%d", maxCount))
	}
	if o.duration <= 0 || o.duration > maxDuration {
		errs = append(errs, fmt.Errorf("-duration: must be within 0..%s", maxDuration))
	}
	if o.ttfeSamples < 0 || o.ttfeSamples > maxSamples {
		errs = append(errs, fmt.Errorf("-ttfe-n: must be within 0..%d", maxSamples))
	}
	if o.bigMB < 0 || o.bigMB > maxBigMB {
		errs = append(errs, fmt.Errorf("-big-mb: must be within 0..%d", maxBigMB))
	}
	if o.bigSamples < 0 || o.bigSamples > 20 {
		errs = append(errs, errors.New("-big-n: must be within 0..20"))
	}
	switch o.mode {
	case "stateful", "stateful-json", "stateless", "stateless-json":
	default:
		errs = append(errs, fmt.Errorf("-mode: %q is not stateful, stateful-json, stateless or stateless-json", o.mode))
	}
	return errors.Join(errs...)
}

// loopbackURL accepts only http URLs on 127.0.0.1, ::1 or localhost: this is a lab tool.
func loopbackURL(s string) error {
	if s == "" {
		return errors.New("required without -self")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("parse url: %w", err)
	}
	if u.Scheme != "http" {
		return fmt.Errorf("%q: only http is supported", s)
	}
	switch u.Hostname() {
	case "127.0.0.1", "::1", "localhost":
		return nil
	}
	return fmt.Errorf("%q: only loopback hosts are allowed", s)
}
