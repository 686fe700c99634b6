package extproc_test

import (
	"encoding/json"
	"io"
	"strconv"
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

func (e *envoy) responseTrailers(kv ...string) {
	e.t.Helper()
	e.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseTrailers{
		ResponseTrailers: &extprocv3.HttpTrailers{Trailers: headerMap(kv...)},
	}})
}

// streamLargeJSON runs a tools/call whose 3 MiB JSON result is switched to STREAMED and
// returns the stream after the response headers were answered.
func streamLargeJSON(t *testing.T, body []byte, cl bool) *envoy {
	t.Helper()
	h := start(t, extproc.DefaultConfig())
	e := h.open(t, t.Context())
	e.post(toolsCall(1, "query"), "mcp-protocol-version", "2025-06-18")
	e.passed()
	hdrs := []string{":status", "200", "content-type", "application/json"}
	if cl {
		hdrs = append(hdrs, "content-length", strconv.Itoa(len(body)))
	}
	e.responseHeaders(false, hdrs...)
	mo := e.recv().GetModeOverride()
	require.Equal(t, filterv3.ProcessingMode_STREAMED, mo.GetResponseBodyMode())
	require.Equal(t, filterv3.ProcessingMode_SEND, mo.GetResponseTrailerMode(),
		"trailers are asked for: they end a body whose JSON value did not")
	return e
}

// TestAccumulatedJSONWithTrailers: a large JSON body switched to STREAMED whose response has
// trailers comes with end_of_stream false on its last chunk. The chunk that closes the
// JSON value carries the whole inspected body; mcpguard used to answer it empty and wait
// for an end_of_stream that never came, so the agent got an empty 200.
func TestAccumulatedJSONWithTrailers(t *testing.T) {
	big := []byte(result(1, strings.Repeat("a", 3<<20)))
	const chunk = 1 << 20
	for _, cl := range []bool{true, false} {
		t.Run("content-length "+strconv.FormatBool(cl), func(t *testing.T) {
			e := streamLargeJSON(t, big, cl)
			var got []byte
			for off := 0; off < len(big); off += chunk {
				end := min(off+chunk, len(big))
				e.responseBody(big[off:end], false)
				got = append(got, e.recv().GetResponseBody().GetResponse().GetBodyMutation().GetBody()...)
			}
			require.Equal(t, string(big), string(got), "the chunk ending the value carries the whole body")
			e.responseBody([]byte("\r\n"), false)
			require.Empty(t, e.recv().GetResponseBody().GetResponse().GetBodyMutation().GetBody())
			e.responseTrailers("x-checksum", "abc")
			tr := e.recv().GetResponseTrailers()
			require.NotNil(t, tr, "the trailers are answered")
			require.Nil(t, tr.GetHeaderMutation())
			_, err := e.s.Recv()
			require.ErrorIs(t, err, io.EOF, "the exchange is over")
		})
	}
}

func TestAccumulatedJSONEndsBadly(t *testing.T) {
	body := []byte(result(1, strings.Repeat("a", 2<<20)))
	t.Run("more after the value in the same chunk", func(t *testing.T) {
		e := streamLargeJSON(t, body, false)
		e.responseBody(append(append([]byte{}, body...), `{"jsonrpc":"2.0","id":2,"result":{}}`...), false)
		out := e.recv().GetResponseBody().GetResponse().GetBodyMutation().GetBody()
		var got rpcError
		require.NoError(t, json.Unmarshal(out, &got))
		require.Equal(t, mcp.CodeInternal, got.Error.Code, "withheld: %s", out)
	})
	t.Run("more after the value in a later chunk", func(t *testing.T) {
		e := streamLargeJSON(t, body, false)
		e.responseBody(body, false)
		require.Equal(t, string(body), string(e.recv().GetResponseBody().GetResponse().GetBodyMutation().GetBody()))
		e.responseBody([]byte(`{"leak":"4111 1111 1111 1111"}`), true)
		_, err := e.s.Recv()
		require.Equal(t, codes.InvalidArgument, status.Code(err), "the stream fails so Envoy resets the response: %v", err)
	})
	t.Run("trailers before the value ended", func(t *testing.T) {
		e := streamLargeJSON(t, body, false)
		e.responseBody(body[:len(body)-1], false)
		require.Empty(t, e.recv().GetResponseBody().GetResponse().GetBodyMutation().GetBody())
		e.responseTrailers()
		_, err := e.s.Recv()
		require.Equal(t, codes.DataLoss, status.Code(err), "no empty 200: %v", err)
	})
	t.Run("end_of_stream still ends an unclosed value", func(t *testing.T) {
		e := streamLargeJSON(t, body, false)
		e.responseBody(body[:len(body)-1], true)
		var got rpcError
		require.NoError(t, json.Unmarshal(e.recv().GetResponseBody().GetResponse().GetBodyMutation().GetBody(), &got))
		require.Equal(t, mcp.CodeInternal, got.Error.Code)
		_, err := e.s.Recv()
		require.ErrorIs(t, err, io.EOF)
	})
}
