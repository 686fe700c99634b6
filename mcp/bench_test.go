package mcp

import (
	"bytes"
	"strings"
	"testing"
)

// toolsCall1K is a typical tools/call request of about 1 KB.
var toolsCall1K = []byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"run_query",` +
	`"arguments":{"database":"analytics","sql":"SELECT o.id, o.customer_id, o.total, c.email FROM orders o ` +
	`JOIN customers c ON c.id = o.customer_id WHERE o.created_at > '2026-01-01' AND o.status IN ('paid','shipped') ` +
	`ORDER BY o.created_at DESC LIMIT 100","options":{"timeout_ms":30000,"read_only":true,"explain":false,` +
	`"tags":["report","weekly","finance"]},"context":{"requested_by":"agent-7","purpose":"` +
	strings.Repeat("weekly revenue reconciliation ", 12) + `"}},` +
	`"_meta":{"progressToken":"p-42","io.modelcontextprotocol/protocolVersion":"2026-07-28",` +
	`"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}}`)

func BenchmarkParse(b *testing.B) {
	if _, err := Parse(toolsCall1K); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(toolsCall1K)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(toolsCall1K); err != nil {
			b.Fatal(err)
		}
	}
}

// sseBench is a response stream of progress notifications and results, about 1 MiB.
var sseBench = func() []byte {
	var buf bytes.Buffer
	for i := 0; buf.Len() < 1<<20; i++ {
		buf.WriteString("event: message\nid: 1\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1,\"message\":\"working\"}}\n\n")
		buf.WriteString(": keep-alive\n\n")
		buf.WriteString("event: message\r\nid: 2\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"")
		buf.WriteString(strings.Repeat("row data ", 200))
		buf.WriteString("\"}]}}\r\n\r\n")
	}
	return buf.Bytes()
}()

func BenchmarkDecoder(b *testing.B) {
	const chunk = 16 << 10
	b.SetBytes(int64(len(sseBench)))
	b.ReportAllocs()
	for b.Loop() {
		var d Decoder
		n := 0
		for off := 0; off < len(sseBench); off += chunk {
			n += len(d.Feed(sseBench[off:min(off+chunk, len(sseBench))]))
		}
		if n == 0 || d.Pending() != 0 {
			b.Fatal("no events")
		}
	}
}

// paramsMembers is a tools/call whose params and arguments carry many members the gateway does
// not read, each compared with the names it does read (case folding), and many arguments.
var paramsMembers = func() []byte {
	var sb strings.Builder
	sb.WriteString(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"run_query","arguments":{`)
	for i := range 40 {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`"argument_` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26)) + `":"value"`)
	}
	sb.WriteString(`}`)
	for _, k := range []string{"cursor", "task", "names", "urn", "uris", "argumentsX", "meta", "nameX", "ttl", "priority", "trace", "label"} {
		sb.WriteString(`,"` + k + `":1`)
	}
	sb.WriteString(`,"_meta":{"progressToken":"p","traceparent":"00-x","io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`)
	return []byte(sb.String())
}()

func BenchmarkParseManyMembers(b *testing.B) {
	if _, err := Parse(paramsMembers); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(paramsMembers)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(paramsMembers); err != nil {
			b.Fatal(err)
		}
	}
}
