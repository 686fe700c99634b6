package approvals_test

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/approvals"
	"github.com/mcpguard/mcpguard/approvals/approvalstest"
	"github.com/mcpguard/mcpguard/identity"
)

var (
	benchAgent    = identity.Identity{Subject: "agent", Issuer: "https://idp.test"}
	benchApprover = identity.Identity{Subject: "rm", Issuer: "https://idp.test", Groups: []string{"release"}}
)

func benchService(b *testing.B, st approvals.Store) *approvals.Service {
	b.Helper()
	cfg := approvals.DefaultConfig()
	cfg.Approvers = []string{"release"}
	s, err := approvals.New(cfg, st, nil, prometheus.NewRegistry())
	require.NoError(b, err)
	return s
}

// benchRelease measures the time from a decision being recorded (through decider) to the
// call held on waiter being released, and reports p50 and p99.
func benchRelease(b *testing.B, waiter, decider *approvals.Service) {
	b.ReportAllocs()
	lat := make([]time.Duration, 0, b.N)
	i := 0
	for b.Loop() {
		i++
		res, err := waiter.Begin(b.Context(), approvals.Call{
			Requester: benchAgent, Tool: "deploy",
			Arguments: json.RawMessage(`{"n":` + strconv.Itoa(i) + `}`), Rule: "r",
		})
		require.NoError(b, err)
		released := make(chan time.Time, 1)
		go func() {
			r, err := waiter.Wait(b.Context(), res.Request.ID, time.Minute)
			if err == nil && r.Outcome == approvals.Granted {
				released <- time.Now()
			}
			close(released)
		}()
		time.Sleep(200 * time.Microsecond) // let the waiter block, as a held call would
		_, err = decider.Decide(b.Context(), res.Request.ID, benchApprover, true, "")
		require.NoError(b, err)
		decided := time.Now()
		at, ok := <-released
		require.True(b, ok, "held call not granted")
		lat = append(lat, max(0, at.Sub(decided)))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkRelease: approval → held call released, with the file store (one process) and
// with Redis (held on one replica, approved through another).
func BenchmarkRelease(b *testing.B) {
	b.Run("file", func(b *testing.B) {
		st, err := approvals.OpenFile(filepath.Join(b.TempDir(), "a.db"))
		require.NoError(b, err)
		b.Cleanup(func() { _ = st.Close() })
		s := benchService(b, st)
		benchRelease(b, s, s)
	})
	b.Run("redis-two-replicas", func(b *testing.B) {
		addr := approvalstest.StartRedis(b)
		replica := func() *approvals.Service {
			c := redis.NewClient(&redis.Options{Addr: addr})
			b.Cleanup(func() { _ = c.Close() })
			st, err := approvals.NewRedisStore(b.Context(), c, "bench:", time.Hour)
			require.NoError(b, err)
			b.Cleanup(func() { _ = st.Close() })
			return benchService(b, st)
		}
		benchRelease(b, replica(), replica())
	})
}

func BenchmarkCanonical(b *testing.B) {
	args := []byte(`{"query":"UPDATE users SET email = 'x' WHERE id = 2","db":"main","opts":{"timeout":30,"tags":["a","b"]}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := approvals.Canonical(args); err != nil {
			b.Fatal(err)
		}
	}
}

// benchPendingStored and benchPendingCount shape BenchmarkListPending: a busy store where a
// few requests still wait among many decided ones.
const (
	benchPendingStored = 5000
	benchPendingCount  = 10
)

// BenchmarkListPending measures one poll of the approver page, Service.List(pending), over
// 5,000 stored requests of which 10 are pending and spread through the history, and for
// comparison a listing of all states (the newest 500). "listed" reports how many requests
// the poll returned.
func BenchmarkListPending(b *testing.B) {
	run := func(b *testing.B, st approvals.Store) {
		b.Helper()
		base := time.Now().Add(-time.Minute)
		for i := range benchPendingStored {
			r := approvalstest.Sample("b"+strconv.Itoa(i), base.Add(time.Duration(i)*time.Millisecond))
			r.Approvers = []string{"release"}
			if i%(benchPendingStored/benchPendingCount) != 0 {
				r.State = approvals.Approved
			}
			require.NoError(b, st.Create(b.Context(), r))
		}
		s := benchService(b, st)
		for _, state := range []approvals.State{approvals.Pending, ""} {
			name := string(state)
			if name == "" {
				name = "all"
			}
			b.Run(name, func(b *testing.B) {
				var got []approvals.Request
				b.ReportAllocs()
				for b.Loop() {
					var err error
					got, err = s.List(b.Context(), benchApprover, state)
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(got)), "listed")
			})
		}
	}
	b.Run("file", func(b *testing.B) {
		st, err := approvals.OpenFile(filepath.Join(b.TempDir(), "a.db"))
		require.NoError(b, err)
		b.Cleanup(func() { _ = st.Close() })
		run(b, st)
	})
	b.Run("redis", func(b *testing.B) {
		addr := approvalstest.StartRedis(b)
		c := redis.NewClient(&redis.Options{Addr: addr})
		b.Cleanup(func() { _ = c.Close() })
		st, err := approvals.NewRedisStore(b.Context(), c, "bench:", time.Hour)
		require.NoError(b, err)
		b.Cleanup(func() { _ = st.Close() })
		run(b, st)
	})
}
