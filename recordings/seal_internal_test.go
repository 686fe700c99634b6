package recordings

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// TestRecoversRotatedSegments: segments rotated out of the commit path but not yet sealed
// when the process stops are sealed by the next start, in order, after the segments already
// sealed; one sealed whose file was not yet removed is not sealed twice. The spool is copied
// while the first recorder runs with its sealer stopped: what a SIGKILL would leave.
func TestRecoversRotatedSegments(t *testing.T) {
	for _, mode := range []SyncMode{SyncAlways, SyncInterval} {
		t.Run(string(mode), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.ReplicaID = "r1"
			cfg.Spool.Dir = t.TempDir()
			cfg.Spool.Sync = mode
			cfg.Segment.MaxBytes = 1 << 10
			_, key, err := ed25519.GenerateKey(rand.Reader)
			require.NoError(t, err)
			r, err := Open(cfg, downSink{}, key, nil, prometheus.NewRegistry())
			require.NoError(t, err)
			close(r.sealStop) // the sealer stops: rotated segments wait
			r.sealWG.Wait()

			recordExchanges(t, r, 6)
			r.sealMu.Lock()
			jobs := len(r.jobs)
			r.sealMu.Unlock()
			require.GreaterOrEqual(t, jobs, 3, "segments rotated and waiting for the sealer")
			// The first is sealed, its file left behind, as by a crash before its removal.
			first := r.jobs[0]
			body, err := os.ReadFile(first.path)
			require.NoError(t, err)
			require.NoError(t, r.sealSegment(first.c, body, first.seq, first.events, first.opened, first.facets))

			crashed := filepath.Join(t.TempDir(), "spool")
			require.NoError(t, exec.Command("cp", "-a", cfg.Spool.Dir, crashed).Run())
			r.sealStop = make(chan struct{})
			r.sealWG.Add(1)
			go r.sealer()
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			_ = r.Close(ctx) // what it does after the copy does not matter; its uploads time out

			cfg.Spool.Dir = crashed
			sink, err := NewDir(t.TempDir())
			require.NoError(t, err)
			r2, err := Open(cfg, sink, key, nil, prometheus.NewRegistry())
			require.NoError(t, err)
			require.NoError(t, r2.Close(t.Context()))
			a := NewArchive(sink, "")
			s, err := a.Find(t.Context(), "s")
			require.NoError(t, err)
			v, err := a.Verify(t.Context(), s, key.Public().(ed25519.PublicKey))
			require.NoError(t, err)
			require.True(t, v.OK(), v.String())
			require.Equal(t, 13, v.Events, "session start and 6 exchanges of 2 events")
			require.True(t, s.Chains[0].Manifest.Recovered)
		})
	}
}

// downSink is storage that stays unavailable: what the first recorder seals stays in its outbox.
type downSink struct{}

var errDown = errors.New("storage down")

func (downSink) Put(context.Context, string, []byte) error      { return errDown }
func (downSink) Get(context.Context, string) ([]byte, error)    { return nil, errDown }
func (downSink) List(context.Context, string) ([]string, error) { return nil, errDown }
func (downSink) Dirs(context.Context, string) ([]string, error) { return nil, errDown }

// TestSealFailureCountedAndRetried: a seal that fails is counted in
// mcpguard_recordings_seal_errors_total, keeps its place, and succeeds on a later tick once
// the cause is gone; nothing recorded is lost.
func TestSealFailureCountedAndRetried(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ReplicaID = "r1"
	cfg.Spool.Dir = t.TempDir()
	cfg.Segment.MaxBytes = 1 << 10
	cfg.Segment.MaxAge = 400 * time.Millisecond // the sealer retries every 100 ms
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	sink, err := NewDir(t.TempDir())
	require.NoError(t, err)
	r, err := Open(cfg, sink, key, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	close(r.sealStop) // hold the sealer while the fault is set up
	r.sealWG.Wait()

	recordExchanges(t, r, 4)
	r.sealMu.Lock()
	require.NotEmpty(t, r.jobs, "segments rotated and waiting for the sealer")
	log := filepath.Join(r.jobs[0].c.dir, "sealed.log")
	r.sealMu.Unlock()
	require.NoError(t, os.RemoveAll(log))
	require.NoError(t, os.Mkdir(log, 0o700)) // the seal cannot append to sealed.log

	r.sealStop = make(chan struct{})
	r.sealWG.Add(1)
	go r.sealer() // the rotations left a wake-up in sealWake: it runs the jobs at once
	require.Eventually(t, func() bool { return testutil.ToFloat64(r.m.sealErr) >= 1 }, 10*time.Second, 10*time.Millisecond)

	require.NoError(t, os.Remove(log)) // the cause is gone: the next tick seals
	require.Eventually(t, func() bool {
		r.sealMu.Lock()
		defer r.sealMu.Unlock()
		return len(r.jobs) == 0
	}, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, r.Record(Event{Kind: KindSessionEnd, Session: "s"}))
	require.NoError(t, r.Close(t.Context()))

	a := NewArchive(sink, "")
	s, err := a.Find(t.Context(), "s")
	require.NoError(t, err)
	v, err := a.Verify(t.Context(), s, key.Public().(ed25519.PublicKey))
	require.NoError(t, err)
	require.True(t, v.OK(), v.String())
	require.Equal(t, 10, v.Events, "session start, 4 exchanges of 2 events, session end")
}

// recordExchanges commits n exchanges of session "s", each a request and a response of
// about 450 bytes: with 1 KiB segments, a segment rotates every exchange or so.
func recordExchanges(t *testing.T, r *Recorder, n int) {
	t.Helper()
	msg := []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"` + strings.Repeat("x", 400) + `"}]}}`)
	for i := range n {
		for _, kind := range []Kind{KindRequest, KindResponse} {
			require.NoError(t, r.Record(Event{Kind: kind, Session: "s", RequestID: fmt.Sprintf("req-%d", i), Method: "tools/call", Tool: "echo", Message: msg}))
		}
		require.NoError(t, r.Sync(t.Context()))
	}
}
