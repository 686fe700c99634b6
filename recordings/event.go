package recordings

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"time"
)

// Kind is the type of a recorded event.
type Kind string

// Event kinds.
const (
	KindSessionStart Kind = "session_start"
	KindSessionEnd   Kind = "session_end"
	KindRequest      Kind = "request"  // a client message, at the time the gateway received it
	KindForward      Kind = "forward"  // the request released upstream (after policy, holds, approvals)
	KindResponse     Kind = "response" // an upstream message as delivered (after masking)
	KindDenial       Kind = "denial"   // the gateway answered the request itself
	KindNote         Kind = "note"     // a policy decision, approval step or masking summary
)

// Identity is the verified caller of an exchange.
type Identity struct {
	Subject  string   `json:"subject"`
	ClientID string   `json:"client_id,omitempty"`
	Issuer   string   `json:"issuer"`
	Groups   []string `json:"groups,omitempty"`
}

// SSE describes the server-sent event that carried a response message.
type SSE struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// Note is an audit fact attached to an exchange; it never holds secret values.
type Note struct {
	Stage string         `json:"stage"`
	Kind  string         `json:"kind"`
	Attrs map[string]any `json:"attrs,omitempty"`
}

// Event is one line of a segment. Seq numbers the events of one replica's chain of a
// session from 1 (it only grows, whatever the wall clock does); Time is when the event
// happened (a request's is when it was received, a note's when its step took place), which
// may be earlier than when it was recorded: a call held for approval is recorded once
// released, its events carrying the times of receipt, hold, decision and release, in that order.
type Event struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Kind    Kind      `json:"kind"`
	Session string    `json:"session"`
	// MCPSessionID is the raw Mcp-Session-Id (Session may be a hash of it).
	MCPSessionID string          `json:"mcp_session_id,omitempty"`
	RequestID    string          `json:"request_id,omitempty"`
	Identity     *Identity       `json:"identity,omitempty"`
	HTTP         string          `json:"http,omitempty"` // "POST /mcp"
	Status       int             `json:"status,omitempty"`
	Method       string          `json:"method,omitempty"` // JSON-RPC method (of the request a result answers)
	Tool         string          `json:"tool,omitempty"`
	Message      json.RawMessage `json:"message,omitempty"` // the JSON-RPC message as delivered
	// Sealed is the request as the client sent it, when what Message holds was masked for
	// the recording: age-encrypted to recordings.arguments.seal_to, base64 (see [Sealer]).
	Sealed string `json:"sealed,omitempty"`
	SSE    *SSE   `json:"sse,omitempty"`
	Note   *Note  `json:"note,omitempty"`
}

var safeID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// SessionKey is the storage name of a session: the Mcp-Session-Id when it is a safe path
// element, a hash of it otherwise. Traffic without a session (the stateless 2026-07-28
// revision, or a request before the upstream named a session) gets a stable name derived
// from the verified identity (issuer, subject, client id) and client, the name the client
// gives itself (clientInfo.name; it only splits one identity's recordings, it proves
// nothing), so one caller's exchanges are grouped.
func SessionKey(mcpSessionID string, id *Identity, client string) string {
	if mcpSessionID != "" {
		if safeID.MatchString(mcpSessionID) && mcpSessionID != "." && mcpSessionID != ".." {
			return mcpSessionID
		}
		return "h-" + digest(mcpSessionID)
	}
	if id == nil {
		return "anon-unverified"
	}
	k := id.Issuer + "\x00" + id.Subject + "\x00" + id.ClientID
	if client != "" {
		k += "\x00" + client
	}
	return "anon-" + digest(k)
}

func digest(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:16])
}
