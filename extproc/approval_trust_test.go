package extproc_test

import (
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/approvals"
	"github.com/mcpguard/mcpguard/extproc"
	"github.com/mcpguard/mcpguard/policy"
)

// swapSource is a PolicySource whose policy a test replaces, as a reload does.
type swapSource struct{ cur atomic.Pointer[policy.Set] }

func (s *swapSource) Current() *policy.Set { return s.cur.Load() }

func (s *swapSource) set(t *testing.T, text string) {
	t.Helper()
	set, err := policy.Compile([]byte(text))
	require.NoError(t, err)
	s.cur.Store(set)
}

func swapStage(t *testing.T, src *swapSource, ap extproc.Approver) *extproc.Policy {
	t.Helper()
	p, err := extproc.NewPolicy(src, policy.NewMemory(time.Hour), ap, prometheus.NewRegistry())
	require.NoError(t, err)
	return p
}

const deployDenied = `version: 1
default: allow
rules:
  - name: no-deploys
    when: request.tool == "deploy"
    action: deny
    message: deploys are frozen
`

const deployAllowed = `version: 1
default: allow
rules: []
`

// deployApprovalV2 holds deploys like stagePolicy does, from a different policy text.
const deployApprovalV2 = stagePolicy + "  # reviewed\n"

func TestApprovalHeldCallDecidedAgainWhenPolicyChanged(t *testing.T) {
	tests := []struct {
		name, next string
		code       int // 0: passes upstream
		reheld     bool
	}{
		{name: "now denied", next: deployDenied, code: extproc.CodePolicyDenied},
		{name: "now allowed", next: deployAllowed},
		{name: "held by another version needs a new approval", next: deployApprovalV2, reheld: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := approvalService(t, time.Minute)
			ap, err := extproc.NewApprovals(svc)
			require.NoError(t, err)
			src := &swapSource{}
			src.set(t, stagePolicy)
			h := start(t, extproc.DefaultConfig(), swapStage(t, src, ap))
			e := h.open(t, t.Context())
			e.post(deploy(1, "prod"), "mcp-protocol-version", "2025-06-18")
			held(t, e)
			first := pendingID(t, svc)
			src.set(t, tc.next) // the policy is reloaded while the call is held
			_, err = svc.Decide(t.Context(), first, releaseManager, true, "ok")
			require.NoError(t, err)
			switch {
			case tc.reheld:
				// Envoy's timer is extended once per message: the call is deferred with a
				// new request, opened under the new policy version.
				got := refusedWith(t, e.recv())
				require.Equal(t, extproc.CodeApprovalDeferred, got.Error.Code)
				second := got.Error.Data["approval_id"].(string)
				require.NotEqual(t, first, second, "the old approval does not cover the new policy")
				require.Equal(t, src.Current().Version(), got.Error.Data["policy_version"])
				require.Equal(t, second, pendingID(t, svc))
			case tc.code != 0:
				got := refusedWith(t, e.recv())
				require.Equal(t, tc.code, got.Error.Code)
				require.Equal(t, "deploys are frozen", got.Error.Message)
			default:
				e.passed()
			}
		})
	}
}

func TestApprovalGrantBoundToPolicyVersionAndParams(t *testing.T) {
	svc := approvalService(t, 10*time.Millisecond)
	ap, err := extproc.NewApprovals(svc)
	require.NoError(t, err)
	src := &swapSource{}
	src.set(t, stagePolicy)
	h := start(t, extproc.DefaultConfig(), swapStage(t, src, ap))
	post := func(body string) *envoy {
		e := h.open(t, t.Context())
		e.post(body, "mcp-protocol-version", "2025-06-18")
		return e
	}
	deferred := func(body string) string {
		t.Helper()
		e := post(body)
		held(t, e)
		got := refusedWith(t, e.recv())
		require.Equal(t, extproc.CodeApprovalDeferred, got.Error.Code)
		return got.Error.Data["approval_id"].(string)
	}
	id := deferred(deploy(1, "prod"))
	_, err = svc.Decide(t.Context(), id, releaseManager, true, "ok")
	require.NoError(t, err)

	// Same arguments plus a member the gateway does not read: a different call. (A member
	// differing only by case is refused by the parser before policy.)
	variant := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"deploy","arguments":{"env":"prod","version":"1.2.3"},"_meta":{"note":"x"}}}`
	require.NotEqual(t, id, deferred(variant))

	// The approved call under a new policy version: a new approval is needed.
	src.set(t, deployApprovalV2)
	require.NotEqual(t, id, deferred(deploy(3, "prod")))

	// Back on the version that approved it, the grant is still there and passes once.
	src.set(t, stagePolicy)
	post(deploy(4, "prod")).passed()
}

func TestApprovalDeferredErrorCarriesTheFacts(t *testing.T) {
	svc := approvalService(t, 10*time.Millisecond)
	ap, err := extproc.NewApprovals(svc)
	require.NoError(t, err)
	seen := notesSeen{got: make(chan []extproc.Note, 1)}
	src := &swapSource{}
	src.set(t, stagePolicy)
	h := start(t, extproc.DefaultConfig(), swapStage(t, src, ap), seen)
	e := h.open(t, t.Context())
	e.post(deploy(1, "prod"), "mcp-protocol-version", "2025-06-18")
	held(t, e)
	got := refusedWith(t, e.recv())
	require.Equal(t, extproc.CodeApprovalDeferred, got.Error.Code)
	d := got.Error.Data
	require.Equal(t, "deploys need a release manager", d["message"])
	require.Equal(t, "deploy-approval", d["rule"])
	require.Equal(t, src.Current().Version(), d["policy_version"])
	require.True(t, strings.HasPrefix(d["policy_version"].(string), "sha256:"))
	r, err := svc.Get(t.Context(), d["approval_id"].(string))
	require.NoError(t, err)
	require.Equal(t, "deploys need a release manager", r.Message)
	require.Equal(t, approvals.Route{Authority: "mcp.example", Path: "/mcp"}, r.Route)
	require.Equal(t, "deploy", r.Tool)
	require.JSONEq(t, `{"name":"deploy","arguments":{"env":"prod","version":"1.2.3"}}`, string(r.Params))
}

func TestApprovalPendingLimit(t *testing.T) {
	st, err := approvals.OpenFile(filepath.Join(t.TempDir(), "approvals.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	cfg := approvals.DefaultConfig()
	cfg.Hold = 10 * time.Millisecond
	cfg.MaxPendingPerRequester = 2
	reg := prometheus.NewRegistry()
	svc, err := approvals.New(cfg, st, nil, reg)
	require.NoError(t, err)
	ap, err := extproc.NewApprovals(svc)
	require.NoError(t, err)
	h := start(t, extproc.DefaultConfig(), policyStage(t, ap))
	for i, env := range []string{"a", "b"} {
		e := h.open(t, t.Context())
		e.post(deploy(i, env), "mcp-protocol-version", "2025-06-18")
		held(t, e)
		require.Equal(t, extproc.CodeApprovalDeferred, refusedWith(t, e.recv()).Error.Code)
	}
	e := h.open(t, t.Context())
	e.post(deploy(9, "c"), "mcp-protocol-version", "2025-06-18")
	got := refusedWith(t, e.recv())
	require.Equal(t, extproc.CodeApprovalLimit, got.Error.Code)
	require.Contains(t, got.Error.Message, "already have 2 approval requests pending")
	require.Equal(t, "requester", got.Error.Data["scope"])
	require.EqualValues(t, 2, got.Error.Data["limit"])
	list, err := svc.List(t.Context(), releaseManager, approvals.Pending)
	require.NoError(t, err)
	require.Len(t, list, 2, "no request opened past the limit")
}
