package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/mcpguard/mcpguard/e2e/harness"
	"github.com/mcpguard/mcpguard/e2e/mcpserver"
)

// tracingSettings are the columns of the tracing cost table: tracing off, and sampling 1 %
// and 100 % of new traces (the calls carry no traceparent, so the ratio decides).
var tracingSettings = []struct {
	name  string
	ratio float64 // < 0: tracing off
}{
	{"off", -1}, {"1%", 0.01}, {"100%", 1},
}

// TracingCost measures the CPU per allowed call with tracing off, at 1 % and at 100 %
// sampling. Each setting has its own mcpguard (recordings off, masking on, as the "allowed"
// class of [Capacity]) exporting to the OTLP receiver otlp; all run at once, and the
// measurement interleaves them in rounds (off, 1 %, 100 %, off, …) of d each, so that load
// from other processes on a shared machine falls on every setting alike. Rows sum the rounds.
func TracingCost(ctx context.Context, o Options, otlp string, d time.Duration, rounds, workers int) ([]Row, error) {
	if d <= 0 || d > time.Hour || rounds < 1 || rounds > 100 {
		return nil, errors.New("tracing cost: duration within (0, 1h], rounds within 1..100")
	}
	if workers < 1 || workers > 256 {
		return nil, errors.New("tracing cost workers: must be within 1..256")
	}
	o, tmp, err := prepare(ctx, o)
	if tmp {
		defer os.RemoveAll(o.Dir)
	}
	if err != nil {
		return nil, err
	}
	envs := make([]*env, len(tracingSettings))
	defer func() {
		for _, e := range envs {
			if e != nil {
				e.close()
			}
		}
	}()
	for i, s := range tracingSettings {
		tracing := map[string]any{"enabled": false}
		if s.ratio >= 0 {
			tracing = map[string]any{"enabled": true, "endpoint": otlp, "sampler": map[string]any{"ratio": s.ratio, "parent_based": true}}
		}
		sub := Options{Root: o.Root, Bin: o.Bin, Dir: filepath.Join(o.Dir, fmt.Sprintf("tracing-%d", i)), Log: o.Log}
		e, err := start(ctx, sub, map[string]any{
			"recordings": map[string]any{"enabled": false},
			"shutdown":   map[string]any{"drain": "0s", "timeout": "60s"},
			"tracing":    tracing,
		}, []mcpserver.Mode{mcpserver.Stateful}, time.Duration(rounds*len(tracingSettings))*(d+capacityWarmUp)*2+time.Hour)
		if err != nil {
			return nil, fmt.Errorf("tracing %s: %w", s.name, err)
		}
		envs[i] = e
	}
	rows := make([]Row, len(tracingSettings))
	cl := classes[0] // allowed
	for r := range rounds {
		for i, s := range tracingSettings {
			o.logf("tracing cost round %d/%d: %s, %s, %d sessions", r+1, rounds, s.name, d, workers)
			row, err := measureClass(ctx, envs[i], cl, d, workers)
			if err != nil {
				return nil, fmt.Errorf("tracing %s: %w", s.name, err)
			}
			o.logf("  %s: %d calls, %.2f s CPU, %.0f µs per call", s.name, row.Calls, row.CPU.Seconds(), row.CPU.Seconds()*1e6/float64(max(row.Calls, 1)))
			acc := &rows[i]
			acc.Class = s.name
			acc.Calls += row.Calls
			acc.CPU += row.CPU
			acc.Wall += row.Wall
			// Latency percentiles of the whole run are not kept; the worst round's are shown.
			acc.P50, acc.P99 = max(acc.P50, row.P50), max(acc.P99, row.P99)
		}
	}
	return rows, nil
}

// PrintTracingCost writes the rows as a Markdown table with the CPU per call and its ratio
// to tracing off.
func PrintTracingCost(w io.Writer, rows []Row) {
	fmt.Fprintln(w, "| tracing | calls | mcpguard CPU | CPU per call | vs off | calls/s per core | worst p50 | worst p99 |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|")
	var base float64
	for _, r := range rows {
		per := r.CPU.Seconds() / float64(max(r.Calls, 1))
		if base == 0 {
			base = per
		}
		fmt.Fprintf(w, "| %s | %d | %.1f s | %.0f µs | %.3f | **%.0f** | %s | %s |\n", r.Class, r.Calls, r.CPU.Seconds(),
			per*1e6, per/base, r.PerCore(), r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond))
	}
}

// StartJaeger starts the Jaeger of the module (bin/jaeger or PATH) for the tracing cost run
// and returns its OTLP endpoint and a stop function.
func StartJaeger(ctx context.Context, o Options) (string, func(), error) {
	root := o.Root
	if root == "" {
		var err error
		if root, err = harness.ModuleRoot(ctx); err != nil {
			return "", nil, err
		}
	}
	bin, err := harness.JaegerBin(root)
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "mcpguard-jaeger-")
	if err != nil {
		return "", nil, fmt.Errorf("temp dir: %w", err)
	}
	j, err := harness.StartJaeger(ctx, bin, dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return j.OTLP, func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		defer cancel()
		_ = j.Stop(sctx)
		os.RemoveAll(dir)
	}, nil
}
