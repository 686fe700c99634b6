package mcp

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// Kind is the shape of a JSON-RPC message.
type Kind uint8

// Message kinds.
const (
	KindRequest      Kind = iota + 1 // method and id
	KindNotification                 // method, no id
	KindResult                       // id and result
	KindError                        // error, id possibly absent or null
)

// String returns the lower-case kind name.
func (k Kind) String() string {
	switch k {
	case KindRequest:
		return "request"
	case KindNotification:
		return "notification"
	case KindResult:
		return "result"
	case KindError:
		return "error"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// MetaProtocolVersion is the params._meta key that carries the revision on 2026-07-28 requests.
const MetaProtocolVersion = "io.modelcontextprotocol/protocolVersion"

// Message is one parsed JSON-RPC message. Raw fields alias the parsed body (no copies); strings
// are decoded exactly as a JSON decoder would decode them.
type Message struct {
	Kind      Kind
	ID        json.RawMessage // raw id as sent (number or string); nil for notifications
	Method    string
	Params    json.RawMessage
	Tool      string          // tools/call params.name
	Arguments json.RawMessage // tools/call params.arguments (object) or nil
	URI       string          // resources/read|subscribe|unsubscribe params.uri
	Prompt    string          // prompts/get params.name
	Meta      json.RawMessage // params._meta
	Result    json.RawMessage // for KindResult
	Err       *Error          // for KindError
	Raw       json.RawMessage // the whole message

	// MetaVersion is params._meta["io.modelcontextprotocol/protocolVersion"]; HasMetaVersion
	// tells an empty value from an absent one.
	MetaVersion    string
	HasMetaVersion bool
}

// Body is a parsed HTTP body: one message, or a batch array.
type Body struct {
	Messages []Message
	Batch    bool
}

// Parse parses a POST (or response) body strictly. Errors are *Error with CodeParse (not JSON),
// CodeInvalidRequest (not a JSON-RPC message) or CodeInvalidParams (malformed params of a method
// the gateway inspects); [Error.ID] returns the offending message's id when it was readable.
//
// Refused: invalid UTF-8 or lone surrogate escapes, trailing data, nesting deeper than [MaxDepth],
// duplicate keys at any depth, keys that differ only by case or Unicode folding in the envelope, the
// error object and anywhere inside params (case-insensitive decoders would merge them), a member of
// the envelope, params, params._meta or the error object whose name is not one the gateway reads
// but folds to one ("Arguments", "argumentſ": an upstream decoding case-insensitively would take it
// for the member the gateway saw as absent), a missing or wrong jsonrpc,
// members JSON-RPC does not define, a null id on requests and results, ids that are neither strings
// nor 64-bit integers, non-object params, results or batch elements, both result and error, and an
// empty batch. Error responses may carry a null or absent id, as JSON-RPC allows.
func Parse(body []byte) (*Body, error) {
	b, err := parse(body)
	if err != nil {
		if err.Code != CodeParse {
			// A syntax error anywhere takes precedence over an envelope error found earlier.
			v := parser{buf: body, syntaxOnly: true}
			_, serr := v.value(0, false)
			switch {
			case serr != nil && serr.Code == CodeParse:
				return nil, serr
			case serr == nil && v.skipWS() != len(body):
				return nil, v.syntax("trailing data")
			}
		}
		return nil, err
	}
	return b, nil
}

func parse(body []byte) (*Body, *Error) {
	p := parser{buf: body, keys: make([][]byte, 0, 32)}
	p.skipWS()
	if p.pos >= len(body) {
		return nil, p.syntax("empty body")
	}
	var b Body
	switch body[p.pos] {
	case '{':
		m, err := p.message()
		if err != nil {
			return nil, err
		}
		if p.skipWS() != len(body) {
			return nil, p.syntax("trailing data")
		}
		one := &struct {
			b Body
			m [1]Message
		}{}
		one.m[0] = m
		one.b.Messages = one.m[:]
		return &one.b, nil
	case '[':
		b.Batch = true
		p.pos++
		if p.skipWS(); p.pos < len(body) && body[p.pos] == ']' {
			p.pos++
			if p.skipWS() != len(body) {
				return nil, p.syntax("trailing data")
			}
			return nil, newError(CodeInvalidRequest, "invalid request: empty batch")
		}
		for {
			if p.skipWS(); p.pos >= len(body) || body[p.pos] != '{' {
				if _, err := p.value(1, false); err != nil {
					return nil, err
				}
				return nil, newError(CodeInvalidRequest, "invalid request: batch element "+strconv.Itoa(len(b.Messages))+" is not an object")
			}
			m, err := p.message()
			if err != nil {
				return nil, err
			}
			b.Messages = append(b.Messages, m)
			if p.skipWS(); p.pos >= len(body) {
				return nil, p.syntax("unterminated array")
			}
			if body[p.pos] == ']' {
				p.pos++
				break
			}
			if body[p.pos] != ',' {
				return nil, p.syntax("expected ',' or ']'")
			}
			p.pos++
		}
	default:
		if _, err := p.value(0, false); err != nil {
			return nil, err
		}
		return nil, newError(CodeInvalidRequest, "invalid request: not an object or array")
	}
	if p.skipWS() != len(body) {
		return nil, p.syntax("trailing data")
	}
	return &b, nil
}

// The member names the gateway reads at each level. A member whose name is not one of them
// but folds to one (see [folded]) is refused: a case-insensitive decoder upstream would take it
// for the member the gateway read as absent.
var (
	envelopeNames = names("jsonrpc", "id", "method", "params", "result", "error")
	paramNames    = names("name", "uri", "arguments", "_meta")
	metaNames     = names(MetaProtocolVersion)
	errorNames    = names("code", "message", "data")
)

func names(n ...string) [][]byte {
	out := make([][]byte, len(n))
	for i, s := range n {
		out[i] = []byte(s)
	}
	return out
}

// folded returns the name in known that key equals under Unicode simple case folding (what
// encoding/json and strings.EqualFold match: ASCII case, and ſ U+017F for s, K U+212A for k),
// or "" if none. The caller has already matched key against known byte for byte. The length
// test keeps the common case cheap: every known name is ASCII, and a rune folding to an ASCII
// letter is at most 3 bytes long.
func folded(key []byte, known [][]byte) string {
	for _, n := range known {
		if len(key) >= len(n) && len(key) <= 3*len(n) && bytes.EqualFold(key, n) {
			return string(n)
		}
	}
	return ""
}

// foldMessage describes a refused member without echoing the name or value the client sent.
func foldMessage(name string) string {
	return "member name differs from " + strconv.Quote(name) + " only by letter case or Unicode folding"
}

// fields of params the gateway extracts before it knows the method.
type paramFields struct {
	name, uri, args, meta span
	version               span
}

// message parses one JSON-RPC message object at p.pos.
func (p *parser) message() (Message, *Error) {
	var (
		m                                   Message
		version, id, method, params, result span
		errObj                              *Error
		pf                                  paramFields
	)
	obj, err := p.object(1, true, func(key []byte) *Error {
		var err *Error
		switch string(key) {
		case "jsonrpc":
			version, err = p.value(1, true)
		case "id":
			id, err = p.value(1, true)
		case "method":
			method, err = p.value(1, true)
		case "params":
			params, err = p.params(&pf)
		case "result":
			result, err = p.value(1, false)
		case "error":
			errObj, err = p.errorObject()
		default:
			if n := folded(key, envelopeNames); n != "" {
				return newError(CodeInvalidRequest, "invalid request: "+foldMessage(n))
			}
			return newError(CodeInvalidRequest, "invalid request: unknown member")
		}
		return err
	})
	if err != nil {
		return m, err
	}
	m.Raw = p.buf[obj.start:obj.end]
	if id.kind != 0 {
		m.ID = p.raw(id)
	}
	fail := func(code int, msg string) (Message, *Error) {
		e := newError(code, msg)
		if id.kind == kString || (id.kind == kNumber && id.integer) {
			e.id = m.ID
		}
		return m, e
	}
	if version.kind != kString || string(p.decode(version)) != "2.0" {
		return fail(CodeInvalidRequest, `invalid request: jsonrpc must be "2.0"`)
	}
	if id.kind != 0 && id.kind != kNull && !p.validIDSpan(id) {
		return fail(CodeInvalidRequest, "invalid request: id must be a string or an integer")
	}
	switch {
	case method.kind != 0:
		if method.kind != kString {
			return fail(CodeInvalidRequest, "invalid request: method must be a string")
		}
		if result.kind != 0 || errObj != nil {
			return fail(CodeInvalidRequest, "invalid request: request carries result or error")
		}
		m.Method = string(p.decode(method))
		switch id.kind {
		case 0:
			m.Kind = KindNotification
		case kNull:
			return fail(CodeInvalidRequest, "invalid request: id must not be null")
		default:
			m.Kind = KindRequest
		}
		if params.kind != 0 {
			if params.kind != kObject {
				return fail(CodeInvalidParams, "invalid params: params must be an object")
			}
			m.Params = p.raw(params)
		}
		if e := p.extract(&m, &pf); e != nil {
			return fail(e.Code, e.Message)
		}
	case result.kind != 0 && errObj != nil:
		return fail(CodeInvalidRequest, "invalid request: both result and error")
	case params.kind != 0:
		return fail(CodeInvalidRequest, "invalid request: params without method")
	case result.kind != 0:
		if id.kind == 0 || id.kind == kNull {
			return fail(CodeInvalidRequest, "invalid request: result without id")
		}
		if result.kind != kObject {
			return fail(CodeInvalidRequest, "invalid request: result must be an object")
		}
		m.Kind = KindResult
		m.Result = p.raw(result)
	case errObj != nil:
		m.Kind = KindError
		m.Err = errObj
	default:
		return fail(CodeInvalidRequest, "invalid request: no method, result or error")
	}
	return m, nil
}

func (p *parser) raw(s span) json.RawMessage { return json.RawMessage(p.buf[s.start:s.end:s.end]) }

func (p *parser) validIDSpan(s span) bool {
	switch s.kind {
	case kString:
		return true
	case kNumber:
		if !s.integer {
			return false
		}
		_, err := strconv.ParseInt(string(p.buf[s.start:s.end]), 10, 64)
		return err == nil
	default:
		return false // objects, arrays, booleans and null are not ids
	}
}

// params parses the params value, remembering the members the gateway extracts. Keys that differ
// only by case are refused at every depth below params.
func (p *parser) params(pf *paramFields) (span, *Error) {
	if p.skipWS(); p.pos >= len(p.buf) || p.buf[p.pos] != '{' {
		return p.value(1, true)
	}
	return p.object(2, true, func(key []byte) *Error {
		var err *Error
		switch string(key) {
		case "name":
			pf.name, err = p.value(2, true)
		case "uri":
			pf.uri, err = p.value(2, true)
		case "arguments":
			pf.args, err = p.value(2, true)
		case "_meta":
			pf.meta, err = p.meta(pf)
		default:
			if n := folded(key, paramNames); n != "" {
				return newError(CodeInvalidParams, "invalid params: params "+foldMessage(n))
			}
			_, err = p.value(2, true)
		}
		return err
	})
}

func (p *parser) meta(pf *paramFields) (span, *Error) {
	if p.skipWS(); p.pos >= len(p.buf) || p.buf[p.pos] != '{' {
		return p.value(2, true)
	}
	return p.object(3, true, func(key []byte) *Error {
		var err *Error
		switch {
		case string(key) == MetaProtocolVersion:
			pf.version, err = p.value(3, true)
		case folded(key, metaNames) != "":
			return newError(CodeInvalidParams, "invalid params: params._meta "+foldMessage(MetaProtocolVersion))
		default:
			_, err = p.value(3, true)
		}
		return err
	})
}

// extract fills the method-specific fields of a request or notification.
func (p *parser) extract(m *Message, pf *paramFields) *Error {
	if pf.meta.kind != 0 {
		if pf.meta.kind != kObject {
			return newError(CodeInvalidParams, "invalid params: _meta must be an object")
		}
		m.Meta = p.raw(pf.meta)
		if pf.version.kind != 0 {
			if pf.version.kind != kString {
				return newError(CodeInvalidParams, "invalid params: _meta protocol version must be a string")
			}
			m.MetaVersion = string(p.decode(pf.version))
			m.HasMetaVersion = true
		}
	}
	str := func(s span, field string) (string, *Error) {
		if s.kind != kString {
			return "", newError(CodeInvalidParams, "invalid params: "+m.Method+" requires string params."+field)
		}
		return string(p.decode(s)), nil
	}
	var err *Error
	switch m.Method {
	case "tools/call":
		if m.Tool, err = str(pf.name, "name"); err != nil {
			return err
		}
		if pf.args.kind != 0 {
			if pf.args.kind != kObject {
				return newError(CodeInvalidParams, "invalid params: tools/call params.arguments must be an object")
			}
			m.Arguments = p.raw(pf.args)
		}
	case "prompts/get":
		m.Prompt, err = str(pf.name, "name")
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		m.URI, err = str(pf.uri, "uri")
	}
	return err
}

// errorObject parses a JSON-RPC error object: integer code, string message, optional data.
func (p *parser) errorObject() (*Error, *Error) {
	if p.skipWS(); p.pos >= len(p.buf) || p.buf[p.pos] != '{' {
		if _, err := p.value(1, true); err != nil {
			return nil, err
		}
		return nil, newError(CodeInvalidRequest, "invalid request: error must be an object")
	}
	var code, msg, data span
	_, err := p.object(2, true, func(key []byte) *Error {
		var err *Error
		switch string(key) {
		case "code":
			code, err = p.value(2, true)
		case "message":
			msg, err = p.value(2, true)
		case "data":
			data, err = p.value(2, false)
		default:
			if n := folded(key, errorNames); n != "" {
				return newError(CodeInvalidRequest, "invalid request: error "+foldMessage(n))
			}
			return newError(CodeInvalidRequest, "invalid request: unknown error member")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if code.kind != kNumber || !code.integer {
		return nil, newError(CodeInvalidRequest, "invalid request: error.code must be an integer")
	}
	c, perr := strconv.ParseInt(string(p.buf[code.start:code.end]), 10, 32)
	if perr != nil {
		return nil, newError(CodeInvalidRequest, "invalid request: error.code out of range")
	}
	if msg.kind != kString {
		return nil, newError(CodeInvalidRequest, "invalid request: error.message must be a string")
	}
	e := &Error{Code: int(c), Message: string(p.decode(msg))}
	if data.kind != 0 {
		e.Data = p.raw(data)
	}
	return e, nil
}
