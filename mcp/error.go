package mcp

import (
	"encoding/json"
	"strconv"
)

// JSON-RPC and MCP error codes.
const (
	CodeParse              = -32700
	CodeInvalidRequest     = -32600
	CodeMethodNotFound     = -32601
	CodeInvalidParams      = -32602
	CodeInternal           = -32603
	CodeHeaderMismatch     = -32020 // 2026-07-28: Mcp-* header disagrees with the body
	CodeMissingCapability  = -32021 // 2026-07-28: a required client capability is missing
	CodeUnsupportedVersion = -32022 // 2026-07-28: data carries supported and requested
)

// Error is a JSON-RPC error object; it is also the Go error type for protocol violations.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`

	rev    Revision        // revision the error was produced under, if known
	status int             // HTTP status override, if not derived from Code
	id     json.RawMessage // id of the offending message, if readable
}

// ID is the id of the message an error from [Parse] or [Check] was found in, or nil when the body
// held no single readable id; answer with [ErrorResponse](e.ID(), e) so the client session survives.
func (e *Error) ID() json.RawMessage { return e.id }

// Error returns the code and message; it never contains body content.
func (e *Error) Error() string {
	return "jsonrpc error " + strconv.Itoa(e.Code) + ": " + e.Message
}

// HTTPStatus is the HTTP status a gateway answers this error with. Errors returned by [Check]
// carry the revision they were found under (and 405 for a refused HTTP method); for other errors
// the legacy (pre-2026-07-28) mapping of [Error.HTTPStatusFor] applies.
func (e *Error) HTTPStatus() int {
	if e.status != 0 {
		return e.status
	}
	return e.HTTPStatusFor(e.rev)
}

// HTTPStatusFor is the HTTP status for this error's code under revision r: 400 for parse,
// invalid-request, header-mismatch, missing-capability and unsupported-version errors; 404 for
// method-not-found on 2026-07-28; 200 otherwise, so that the client session survives the error.
func (e *Error) HTTPStatusFor(r Revision) int {
	switch e.Code {
	case CodeParse, CodeInvalidRequest, CodeHeaderMismatch, CodeMissingCapability, CodeUnsupportedVersion:
		return 400
	case CodeMethodNotFound:
		if r == Rev20260728 {
			return 404
		}
	}
	return 200
}

func newError(code int, msg string) *Error { return &Error{Code: code, Message: msg} }

// ErrorResponse encodes {"jsonrpc":"2.0","id":<id or null>,"error":{...}}. An id that is not a
// JSON string or number is replaced by null; data that cannot be encoded is left out.
func ErrorResponse(id json.RawMessage, e *Error) []byte {
	if !validID(id) {
		id = json.RawMessage("null")
	}
	if e == nil {
		e = newError(CodeInternal, "internal error")
	}
	obj, err := json.Marshal(e)
	if err != nil {
		obj, _ = json.Marshal(Error{Code: e.Code, Message: e.Message}) // cannot fail: int and string
	}
	out := make([]byte, 0, len(id)+len(obj)+36)
	out = append(out, `{"jsonrpc":"2.0","id":`...)
	out = append(out, id...)
	out = append(out, `,"error":`...)
	out = append(out, obj...)
	return append(out, '}')
}

// validID reports whether id is a JSON string or integer as accepted by [Parse].
func validID(id json.RawMessage) bool {
	if len(id) == 0 {
		return false
	}
	p := parser{buf: id}
	v, err := p.value(0, false)
	if err != nil || p.skipWS() != len(id) {
		return false
	}
	return v.kind == kString || (v.kind == kNumber && v.integer)
}
