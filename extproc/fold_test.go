package extproc_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/extproc"
	"github.com/mcpguard/mcpguard/mcp"
)

// TestPolicyStageFoldedArgument: a tools/call whose arguments carry a member folding to the
// argument policy classifies ("Query" for query) is refused as invalid params, naming the
// argument and never the value; the exact name still passes.
func TestPolicyStageFoldedArgument(t *testing.T) {
	tests := []struct {
		name, body string
		code       int // 0: passed upstream
	}{
		{"case variant", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"execute_sql","arguments":{"Query":"SELECT 1"}}}`, mcp.CodeInvalidParams},
		{"upper case drop", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"execute_sql","arguments":{"QUERY":"DROP TABLE users"}}}`, mcp.CodeInvalidParams},
		{"exact", sqlCall(3, "SELECT 1"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, extproc.DefaultConfig(), policyStage(t, nil))
			e := h.open(t, t.Context())
			e.post(tt.body, "mcp-protocol-version", "2025-06-18")
			if tt.code == 0 {
				e.passed()
				return
			}
			got := refusedWith(t, e.recv())
			require.Equal(t, tt.code, got.Error.Code)
			require.Contains(t, got.Error.Message, `"query"`)
			require.Contains(t, got.Error.Message, "only by letter case")
			require.NotContains(t, got.Error.Message, "DROP")
			require.NotContains(t, got.Error.Message, "SELECT")
		})
	}
}

// TestApprovalBoundToParams: a call approved with params P does not release the same tool and
// arguments with any member added or changed elsewhere in params; that call is held again under
// a new approval. P itself, retried with another progress token, passes.
func TestApprovalBoundToParams(t *testing.T) {
	svc := approvalService(t, 50*time.Millisecond)
	ap, err := extproc.NewApprovals(svc)
	require.NoError(t, err)
	h := start(t, extproc.DefaultConfig(), policyStage(t, ap))
	post := func(body string) *envoy {
		e := h.open(t, t.Context())
		e.post(body, "mcp-protocol-version", "2025-06-18")
		return e
	}
	const args = `"arguments":{"env":"prod","version":"1.2.3"}`
	e := post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"deploy",` + args + `,"_meta":{"progressToken":"a"}}}`)
	held(t, e)
	first := refusedWith(t, e.recv())
	require.Equal(t, extproc.CodeApprovalDeferred, first.Error.Code)
	id := first.Error.Data["approval_id"].(string)
	_, err = svc.Decide(t.Context(), id, releaseManager, true, "ok")
	require.NoError(t, err)

	for i, extra := range []string{
		`,"task":{"ttl":60000}`,
		`,"_meta":{"progressToken":"a","dryRun":false}`,
		`,"environment":"dev"`,
	} {
		e = post(`{"jsonrpc":"2.0","id":` + string(rune('2'+i)) + `,"method":"tools/call","params":{"name":"deploy",` + args + extra + `}}`)
		held(t, e)
		again := refusedWith(t, e.recv())
		require.Equal(t, extproc.CodeApprovalDeferred, again.Error.Code, "params with %s are not the approved call", extra)
		require.NotEqual(t, id, again.Error.Data["approval_id"])
	}

	e = post(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"_meta":{"progressToken":"b"},"name":"deploy",` + args + `}}`)
	e.passed()
}
