package extproc_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/approvals"
	"github.com/mcpguard/mcpguard/extproc"
	"github.com/mcpguard/mcpguard/identity"
)

var releaseManager = identity.Identity{Subject: "rm-1", Issuer: "https://okta.example/oauth2/default", Groups: []string{"release"}}

func approvalService(t testing.TB, hold time.Duration) *approvals.Service {
	t.Helper()
	st, err := approvals.OpenFile(filepath.Join(t.TempDir(), "approvals.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	cfg := approvals.DefaultConfig()
	cfg.Hold = hold
	svc, err := approvals.New(cfg, st, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	return svc
}

func deploy(id int, env string) string {
	b, _ := json.Marshal(map[string]any{
		"jsonrpc": "2.0", "id": id, "method": "tools/call",
		"params": map[string]any{"name": "deploy", "arguments": map[string]any{"env": env, "version": "1.2.3"}},
	})
	return string(b)
}

// approvalError is the JSON-RPC error of the approval flow with its data.
type approvalError struct {
	Error struct {
		Code    int            `json:"code"`
		Message string         `json:"message"`
		Data    map[string]any `json:"data"`
	} `json:"error"`
}

func refusedWith(t *testing.T, r *extprocv3.ProcessingResponse) approvalError {
	t.Helper()
	ir := r.GetImmediateResponse()
	require.NotNil(t, ir, "expected a refusal, got %v", r)
	var e approvalError
	require.NoError(t, json.Unmarshal(ir.GetBody(), &e))
	return e
}

// held reads the override_message_timeout that announces a hold.
func held(t *testing.T, e *envoy) time.Duration {
	t.Helper()
	r := e.recv()
	require.NotNil(t, r.GetOverrideMessageTimeout(), "expected a hold, got %v", r)
	return r.GetOverrideMessageTimeout().AsDuration()
}

func pendingID(t *testing.T, svc *approvals.Service) string {
	t.Helper()
	list, err := svc.List(t.Context(), releaseManager, approvals.Pending)
	require.NoError(t, err)
	require.Len(t, list, 1)
	return list[0].ID
}

func TestApprovalHeldThenDecided(t *testing.T) {
	tests := []struct {
		name    string
		approve bool
		code    int
	}{
		{name: "approved passes upstream unchanged", approve: true},
		{name: "denied gets the reason", approve: false, code: extproc.CodeApprovalDenied},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := approvalService(t, time.Minute)
			ap, err := extproc.NewApprovals(svc)
			require.NoError(t, err)
			h := start(t, extproc.DefaultConfig(), policyStage(t, ap))
			e := h.open(t, t.Context())
			e.post(deploy(1, "prod"), "mcp-protocol-version", "2025-06-18")
			require.Equal(t, time.Minute+5*time.Second, held(t, e))
			_, err = svc.Decide(t.Context(), pendingID(t, svc), releaseManager, tc.approve, "change window closed")
			require.NoError(t, err)
			if tc.approve {
				e.passed()
				return
			}
			got := refusedWith(t, e.recv())
			require.Equal(t, tc.code, got.Error.Code)
			require.Contains(t, got.Error.Message, "change window closed")
			require.Equal(t, "change window closed", got.Error.Data["reason"])
		})
	}
}

// notesSeen is a request stage after policy that keeps the approval notes it saw.
type notesSeen struct{ got chan []extproc.Note }

func (notesSeen) Name() string { return "notes" }

func (n notesSeen) OnRequest(_ context.Context, x *extproc.Exchange) (extproc.Verdict, error) {
	var out []extproc.Note
	for _, nt := range x.Notes() {
		if nt.Stage == "approvals" {
			out = append(out, nt)
		}
	}
	n.got <- out
	return extproc.Pass, nil
}

func TestApprovalDeferredRetry(t *testing.T) {
	svc := approvalService(t, 50*time.Millisecond)
	ap, err := extproc.NewApprovals(svc)
	require.NoError(t, err)
	seen := notesSeen{got: make(chan []extproc.Note, 1)}
	h := start(t, extproc.DefaultConfig(), policyStage(t, ap), seen)
	post := func(body string) *envoy {
		e := h.open(t, t.Context())
		e.post(body, "mcp-protocol-version", "2025-06-18")
		return e
	}

	e := post(deploy(1, "prod"))
	held(t, e)
	got := refusedWith(t, e.recv())
	require.Equal(t, extproc.CodeApprovalDeferred, got.Error.Code)
	id := got.Error.Data["approval_id"].(string)
	require.NotEmpty(t, id)
	require.Contains(t, got.Error.Data["approve_url"], id)
	require.EqualValues(t, 30, got.Error.Data["retry_after_seconds"])
	require.NotEmpty(t, got.Error.Data["expires_at"])

	_, err = svc.Decide(t.Context(), id, releaseManager, true, "ok")
	require.NoError(t, err)

	// Key order differs: the same canonical call passes once, without a hold.
	e = post(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"arguments":{"version":"1.2.3","env":"prod"},"name":"deploy"}}`)
	e.passed()
	notes := <-seen.got
	require.Len(t, notes, 1)
	require.Equal(t, "approval", notes[0].Kind)
	require.Equal(t, id, notes[0].Attrs["id"])
	require.Equal(t, "granted", notes[0].Attrs["step"])
	require.Equal(t, "consumed", notes[0].Attrs["state"])
	require.Equal(t, "rm-1", notes[0].Attrs["approver"])

	e = post(deploy(3, "prod"))
	held(t, e)
	again := refusedWith(t, e.recv())
	require.Equal(t, extproc.CodeApprovalDeferred, again.Error.Code, "a consumed grant never passes again")
	require.NotEqual(t, id, again.Error.Data["approval_id"])
}

func TestApprovalRefusesBatchesAndBadArguments(t *testing.T) {
	tests := []struct {
		name, rev, body string
		code            int
	}{
		{name: "batch", rev: "2025-03-26", body: "[" + deploy(1, "a") + "," + deploy(2, "b") + "]", code: extproc.CodeApprovalRequired},
		{
			// Deeper than the message parser accepts: refused before policy or approval.
			name: "arguments nested deeper than the parser accepts", rev: "2025-06-18", code: -32600,
			body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"deploy","arguments":{"a":` + strings.Repeat("[", 140) + strings.Repeat("]", 140) + `}}}`,
		},
		{
			// Nesting is bounded by the message parser (mcp.MaxDepth), which canonical forms
			// accept; a duplicate member, which has no canonical form, is refused by the parser
			// before anything is held.
			name: "arguments with a duplicate member", rev: "2025-06-18", code: -32600,
			body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"deploy","arguments":{"env":"a","x":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `,"env":"b"}}}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := approvalService(t, time.Minute)
			ap, err := extproc.NewApprovals(svc)
			require.NoError(t, err)
			h := start(t, extproc.DefaultConfig(), policyStage(t, ap))
			e := h.open(t, t.Context())
			e.post(tc.body, "mcp-protocol-version", tc.rev)
			r := e.recv()
			if tc.rev == "2025-03-26" {
				var list []approvalError
				require.NoError(t, json.Unmarshal(r.GetImmediateResponse().GetBody(), &list))
				require.Len(t, list, 2)
				require.Equal(t, tc.code, list[0].Error.Code)
				return
			}
			require.Equal(t, tc.code, refusedWith(t, r).Error.Code)
		})
	}
}

// TestApprovalHoldsDeepArguments: a call nested as deep as the message parser accepts can be
// bound to a grant, so it is held for approval rather than refused.
func TestApprovalHoldsDeepArguments(t *testing.T) {
	svc := approvalService(t, time.Minute)
	ap, err := extproc.NewApprovals(svc)
	require.NoError(t, err)
	h := start(t, extproc.DefaultConfig(), policyStage(t, ap))
	e := h.open(t, t.Context())
	e.post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"deploy","arguments":{"env":"prod","a":`+
		strings.Repeat("[", 100)+strings.Repeat("]", 100)+`}}}`, "mcp-protocol-version", "2025-06-18")
	held(t, e)
	require.NotEmpty(t, pendingID(t, svc))
}
