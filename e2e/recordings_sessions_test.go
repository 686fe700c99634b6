package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/e2e/harness"
	"github.com/mcpguard/mcpguard/e2e/mcpserver"
)

// recGuard starts an mcpguard recording to a directory, with short segments, sealing the
// original of masked arguments to sealTo, and returns it with a function running the
// recordings CLI against it.
func recGuard(t *testing.T, sealTo string) (*harness.Guard, func(args ...string) (string, string, error)) {
	t.Helper()
	g := extraGuard(t, t.TempDir(), map[string]any{
		"recordings": map[string]any{
			"replica_id": "e2e-rec",
			"segment":    map[string]any{"max_age": "200ms"},
			"arguments":  map[string]any{"mask": true, "seal_to": []string{sealTo}},
		},
	})
	return g, recordingsCLI(t, g)
}

// recordingsCLI runs `mcpguard recordings` against g's config: stdout, stderr, error.
func recordingsCLI(t *testing.T, g *harness.Guard) func(args ...string) (string, string, error) {
	return func(args ...string) (string, string, error) {
		cmd := exec.CommandContext(t.Context(), suiteBin(), append([]string{"recordings"}, append(args, "--config", g.ConfigPath)...)...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		return out.String(), errOut.String(), err
	}
}

// A call held for approval is recorded at the times things happened: received, held,
// decided by the release manager, released, forwarded; play shows the hold.
func TestRecordingsHeldCall(t *testing.T) {
	const delay = 1500 * time.Millisecond
	env := approvalGuard(t, map[string]any{"hold": "20s"}, "")
	cli := recordingsCLI(t, env.g)
	s := connect(t, env.url, env.agent, "2025-06-18", nil)
	session := s.ID()
	done := echoAsync(t, s, "ship it")
	id := pending(t, env.g, env.rm)
	time.Sleep(delay)
	code, body := api(t, env.g, "POST", "/v1/approvals/"+id+"/approve", env.rm, `{"reason":"release 42"}`)
	require.Equal(t, 200, code, body)
	r := <-done
	require.NoError(t, r.err)
	require.NoError(t, s.Close())
	require.Eventually(t, func() bool {
		out, _, err := cli("verify", session)
		return err == nil && strings.HasPrefix(out, "OK   "+session)
	}, 30*time.Second, 100*time.Millisecond)

	out, errOut, err := cli("export", session, "--format", "jsonl")
	require.NoError(t, err, errOut)
	at := map[string]time.Time{}
	var order []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev struct {
			Time   time.Time `json:"time"`
			Kind   string    `json:"kind"`
			Method string    `json:"method"`
			Tool   string    `json:"tool"`
			Note   *struct {
				Stage string         `json:"stage"`
				Attrs map[string]any `json:"attrs"`
			} `json:"note"`
		}
		require.NoError(t, json.Unmarshal([]byte(l), &ev))
		name := ev.Kind
		switch {
		case ev.Kind == "note" && ev.Note.Stage == "approvals":
			name = "approval " + ev.Note.Attrs["step"].(string)
			if name == "approval granted" {
				require.Equal(t, "rm-1", ev.Note.Attrs["approver"])
			}
		case ev.Tool != "echo":
			continue
		}
		order = append(order, name)
		at[name] = ev.Time
	}
	require.Equal(t, []string{"request", "approval requested", "approval held", "approval granted", "approval released", "forward", "response"}, order)
	require.GreaterOrEqual(t, at["approval granted"].Sub(at["approval held"]), delay)
	require.GreaterOrEqual(t, at["forward"].Sub(at["request"]), delay)
	require.Less(t, at["approval held"].Sub(at["request"]), delay, "the request is recorded at its receipt")

	out, errOut, err = cli("play", session, "--color", "never")
	require.NoError(t, err, errOut)
	held, granted := strings.Index(out, "approval held"), strings.Index(out, "approval granted")
	released, fwd := strings.Index(out, "approval released"), strings.Index(out, "⇢ forwarded tools/call echo after ")
	require.True(t, held >= 0 && held < granted && granted < released && released < fwd, out)
}

// sessionsListed returns the session column of `recordings ls`.
func sessionsListed(t *testing.T, cli func(args ...string) (string, string, error)) []string {
	t.Helper()
	out, errOut, err := cli("ls")
	require.NoError(t, err, errOut)
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		names = append(names, strings.Fields(l)[0])
	}
	return names
}

// One conversation is one recording, from its first exchange: on the stateful revisions the
// session starts at initialize (and at the server/discover probe a client sends first when
// it is not pinned to a revision); on the stateless 2026-07-28 revision the calls are grouped
// by identity and client. Arguments are recorded masked, the originals sealed.
func TestRecordingsOneConversation(t *testing.T) {
	const secret = "postgres://app:Tr0ub4dor3horse@db.internal:5432/app"
	owner, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	other, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	keys := t.TempDir()
	ownerKey, otherKey := filepath.Join(keys, "owner.txt"), filepath.Join(keys, "other.txt")
	require.NoError(t, os.WriteFile(ownerKey, []byte(owner.String()+"\n"), 0o600))
	require.NoError(t, os.WriteFile(otherKey, []byte(other.String()+"\n"), 0o600))

	for _, tc := range []struct {
		name, version string
		probe         bool // the client sends server/discover before initialize
	}{
		{name: "stateful pinned to 2025-11-25", version: "2025-11-25"},
		{name: "stateful after a server/discover probe", version: "", probe: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, cli := recGuard(t, owner.Recipient().String())
			token, err := g.Token(t.Context(), harness.TokenOptions{Subject: "agent-conv", Scopes: []string{"mcp:tools"}})
			require.NoError(t, err)
			up, err := mcpserver.Start(mcpserver.Options{Mode: mcpserver.Stateful})
			require.NoError(t, err)
			t.Cleanup(func() { _ = up.Close(context.WithoutCancel(t.Context())) })
			gw := gatewayFor(t, g, up.Addr())
			s, err := harness.Connect(t.Context(), harness.ClientOptions{Endpoint: up.URLVia(gw.Addr()), Token: token, Version: tc.version, DisableStandaloneSSE: true})
			require.NoError(t, err)
			session := s.ID()
			require.NotEmpty(t, session)
			call(t, s, "echo", map[string]any{"text": "connect with " + secret})
			require.NoError(t, s.Close())

			require.Eventually(t, func() bool {
				out, _, err := cli("verify", session)
				return err == nil && strings.HasPrefix(out, "OK   "+session)
			}, 30*time.Second, 100*time.Millisecond, "the session is closed, uploaded and verifies (sealed blobs inside the chain)")
			require.Equal(t, []string{session}, sessionsListed(t, cli), "no separate recording for the exchanges before the session id")

			out, errOut, err := cli("play", session, "--color", "never")
			require.NoError(t, err, errOut)
			require.Contains(t, out, "→ initialize")
			require.Less(t, strings.Index(out, "SESSION START"), strings.Index(out, "→ initialize"))
			require.Less(t, strings.Index(out, "→ initialize"), strings.Index(out, "→ tools/call echo"))
			require.Contains(t, out, "mcpguard-e2e", "the client's name, from initialize")
			if tc.probe {
				require.Contains(t, out, "→ server/discover")
				require.Less(t, strings.Index(out, "→ server/discover"), strings.Index(out, "→ initialize"), "the probe starts the recording")
			}
			require.Contains(t, out, "original sealed")
			exported, _, err := cli("export", session, "--format", "jsonl")
			require.NoError(t, err)
			require.NotContains(t, exported, "Tr0ub4dor3horse", "arguments are recorded masked")

			out, errOut, err = cli("unseal", "--identity", ownerKey, session)
			require.NoError(t, err, errOut)
			require.Contains(t, out, secret, "the holder of the key reads the original")
			require.Contains(t, out, "tools/call echo request ")
			out, errOut, err = cli("unseal", "--identity", otherKey, session)
			require.Error(t, err)
			require.NotContains(t, out, "Tr0ub4dor3horse")
			require.Contains(t, errOut, "not sealed to this identity")
			require.Contains(t, errOut, "not sealed to the identity in "+otherKey)
		})
	}

	t.Run("stateless 2026-07-28 grouped by identity and client", func(t *testing.T) {
		g, cli := recGuard(t, owner.Recipient().String())
		token, err := g.Token(t.Context(), harness.TokenOptions{Subject: "agent-sl", Scopes: []string{"mcp:tools"}})
		require.NoError(t, err)
		up, err := mcpserver.Start(mcpserver.Options{Mode: mcpserver.Stateless})
		require.NoError(t, err)
		t.Cleanup(func() { _ = up.Close(context.WithoutCancel(t.Context())) })
		gw := gatewayFor(t, g, up.Addr())
		for _, name := range []string{"agent-a", "agent-b"} {
			s, err := harness.Connect(t.Context(), harness.ClientOptions{Endpoint: up.URLVia(gw.Addr()), Token: token, Name: name})
			require.NoError(t, err)
			require.Empty(t, s.ID(), "stateless: no session id")
			call(t, s, "echo", map[string]any{"text": "one from " + name})
			call(t, s, "echo", map[string]any{"text": "two from " + name})
			require.NoError(t, s.Close())
		}
		// Stateless recordings close when idle or at shutdown.
		ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
		defer cancel()
		require.NoError(t, g.Stop(ctx))
		names := sessionsListed(t, cli)
		require.Len(t, names, 2, "one recording per identity and client: %v", names)
		for _, n := range names {
			require.True(t, strings.HasPrefix(n, "anon-"), n)
			out, errOut, err := cli("play", n, "--color", "never")
			require.NoError(t, err, errOut)
			require.Contains(t, out, "SESSION START agent-sl")
			require.Contains(t, out, "→ server/discover")
			require.Less(t, strings.Index(out, "→ server/discover"), strings.Index(out, "→ tools/call echo"))
			a, b := strings.Contains(out, "from agent-a"), strings.Contains(out, "from agent-b")
			require.NotEqual(t, a, b, "each client in its own recording")
			require.Equal(t, 2, strings.Count(out, "→ tools/call echo"), out)
			out, _, err = cli("verify", n)
			require.NoError(t, err, out)
		}
	})
}
