package soak

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// KindStats are the calls of one kind.
type KindStats struct {
	Calls    int
	Outcomes map[string]int
	P50, P99 time.Duration
}

// Report is the outcome of a soak run.
type Report struct {
	Config   Config
	Started  time.Time
	Elapsed  time.Duration
	Requests int
	Missed   int64 // ticks with every worker busy: the rate was not held
	Sessions int64 // MCP sessions opened
	ByKind   map[Kind]KindStats
	// Errors counts what no call should have got, by kind and outcome ("masked: transport"),
	// plus connection and approver failures. Expected counts the refusals that were meant.
	Errors   map[string]int
	Expected map[string]int
	// FirstErr is the first error text of each kind of unexpected error.
	FirstErr map[string]string
	P50, P99 time.Duration // every call but the approved ones (they wait for the approver)

	Approved     int // requests the approver approved
	Listings     int // pending listings the approver made (every Config.ApproverPoll)
	ApproverErrs map[string]int
	Samples      []Sample
	SampleErrs   []string
	Growth       []Growth
	CPU          time.Duration // mcpguard's CPU during the load
	Storage      Stored
	StopErr      error // mcpguard's exit after SIGTERM
}

func (r *Report) tallied(t *tally) {
	calls := t.snapshot()
	r.Requests = len(calls)
	r.Missed = t.missed.Load()
	r.Sessions = t.conns.Load()
	r.ByKind = map[Kind]KindStats{}
	r.Errors = map[string]int{}
	r.Expected = map[string]int{}
	lat := map[Kind][]time.Duration{}
	var all []time.Duration
	for _, d := range calls {
		k := r.ByKind[d.call.kind]
		if k.Outcomes == nil {
			k.Outcomes = map[string]int{}
		}
		k.Calls++
		k.Outcomes[d.outcome]++
		r.ByKind[d.call.kind] = k
		lat[d.call.kind] = append(lat[d.call.kind], d.latency)
		if d.call.kind != Approved {
			all = append(all, d.latency)
		}
		switch {
		case !expected(d.call.kind, d.outcome):
			r.Errors[string(d.call.kind)+": "+d.outcome]++
		case d.outcome != outcomeOK:
			r.Expected[string(d.call.kind)+": "+d.outcome]++
		}
	}
	for k, l := range lat {
		s := r.ByKind[k]
		s.P50, s.P99 = percentile(l, 50), percentile(l, 99)
		r.ByKind[k] = s
	}
	r.P50, r.P99 = percentile(all, 50), percentile(all, 99)
	t.mu.Lock()
	maps.Copy(r.Errors, t.connErrs)
	r.FirstErr = maps.Clone(t.first)
	t.mu.Unlock()
}

// Err joins every failed check; nil means the run passed.
func (r *Report) Err() error {
	var errs []error
	if r.Requests == 0 {
		errs = append(errs, errNoCalls)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
		errs = append(errs, fmt.Errorf("unexpected %s: %d", k, r.Errors[k]))
	}
	for _, k := range slices.Sorted(maps.Keys(r.ApproverErrs)) {
		errs = append(errs, fmt.Errorf("%s: %d", k, r.ApproverErrs[k]))
	}
	if n := r.ByKind[Approved].Outcomes[outcomeOK]; r.Approved != n {
		errs = append(errs, fmt.Errorf("approver approved %d requests, %d approved calls passed", r.Approved, n))
	}
	for _, g := range r.Growth {
		switch {
		case g.Samples < 6:
			errs = append(errs, fmt.Errorf("%s: %d samples after warm-up, need 6", g.Name, g.Samples))
		case !g.OK():
			errs = append(errs, fmt.Errorf("%s grew: median %s → %s, limit %s", g.Name, g.fmt(g.First), g.fmt(g.Last), g.fmt(g.Limit)))
		}
	}
	for _, e := range r.SampleErrs {
		errs = append(errs, fmt.Errorf("sample: %s", e))
	}
	st := r.Storage
	if st.VerifyErr != "" {
		errs = append(errs, fmt.Errorf("recordings verify --all: %s", st.VerifyErr))
	}
	if st.Verified != st.Sessions || st.Sessions == 0 {
		errs = append(errs, fmt.Errorf("recordings: %d of %d sessions verified", st.Verified, st.Sessions))
	}
	for _, k := range Kinds {
		if n := st.Missing[k]; n > 0 {
			errs = append(errs, fmt.Errorf("recordings: %d %s exchanges missing", n, k))
		}
	}
	if st.Unmasked > 0 {
		errs = append(errs, fmt.Errorf("recordings: %d masked responses recorded unmasked", st.Unmasked))
	}
	if r.StopErr != nil {
		errs = append(errs, fmt.Errorf("shutdown: %w", r.StopErr))
	}
	return errors.Join(errs...)
}

func (g Growth) fmt(v float64) string {
	if g.Name == "rss" {
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	}
	return fmt.Sprintf("%.0f", v)
}

// Print writes the report for a person: totals, outcomes by kind, the timeline and checks.
func (r *Report) Print(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "soak: %s at %.0f calls/s target, %d sessions (new session every %d calls), mix allowed:denied:masked:approved %d:%d:%d:%d\n",
		r.Elapsed.Round(time.Second), c.Rate, c.Workers, c.Reconnect, c.Mix.Allowed, c.Mix.Denied, c.Mix.Masked, c.Mix.Approved)
	fmt.Fprintf(w, "requests %d (%.1f/s), missed ticks %d, sessions opened %d, approvals granted %d, mcpguard CPU %s (%.1f ms/request)\n",
		r.Requests, float64(r.Requests)/r.Elapsed.Seconds(), r.Missed, r.Sessions, r.Approved, r.CPU.Round(10*time.Millisecond),
		float64(r.CPU.Microseconds())/1000/float64(max(r.Requests, 1)))
	fmt.Fprintf(w, "besides the calls, mcpguard served %d approval listings (every %s) and %d /metrics scrapes (every %s)\n",
		r.Listings, c.ApproverPoll, len(r.Samples), c.Sample)
	fmt.Fprintf(w, "latency p50 %s p99 %s (all but approved)\n", r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond))
	fmt.Fprintf(w, "%-9s %8s %10s %10s  %s\n", "kind", "calls", "p50", "p99", "outcomes")
	for _, k := range Kinds {
		s := r.ByKind[k]
		fmt.Fprintf(w, "%-9s %8d %10s %10s  %s\n", k, s.Calls, s.P50.Round(10*time.Microsecond), s.P99.Round(10*time.Microsecond), counts(s.Outcomes))
	}
	fmt.Fprintf(w, "expected refusals: %s\n", orNone(counts(r.Expected)))
	fmt.Fprintf(w, "unexpected errors: %s\n", orNone(counts(r.Errors)))
	for _, k := range slices.Sorted(maps.Keys(r.FirstErr)) {
		fmt.Fprintf(w, "  first %s: %s\n", k, r.FirstErr[k])
	}
	if len(r.ApproverErrs) > 0 {
		fmt.Fprintf(w, "approver errors: %s\n", counts(r.ApproverErrs))
	}
	fmt.Fprintf(w, "%9s %9s %10s %10s %11s %10s %10s\n", "time", "calls", "rss MiB", "anon MiB", "heap MiB", "goroutines", "cpu s")
	for _, s := range thin(r.Samples, 24) {
		fmt.Fprintf(w, "%9s %9d %10.1f %10.1f %11.1f %10d %10.2f\n", s.At.Round(time.Second), s.Calls, mib(s.RSS), mib(s.RSSAnon), mib(s.Heap), s.Goroutines, s.CPU.Seconds())
	}
	for _, g := range r.Growth {
		verdict := "ok"
		if !g.OK() {
			verdict = "GREW"
		}
		fmt.Fprintf(w, "growth %-10s first third %s, last third %s, limit %s (%d samples after %s warm-up): %s\n",
			g.Name, g.fmt(g.First), g.fmt(g.Last), g.fmt(g.Limit), g.Samples, c.WarmUp, verdict)
	}
	st := r.Storage
	fmt.Fprintf(w, "recordings: %d sessions, %d verified; %d/%d exchanges found", st.Sessions, st.Verified, st.Found, st.Expected)
	if st.Unmasked > 0 {
		fmt.Fprintf(w, ", %d unmasked", st.Unmasked)
	}
	fmt.Fprintln(w)
	if err := r.Err(); err != nil {
		fmt.Fprintf(w, "FAIL\n%v\n", err)
		return
	}
	fmt.Fprintln(w, "PASS")
}

func counts(m map[string]int) string {
	keys := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		if c := cmp.Compare(m[b], m[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// thin keeps at most n samples, evenly spaced, always the first and the last.
func thin(s []Sample, n int) []Sample {
	if len(s) <= n {
		return s
	}
	out := make([]Sample, 0, n)
	for i := range n {
		out = append(out, s[i*(len(s)-1)/(n-1)])
	}
	return out
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
