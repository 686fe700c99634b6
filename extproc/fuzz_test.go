package extproc_test

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/extproc"
	"github.com/mcpguard/mcpguard/mcp"
)

// FuzzRequest drives the request path with arbitrary bodies and MCP headers: the server
// must never panic, must answer every body, and may only let through traffic that parses
// and satisfies the transport rules; everything else gets a JSON-RPC error.
func FuzzRequest(f *testing.F) {
	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}`
	f.Add("2025-06-18", "", "", []byte(toolsCall(1, "query")))
	f.Add("2025-03-26", "", "", []byte("["+toolsCall(1, "a")+","+toolsCall(2, "b")+"]"))
	f.Add("2025-06-18", "", "", []byte("["+toolsCall(1, "a")+"]"))
	f.Add("2026-07-28", "tools/call", "query",
		[]byte(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"query",`+meta+`}}`))
	f.Add("2026-07-28", "tools/call", "=?base64?cXVlcnk=?=",
		[]byte(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"query",`+meta+`}}`))
	f.Add("", "", "", []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
	f.Add("2025-06-18", "", "", []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","Name":"b"}}`))
	f.Add("2025-06-18", "", "", []byte(`{"jsonrpc":"2.0","id":null,"method":"x"}`))
	f.Add("1.0", "", "", []byte(`{`))

	h := start(f, extproc.DefaultConfig())
	f.Fuzz(func(t *testing.T, version, method, name string, body []byte) {
		e := h.open(t, t.Context())
		hdrs := []string{"mcp-protocol-version", version, "mcp-method", method, "mcp-name", name}
		e.post(string(body), hdrs...)
		r := e.recv()
		if ir := r.GetImmediateResponse(); ir != nil {
			require.True(t, json.Valid(ir.GetBody()), "refusals carry a JSON-RPC body")
			return
		}
		require.NotNil(t, r.GetRequestBody(), "got %v", r)
		parsed, err := mcp.Parse(body)
		require.NoError(t, err, "unparsable body let through")
		got := extproc.Headers{":method": "POST", ":path": "/mcp"}
		for i := 0; i < len(hdrs); i += 2 {
			if hdrs[i+1] != "" {
				got[hdrs[i]] = hdrs[i+1]
			}
		}
		_, cerr := mcp.Check(mcp.Request{Method: "POST", Path: "/mcp", Headers: got, Body: parsed})
		require.Nil(t, cerr, "transport rules violated but let through")
	})
}

// FuzzEvents feeds an arbitrary SSE response in two chunks: the server either ends the
// stream with an error or releases a prefix of the input made only of inspected events.
func FuzzEvents(f *testing.F) {
	f.Add([]byte("id: 1\ndata: \n\n: ping\n\ndata: "+result(1, "ok")+"\n\n"), 7)
	f.Add([]byte("event: endpoint\r\ndata: /messages?sessionId=1\r\n\r\n"), 3)
	f.Add([]byte("data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\ndata: x"), 40)
	f.Add([]byte("\xEF\xBB\xBFdata: "+result(2, "bom")+"\n\n"), 1)

	h := start(f, extproc.DefaultConfig())
	f.Fuzz(func(t *testing.T, in []byte, split int) {
		if split < 0 || split > len(in) {
			split = len(in) / 2
		}
		e := openSSE(t, h)
		var out []byte
		for i, c := range [][]byte{in[:split], in[split:]} {
			e.responseBody(c, i == 1)
			r, err := e.s.Recv()
			if err != nil {
				require.NotErrorIs(t, err, io.EOF)
				return
			}
			out = append(out, emitted(t, r, c)...)
		}
		require.Equal(t, string(in[:len(out)]), string(out), "only an unchanged prefix is released")
		var dec mcp.Decoder
		evs := dec.Feed(out)
		if bytes.HasSuffix(out, []byte("\r")) {
			// A released prefix may end in a lone CR that the server saw terminate the
			// event (the next byte was not LF); the decoder holds a trailing CR until it
			// knows, and an LF completes the same event either way.
			evs = append(evs, dec.Feed([]byte("\n"))...)
		}
		for _, ev := range evs {
			if len(ev.Data) == 0 || ev.Name == "endpoint" {
				continue
			}
			_, err := mcp.Parse(ev.Data)
			require.NoError(t, err, "uninspectable event released")
		}
		require.Zero(t, dec.Pending(), "partial event released")
	})
}
