// Command soak runs mcpguard behind the Envoy emulator at a steady load with allowed,
// denied, masked and approved calls, checks that goroutines and memory do not grow, every
// exchange is recorded and verifies, and no unexpected error came back; then, with
// -capacity, measures calls/s per core for allowed, masked and recorded traffic.
//
//	soak -duration 10m -rate 40 -capacity 30s      # what `make soak` runs
//	soak -skip-soak -tracing-cost 20s -tracing-rounds 3   # CPU per call, tracing off / 1% / 100%
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mcpguard/mcpguard/e2e/soak"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := soak.DefaultConfig()
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&c.Duration, "duration", c.Duration, "how long the steady load runs")
	fs.Float64Var(&c.Rate, "rate", c.Rate, "calls per second")
	fs.IntVar(&c.Workers, "workers", c.Workers, "concurrent MCP sessions")
	fs.IntVar(&c.Reconnect, "reconnect", c.Reconnect, "calls per session before it is closed and replaced")
	fs.DurationVar(&c.Sample, "sample", c.Sample, "sampling interval for RSS, CPU and goroutines")
	fs.DurationVar(&c.WarmUp, "warm-up", c.WarmUp, "start of the run left out of the growth check")
	fs.IntVar(&c.Mix.Allowed, "mix-allowed", c.Mix.Allowed, "weight of allowed calls")
	fs.IntVar(&c.Mix.Denied, "mix-denied", c.Mix.Denied, "weight of calls denied by policy")
	fs.IntVar(&c.Mix.Masked, "mix-masked", c.Mix.Masked, "weight of calls whose result is masked")
	fs.IntVar(&c.Mix.Approved, "mix-approved", c.Mix.Approved, "weight of calls held for approval")
	capacity := fs.Duration("capacity", 0, "after the soak, measure each traffic class for this long (0 skips)")
	capWorkers := fs.Int("capacity-workers", 8, "concurrent sessions while measuring capacity")
	skip := fs.Bool("skip-soak", false, "only measure capacity")
	tracingCost := fs.Duration("tracing-cost", 0, "measure allowed calls with tracing off, 1% and 100% for this long per round (0 skips); exports to bin/jaeger")
	tracingRounds := fs.Int("tracing-rounds", 3, "interleaved rounds of the tracing cost measurement")
	capClasses := fs.String("capacity-classes", "", "comma-separated traffic classes to measure (default: all)")
	versus := fs.String("versus", "", "with -capacity: measure this other mcpguard binary (\"base\") against -bin or this checkout (\"head\") in alternating rounds")
	versusRounds := fs.Int("versus-rounds", 4, "alternating rounds of -versus")
	var env []string
	fs.Func("env", "NAME=VALUE added to mcpguard's environment only (repeatable), e.g. GOMAXPROCS=1", func(v string) error {
		if !strings.Contains(v, "=") {
			return fmt.Errorf("%q: want NAME=VALUE", v)
		}
		env = append(env, v)
		return nil
	})
	bin := fs.String("bin", "", "the mcpguard binary to measure (default: build this checkout)")
	profile := fs.String("profile", "", "write mcpguard's CPU profile of each measured phase into this directory (turns on admin.pprof)")
	dir := fs.String("dir", "", "keep config, data and recordings here (default: a temporary directory)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *bin != "" {
		abs, err := filepath.Abs(*bin)
		if err != nil {
			return fmt.Errorf("-bin: %w", err)
		}
		*bin = abs
	}
	o := soak.Options{Dir: *dir, Log: stderr, Profile: *profile, Bin: *bin, Env: env}
	if *capClasses != "" {
		o.Classes = strings.Split(*capClasses, ",")
	}
	fmt.Fprintf(stdout, "soak: started %s on %d CPUs\n", time.Now().UTC().Format(time.RFC3339), numCPU())
	var failed error
	if !*skip {
		r, err := soak.Run(ctx, o, c)
		if err != nil {
			return err
		}
		r.Print(stdout)
		failed = r.Err()
	}
	if *capacity > 0 && *versus != "" {
		base, err := filepath.Abs(*versus)
		if err != nil {
			return fmt.Errorf("-versus: %w", err)
		}
		rows, err := soak.Versus(ctx, o, base, *capacity, *versusRounds, *capWorkers)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nversus: %d alternating rounds of %s per class and build after a 3s warm-up each, %d sessions, echo through the emulator (SSE responses)\n", *versusRounds, *capacity, *capWorkers)
		soak.PrintVersus(stdout, rows)
	} else if *capacity > 0 {
		if *dir != "" {
			o.Dir = *dir + "/capacity"
		}
		rows, err := soak.Capacity(ctx, o, *capacity, *capWorkers)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\ncapacity: %s per class after a 3s warm-up, %d sessions, echo through the emulator (SSE responses)\n", *capacity, *capWorkers)
		soak.PrintCapacity(stdout, rows)
	}
	if *tracingCost > 0 {
		otlp, stopJaeger, err := soak.StartJaeger(ctx, o)
		if err != nil {
			return err
		}
		defer stopJaeger()
		if *dir != "" {
			o.Dir = *dir + "/tracing"
		}
		rows, err := soak.TracingCost(ctx, o, otlp, *tracingCost, *tracingRounds, *capWorkers)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\ntracing cost: %d rounds of %s per setting (off, 1%%, 100%% interleaved) after a 3s warm-up each, %d sessions, allowed echo through the emulator, spans to Jaeger\n",
			*tracingRounds, *tracingCost, *capWorkers)
		soak.PrintTracingCost(stdout, rows)
	}
	if failed != nil {
		return fmt.Errorf("checks failed")
	}
	return nil
}
