// Package approvalstest is the contract every [approvals.Store] must pass, and a helper that
// runs a real redis-server for tests. Test code only.
package approvalstest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/approvals"
	"github.com/mcpguard/mcpguard/identity"
)

// Backend prepares a fresh, empty backend for one test and returns an opener: every call
// opens another handle onto that same backend (closed when the test ends).
type Backend func(t *testing.T) func() approvals.Store

// Options describes what a backend supports.
type Options struct {
	// Shared means two handles may be open at once and see each other's changes (Redis).
	// Otherwise a handle is closed before the next is opened (the file store's lock).
	Shared bool
}

// Run runs the contract against backend.
func Run(t *testing.T, backend Backend, o Options) {
	t.Run("CreateGet", func(t *testing.T) { testCreateGet(t, backend(t)()) })
	t.Run("NotFound", func(t *testing.T) { testNotFound(t, backend(t)()) })
	t.Run("UpdateIndexesNewKeys", func(t *testing.T) { testUpdateKeys(t, backend(t)()) })
	t.Run("UpdateErrorAborts", func(t *testing.T) { testUpdateAbort(t, backend(t)()) })
	t.Run("ConsumeOnce", func(t *testing.T) { testConsumeOnce(t, backend(t)()) })
	t.Run("CreateOnce", func(t *testing.T) { testCreateOnce(t, backend(t)()) })
	t.Run("ListNewestFirst", func(t *testing.T) { testList(t, backend(t)()) })
	t.Run("Watch", func(t *testing.T) { testWatch(t, backend(t)()) })
	t.Run("PendingTransitions", func(t *testing.T) { testPendingTransitions(t, backend(t)) })
	t.Run("PendingNewestFirst", func(t *testing.T) { testPendingOrder(t, backend(t)()) })
	t.Run("PendingUnderNewerRequests", func(t *testing.T) { testPendingBuried(t, backend(t)()) })
	t.Run("Durable", func(t *testing.T) {
		open := backend(t)
		a := open()
		r := Sample("durable", time.Now())
		require.NoError(t, a.Create(t.Context(), r))
		if !o.Shared {
			require.NoError(t, a.Close())
		}
		got, err := open().Get(t.Context(), r.ID)
		require.NoError(t, err)
		require.Equal(t, r.Tool, got.Tool)
	})
	if o.Shared {
		t.Run("WatchAcrossHandles", func(t *testing.T) {
			open := backend(t)
			a, b := open(), open()
			r := Sample("across", time.Now())
			require.NoError(t, a.Create(t.Context(), r))
			ch, err := b.Watch(t.Context(), r.ID)
			require.NoError(t, err)
			_, err = a.Update(t.Context(), r.ID, func(q *approvals.Request) error { q.State = approvals.Approved; return nil })
			require.NoError(t, err)
			waitSignal(t, ch)
			got, err := b.Get(t.Context(), r.ID)
			require.NoError(t, err)
			require.Equal(t, approvals.Approved, got.State)
		})
	}
}

// Sample returns a pending request with id and one key derived from it.
func Sample(id string, now time.Time) approvals.Request {
	return approvals.Request{
		ID: id, State: approvals.Pending,
		Requester: approvals.Party{Subject: "agent-" + id, Issuer: "https://issuer.test"},
		Tool:      "execute_sql", Arguments: json.RawMessage(`{"query":"drop table t"}`),
		Rule: "sql-writes", Approvers: []string{"dba"},
		CreatedAt: now.UTC().Truncate(time.Millisecond), ExpiresAt: now.Add(time.Hour).UTC().Truncate(time.Millisecond),
		Keys: []string{"k-" + id},
	}
}

func testCreateGet(t *testing.T, s approvals.Store) {
	r := Sample("a1", time.Now())
	require.NoError(t, s.Create(t.Context(), r))
	require.ErrorIs(t, s.Create(t.Context(), r), approvals.ErrExists)
	got, err := s.Get(t.Context(), r.ID)
	require.NoError(t, err)
	require.Equal(t, r.Requester, got.Requester)
	require.Equal(t, r.State, got.State)
	require.JSONEq(t, string(r.Arguments), string(got.Arguments))
	require.True(t, r.ExpiresAt.Equal(got.ExpiresAt))
	byKey, err := s.Lookup(t.Context(), "k-a1")
	require.NoError(t, err)
	require.Equal(t, r.ID, byKey.ID)
}

func testNotFound(t *testing.T, s approvals.Store) {
	_, err := s.Get(t.Context(), "nope")
	require.ErrorIs(t, err, approvals.ErrNotFound)
	_, err = s.Lookup(t.Context(), "nope")
	require.ErrorIs(t, err, approvals.ErrNotFound)
	_, err = s.Update(t.Context(), "nope", func(*approvals.Request) error { return nil })
	require.ErrorIs(t, err, approvals.ErrNotFound)
}

func testUpdateKeys(t *testing.T, s approvals.Store) {
	old := Sample("old", time.Now())
	old.Keys = []string{"shared"}
	require.NoError(t, s.Create(t.Context(), old))
	newer := Sample("new", time.Now().Add(time.Second))
	newer.Keys = []string{"shared"}
	require.NoError(t, s.Create(t.Context(), newer))
	got, err := s.Lookup(t.Context(), "shared")
	require.NoError(t, err)
	require.Equal(t, "new", got.ID, "a key maps to the newest request created with it")

	_, err = s.Update(t.Context(), "old", func(r *approvals.Request) error {
		r.Keys = append(r.Keys, "tool-scope")
		return nil
	})
	require.NoError(t, err)
	got, err = s.Lookup(t.Context(), "tool-scope")
	require.NoError(t, err)
	require.Equal(t, "old", got.ID)
	got, err = s.Lookup(t.Context(), "shared")
	require.NoError(t, err)
	require.Equal(t, "new", got.ID, "keys a request already had are not re-pointed by an update")
}

func testUpdateAbort(t *testing.T, s approvals.Store) {
	r := Sample("abort", time.Now())
	require.NoError(t, s.Create(t.Context(), r))
	_, err := s.Update(t.Context(), r.ID, func(q *approvals.Request) error {
		q.State = approvals.Approved
		return approvals.ErrConflict
	})
	require.ErrorIs(t, err, approvals.ErrConflict)
	got, err := s.Get(t.Context(), r.ID)
	require.NoError(t, err)
	require.Equal(t, approvals.Pending, got.State)
}

// testConsumeOnce races many consumers of one approved grant: exactly one may win.
func testConsumeOnce(t *testing.T, s approvals.Store) {
	r := Sample("race", time.Now())
	r.State = approvals.Approved
	require.NoError(t, s.Create(t.Context(), r))
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, err := s.Update(t.Context(), r.ID, func(q *approvals.Request) error {
				if q.State != approvals.Approved {
					return approvals.ErrConflict
				}
				q.State = approvals.Consumed
				return nil
			})
			if err == nil {
				wins.Add(1)
			} else {
				require.ErrorIs(t, err, approvals.ErrConflict)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(1), wins.Load())
}

// testCreateOnce races creators of one id: exactly one stores it, and it is indexed once.
func testCreateOnce(t *testing.T, s approvals.Store) {
	r := Sample("twin", time.Now())
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			err := s.Create(t.Context(), r)
			if err == nil {
				wins.Add(1)
			} else {
				require.ErrorIs(t, err, approvals.ErrExists)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(1), wins.Load())
	require.Equal(t, []string{r.ID}, pendingIDs(t, s))
}

func testList(t *testing.T, s approvals.Store) {
	base := time.Now()
	for i := range 5 {
		require.NoError(t, s.Create(t.Context(), Sample("l"+strconv.Itoa(i), base.Add(time.Duration(i)*time.Second))))
	}
	got, err := s.List(t.Context(), 3)
	require.NoError(t, err)
	ids := make([]string, len(got))
	for i, r := range got {
		ids[i] = r.ID
	}
	require.Equal(t, []string{"l4", "l3", "l2"}, ids)
}

// pendingIDs lists the ids s.Pending returns, in order.
func pendingIDs(t *testing.T, s approvals.Store) []string {
	t.Helper()
	got, err := s.Pending(t.Context())
	require.NoError(t, err)
	ids := []string{}
	for _, r := range got {
		require.Equal(t, approvals.Pending, r.State, "Pending returned request %s", r.ID)
		ids = append(ids, r.ID)
	}
	return ids
}

// setState is an update that moves a request to st.
func setState(st approvals.State) func(*approvals.Request) error {
	return func(q *approvals.Request) error { q.State = st; return nil }
}

// testPendingTransitions checks that the pending index follows every change of state.
func testPendingTransitions(t *testing.T, open func() approvals.Store) {
	tests := []struct {
		name    string
		created approvals.State
		updates []func(*approvals.Request) error
		pending bool
	}{
		{name: "created pending", created: approvals.Pending, pending: true},
		{name: "created decided", created: approvals.Approved},
		{name: "approved", created: approvals.Pending, updates: []func(*approvals.Request) error{setState(approvals.Approved)}},
		{name: "denied", created: approvals.Pending, updates: []func(*approvals.Request) error{setState(approvals.Denied)}},
		{name: "expired", created: approvals.Pending, updates: []func(*approvals.Request) error{setState(approvals.Expired)}},
		{
			name: "approved then consumed", created: approvals.Pending,
			updates: []func(*approvals.Request) error{setState(approvals.Approved), setState(approvals.Consumed)},
		},
		{
			name: "deferred stays pending", created: approvals.Pending, pending: true,
			updates: []func(*approvals.Request) error{func(q *approvals.Request) error { q.Deferred = true; return nil }},
		},
		{
			name: "new key stays pending", created: approvals.Pending, pending: true,
			updates: []func(*approvals.Request) error{func(q *approvals.Request) error { q.Keys = append(q.Keys, "extra"); return nil }},
		},
		{
			name: "aborted decision stays pending", created: approvals.Pending, pending: true,
			updates: []func(*approvals.Request) error{func(q *approvals.Request) error {
				q.State = approvals.Approved
				return approvals.ErrConflict
			}},
		},
	}
	s := open()
	base := time.Now()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Sample("t"+strconv.Itoa(i), base.Add(time.Duration(i)*time.Second))
			r.State = tc.created
			require.NoError(t, s.Create(t.Context(), r))
			for _, fn := range tc.updates {
				if _, err := s.Update(t.Context(), r.ID, fn); err != nil {
					require.ErrorIs(t, err, approvals.ErrConflict)
				}
			}
			got, err := s.Get(t.Context(), r.ID)
			require.NoError(t, err)
			require.Equal(t, tc.pending, got.State == approvals.Pending, "stored state %s", got.State)
			if tc.pending {
				require.Contains(t, pendingIDs(t, s), r.ID)
			} else {
				require.NotContains(t, pendingIDs(t, s), r.ID)
			}
		})
	}
}

func testPendingOrder(t *testing.T, s approvals.Store) {
	base := time.Now()
	for i := range 4 {
		require.NoError(t, s.Create(t.Context(), Sample("p"+strconv.Itoa(i), base.Add(time.Duration(i)*time.Second))))
	}
	_, err := s.Update(t.Context(), "p2", setState(approvals.Denied))
	require.NoError(t, err)
	require.Equal(t, []string{"p3", "p1", "p0"}, pendingIDs(t, s))
}

// buried is how many requests are created and decided after the pending one: more than
// the Service reads when it lists other states.
const buried = 600

// testPendingBuried: a pending request stays listed, and is expired by the sweep, however
// many requests were created after it.
func testPendingBuried(t *testing.T, s approvals.Store) {
	ctx := t.Context()
	base := time.Now().Add(-time.Minute)
	old := Sample("old", base)
	require.NoError(t, s.Create(ctx, old))
	for i := range buried {
		r := Sample("n"+strconv.Itoa(i), base.Add(time.Duration(i+1)*time.Millisecond))
		require.NoError(t, s.Create(ctx, r))
		st := approvals.Approved
		if i%2 == 1 {
			st = approvals.Denied
		}
		_, err := s.Update(ctx, r.ID, setState(st))
		require.NoError(t, err)
	}
	recent, err := s.List(ctx, buried)
	require.NoError(t, err)
	require.Len(t, recent, buried)
	require.NotContains(t, ids(recent), old.ID, "the pending request is older than the newest %d", buried)
	require.Equal(t, []string{old.ID}, pendingIDs(t, s))

	now := base
	cfg := approvals.DefaultConfig()
	cfg.Approvers = []string{"dba"}
	svc, err := approvals.New(cfg, s, nil, prometheus.NewRegistry(), approvals.WithClock(func() time.Time { return now }))
	require.NoError(t, err)
	approver := identity.Identity{Subject: "alice", Issuer: "https://issuer.test", Groups: []string{"dba"}}
	listed, err := svc.List(ctx, approver, approvals.Pending)
	require.NoError(t, err)
	require.Equal(t, []string{old.ID}, ids(listed))

	n, err := svc.Sweep(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "not yet past its expiry")
	now = old.ExpiresAt.Add(time.Second)
	listed, err = svc.List(ctx, approver, approvals.Pending)
	require.NoError(t, err)
	require.Empty(t, listed, "past its expiry a request is no longer pending")
	n, err = svc.Sweep(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	got, err := s.Get(ctx, old.ID)
	require.NoError(t, err)
	require.Equal(t, approvals.Expired, got.State)
	require.Empty(t, pendingIDs(t, s))
}

func ids(rs []approvals.Request) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func testWatch(t *testing.T, s approvals.Store) {
	r := Sample("w", time.Now())
	require.NoError(t, s.Create(t.Context(), r))
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := s.Watch(ctx, r.ID)
	require.NoError(t, err)
	other, err := s.Watch(t.Context(), "unrelated")
	require.NoError(t, err)
	_, err = s.Update(t.Context(), r.ID, func(q *approvals.Request) error { q.State = approvals.Denied; return nil })
	require.NoError(t, err)
	waitSignal(t, ch)
	select {
	case <-other:
		t.Fatal("a watcher of another id was woken")
	default:
	}
	cancel()
}

func waitSignal(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no change signal")
	}
}

// StartRedis runs redis-server (no persistence) on a free loopback port until t ends and
// returns its address. A missing redis-server fails the test: `make test` installs it (scripts/test-deps.sh).
func StartRedis(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not installed (make deps, or apt-get install redis-server): %v", err)
	}
	for range 5 {
		port, err := freePort()
		require.NoError(t, err)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", t.TempDir(), "--loglevel", "warning")
		require.NoError(t, cmd.Start())
		if waitTCP(addr, 10*time.Second) {
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			})
			return addr
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	t.Fatal("redis-server did not start")
	return ""
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitTCP(addr string, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
