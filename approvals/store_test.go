package approvals_test

import (
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/mcpguard/mcpguard/approvals"
	"github.com/mcpguard/mcpguard/approvals/approvalstest"
)

func TestFileStore(t *testing.T) {
	approvalstest.Run(t, func(t *testing.T) func() approvals.Store {
		path := filepath.Join(t.TempDir(), "approvals.db")
		return func() approvals.Store {
			s, err := approvals.OpenFile(path)
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close() })
			return s
		}
	}, approvalstest.Options{})
}

func TestFileStoreLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "approvals.db")
	s, err := approvals.OpenFile(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	_, err = approvals.OpenFile(path)
	require.Error(t, err, "a second process must not share the file")
}

var prefixes atomic.Int64

// redisBackend gives each test its own key prefix on one redis-server.
func redisBackend(t *testing.T) approvalstest.Backend {
	addr := approvalstest.StartRedis(t)
	return func(t *testing.T) func() approvals.Store {
		prefix := "test" + strconv.FormatInt(prefixes.Add(1), 10) + ":"
		return func() approvals.Store {
			c := redis.NewClient(&redis.Options{Addr: addr})
			t.Cleanup(func() { _ = c.Close() })
			s, err := approvals.NewRedisStore(t.Context(), c, prefix, time.Hour)
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close() })
			return s
		}
	}
}

func TestRedisStore(t *testing.T) {
	approvalstest.Run(t, redisBackend(t), approvalstest.Options{Shared: true})
}

func TestRedisSessions(t *testing.T) {
	addr := approvalstest.StartRedis(t)
	newHandle := func() *approvals.RedisSessions {
		c := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { _ = c.Close() })
		return approvals.NewRedisSessions(c, "sess:", time.Hour)
	}
	a, b := newHandle(), newHandle()
	ctx := t.Context()
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{name: "counters shared across replicas", run: func(t *testing.T) {
			n, err := a.Incr(ctx, "s1\x00calls")
			require.NoError(t, err)
			require.EqualValues(t, 1, n)
			n, err = b.Incr(ctx, "s1\x00calls")
			require.NoError(t, err)
			require.EqualValues(t, 2, n)
		}},
		{name: "first pin wins everywhere", run: func(t *testing.T) {
			got, err := a.Pin(ctx, "s1\x00pin\x00echo", "fp-1")
			require.NoError(t, err)
			require.Equal(t, "fp-1", got)
			got, err = b.Pin(ctx, "s1\x00pin\x00echo", "fp-2")
			require.NoError(t, err)
			require.Equal(t, "fp-1", got)
		}},
		{name: "a long key costs a digest in Redis, and stays distinct", run: func(t *testing.T) {
			c := redis.NewClient(&redis.Options{Addr: addr})
			t.Cleanup(func() { _ = c.Close() })
			long := "s\x00" + strings.Repeat("x", 64<<10)
			for _, k := range []string{long + "a", long + "b"} {
				n, err := a.Incr(ctx, k)
				require.NoError(t, err)
				require.EqualValues(t, 1, n)
				got, err := a.Pin(ctx, k, "fp-"+k[len(k)-1:])
				require.NoError(t, err)
				require.Equal(t, "fp-"+k[len(k)-1:], got)
			}
			n, err := b.Incr(ctx, long+"a")
			require.NoError(t, err)
			require.EqualValues(t, 2, n)
			keys, err := c.Keys(ctx, "sess:*").Result()
			require.NoError(t, err)
			for _, k := range keys {
				require.LessOrEqual(t, len(k), 300, "stored key %.40q…", k)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.run)
	}
}

// TestFileStoreIndexesOldFile opens files written before the pending index existed.
func TestFileStoreIndexesOldFile(t *testing.T) {
	base := time.Now()
	tests := []struct {
		name    string
		corrupt bool
		want    []string
	}{
		{name: "pending requests indexed newest first", want: []string{"p2", "p0"}},
		{name: "undecodable request refuses to open", corrupt: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "approvals.db")
			s, err := approvals.OpenFile(path)
			require.NoError(t, err)
			for i, st := range []approvals.State{approvals.Pending, approvals.Approved, approvals.Pending} {
				r := approvalstest.Sample("p"+strconv.Itoa(i), base.Add(time.Duration(i)*time.Second))
				r.State = st
				require.NoError(t, s.Create(t.Context(), r))
			}
			require.NoError(t, s.Close())
			dropPendingBucket(t, path, tc.corrupt)

			s, err = approvals.OpenFile(path)
			if tc.corrupt {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close() })
			require.Equal(t, tc.want, pendingIDs(t, s))
			_, err = s.Update(t.Context(), "p2", func(q *approvals.Request) error { q.State = approvals.Denied; return nil })
			require.NoError(t, err)
			require.Equal(t, []string{"p0"}, pendingIDs(t, s), "the rebuilt index follows updates")
		})
	}
}

// dropPendingBucket turns the file at path into one written before the pending index
// existed, optionally with an undecodable request in it.
func dropPendingBucket(t *testing.T, path string, corrupt bool) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket([]byte("pending")); err != nil {
			return err
		}
		if corrupt {
			return tx.Bucket([]byte("requests")).Put([]byte("broken"), []byte("{not json"))
		}
		return nil
	}))
}

func pendingIDs(t *testing.T, s approvals.Store) []string {
	t.Helper()
	got, err := s.Pending(t.Context())
	require.NoError(t, err)
	ids := []string{}
	for _, r := range got {
		ids = append(ids, r.ID)
	}
	return ids
}

// TestRedisStoreIndexesOldData: the first store opened on a prefix written before the
// pending index existed indexes the pending requests already there.
func TestRedisStoreIndexesOldData(t *testing.T) {
	addr := approvalstest.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	open := func() *approvals.RedisStore {
		s, err := approvals.NewRedisStore(t.Context(), c, "old:", time.Hour)
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	s := open()
	base := time.Now()
	for i, st := range []approvals.State{approvals.Pending, approvals.Approved, approvals.Pending, approvals.Consumed} {
		r := approvalstest.Sample("r"+strconv.Itoa(i), base.Add(time.Duration(i)*time.Second))
		r.State = st
		require.NoError(t, s.Create(t.Context(), r))
	}
	require.NoError(t, c.Del(t.Context(), "old:pending", "old:pending-indexed").Err())
	require.Empty(t, pendingIDs(t, s), "the index is gone, as before it existed")

	require.Equal(t, []string{"r2", "r0"}, pendingIDs(t, open()))
}
