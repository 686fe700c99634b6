package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/mcpguard/mcpguard/recordings"
)

// Sample is mcpguard's resource use at one moment of the run.
type Sample struct {
	At         time.Duration // since the load started
	RSS        int64         // VmRSS, bytes
	RSSAnon    int64         // RssAnon, bytes
	Heap       int64         // go_memstats_heap_inuse_bytes
	Goroutines int           // go_goroutines
	CPU        time.Duration // user+system since the process started
	Calls      int           // calls finished so far
}

// Growth compares the median of the last third of the samples after warm-up with the
// median of the first third.
type Growth struct {
	Name        string
	First, Last float64
	Limit       float64 // Last may not exceed it
	Samples     int
}

// OK reports whether the growth is within tolerance.
func (g Growth) OK() bool { return g.Samples >= 6 && g.Last <= g.Limit }

// growth measures one series; rel and abs are the tolerance.
func growth(name string, vals []float64, rel, abs float64) Growth {
	g := Growth{Name: name, Samples: len(vals)}
	if len(vals) < 6 {
		return g
	}
	third := len(vals) / 3
	g.First = median(vals[:third])
	g.Last = median(vals[len(vals)-third:])
	g.Limit = g.First*(1+rel) + abs
	return g
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// growths checks goroutines and RSS over the samples taken after warm-up.
func growths(samples []Sample, warm time.Duration, t Tolerance) []Growth {
	var gor, rss []float64
	for _, s := range samples {
		if s.At >= warm {
			gor = append(gor, float64(s.Goroutines))
			rss = append(rss, float64(s.RSS))
		}
	}
	return []Growth{
		growth("goroutines", gor, t.GoroutinesRelative, float64(t.Goroutines)),
		growth("rss", rss, t.RSSRelative, float64(t.RSSBytes)),
	}
}

// Stored is what was found in the recordings after shutdown.
type Stored struct {
	Sessions  int          // sessions in storage
	Verified  int          // sessions `mcpguard recordings verify --all` reported OK
	VerifyErr string       // its failure, with its output
	Expected  int          // exchanges that must be in storage (every call that got its expected answer)
	Found     int          // of those, found with their request and their answer
	Missing   map[Kind]int // by kind
	Unmasked  int          // masked calls whose recorded response holds an unmasked value
}

// verifyAll runs `mcpguard recordings verify --all` against the run's configuration.
func verifyAll(ctx context.Context, bin, config string) (int, string) {
	cmd := exec.CommandContext(ctx, bin, "recordings", "verify", "--all", "--config", config)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	ok := 0
	for line := range strings.Lines(out.String()) {
		// A replica's verdict ("OK   replica NAME epoch …") is not a session's.
		if rest, found := strings.CutPrefix(line, "OK "); found && !strings.HasPrefix(strings.TrimLeft(rest, " "), "replica ") {
			ok++
		}
	}
	if err != nil {
		tail := out.String()
		if len(tail) > 2000 {
			tail = "…" + tail[len(tail)-2000:]
		}
		return ok, fmt.Sprintf("%v\n%s", err, tail)
	}
	return ok, ""
}

// answer is what storage holds for one request id.
type answer struct {
	response, denial, masked, leaked bool
}

// scanStorage reads every recorded event under dir and checks that each call that got its
// expected answer is there: its request (found by its unique argument) and, under the same
// request id, a response (allowed, masked, approved) or a refusal (denied).
func scanStorage(ctx context.Context, dir string, calls []done) (Stored, error) {
	st := Stored{Missing: map[Kind]int{}}
	sink, err := recordings.NewDir(dir)
	if err != nil {
		return st, fmt.Errorf("open recordings: %w", err)
	}
	a := recordings.NewArchive(sink, "")
	sessions, err := a.Sessions(ctx)
	if err != nil {
		return st, fmt.Errorf("list recordings: %w", err)
	}
	st.Sessions = len(sessions)
	byMarker := map[string][]string{} // marker → request ids
	answers := map[string]*answer{}
	for _, s := range sessions {
		evs, err := a.Events(ctx, s)
		if err != nil {
			return st, fmt.Errorf("read session %s: %w", s.Name, err)
		}
		for _, ev := range evs {
			switch ev.Kind {
			case recordings.KindRequest:
				if m := argMarker(ev.Message); m != "" {
					byMarker[m] = append(byMarker[m], ev.RequestID)
				}
			case recordings.KindResponse, recordings.KindDenial:
				an := answers[ev.RequestID]
				if an == nil {
					an = &answer{}
					answers[ev.RequestID] = an
				}
				if ev.Kind == recordings.KindDenial {
					an.denial = true
					continue
				}
				an.response = true
				an.masked = an.masked || bytes.Contains(ev.Message, []byte("[REDACTED:EMAIL]"))
				an.leaked = an.leaked || bytes.Contains(ev.Message, []byte("@example.com"))
			default:
				// session boundaries and notes say nothing about one call's answer
			}
		}
	}
	for _, d := range calls {
		if !expected(d.call.kind, d.outcome) {
			continue
		}
		st.Expected++
		if !found(d.call, byMarker[d.call.marker], answers) {
			st.Missing[d.call.kind]++
			continue
		}
		st.Found++
		if d.call.kind == Masked {
			an := answers[byMarker[d.call.marker][0]]
			if !an.masked || an.leaked {
				st.Unmasked++
			}
		}
	}
	return st, nil
}

func found(c call, ids []string, answers map[string]*answer) bool {
	if len(ids) != 1 || ids[0] == "" {
		return false // absent, or recorded twice
	}
	an := answers[ids[0]]
	if an == nil {
		return false
	}
	if c.kind == Denied {
		return an.denial && !an.response
	}
	return an.response && !an.denial
}

// argMarker is the quoted text or query argument of a recorded tools/call request.
func argMarker(msg json.RawMessage) string {
	var m struct {
		Method string `json:"method"`
		Params struct {
			Arguments map[string]any `json:"arguments"`
		} `json:"params"`
	}
	if json.Unmarshal(msg, &m) != nil || m.Method != "tools/call" {
		return ""
	}
	for _, k := range []string{"text", "query"} {
		if s, ok := m.Params.Arguments[k].(string); ok {
			return `"` + s + `"`
		}
	}
	return ""
}
