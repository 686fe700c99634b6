package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpguard/mcpguard/e2e/harness"
	"github.com/mcpguard/mcpguard/e2e/mcpserver"
)

// Row is one line of the capacity table: a class of traffic driven as fast as the machine
// allows, and what mcpguard spent on it.
type Row struct {
	Class    string
	Calls    int
	Errors   int
	Wall     time.Duration
	CPU      time.Duration // mcpguard's user+system CPU during the measurement
	P50, P99 time.Duration
}

// PerCore is calls per mcpguard CPU-second: the calls/s one fully used core sustains.
func (r Row) PerCore() float64 {
	if r.CPU <= 0 {
		return 0
	}
	return float64(r.Calls) / r.CPU.Seconds()
}

// Rate is the calls per wall-clock second the whole machine reached.
func (r Row) Rate() float64 { return float64(r.Calls) / r.Wall.Seconds() }

// maskedText is a 1 KiB tool result with a card number, an AWS key and an email in it.
var maskedText = func() string {
	head := "invoice for ann@example.com paid with card 4111 1111 1111 1111; deploy key AKIAZ3MHQX7RBN2KLD4P; "
	return head + strings.Repeat("the quick brown fox jumps over the lazy dog. ", (1024-len(head))/45)
}()

// class is one traffic class of the capacity table.
type class struct {
	name     string
	recorded bool
	text     string
	masked   bool
	// floor runs against nullguard (e2e/cmd/nullguard), which answers every Check and
	// ext_proc message without looking: what the protocol costs any server.
	floor bool
}

var classes = []class{
	{name: "allowed", text: "ping"},
	{name: "masked", text: maskedText, masked: true},
	{name: "recorded", recorded: true, text: "ping"},
	{name: "masked+recorded", recorded: true, text: maskedText, masked: true},
	{name: "floor", text: "ping", floor: true},
}

// Capacity measures, for each traffic class, d of closed-loop echo calls over workers
// sessions (after a short warm-up) through the emulator, and mcpguard's CPU time for them.
// Classes without recording run against an mcpguard with recordings off; the others
// record to a directory. Masking is on (the default) everywhere.
func Capacity(ctx context.Context, o Options, d time.Duration, workers int) ([]Row, error) {
	if d <= 0 || d > time.Hour {
		return nil, errors.New("capacity duration: must be within (0, 1h]")
	}
	if workers < 1 || workers > 256 {
		return nil, errors.New("capacity workers: must be within 1..256")
	}
	o, tmp, err := prepare(ctx, o)
	if tmp {
		defer os.RemoveAll(o.Dir)
	}
	if err != nil {
		return nil, err
	}
	var picked []class
	for _, cl := range classes {
		if len(o.Classes) == 0 || slices.Contains(o.Classes, cl.name) {
			picked = append(picked, cl)
		}
	}
	if len(picked) == 0 {
		return nil, fmt.Errorf("capacity: no class among %q", o.Classes)
	}
	var rows []Row
	for _, srv := range []struct{ rec, floor bool }{{false, false}, {true, false}, {false, true}} {
		if !slices.ContainsFunc(picked, func(cl class) bool { return cl.recorded == srv.rec && cl.floor == srv.floor }) {
			continue
		}
		sub := Options{Root: o.Root, Bin: o.Bin, Env: o.Env, Dir: filepath.Join(o.Dir, fmt.Sprintf("capacity-recorded-%t-floor-%t", srv.rec, srv.floor)), Log: o.Log}
		config := map[string]any{
			"recordings": map[string]any{"enabled": srv.rec, "replica_id": "capacity"},
			"shutdown":   map[string]any{"drain": "0s", "timeout": "60s"},
		}
		if srv.floor {
			bin, err := buildNullguard(ctx, o.Root, o.Dir)
			if err != nil {
				return nil, err
			}
			sub.Bin = bin
		} else {
			sub.Profile = o.Profile
			sub.withProfiling(config)
		}
		e, err := start(ctx, sub, config, []mcpserver.Mode{mcpserver.Stateful}, d*10+time.Hour)
		if err != nil {
			return nil, err
		}
		for _, cl := range picked {
			if cl.recorded != srv.rec || cl.floor != srv.floor {
				continue
			}
			o.logf("capacity %s: %s, %d sessions", cl.name, d, workers)
			row, err := measureClass(ctx, e, cl, d, workers)
			if err != nil {
				e.close()
				return nil, fmt.Errorf("capacity %s: %w", cl.name, err)
			}
			rows = append(rows, row)
		}
		e.close()
		if e.stopEr != nil {
			return nil, fmt.Errorf("capacity: %w", e.stopEr)
		}
	}
	return rows, nil
}

// buildNullguard builds e2e/cmd/nullguard into dir.
func buildNullguard(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "nullguard")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./e2e/cmd/nullguard")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build nullguard: %w\n%s", err, out)
	}
	return bin, nil
}

// capacityWarmUp runs before each measurement so connection set-up and heap growth are
// not counted.
const capacityWarmUp = 3 * time.Second

func measureClass(ctx context.Context, e *env, cl class, d time.Duration, workers int) (Row, error) {
	hc := harness.HTTPClient(e.agent)
	sessions := make([]*mcp.ClientSession, workers)
	defer func() {
		for _, s := range sessions {
			if s != nil {
				_ = s.Close()
			}
		}
	}()
	for i := range sessions {
		s, err := harness.Connect(ctx, harness.ClientOptions{Endpoint: e.urls[0], Version: harness.V20250618, HTTP: hc, DisableStandaloneSSE: true})
		if err != nil {
			return Row{}, err
		}
		sessions[i] = s
	}
	if _, _, _, err := loop(ctx, sessions, cl, capacityWarmUp); err != nil {
		return Row{}, err
	}
	cpu0, err := e.proc.CPU()
	if err != nil {
		return Row{}, err
	}
	t0 := time.Now()
	profiled := e.profile(ctx, cl.name, d)
	lats, errs, firstErr, err := loop(ctx, sessions, cl, d)
	if err != nil {
		return Row{}, err
	}
	wall := time.Since(t0)
	cpu1, err := e.proc.CPU()
	if err != nil {
		return Row{}, err
	}
	if err := profiled(); err != nil {
		return Row{}, err
	}
	if errs > 0 {
		return Row{}, fmt.Errorf("%d of %d calls failed, first: %s", errs, errs+len(lats), firstErr)
	}
	return Row{
		Class: cl.name, Calls: len(lats), Errors: errs, Wall: wall, CPU: cpu1 - cpu0,
		P50: percentile(lats, 50), P99: percentile(lats, 99),
	}, nil
}

// loop calls echo back to back on every session for d.
func loop(ctx context.Context, sessions []*mcp.ClientSession, cl class, d time.Duration) ([]time.Duration, int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var failed atomic.Int64
	var mu sync.Mutex
	var all []time.Duration
	var first string
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Go(func() {
			var lats []time.Duration
			args := map[string]any{"text": cl.text}
			for ctx.Err() == nil {
				t0 := time.Now()
				r, err := s.CallTool(context.WithoutCancel(ctx), &mcp.CallToolParams{Name: "echo", Arguments: args})
				lat := time.Since(t0)
				if msg := checkEcho(cl, r, err); msg != "" {
					failed.Add(1)
					mu.Lock()
					if first == "" {
						first = msg
					}
					mu.Unlock()
					continue
				}
				lats = append(lats, lat)
			}
			mu.Lock()
			all = append(all, lats...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return nil, 0, "", fmt.Errorf("capacity loop: %w", err)
	}
	return all, int(failed.Load()), first, nil
}

// checkEcho is "" when the echo came back as the class expects (masked or unchanged).
func checkEcho(cl class, r *mcp.CallToolResult, err error) string {
	if err != nil {
		return short(err)
	}
	if r.IsError || len(r.Content) != 1 {
		return "tool error"
	}
	tc, ok := r.Content[0].(*mcp.TextContent)
	if !ok {
		return "not text"
	}
	if !cl.masked {
		if tc.Text != cl.text {
			return "wrong result"
		}
		return ""
	}
	for _, v := range []string{"4111 1111", "AKIAZ3", "ann@example.com"} {
		if strings.Contains(tc.Text, v) {
			return "not masked"
		}
	}
	return ""
}

// PrintCapacity writes the rows as a Markdown table.
func PrintCapacity(w io.Writer, rows []Row) {
	fmt.Fprintln(w, "| traffic | calls | calls/s (machine) | mcpguard CPU | calls/s per core | mcpguard cores used | p50 | p99 |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %d | %.0f | %.1f s | **%.0f** | %.2f | %s | %s |\n", r.Class, r.Calls, r.Rate(), r.CPU.Seconds(),
			r.PerCore(), r.CPU.Seconds()/r.Wall.Seconds(), r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond))
	}
}
