package extproc_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/extproc"
	"github.com/mcpguard/mcpguard/masking"
	"github.com/mcpguard/mcpguard/mcp"
	"github.com/mcpguard/mcpguard/policy"
)

const replyPolicy = `version: 1
default: allow
deny_as: tool_error
rules:
  - name: bounded
    when: request.tool == "list_rows" && request.arguments.limit > 100
    action: deny
    message: Use a limit of at most 100.
  - name: no-drop
    when: request.tool == "drop"
    action: deny
    respond: error
    message: never drop
  - name: no-prompts
    when: request.method == "prompts/get"
    action: deny
    message: no prompts
`

func replyStage(t *testing.T) *extproc.Policy {
	t.Helper()
	set, err := policy.Compile([]byte(replyPolicy))
	require.NoError(t, err)
	p, err := extproc.NewPolicy(fixedSource{set}, policy.NewMemory(3600e9), nil, prometheus.NewRegistry())
	require.NoError(t, err)
	return p
}

// TestPolicyStageToolError: a denial whose rule replies with a tool error answers 200 with a
// tools/call result marked isError carrying the rule's message; everything else keeps the
// JSON-RPC error.
func TestPolicyStageToolError(t *testing.T) {
	rows := func(id int) string {
		return `{"jsonrpc":"2.0","id":` + itoa(id) + `,"method":"tools/call","params":{"name":"list_rows","arguments":{"limit":500}}}`
	}
	cases := []struct {
		name       string
		body       string
		headers    []string
		toolError  bool
		resultType string
		code       int // JSON-RPC error code when not a tool error
	}{
		{name: "tools/call replies as a tool error", body: rows(7), headers: []string{"mcp-protocol-version", "2025-06-18"}, toolError: true},
		{
			name: "2026-07-28 result carries resultType", headers: []string{"mcp-protocol-version", "2026-07-28", "mcp-method", "tools/call", "mcp-name", "list_rows"},
			body:      `{"jsonrpc":"2.0","id":"a-7","method":"tools/call","params":{"name":"list_rows","arguments":{"limit":500},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`,
			toolError: true, resultType: "complete",
		},
		{
			name: "rule respond: error overrides deny_as", body: `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"drop","arguments":{}}}`,
			headers: []string{"mcp-protocol-version", "2025-06-18"}, code: extproc.CodePolicyDenied,
		},
		{
			name: "another method keeps the JSON-RPC error", body: `{"jsonrpc":"2.0","id":7,"method":"prompts/get","params":{"name":"p"}}`,
			headers: []string{"mcp-protocol-version", "2025-06-18"}, code: extproc.CodePolicyDenied,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := start(t, extproc.DefaultConfig(), replyStage(t))
			e := h.open(t, t.Context())
			e.post(c.body, c.headers...)
			ir := e.recv().GetImmediateResponse()
			require.NotNil(t, ir, "expected an answer from the gateway")
			require.Equal(t, 200, int(ir.GetStatus().GetCode()))
			var got struct {
				JSONRPC string          `json:"jsonrpc"`
				ID      json.RawMessage `json:"id"`
				Result  *struct {
					Content []struct {
						Type, Text string
					} `json:"content"`
					IsError    bool    `json:"isError"`
					ResultType *string `json:"resultType"`
				} `json:"result"`
				Error *struct {
					Code int `json:"code"`
				} `json:"error"`
			}
			require.NoError(t, json.Unmarshal(ir.GetBody(), &got), "body %s", ir.GetBody())
			require.Equal(t, "2.0", got.JSONRPC)
			var req struct {
				ID json.RawMessage `json:"id"`
			}
			require.NoError(t, json.Unmarshal([]byte(c.body), &req))
			require.JSONEq(t, string(req.ID), string(got.ID), "answered for the request's id")
			if !c.toolError {
				require.Nil(t, got.Result)
				require.NotNil(t, got.Error)
				require.Equal(t, c.code, got.Error.Code)
				return
			}
			require.Nil(t, got.Error)
			require.NotNil(t, got.Result)
			require.True(t, got.Result.IsError)
			require.Len(t, got.Result.Content, 1)
			require.Equal(t, "text", got.Result.Content[0].Type)
			require.Equal(t, "Use a limit of at most 100.", got.Result.Content[0].Text)
			if c.resultType == "" {
				require.Nil(t, got.Result.ResultType)
			} else {
				require.NotNil(t, got.Result.ResultType)
				require.Equal(t, c.resultType, *got.Result.ResultType)
			}
		})
	}
}

// TestPolicyStageToolErrorBatch: in a batch the denial stays one JSON-RPC error per request.
func TestPolicyStageToolErrorBatch(t *testing.T) {
	h := start(t, extproc.DefaultConfig(), replyStage(t))
	e := h.open(t, t.Context())
	e.post(`[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}},`+
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_rows","arguments":{"limit":500}}}]`,
		"mcp-protocol-version", "2025-03-26")
	ir := e.recv().GetImmediateResponse()
	require.NotNil(t, ir)
	var all []policyError
	require.NoError(t, json.Unmarshal(ir.GetBody(), &all), "body %s", ir.GetBody())
	require.Len(t, all, 2)
	for _, el := range all {
		require.Equal(t, extproc.CodePolicyDenied, el.Error.Code)
	}
}

// sseFor runs a request and answers its response headers as text/event-stream.
func sseFor(t *testing.T, h *harness, body string) *envoy {
	t.Helper()
	e := h.open(t, t.Context())
	e.post(body, "mcp-protocol-version", "2025-06-18", "mcp-session-id", "s-big")
	e.passed()
	e.responseHeaders(false, ":status", "200", "content-type", "text/event-stream")
	require.NotNil(t, e.recv().GetResponseHeaders())
	return e
}

// bigEvent is an SSE event for id over a 256-byte max_event_bytes.
func bigEvent(id int, text string) string {
	return "id: 9\ndata: " + toolResult(id, strings.Repeat("lorem ipsum ", 40)+text) + "\n\n"
}

// TestPolicyOversizeEvents: an event over max_event_bytes passes through the policy stage
// unchanged (and masked by the masking stage after it) unless the exchange is a tools/list,
// whose result policy must filter: that event is withheld and the client gets an error for
// the request while the stream goes on.
func TestPolicyOversizeEvents(t *testing.T) {
	cfg := extproc.DefaultConfig()
	cfg.MaxEventBytes = 256
	next := "id: 10\ndata: " + `{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"ok"}}` + "\n\n"

	t.Run("tools/call passes in fragments", func(t *testing.T) {
		h := start(t, cfg, replyStage(t))
		e := sseFor(t, h, toolsCall(1, "echo"))
		ev := bigEvent(1, "done")
		var out []byte
		for i := 0; i < len(ev); i += 100 {
			c := []byte(ev[i:min(len(ev), i+100)])
			e.responseBody(c, false)
			out = append(out, emitted(t, e.recv(), c)...)
		}
		e.responseBody([]byte(next), true)
		out = append(out, emitted(t, e.recv(), []byte(next))...)
		require.Equal(t, ev+next, string(out), "unchanged, byte for byte")
	})

	t.Run("masking after policy still masks", func(t *testing.T) {
		ms, m, _ := newMasking(t)
		h := start(t, cfg, replyStage(t), ms)
		e := sseFor(t, h, toolsCall(1, "echo"))
		ev := bigEvent(1, "key "+awsKey)
		want, counts := m.Wire([]byte(ev))
		require.NotEmpty(t, counts)
		e.responseBody([]byte(ev), true)
		out := emitted(t, e.recv(), []byte(ev))
		require.Equal(t, string(want), string(out))
		require.NotContains(t, string(out), awsKey)
	})

	t.Run("tools/list result withheld", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		set, err := policy.Compile([]byte(replyPolicy))
		require.NoError(t, err)
		p, err := extproc.NewPolicy(fixedSource{set}, policy.NewMemory(3600e9), nil, reg)
		require.NoError(t, err)
		ms, _, _ := newMasking(t)
		h := start(t, cfg, p, ms)
		e := sseFor(t, h, toolsList(3))
		ev := "id: 9\ndata: " + listResult(3, strings.Repeat("a very long description ", 20)) + "\n\n"
		require.Greater(t, len(ev), cfg.MaxEventBytes)
		e.responseBody([]byte(ev[:150]), false)
		out := emitted(t, e.recv(), []byte(ev[:150]))
		require.Empty(t, out, "nothing of the unfiltered list goes out")
		e.responseBody([]byte(ev[150:]+next), true)
		out = append(out, emitted(t, e.recv(), []byte(ev[150:]+next))...)

		var dec mcp.Decoder
		evs := dec.Feed(out)
		require.Len(t, evs, 2, "out %q", out)
		var got rpcError
		require.NoError(t, json.Unmarshal(evs[0].Data, &got))
		require.JSONEq(t, "3", string(got.ID))
		require.Equal(t, mcp.CodeInternal, got.Error.Code)
		require.Contains(t, got.Error.Message, "too large")
		require.Equal(t, next, string(evs[1].Raw), "the stream goes on")
		require.NotContains(t, string(out), "admin_tool")
		require.InDelta(t, 1, metric(t, reg, "mcpguard_policy_oversize_withheld_total"), 0)
	})
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// BenchmarkPolicyToolError is a denied tools/call answered as a tool result, over real gRPC.
func BenchmarkPolicyToolError(b *testing.B) {
	set, err := policy.Compile([]byte(replyPolicy))
	require.NoError(b, err)
	p, err := extproc.NewPolicy(fixedSource{set}, policy.NewMemory(3600e9), nil, prometheus.NewRegistry())
	require.NoError(b, err)
	h := start(b, extproc.DefaultConfig(), p)
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_rows","arguments":{"limit":500}}}`
	b.ReportAllocs()
	for b.Loop() {
		e := h.open(b, b.Context())
		e.post(body, "mcp-protocol-version", "2025-06-18")
		require.NotNil(b, e.recv().GetImmediateResponse())
	}
}

// BenchmarkPolicyOversizeEvent streams a 1 MiB tool result over a 64 KiB max_event_bytes
// through the policy and masking stages in 64 KiB chunks.
func BenchmarkPolicyOversizeEvent(b *testing.B) {
	set, err := policy.Compile([]byte(replyPolicy))
	require.NoError(b, err)
	p, err := extproc.NewPolicy(fixedSource{set}, policy.NewMemory(3600e9), nil, prometheus.NewRegistry())
	require.NoError(b, err)
	m, err := masking.New(masking.DefaultConfig())
	require.NoError(b, err)
	ms, err := extproc.NewMasking(m, prometheus.NewRegistry())
	require.NoError(b, err)
	cfg := extproc.DefaultConfig()
	cfg.MaxEventBytes = 64 << 10
	h := start(b, cfg, p, ms)
	ev := []byte(bigEvent(1, strings.Repeat("the quick brown fox jumps over the lazy dog ", 1<<20/44)))
	b.SetBytes(int64(len(ev)))
	b.ReportAllocs()
	for b.Loop() {
		e := h.open(b, b.Context())
		e.post(toolsCall(1, "echo"), "mcp-protocol-version", "2025-06-18")
		e.recv()
		e.responseHeaders(false, ":status", "200", "content-type", "text/event-stream")
		e.recv()
		for i := 0; i < len(ev); i += 64 << 10 {
			e.responseBody(ev[i:min(len(ev), i+64<<10)], i+64<<10 >= len(ev))
			e.recv()
		}
	}
}

// TestPolicyStageFullSessionStore: when the session store holds its maximum, a call of a new
// session fails closed with an internal error (the store's reason stays in the log), while a
// session already held keeps being answered.
func TestPolicyStageFullSessionStore(t *testing.T) {
	set, err := policy.Compile([]byte(replyPolicy))
	require.NoError(t, err)
	store := policy.NewMemory(3600e9, policy.MemoryMaxEntries(2)) // a session's calls and its echo calls
	p, err := extproc.NewPolicy(fixedSource{set}, store, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	h := start(t, extproc.DefaultConfig(), p)
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}`

	e := h.open(t, t.Context())
	e.post(call, "mcp-protocol-version", "2025-06-18", "mcp-session-id", "held")
	e.passed()

	e = h.open(t, t.Context())
	e.post(call, "mcp-protocol-version", "2025-06-18", "mcp-session-id", "new")
	ir := e.recv().GetImmediateResponse()
	require.NotNil(t, ir, "a new session beyond the store's bound is refused")
	var got struct {
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(ir.GetBody(), &got), "body %s", ir.GetBody())
	require.NotNil(t, got.Error)
	require.Equal(t, -32603, got.Error.Code)
	require.NotContains(t, got.Error.Message, "session store")
	require.Equal(t, uint64(1), store.Refused())

	e = h.open(t, t.Context())
	e.post(call, "mcp-protocol-version", "2025-06-18", "mcp-session-id", "held")
	e.passed()
}
