package approvals_test

import (
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

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
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.run)
	}
}
