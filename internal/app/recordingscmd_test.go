package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/recordings"
)

// recordedDir records sessions with the service's key and layout under a data dir and
// returns the config path the CLI reads them with.
func recordedDir(t *testing.T, sessions ...string) (cfgPath, dataDir string) {
	t.Helper()
	dataDir = t.TempDir()
	cfgPath = filepath.Join(dataDir, "mcpguard.yaml")
	conf := strings.Replace(devConfig, "DATA_DIR", dataDir, 1) + "recordings:\n  replica_id: r1\n"
	require.NoError(t, os.WriteFile(cfgPath, []byte(conf), 0o600))
	key, _, err := recordings.LoadKey(filepath.Join(dataDir, "recordings-signing-key.pem"), true)
	require.NoError(t, err)
	rc := recordings.DefaultConfig()
	rc.ReplicaID = "r1"
	rc.Spool.Dir = filepath.Join(dataDir, "spool")
	sink, err := recordings.NewDir(filepath.Join(dataDir, "recordings"))
	require.NoError(t, err)
	r, err := recordings.Open(rc, sink, key, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	long := strings.Repeat("x", 400)
	for _, s := range sessions {
		rid := "req-" + s
		require.NoError(t, r.Record(recordings.Event{
			Kind: recordings.KindRequest, Session: s, RequestID: rid, Identity: &recordings.Identity{Subject: "agent-" + s, Issuer: "https://issuer"},
			Method: "tools/call", Tool: "echo", Message: []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + long + `TAILMARK"}}}`),
		}))
		require.NoError(t, r.Record(recordings.Event{
			Kind: recordings.KindNote, Session: s, RequestID: rid,
			Note: &recordings.Note{Stage: "policy", Kind: "decision", Attrs: map[string]any{"rule": "rule-" + s, "action": "deny"}},
		}))
	}
	require.NoError(t, r.Close(context.Background()))
	return cfgPath, dataDir
}

func runRec(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = Run(t.Context(), append([]string{"recordings"}, args...), &out, &errb)
	return out.String(), errb.String(), err
}

func TestRecordingsPlayVerifiesFirst(t *testing.T) {
	cfg, dataDir := recordedDir(t, "alpha-1", "beta-1")
	day := time.Now().UTC().Format("2006/01/02")

	out, errOut, err := runRec(t, "play", "alpha", "--config", cfg)
	require.NoError(t, err, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.True(t, strings.HasPrefix(lines[0], "verified: OK   alpha-1: 1 chain(s)"), out)
	today := time.Now().UTC().Format("2006-01-02 ")
	for _, l := range lines[1:] {
		require.True(t, strings.HasPrefix(l, today), "every line carries the date: %q", l)
	}
	require.Contains(t, out, "…", "messages are cut at 300 characters")
	require.NotContains(t, out, "TAILMARK")

	out, errOut, err = runRec(t, "play", "alpha-1", "--full", "--config", cfg)
	require.NoError(t, err, errOut)
	require.Contains(t, out, strings.Repeat("x", 400)+`TAILMARK"`, "--full shows whole messages")

	// A session copied under another name fails verification: play refuses it.
	src := filepath.Join(dataDir, "recordings", filepath.FromSlash(day), "alpha-1")
	dst := filepath.Join(dataDir, "recordings", filepath.FromSlash(day), "gamma-1")
	require.NoError(t, os.CopyFS(dst, os.DirFS(src)))
	out, errOut, err = runRec(t, "play", "gamma-1", "--config", cfg)
	require.ErrorContains(t, err, "session gamma-1 failed verification; not playing it (--force plays it with a warning)")
	require.Contains(t, errOut, "FAIL gamma-1: chain r1~")
	require.Contains(t, errOut, "manifest names session alpha-1")
	require.Empty(t, out, "nothing is played")

	out, errOut, err = runRec(t, "play", "gamma-1", "--force", "--config", cfg)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(out, "WARNING: VERIFICATION FAILED, playing anyway (--force): FAIL gamma-1"), out)
	require.Contains(t, errOut, "WARNING: session gamma-1 failed verification")
	require.Contains(t, out, "tools/call")

	// verify of the copy fails too, and verify --all names it as not indexed.
	_, _, err = runRec(t, "verify", "gamma-1", "--config", cfg)
	require.Error(t, err)
	out, _, err = runRec(t, "verify", "--all", "--config", cfg)
	require.Error(t, err)
	require.Contains(t, out, "OK   alpha-1")
	require.Contains(t, out, "FAIL gamma-1")
}

func TestRecordingsLsFiltersAndPrefixes(t *testing.T) {
	cfg, _ := recordedDir(t, "alpha-1", "alpha-2", "beta-1")
	out, errOut, err := runRec(t, "ls", "--since", "1d", "--config", cfg)
	require.NoError(t, err, errOut)
	for _, s := range []string{"alpha-1", "alpha-2", "beta-1"} {
		require.Contains(t, out, s)
	}
	out, _, err = runRec(t, "ls", "--identity", "agent-beta-1", "--decision", "deny", "--tool", "echo", "--config", cfg)
	require.NoError(t, err)
	require.Contains(t, out, "beta-1")
	require.NotContains(t, out, "alpha")
	out, _, err = runRec(t, "ls", "--rule", "rule-alpha-2", "--config", cfg)
	require.NoError(t, err)
	require.Contains(t, out, "alpha-2")
	require.NotContains(t, out, "alpha-1")
	out, _, err = runRec(t, "ls", "--request-id", "req-alpha-1", "--config", cfg)
	require.NoError(t, err)
	require.Contains(t, out, "alpha-1")
	require.NotContains(t, out, "alpha-2")
	out, _, err = runRec(t, "ls", "--until", "1d", "--config", cfg)
	require.NoError(t, err)
	require.NotContains(t, out, "alpha")
	_, _, err = runRec(t, "ls", "--since", "yesterday", "--config", cfg)
	require.ErrorContains(t, err, `--since: "yesterday": want a duration`)

	_, _, err = runRec(t, "play", "alpha", "--config", cfg)
	require.ErrorContains(t, err, `session "alpha" is ambiguous: it starts 2 sessions: alpha-1, alpha-2`)
	out, _, err = runRec(t, "play", "alpha", "--request-id", "req-alpha-2", "--config", cfg)
	require.NoError(t, err)
	require.Contains(t, out, "verified: OK   alpha-2")
	_, _, err = runRec(t, "play", "zeta", "--config", cfg)
	require.ErrorIs(t, err, recordings.ErrNotFound)
}

// policy replay re-decides the recorded requests with a draft and reports each changed
// decision with its rule, identity and request id.
func TestPolicyReplay(t *testing.T) {
	cfg, dataDir := recordedDir(t, "alpha-1", "beta-1", "gamma-1")
	draft := filepath.Join(dataDir, "draft.yaml")
	require.NoError(t, os.WriteFile(draft, []byte(`version: 1
default: deny
rules:
  - name: echo-for-alpha
    when: request.tool == "echo" && identity.subject == "agent-alpha-1"
    action: allow
  - name: echo-for-gamma
    when: request.tool == "echo" && identity.subject == "agent-gamma-1"
    action: deny
  - name: others
    when: request.method != "tools/call"
    action: allow
`), 0o600))
	var out, errb bytes.Buffer
	require.NoError(t, Run(t.Context(), []string{"policy", "replay", draft, "--since", "1d", "--config", cfg}, &out, &errb), errb.String())
	got := out.String()
	require.Contains(t, got, "re-decided 3 recorded request(s) of 3 session(s)")
	require.Contains(t, got, "1 decision(s) would change", "beta and gamma stay denied (by other rules): no change")
	require.Contains(t, got, "echo-for-alpha: deny → allow")
	require.Contains(t, got, "[req-alpha-1]")
	require.Contains(t, got, "agent-alpha-1")
	require.Regexp(t, `req-alpha-1  session alpha-1  agent-alpha-1  tools/call echo: deny \(rule-alpha-1\) → allow \(echo-for-alpha\)`, got)
	require.NotContains(t, got, "req-beta-1")

	out.Reset()
	require.NoError(t, Run(t.Context(), []string{"policy", "replay", draft, "--since", "1d", "--identity", "agent-beta-1", "--config", cfg}, &out, &errb))
	require.Contains(t, out.String(), "re-decided 1 recorded request(s) of 1 session(s)")
	require.Contains(t, out.String(), "0 decision(s) would change")
}
