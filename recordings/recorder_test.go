package recordings_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/recordings"
)

func TestRecordUploadVerifyPlay(t *testing.T) {
	cfg := testConfig(t)
	cfg.Segment.MaxBytes = 1 << 10 // several segments
	sink, err := recordings.NewDir(cfg.Sink.Dir.Path)
	require.NoError(t, err)
	key := testKey(t)
	r := openRecorder(t, cfg, sink, key)
	for i := range 10 {
		exchange(t, r, "sess-1", i)
	}
	require.NoError(t, r.Record(recordings.Event{Kind: recordings.KindSessionEnd, Session: "sess-1"}))
	require.NoError(t, r.Sync(t.Context()))
	require.NoError(t, r.Close(t.Context()))

	v := verify(t, sink, "", "sess-1", key.Public().(ed25519.PublicKey))
	require.True(t, v.OK(), v.String())
	require.Greater(t, v.Segments, 1)
	require.Equal(t, 32, v.Events) // start + 10*3 + end

	a := recordings.NewArchive(sink, "")
	s, err := a.Find(t.Context(), "sess-1")
	require.NoError(t, err)
	require.Len(t, s.Chains, 1)
	require.Equal(t, []string{"echo"}, s.Chains[0].Manifest.Tools)
	require.Equal(t, "agent-1", s.Chains[0].Manifest.Identity.Subject)
	evs, err := a.Events(t.Context(), s)
	require.NoError(t, err)
	require.Len(t, evs, 32)
	require.Equal(t, recordings.KindSessionStart, evs[0].Kind)
	require.Equal(t, recordings.KindSessionEnd, evs[len(evs)-1].Kind)
	for i := 1; i < len(evs); i++ {
		require.Greater(t, evs[i].Seq, evs[i-1].Seq)
	}
}

func TestVerifyOtherKeyFails(t *testing.T) {
	cfg := testConfig(t)
	sink, err := recordings.NewDir(cfg.Sink.Dir.Path)
	require.NoError(t, err)
	r := openRecorder(t, cfg, sink, testKey(t))
	exchange(t, r, "s", 0)
	require.NoError(t, r.Close(context.Background()))
	v := verify(t, sink, "", "s", testKey(t).Public().(ed25519.PublicKey))
	require.False(t, v.OK())
	require.Contains(t, v.String(), "signature invalid")
}

// Sessions that end while other sessions' events are being flushed must not race on the
// chain state the flush reads (run with -race).
func TestEndWhileFlushing(t *testing.T) {
	cfg := testConfig(t)
	cfg.Segment.MaxBytes = 1 << 10 // seal often, so flushes look at chain state
	sink, err := recordings.NewDir(cfg.Sink.Dir.Path)
	require.NoError(t, err)
	key := testKey(t)
	r := openRecorder(t, cfg, sink, key)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 8 {
				s := fmt.Sprintf("s-%d-%d", w, i)
				for n := range 20 {
					msg := fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}`, n)
					if err := r.Record(recordings.Event{Kind: recordings.KindRequest, Session: s, Identity: alice, Method: "tools/call", Tool: "echo", Message: msg}); err != nil {
						t.Error(err)
					}
				}
				// End without syncing first: the session's pending events may be in
				// another goroutine's flush while it ends.
				if err := r.Record(recordings.Event{Kind: recordings.KindSessionEnd, Session: s}); err != nil {
					t.Error(err)
				}
				if err := r.Sync(context.Background()); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, r.Sync(t.Context()))
	require.NoError(t, r.Close(t.Context()))
	for w := range 4 {
		for i := range 8 {
			v := verify(t, sink, "", fmt.Sprintf("s-%d-%d", w, i), key.Public().(ed25519.PublicKey))
			require.True(t, v.OK(), v.String())
		}
	}
}

// A chain's manifest lists each request id once, in the order seen, up to 256, and says when
// there were more, however often the chain was flushed in between.
func TestManifestRequestIDs(t *testing.T) {
	for _, n := range []int{10, 256, 300} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			cfg := testConfig(t)
			sink, err := recordings.NewDir(cfg.Sink.Dir.Path)
			require.NoError(t, err)
			r := openRecorder(t, cfg, sink, testKey(t))
			var want []string
			for i := range n {
				id := fmt.Sprintf("req-%03d", i)
				if i < 256 {
					want = append(want, id)
				}
				for range 2 { // request and response of the same exchange
					require.NoError(t, r.Record(recordings.Event{Kind: recordings.KindRequest, Session: "s", RequestID: id, Tool: "echo", Message: []byte(`{}`)}))
				}
				require.NoError(t, r.Sync(t.Context()))
			}
			require.NoError(t, r.Record(recordings.Event{Kind: recordings.KindSessionEnd, Session: "s"}))
			require.NoError(t, r.Close(t.Context()))
			s, err := recordings.NewArchive(sink, "").Find(t.Context(), "s")
			require.NoError(t, err)
			require.Len(t, s.Chains, 1)
			m := s.Chains[0].Manifest
			require.Equal(t, want, m.RequestIDs)
			require.Equal(t, n > 256, m.RequestIDsTruncated)
		})
	}
}
