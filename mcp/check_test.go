package mcp

import (
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/require"
)

type hdr map[string]string

func (h hdr) Get(name string) string { return h[name] }

func mustParse(t *testing.T, body string) *Body {
	t.Helper()
	b, err := Parse([]byte(body))
	require.NoError(t, err)
	return b
}

func TestCheck(t *testing.T) {
	const (
		call     = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"query","arguments":{}}}`
		call26   = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"query","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`
		uni26    = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"grüße","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`
		read26   = `{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///a","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`
		prompt26 = `{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"p","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`
		list26   = `{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`
		note26   = `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`
		list     = `{"jsonrpc":"2.0","id":4,"method":"tools/list"}`
		batch    = `[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x"}}]`
		result   = `{"jsonrpc":"2.0","id":9,"result":{}}`
		init     = `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-03-26"}}`
		meta25   = `{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2025-11-25"}}}`
	)
	v26 := func(extra hdr) hdr {
		h := hdr{"mcp-protocol-version": "2026-07-28"}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	b64 := func(s string) string { return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?=" }
	tests := []struct {
		name   string
		method string
		path   string
		h      hdr
		body   string
		rev    Revision
		code   int // 0: allowed
		status int
	}{
		{name: "legacy POST without header defaults to 2025-03-26", method: "POST", path: "/mcp", body: call, rev: Rev20250326},
		{name: "initialize without header", method: "POST", path: "/mcp", body: init, rev: Rev20250326},
		{name: "2025-06-18 single", method: "POST", h: hdr{"mcp-protocol-version": "2025-06-18"}, body: call, rev: Rev20250618},
		{name: "2025-11-25 result posted back", method: "POST", h: hdr{"mcp-protocol-version": "2025-11-25"}, body: result, rev: Rev20251125},
		{name: "batch in 2025-03-26", method: "POST", h: hdr{"mcp-protocol-version": "2025-03-26"}, body: batch, rev: Rev20250326},
		{name: "batch without header", method: "POST", path: "/mcp", body: batch, rev: Rev20250326},
		{name: "batch in 2025-06-18", method: "POST", h: hdr{"mcp-protocol-version": "2025-06-18"}, body: batch, rev: Rev20250618, code: CodeInvalidRequest, status: 400},
		{name: "batch in 2025-11-25", method: "POST", h: hdr{"mcp-protocol-version": "2025-11-25"}, body: batch, rev: Rev20251125, code: CodeInvalidRequest, status: 400},
		{name: "batch in 2026-07-28", method: "POST", h: v26(nil), body: `[` + call26 + `]`, rev: Rev20260728, code: CodeInvalidRequest, status: 400},
		{name: "batch in 2024-11-05", method: "POST", path: "/messages?sessionId=abc", body: batch, rev: Rev20241105, code: CodeInvalidRequest, status: 400},
		{name: "initialize inside a batch", method: "POST", body: `[` + init + `]`, rev: Rev20250326, code: CodeInvalidRequest, status: 400},
		{name: "unknown version", method: "POST", h: hdr{"mcp-protocol-version": "2099-01-01"}, body: call, code: CodeUnsupportedVersion, status: 400},
		{name: "empty body", method: "POST", h: hdr{"mcp-protocol-version": "2025-06-18"}, rev: Rev20250618, code: CodeInvalidRequest, status: 400},
		{name: "PUT", method: "PUT", h: hdr{"mcp-protocol-version": "2025-06-18"}, rev: Rev20250618, code: CodeInvalidRequest, status: 405},
		{name: "legacy GET stream with session", method: "GET", path: "/mcp", h: hdr{"mcp-protocol-version": "2025-11-25", "mcp-session-id": "s1"}, rev: Rev20251125},
		{name: "legacy DELETE", method: "DELETE", path: "/mcp", h: hdr{"mcp-protocol-version": "2025-06-18", "mcp-session-id": "s1"}, rev: Rev20250618},
		{name: "GET with a body", method: "GET", h: hdr{"mcp-protocol-version": "2025-06-18"}, body: list, rev: Rev20250618, code: CodeInvalidRequest, status: 400},
		{name: "2024-11-05 GET /sse", method: "GET", path: "/sse", rev: Rev20241105},
		{name: "2024-11-05 POST to announced endpoint", method: "POST", path: "/messages?sessionId=0f3c", body: call, rev: Rev20241105},
		{name: "2024-11-05 POST, Go SDK spelling", method: "POST", path: "/messages?sessionid=0f3c", body: call, rev: Rev20241105},
		{name: "2024-11-05 POST, Python SDK spelling", method: "POST", path: "/messages/?session_id=0f3c", body: call, rev: Rev20241105},
		{name: "DELETE without session refused", method: "DELETE", path: "/sse", rev: Rev20250326, code: CodeInvalidRequest, status: 400},
		{name: "2024-11-05 DELETE refused", method: "DELETE", h: hdr{"mcp-protocol-version": "2024-11-05", "mcp-session-id": "s"}, rev: Rev20241105, code: CodeInvalidRequest, status: 405},
		{name: "sessionId query with session header is streamable", method: "POST", path: "/mcp?sessionId=1", h: hdr{"mcp-session-id": "s"}, body: call, rev: Rev20250326},
		{name: "legacy _meta version agrees", method: "POST", h: hdr{"mcp-protocol-version": "2025-11-25"}, body: meta25, rev: Rev20251125},
		{name: "legacy _meta version disagrees", method: "POST", h: hdr{"mcp-protocol-version": "2025-06-18"}, body: meta25, rev: Rev20250618, code: CodeHeaderMismatch, status: 400},
		{name: "_meta version without header", method: "POST", body: call26, rev: Rev20250326, code: CodeHeaderMismatch, status: 400},
		{name: "legacy mirrored headers match", method: "POST", h: hdr{"mcp-protocol-version": "2025-11-25", "mcp-method": "tools/call", "mcp-name": "query"}, body: call, rev: Rev20251125},
		{name: "legacy mcp-name mismatch", method: "POST", h: hdr{"mcp-protocol-version": "2025-11-25", "mcp-method": "tools/call", "mcp-name": "safe"}, body: call, rev: Rev20251125, code: CodeHeaderMismatch, status: 400},
		{name: "legacy mcp-method mismatch", method: "POST", h: hdr{"mcp-method": "tools/list"}, body: call, rev: Rev20250326, code: CodeHeaderMismatch, status: 400},
		{name: "legacy mcp-method on a batch", method: "POST", h: hdr{"mcp-method": "tools/list"}, body: batch, rev: Rev20250326, code: CodeHeaderMismatch, status: 400},
		{name: "2026 tools/call", method: "POST", h: v26(hdr{"mcp-method": "tools/call", "mcp-name": "query"}), body: call26, rev: Rev20260728},
		{name: "2026 tools/call base64 name", method: "POST", h: v26(hdr{"mcp-method": "tools/call", "mcp-name": b64("grüße")}), body: uni26, rev: Rev20260728},
		{name: "2026 base64 method", method: "POST", h: v26(hdr{"mcp-method": b64("tools/call"), "mcp-name": "query"}), body: call26, rev: Rev20260728},
		{name: "2026 base64 name mismatch", method: "POST", h: v26(hdr{"mcp-method": "tools/call", "mcp-name": b64("other")}), body: call26, rev: Rev20260728, code: CodeHeaderMismatch, status: 400},
		{name: "2026 bad base64", method: "POST", h: v26(hdr{"mcp-method": "tools/call", "mcp-name": "=?base64?!!?="}), body: call26, rev: Rev20260728, code: CodeHeaderMismatch, status: 400},
		{name: "2026 name mismatch", method: "POST", h: v26(hdr{"mcp-method": "tools/call", "mcp-name": "harmless"}), body: call26, rev: Rev20260728, code: CodeHeaderMismatch, status: 400},
		{name: "2026 name missing", method: "POST", h: v26(hdr{"mcp-method": "tools/call"}), body: call26, rev: Rev20260728, code: CodeHeaderMismatch, status: 400},
		{name: "2026 method mismatch", method: "POST", h: v26(hdr{"mcp-method": "tools/list", "mcp-name": "query"}), body: call26, rev: Rev20260728, code: CodeHeaderMismatch, status: 400},
		{name: "2026 method missing", method: "POST", h: v26(hdr{"mcp-name": "query"}), body: call26, rev: Rev20260728, code: CodeHeaderMismatch, status: 400},
		{name: "2026 resources/read", method: "POST", h: v26(hdr{"mcp-method": "resources/read", "mcp-name": "file:///a"}), body: read26, rev: Rev20260728},
		{name: "2026 resources/read uri mismatch", method: "POST", h: v26(hdr{"mcp-method": "resources/read", "mcp-name": "file:///b"}), body: read26, rev: Rev20260728, code: CodeHeaderMismatch, status: 400},
		{name: "2026 prompts/get", method: "POST", h: v26(hdr{"mcp-method": "prompts/get", "mcp-name": "p"}), body: prompt26, rev: Rev20260728},
		{name: "2026 tools/list", method: "POST", h: v26(hdr{"mcp-method": "tools/list"}), body: list26, rev: Rev20260728},
		{name: "2026 notification", method: "POST", h: v26(hdr{"mcp-method": "notifications/cancelled"}), body: note26, rev: Rev20260728},
		{name: "2026 request without _meta version", method: "POST", h: v26(hdr{"mcp-method": "tools/list"}), body: list, rev: Rev20260728, code: CodeInvalidParams, status: 400},
		{name: "2026 _meta version differs", method: "POST", h: v26(hdr{"mcp-method": "tools/list"}), body: meta25, rev: Rev20260728, code: CodeHeaderMismatch, status: 400},
		{name: "2026 client sends a result", method: "POST", h: v26(nil), body: result, rev: Rev20260728, code: CodeInvalidRequest, status: 400},
		{name: "2026 GET", method: "GET", h: v26(nil), rev: Rev20260728, code: CodeInvalidRequest, status: 405},
		{name: "2026 DELETE", method: "DELETE", h: v26(nil), rev: Rev20260728, code: CodeInvalidRequest, status: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Request{Method: tt.method, Path: tt.path, Headers: tt.h}
			if tt.body != "" {
				r.Body = mustParse(t, tt.body)
			}
			rev, err := Check(r)
			require.Equal(t, tt.rev, rev)
			if tt.code == 0 {
				require.Nil(t, err)
				return
			}
			require.NotNil(t, err)
			require.Equal(t, tt.code, err.Code, "message: %s", err.Message)
			require.Equal(t, tt.status, err.HTTPStatus())
		})
	}
}

func TestCheckUnsupportedVersionData(t *testing.T) {
	b := mustParse(t, `{"jsonrpc":"2.0","id":"q","method":"ping"}`)
	_, err := Check(Request{Method: "POST", Headers: hdr{"mcp-protocol-version": "1999-01-01"}, Body: b})
	require.NotNil(t, err)
	require.Equal(t, CodeUnsupportedVersion, err.Code)
	require.Equal(t, map[string]any{
		"supported": []string{"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"},
		"requested": "1999-01-01",
	}, err.Data)
	require.JSONEq(t, `{"jsonrpc":"2.0","id":"q","error":{"code":-32022,"message":"unsupported protocol version",`+
		`"data":{"requested":"1999-01-01","supported":["2024-11-05","2025-03-26","2025-06-18","2025-11-25","2026-07-28"]}}}`,
		string(ErrorResponse(err.ID(), err)))
}

func TestCheckNilHeaders(t *testing.T) {
	rev, err := Check(Request{Method: "POST", Path: "/mcp", Body: mustParse(t, `{"jsonrpc":"2.0","id":1,"method":"ping"}`)})
	require.Nil(t, err)
	require.Equal(t, Rev20250326, rev)
}

func TestRevision(t *testing.T) {
	tests := []struct {
		rev                          Revision
		valid, batch, state, session bool
	}{
		{Rev20241105, true, false, false, false},
		{Rev20250326, true, true, false, true},
		{Rev20250618, true, false, false, true},
		{Rev20251125, true, false, false, true},
		{Rev20260728, true, false, true, false},
		{"2025-01-01", false, false, false, false},
		{"", false, false, false, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.rev), func(t *testing.T) {
			require.Equal(t, tt.valid, tt.rev.Validate() == nil)
			require.Equal(t, tt.batch, tt.rev.AllowsBatch())
			require.Equal(t, tt.state, tt.rev.Stateless())
			require.Equal(t, tt.session, tt.rev.HasSessions())
		})
	}
}
