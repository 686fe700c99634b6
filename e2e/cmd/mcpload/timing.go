package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcpguard/mcpguard/e2e/emulator"
)

// procTiming is one response's x-emulator-timing: what the request waited on mcpguard (ext_authz
// Check and ext_proc round trips) and on the upstream, as the emulator measured it.
type procTiming struct {
	authz, extproc time.Duration
	n              int // ext_proc round trips
	upstream       time.Duration
	hasUpstream    bool
}

// guard is mcpguard's own time for the request.
func (p procTiming) guard() time.Duration { return p.authz + p.extproc }

const (
	maxTimingLen = 256
	maxTimingMS  = 24 * 3600 * 1000 // a day: anything longer is not a measurement
)

// parseTiming reads "authz=0.120ms;extproc=0.300ms;n=4[;upstream=1.002ms]". The value comes from the
// network: every field must be known, present once, finite and in range, or the whole value is refused.
func parseTiming(v string) (procTiming, error) {
	var p procTiming
	if len(v) > maxTimingLen {
		return p, errors.New("timing: too long")
	}
	seen := map[string]bool{}
	for kv := range strings.SplitSeq(v, ";") {
		k, val, ok := strings.Cut(kv, "=")
		if !ok {
			return p, fmt.Errorf("timing: field %q has no value", kv)
		}
		if seen[k] {
			return p, fmt.Errorf("timing: %s twice", k)
		}
		seen[k] = true
		switch k {
		case "n":
			n, err := strconv.ParseUint(val, 10, 16)
			if err != nil {
				return p, fmt.Errorf("timing: n: %w", err)
			}
			p.n = int(n)
		case "authz", "extproc", "upstream":
			d, err := parseMS(val)
			if err != nil {
				return p, fmt.Errorf("timing: %s: %w", k, err)
			}
			switch k {
			case "authz":
				p.authz = d
			case "extproc":
				p.extproc = d
			default:
				p.upstream, p.hasUpstream = d, true
			}
		default:
			return p, fmt.Errorf("timing: unknown field %q", k)
		}
	}
	for _, k := range []string{"authz", "extproc", "n"} {
		if !seen[k] {
			return p, fmt.Errorf("timing: %s missing", k)
		}
	}
	return p, nil
}

func parseMS(s string) (time.Duration, error) {
	num, ok := strings.CutSuffix(s, "ms")
	if !ok {
		return 0, fmt.Errorf("%q: not in ms", s)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	if math.IsNaN(f) || f < 0 || f > maxTimingMS {
		return 0, fmt.Errorf("%q: out of range", s)
	}
	return time.Duration(f * float64(time.Millisecond)), nil
}

// callTiming collects the timing of the one HTTP exchange a tools/call makes. The final value can
// come as a trailer (STREAMED responses), so it is delivered when the body ends, not with the headers.
type callTiming struct {
	once sync.Once
	ch   chan timingResult
}

type timingResult struct {
	t   procTiming
	ok  bool  // the response carried a timing
	err error // it carried one that did not parse
}

func newCallTiming() *callTiming { return &callTiming{ch: make(chan timingResult, 1)} }

func (c *callTiming) deliver(r timingResult) { c.once.Do(func() { c.ch <- r }) }

// wait returns the delivered timing, or nothing after limit (the body was never finished).
func (c *callTiming) wait(ctx context.Context, limit time.Duration) timingResult {
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case r := <-c.ch:
		return r
	case <-t.C:
	case <-ctx.Done():
	}
	return timingResult{}
}

type timingKey struct{}

func withCallTiming(ctx context.Context, c *callTiming) context.Context {
	return context.WithValue(ctx, timingKey{}, c)
}

// timingTransport reads x-emulator-timing from responses to requests whose context carries a callTiming.
type timingTransport struct{ next http.RoundTripper }

func (t timingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c, _ := r.Context().Value(timingKey{}).(*callTiming)
	resp, err := t.next.RoundTrip(r)
	if c == nil {
		return resp, err
	}
	if err != nil {
		c.deliver(timingResult{})
		return nil, err
	}
	resp.Body = &timingBody{ReadCloser: resp.Body, resp: resp, c: c}
	return resp, nil
}

// timingBody delivers the timing at the end of the body: the trailer if there is one, else the header.
type timingBody struct {
	io.ReadCloser
	resp *http.Response
	c    *callTiming
}

func (b *timingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.finish(true)
	}
	return n, err
}

func (b *timingBody) Close() error {
	b.finish(false)
	return b.ReadCloser.Close()
}

func (b *timingBody) finish(eof bool) {
	v := b.resp.Header.Get(emulator.TimingHeader)
	if eof {
		if tr := b.resp.Trailer.Get(emulator.TimingHeader); tr != "" {
			v = tr
		}
	}
	if v == "" {
		b.c.deliver(timingResult{})
		return
	}
	p, err := parseTiming(v)
	b.c.deliver(timingResult{t: p, ok: err == nil, err: err})
}
