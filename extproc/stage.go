package extproc

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/mcpguard/mcpguard/identity"
	"github.com/mcpguard/mcpguard/mcp"
)

// Stage is one step of the pipeline. A stage implements [RequestStage],
// [ResponseStage] or both; stages run in the order given to [NewServer].
type Stage interface {
	// Name identifies the stage in metrics and logs; it must be unique.
	Name() string
}

// RequestStage decides on a parsed MCP request before it goes upstream. It runs on the
// stream's goroutine while Envoy waits; a stage that waits longer than Envoy's
// message_timeout (2s) must call [Exchange.Hold] first. ctx ends when the client goes away.
type RequestStage interface {
	Stage
	OnRequest(ctx context.Context, x *Exchange) (Verdict, error)
}

// ResponseStage sees every JSON-RPC message coming back from upstream, one at a time:
// the messages of a JSON body, or the message carried by one SSE event as soon as the
// event is complete. Stages later in the chain see the message as earlier ones left it.
type ResponseStage interface {
	Stage
	OnResponse(ctx context.Context, x *Exchange, r *Response) (Verdict, error)
}

// Response is one upstream message under inspection.
type Response struct {
	// Msg is the parsed message (after any earlier replacement).
	Msg *mcp.Message
	// Event is the server-sent event that carried Msg, nil for a JSON body.
	Event *mcp.Event
	// Received is when the message arrived from upstream, before any response stage ran.
	Received time.Time
	// Request is the request Msg answers when it did not travel in this exchange (the
	// 2024-11-05 transport answers POSTs on the GET stream), as matched by the session
	// stage; nil when unknown. The client chose the ids: it is a hint, not proof.
	Request *mcp.Message
}

// Action is what a stage wants done with a message.
type Action uint8

// Actions a stage can return.
const (
	// Continue passes the message on (as possibly replaced by earlier stages).
	Continue Action = iota
	// Deny refuses the message. On the request path the client gets an immediate
	// JSON-RPC error for the request id(s) with Verdict.Status (or Err.HTTPStatus()).
	// On the response path a result or error becomes a JSON-RPC error for its id; a
	// notification or server request on an SSE stream is dropped (an immediate
	// response would reset a stream whose headers already went out).
	Deny
	// Replace swaps the message for Verdict.Message; lengths may change. On the response
	// path that is one valid JSON-RPC message. On the request path it is the whole body,
	// re-encoded: the same messages in the same order (a batch stays a batch) with the
	// same envelope (kind, id, method) and the same tool, prompt, resource and revision,
	// so only what the messages carry differs from what earlier stages (policy) decided
	// on. Later stages see it in [Exchange.Body] and it goes upstream; any other
	// replacement refuses the request.
	Replace
)

// String returns the action's metric label.
func (a Action) String() string {
	switch a {
	case Continue:
		return "continue"
	case Deny:
		return "deny"
	case Replace:
		return "replace"
	default:
		return "unknown"
	}
}

// Verdict is a stage's answer for one message.
type Verdict struct {
	Action Action
	// Err is the JSON-RPC error returned to the client on Deny (required).
	Err *mcp.Error
	// Status overrides the HTTP status of a request-path denial; 0 uses Err.HTTPStatus().
	Status int
	// Message is the replacement for Replace.
	Message json.RawMessage
	// Answer, on a request-path Deny, is the JSON-RPC response the client gets instead of
	// Err (a tool result with isError, which the model reads), with Status or 200.
	Answer json.RawMessage
}

// Pass is the verdict that lets a message through unchanged.
var Pass = Verdict{Action: Continue}

// Refuse returns a Deny verdict with the given JSON-RPC error.
func Refuse(code int, msg string) Verdict {
	return Verdict{Action: Deny, Err: &mcp.Error{Code: code, Message: msg}}
}

// Exchange is what the gateway knows about one HTTP request/response pair. It lives for
// one ext_proc stream and is used from that stream's goroutine only.
type Exchange struct {
	// Identity is the caller verified by ext_authz (from Envoy's metadata only).
	Identity identity.Identity
	// RequestID is Envoy's x-request-id (the request.id attribute).
	RequestID string
	// SessionID is the MCP session: the mcp-session-id request header or, on the 2024-11-05
	// transport, the session of the POST endpoint (set by the session stage) and of the GET
	// stream that announced it. Empty for stateless traffic.
	SessionID string
	// OpenedSessionID is the session the upstream opened in its response (the
	// mcp-session-id of an initialize answer, once the session stage accepted it); empty
	// when the request named its session or none was opened.
	OpenedSessionID string
	// Received is when the request reached the gateway (its headers arrived).
	Received time.Time
	// Method and Path are the HTTP method and path (with query).
	Method, Path string
	// Headers are the request headers, lower-cased; repeated headers joined with ",".
	Headers Headers
	// Revision is the MCP revision the request declared, set by the protocol stage.
	Revision mcp.Revision
	// Body is the parsed request body, nil for bodiless requests (GET, DELETE).
	Body *mcp.Body
	// Status and ContentType describe the upstream response once its headers arrived.
	Status      int
	ContentType string
	// Log is the stream's logger, already carrying request_id and session_id.
	Log *slog.Logger

	hold  func(time.Duration) (time.Duration, error)
	notes []Note
	// sent is the body as the client sent it, once a request stage replaced [Exchange.Body].
	sent *mcp.Body
	// legacy marks a 2024-11-05 GET stream once its endpoint event bound the session: the
	// answers to the session's POSTs arrive here, matched by the session stage.
	legacy bool
	// toolsLists, on such a stream, returns the session's pending tools/list ids and whether
	// every pending request of the session is known (see correlations.toolsLists).
	toolsLists func() ([]json.RawMessage, bool)
}

// Note is a fact a stage establishes about the exchange for the audit trail: a policy
// decision with its rule, an approval step, a masking summary. Attrs never hold secret
// values or message bodies; later stages (recording) read them with [Exchange.Notes].
type Note struct {
	Stage string
	Kind  string
	Attrs map[string]any
	// Time is when the fact was established; zero is filled in by [Exchange.AddNote].
	Time time.Time
}

// AddNote records n on the exchange, at the current time unless n.Time is set.
func (x *Exchange) AddNote(n Note) {
	if n.Time.IsZero() {
		n.Time = time.Now()
	}
	x.notes = append(x.notes, n)
}

// Notes returns the notes added so far, oldest first. The slice must not be modified.
func (x *Exchange) Notes() []Note { return x.notes }

// Hold asks Envoy to wait up to d (capped at Config.MaxHold) for the answer to the
// message being processed, by sending override_message_timeout. Envoy accepts one
// override per processing state, so a second call in the same state is an error. It
// returns the timeout actually requested. Call it before blocking longer than 2s.
func (x *Exchange) Hold(d time.Duration) (time.Duration, error) {
	if x.hold == nil {
		return 0, errors.New("hold: not while a message is being processed")
	}
	return x.hold(d)
}

// Headers are lower-cased HTTP request headers; it implements mcp.Headers.
type Headers map[string]string

// Get returns the value of a lower-cased header name, "" when absent.
func (h Headers) Get(name string) string { return h[name] }

var _ mcp.Headers = Headers(nil)

// ids returns the ids of the requests in the body (nil entries skipped).
func (x *Exchange) ids() []json.RawMessage {
	if x.Body == nil {
		return nil
	}
	var out []json.RawMessage
	for _, m := range x.Body.Messages {
		if m.Kind == mcp.KindRequest && m.ID != nil {
			out = append(out, m.ID)
		}
	}
	return out
}

// requestID is the id of the single request of the body, nil otherwise; errors about the
// whole exchange are addressed to it so the client can match them.
func (x *Exchange) requestID() json.RawMessage {
	if x.Body == nil || x.Body.Batch || len(x.Body.Messages) != 1 {
		return nil
	}
	return x.Body.Messages[0].ID
}
