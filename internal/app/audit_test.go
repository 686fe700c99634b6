package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/e2e/harness"
)

const auditFile = "../../docs/audit.md"

// documentedAuditFields reads the field table of docs/audit.md.
func documentedAuditFields(t *testing.T) map[string]bool {
	t.Helper()
	doc, err := os.ReadFile(auditFile)
	require.NoError(t, err)
	const begin, end = "<!-- audit fields:", "<!-- end of audit fields -->"
	i, j := bytes.Index(doc, []byte(begin)), bytes.Index(doc, []byte(end))
	require.True(t, i >= 0 && j > i, "field table markers missing in %s", auditFile)
	fields := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|").FindAllSubmatch(doc[i:j], -1) {
		fields[string(m[1])] = true
	}
	require.Contains(t, fields, "outcome")
	return fields
}

// TestAuditEvents drives every outcome through the Envoy emulator and the real service and
// checks that each produces exactly one event, with only the documented fields and no
// argument value.
func TestAuditEvents(t *testing.T) {
	documented := documentedAuditFields(t)
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(pol, []byte(metricsPolicy), 0o600))
	out := filepath.Join(dir, "audit.jsonl")
	in := start(t, devConfig+fmt.Sprintf(`policy:
  file: %s
masking:
  enabled: true
  requests:
    tool_arguments: true
approvals:
  hold: 300ms
  approvers: [release]
audit:
  enabled: true
  output: %s
`, pol, out))
	up := metricsUpstream(t)
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	gw, err := harness.StartGateway(t.Context(), harness.GatewayOptions{Root: root, GRPC: in.grpc, Admin: in.admin, Upstream: up.addr})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 5*time.Second)
		defer cancel()
		_ = gw.Close(ctx)
	})

	res, err := http.Post(gw.URL(), "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	require.NoError(t, err)
	require.NoError(t, res.Body.Close())
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)

	tok := in.token(t, "--sub", "agent-1", "--scope", "mcp:tools", "--ttl", "10m")
	s, err := harness.Connect(t.Context(), harness.ClientOptions{Endpoint: gw.URL(), Token: tok, Version: harness.V20251125, DisableStandaloneSSE: true})
	require.NoError(t, err)
	_, err = s.ListTools(t.Context(), nil)
	require.NoError(t, err)
	_, err = s.CallTool(t.Context(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "card 4111 1111 1111 1111"}})
	require.NoError(t, err)
	_, err = s.CallTool(t.Context(), &mcp.CallToolParams{Name: "execute_sql", Arguments: map[string]any{"query": "DROP DATABASE prod"}})
	require.ErrorContains(t, err, "Destructive SQL is not allowed")
	deploy := &mcp.CallToolParams{Name: "deploy", Arguments: map[string]any{"service": "payments-api"}}
	_, err = s.CallTool(t.Context(), deploy)
	require.ErrorContains(t, err, "approval pending")

	// An approver approves through the API; the retried call passes on the grant.
	approver := in.token(t, "--sub", "alice", "--groups", "release", "--aud", harness.ApproverAudience)
	id := pendingApproval(t, in.admin, approver)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+in.admin+"/v1/approvals/"+id+"/approve", strings.NewReader(`{"reason":"ok"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+approver)
	req.Header.Set("Content-Type", "application/json")
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, res.Body.Close())
	require.Equal(t, http.StatusOK, res.StatusCode)
	r, err := s.CallTool(t.Context(), deploy)
	require.NoError(t, err)
	require.Equal(t, "deployed", r.Content[0].(*mcp.TextContent).Text)
	require.NoError(t, s.Close())

	var evs []map[string]any
	require.Eventually(t, func() bool {
		evs = readAudit(t, out)
		return count(evs, "approved", "deploy") > 0 && count(evs, "allowed", "") > 0
	}, 10*time.Second, 50*time.Millisecond)

	raw, err := os.ReadFile(out)
	require.NoError(t, err)
	for _, secret := range []string{"4111", "prod", "payments-api", tok[:20]} {
		require.NotContains(t, string(raw), secret, "no argument value or token in audit events")
	}
	for _, ev := range evs {
		for k := range ev {
			require.True(t, documented[k], "field %q is not in the table of %s: %v", k, auditFile, ev)
		}
		for _, k := range []string{"time", "outcome", "stage"} {
			require.NotEmpty(t, ev[k], "%s missing: %v", k, ev)
		}
		_, err := time.Parse(time.RFC3339Nano, ev["time"].(string))
		require.NoError(t, err)
		require.NoError(t, audit.Outcome(ev["outcome"].(string)).Validate())
	}

	one := func(outcome, tool string, want map[string]any) map[string]any {
		t.Helper()
		var got []map[string]any
		for _, ev := range evs {
			if ev["outcome"] == outcome && (tool == "" || ev["tool"] == tool) && matchAll(ev, want) {
				got = append(got, ev)
			}
		}
		require.Len(t, got, 1, "%s %s %v among %v", outcome, tool, want, evs)
		return got[0]
	}
	door := one("denied", "", map[string]any{"stage": "authz"})
	require.InDelta(t, 401, door["status"], 0)
	require.Equal(t, "missing_token", door["reason"])
	one("allowed", "", map[string]any{"method": "tools/list", "subject": "agent-1"})
	echo := one("allowed", "echo", map[string]any{"rule": "watch-echo", "observe": true})
	require.Equal(t, "allow", echo["action"])
	require.NotEmpty(t, echo["session_id"])
	require.NotEmpty(t, echo["request_id"])
	args := one("masked", "echo", map[string]any{"stage": "argument_masking", "direction": "request"})
	require.Equal(t, map[string]any{"CREDIT_CARD": 1.0}, args["masked"])
	resMasked := one("masked", "echo", map[string]any{"stage": "masking", "direction": "response"})
	require.Equal(t, map[string]any{"AWS_ACCESS_KEY": 1.0}, resMasked["masked"])
	denied := one("denied", "execute_sql", map[string]any{"stage": "policy", "rule": "sql-destructive", "action": "deny"})
	require.NotEmpty(t, denied["reason"])
	held := one("held", "deploy", nil)
	deferred := one("deferred", "deploy", nil)
	approved := one("approved", "deploy", map[string]any{"approver": "alice"})
	require.Equal(t, id, held["approval_id"])
	require.Equal(t, id, deferred["approval_id"])
	require.Equal(t, id, approved["approval_id"])
	require.Equal(t, "deploys", approved["rule"])
}

func matchAll(ev, want map[string]any) bool {
	for k, v := range want {
		if ev[k] != v {
			return false
		}
	}
	return true
}

func count(evs []map[string]any, outcome, tool string) int {
	n := 0
	for _, ev := range evs {
		if ev["outcome"] == outcome && (tool == "" || ev["tool"] == tool) {
			n++
		}
	}
	return n
}

func readAudit(t *testing.T, path string) []map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var evs []map[string]any
	for line := range bytes.Lines(raw) {
		var ev map[string]any
		require.NoError(t, json.Unmarshal(line, &ev), "line %q", line)
		evs = append(evs, ev)
	}
	return evs
}

// pendingApproval returns the id of the one pending approval request.
func pendingApproval(t *testing.T, admin, token string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+admin+"/v1/approvals?state=pending", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	var body struct {
		Approvals []struct {
			ID string `json:"id"`
		} `json:"approvals"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
	require.Len(t, body.Approvals, 1)
	return body.Approvals[0].ID
}
