package approvals

import (
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/identity"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type recorder struct {
	mu      sync.Mutex
	got     []Request // requested
	decided []Request
}

func (r *recorder) Notify(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.Type == EventRequested {
		r.got = append(r.got, e.Request)
	} else {
		r.decided = append(r.decided, e.Request)
	}
}

func newTestService(t *testing.T, mod func(*Config)) (*Service, *clock, *recorder, *prometheus.Registry) {
	t.Helper()
	st, err := OpenFile(filepath.Join(t.TempDir(), "a.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	cfg := DefaultConfig()
	cfg.Approvers = []string{"dba"}
	if mod != nil {
		mod(&cfg)
	}
	c := &clock{t: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
	n := &recorder{}
	reg := prometheus.NewRegistry()
	s, err := New(cfg, st, nil, reg, WithNotifier(n), WithClock(c.now))
	require.NoError(t, err)
	return s, c, n, reg
}

var (
	agent    = identity.Identity{Subject: "agent-1", Issuer: "https://idp.test", Groups: []string{"agents"}}
	dba      = identity.Identity{Subject: "alice", Issuer: "https://idp.test", Groups: []string{"dba"}}
	outsider = identity.Identity{Subject: "bob", Issuer: "https://idp.test", Groups: []string{"dev"}}
)

func sqlCall(args string) Call {
	return Call{Requester: agent, Tool: "execute_sql", Arguments: json.RawMessage(args), Rule: "sql-writes", Reason: "ddl"}
}

func events(t *testing.T, reg *prometheus.Registry, ev string) float64 {
	t.Helper()
	mf, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range mf {
		if f.GetName() != "mcpguard_approvals_events_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			if m.GetLabel()[0].GetValue() == ev {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestOnceGrant(t *testing.T) {
	s, _, n, reg := newTestService(t, nil)
	ctx := t.Context()
	res, err := s.Begin(ctx, sqlCall(`{"query":"drop table t","db":"main"}`))
	require.NoError(t, err)
	require.Equal(t, Waiting, res.Outcome)
	require.True(t, res.Created)
	require.Len(t, n.got, 1)

	again, err := s.Begin(ctx, sqlCall(` { "db" : "main", "query":"drop table t" } `))
	require.NoError(t, err)
	require.Equal(t, res.Request.ID, again.Request.ID, "same canonical call reuses the pending request")
	require.False(t, again.Created)

	_, err = s.Decide(ctx, res.Request.ID, dba, true, "ok")
	require.NoError(t, err)
	_, err = s.Decide(ctx, res.Request.ID, dba, true, "twice")
	require.ErrorIs(t, err, ErrConflict)

	other, err := s.Begin(ctx, sqlCall(`{"query":"drop table u","db":"main"}`))
	require.NoError(t, err)
	require.Equal(t, Waiting, other.Outcome, "different arguments are not covered")

	got, err := s.Begin(ctx, sqlCall(`{"db":"main","query":"drop table t"}`))
	require.NoError(t, err)
	require.Equal(t, Granted, got.Outcome)
	require.Equal(t, Consumed, got.Request.State)

	next, err := s.Begin(ctx, sqlCall(`{"db":"main","query":"drop table t"}`))
	require.NoError(t, err)
	require.Equal(t, Waiting, next.Outcome, "a consumed grant never passes again")
	require.NotEqual(t, res.Request.ID, next.Request.ID)
	require.InDelta(t, 1.0, events(t, reg, evConsumed), 1e-9)
	require.InDelta(t, 3.0, events(t, reg, evRequested), 1e-9)
}

// TestOnceGrantBoundToParams: a one-time grant covers the call's whole params, not only the
// arguments: the same arguments with any member added or changed anywhere in params open a new
// request, while key order, spacing and the per-call progress token do not matter.
func TestOnceGrantBoundToParams(t *testing.T) {
	s, _, _, _ := newTestService(t, nil)
	ctx := t.Context()
	args := `{"query":"drop table t"}`
	withParams := func(params string) Call {
		c := sqlCall(args)
		c.Params = json.RawMessage(params)
		return c
	}
	res, err := s.Begin(ctx, withParams(`{"name":"execute_sql","arguments":`+args+`,"_meta":{"progressToken":1}}`))
	require.NoError(t, err)
	require.Equal(t, Waiting, res.Outcome)
	_, err = s.Decide(ctx, res.Request.ID, dba, true, "ok")
	require.NoError(t, err)

	for _, p := range []string{
		`{"name":"execute_sql","arguments":` + args + `,"Arguments":{"query":"drop table users"}}`,
		`{"name":"execute_sql","arguments":` + args + `,"task":{"ttl":1}}`,
		`{"name":"execute_sql","arguments":` + args + `,"_meta":{"progressToken":1,"x":1}}`,
		`{"name":"execute_sql","arguments":{"query":"drop table t","db":"prod"}}`,
	} {
		got, err := s.Begin(ctx, withParams(p))
		require.NoError(t, err)
		require.Equal(t, Waiting, got.Outcome, "%s is not the approved call", p)
		require.True(t, got.Created, p)
		require.NotEqual(t, res.Request.ID, got.Request.ID)
	}
	got, err := s.Begin(ctx, withParams(` {"arguments":`+args+`,"_meta":{"progressToken":"retry-2"},"name":"execute_sql"}`))
	require.NoError(t, err)
	require.Equal(t, Granted, got.Outcome, "the approved call, retried with a new progress token")
	require.Equal(t, res.Request.ID, got.Request.ID)
}

func TestTimeGrant(t *testing.T) {
	s, c, _, _ := newTestService(t, func(cfg *Config) { cfg.RuleGrants = map[string]time.Duration{"sql-writes": 15 * time.Minute} })
	ctx := t.Context()
	res, err := s.Begin(ctx, sqlCall(`{"query":"a"}`))
	require.NoError(t, err)
	_, err = s.Decide(ctx, res.Request.ID, dba, true, "window")
	require.NoError(t, err)
	for _, q := range []string{`{"query":"a"}`, `{"query":"b"}`} {
		got, err := s.Begin(ctx, sqlCall(q))
		require.NoError(t, err)
		require.Equal(t, Granted, got.Outcome, q)
	}
	other := sqlCall(`{"query":"a"}`)
	other.Tool = "echo"
	got, err := s.Begin(ctx, other)
	require.NoError(t, err)
	require.Equal(t, Waiting, got.Outcome, "the grant covers one tool")
	c.add(16 * time.Minute)
	got, err = s.Begin(ctx, sqlCall(`{"query":"b"}`))
	require.NoError(t, err)
	require.Equal(t, Waiting, got.Outcome, "an expired grant never passes again")
}

func TestDecideRules(t *testing.T) {
	s, c, _, _ := newTestService(t, nil)
	ctx := t.Context()
	self := agent
	self.Groups = []string{"dba"}
	selfCall := sqlCall(`{}`)
	selfCall.Requester = self
	tests := []struct {
		name    string
		call    Call
		by      identity.Identity
		advance time.Duration
		err     error
	}{
		{name: "approver group", call: sqlCall(`{"n":1}`), by: dba},
		{name: "outside approver groups", call: sqlCall(`{"n":2}`), by: outsider, err: ErrForbidden},
		{name: "self approval", call: selfCall, by: self, err: ErrForbidden},
		{name: "expired", call: sqlCall(`{"n":3}`), by: dba, advance: 2 * time.Hour, err: ErrConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := s.Begin(ctx, tc.call)
			require.NoError(t, err)
			c.add(tc.advance)
			_, err = s.Decide(ctx, res.Request.ID, tc.by, true, "")
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
		})
	}
}

func TestWait(t *testing.T) {
	ctx := t.Context()
	t.Run("approved while held", func(t *testing.T) {
		s, _, _, reg := newTestService(t, nil)
		res, err := s.Begin(ctx, sqlCall(`{"q":1}`))
		require.NoError(t, err)
		done := make(chan Result, 1)
		go func() {
			r, err := s.Wait(ctx, res.Request.ID, time.Minute)
			if err == nil {
				done <- r
			}
			close(done)
		}()
		require.Eventually(t, func() bool { return gauge(s.met.held) == 1 }, 10*time.Second, 5*time.Millisecond)
		_, err = s.Decide(ctx, res.Request.ID, dba, true, "go")
		require.NoError(t, err)
		r := <-done
		require.Equal(t, Granted, r.Outcome)
		require.Equal(t, Consumed, r.Request.State)
		require.InDelta(t, 1.0, events(t, reg, evConsumed), 1e-9)
	})
	t.Run("denied while held", func(t *testing.T) {
		s, _, _, _ := newTestService(t, nil)
		res, err := s.Begin(ctx, sqlCall(`{"q":1}`))
		require.NoError(t, err)
		_, err = s.Decide(ctx, res.Request.ID, dba, false, "not in prod")
		require.NoError(t, err)
		r, err := s.Wait(ctx, res.Request.ID, time.Minute)
		require.NoError(t, err)
		require.Equal(t, Refused, r.Outcome)
		require.Equal(t, "not in prod", r.Request.Decision.Reason)
		again, err := s.Begin(ctx, sqlCall(`{"q":1}`))
		require.NoError(t, err)
		require.Equal(t, Waiting, again.Outcome, "a delivered denial opens a new request on retry")
	})
	t.Run("deferred then denied is told once", func(t *testing.T) {
		s, _, _, reg := newTestService(t, nil)
		res, err := s.Begin(ctx, sqlCall(`{"q":2}`))
		require.NoError(t, err)
		r, err := s.Wait(ctx, res.Request.ID, time.Millisecond)
		require.NoError(t, err)
		require.Equal(t, Waiting, r.Outcome)
		require.True(t, r.Request.Deferred)
		require.InDelta(t, 1.0, events(t, reg, evDeferred), 1e-9)
		_, err = s.Decide(ctx, res.Request.ID, dba, false, "no")
		require.NoError(t, err)
		got, err := s.Begin(ctx, sqlCall(`{"q":2}`))
		require.NoError(t, err)
		require.Equal(t, Refused, got.Outcome)
		got, err = s.Begin(ctx, sqlCall(`{"q":2}`))
		require.NoError(t, err)
		require.Equal(t, Waiting, got.Outcome)
	})
	t.Run("expired", func(t *testing.T) {
		s, c, _, reg := newTestService(t, nil)
		res, err := s.Begin(ctx, sqlCall(`{"q":3}`))
		require.NoError(t, err)
		c.add(2 * time.Hour)
		r, err := s.Wait(ctx, res.Request.ID, time.Minute)
		require.NoError(t, err)
		require.Equal(t, Lapsed, r.Outcome)
		require.InDelta(t, 1.0, events(t, reg, evExpired), 1e-9)
	})
}

func TestBeginRefusesBadArguments(t *testing.T) {
	s, _, _, _ := newTestService(t, nil)
	_, err := s.Begin(t.Context(), sqlCall(`{"q":1,"q":2}`))
	require.ErrorIs(t, err, ErrArguments)
}

func TestList(t *testing.T) {
	s, c, _, _ := newTestService(t, nil)
	ctx := t.Context()
	a, err := s.Begin(ctx, sqlCall(`{"q":"a"}`))
	require.NoError(t, err)
	c.add(time.Second)
	b, err := s.Begin(ctx, sqlCall(`{"q":"b"}`))
	require.NoError(t, err)
	_, err = s.Decide(ctx, a.Request.ID, dba, true, "")
	require.NoError(t, err)
	tests := []struct {
		name   string
		viewer identity.Identity
		state  State
		want   []string
	}{
		{name: "approver pending", viewer: dba, state: Pending, want: []string{b.Request.ID}},
		{name: "approver all", viewer: dba, want: []string{b.Request.ID, a.Request.ID}},
		{name: "requester sees own", viewer: agent, state: Approved, want: []string{a.Request.ID}},
		{name: "outsider sees nothing", viewer: outsider, want: []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.List(ctx, tc.viewer, tc.state)
			require.NoError(t, err)
			ids := []string{}
			for _, r := range got {
				ids = append(ids, r.ID)
			}
			require.Equal(t, tc.want, ids)
		})
	}
}

func TestConfigValidate(t *testing.T) {
	bad := DefaultConfig()
	bad.Store.Kind = "s3"
	bad.Hold = 0
	bad.PublicURL = "/relative"
	bad.Notify.Webhooks = []WebhookConfig{{URL: "ftp://x", Format: "xml"}}
	err := bad.Validate()
	require.Error(t, err)
	for _, want := range []string{"store.kind:", "hold:", "public_url:", "notify.webhooks[0].url:", "notify.webhooks[0].format:"} {
		require.Contains(t, err.Error(), want)
	}
	require.NoError(t, DefaultConfig().Validate())
}

func gauge(g prometheus.Gauge) float64 {
	var m dto.Metric
	_ = g.Write(&m)
	return m.GetGauge().GetValue()
}

func TestSweep(t *testing.T) {
	s, c, _, reg := newTestService(t, nil)
	ctx := t.Context()
	old, err := s.Begin(ctx, sqlCall(`{"q":"old"}`))
	require.NoError(t, err)
	c.add(2 * time.Hour)
	fresh, err := s.Begin(ctx, sqlCall(`{"q":"fresh"}`))
	require.NoError(t, err)

	n, err := s.Sweep(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.InDelta(t, 1.0, events(t, reg, evExpired), 1e-9)
	n, err = s.Sweep(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "an expiry is counted once")
	r, err := s.store.Get(ctx, old.Request.ID)
	require.NoError(t, err)
	require.Equal(t, Expired, r.State)

	c.add(8 * 24 * time.Hour)
	_, err = s.Sweep(ctx)
	require.NoError(t, err)
	for _, id := range []string{old.Request.ID, fresh.Request.ID} {
		_, err = s.store.Get(ctx, id)
		require.ErrorIs(t, err, ErrNotFound, "pruned after retention")
	}
	_, err = s.store.Lookup(ctx, old.Request.Keys[0])
	require.ErrorIs(t, err, ErrNotFound, "index entries go with the request")
}

func TestPendingLimits(t *testing.T) {
	s, c, _, reg := newTestService(t, func(c *Config) { c.MaxPendingPerRequester = 3; c.MaxPending = 4 })
	other := identity.Identity{Subject: "agent-2", Issuer: "https://idp.test"}
	open := func(who identity.Identity, q string) error {
		call := sqlCall(`{"query":"` + q + `"}`)
		call.Requester = who
		_, err := s.Begin(t.Context(), call)
		return err
	}
	for i := range 3 {
		require.NoError(t, open(agent, "q"+string(rune('a'+i))))
	}
	require.NoError(t, open(agent, "qa"), "the same pending call is reused, not a new request")
	err := open(agent, "qd")
	require.ErrorIs(t, err, ErrPendingLimit)
	var lim *LimitError
	require.ErrorAs(t, err, &lim)
	require.Equal(t, LimitError{Scope: "requester", Limit: 3}, *lim)
	require.NoError(t, open(other, "x"), "another requester still has room")
	err = open(other, "y")
	require.ErrorAs(t, err, &lim)
	require.Equal(t, LimitError{Scope: "global", Limit: 4}, *lim)
	require.InDelta(t, 1.0, counterValue(t, reg, "mcpguard_approvals_limited_total", "requester"), 1e-9)
	require.InDelta(t, 1.0, counterValue(t, reg, "mcpguard_approvals_limited_total", "global"), 1e-9)

	// Expired requests free their place.
	c.add(2 * time.Hour)
	require.NoError(t, open(agent, "qd"))
}

func counterValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mf, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range mf {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if m.GetLabel()[0].GetValue() == label {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestGrantBoundToParamsAndPolicyVersion(t *testing.T) {
	s, _, _, _ := newTestService(t, nil)
	base := func() Call {
		c := sqlCall(`{"query":"drop table t"}`)
		c.Params = json.RawMessage(`{"name":"execute_sql","arguments":{"query":"drop table t"}}`)
		c.PolicyVersion = "sha256:v1"
		return c
	}
	res, err := s.Begin(t.Context(), base())
	require.NoError(t, err)
	_, err = s.Decide(t.Context(), res.Request.ID, dba, true, "")
	require.NoError(t, err)
	variants := map[string]func(*Call){
		"case-variant member": func(c *Call) {
			c.Params = json.RawMessage(`{"name":"execute_sql","arguments":{"query":"drop table t"},"Arguments":{"query":"x"}}`)
		},
		"extra _meta member": func(c *Call) {
			c.Params = json.RawMessage(`{"name":"execute_sql","arguments":{"query":"drop table t"},"_meta":{"x":1}}`)
		},
		"other policy version": func(c *Call) { c.PolicyVersion = "sha256:v2" },
		"other requester":      func(c *Call) { c.Requester = outsider },
	}
	for name, mod := range variants {
		t.Run(name, func(t *testing.T) {
			c := base()
			mod(&c)
			got, err := s.Begin(t.Context(), c)
			require.NoError(t, err)
			require.Equal(t, Waiting, got.Outcome)
			require.True(t, got.Created)
			require.NotEqual(t, res.Request.ID, got.Request.ID)
		})
	}
	got, err := s.Begin(t.Context(), base())
	require.NoError(t, err)
	require.Equal(t, Granted, got.Outcome, "the approved call itself still passes once")
}
