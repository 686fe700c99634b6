package approvals

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mcpguard/mcpguard/identity"
)

// State is where a request is in its life.
type State string

// States of a request. Pending is the only state a decision can leave.
const (
	Pending  State = "pending"
	Approved State = "approved"
	Denied   State = "denied"
	Expired  State = "expired"
	Consumed State = "consumed"
)

// Validate reports an unknown state.
func (s State) Validate() error {
	switch s {
	case Pending, Approved, Denied, Expired, Consumed:
		return nil
	}
	return fmt.Errorf("%q is not pending, approved, denied, expired or consumed", string(s))
}

// Sentinel errors callers branch on.
var (
	// ErrNotFound reports an unknown request id or key.
	ErrNotFound = errors.New("approval request not found")
	// ErrExists reports a Create with an id already stored.
	ErrExists = errors.New("approval request already exists")
	// ErrConflict reports a transition from a state that does not allow it (decided twice,
	// consumed twice, decided after expiry).
	ErrConflict = errors.New("approval request not in a state that allows this")
	// ErrForbidden reports an approver who may not decide this request.
	ErrForbidden = errors.New("not allowed to decide this request")
)

// Party is who asked or who decided: enough to tell people apart, never a token.
type Party struct {
	Subject  string `json:"subject"`
	Issuer   string `json:"issuer"`
	ClientID string `json:"client_id,omitempty"`
	// Groups are the groups the token carried when it asked or decided.
	Groups []string `json:"groups,omitempty"`
}

// PartyOf extracts the Party of a verified identity.
func PartyOf(id identity.Identity) Party {
	return Party{Subject: id.Subject, Issuer: id.Issuer, ClientID: id.ClientID, Groups: slices.Clone(id.Groups)}
}

// Same reports whether p and o are the same principal (issuer and subject).
func (p Party) Same(o Party) bool { return p.Subject == o.Subject && p.Issuer == o.Issuer }

// Decision is an approver's answer.
type Decision struct {
	Approved bool      `json:"approved"`
	By       Party     `json:"by"`
	At       time.Time `json:"at"`
	Reason   string    `json:"reason,omitempty"`
}

// Request is one approval request. Params and Arguments are the complete canonical forms,
// masked only where a masking detector found a secret; the call itself is identified by a
// key in Keys, a digest of the requester, tool, policy version and canonical params (see
// [Binding]), or canonical arguments for callers that pass no params.
type Request struct {
	ID        string `json:"id"`
	State     State  `json:"state"`
	Requester Party  `json:"requester"`
	Tool      string `json:"tool"`
	// Params is the call's whole params object (every member), Arguments its arguments.
	Params    json.RawMessage `json:"params,omitempty"`
	Arguments json.RawMessage `json:"arguments"`
	Rule      string          `json:"rule"`
	// Message is the rule's message (what the policy author wants approvers and agents to read).
	Message string `json:"message,omitempty"`
	// Reason is the classifier findings behind the decision.
	Reason    string   `json:"reason,omitempty"`
	Approvers []string `json:"approvers"`
	// PolicyVersion identifies the policy that asked for approval; a grant only covers calls
	// that the same policy version holds.
	PolicyVersion string `json:"policy_version,omitempty"`
	// Route is where the call was going.
	Route Route `json:"route"`
	// GrantFor is 0 for a grant that lets the same call through once, otherwise how long
	// after approval the same requester may call the same tool with any arguments.
	GrantFor  time.Duration `json:"grant_for"`
	CreatedAt time.Time     `json:"created_at"`
	// ExpiresAt ends the pending state: undecided by then, the request expires.
	ExpiresAt  time.Time `json:"expires_at"`
	Decision   *Decision `json:"decision,omitempty"`
	GrantUntil time.Time `json:"grant_until,omitzero"`
	// Deferred is set once the requester was told to retry later.
	Deferred bool `json:"deferred,omitempty"`
	// Delivered is set once the outcome (a consumed grant or a denial) reached the requester.
	DeliveredAt time.Time `json:"delivered_at,omitzero"`
	// Keys index the request for grant lookups: the call key, and the tool key once a
	// time-scoped grant is approved. Stores map each key to the newest request holding it.
	Keys      []string `json:"keys,omitempty"`
	RequestID string   `json:"request_id,omitempty"`
	SessionID string   `json:"session_id,omitempty"`
	// Slack is the message the Slack app posted for this request, updated when it ends.
	Slack *SlackMessage `json:"slack,omitempty"`
}

// SlackMessage identifies a posted Slack message.
type SlackMessage struct {
	Channel string `json:"channel"`
	TS      string `json:"ts"`
}

// Route is where a held call was going: the MCP server as the client addressed it.
type Route struct {
	// Authority is the HTTP authority (host) the call was sent to, which selected the route.
	Authority string `json:"authority,omitempty"`
	// Path is the HTTP path of the MCP endpoint.
	Path string `json:"path,omitempty"`
}

// Effective is the state at now: a pending request past its expiry is expired.
func (r Request) Effective(now time.Time) State {
	if r.State == Pending && !now.Before(r.ExpiresAt) {
		return Expired
	}
	return r.State
}

// CanApprove reports whether an approver may decide r: they belong to one of its approver
// groups and did not ask for it.
func (r Request) CanApprove(id identity.Identity) error {
	if PartyOf(id).Same(r.Requester) {
		return fmt.Errorf("%w: the requester cannot approve their own call", ErrForbidden)
	}
	for _, g := range id.Groups {
		for _, a := range r.Approvers {
			if g == a {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: not in an approver group of this request", ErrForbidden)
}

// callKey identifies one call: the same requester, tool, policy version and canonical form.
// bound says what the form is of ("call": the arguments, "params": the whole params), so that
// the two never collide.
func callKey(p Party, tool, version, bound string, canon []byte) string {
	h := sha256.New()
	for _, s := range []string{bound, p.Issuer, p.Subject, tool, version} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(canon)
	return "c_" + hex.EncodeToString(h.Sum(nil))
}

// toolKey identifies the requester, tool and policy version, for time-scoped grants.
func toolKey(p Party, tool, version string) string {
	h := sha256.New()
	for _, s := range []string{"tool", p.Issuer, p.Subject, tool, version} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "t_" + hex.EncodeToString(h.Sum(nil))
}
