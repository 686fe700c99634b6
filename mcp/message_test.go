package mcp

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseShapes(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		batch bool
		want  []Message // Raw is checked separately
	}{
		{
			name: "tools/call",
			body: `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"query","arguments":{"sql":"SELECT 1"},"_meta":{"progressToken":1}}}`,
			want: []Message{{
				Kind: KindRequest, ID: raw(`7`), Method: "tools/call", Tool: "query",
				Params:    raw(`{"name":"query","arguments":{"sql":"SELECT 1"},"_meta":{"progressToken":1}}`),
				Arguments: raw(`{"sql":"SELECT 1"}`), Meta: raw(`{"progressToken":1}`),
			}},
		},
		{
			name: "escaped keys and values decode like a JSON decoder",
			body: `{"jsonr\u0070c":"2.0","id":"a\"b","meth\u006fd":"tools\/call","params":{"n\u0061me":"dr\u006fp_db","arguments":{}}}`,
			want: []Message{{
				Kind: KindRequest, ID: raw(`"a\"b"`), Method: "tools/call", Tool: "drop_db",
				Params:    raw(`{"n\u0061me":"dr\u006fp_db","arguments":{}}`),
				Arguments: raw(`{}`),
			}},
		},
		{
			name: "surrogate pair in tool name",
			body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x\ud83d\ude00"}}`,
			want: []Message{{Kind: KindRequest, ID: raw(`1`), Method: "tools/call", Tool: "x😀", Params: raw(`{"name":"x\ud83d\ude00"}`)}},
		},
		{
			name: "notification",
			body: ` {"method":"notifications/initialized","jsonrpc":"2.0"} ` + "\n",
			want: []Message{{Kind: KindNotification, Method: "notifications/initialized"}},
		},
		{
			name: "string id request without params",
			body: `{"jsonrpc":"2.0","id":"abc","method":"tools/list"}`,
			want: []Message{{Kind: KindRequest, ID: raw(`"abc"`), Method: "tools/list"}},
		},
		{
			name: "negative integer id",
			body: `{"jsonrpc":"2.0","id":-9223372036854775808,"method":"ping"}`,
			want: []Message{{Kind: KindRequest, ID: raw(`-9223372036854775808`), Method: "ping"}},
		},
		{
			name: "resources/read",
			body: `{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///etc/passwd"}}`,
			want: []Message{{Kind: KindRequest, ID: raw(`2`), Method: "resources/read", URI: "file:///etc/passwd", Params: raw(`{"uri":"file:///etc/passwd"}`)}},
		},
		{
			name: "resources/subscribe",
			body: `{"jsonrpc":"2.0","id":2,"method":"resources/subscribe","params":{"uri":"db://x"}}`,
			want: []Message{{Kind: KindRequest, ID: raw(`2`), Method: "resources/subscribe", URI: "db://x", Params: raw(`{"uri":"db://x"}`)}},
		},
		{
			name: "prompts/get",
			body: `{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"review","arguments":{"a":"b"}}}`,
			want: []Message{{Kind: KindRequest, ID: raw(`3`), Method: "prompts/get", Prompt: "review", Params: raw(`{"name":"review","arguments":{"a":"b"}}`)}},
		},
		{
			name: "_meta protocol version",
			body: `{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol\/protocolVersion":"2026-07-28"}}}`,
			want: []Message{{
				Kind: KindRequest, ID: raw(`4`), Method: "tools/list",
				Params:      raw(`{"_meta":{"io.modelcontextprotocol\/protocolVersion":"2026-07-28"}}`),
				Meta:        raw(`{"io.modelcontextprotocol\/protocolVersion":"2026-07-28"}`),
				MetaVersion: "2026-07-28", HasMetaVersion: true,
			}},
		},
		{
			name: "result",
			body: `{"jsonrpc":"2.0","id":5,"result":{"content":[{"type":"text","text":"hi"}]}}`,
			want: []Message{{Kind: KindResult, ID: raw(`5`), Result: raw(`{"content":[{"type":"text","text":"hi"}]}`)}},
		},
		{
			name: "result with keys differing by case",
			body: `{"jsonrpc":"2.0","id":5,"result":{"userId":1,"userID":2}}`,
			want: []Message{{Kind: KindResult, ID: raw(`5`), Result: raw(`{"userId":1,"userID":2}`)}},
		},
		{
			name: "error with data",
			body: `{"jsonrpc":"2.0","id":6,"error":{"code":-32602,"message":"Unknown tool: x","data":{"k":[1]}}}`,
			want: []Message{{Kind: KindError, ID: raw(`6`), Err: &Error{Code: -32602, Message: "Unknown tool: x", Data: raw(`{"k":[1]}`)}}},
		},
		{
			name: "error with null id",
			body: `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}`,
			want: []Message{{Kind: KindError, ID: raw(`null`), Err: &Error{Code: -32700, Message: "parse error"}}},
		},
		{
			name: "error without id",
			body: `{"jsonrpc":"2.0","error":{"code":-32700,"message":"parse error"}}`,
			want: []Message{{Kind: KindError, Err: &Error{Code: -32700, Message: "parse error"}}},
		},
		{
			name:  "batch of every element kind",
			body:  `[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}}, {"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}},{"jsonrpc":"2.0","id":2,"result":{}}]`,
			batch: true,
			want: []Message{
				{Kind: KindRequest, ID: raw(`1`), Method: "tools/call", Tool: "a", Params: raw(`{"name":"a"}`)},
				{Kind: KindNotification, Method: "notifications/cancelled", Params: raw(`{"requestId":1}`)},
				{Kind: KindResult, ID: raw(`2`), Result: raw(`{}`)},
			},
		},
		{
			name:  "batch of one",
			body:  `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`,
			batch: true,
			want:  []Message{{Kind: KindRequest, ID: raw(`1`), Method: "ping"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Parse([]byte(tt.body))
			require.NoError(t, err)
			require.Equal(t, tt.batch, b.Batch)
			require.Len(t, b.Messages, len(tt.want))
			for i := range b.Messages {
				got := b.Messages[i]
				require.True(t, json.Valid(got.Raw), "raw %q", got.Raw)
				require.Contains(t, tt.body, string(got.Raw))
				got.Raw = nil
				require.Equal(t, tt.want[i], got)
			}
		})
	}
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func TestParseErrors(t *testing.T) {
	deep := strings.Repeat(`[`, MaxDepth) + strings.Repeat(`]`, MaxDepth)
	tests := []struct {
		name string
		body string
		code int
	}{
		{"empty", ``, CodeParse},
		{"whitespace", " \n", CodeParse},
		{"not json", `hello`, CodeParse},
		{"truncated", `{"jsonrpc":"2.0","id":1,"method":"ping"`, CodeParse},
		{"trailing garbage", `{"jsonrpc":"2.0","id":1,"method":"ping"}x`, CodeParse},
		{"two objects", `{"jsonrpc":"2.0","id":1,"method":"ping"}{"jsonrpc":"2.0","id":2,"method":"ping"}`, CodeParse},
		{"trailing comma", `{"jsonrpc":"2.0","id":1,"method":"ping",}`, CodeParse},
		{"single quotes", `{'jsonrpc':"2.0"}`, CodeParse},
		{"bom", "\xEF\xBB\xBF" + `{"jsonrpc":"2.0","id":1,"method":"ping"}`, CodeParse},
		{"invalid utf-8", `{"jsonrpc":"2.0","id":1,"method":"p` + "\xff" + `"}`, CodeParse},
		{"lone high surrogate", `{"jsonrpc":"2.0","id":1,"method":"\ud800"}`, CodeParse},
		{"lone low surrogate", `{"jsonrpc":"2.0","id":1,"method":"\udc00x"}`, CodeParse},
		{"bad escape", `{"jsonrpc":"2.0","id":1,"method":"\x"}`, CodeParse},
		{"control char", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\tb\"}", CodeParse},
		{"leading zero", `{"jsonrpc":"2.0","id":01,"method":"ping"}`, CodeParse},
		{"syntax error after envelope error", `{"jsonrpc":"1.0","id":1,"method":"ping"} x`, CodeParse},
		{"too deep", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":` + deep + `}}}`, CodeInvalidRequest},
		{"top-level string", `"x"`, CodeInvalidRequest},
		{"top-level null", `null`, CodeInvalidRequest},
		{"empty batch", `[]`, CodeInvalidRequest},
		{"batch with non-object", `[{"jsonrpc":"2.0","id":1,"method":"ping"},1]`, CodeInvalidRequest},
		{"nested batch", `[[{"jsonrpc":"2.0","id":1,"method":"ping"}]]`, CodeInvalidRequest},
		{"batch with invalid element", `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"id":2,"method":"ping"}]`, CodeInvalidRequest},
		{"missing jsonrpc", `{"id":1,"method":"ping"}`, CodeInvalidRequest},
		{"wrong jsonrpc", `{"jsonrpc":"1.0","id":1,"method":"ping"}`, CodeInvalidRequest},
		{"numeric jsonrpc", `{"jsonrpc":2.0,"id":1,"method":"ping"}`, CodeInvalidRequest},
		{"null id", `{"jsonrpc":"2.0","id":null,"method":"ping"}`, CodeInvalidRequest},
		{"float id", `{"jsonrpc":"2.0","id":1.5,"method":"ping"}`, CodeInvalidRequest},
		{"exponent id", `{"jsonrpc":"2.0","id":1e3,"method":"ping"}`, CodeInvalidRequest},
		{"huge id", `{"jsonrpc":"2.0","id":9223372036854775808,"method":"ping"}`, CodeInvalidRequest},
		{"object id", `{"jsonrpc":"2.0","id":{},"method":"ping"}`, CodeInvalidRequest},
		{"bool id", `{"jsonrpc":"2.0","id":true,"method":"ping"}`, CodeInvalidRequest},
		{"numeric method", `{"jsonrpc":"2.0","id":1,"method":1}`, CodeInvalidRequest},
		{"duplicate method", `{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call"}`, CodeInvalidRequest},
		{"duplicate via escape", `{"jsonrpc":"2.0","id":1,"method":"ping","m\u0065thod":"tools/call"}`, CodeInvalidRequest},
		{"case variant of method", `{"jsonrpc":"2.0","id":1,"method":"ping","Method":"tools/call"}`, CodeInvalidRequest},
		{"kelvin sign fold", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"k":1,"\u212a":2}}}`, CodeInvalidRequest},
		{"duplicate tool name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe","name":"drop"}}`, CodeInvalidRequest},
		{"case variant of name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe","NAME":"drop"}}`, CodeInvalidRequest},
		{"duplicate deep in arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"q":{"sql":"x","sql":"y"}}}}`, CodeInvalidRequest},
		{"case duplicate deep in arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"q":[{"sql":"x","SQL":"y"}]}}}`, CodeInvalidRequest},
		{"duplicate in result", `{"jsonrpc":"2.0","id":1,"result":{"a":1,"a":2}}`, CodeInvalidRequest},
		{"duplicate in many-key object", `{"jsonrpc":"2.0","id":1,"result":{` + manyKeys(40) + `,"k7":0}}`, CodeInvalidRequest},
		{"case duplicate in many-key params", `{"jsonrpc":"2.0","id":1,"method":"x","params":{` + manyKeys(40) + `,"K7":0}}`, CodeInvalidRequest},
		{"duplicate meta version", `{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2025-11-25","io.modelcontextprotocol\/protocolVersion":"2026-07-28"}}}`, CodeInvalidRequest},
		{"unknown member", `{"jsonrpc":"2.0","id":1,"method":"ping","extra":1}`, CodeInvalidRequest},
		{"result and error", `{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"x"}}`, CodeInvalidRequest},
		{"method and result", `{"jsonrpc":"2.0","id":1,"method":"ping","result":{}}`, CodeInvalidRequest},
		{"nothing", `{"jsonrpc":"2.0","id":1}`, CodeInvalidRequest},
		{"params without method", `{"jsonrpc":"2.0","id":1,"params":{},"result":{}}`, CodeInvalidRequest},
		{"result without id", `{"jsonrpc":"2.0","result":{}}`, CodeInvalidRequest},
		{"result with null id", `{"jsonrpc":"2.0","id":null,"result":{}}`, CodeInvalidRequest},
		{"non-object result", `{"jsonrpc":"2.0","id":1,"result":[]}`, CodeInvalidRequest},
		{"error not object", `{"jsonrpc":"2.0","id":1,"error":"x"}`, CodeInvalidRequest},
		{"error without code", `{"jsonrpc":"2.0","id":1,"error":{"message":"x"}}`, CodeInvalidRequest},
		{"error float code", `{"jsonrpc":"2.0","id":1,"error":{"code":1.5,"message":"x"}}`, CodeInvalidRequest},
		{"error without message", `{"jsonrpc":"2.0","id":1,"error":{"code":1}}`, CodeInvalidRequest},
		{"error unknown member", `{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x","extra":1}}`, CodeInvalidRequest},
		{"array params", `{"jsonrpc":"2.0","id":1,"method":"ping","params":[]}`, CodeInvalidParams},
		{"tools/call without params", `{"jsonrpc":"2.0","id":1,"method":"tools/call"}`, CodeInvalidParams},
		{"tools/call without name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{}}}`, CodeInvalidParams},
		{"tools/call numeric name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":1}}`, CodeInvalidParams},
		{"tools/call array arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":[]}}`, CodeInvalidParams},
		{"tools/call null arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":null}}`, CodeInvalidParams},
		{"resources/read without uri", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{}}`, CodeInvalidParams},
		{"prompts/get without name", `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"uri":"x"}}`, CodeInvalidParams},
		{"_meta not object", `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"_meta":[]}}`, CodeInvalidParams},
		{"_meta version not string", `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":1}}}`, CodeInvalidParams},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Parse([]byte(tt.body))
			require.Nil(t, b)
			var e *Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, tt.code, e.Code, "message: %s", e.Message)
			require.Equal(t, 400, (&Error{Code: CodeInvalidRequest}).HTTPStatus())
		})
	}
}

func manyKeys(n int) string {
	var sb strings.Builder
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`"k` + string(rune('0'+i%10)) + strings.Repeat("x", i/10) + `":0`)
	}
	return sb.String()
}

func TestParseDepthLimit(t *testing.T) {
	wrap := func(n int) string {
		// params is depth 2, arguments depth 3: n more arrays reach depth 3+n.
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":` +
			strings.Repeat("[", n) + strings.Repeat("]", n) + `}}}`
	}
	tests := []struct {
		name string
		n    int
		ok   bool
	}{
		{"at the limit", MaxDepth - 3, true},
		{"one past the limit", MaxDepth - 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(wrap(tt.n)))
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
		})
	}
}

func TestParseErrorID(t *testing.T) {
	tests := []struct {
		name string
		body string
		id   json.RawMessage
	}{
		{"missing tool name keeps id", `{"jsonrpc":"2.0","id":"r1","method":"tools/call","params":{}}`, raw(`"r1"`)},
		{"null id dropped", `{"jsonrpc":"2.0","id":null,"method":"ping"}`, nil},
		{"syntax error has none", `{"jsonrpc":"2.0","id":1,`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.body))
			var e *Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, tt.id, e.ID())
		})
	}
}

func TestErrorResponse(t *testing.T) {
	tests := []struct {
		name string
		id   json.RawMessage
		err  *Error
		want string
	}{
		{"number id", raw(`7`), &Error{Code: CodeInvalidParams, Message: "Unknown tool: x"}, `{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"Unknown tool: x"}}`},
		{"string id and data", raw(`"a"`), &Error{Code: -31003, Message: "denied", Data: map[string]string{"policy": "p"}}, `{"jsonrpc":"2.0","id":"a","error":{"code":-31003,"message":"denied","data":{"policy":"p"}}}`},
		{"nil id", nil, &Error{Code: CodeParse, Message: "parse error"}, `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}`},
		{"invalid id", raw(`{"x":1}`), &Error{Code: CodeParse, Message: "p"}, `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"p"}}`},
		{"unencodable data", raw(`1`), &Error{Code: 1, Message: "m", Data: make(chan int)}, `{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"}}`},
		{"nil error", raw(`1`), nil, `{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"internal error"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ErrorResponse(tt.id, tt.err)
			require.JSONEq(t, tt.want, string(got))
			b, err := Parse(got)
			require.NoError(t, err)
			require.Equal(t, KindError, b.Messages[0].Kind)
		})
	}
}

func TestHTTPStatus(t *testing.T) {
	tests := []struct {
		name string
		code int
		rev  Revision
		want int
	}{
		{"parse", CodeParse, "", 400},
		{"invalid request", CodeInvalidRequest, Rev20251125, 400},
		{"header mismatch", CodeHeaderMismatch, Rev20260728, 400},
		{"unsupported version", CodeUnsupportedVersion, "", 400},
		{"missing capability", CodeMissingCapability, Rev20260728, 400},
		{"method not found modern", CodeMethodNotFound, Rev20260728, 404},
		{"method not found legacy", CodeMethodNotFound, Rev20251125, 200},
		{"invalid params", CodeInvalidParams, Rev20260728, 200},
		{"app code", -31003, Rev20250618, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, (&Error{Code: tt.code}).HTTPStatusFor(tt.rev))
			require.Equal(t, tt.want, (&Error{Code: tt.code, rev: tt.rev}).HTTPStatus())
		})
	}
}

func TestKindString(t *testing.T) {
	tests := []struct {
		k    Kind
		want string
	}{
		{KindRequest, "request"}, {KindNotification, "notification"}, {KindResult, "result"}, {KindError, "error"}, {0, "kind(0)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) { require.Equal(t, tt.want, tt.k.String()) })
	}
}

// TestParseFoldedNames: a member whose name differs from one the gateway reads only by letter
// case or Unicode simple folding (ſ U+017F folds to s, K U+212A to k) is what a case-insensitive
// decoder upstream (encoding/json and many others) takes for that member, while the gateway
// would see nothing there. Such members are refused at the envelope, in params, in _meta and in
// the error object; the message names the member the gateway reads, never the value.
func TestParseFoldedNames(t *testing.T) {
	const secret = "DROP TABLE users"
	tests := []struct {
		name, body string
		code       int
		member     string // the member the refusal names
	}{
		{"params Arguments alone", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"execute_sql","Arguments":{"query":"` + secret + `"}}}`, CodeInvalidParams, "arguments"},
		{"params long s alone", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"execute_sql","argument\u017f":{"query":"` + secret + `"}}}`, CodeInvalidParams, "arguments"},
		{"params raw long s alone", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"execute_sql","argumentſ":{"query":"` + secret + `"}}}`, CodeInvalidParams, "arguments"},
		{"params Name on prompts/get", `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"Name":"` + secret + `"}}`, CodeInvalidParams, "name"},
		{"params URI next to another method", `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"URI":"` + secret + `"}}`, CodeInvalidParams, "uri"},
		{"params _META", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","_META":{"x":"` + secret + `"}}}`, CodeInvalidParams, "_meta"},
		{"meta protocol version folded", `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"_meta":{"io.modelcontextprotocol/protocolVer\u017fion":"` + secret + `"}}}`, CodeInvalidParams, MetaProtocolVersion},
		{"envelope Method alone", `{"jsonrpc":"2.0","id":1,"Method":"` + secret + `"}`, CodeInvalidRequest, "method"},
		{"envelope JSONRPC", `{"JSONRPC":"2.0","id":1,"method":"ping","x":"` + secret + `"}`, CodeInvalidRequest, "jsonrpc"},
		{"envelope long s params", `{"jsonrpc":"2.0","id":1,"method":"tools/call","param\u017f":{"name":"` + secret + `"}}`, CodeInvalidRequest, "params"},
		{"envelope ID", `{"jsonrpc":"2.0","ID":"` + secret + `","method":"ping"}`, CodeInvalidRequest, "id"},
		{"error Message alone", `{"jsonrpc":"2.0","id":1,"error":{"code":1,"Message":"` + secret + `"}}`, CodeInvalidRequest, "message"},
		{"error Data", `{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x","DATA":"` + secret + `"}}`, CodeInvalidRequest, "data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Parse([]byte(tt.body))
			require.Nil(t, b)
			var e *Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, tt.code, e.Code, "message: %s", e.Message)
			require.Contains(t, e.Message, `"`+tt.member+`"`)
			require.Contains(t, e.Message, "only by letter case")
			require.NotContains(t, e.Message, "DROP")
			id, _ := json.Marshal(e)
			require.NotContains(t, string(id), "DROP", "the error never echoes values")
		})
	}
}

// TestParseFoldedNamesAllowed: exact names, escaped spellings of the exact name and unrelated
// members that merely look alike still pass.
func TestParseFoldedNamesAllowed(t *testing.T) {
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","argument\u0073":{"Query":1}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"userId":1},"argumentsX":2,"task":"k"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","_meta":{"progressToken":"Progresstoken","ProtocolVersion":1}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"names":[],"url":"x","meta":{}}}`,
	} {
		_, err := Parse([]byte(body))
		require.NoError(t, err, body)
	}
}

// TestParseFoldedDuplicates: two members of one object whose names fold to each other are
// refused at every depth of params, with a message that says so (not "duplicate").
func TestParseFoldedDuplicates(t *testing.T) {
	for name, body := range map[string]string{
		"arguments twice":      `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"q","arguments":{"query":"SELECT 1"},"Arguments":{"query":"DROP TABLE users"}}}`,
		"kelvin in arguments":  `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"q","arguments":{"task":"ls","tas\u212a":"DROP"}}}`,
		"long s deep":          `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"q","arguments":{"o":[{"sql":"x","\u017fql":"DROP"}]}}}`,
		"many members, folded": `{"jsonrpc":"2.0","id":1,"method":"x","params":{` + manyKeys(40) + `,"\u212a7":0}}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(body))
			var e *Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, CodeInvalidRequest, e.Code)
			require.Contains(t, e.Message, "differ only by letter case or Unicode folding")
			require.NotContains(t, e.Message, "DROP")
		})
	}
}

// TestKeyOfMatchesEqualFold: the folded map key agrees with bytes.EqualFold, so objects of any
// size refuse the same folded pairs.
func TestKeyOfMatchesEqualFold(t *testing.T) {
	names := []string{"k", "K", "\u212a", "s", "S", "\u017f", "task", "tas\u212a", "TA\u017fK", "é", "É", "ǅ", "ǆ", "Ǆ", "ß", "ẞ", "_meta", "_META", "1", "Ω", "ω", "\u2126"}
	for _, a := range names {
		for _, b := range names {
			require.Equal(t, strings.EqualFold(a, b), keyOf([]byte(a), true) == keyOf([]byte(b), true), "%q %q", a, b)
		}
	}
}
