package extproc_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mcpguard/mcpguard/extproc"
	"github.com/mcpguard/mcpguard/mcp"
)

// sseEvents is a tools/call response stream: a priming event, a keep-alive comment, a
// progress notification and the result, with LF and CRLF line endings.
var sseEvents = []string{
	"id: 1\ndata: \n\n",
	": keep-alive\n\n",
	"event: message\nid: 2\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"," +
		"\"params\":{\"progressToken\":\"t\",\"progress\":1,\"message\":\"héllo\"}}\n\n",
	"id: 3\r\ndata: " + result(1, "done") + "\r\n\r\n",
}

// openSSE runs a tools/call request and answers its response headers as text/event-stream.
func openSSE(t *testing.T, h *harness) *envoy {
	t.Helper()
	e := h.open(t, t.Context())
	e.post(toolsCall(1, "query"), "mcp-protocol-version", "2025-06-18")
	e.passed()
	e.responseHeaders(false, ":status", "200", "content-type", "text/event-stream", "cache-control", "no-cache")
	r := e.recv()
	require.NotNil(t, r.GetResponseHeaders())
	mo := r.GetModeOverride()
	require.NotNil(t, mo, "SSE must switch to STREAMED")
	require.Equal(t, filterv3.ProcessingMode_STREAMED, mo.GetResponseBodyMode())
	require.Equal(t, filterv3.ProcessingMode_BUFFERED, mo.GetRequestBodyMode(), "Envoy ≥1.34 replaces both body modes")
	require.Equal(t, filterv3.ProcessingMode_DEFAULT, mo.GetResponseHeaderMode())
	v, ok := setHeader(t, r.GetResponseHeaders().GetResponse().GetHeaderMutation(), "x-accel-buffering")
	require.True(t, ok)
	require.Equal(t, "no", v)
	return e
}

// emitted is what Envoy forwards for a chunk given the server's answer.
func emitted(t *testing.T, r *extprocv3.ProcessingResponse, chunk []byte) []byte {
	t.Helper()
	c := r.GetResponseBody()
	require.NotNil(t, c, "expected a response body answer, got %v", r)
	if m := c.GetResponse().GetBodyMutation(); m != nil {
		return m.GetBody()
	}
	return chunk
}

func TestSSESplitAtEveryOffset(t *testing.T) {
	s := strings.Join(sseEvents, "")
	var ends []int // offsets where an event completes
	n := 0
	for _, ev := range sseEvents {
		n += len(ev)
		ends = append(ends, n)
	}
	released := func(k int) string { // complete events within s[:k]
		e := 0
		for _, end := range ends {
			if end <= k {
				e = end
			}
		}
		return s[:e]
	}
	h := start(t, extproc.DefaultConfig())
	for k := 1; k < len(s); k++ {
		e := openSSE(t, h)
		e.responseBody([]byte(s[:k]), false)
		out1 := emitted(t, e.recv(), []byte(s[:k]))
		require.Equal(t, released(k), string(out1), "split at %d: first chunk releases exactly the events it completes", k)
		e.responseBody([]byte(s[k:]), true)
		out2 := emitted(t, e.recv(), []byte(s[k:]))
		require.Equal(t, s, string(out1)+string(out2), "split at %d: identical bytes out", k)
	}
}

func TestSSEByteByByte(t *testing.T) {
	s := strings.Join(sseEvents, "")
	h := start(t, extproc.DefaultConfig())
	e := openSSE(t, h)
	var got []string
	for i := range len(s) {
		e.responseBody([]byte{s[i]}, i == len(s)-1)
		if out := emitted(t, e.recv(), []byte{s[i]}); len(out) > 0 {
			got = append(got, string(out))
		}
	}
	require.Equal(t, sseEvents, got, "each event is released, whole, by the byte that completes it")
}

func TestSSEStagesRewriteEvents(t *testing.T) {
	notice := "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\"," +
		"\"params\":{\"level\":\"info\",\"data\":\"token=abc\"}}\n\n"
	denied := "id: 9\ndata: " + result(5, "blocked") + "\n\n"
	masked := "id: 3\ndata: " + result(1, "password hunter2") + "\n\n"
	in := sseEvents[2] + notice + masked + denied
	mask := &stage{name: "mask", resp: func(_ context.Context, x *extproc.Exchange, r *extproc.Response) (extproc.Verdict, error) {
		if r.Event == nil || x.ContentType != "text/event-stream" {
			return extproc.Verdict{}, context.Canceled
		}
		switch {
		case r.Msg.Method == "notifications/message":
			return extproc.Refuse(mcp.CodeInternal, "dropped"), nil
		case string(r.Msg.ID) == "5":
			return extproc.Refuse(-31003, "result withheld"), nil
		case strings.Contains(string(r.Msg.Raw), "hunter2"):
			return extproc.Verdict{
				Action:  extproc.Replace,
				Message: json.RawMessage(strings.ReplaceAll(string(r.Msg.Raw), "hunter2", "[MASKED]")),
			}, nil
		}
		return extproc.Pass, nil
	}}
	h := start(t, extproc.DefaultConfig(), mask)
	e := openSSE(t, h)
	e.responseBody([]byte(in), true)
	out := emitted(t, e.recv(), []byte(in))

	var dec mcp.Decoder
	evs := dec.Feed(out)
	require.Zero(t, dec.Pending())
	require.Len(t, evs, 3, "the notification is dropped")
	require.Equal(t, sseEvents[2], string(evs[0].Raw), "unchanged events pass byte for byte")
	require.Equal(t, "3", evs[1].ID)
	require.Equal(t, result(1, "password [MASKED]"), string(evs[1].Data))
	require.Equal(t, "9", evs[2].ID)
	var rpc rpcError
	require.NoError(t, json.Unmarshal(evs[2].Data, &rpc))
	require.JSONEq(t, "5", string(rpc.ID))
	require.Equal(t, -31003, rpc.Error.Code)
}

func TestSSEFailsClosed(t *testing.T) {
	small := extproc.DefaultConfig()
	small.MaxEventBytes = 256
	cases := []struct {
		name   string
		cfg    extproc.Config
		chunks []string
		code   codes.Code
	}{
		{name: "data not JSON-RPC", cfg: extproc.DefaultConfig(), chunks: []string{"data: {not json\n\n"}, code: codes.InvalidArgument},
		{name: "unknown event type", cfg: extproc.DefaultConfig(), chunks: []string{"event: exec\ndata: {}\n\n"}, code: codes.InvalidArgument},
		{
			name: "event over max_event_bytes", cfg: small,
			chunks: []string{"data: " + result(1, strings.Repeat("x", 200)), strings.Repeat("y", 100)}, code: codes.ResourceExhausted,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, tc.cfg)
			e := openSSE(t, h)
			var err error
			for _, c := range tc.chunks {
				e.responseBody([]byte(c), false)
				if _, err = e.s.Recv(); err != nil {
					break
				}
			}
			require.Error(t, err)
			require.Equal(t, tc.code, status.Code(err), "err %v", err)
		})
	}
}

func TestSSELegacyAndTail(t *testing.T) {
	h := start(t, extproc.DefaultConfig())
	e := h.open(t, t.Context())
	e.requestHeaders(true, ":method", "GET", ":path", "/sse", "accept", "text/event-stream")
	require.NotNil(t, e.recv().GetRequestHeaders(), "2024-11-05 GET /sse is recognised")
	e.responseHeaders(false, ":status", "200", "content-type", "text/event-stream")
	require.NotNil(t, e.recv().GetModeOverride())
	endpoint := "event: endpoint\ndata: /messages?sessionId=abc\n\n"
	e.responseBody([]byte(endpoint), false)
	require.Equal(t, endpoint, string(emitted(t, e.recv(), []byte(endpoint))))
	tail := "data: " + result(1, "unterminated")
	e.responseBody([]byte(tail), true)
	require.Empty(t, emitted(t, e.recv(), []byte(tail)), "an unterminated last event is never released uninspected")
}
