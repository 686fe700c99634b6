package extproc_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/extproc"
	"github.com/mcpguard/mcpguard/masking"
	"github.com/mcpguard/mcpguard/recordings"
)

// testRecorder is a recorder on a fresh spool and directory sink.
type testRecorder struct {
	rec   *recordings.Recorder
	sink  recordings.Sink
	key   ed25519.PrivateKey
	spool string
}

func newTestRecorder(t *testing.T) *testRecorder {
	t.Helper()
	cfg := recordings.DefaultConfig()
	cfg.ReplicaID = "r1"
	cfg.Spool.Dir = t.TempDir()
	sink, err := recordings.NewDir(t.TempDir())
	require.NoError(t, err)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	rec, err := recordings.Open(cfg, sink, key, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	t.Cleanup(func() { _ = rec.Close(t.Context()) })
	return &testRecorder{rec: rec, sink: sink, key: key, spool: cfg.Spool.Dir}
}

// closeAndRead closes the recorder, verifies the session and returns its events in the
// order they were recorded (seq) and as the reader merges them (time).
func (r *testRecorder) closeAndRead(t *testing.T, session string) []recordings.Event {
	t.Helper()
	require.NoError(t, r.rec.Close(t.Context()))
	a := recordings.NewArchive(r.sink, "")
	s, err := a.Find(t.Context(), session)
	require.NoError(t, err)
	v, err := a.Verify(t.Context(), s, r.key.Public().(ed25519.PublicKey))
	require.NoError(t, err)
	require.True(t, v.OK(), v.String())
	evs, err := a.Events(t.Context(), s)
	require.NoError(t, err)
	return evs
}

// spoolEvents decodes the events of the open chains in the spool.
func spoolEvents(t *testing.T, dir string) []recordings.Event {
	t.Helper()
	var out []recordings.Event
	for _, line := range strings.Split(spoolText(t, dir), "\n") {
		if line == "" || strings.HasPrefix(line, `{"type":"segment"`) {
			continue
		}
		var ev recordings.Event
		require.NoError(t, json.Unmarshal([]byte(line), &ev))
		out = append(out, ev)
	}
	return out
}

func step(e recordings.Event) string {
	switch {
	case e.Kind == recordings.KindNote && e.Note.Stage == "approvals":
		s, _ := e.Note.Attrs["step"].(string)
		return "approval " + s
	case e.Kind == recordings.KindNote:
		return e.Note.Stage + " " + e.Note.Kind
	}
	return string(e.Kind)
}

// A call held for approval is recorded in the order things happened, each event at its own
// time: received, decided by policy, approval requested, held, decided (by whom), released,
// forwarded, answered. The hold shows as the gap between held and decided.
func TestRecordingHeldCallTimeline(t *testing.T) {
	const delay = 300 * time.Millisecond
	svc := approvalService(t, time.Minute)
	ap, err := extproc.NewApprovals(svc)
	require.NoError(t, err)
	tr := newTestRecorder(t)
	h := start(t, extproc.DefaultConfig(), policyStage(t, ap), extproc.NewRecording(tr.rec, extproc.RecordingOptions{}))
	e := h.open(t, t.Context())
	sent := time.Now()
	e.post(deploy(1, "prod"), "mcp-protocol-version", "2025-06-18", "mcp-session-id", "sess-held")
	held(t, e)
	time.Sleep(delay)
	_, err = svc.Decide(t.Context(), pendingID(t, svc), releaseManager, true, "go")
	require.NoError(t, err)
	e.passed()
	e.responseHeaders(false, ":status", "200", "content-type", "application/json", "content-length", "60")
	require.NotNil(t, e.recv().GetResponseHeaders())
	e.responseBody([]byte(result(1, "deployed")), true)
	require.NotNil(t, e.recv().GetResponseBody())

	evs := tr.closeAndRead(t, "sess-held")
	var got []string
	at := map[string]time.Time{}
	for i, ev := range evs {
		got = append(got, step(ev))
		at[step(ev)] = ev.Time
		if i > 0 {
			require.False(t, ev.Time.Before(evs[i-1].Time), "events in time order")
			if ev.Kind != recordings.KindSessionEnd {
				require.Greater(t, ev.Seq, evs[i-1].Seq, "recorded in the order they happened: %s after %s", step(ev), step(evs[i-1]))
			}
		}
	}
	require.Equal(t, []string{
		"session_start", "request", "policy decision", "approval requested", "approval held",
		"approval granted", "approval released", "forward", "response", "session_end",
	}, got)
	require.WithinDuration(t, sent, at["request"], delay/2, "the request is recorded at its receipt, not its release")
	require.GreaterOrEqual(t, at["approval granted"].Sub(at["approval held"]), delay, "the hold lasted until the decision")
	require.GreaterOrEqual(t, at["forward"].Sub(at["request"]), delay, "forwarded after the hold")
	require.False(t, at["session_start"].After(at["request"]))
	for _, ev := range evs {
		switch step(ev) {
		case "approval granted":
			require.Equal(t, "rm-1", ev.Note.Attrs["approver"], "the decision names its decider")
		case "approval released":
			require.GreaterOrEqual(t, ev.Note.Attrs["held_ms"], float64(delay.Milliseconds()))
		case "forward":
			require.Equal(t, "deploy", ev.Tool)
		}
	}
}

// A client that goes away while its call is held still leaves the attempt in the recording.
func TestRecordingAbandonedHold(t *testing.T) {
	svc := approvalService(t, time.Minute)
	ap, err := extproc.NewApprovals(svc)
	require.NoError(t, err)
	tr := newTestRecorder(t)
	h := start(t, extproc.DefaultConfig(), policyStage(t, ap), extproc.NewRecording(tr.rec, extproc.RecordingOptions{}))
	ctx, cancel := context.WithCancel(t.Context())
	e := h.open(t, ctx)
	e.post(deploy(1, "prod"), "mcp-protocol-version", "2025-06-18", "mcp-session-id", "sess-gone")
	held(t, e)
	cancel()
	var got []string
	require.Eventually(t, func() bool {
		got = nil
		require.NoError(t, tr.rec.Sync(t.Context()))
		for _, ev := range spoolEvents(t, tr.spool) {
			got = append(got, step(ev))
		}
		return len(got) > 0 && got[len(got)-1] == "recording abandoned"
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, []string{"session_start", "request", "policy decision", "approval requested", "approval held", "recording abandoned"}, got)
}

// The initialize exchange, which names no session, is recorded in the session its answer
// opens: one conversation, one recording.
func TestRecordingSessionStartsAtInitialize(t *testing.T) {
	tr := newTestRecorder(t)
	h := start(t, extproc.DefaultConfig(), extproc.NewRecording(tr.rec, extproc.RecordingOptions{}))
	e := h.open(t, t.Context())
	e.post(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"probe","version":"1"}}}`,
		"mcp-protocol-version", "2025-06-18")
	e.passed()
	e.responseHeaders(false, ":status", "200", "content-type", "application/json", "content-length", "60", "mcp-session-id", "sess-new")
	require.NotNil(t, e.recv().GetResponseHeaders())
	e.responseBody([]byte(`{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"s","version":"1"}}}`), true)
	require.NotNil(t, e.recv().GetResponseBody())
	e = h.open(t, t.Context())
	e.post(toolsCall(1, "query"), "mcp-protocol-version", "2025-06-18", "mcp-session-id", "sess-new")
	e.passed()

	evs := tr.closeAndRead(t, "sess-new")
	var got []string
	for _, ev := range evs {
		got = append(got, step(ev)+" "+ev.Method)
		if ev.Kind != recordings.KindSessionEnd { // written by the recorder at shutdown
			require.Equal(t, "sess-new", ev.MCPSessionID, step(ev))
		}
	}
	require.Equal(t, []string{
		"session_start ", "request initialize", "forward initialize", "response initialize",
		"request tools/call", "forward tools/call", "session_end ",
	}, got)
	all, err := recordings.NewArchive(tr.sink, "").Sessions(t.Context())
	require.NoError(t, err)
	require.Len(t, all, 1, "no separate recording for the initialize exchange")
}

// Recorded arguments are masked (the upstream gets them as sent); the original is sealed to
// the configured recipient: it opens with that key only, and the chain still verifies.
func TestRecordingArgumentsMaskedAndSealed(t *testing.T) {
	const password = "Tr0ub4dor&3-horse"
	m, err := masking.New(masking.DefaultConfig())
	require.NoError(t, err)
	owner, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	other, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	sealer, err := recordings.NewSealer([]string{owner.Recipient().String()})
	require.NoError(t, err)

	tr := newTestRecorder(t)
	h := start(t, extproc.DefaultConfig(), extproc.NewRecording(tr.rec, extproc.RecordingOptions{Mask: m, Seal: sealer}))
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"login","arguments":{"user":"ops","password":"` + password + `"}}}`
	e := h.open(t, t.Context())
	e.post(body, "mcp-protocol-version", "2025-06-18", "mcp-session-id", "sess-secret")
	e.passed() // no body mutation: the upstream receives the password as sent
	e = h.open(t, t.Context())
	e.post(toolsCall(8, "query"), "mcp-protocol-version", "2025-06-18", "mcp-session-id", "sess-secret")
	e.passed()

	require.NotContains(t, spoolText(t, tr.spool), password, "never in the spool")
	evs := tr.closeAndRead(t, "sess-secret") // verifies: sealed blobs are inside the hash chain
	var reqs []recordings.Event
	for _, ev := range evs {
		raw, err := json.Marshal(ev)
		require.NoError(t, err)
		require.NotContains(t, string(raw), password)
		if ev.Kind == recordings.KindRequest {
			reqs = append(reqs, ev)
		}
	}
	require.Len(t, reqs, 2)
	require.Contains(t, string(reqs[0].Message), `"user":"ops"`)
	require.Contains(t, string(reqs[0].Message), "[REDACTED:")
	require.Equal(t, "masked", reqs[0].Note.Kind)
	require.NotEmpty(t, reqs[0].Sealed)
	require.Empty(t, reqs[1].Sealed, "nothing masked, nothing sealed")

	orig, err := recordings.Unseal(reqs[0].Sealed, owner)
	require.NoError(t, err)
	require.JSONEq(t, body, string(orig), "the request exactly as the client sent it")
	_, err = recordings.Unseal(reqs[0].Sealed, other)
	require.ErrorIs(t, err, recordings.ErrNotSealedTo)
}

const discoverBody = `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{` +
	`"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"probe","version":"1"}}}}`

// discover runs a sessionless server/discover exchange answered with JSON.
func discover(t *testing.T, h *harness) {
	t.Helper()
	e := h.open(t, t.Context())
	e.post(discoverBody, "mcp-protocol-version", "2026-07-28", "mcp-method", "server/discover")
	e.passed()
	e.responseHeaders(false, ":status", "200", "content-type", "application/json", "content-length", "60")
	require.NotNil(t, e.recv().GetResponseHeaders())
	e.responseBody([]byte(`{"jsonrpc":"2.0","id":1,"result":{"supportedVersions":["2025-06-18"]}}`), true)
	require.NotNil(t, e.recv().GetResponseBody())
}

// The server/discover probe a client sends before falling back to initialize starts the
// session's recording; a probe nothing follows goes to the caller's stateless recording.
func TestRecordingDiscoveryProbe(t *testing.T) {
	t.Run("then initialize", func(t *testing.T) {
		tr := newTestRecorder(t)
		rs := extproc.NewRecording(tr.rec, extproc.RecordingOptions{})
		h := start(t, extproc.DefaultConfig(), rs)
		discover(t, h)
		e := h.open(t, t.Context())
		e.post(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"probe","version":"1"}}}`,
			"mcp-protocol-version", "2025-06-18")
		e.passed()
		e.responseHeaders(true, ":status", "200", "mcp-session-id", "sess-p")
		require.NotNil(t, e.recv().GetResponseHeaders())
		require.NoError(t, rs.Close(t.Context()))

		var got []string
		for _, ev := range tr.closeAndRead(t, "sess-p") {
			got = append(got, step(ev)+" "+ev.Method)
		}
		require.Equal(t, []string{
			"session_start ", "request server/discover", "forward server/discover", "response server/discover",
			"request initialize", "forward initialize", "session_end ",
		}, got)
		all, err := recordings.NewArchive(tr.sink, "").Sessions(t.Context())
		require.NoError(t, err)
		require.Len(t, all, 1)
	})
	t.Run("waiting events are bounded", func(t *testing.T) {
		tr := newTestRecorder(t)
		rs := extproc.NewRecording(tr.rec, extproc.RecordingOptions{})
		h := start(t, extproc.DefaultConfig(), rs)
		discover(t, h)
		require.NoError(t, tr.rec.Sync(t.Context()))
		require.Empty(t, spoolEvents(t, tr.spool), "one probe waits")
		for range 30 { // three events each: more than the 64 a caller may keep waiting
			discover(t, h)
		}
		require.NoError(t, tr.rec.Sync(t.Context()))
		require.NotEmpty(t, spoolEvents(t, tr.spool), "a caller that only probes is recorded once its waiting events reach the bound")
		require.NoError(t, rs.Close(t.Context()))
	})
	t.Run("alone", func(t *testing.T) {
		tr := newTestRecorder(t)
		rs := extproc.NewRecording(tr.rec, extproc.RecordingOptions{})
		h := start(t, extproc.DefaultConfig(), rs)
		discover(t, h)
		require.NoError(t, rs.Close(t.Context()))
		key := recordings.SessionKey("", &recordings.Identity{Subject: caller.Subject, ClientID: caller.ClientID, Issuer: caller.Issuer}, "probe")
		var got []string
		for _, ev := range tr.closeAndRead(t, key) {
			got = append(got, step(ev)+" "+ev.Method)
		}
		require.Equal(t, []string{"session_start ", "request server/discover", "forward server/discover", "response server/discover", "session_end "}, got)
	})
}
