package app

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/recordings"
)

func TestUnseal(t *testing.T) {
	owner, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	other, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	s, err := recordings.NewSealer([]string{owner.Recipient().String()})
	require.NoError(t, err)
	sealed, err := s.Seal([]byte(`{"arguments":{"password":"hunter2"}}`))
	require.NoError(t, err)
	evs := []recordings.Event{
		{Seq: 1, Kind: recordings.KindRequest, Method: "tools/call", Tool: "plain", RequestID: "r-1"},
		{Seq: 2, Kind: recordings.KindRequest, Method: "tools/call", Tool: "login", RequestID: "r-2", Sealed: sealed, Time: time.Now()},
	}
	dir := t.TempDir()
	keyFile := func(id *age.X25519Identity) string {
		p := filepath.Join(dir, id.Recipient().String()[:12])
		require.NoError(t, os.WriteFile(p, []byte("# age key\n"+id.String()+"\n"), 0o600))
		return p
	}

	var out, errb bytes.Buffer
	ids, err := loadIdentities(keyFile(owner))
	require.NoError(t, err)
	require.NoError(t, unseal(&out, &errb, "s1", evs, ids, "k"))
	require.Contains(t, out.String(), "tools/call login request r-2 (seq 2)")
	require.Contains(t, out.String(), `"password":"hunter2"`)
	require.NotContains(t, out.String(), "plain", "only sealed requests are printed")

	out.Reset()
	path := keyFile(other)
	ids, err = loadIdentities(path)
	require.NoError(t, err)
	err = unseal(&out, &errb, "s1", evs, ids, path)
	require.ErrorContains(t, err, "1 of 1 sealed request(s) not sealed to the identity in "+path)
	require.Empty(t, out.String())
	require.Contains(t, errb.String(), "not sealed to this identity")

	_, err = loadIdentities("")
	require.ErrorContains(t, err, "--identity KEYFILE")
	_, err = loadIdentities(filepath.Join(dir, "missing"))
	require.Error(t, err)

	errb.Reset()
	require.NoError(t, unseal(&out, &errb, "s1", evs[:1], ids, path))
	require.Contains(t, errb.String(), "holds no sealed arguments")
}

// play shows a held call as the sequence it was, and --pace replays the hold itself while
// it cuts idle gaps.
func TestPlayShowsHold(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	hold := 300 * time.Millisecond
	note := func(at time.Duration, step string) recordings.Event {
		return recordings.Event{Time: t0.Add(at), Kind: recordings.KindNote, Note: &recordings.Note{Stage: "approvals", Kind: "approval", Attrs: map[string]any{"step": step}}}
	}
	evs := []recordings.Event{
		{Time: t0, Kind: recordings.KindRequest, Method: "tools/call", Tool: "deploy", Message: []byte(`{}`)},
		note(0, "requested"),
		note(time.Millisecond, "held"),
		note(hold, "granted"),
		note(hold, "released"),
		{Time: t0.Add(hold), Kind: recordings.KindForward, Method: "tools/call", Tool: "deploy", Note: &recordings.Note{Attrs: map[string]any{"waited_ms": float64(1500)}}},
	}
	var out bytes.Buffer
	start := time.Now()
	require.NoError(t, play(t.Context(), &out, evs, true, false, 300))
	require.GreaterOrEqual(t, time.Since(start), hold-time.Millisecond, "--pace replays the hold")
	text := out.String()
	for _, want := range []string{"approval held", "approval granted", "approval released", "⇢ forwarded tools/call deploy after 1.5s"} {
		require.Contains(t, text, want)
	}
	require.Less(t, strings.Index(text, "approval held"), strings.Index(text, "approval granted"))

	// A 20s hold is replayed whole; a 20s idle gap between calls is cut.
	held, decided := note(0, "held"), note(20*time.Second, "granted")
	require.Equal(t, 20*time.Second, paceGap(held.Time, decided))
	idle := recordings.Event{Time: t0.Add(20 * time.Second), Kind: recordings.KindRequest}
	require.Equal(t, 5*time.Second, paceGap(t0, idle))
}
