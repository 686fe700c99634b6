package replay_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/recordings"
	"github.com/mcpguard/mcpguard/replay"
)

// BenchmarkSessionPage renders the timeline of a session of 1,000 calls (3,002 events):
// resolve through the index, verify, read and render, on the directory sink.
func BenchmarkSessionPage(b *testing.B) {
	cfg := recordings.DefaultConfig()
	cfg.ReplicaID = "r1"
	cfg.Spool.Dir = b.TempDir()
	cfg.Sink.Dir.Path = b.TempDir()
	sink, err := recordings.NewDir(cfg.Sink.Dir.Path)
	require.NoError(b, err)
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(b, err)
	r, err := recordings.Open(cfg, sink, key, nil, prometheus.NewRegistry())
	require.NoError(b, err)
	id := &recordings.Identity{Subject: "agent-1", Issuer: "https://idp"}
	for i := range 1000 {
		rid := fmt.Sprintf("rid-%d", i)
		require.NoError(b, r.Record(recordings.Event{
			Kind: recordings.KindRequest, Session: "big", RequestID: rid, Identity: id, Method: "tools/call", Tool: "echo",
			Message: []byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello %d"}}}`, i, i)),
		}))
		require.NoError(b, r.Record(recordings.Event{
			Kind: recordings.KindNote, Session: "big", RequestID: rid,
			Note: &recordings.Note{Stage: "policy", Kind: "decision", Attrs: map[string]any{"rule": "allow-echo", "action": "allow"}},
		}))
		require.NoError(b, r.Record(recordings.Event{
			Kind: recordings.KindResponse, Session: "big", RequestID: rid, Status: 200,
			Message: []byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"result":{"content":[{"type":"text","text":"hello %d"}]}}`, i, i)),
		}))
	}
	require.NoError(b, r.Record(recordings.Event{Kind: recordings.KindSessionEnd, Session: "big"}))
	require.NoError(b, r.Sync(b.Context()))
	require.NoError(b, r.Close(b.Context()))
	rp, err := replay.New(sink, "", replay.Options{Readers: []string{"security-team"}, Auth: auth, PublicKey: pub})
	require.NoError(b, err)
	h := rp.Routes()["GET /recordings/{session}"]
	mux := http.NewServeMux()
	mux.Handle("GET /recordings/{session}", h)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequestWithContext(b.Context(), "GET", "/recordings/big", nil)
		req.Header.Set("Authorization", "Bearer reader")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}
