package recordings_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/recordings"
)

// testConfig is a fast configuration spooling under a temp dir.
func testConfig(t *testing.T) recordings.Config {
	t.Helper()
	c := recordings.DefaultConfig()
	c.ReplicaID = "r1"
	c.Spool.Dir = t.TempDir()
	c.Sink.Dir.Path = t.TempDir()
	c.Upload.MinBackoff = 10 * time.Millisecond
	c.Upload.MaxBackoff = 100 * time.Millisecond
	return c
}

func testKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return k
}

func openRecorder(t *testing.T, cfg recordings.Config, sink recordings.Sink, key ed25519.PrivateKey) *recordings.Recorder {
	t.Helper()
	r, err := recordings.Open(cfg, sink, key, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

var alice = &recordings.Identity{Subject: "agent-1", ClientID: "client-1", Issuer: "https://issuer.example", Groups: []string{"ops"}}

// exchange records one tools/call exchange of session s and waits for durability.
func exchange(t testing.TB, r *recordings.Recorder, s string, n int) {
	t.Helper()
	rid := fmt.Sprintf("req-%s-%d", s, n) // unique, as x-request-id is
	require.NoError(t, r.Record(recordings.Event{
		Kind: recordings.KindRequest, Session: s, RequestID: rid, Identity: alice,
		Method: "tools/call", Tool: "echo", Message: []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}`),
	}))
	require.NoError(t, r.Record(recordings.Event{
		Kind: recordings.KindNote, Session: s, RequestID: rid,
		Note: &recordings.Note{Stage: "policy", Kind: "decision", Attrs: map[string]any{"rule": "allow-echo", "action": "allow"}},
	}))
	require.NoError(t, r.Record(recordings.Event{
		Kind: recordings.KindResponse, Session: s, RequestID: rid, Method: "tools/call", Status: 200,
		Message: []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hi"}]}}`),
	}))
	require.NoError(t, r.Sync(context.Background()))
}

// closeAndVerify closes r and returns the verdict of session s in sink.
func verify(t *testing.T, sink recordings.Sink, prefix, s string, pub ed25519.PublicKey) recordings.Verdict {
	t.Helper()
	a := recordings.NewArchive(sink, prefix)
	sess, err := a.Find(t.Context(), s)
	require.NoError(t, err)
	v, err := a.Verify(t.Context(), sess, pub)
	require.NoError(t, err)
	return v
}
