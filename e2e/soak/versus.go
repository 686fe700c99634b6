package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/mcpguard/mcpguard/e2e/mcpserver"
)

// Binary is one build that [Versus] measures.
type Binary struct {
	Name string // label in the table: "base", "head" or "floor"
	Path string
}

// Versus measures the capacity classes (Options.Classes, default all) for base and for
// Options.Bin (built from this checkout when empty), labelled "base" and "head", in
// alternating rounds: per class and round, d of closed-loop calls against each binary in
// turn, and, for the allowed class, against the no-op floor too. Every binary runs its own
// mcpguard, emulator and upstream for the whole run, so a round costs no start-up; load
// that changes on the machine (other processes, a noisy host) falls on every binary of a
// round alike, which a comparison of whole runs taken one after the other cannot promise.
// Rows come per class, binaries in the order given, the floor last.
func Versus(ctx context.Context, o Options, base string, d time.Duration, rounds, workers int) ([]Row, error) {
	if base == "" || d <= 0 || d > time.Hour || rounds < 1 || rounds > 100 || workers < 1 || workers > 256 {
		return nil, errors.New("versus: a base binary, duration within (0, 1h], rounds within 1..100, workers within 1..256")
	}
	o, tmp, err := prepare(ctx, o)
	if tmp {
		defer os.RemoveAll(o.Dir)
	}
	if err != nil {
		return nil, err
	}
	bins := []Binary{{Name: "base", Path: base}, {Name: "head", Path: o.Bin}}
	var picked []class
	for _, cl := range classes {
		if !cl.floor && (len(o.Classes) == 0 || slices.Contains(o.Classes, cl.name)) {
			picked = append(picked, cl)
		}
	}
	if len(picked) == 0 {
		return nil, fmt.Errorf("versus: no class among %q", o.Classes)
	}
	floorBin, err := buildNullguard(ctx, o.Root, o.Dir)
	if err != nil {
		return nil, err
	}
	var envs []*env
	defer func() {
		for _, e := range envs {
			e.close()
		}
	}()
	ttl := time.Duration(rounds*(len(bins)+1)*len(picked))*(d+capacityWarmUp)*2 + time.Hour
	// envOf[rec][i] is binary i (len(bins) is the floor) with recordings on or off.
	envOf := map[bool][]*env{}
	for _, rec := range []bool{false, true} {
		if !slices.ContainsFunc(picked, func(cl class) bool { return cl.recorded == rec }) {
			continue
		}
		targets := append(slices.Clone(bins), Binary{Name: "floor", Path: floorBin})
		if rec {
			targets = targets[:len(bins)] // the floor records nothing
		}
		for i, b := range targets {
			sub := Options{Root: o.Root, Bin: b.Path, Env: o.Env, Log: o.Log, Dir: filepath.Join(o.Dir, fmt.Sprintf("versus-%d-recorded-%t", i, rec))}
			e, err := start(ctx, sub, map[string]any{
				"recordings": map[string]any{"enabled": rec, "replica_id": "versus"},
				"shutdown":   map[string]any{"drain": "0s", "timeout": "60s"},
			}, []mcpserver.Mode{mcpserver.Stateful}, ttl)
			if err != nil {
				return nil, fmt.Errorf("versus %s: %w", b.Name, err)
			}
			envs = append(envs, e)
			envOf[rec] = append(envOf[rec], e)
		}
	}
	var rows []Row
	for _, cl := range picked {
		targets := envOf[cl.recorded]
		if cl.masked && len(targets) > len(bins) {
			targets = targets[:len(bins)] // the floor masks nothing
		}
		acc := make([]Row, len(targets))
		for r := range rounds {
			for i, e := range targets {
				name := "floor"
				if i < len(bins) {
					name = bins[i].Name
				}
				o.logf("versus %s round %d/%d: %s, %s", cl.name, r+1, rounds, name, d)
				row, err := measureClass(ctx, e, cl, d, workers)
				if err != nil {
					return nil, fmt.Errorf("versus %s %s: %w", cl.name, name, err)
				}
				a := &acc[i]
				a.Class = cl.name + " · " + name
				a.Calls += row.Calls
				a.CPU += row.CPU
				a.Wall += row.Wall
				a.P50, a.P99 = max(a.P50, row.P50), max(a.P99, row.P99)
			}
		}
		rows = append(rows, acc...)
	}
	return rows, nil
}

// PrintVersus writes Versus's rows as a Markdown table: CPU per call and its ratio to the
// first binary of the same class.
func PrintVersus(w io.Writer, rows []Row) {
	fmt.Fprintln(w, "| traffic · build | calls | mcpguard CPU | CPU per call | vs first | calls/s per core | worst p50 | worst p99 |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|")
	var first float64
	var class string
	for _, r := range rows {
		per := r.CPU.Seconds() / float64(max(r.Calls, 1))
		if c, _, _ := cutLast(r.Class, " · "); c != class {
			class, first = c, per
		}
		fmt.Fprintf(w, "| %s | %d | %.1f s | %.0f µs | %.2f | **%.0f** | %s | %s |\n", r.Class, r.Calls, r.CPU.Seconds(),
			per*1e6, per/first, r.PerCore(), r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond))
	}
}

func cutLast(s, sep string) (string, string, bool) {
	for i := len(s) - len(sep); i >= 0; i-- {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}
