package approvals

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// maxDepth bounds nesting so hostile arguments cannot exhaust the stack. It matches the
// deepest nesting the gateway's message parser accepts (mcp.MaxDepth, counted from the whole
// message), so every call that reaches policy can also be held: a shallower bound here made
// deep but valid calls that needed approval fail instead of being held.
const maxDepth = 128

// Canonical returns the canonical form of a JSON value: object keys sorted, no
// insignificant whitespace, strings re-encoded, numbers kept as written. Two argument
// objects that differ only in key order or spacing have the same canonical form. Duplicate
// keys, invalid UTF-8, trailing data and nesting deeper than 128 are errors: such input
// could mean different things to the approver and to the upstream server.
func Canonical(raw []byte) ([]byte, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return []byte("null"), nil
	}
	return canonical(raw, nil)
}

// omit names a member to leave out of a canonical form: key, or a member of key's object
// value when next is set.
type omit struct {
	key  string
	next *omit
}

// perCall is what [Binding] leaves out of params: the progress token, a correlation id a
// client picks afresh for every call (the MCP TypeScript SDK does), which routes progress
// notifications and cannot change what the call does.
var perCall = &omit{key: "_meta", next: &omit{key: "progressToken"}}

// Binding is the canonical form of a call's whole params object, which an approval grant is
// bound to: every member the client sent, parsed by the gateway or not, except
// params._meta.progressToken. A retry that adds, drops or changes any other member anywhere in
// params ("Arguments" next to "arguments", a _meta entry, an unknown member) binds
// differently and needs its own approval.
func Binding(params []byte) ([]byte, error) {
	if len(bytes.TrimSpace(params)) == 0 {
		return []byte("null"), nil
	}
	return canonical(params, perCall)
}

func canonical(raw []byte, skip *omit) ([]byte, error) {
	if !utf8.Valid(raw) {
		return nil, errors.New("canonical json: invalid utf-8")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var buf bytes.Buffer
	if err := canonValue(dec, &buf, 0, skip); err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("canonical json: trailing data")
	}
	return buf.Bytes(), nil
}

func canonValue(dec *json.Decoder, buf *bytes.Buffer, depth int, skip *omit) error {
	if depth > maxDepth {
		return errors.New("nesting too deep")
	}
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("read token: %w", err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			return canonObject(dec, buf, depth, skip)
		case '[':
			buf.WriteByte('[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					buf.WriteByte(',')
				}
				if err := canonValue(dec, buf, depth+1, nil); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil {
				return fmt.Errorf("read array end: %w", err)
			}
			buf.WriteByte(']')
			return nil
		}
		return fmt.Errorf("unexpected delimiter %q", t)
	case string:
		writeString(buf, t)
	case json.Number:
		buf.WriteString(t.String())
	case bool:
		if t {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
	case nil:
		buf.WriteString("null")
	default:
		return fmt.Errorf("unexpected token %T", tok)
	}
	return nil
}

func canonObject(dec *json.Decoder, buf *bytes.Buffer, depth int, skip *omit) error {
	type member struct {
		key string
		val []byte
	}
	var members []member
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("read key: %w", err)
		}
		k, ok := tok.(string)
		if !ok {
			return errors.New("object key is not a string")
		}
		if seen[k] {
			return fmt.Errorf("duplicate key %q", k)
		}
		seen[k] = true
		var child *omit
		if skip != nil && k == skip.key {
			child = skip.next
		}
		var v bytes.Buffer
		// An omitted member is still read in full, so that it is valid and within bounds.
		if err := canonValue(dec, &v, depth+1, child); err != nil {
			return err
		}
		if skip != nil && k == skip.key && child == nil {
			continue
		}
		members = append(members, member{k, v.Bytes()})
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("read object end: %w", err)
	}
	slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.key, b.key) })
	buf.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			buf.WriteByte(',')
		}
		writeString(buf, m.key)
		buf.WriteByte(':')
		buf.Write(m.val)
	}
	buf.WriteByte('}')
	return nil
}

func writeString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	buf.Truncate(buf.Len() - 1)
}
