package e2e_test

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/e2e/harness"
	"github.com/mcpguard/mcpguard/e2e/mcpserver"
	"github.com/mcpguard/mcpguard/internal/testutil"
)

// coder is a streaming compressor that can flush what it holds (for SSE).
type coder interface {
	io.WriteCloser
	Flush() error
}

func newCoder(enc string, w io.Writer) coder {
	switch enc {
	case "deflate":
		return zlib.NewWriter(w)
	case "br":
		return brotli.NewWriter(w)
	case "zstd":
		zw, _ := zstd.NewWriter(w)
		return zw
	}
	return gzip.NewWriter(w)
}

// codingWriter compresses everything the handler writes with enc, whatever the request's
// Accept-Encoding said, as a misbehaving upstream does; Flush pushes the compressed bytes
// out so an SSE stream stays live.
type codingWriter struct {
	http.ResponseWriter
	enc, header string
	c           coder
	wrote       bool
}

func (w *codingWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	w.Header().Set("Content-Encoding", w.header)
	w.Header().Del("Content-Length")
	w.ResponseWriter.WriteHeader(code)
}

func (w *codingWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.c == nil {
		w.c = newCoder(w.enc, w.ResponseWriter)
	}
	return w.c.Write(p)
}

func (w *codingWriter) Flush() {
	w.WriteHeader(http.StatusOK)
	if w.c != nil {
		_ = w.c.Flush()
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

// compressing wraps h so every response is coded with enc and labelled with header (they
// differ for the stacked and unknown cases); it records the Accept-Encoding it was sent.
func compressing(h http.Handler, enc, header string, seen *sync.Map) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Header.Get("Accept-Encoding"), true)
		cw := &codingWriter{ResponseWriter: w, enc: enc, header: header}
		h.ServeHTTP(cw, r)
		if cw.c != nil {
			_ = cw.c.Close()
		}
	})
}

// leakyCompressing is leakyUpstream behind compressing.
func leakyCompressing(t *testing.T, jsonResponses bool, enc, header string, seen *sync.Map) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(mcpserver.Path, compressing(leakyHandler(jsonResponses), enc, header, seen))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func gateway(t *testing.T, upstream string) *harness.Gateway {
	t.Helper()
	require.NoError(t, suite.err, "the suite could not start mcpguard")
	return gatewayFor(t, suite.guard, upstream)
}

// TestCompressedResponsesMasked: an upstream that compresses every response (gzip,
// deflate, zstd, br; JSON and SSE) regardless of Accept-Encoding still works through the
// gateway, and its card number and AWS key reach the client masked. The upstream is asked
// for identity, and no compressed byte reaches the client.
func TestCompressedResponsesMasked(t *testing.T) {
	for _, enc := range []string{"gzip", "deflate", "zstd", "br"} {
		for _, jsonResp := range []bool{true, false} {
			name := enc + "/sse"
			if jsonResp {
				name = enc + "/json"
			}
			t.Run(name, func(t *testing.T) {
				mark := suite.guard.Logs().Len()
				var seen sync.Map
				up := leakyCompressing(t, jsonResp, enc, enc, &seen)
				gw := gateway(t, up.Listener.Addr().String())
				progress := make(chan string, 4)
				opts := &mcp.ClientOptions{ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
					select {
					case progress <- r.Params.Message:
					default:
					}
				}}
				s, err := harness.Connect(t.Context(), harness.ClientOptions{
					Endpoint: "http://" + gw.Addr() + mcpserver.Path, Token: suite.token, Version: harness.V20250618,
					Client: opts, DisableStandaloneSSE: true,
				})
				require.NoError(t, err)
				t.Cleanup(func() { _ = s.Close() })
				params := &mcp.CallToolParams{Name: "report", Arguments: map[string]any{}}
				params.SetProgressToken("p1")
				r, err := s.CallTool(t.Context(), params)
				require.NoError(t, err)
				want := "paid with card [REDACTED:CREDIT_CARD]; deploy key [REDACTED:AWS_ACCESS_KEY]"
				require.Equal(t, want, text(t, r))
				sc, err := json.Marshal(r.StructuredContent)
				require.NoError(t, err)
				require.JSONEq(t, `{"card":"[REDACTED:CREDIT_CARD]","aws_key":"[REDACTED:AWS_ACCESS_KEY]","note":"`+want+`"}`, string(sc))
				if !jsonResp {
					select {
					case msg := <-progress:
						require.Equal(t, "mailing [REDACTED:EMAIL]", msg)
					case <-time.After(wait):
						t.Fatal("no progress notification")
					}
				}
				seen.Range(func(k, _ any) bool {
					require.Equal(t, "identity", k, "the gateway asks the upstream for an uncoded body")
					return true
				})

				// A raw client that accepts gzip but does not decode: the body it gets is plain.
				req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+gw.Addr()+mcpserver.Path,
					strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`))
				require.NoError(t, err)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				req.Header.Set("Accept-Encoding", "gzip, deflate, br, zstd")
				resp, err := harness.HTTPClient(suite.token).Do(req)
				require.NoError(t, err)
				defer resp.Body.Close()
				raw, err := io.ReadAll(resp.Body)
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, resp.StatusCode, "body %q", raw)
				require.Empty(t, resp.Header.Get("Content-Encoding"))
				require.Contains(t, string(raw), `"protocolVersion"`, "a plain body, not compressed bytes")
				require.NotContains(t, suite.guard.Logs().Since(mark), "4111")
			})
		}
	}
}

// TestCompressedResponsesRefused: an unknown or stacked coding, and a gzip bomb, are
// refused with a JSON-RPC error, not passed.
func TestCompressedResponsesRefused(t *testing.T) {
	initialize := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
	for _, tc := range []struct{ name, enc, header string }{
		{"unknown coding", "gzip", "x-custom"},
		{"stacked codings", "gzip", "gzip, br"},
	} {
		for _, jsonResp := range []bool{true, false} {
			t.Run(tc.name+"/json="+strconv.FormatBool(jsonResp), func(t *testing.T) {
				var seen sync.Map
				up := leakyCompressing(t, jsonResp, tc.enc, tc.header, &seen)
				gw := gateway(t, up.Listener.Addr().String())
				code, h, body := post(t, "http://"+gw.Addr()+mcpserver.Path, suite.token, nil, initialize)
				require.Equal(t, http.StatusBadGateway, code, "body %q", body)
				require.Empty(t, h.Get("Content-Encoding"))
				var e rpcError
				require.NoError(t, json.Unmarshal(body, &e), "body %q", body)
				require.NotNil(t, e.Error)
				require.Contains(t, e.Error.Message, "unsupported content encoding")
			})
		}
	}

	bomb := testutil.GzipBomb(t, 1<<30)
	for _, ct := range []string{"application/json", "text/event-stream"} {
		t.Run("gzip bomb/"+ct, func(t *testing.T) {
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", ct)
				w.Header().Set("Content-Encoding", "gzip")
				w.WriteHeader(http.StatusOK)
				for _, c := range chunkBytes(bomb, 32<<10) {
					if _, err := w.Write(c); err != nil {
						return
					}
				}
			}))
			t.Cleanup(up.Close)
			gw := gateway(t, up.Listener.Addr().String())
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+gw.Addr()+mcpserver.Path, strings.NewReader(initialize))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			resp, err := harness.HTTPClient(suite.token).Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			got, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
			require.Less(t, len(got), 40<<20, "at most max_response_bytes (32 MiB) of decoded bytes ever leave")
			if ct == "application/json" {
				require.NoError(t, rerr)
				var e rpcError
				require.NoError(t, json.Unmarshal(got, &e), "body %.200q", got)
				require.NotNil(t, e.Error)
				require.Contains(t, e.Error.Message, "too large")
				return
			}
			// Headers of an SSE stream go out at once; the stream is then cut at the limit.
			require.Error(t, rerr, "the event stream is reset, not ended as if complete")
		})
	}
}

// TestCompressedRequestRefused: a request body sent with a content coding is refused with
// 415 by the gateway; the upstream never sees it.
func TestCompressedRequestRefused(t *testing.T) {
	var hits sync.Map
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Store(r.URL.Path, true)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(up.Close)
	gw := gateway(t, up.Listener.Addr().String())
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, _ = zw.Write([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	require.NoError(t, zw.Close())
	code, h, body := post(t, "http://"+gw.Addr()+mcpserver.Path, suite.token, map[string]string{"Content-Encoding": "gzip"}, b.String())
	require.Equal(t, http.StatusUnsupportedMediaType, code, "body %q", body)
	require.Equal(t, "identity", h.Get("Accept-Encoding"))
	var e rpcError
	require.NoError(t, json.Unmarshal(body, &e), "body %q", body)
	require.NotNil(t, e.Error)
	require.Equal(t, -32600, e.Error.Code)
	_, hit := hits.Load(mcpserver.Path)
	require.False(t, hit, "the upstream never got the coded body")
}

func chunkBytes(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) > n {
		out = append(out, b[:n])
		b = b[n:]
	}
	return append(out, b)
}
