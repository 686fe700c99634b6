package app

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestConfigValidateNotifySecrets: config validate names each webhook and Slack problem by
// its field path and line, and reads the secret files the service will read.
func TestConfigValidateNotifySecrets(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "bot-token")
	require.NoError(t, os.WriteFile(empty, []byte("\n"), 0o600))
	missing := filepath.Join(dir, "missing")

	var def bytes.Buffer
	require.NoError(t, Run(t.Context(), []string{"config", "default"}, &def, &bytes.Buffer{}))
	cfg := strings.Replace(def.String(), "  hold: 25s\n", "  hold: 25s\n"+
		"  notify:\n    webhooks:\n"+
		"      - {url: https://hooks.example/a, format: json}\n"+
		"      - {name: audit, url: https://audit.example/, format: json, secret_file: "+missing+"}\n"+
		"  slack:\n    channel: C0123\n    bot_token_file: "+empty+"\n    signing_secret_file: "+missing+"\n"+
		"    users:\n      - {team_id: T1, user_id: U1, subject: alice, groups: []}\n", 1)
	path := filepath.Join(dir, "mcpguard.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))

	var errb bytes.Buffer
	require.Error(t, Run(t.Context(), []string{"config", "validate", path}, &bytes.Buffer{}, &errb))
	got := errb.String()
	for _, want := range []string{
		"approvals.notify.webhooks[0].secret_file: required for format json",
		"approvals.slack.users[0].groups: at least one approver group required",
		"approvals.notify.webhooks[1].secret_file: read secret: open " + missing + ": no such file or directory",
		"approvals.slack.bot_token_file: " + empty + " is empty",
		"approvals.slack.signing_secret_file: read secret: open " + missing,
	} {
		require.Contains(t, got, want)
	}
}
