package app

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/mcp"
	"github.com/mcpguard/mcpguard/policy"
	"github.com/mcpguard/mcpguard/recordings"
)

const policyReplayUsage = `Usage:
  mcpguard policy replay DRAFT.yaml [--since 7d] [--until T] [--identity ID] [--tool NAME] [--config FILE]
      re-decide the recorded requests with a draft policy and report every decision that
      would change, per rule, per identity, with request ids
`

// replayChange is one recorded request the draft decides differently.
type replayChange struct {
	time                time.Time
	session, requestID  string
	identity, tool      string
	method              string
	oldAction, oldRule  string
	newAction, newRule  string
	unrecordedDecisions bool
}

func policyReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("policy replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, policyReplayUsage) }
	configPath := fs.String("config", "", "config file (where the recordings are)")
	since := fs.String("since", "7d", "recorded sessions started at or after (7d, 36h, YYYY-MM-DD, RFC 3339)")
	until := fs.String("until", "", "recorded sessions started before")
	var q recordings.Query
	fs.StringVar(&q.Identity, "identity", "", "only this subject or client id")
	fs.StringVar(&q.Tool, "tool", "", "only sessions that called this tool")
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprint(stdout, policyReplayUsage)
		return nil
	}
	if len(args) == 0 || len(args[0]) > 0 && args[0][0] == '-' {
		fmt.Fprint(stderr, policyReplayUsage)
		return ErrUsage
	}
	draft := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return ErrUsage
	}
	if fs.NArg() != 0 {
		fmt.Fprint(stderr, policyReplayUsage)
		return ErrUsage
	}
	now := time.Now()
	var err error
	if q.Since, err = recordings.ParseTime(*since, now); err != nil {
		return fmt.Errorf("--since: %w", err)
	}
	if *until != "" {
		if q.Until, err = recordings.ParseTime(*until, now); err != nil {
			return fmt.Errorf("--until: %w", err)
		}
	}
	set, err := loadPolicy(draft, stderr)
	if err != nil {
		return err
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		return fmt.Errorf("load config: %w", err)
	}
	sink, err := openReadSink(recordingsConfig(cfg))
	if err != nil {
		return err
	}
	a := recordings.NewArchive(sink, cfg.Recordings.Sink.Prefix)
	start := time.Now()
	found, err := a.Search(ctx, q)
	if err != nil {
		return err
	}
	for _, n := range found.Notes {
		fmt.Fprintln(stderr, "note: "+n)
	}
	var (
		mu      sync.Mutex
		changes []replayChange
		decided int
		skipped int
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, s := range found.Sessions {
		g.Go(func() error {
			evs, err := a.Events(gctx, s)
			if err != nil {
				return fmt.Errorf("session %s: %w", s.Name, err)
			}
			ch, n, sk := replaySession(set, evs)
			mu.Lock()
			changes, decided, skipped = append(changes, ch...), decided+n, skipped+sk
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	took := time.Since(start)
	slices.SortFunc(changes, func(x, y replayChange) int {
		return cmp.Or(x.time.Compare(y.time), cmp.Compare(x.requestID, y.requestID))
	})
	printReplay(stdout, draft, set, changes, decided, skipped, len(found.Sessions), took)
	return nil
}

// replaySession decides the session's recorded requests in order with set and returns the
// decisions that differ from the recorded ones.
func replaySession(set *policy.Set, evs []recordings.Event) (changes []replayChange, decided, skipped int) {
	// Recorded decisions per request id, in order (a batch has one per message); the last
	// decision of a message re-decided while held wins, so keep them as a list per id.
	recorded := map[string][]recordings.Note{}
	for _, e := range evs {
		if e.Kind == recordings.KindNote && e.Note != nil && e.Note.Stage == "policy" && e.Note.Kind == "decision" {
			if obs, _ := e.Note.Attrs["observe"].(bool); obs {
				continue
			}
			if re, _ := e.Note.Attrs["redecided"].(bool); re && len(recorded[e.RequestID]) > 0 {
				recorded[e.RequestID][len(recorded[e.RequestID])-1] = *e.Note
				continue
			}
			recorded[e.RequestID] = append(recorded[e.RequestID], *e.Note)
		}
	}
	calls := int64(0)
	toolCalls := map[string]int64{}
	pos := map[string]int{}
	for _, e := range evs {
		if e.Kind != recordings.KindRequest || len(e.Message) == 0 {
			continue
		}
		body, err := mcp.Parse(e.Message)
		if err != nil || body.Batch || len(body.Messages) != 1 {
			skipped++
			continue
		}
		m := &body.Messages[0]
		if m.Kind != mcp.KindRequest && m.Kind != mcp.KindNotification {
			continue
		}
		in := policy.Input{Msg: m, Now: e.Time, Session: policy.Session{ID: e.MCPSessionID}}
		if id := e.Identity; id != nil {
			in.Identity = policy.Identity{Subject: id.Subject, ClientID: id.ClientID, Issuer: id.Issuer, Groups: id.Groups}
		}
		if m.Method == "tools/call" {
			calls++
			toolCalls[m.Tool]++
			in.Session.Calls, in.Session.ToolCalls = calls, toolCalls[m.Tool]
		}
		d := set.Decide(in)
		decided++
		oldAction, oldRule, unrecorded := string(policy.Allow), "", true
		if list := recorded[e.RequestID]; pos[e.RequestID] < len(list) {
			n := list[pos[e.RequestID]]
			oldAction, _ = n.Attrs["action"].(string)
			oldRule, _ = n.Attrs["rule"].(string)
			unrecorded = false
		}
		pos[e.RequestID]++
		newRule := ruleName(d.Rule)
		if d.DryRun {
			d.Action = policy.Allow // an observe-mode draft lets everything through
		}
		if string(d.Action) == oldAction {
			continue // the same decision, by whichever rule, changes nothing for the caller
		}
		who := ""
		if e.Identity != nil {
			who = e.Identity.Subject
		}
		changes = append(changes, replayChange{
			time: e.Time, session: e.Session, requestID: e.RequestID, identity: who, tool: m.Tool, method: m.Method,
			oldAction: oldAction, oldRule: oldRule, newAction: string(d.Action), newRule: newRule, unrecordedDecisions: unrecorded,
		})
	}
	return changes, decided, skipped
}

func ruleName(r string) string {
	if r == "" {
		return "default"
	}
	return r
}

func printReplay(w io.Writer, draft string, set *policy.Set, changes []replayChange, decided, skipped, sessions int, took time.Duration) {
	rate := float64(decided) / max(took.Seconds(), 1e-9)
	fmt.Fprintf(w, "re-decided %d recorded request(s) of %d session(s) with %s (version %s) in %s: %.0f requests/s\n",
		decided, sessions, draft, set.Version(), took.Round(time.Millisecond), rate)
	if skipped > 0 {
		fmt.Fprintf(w, "%d recorded request(s) could not be parsed and were skipped\n", skipped)
	}
	fmt.Fprintf(w, "%d decision(s) would change\n", len(changes))
	if len(changes) == 0 {
		return
	}
	type count struct {
		key string
		n   int
		ids []string
	}
	group := func(key func(c replayChange) string) []count {
		by := map[string]*count{}
		for _, c := range changes {
			k := key(c)
			if by[k] == nil {
				by[k] = &count{key: k}
			}
			by[k].n++
			by[k].ids = append(by[k].ids, c.requestID)
		}
		out := make([]count, 0, len(by))
		for _, c := range by {
			out = append(out, *c)
		}
		slices.SortFunc(out, func(x, y count) int { return cmp.Or(cmp.Compare(y.n, x.n), cmp.Compare(x.key, y.key)) })
		return out
	}
	list := func(ids []string) string {
		if len(ids) > 10 {
			return fmt.Sprintf("%v … (%d more)", ids[:10], len(ids)-10)
		}
		return fmt.Sprint(ids)
	}
	fmt.Fprintln(w, "\nBY RULE (draft rule: change)")
	for _, c := range group(func(c replayChange) string {
		return fmt.Sprintf("%s: %s → %s", c.newRule, c.oldAction, c.newAction)
	}) {
		fmt.Fprintf(w, "  %-60s %6d  %s\n", c.key, c.n, list(c.ids))
	}
	fmt.Fprintln(w, "\nBY IDENTITY")
	for _, c := range group(func(c replayChange) string { return orDash(c.identity) }) {
		fmt.Fprintf(w, "  %-60s %6d  %s\n", c.key, c.n, list(c.ids))
	}
	fmt.Fprintln(w, "\nCHANGES")
	for _, c := range changes {
		was := c.oldAction + " (" + orDash(c.oldRule) + ")"
		if c.unrecordedDecisions {
			was = "no decision recorded"
		}
		fmt.Fprintf(w, "  %s  %s  session %s  %s  %s %s: %s → %s (%s)\n", c.time.UTC().Format("2006-01-02 15:04:05.000"),
			c.requestID, c.session, orDash(c.identity), c.method, c.tool, was, c.newAction, c.newRule)
	}
}
