package soak

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpguard/mcpguard/e2e/harness"
)

// Kind is a kind of call in the mix.
type Kind string

// Kinds of calls the soak sends.
const (
	Allowed  Kind = "allowed"  // echo, passes unchanged
	Denied   Kind = "denied"   // execute_sql DROP TABLE, refused by the default policy
	Masked   Kind = "masked"   // execute_sql SELECT, the result's emails redacted
	Approved Kind = "approved" // echo approve-N, held until the approver goroutine approves it
)

// Kinds lists every kind in report order.
var Kinds = []Kind{Allowed, Denied, Masked, Approved}

// codeDenied is extproc's JSON-RPC error code for a policy denial.
const codeDenied = -31003

// Outcomes that are not errors.
const (
	outcomeOK     = "ok"
	outcomeDenied = "denied_by_policy" // expected for Denied, an error for any other kind
)

// call is one call's arguments and its marker: the string that identifies it in storage.
type call struct {
	kind   Kind
	n      int64
	tool   string
	args   map[string]any
	marker string // a JSON string value as it appears in the recorded request, quotes included
}

func newCall(k Kind, n int64) call {
	c := call{kind: k, n: n}
	var arg string
	switch k {
	case Allowed:
		c.tool, arg = "echo", fmt.Sprintf("soak-allow-%d", n)
		c.args = map[string]any{"text": arg}
	case Approved:
		c.tool, arg = "echo", fmt.Sprintf("approve-%d", n)
		c.args = map[string]any{"text": arg}
	case Denied:
		c.tool, arg = "execute_sql", fmt.Sprintf("DROP TABLE soak_%d", n)
		c.args = map[string]any{"query": arg}
	case Masked:
		c.tool, arg = "execute_sql", fmt.Sprintf("SELECT id, email FROM users WHERE id = %d", n)
		c.args = map[string]any{"query": arg}
	}
	c.marker = `"` + arg + `"`
	return c
}

// sequence repeats the mix: weights expanded and interleaved so each kind is spread out.
func sequence(m Mix) []Kind {
	w := map[Kind]int{Allowed: m.Allowed, Denied: m.Denied, Masked: m.Masked, Approved: m.Approved}
	var out []Kind
	for left := true; left; {
		left = false
		for _, k := range Kinds {
			if w[k] > 0 {
				out = append(out, k)
				w[k]--
				left = true
			}
		}
	}
	return out
}

// outcome classifies a call's result: "ok", "denied_by_policy", or the kind of error.
func outcome(k Kind, c call, r *mcp.CallToolResult, err error) string {
	if err != nil {
		var re *jsonrpc.Error
		if errors.As(err, &re) {
			if re.Code == codeDenied {
				return outcomeDenied
			}
			return fmt.Sprintf("rpc %d", re.Code)
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return "timeout"
		}
		return "transport"
	}
	if r == nil || r.IsError {
		return "tool error"
	}
	var text string
	if len(r.Content) == 1 {
		if tc, ok := r.Content[0].(*mcp.TextContent); ok {
			text = tc.Text
		}
	}
	switch k {
	case Allowed, Approved:
		if text != c.args["text"] {
			return "wrong result"
		}
	case Masked:
		if !strings.Contains(text, "[REDACTED:EMAIL]") || strings.Contains(text, "@example.com") {
			return "not masked"
		}
	case Denied:
		return "not denied"
	}
	return outcomeOK
}

// expected says whether an outcome is what the kind should get.
func expected(k Kind, o string) bool {
	if k == Denied {
		return o == outcomeDenied
	}
	return o == outcomeOK
}

// done is a finished call.
type done struct {
	call    call
	outcome string
	latency time.Duration
	at      time.Duration // since the start of the run
}

// tally collects finished calls.
type tally struct {
	mu       sync.Mutex
	calls    []done
	missed   atomic.Int64 // ticks that found every worker busy
	conns    atomic.Int64 // sessions opened
	connErrs map[string]int
	first    map[string]string // the first error text of each unexpected outcome, for diagnosis
}

func (t *tally) add(d done, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls = append(t.calls, d)
	if err != nil && !expected(d.call.kind, d.outcome) {
		t.note(string(d.call.kind)+": "+d.outcome, err)
	}
}

// note keeps the first error text of an outcome; the caller holds mu.
func (t *tally) note(key string, err error) {
	if t.first == nil {
		t.first = map[string]string{}
	}
	if _, ok := t.first[key]; !ok {
		t.first[key] = err.Error()
	}
}

func (t *tally) connErr(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.connErrs == nil {
		t.connErrs = map[string]int{}
	}
	t.connErrs["connect: "+short(err)]++
	t.note("connect: "+short(err), err)
}

func (t *tally) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.calls)
}

func (t *tally) snapshot() []done {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.calls)
}

// short is an error without the parts that vary per call (addresses, ids), for counting.
func short(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

// drive sends calls at cfg.Rate to cfg.Workers sessions until ctx ends or d passes.
// Each worker owns its session; all goroutines have returned when drive returns.
func drive(ctx context.Context, cfg Config, d time.Duration, endpoints []string, token string, start time.Time, t *tally) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	jobs := make(chan call)
	var wg sync.WaitGroup
	for i := range cfg.Workers {
		ep := endpoints[i%len(endpoints)]
		wg.Go(func() { work(ctx, cfg, ep, token, jobs, start, t) })
	}
	seq := sequence(cfg.Mix)
	// Open loop on a schedule, not a ticker: call n is due at n/rate after the start, so a
	// stall of this goroutine is caught up instead of silently lowering the rate. A call
	// that finds every worker busy is not sent and counts as missed.
	t0 := time.Now()
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for n := int64(0); ; n++ {
		if wait := time.Until(t0.Add(time.Duration(n) * interval)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
			case <-timer.C:
			}
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case jobs <- newCall(seq[n%int64(len(seq))], n):
		default:
			t.missed.Add(1)
		}
	}
	close(jobs)
	wg.Wait()
}

// callTimeout bounds one call: above the approvals hold (25 s), so a deferral shows as its
// JSON-RPC error rather than as a client timeout.
const callTimeout = 40 * time.Second

func work(ctx context.Context, cfg Config, endpoint, token string, jobs <-chan call, start time.Time, t *tally) {
	hc := harness.HTTPClient(token)
	var s *mcp.ClientSession
	used := 0
	defer func() {
		if s != nil {
			_ = s.Close()
		}
	}()
	for c := range jobs {
		if s != nil && used >= cfg.Reconnect {
			_ = s.Close() // DELETE: the session's recording is closed and signed
			s, used = nil, 0
		}
		if s == nil {
			var err error
			s, err = harness.Connect(ctx, harness.ClientOptions{Endpoint: endpoint, Version: harness.V20250618, HTTP: hc})
			if err != nil {
				if ctx.Err() == nil {
					t.connErr(err)
				}
				s = nil
				continue
			}
			t.conns.Add(1)
		}
		used++
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
		t0 := time.Now()
		r, err := s.CallTool(cctx, &mcp.CallToolParams{Name: c.tool, Arguments: c.args})
		lat := time.Since(t0)
		cancel()
		t.add(done{call: c, outcome: outcome(c.kind, c, r, err), latency: lat, at: t0.Sub(start)}, err)
	}
}
