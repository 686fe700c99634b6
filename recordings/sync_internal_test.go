package recordings

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// TestIntervalSyncMakesDurable: in spool.sync interval, Sync returns once the events are
// written, and the background pass fsyncs them within the interval (durable catches up with
// written) without another exchange to drive it.
func TestIntervalSyncMakesDurable(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ReplicaID = "r1"
	cfg.Spool.Dir = t.TempDir()
	cfg.Spool.Sync, cfg.Spool.SyncInterval = SyncInterval, 20*time.Millisecond
	sink, err := NewDir(t.TempDir())
	require.NoError(t, err)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	r, err := Open(cfg, sink, key, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close(context.Background()) })

	for i := range 3 {
		require.NoError(t, r.Record(Event{Kind: KindRequest, Session: "s", Method: "tools/call", Tool: "echo", Message: []byte(`{}`)}))
		require.NoError(t, r.Sync(t.Context()))
		seq := r.seq.Load()
		require.GreaterOrEqual(t, r.written.Load(), seq, "exchange %d: Sync returned before the events were written", i)
		require.Eventually(t, func() bool { return r.durable.Load() >= seq }, 5*time.Second, 5*time.Millisecond,
			"exchange %d: the events were never fsynced", i)
	}
	r.ioMu.Lock()
	defer r.ioMu.Unlock()
	require.Empty(t, r.unsyncedMeta, "the chain metadata was fsynced with the events")
	require.Empty(t, r.unsyncedDirs, "the chain directories were fsynced with the events")
}
