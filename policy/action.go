package policy

import (
	"fmt"
	"strings"
	"time"
)

// Action is what a rule (or the default) does with a matching message.
type Action string

// Actions of a rule.
const (
	// Allow lets the message through.
	Allow Action = "allow"
	// Deny refuses it with the rule's message.
	Deny Action = "deny"
	// RequireApproval holds it until an approver decides; without an approver it is refused.
	RequireApproval Action = "require_approval"
	// Observe records the would-be decision and lets evaluation continue.
	Observe Action = "observe"
)

// Validate reports an unknown action.
func (a Action) Validate() error {
	switch a {
	case Allow, Deny, RequireApproval, Observe:
		return nil
	}
	return fmt.Errorf("%q is not allow, deny, require_approval or observe", string(a))
}

// Reply is how a denied tools/call is answered to the agent.
type Reply string

// Replies of a denial.
const (
	// ReplyError answers with a JSON-RPC error (the default).
	ReplyError Reply = "error"
	// ReplyToolError answers with a tool result marked isError carrying the rule's message,
	// which clients hand to the model so it can correct its arguments and retry.
	ReplyToolError Reply = "tool_error"
)

// Validate reports an unknown reply.
func (r Reply) Validate() error {
	switch r {
	case ReplyError, ReplyToolError:
		return nil
	}
	return fmt.Errorf("%q is not error or tool_error", string(r))
}

// Decision is the outcome of [Set.Decide] for one message.
type Decision struct {
	// Action is allow, deny or require_approval (never observe).
	Action Action
	// Rule is the name of the deciding rule, "" for the policy default.
	Rule string
	// Message is the rule's text for the agent.
	Message string
	// Reason is the classifier findings (or the evaluation error) behind the decision;
	// it never contains argument values.
	Reason string
	// Approvers are the rule's approvers for require_approval.
	Approvers []string
	// Reply is how a Deny of a tools/call is answered; other methods and other actions are
	// always answered with a JSON-RPC error.
	Reply Reply
	// Observed are the observe rules that matched on the way, in order.
	Observed []Observation
	// DryRun is set when the policy runs in observe mode: the caller records Action but
	// lets the message through.
	DryRun bool
	// Version is the version of the policy that decided ([Set.Version]).
	Version string
}

// Enforced reports whether the caller must act on the decision (deny or hold the message).
func (d Decision) Enforced() bool { return !d.DryRun && d.Action != Allow }

// Observation is a matched observe rule: what it would have done.
type Observation struct {
	Rule   string
	Would  Action
	Reason string
}

// Identity is the verified caller as policy conditions see it (`identity.*`).
type Identity struct {
	Subject, ClientID, Issuer string
	Scopes, Groups            []string
}

// Session is the session state conditions see (`session.*`): counts include the current call.
type Session struct {
	ID        string
	Calls     int64 // tools/call requests in this session
	ToolCalls int64 // tools/call requests of this tool in this session
}

// Event is a gateway-observed event to decide on instead of a request (`event.*`).
type Event struct {
	// Kind is "tool_changed": a tool's definition differs from the one pinned first.
	Kind string
	Tool string
}

// hiddenHeaders never reach conditions: credentials.
var hiddenHeaders = map[string]bool{"authorization": true, "cookie": true, "proxy-authorization": true}

// headerMap copies h without credentials and with lower-cased names.
func headerMap(h map[string]string) map[string]any {
	out := make(map[string]any, len(h))
	for k, v := range h {
		k = strings.ToLower(k)
		if !hiddenHeaders[k] && !strings.HasPrefix(k, ":") {
			out[k] = v
		}
	}
	return out
}

func nowOr(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}
