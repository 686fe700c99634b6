package mcp

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
)

// Headers gives lower-cased HTTP request header values (Envoy sends them lower-cased).
type Headers interface{ Get(name string) string }

// Request is what the gateway knows about one HTTP request to the MCP endpoint.
type Request struct {
	Method  string // HTTP method
	Path    string // path and query as sent
	Headers Headers
	Body    *Body // nil for GET/DELETE
}

// Header names Check reads.
const (
	HeaderProtocolVersion = "mcp-protocol-version"
	HeaderSessionID       = "mcp-session-id"
	HeaderMethod          = "mcp-method"
	HeaderName            = "mcp-name"
)

// Check applies the transport rules of the revision the request declares and returns that revision.
//
// The revision comes from the mcp-protocol-version header. Without it, a GET of a path ending in
// /sse, or a POST whose query carries a session parameter (sessionId=, session_id=, sessionid=), without an mcp-session-id header, is 2024-11-05
// HTTP+SSE traffic; anything else is 2025-03-26, as the spec prescribes. A params._meta protocol
// version must agree with the header. Only POST, GET and DELETE are known; GET and DELETE carry no
// body, DELETE needs a session revision and an mcp-session-id, and 2026-07-28 accepts POST only, with one request or
// notification whose method matches mcp-method and, for tools/call, prompts/get and resources/read,
// whose params.name or params.uri matches mcp-name (=?base64?…?= values decoded). Mcp-Param-* and
// mcp-name on other methods are not checked. On older revisions mcp-method and mcp-name are
// optional but must match when sent. Batches pass only where [Revision.AllowsBatch].
func Check(r Request) (Revision, *Error) {
	h := r.Headers
	if h == nil {
		h = noHeaders{}
	}
	hv := h.Get(HeaderProtocolVersion)
	rev := Revision(hv)
	if hv == "" {
		rev = defaultRevision(r, h)
	} else if rev.Validate() != nil {
		e := newError(CodeUnsupportedVersion, "unsupported protocol version")
		supported := make([]string, len(Revisions))
		for i, v := range Revisions {
			supported[i] = string(v)
		}
		e.Data = map[string]any{"supported": supported, "requested": hv}
		e.id = singleID(r.Body)
		return "", e
	}
	if err := check(r, h, hv, rev); err != nil {
		err.rev = rev
		if err.id == nil {
			err.id = singleID(r.Body)
		}
		return rev, err
	}
	return rev, nil
}

func check(r Request, h Headers, hv string, rev Revision) *Error {
	switch r.Method {
	case "GET", "DELETE":
		if rev.Stateless() || (r.Method == "DELETE" && !rev.HasSessions()) {
			return withStatus(newError(CodeInvalidRequest, "invalid request: "+r.Method+" not allowed in "+string(rev)), 405)
		}
		if r.Method == "DELETE" && h.Get(HeaderSessionID) == "" {
			return newError(CodeInvalidRequest, "invalid request: DELETE without "+HeaderSessionID)
		}
		if r.Body != nil && len(r.Body.Messages) > 0 {
			return newError(CodeInvalidRequest, "invalid request: "+r.Method+" with a body")
		}
		return nil
	case "POST":
	default:
		return withStatus(newError(CodeInvalidRequest, "invalid request: HTTP method not allowed"), 405)
	}
	b := r.Body
	if b == nil || len(b.Messages) == 0 {
		return newError(CodeInvalidRequest, "invalid request: empty body")
	}
	if b.Batch {
		if !rev.AllowsBatch() {
			return newError(CodeInvalidRequest, "invalid request: batch not allowed in "+string(rev))
		}
		for _, m := range b.Messages {
			if m.Method == "initialize" {
				return newError(CodeInvalidRequest, "invalid request: initialize in a batch")
			}
		}
	}
	for _, m := range b.Messages {
		if !m.HasMetaVersion {
			continue
		}
		if hv == "" {
			return newError(CodeHeaderMismatch, "header mismatch: "+HeaderProtocolVersion+" missing")
		}
		if m.MetaVersion != hv {
			return newError(CodeHeaderMismatch, "header mismatch: "+HeaderProtocolVersion+" differs from _meta")
		}
	}
	if !rev.Stateless() {
		return mirrored(h, b)
	}
	if b.Batch || len(b.Messages) != 1 {
		return newError(CodeInvalidRequest, "invalid request: batch not allowed in "+string(rev))
	}
	m := &b.Messages[0]
	switch m.Kind {
	case KindRequest:
		if !m.HasMetaVersion {
			return withStatus(newError(CodeInvalidParams, "invalid params: _meta "+MetaProtocolVersion+" required"), 400)
		}
	case KindNotification:
	default:
		return newError(CodeInvalidRequest, "invalid request: clients send only requests and notifications in "+string(rev))
	}
	if err := match(h, HeaderMethod, m.Method); err != nil {
		return err
	}
	if name, ok := target(m); ok {
		return match(h, HeaderName, name)
	}
	return nil
}

// target is the body value mcp-name mirrors for m's method.
func target(m *Message) (string, bool) {
	switch m.Method {
	case "tools/call":
		return m.Tool, true
	case "prompts/get":
		return m.Prompt, true
	case "resources/read":
		return m.URI, true
	}
	return "", false
}

// mirrored checks mcp-method and mcp-name on legacy revisions: optional there, but when sent they
// must match the body, since an intermediary may decide on them.
func mirrored(h Headers, b *Body) *Error {
	hm, hn := h.Get(HeaderMethod), h.Get(HeaderName)
	if hm == "" && hn == "" {
		return nil
	}
	if b.Batch || len(b.Messages) != 1 {
		return newError(CodeHeaderMismatch, "header mismatch: "+HeaderMethod+" or "+HeaderName+" on a batch")
	}
	m := &b.Messages[0]
	if hm != "" {
		if err := match(h, HeaderMethod, m.Method); err != nil {
			return err
		}
	}
	if name, ok := target(m); ok && hn != "" {
		return match(h, HeaderName, name)
	}
	return nil
}

// defaultRevision is the revision of a request without mcp-protocol-version.
func defaultRevision(r Request, h Headers) Revision {
	if h.Get(HeaderSessionID) != "" {
		return Rev20250326
	}
	path, query, _ := strings.Cut(r.Path, "?")
	switch {
	case r.Method == "GET" && strings.HasSuffix(path, "/sse"):
		return Rev20241105
	case r.Method == "POST" && query != "":
		if q, err := url.ParseQuery(query); err == nil {
			for k := range q {
				// sessionId (TypeScript SDK), session_id (Python), sessionid (Go).
				if strings.EqualFold(strings.NewReplacer("_", "", "-", "").Replace(k), "sessionid") {
					return Rev20241105
				}
			}
		}
	}
	return Rev20250326
}

// match compares a required header with the body value it mirrors.
func match(h Headers, name, want string) *Error {
	got := h.Get(name)
	if got == "" {
		return newError(CodeHeaderMismatch, "header mismatch: "+name+" missing")
	}
	v, ok := headerValue(got)
	if !ok {
		return newError(CodeHeaderMismatch, "header mismatch: "+name+" has invalid encoding")
	}
	if v != want {
		return newError(CodeHeaderMismatch, "header mismatch: "+name+" differs from body")
	}
	return nil
}

// headerValue decodes a =?base64?…?= header value; other values are returned as sent.
func headerValue(v string) (string, bool) {
	const pre, suf = "=?base64?", "?="
	if !strings.HasPrefix(v, pre) || !strings.HasSuffix(v, suf) || len(v) < len(pre)+len(suf) {
		return v, true
	}
	d, err := base64.StdEncoding.Strict().DecodeString(v[len(pre) : len(v)-len(suf)])
	if err != nil {
		return "", false
	}
	return string(d), true
}

func withStatus(e *Error, status int) *Error {
	e.status = status
	return e
}

// singleID is the id of a single-message body, for error responses.
func singleID(b *Body) json.RawMessage {
	if b == nil || b.Batch || len(b.Messages) != 1 || b.Messages[0].ID == nil {
		return nil
	}
	if b.Messages[0].Kind != KindRequest {
		return nil
	}
	return b.Messages[0].ID
}

type noHeaders struct{}

func (noHeaders) Get(string) string { return "" }
