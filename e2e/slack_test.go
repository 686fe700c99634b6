package e2e_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/approvals/slacktest"
)

// TestSlackClickReleasesHeldCall: an MCP call held for approval through the gateway is
// posted to (fake) Slack; a click on its Approve button, signed as Slack signs it, reaches
// mcpguard's admin port and the client gets its result. It reports the time from sending
// the signed click to the client holding the result, over slackClicks calls.
func TestSlackClickReleasesHeldCall(t *testing.T) {
	fake := slacktest.New(t)
	dir := t.TempDir()
	secret := "e2e-signing-secret"
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	env := approvalGuardIn(t, dir, map[string]any{
		"hold": "30s",
		"slack": map[string]any{
			"channel": fake.Channel, "bot_token_file": file("bot-token", fake.Token),
			"signing_secret_file": file("signing-secret", secret),
			"api_url":             fake.APIURL(), "response_url_prefix": fake.ResponseURLPrefix(),
			"users": []any{map[string]any{"team_id": "T1", "user_id": "URM", "subject": "rm-1", "groups": []string{"release"}}},
		},
		"notify": map[string]any{"backoff": "10ms"},
	}, "")
	s := connect(t, env.url, env.agent, "2025-06-18", nil)
	actions := "http://" + env.g.Admin + "/approvals/slack/actions"

	const slackClicks = 200
	var took []time.Duration
	for i := range slackClicks {
		msg := fmt.Sprintf("ship %d", i)
		done := echoAsync(t, s, msg)
		var m slacktest.Message
		require.Eventually(t, func() bool {
			posts, _, _ := fake.Snapshot()
			if len(posts) != i+1 {
				return false
			}
			m = posts[i]
			return true
		}, wait, 2*time.Millisecond)
		require.Contains(t, m.Text, "`echo`")
		body := fake.Click(m, "approve", "T1", "URM")
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, actions, bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		slacktest.Sign(req, secret, time.Now(), body)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		r := <-done
		require.NoError(t, r.err)
		require.Equal(t, msg, text(t, r.res))
		took = append(took, r.at.Sub(start))
	}
	slices.Sort(took)
	pct := func(p float64) time.Duration { return took[min(len(took)-1, int(p*float64(len(took))))] }
	t.Logf("signed Slack click → held tools/call result, %d clicks: p50 %v, p90 %v, p99 %v, max %v",
		len(took), pct(0.50), pct(0.90), pct(0.99), took[len(took)-1])

	// Every message ends up showing who approved.
	require.Eventually(t, func() bool {
		_, updates, _ := fake.Snapshot()
		approved := 0
		for _, u := range updates {
			if strings.Contains(u.Text, "Approved* by rm-1 (client slack)") {
				approved++
			}
		}
		return approved >= slackClicks
	}, wait, 10*time.Millisecond)
}
