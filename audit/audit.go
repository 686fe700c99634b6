// Package audit emits one structured event per enforcement decision (allowed, denied, held,
// approved, deferred, masked) for SIEMs: JSON lines to stdout or a file, and OpenTelemetry log
// records. Events name who called what and the outcome; they never carry argument values,
// message bodies or tokens. Emitting never blocks a request: the queue is bounded and an event
// that does not fit is dropped and counted (mcpguard_audit_dropped_total).
package audit

import (
	"time"
)

// Outcome is what happened to a call.
type Outcome string

// Outcomes, one event each.
const (
	// Allowed: the message went upstream (policy allowed it, or observe mode let it pass).
	Allowed Outcome = "allowed"
	// Denied: the gateway refused the request (token, policy, approver, session, protocol,
	// recording), answered with an error; Stage says who refused.
	Denied Outcome = "denied"
	// Held: the call waits for an approver; an approved, denied or deferred event follows.
	Held Outcome = "held"
	// Approved: an approver's grant let the call go upstream.
	Approved Outcome = "approved"
	// Deferred: no decision within the hold; the agent was told to retry after approval.
	Deferred Outcome = "deferred"
	// Masked: values were masked in a message crossing the gateway; Masked has the counts.
	Masked Outcome = "masked"
)

// Validate reports an unknown outcome.
func (o Outcome) Validate() error {
	switch o {
	case Allowed, Denied, Held, Approved, Deferred, Masked:
		return nil
	}
	return errUnknownOutcome
}

// Event is one decision. The JSON names are the schema documented in docs/audit.md; empty
// fields are left out.
type Event struct {
	// Time is when the decision was made (UTC).
	Time time.Time `json:"time"`
	// Outcome is what happened (see [Outcome]).
	Outcome Outcome `json:"outcome"`
	// Stage is the part of the gateway that decided: authz, identity, protocol, session,
	// policy, approvals, masking, argument_masking, recording.
	Stage string `json:"stage"`
	// Subject, ClientID and Issuer are the caller as ext_authz verified it.
	Subject  string `json:"subject,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	Issuer   string `json:"issuer,omitempty"`
	// RequestID is Envoy's x-request-id; SessionID the MCP session.
	RequestID string `json:"request_id,omitempty"`
	SessionID string `json:"session_id,omitempty"`
	// Method is the MCP method; Tool the tool, prompt or resource it targets.
	Method string `json:"method,omitempty"`
	Tool   string `json:"tool,omitempty"`
	// Direction is request (client to server) or response (server to client).
	Direction string `json:"direction,omitempty"`
	// Rule is the policy rule that decided ("default" when none matched); Action the rule's
	// action; Observe is true when the rule only observes (the call passed).
	Rule    string `json:"rule,omitempty"`
	Action  string `json:"action,omitempty"`
	Observe bool   `json:"observe,omitempty"`
	// Reason is the classifier findings or refusal class (never argument values).
	Reason string `json:"reason,omitempty"`
	// ApprovalID names the approval request of held, approved, deferred and approver-denied calls.
	ApprovalID string `json:"approval_id,omitempty"`
	// Approver is who decided an approval.
	Approver string `json:"approver,omitempty"`
	// Status is the HTTP status the client got for a refusal.
	Status int `json:"status,omitempty"`
	// Masked counts the masked values by detector type.
	Masked map[string]int `json:"masked,omitempty"`
	// TraceID and SpanID place the event in its trace when tracing is on.
	TraceID string `json:"trace_id,omitempty"`
	SpanID  string `json:"span_id,omitempty"`
}
