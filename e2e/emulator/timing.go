package emulator

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// TimingHeader is the response header (and, when the body streams, trailer) that carries a request's
// processor timings when Options.TimingHeader is on.
const TimingHeader = "x-emulator-timing"

// timing is what one HTTP request spent waiting on its processors, as Envoy records it per request:
// ext_authz keeps the Check latency (dynamic metadata ext_authz_duration, in ms) and ext_proc keeps,
// per direction, the latency of each header/trailer call and the count/total/max of body calls
// (ExtProcLoggingInfo, exposed as filter state). Each ext_proc round trip runs from the send of a
// message to its answer; answers come in send order per direction, so pipelined STREAMED chunks are
// each measured from their own send. A message that never gets its answer (immediate response,
// error, timeout, reset) counts until processing ended.
type timing struct {
	mu       sync.Mutex
	authz    time.Duration
	authzN   int
	proc     [2][3]phaseTiming // [dir][kind]
	upstream time.Duration     // from the upstream request to its response headers
	upN      int
}

type phaseTiming struct {
	sum, max time.Duration
	n        int
}

func (t *timing) addAuthz(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.authz += d
	t.authzN++
}

func (t *timing) addProc(d dir, k kind, el time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := &t.proc[d][k]
	p.sum += el
	p.n++
	p.max = max(p.max, el)
}

func (t *timing) addUpstream(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.upstream += d
	t.upN++
}

// totals is the ext_proc sum and count over all phases.
func (t *timing) totals() (time.Duration, int) {
	var sum time.Duration
	n := 0
	for _, d := range t.proc {
		for _, p := range d {
			sum += p.sum
			n += p.n
		}
	}
	return sum, n
}

// header renders the debug header: authz=0.120ms;extproc=0.300ms;n=4;upstream=1.002ms. Upstream is
// left out when the request never reached it.
func (t *timing) header() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	sum, n := t.totals()
	s := fmt.Sprintf("authz=%s;extproc=%s;n=%d", ms(t.authz), ms(sum), n)
	if t.upN > 0 {
		s += ";upstream=" + ms(t.upstream)
	}
	return s
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond))
}

var phaseNames = [2][3]string{
	{"request_headers", "request_body", "request_trailers"},
	{"response_headers", "response_body", "response_trailers"},
}

// attrs are the access log fields: milliseconds as numbers, counts, and per phase sum/count/max.
func (t *timing) attrs() []any {
	t.mu.Lock()
	defer t.mu.Unlock()
	sum, n := t.totals()
	out := []any{
		slog.Float64("ext_authz_ms", msf(t.authz)), slog.Int("ext_authz_calls", t.authzN),
		slog.Float64("ext_proc_ms", msf(sum)), slog.Int("ext_proc_calls", n),
	}
	if t.upN > 0 {
		out = append(out, slog.Float64("upstream_ms", msf(t.upstream)))
	}
	var phases []any
	for d, ks := range t.proc {
		for k, p := range ks {
			if p.n == 0 {
				continue
			}
			phases = append(phases, slog.Group(phaseNames[d][k],
				slog.Float64("ms", msf(p.sum)), slog.Int("n", p.n), slog.Float64("max_ms", msf(p.max))))
		}
	}
	if len(phases) > 0 {
		out = append(out, slog.Group("ext_proc", phases...))
	}
	return out
}

func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// setTimingHeader adds the debug header to h when the option is on.
func (x *exchange) setTimingHeader(h http.Header) {
	if x.e.o.TimingHeader {
		h.Set(TimingHeader, x.timing.header())
	}
}

// timingTrailer sends the final timings as a trailer after a body that went out while ext_proc was
// still being called (STREAMED responses). HTTP/1.1 carries it only on chunked responses.
func (x *exchange) timingTrailer() {
	if !x.e.o.TimingHeader || !x.started || x.failed {
		return
	}
	x.w.Header().Set(http.TrailerPrefix+TimingHeader, x.timing.header())
}

// noteSentLocked records when a message that expects an answer went out in direction d; p.mu is held.
func (p *proc) noteSentLocked(d dir) {
	p.d[d].sentAt = append(p.d[d].sentAt, time.Now())
}

// noteAnsweredLocked closes the oldest open round trip of direction d; p.mu is held.
func (p *proc) noteAnsweredLocked(d dir, k kind) {
	ds := p.d[d]
	if len(ds.sentAt) == 0 {
		return
	}
	p.x.timing.addProc(d, k, time.Since(ds.sentAt[0]))
	ds.sentAt = ds.sentAt[1:]
}

// noteEndedLocked counts the wait of every message still unanswered when processing ends; p.mu is held.
func (p *proc) noteEndedLocked() {
	for d, ds := range p.d {
		for i, at := range ds.sentAt {
			if i < len(ds.out) {
				p.x.timing.addProc(dir(d), ds.out[i], time.Since(at))
			}
		}
		ds.sentAt = nil
	}
}

// accessLog writes one line per request at Info, like the bootstrap's access_log: no bodies, no
// header values, and the path without its query (which can carry credentials).
func (x *exchange) accessLog() {
	ctx := x.r.Context()
	if !x.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	path, _, _ := strings.Cut(x.path, "?")
	if x.status == 0 && x.details == "" && ctx.Err() != nil {
		x.details = "downstream_remote_disconnect"
	}
	attrs := []any{
		slog.String("method", x.method), slog.String("path", path), slog.String("protocol", x.protocol),
		slog.Int("status", x.status), slog.String("details", x.details),
		slog.Float64("duration_ms", msf(time.Since(x.start))),
	}
	attrs = append(attrs, x.timing.attrs()...)
	x.log.InfoContext(ctx, "access", attrs...)
}
