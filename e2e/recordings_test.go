package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/e2e/harness"
	"github.com/mcpguard/mcpguard/e2e/mcpserver"
	"github.com/mcpguard/mcpguard/recordings/recordingstest"
)

// A session with allowed and denied calls is recorded, uploaded to S3 (versitygw, Object
// Lock on), then listed, played, verified and exported with the mcpguard CLI.
func TestRecordings(t *testing.T) {
	s3 := recordingstest.StartS3(t)
	bucket := s3.Bucket(t, "recordings", true)
	dir := t.TempDir()
	g := extraGuard(t, dir, map[string]any{
		"recordings": map[string]any{
			"replica_id": "e2e-1",
			"segment":    map[string]any{"max_age": "200ms"},
			"upload":     map[string]any{"min_backoff": "20ms", "max_backoff": "200ms"},
			"sink": map[string]any{"type": "s3", "prefix": "mcp", "s3": map[string]any{
				"endpoint": bucket.Endpoint, "region": bucket.Region, "bucket": bucket.Bucket,
				"path_style": true, "insecure": true, "access_key": bucket.AccessKey, "secret_key": bucket.SecretKey,
				"object_lock": map[string]any{"mode": "GOVERNANCE", "days": 1},
			}},
		},
	})
	token, err := g.Token(t.Context(), harness.TokenOptions{Subject: "agent-rec", Scopes: []string{"mcp:tools"}})
	require.NoError(t, err)
	up, err := mcpserver.Start(mcpserver.Options{Mode: mcpserver.Stateful})
	require.NoError(t, err)
	t.Cleanup(func() { _ = up.Close(context.WithoutCancel(t.Context())) })
	gw := gatewayFor(t, g, up.Addr())

	s, err := harness.Connect(t.Context(), harness.ClientOptions{Endpoint: up.URLVia(gw.Addr()), Token: token, Version: "2025-06-18", Client: clientOpts(nil)})
	require.NoError(t, err)
	session := s.ID()
	require.NotEmpty(t, session)
	echoed := text(t, call(t, s, "echo", map[string]any{"text": "recorded hello"}))
	_, err = s.CallTool(t.Context(), &mcp.CallToolParams{Name: "execute_sql", Arguments: map[string]any{"query": "DROP TABLE users"}})
	var rpcErr *jsonrpc.Error
	require.ErrorAs(t, err, &rpcErr, "the default policy refuses destructive SQL")
	selected := text(t, call(t, s, "execute_sql", map[string]any{"query": "SELECT id, email FROM users WHERE id = 1"}))
	require.NoError(t, s.Close()) // DELETE ends the session: its chain is signed and uploaded

	cli := func(args ...string) (string, error) {
		cmd := exec.CommandContext(t.Context(), suiteBin(), append([]string{"recordings"}, append(args, "--config", g.ConfigPath)...)...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		return out.String() + errOut.String(), err
	}
	require.Eventually(t, func() bool {
		out, err := cli("verify", session)
		return err == nil && strings.HasPrefix(out, "OK   "+session)
	}, 30*time.Second, 100*time.Millisecond, "the session is uploaded and verifies")

	out, err := cli("ls", "--identity", "agent-rec", "--tool", "execute_sql", "--since", "1h")
	require.NoError(t, err, out)
	require.Contains(t, out, session)
	out, err = cli("ls", "--identity", "somebody-else")
	require.NoError(t, err, out)
	require.NotContains(t, out, session)

	out, err = cli("play", session, "--color", "never")
	require.NoError(t, err, out)
	for _, want := range []string{
		"SESSION START agent-rec", "→ initialize", "→ tools/call echo", "recorded hello", "✗ DENIED", "DROP TABLE users",
		"sql-destructive", "→ tools/call execute_sql", "SESSION END", `"reason":"deleted"`,
	} {
		require.Contains(t, out, want)
	}
	require.NotContains(t, out, "\x1b[", "no colour when not a terminal")
	require.Contains(t, out, jsonText(t, echoed), "responses as the client received them")
	require.Contains(t, out, jsonText(t, selected)[:20])

	out, err = cli("export", session, "--format", "jsonl")
	require.NoError(t, err, out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Greater(t, len(lines), 6)
	for _, l := range lines {
		var ev map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &ev), l)
		require.Equal(t, session, ev["session"])
	}

	// The initialize exchange (before the session had an id) is in the session's recording:
	// there is no other session to report.
	out, err = cli("verify", "--all")
	require.NoError(t, err, out)
	require.Equal(t, 1, strings.Count(out, "OK   ")-strings.Count(out, "OK   replica "), out)
	require.Contains(t, out, "OK   "+session)

	// Shutdown closes every open session and uploads within its deadline.
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	require.NoError(t, g.Stop(ctx))
	out, err = cli("verify", "--all")
	require.NoError(t, err, out)
	require.Equal(t, 1, strings.Count(out, "OK   ")-strings.Count(out, "OK   replica "), out)
	require.Contains(t, out, "OK   replica e2e-1 epoch ", "the replica's manifests and index parts chain without gaps")
}

// jsonText is how s appears inside a recorded JSON message.
func jsonText(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	require.NoError(t, err)
	return strings.Trim(string(b), `"`)
}
