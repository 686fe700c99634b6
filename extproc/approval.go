package extproc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mcpguard/mcpguard/approvals"
	"github.com/mcpguard/mcpguard/mcp"
	"github.com/mcpguard/mcpguard/policy"
)

// JSON-RPC error codes of the approval flow (next to [CodeApprovalRequired]).
const (
	// CodeApprovalDeferred: no decision within the hold. data carries approval_id,
	// approve_url, retry_after_seconds and expires_at; retry the same call once approved.
	CodeApprovalDeferred = -31041
	// CodeApprovalDenied: an approver denied the call; data carries approval_id and reason.
	CodeApprovalDenied = -31042
	// CodeApprovalLapsed: the request expired, or its one-time grant was used by another call.
	CodeApprovalLapsed = -31043
	// CodeApprovalLimit: the caller (or the whole service) already has as many pending
	// approval requests as approvals.max_pending_per_requester (max_pending) allows; data
	// carries scope and limit. Retry once some are decided or expired.
	CodeApprovalLimit = -31044
)

// holdMargin is added to the wait when extending Envoy's timer, so the answer reaches
// Envoy before its timer fires.
const holdMargin = 5 * time.Second

// Approvals implements [Approver] with an [approvals.Service]: it opens a request (or
// redeems a grant), holds the call while approvers decide, and defers it when the hold ends.
type Approvals struct {
	svc *approvals.Service
}

var _ Approver = (*Approvals)(nil)

// NewApprovals returns the approver for the policy stage.
func NewApprovals(svc *approvals.Service) (*Approvals, error) {
	if svc == nil {
		return nil, errors.New("approvals: a service is required")
	}
	return &Approvals{svc: svc}, nil
}

// OnApproval implements [Approver].
func (a *Approvals) OnApproval(ctx context.Context, x *Exchange, d policy.Decision) (Verdict, error) {
	// One hold per message phase: a batch cannot wait for several decisions.
	if x.Body == nil || x.Body.Batch || len(x.Body.Messages) != 1 {
		return Refuse(CodeApprovalRequired, "approval required: calls that need approval cannot be batched"), nil
	}
	m := &x.Body.Messages[0]
	// The grant is bound to the whole params (approvals.Binding), not to the parsed arguments:
	// a member the gateway does not read may still change what the upstream does, so a call
	// that differs anywhere in params is a different call. Approvers are shown the arguments.
	call := approvals.Call{
		Requester: x.Identity, Tool: target(m), Arguments: m.Arguments, Params: m.Params,
		Rule: ruleLabel(d.Rule), Message: d.Message, Reason: d.Reason, Approvers: d.Approvers,
		PolicyVersion: d.Version, Route: approvals.Route{Authority: x.Headers.Get(":authority"), Path: x.Path},
		RequestID: x.RequestID, SessionID: x.SessionID,
	}
	if m.Method != "tools/call" {
		call.Arguments = m.Params
	}
	if call.Params == nil {
		call.Params = json.RawMessage("{}") // no params binds like empty params, never like arguments
	}
	res, err := a.svc.Begin(ctx, call)
	if errors.Is(err, approvals.ErrArguments) {
		return Verdict{Action: Deny, Err: &mcp.Error{Code: mcp.CodeInvalidParams, Message: "invalid params: arguments must be JSON without duplicate keys"}}, nil
	}
	if lim := (*approvals.LimitError)(nil); errors.As(err, &lim) {
		x.AddNote(Note{Stage: "approvals", Kind: "approval", Attrs: map[string]any{
			"step": "limited", "scope": lim.Scope, "limit": lim.Limit, "tool": call.Tool, "rule": call.Rule,
		}})
		msg := "approval required, but too many approval requests are pending; retry once some are decided"
		if lim.Scope == "requester" {
			msg = fmt.Sprintf("approval required, but you already have %d approval requests pending; retry once some are decided", lim.Limit)
		}
		return Verdict{Action: Deny, Err: &mcp.Error{Code: CodeApprovalLimit, Message: msg, Data: map[string]any{
			"scope": lim.Scope, "limit": lim.Limit, "rule": call.Rule, "message": d.Message,
		}}}, nil
	}
	if err != nil {
		return Verdict{}, fmt.Errorf("begin approval: %w", err)
	}
	if res.Created {
		note(x, "requested", res.Request, time.Time{})
	}
	var heldAt time.Time
	if res.Outcome == approvals.Waiting {
		res, heldAt, err = a.hold(ctx, x, res.Request)
		if err != nil {
			return Verdict{}, err
		}
	}
	v := a.verdict(x, res, heldAt)
	if !heldAt.IsZero() {
		// The call leaves the hold now: upstream when granted, back to the client otherwise.
		x.AddNote(Note{Stage: "approvals", Kind: "approval", Attrs: map[string]any{
			"id": res.Request.ID, "step": "released", "outcome": outcomeName(res.Outcome),
			"held_ms": time.Since(heldAt).Milliseconds(),
		}})
	}
	return v, nil
}

func outcomeName(o approvals.Outcome) string {
	switch o {
	case approvals.Granted:
		return "granted"
	case approvals.Refused:
		return "denied"
	case approvals.Waiting:
		return "deferred"
	default:
		return "lapsed"
	}
}

// hold extends Envoy's timer and waits; if the timer cannot be extended the call is
// deferred at once rather than risk Envoy timing out mid-wait. It returns when the hold
// started, zero when the call was not held.
func (a *Approvals) hold(ctx context.Context, x *Exchange, r approvals.Request) (approvals.Result, time.Time, error) {
	wait := a.svc.Hold()
	got, err := x.Hold(wait + holdMargin)
	if err != nil {
		x.Log.Warn("cannot hold call for approval; deferring", "approval_id", r.ID, "err", err)
		wait = 0
	} else {
		wait = min(wait, got-holdMargin)
	}
	if wait <= 0 {
		return approvals.Result{Outcome: approvals.Waiting, Request: r}, time.Time{}, nil
	}
	x.Log.Info("call held for approval", "approval_id", r.ID, "hold", wait.String())
	heldAt := time.Now()
	x.AddNote(Note{Stage: "approvals", Kind: "approval", Time: heldAt, Attrs: map[string]any{
		"id": r.ID, "step": "held", "hold_ms": wait.Milliseconds(),
	}})
	res, err := a.svc.Wait(ctx, r.ID, wait)
	if err != nil {
		return approvals.Result{}, heldAt, fmt.Errorf("wait for approval: %w", err)
	}
	return res, heldAt, nil
}

// verdict answers the outcome. A decision taken while the call was held (heldAt set) is
// noted at the approver's time, kept within the hold: approvers may decide on another
// replica whose clock differs, and the recording must keep hold, decision and release in
// order (decided_at keeps the approver's own time).
func (a *Approvals) verdict(x *Exchange, res approvals.Result, heldAt time.Time) Verdict {
	r := res.Request
	var at time.Time
	if !heldAt.IsZero() && r.Decision != nil {
		at = r.Decision.At
		if at.Before(heldAt) {
			at = heldAt
		}
		if now := time.Now(); at.After(now) {
			at = now
		}
	}
	switch res.Outcome {
	case approvals.Granted:
		note(x, "granted", r, at)
		return Pass
	case approvals.Refused:
		note(x, "denied", r, at)
		reason := ""
		if r.Decision != nil {
			reason = r.Decision.Reason
		}
		msg := "denied by approver"
		if reason != "" {
			msg += ": " + reason
		}
		return Verdict{Action: Deny, Err: &mcp.Error{Code: CodeApprovalDenied, Message: msg, Data: map[string]any{
			"approval_id": r.ID, "reason": reason,
		}}}
	case approvals.Waiting:
		note(x, "deferred", r, time.Time{})
		retry := a.svc.RetryAfter()
		return Verdict{Action: Deny, Err: &mcp.Error{
			Code:    CodeApprovalDeferred,
			Message: fmt.Sprintf("approval pending: retry this call after it is approved (id %s)", r.ID),
			Data: map[string]any{
				"approval_id": r.ID, "approve_url": a.svc.Link(r.ID),
				"retry_after_seconds": int(retry.Seconds()), "expires_at": r.ExpiresAt.UTC().Format(time.RFC3339),
				"created_at": r.CreatedAt.UTC().Format(time.RFC3339), "rule": r.Rule, "message": r.Message,
				"tool": r.Tool, "approvers": r.Approvers, "policy_version": r.PolicyVersion,
			},
		}}
	default:
		note(x, "lapsed", r, time.Time{})
		return Verdict{Action: Deny, Err: &mcp.Error{
			Code: CodeApprovalLapsed, Message: "approval expired or already used; call again to request a new one",
			Data: map[string]any{"approval_id": r.ID},
		}}
	}
}

// target is what the approval is about: the tool, or the method and its object.
func target(m *mcp.Message) string {
	switch {
	case m.Method == "tools/call":
		return m.Tool
	case m.URI != "":
		return m.Method + " " + m.URI
	case m.Prompt != "":
		return m.Method + " " + m.Prompt
	}
	return m.Method
}

// note records an approval step on the exchange for the recording, at time at (now when
// zero): the facts the approver was shown, except argument values (the recording holds the
// call itself).
func note(x *Exchange, step string, r approvals.Request, at time.Time) {
	attrs := map[string]any{
		"id": r.ID, "step": step, "state": string(r.State), "tool": r.Tool, "rule": r.Rule,
		"message": r.Message, "policy_version": r.PolicyVersion, "approvers": r.Approvers,
		"requester": r.Requester.Subject, "requester_issuer": r.Requester.Issuer, "requester_groups": r.Requester.Groups,
		"created_at": r.CreatedAt.UTC().Format(time.RFC3339Nano), "expires_at": r.ExpiresAt.UTC().Format(time.RFC3339Nano),
	}
	if r.Decision != nil {
		attrs["approver"] = r.Decision.By.Subject
		attrs["decided_at"] = r.Decision.At.UTC().Format(time.RFC3339Nano)
		attrs["reason"] = r.Decision.Reason
	}
	x.AddNote(Note{Stage: "approvals", Kind: "approval", Attrs: attrs, Time: at})
}
