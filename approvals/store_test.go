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
