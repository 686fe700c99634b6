package mcp

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

var parseSeeds = []string{
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"query","arguments":{"sql":"SELECT 1"}}}`,
	`{"jsonr\u0070c":"2.0","id":"a","meth\u006fd":"tools/call","params":{"n\u0061me":"x"}}`,
	`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"}]`,
	`{"jsonrpc":"2.0","id":2,"result":{"content":[]}}`,
	`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x","data":[1,2]}}`,
	`{"jsonrpc":"2.0","id":1,"method":"ping","method":"x"}`,
	`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///\ud83d\ude00","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`,
	`[]`, `[1]`, `{}`, `"\ud800"`, `1e5`, ` {"a":[{"b":{"B":1}}]}`,
	// Member names that fold to ones the gateway reads (ASCII case, ſ U+017F, K U+212A).
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"execute_sql","Arguments":{"query":"DROP TABLE users"}}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"q","argument\u017f":{"query":"x"}}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"q","arguments":{"tas\u212a":"x","task":"y"}}}`,
	`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"_meta":{"IO.modelcontextprotocol/protocolversion":"2026-07-28"}}}`,
	`{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p","NAME":"q"}}`,
	`{"JSONRPC":"2.0","Id":1,"METHOD":"ping"}`,
	`{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m","Data":1}}`,
}

// FuzzParse checks that Parse never panics, that whatever it accepts is JSON whose envelope a
// standard decoder reads the same way, and that every batch element is returned.
func FuzzParse(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := Parse(body)
		if err != nil {
			var e *Error
			require.ErrorAs(t, err, &e)
			require.Contains(t, []int{CodeParse, CodeInvalidRequest, CodeInvalidParams}, e.Code)
			return
		}
		require.True(t, json.Valid(body))
		if b.Batch {
			var elems []json.RawMessage
			require.NoError(t, json.Unmarshal(body, &elems))
			require.Len(t, b.Messages, len(elems))
			require.NotEmpty(t, elems)
		} else {
			require.Len(t, b.Messages, 1)
		}
		for _, m := range b.Messages {
			checkMessage(t, m)
		}
	})
}

// checkMessage compares a parsed message with encoding/json's view of its raw bytes.
func checkMessage(t *testing.T, m Message) {
	t.Helper()
	var env struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Method  *string         `json:"method"`
		Params  *struct {
			// Raw: methods the gateway does not inspect may carry any type here.
			Name json.RawMessage `json:"name"`
			URI  json.RawMessage `json:"uri"`
			Args json.RawMessage `json:"arguments"`
			Meta *struct {
				Version *string `json:"io.modelcontextprotocol/protocolVersion"`
			} `json:"_meta"`
		} `json:"params"`
		Result json.RawMessage `json:"result"`
		Error  *Error          `json:"error"`
	}
	require.NoError(t, json.Unmarshal(m.Raw, &env))
	require.Equal(t, "2.0", env.JSONRPC)
	switch m.Kind {
	case KindRequest, KindNotification:
		require.NotNil(t, env.Method)
		require.Equal(t, *env.Method, m.Method)
		require.Equal(t, m.Kind == KindRequest, m.ID != nil)
		if m.Kind == KindRequest {
			require.True(t, validID(m.ID))
		}
		// encoding/json matches member names case-insensitively (with Unicode folding): what it
		// reads must be what the gateway read, or a member walked around the gateway.
		if env.Params != nil && env.Params.Meta != nil {
			require.Equal(t, env.Params.Meta.Version != nil, m.HasMetaVersion)
			if m.HasMetaVersion {
				require.Equal(t, *env.Params.Meta.Version, m.MetaVersion)
			}
		}
		switch m.Method {
		case "tools/call":
			require.Equal(t, jsonString(t, env.Params.Name), m.Tool)
			require.Equal(t, env.Params.Args == nil, m.Arguments == nil)
			if m.Arguments != nil {
				require.JSONEq(t, string(env.Params.Args), string(m.Arguments))
			}
		case "prompts/get":
			require.Equal(t, jsonString(t, env.Params.Name), m.Prompt)
		case "resources/read", "resources/subscribe", "resources/unsubscribe":
			require.Equal(t, jsonString(t, env.Params.URI), m.URI)
		}
	case KindResult:
		require.True(t, validID(m.ID))
		require.JSONEq(t, string(env.Result), string(m.Result))
	case KindError:
		require.NotNil(t, env.Error)
		require.Equal(t, env.Error.Code, m.Err.Code)
		require.Equal(t, env.Error.Message, m.Err.Message)
	default:
		t.Fatalf("kind %v", m.Kind)
	}
	// Re-marshalled, the message is still one valid JSON-RPC message.
	out, err := json.Marshal(m.Raw)
	require.NoError(t, err)
	again, err := Parse(out)
	require.NoError(t, err)
	require.Equal(t, m.Kind, again.Messages[0].Kind)
}

// jsonString decodes a JSON string the parser accepted as one.
func jsonString(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var s string
	require.NoError(t, json.Unmarshal(raw, &s))
	return s
}

// FuzzDecoder checks chunking invariance: any split gives the same events, and the Raw bytes plus
// the flushed tail reproduce the input, with and without a small event cap.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte(sseStream), uint16(3), uint16(40))
	f.Add([]byte("data: a\r\n\r\ndata: b\r\r"), uint16(8), uint16(9))
	f.Add([]byte("\xEF\xBB\xBF: c\n\nid: 1\x00\ndata\n\n"), uint16(1), uint16(2))
	f.Add([]byte("data: "+string(bytes.Repeat([]byte("x"), 100))+"\n\n"), uint16(50), uint16(70))
	f.Fuzz(func(t *testing.T, in []byte, a, b uint16) {
		i, j := int(a)%(len(in)+1), int(b)%(len(in)+1)
		if i > j {
			i, j = j, i
		}
		for _, max := range []int{0, 16} {
			whole, wholeTail := feedAll(t, max, in)
			evs, tail := feedAll(t, max, in[:i], in[i:j], in[j:])
			require.True(t, bytes.Equal(in, joinRaw(whole, wholeTail)), "whole stream not reproduced")
			require.True(t, bytes.Equal(in, joinRaw(evs, tail)), "split stream not reproduced")
			require.Equal(t, normalize(whole, wholeTail), normalize(evs, tail))
		}
	})
}

// normalize merges the fragments of each oversized event (and an oversized tail) so that event
// sequences from differently split streams compare equal.
func normalize(evs []Event, tail []byte) []Event {
	var out []Event
	open := false
	for _, e := range evs {
		if e.Oversize && open {
			last := &out[len(out)-1]
			last.Raw = append(append([]byte(nil), last.Raw...), e.Raw...)
			last.End = e.End
		} else {
			out = append(out, e)
		}
		open = e.Oversize && !e.End
	}
	if len(tail) > 0 {
		if open {
			last := &out[len(out)-1]
			last.Raw = append(append([]byte(nil), last.Raw...), tail...)
		} else {
			out = append(out, Event{Raw: tail, Oversize: true})
		}
	}
	return out
}
