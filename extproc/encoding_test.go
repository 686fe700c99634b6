package extproc_test

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mcpguard/mcpguard/extproc"
	"github.com/mcpguard/mcpguard/mcp"
)

// encode returns plain in the named content coding; "deflate-raw" is deflate without the
// zlib wrapper, which some servers send as "deflate".
func encode(t testing.TB, c string, plain []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	var w interface {
		Write(p []byte) (int, error)
		Close() error
	}
	switch c {
	case "gzip":
		w = gzip.NewWriter(&b)
	case "deflate":
		w = zlib.NewWriter(&b)
	case "deflate-raw":
		fw, err := flate.NewWriter(&b, flate.DefaultCompression)
		require.NoError(t, err)
		w = fw
	case "br":
		w = brotli.NewWriter(&b)
	case "zstd":
		zw, err := zstd.NewWriter(&b)
		require.NoError(t, err)
		w = zw
	default:
		t.Fatalf("no encoder for %s", c)
	}
	_, err := w.Write(plain)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return b.Bytes()
}

// gzipBomb is a gzip member that decodes to n zero bytes (n a multiple of 1 MiB), built
// by repeating one flushed deflate segment: every back-reference in it points at zeros,
// so it stays valid wherever it is repeated. About 1 KiB per MiB decoded. (The e2e suite
// has it in internal/testutil, which domain packages may not import, tests included.)
func gzipBomb(t testing.TB, n int) []byte {
	t.Helper()
	zeros := make([]byte, 1<<20)
	var seg bytes.Buffer
	fw, err := flate.NewWriter(&seg, flate.BestCompression)
	require.NoError(t, err)
	_, err = fw.Write(zeros)
	require.NoError(t, err)
	require.NoError(t, fw.Flush())
	out := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}
	crc := crc32.NewIEEE()
	for range n >> 20 {
		out = append(out, seg.Bytes()...)
		_, _ = crc.Write(zeros)
	}
	out = append(out, 0x03, 0x00) // final empty fixed-Huffman block
	out = binary.LittleEndian.AppendUint32(out, crc.Sum32())
	return binary.LittleEndian.AppendUint32(out, uint32(n)) //nolint:gosec // ISIZE is the size mod 2^32
}

// removed reports whether a header mutation removes key.
func removed(m *extprocv3.HeaderMutation, key string) bool {
	for _, k := range m.GetRemoveHeaders() {
		if k == key {
			return true
		}
	}
	return false
}

// chunks splits b into pieces of n bytes (the last may be shorter).
func chunks(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) > n {
		out = append(out, b[:n])
		b = b[n:]
	}
	return append(out, b)
}

// codedExchange runs a tools/call whose response is coded with enc and carries body, sent
// in chunks of size n (one chunk when n is 0), and returns the header answer and the bytes
// Envoy forwards to the client.
func codedExchange(t *testing.T, h *harness, ct, enc string, coded []byte, n int, withLength bool) (*extprocv3.ProcessingResponse, []byte) {
	t.Helper()
	e := h.open(t, t.Context())
	e.post(toolsCall(1, "query"), "mcp-protocol-version", "2025-06-18")
	e.passed()
	hdr := []string{":status", "200", "content-type", ct, "content-encoding", enc}
	if withLength {
		hdr = append(hdr, "content-length", strconv.Itoa(len(coded)))
	}
	e.responseHeaders(false, hdr...)
	hr := e.recv()
	require.NotNil(t, hr.GetResponseHeaders(), "coded %s answered with %v", enc, hr)
	parts := [][]byte{coded}
	if n > 0 {
		parts = chunks(coded, n)
	}
	var out []byte
	for i, p := range parts {
		e.responseBody(p, i == len(parts)-1)
		out = append(out, emitted(t, e.recv(), p)...)
	}
	return hr, out
}

// TestCodedResponsesAreDecodedAndMasked: a JSON or SSE response coded with gzip, deflate
// (zlib and raw), br or zstd reaches masking as plain JSON-RPC, and the client gets the
// plain, masked body without content-encoding.
func TestCodedResponsesAreDecodedAndMasked(t *testing.T) {
	secret := "card " + card + " key " + awsKey
	masked := "card [REDACTED:CREDIT_CARD] key [REDACTED:AWS_ACCESS_KEY]"
	jsonPlain := []byte(toolResult(1, secret))
	ssePlain := []byte("id: 1\ndata: \n\n" + "event: message\ndata: " + toolResult(1, secret) + "\n\n")
	type mode struct {
		name, ct   string
		plain      []byte
		chunk      int
		withLength bool
		streamed   bool
	}
	modes := []mode{
		{name: "buffered json", ct: "application/json", plain: jsonPlain, withLength: true},
		{name: "streamed json", ct: "application/json", plain: jsonPlain, chunk: 7, streamed: true},
		{name: "sse", ct: "text/event-stream", plain: ssePlain, chunk: 5, streamed: true},
	}
	for _, enc := range []string{"gzip", "x-gzip", "deflate", "deflate-raw", "br", "zstd", "GZIP, identity"} {
		for _, m := range modes {
			t.Run(enc+"/"+m.name, func(t *testing.T) {
				ms, _, _ := newMasking(t)
				h := start(t, extproc.DefaultConfig(), ms)
				coder := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(enc, "x-"), ", identity"))
				coded := encode(t, coder, m.plain)
				header := enc
				if enc == "deflate-raw" {
					header = "deflate"
				}
				hr, out := codedExchange(t, h, m.ct, header, coded, m.chunk, m.withLength)
				hm := hr.GetResponseHeaders().GetResponse().GetHeaderMutation()
				require.True(t, removed(hm, "content-encoding"), "the client gets the plain body")
				require.Equal(t, m.streamed, removed(hm, "content-length"),
					"a mode_override does not drop content-length: mcpguard must, for a streamed body")
				if m.streamed {
					require.Equal(t, filterv3.ProcessingMode_STREAMED, hr.GetModeOverride().GetResponseBodyMode())
				}
				want := strings.ReplaceAll(string(m.plain), secret, masked)
				require.Equal(t, want, string(out))
				require.NotContains(t, string(out), "4111")
			})
		}
	}
}

// TestCodedBufferedLength: a buffered coded JSON body that masking leaves unchanged is
// still replaced by its plain bytes, with their length (Envoy keeps content-length in
// BUFFERED mode and refuses a body of another length).
func TestCodedBufferedLength(t *testing.T) {
	h := start(t, extproc.DefaultConfig())
	plain := []byte(toolResult(1, "nothing to see"))
	coded := encode(t, "gzip", plain)
	e := h.open(t, t.Context())
	e.post(toolsCall(1, "query"))
	e.passed()
	e.responseHeaders(false, ":status", "200", "content-type", "application/json", "content-encoding", "gzip",
		"content-length", strconv.Itoa(len(coded)))
	require.NotNil(t, e.recv().GetResponseHeaders())
	e.responseBody(coded, true)
	r := e.recv()
	require.Equal(t, plain, r.GetResponseBody().GetResponse().GetBodyMutation().GetBody())
	cl, ok := setHeader(t, r.GetResponseBody().GetResponse().GetHeaderMutation(), "content-length")
	require.True(t, ok)
	require.Equal(t, strconv.Itoa(len(plain)), cl)
}

// TestUnsupportedCodingsRefused: a coding mcpguard cannot undo, or a stack of codings, is
// refused with a JSON-RPC error before any byte of the body leaves.
func TestUnsupportedCodingsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		hdr  []string
	}{
		{"unknown", []string{"content-encoding", "x-custom"}},
		{"compress", []string{"content-encoding", "compress"}},
		{"stacked", []string{"content-encoding", "gzip, br"}},
		{"stacked over two headers", []string{"content-encoding", "gzip", "content-encoding", "gzip"}},
	} {
		for _, ct := range []string{"application/json", "text/event-stream"} {
			t.Run(tc.name+"/"+ct, func(t *testing.T) {
				h := start(t, extproc.DefaultConfig())
				e := h.open(t, t.Context())
				e.post(toolsCall(1, "query"))
				e.passed()
				e.responseHeaders(false, append([]string{":status", "200", "content-type", ct}, tc.hdr...)...)
				code, rpc := immediate(t, e.recv())
				require.Equal(t, 502, code)
				require.JSONEq(t, "1", string(rpc.ID))
				require.Equal(t, mcp.CodeInternal, rpc.Error.Code)
				require.Contains(t, rpc.Error.Message, "content encoding")
			})
		}
	}
}

// TestCorruptCodedResponse: coded bytes that do not decode, or carry data after the end of
// the coded stream, never pass.
func TestCorruptCodedResponse(t *testing.T) {
	plain := []byte(toolResult(1, "card "+card))
	good := encode(t, "gzip", plain)
	for _, tc := range []struct {
		name  string
		coded []byte
		eos   bool // false: the buffered body comes before trailers, as Envoy sends it then
	}{
		{"not gzip", plain, true},
		{"truncated", good[:len(good)-4], true},
		{"truncated, trailers follow", good[:len(good)-4], false},
		{"trailing bytes", append(append([]byte{}, good...), []byte("data: leak\n\n")...), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, extproc.DefaultConfig())
			e := h.open(t, t.Context())
			e.post(toolsCall(1, "query"))
			e.passed()
			e.responseHeaders(false, ":status", "200", "content-type", "application/json", "content-encoding", "gzip",
				"content-length", strconv.Itoa(len(tc.coded)))
			require.NotNil(t, e.recv().GetResponseHeaders())
			e.responseBody(tc.coded, tc.eos)
			code, rpc := immediate(t, e.recv())
			require.Equal(t, 502, code)
			require.Contains(t, rpc.Error.Message, "could not be decoded")
		})
	}
}

// TestCodedBomb: 1 GiB of zeros in about 1 MiB of gzip is refused once the decoded bytes
// pass max_response_bytes, in every body mode, and the server allocates a bounded amount
// on the way (the decoded bytes stop at the limit).
func TestCodedBomb(t *testing.T) {
	bomb := gzipBomb(t, 1<<30)
	cfg := extproc.DefaultConfig()
	cfg.MaxResponseBytes, cfg.BufferResponseBytes = 4<<20, 2<<20
	for _, tc := range []struct {
		name, ct   string
		chunk      int
		withLength bool
	}{
		{name: "buffered json", ct: "application/json", withLength: true},
		{name: "streamed json", ct: "application/json", chunk: 64 << 10},
		{name: "sse", ct: "text/event-stream", chunk: 64 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, cfg)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			e := h.open(t, t.Context())
			e.post(toolsCall(1, "query"))
			e.passed()
			hdr := []string{":status", "200", "content-type", tc.ct, "content-encoding", "gzip"}
			if tc.withLength {
				hdr = append(hdr, "content-length", strconv.Itoa(len(bomb)))
			}
			e.responseHeaders(false, hdr...)
			require.NotNil(t, e.recv().GetResponseHeaders())
			parts := [][]byte{bomb}
			if tc.chunk > 0 {
				parts = chunks(bomb, tc.chunk)
			}
			var last *extprocv3.ProcessingResponse
			var err error
			sent := 0
			for i, p := range parts {
				e.responseBody(p, i == len(parts)-1)
				sent++
				if last, err = e.s.Recv(); err != nil {
					break
				}
				if tc.ct == "application/json" && tc.chunk > 0 && i < len(parts)-1 {
					require.Empty(t, last.GetResponseBody().GetResponse().GetBodyMutation().GetBody(),
						"nothing of an accumulated body leaves before its end")
				}
			}
			runtime.ReadMemStats(&after)
			switch tc.name {
			case "buffered json":
				code, rpc := immediate(t, last)
				require.Equal(t, 502, code)
				require.Contains(t, rpc.Error.Message, "too large")
			case "streamed json":
				require.NoError(t, err)
				require.Contains(t, string(last.GetResponseBody().GetResponse().GetBodyMutation().GetBody()), "too large")
			case "sse":
				require.Equal(t, codes.ResourceExhausted, status.Code(err), "err %v", err)
				require.Less(t, sent, len(parts), "the stream ends at the limit, not at the end of the bomb")
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("allocated %d MiB for a 1 GiB bomb (%d KiB coded)", alloc>>20, len(bomb)>>10)
			require.Less(t, alloc, uint64(64<<20), "decoding stops at max_response_bytes")
		})
	}
}

// TestCodedRequestRefused: a request body with a content coding is refused with 415 before
// policy or the upstream sees it; identity is no coding.
func TestCodedRequestRefused(t *testing.T) {
	for _, tc := range []struct {
		enc    string
		refuse bool
	}{{"gzip", true}, {"br", true}, {"x-custom", true}, {"gzip, identity", true}, {"identity", false}} {
		t.Run(tc.enc, func(t *testing.T) {
			h := start(t, extproc.DefaultConfig())
			e := h.open(t, t.Context())
			e.requestHeaders(false, ":method", "POST", ":path", "/mcp", "content-type", "application/json",
				"content-encoding", tc.enc)
			r := e.recv()
			if !tc.refuse {
				require.NotNil(t, r.GetRequestHeaders())
				return
			}
			code, rpc := immediate(t, r)
			require.Equal(t, 415, code)
			require.Equal(t, mcp.CodeInvalidRequest, rpc.Error.Code)
			require.Contains(t, rpc.Error.Message, "content-encoding")
			v, ok := setHeader(t, r.GetImmediateResponse().GetHeaders(), "accept-encoding")
			require.True(t, ok)
			require.Equal(t, "identity", v)
		})
	}
}

// TestRequestsAskForIdentity: every request that goes upstream asks for an uncoded
// response, with and without a body, whatever the agent accepted.
func TestRequestsAskForIdentity(t *testing.T) {
	h := start(t, extproc.DefaultConfig())
	t.Run("with body", func(t *testing.T) {
		e := h.open(t, t.Context())
		e.requestHeaders(false, ":method", "POST", ":path", "/mcp", "content-type", "application/json",
			"accept-encoding", "gzip, br")
		r := e.recv()
		v, ok := setHeader(t, r.GetRequestHeaders().GetResponse().GetHeaderMutation(), "accept-encoding")
		require.True(t, ok)
		require.Equal(t, "identity", v)
	})
	t.Run("without body", func(t *testing.T) {
		e := h.open(t, t.Context())
		e.requestHeaders(true, ":method", "GET", ":path", "/mcp", "accept", "text/event-stream")
		r := e.recv()
		v, ok := setHeader(t, r.GetRequestHeaders().GetResponse().GetHeaderMutation(), "accept-encoding")
		require.True(t, ok)
		require.Equal(t, "identity", v)
	})
}
