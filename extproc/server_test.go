package extproc_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mcpguard/mcpguard/extproc"
	"github.com/mcpguard/mcpguard/mcp"
)

// stage is a test stage built from functions; a nil function passes.
type stage struct {
	name string
	req  func(ctx context.Context, x *extproc.Exchange) (extproc.Verdict, error)
	resp func(ctx context.Context, x *extproc.Exchange, r *extproc.Response) (extproc.Verdict, error)
}

func (s *stage) Name() string { return s.name }

func (s *stage) OnRequest(ctx context.Context, x *extproc.Exchange) (extproc.Verdict, error) {
	if s.req == nil {
		return extproc.Pass, nil
	}
	return s.req(ctx, x)
}

func (s *stage) OnResponse(ctx context.Context, x *extproc.Exchange, r *extproc.Response) (extproc.Verdict, error) {
	if s.resp == nil {
		return extproc.Pass, nil
	}
	return s.resp(ctx, x, r)
}

// recorder observes what crosses the gateway, as a recording stage would.
type recorder struct {
	mu       sync.Mutex
	subjects []string
	revs     []mcp.Revision
	methods  []string
	resps    []string
}

func (r *recorder) Name() string { return "record" }

func (r *recorder) OnRequest(_ context.Context, x *extproc.Exchange) (extproc.Verdict, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.subjects = append(r.subjects, x.Identity.Subject)
	r.revs = append(r.revs, x.Revision)
	for _, m := range x.Body.Messages {
		r.methods = append(r.methods, m.Method)
	}
	return extproc.Pass, nil
}

func (r *recorder) OnResponse(_ context.Context, _ *extproc.Exchange, resp *extproc.Response) (extproc.Verdict, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resps = append(r.resps, string(resp.Msg.Raw))
	return extproc.Pass, nil
}

func TestToolsCallRoundTrip(t *testing.T) {
	rec := &recorder{}
	h := start(t, extproc.DefaultConfig(), rec)
	e := h.open(t, t.Context())

	e.post(toolsCall(1, "query"), "mcp-protocol-version", "2025-06-18", "mcp-session-id", "sess-1")
	e.passed()

	res := result(1, "1 row")
	e.responseHeaders(false, ":status", "200", "content-type", "application/json", "content-length", "50")
	r := e.recv()
	require.NotNil(t, r.GetResponseHeaders())
	require.Nil(t, r.GetModeOverride(), "small JSON stays BUFFERED as configured")
	e.responseBody([]byte(res), true)
	r = e.recv()
	require.NotNil(t, r.GetResponseBody())
	require.Nil(t, r.GetResponseBody().GetResponse().GetBodyMutation(), "unchanged body passes untouched")

	_, err := e.s.Recv()
	require.ErrorIs(t, err, io.EOF, "server ends the stream when the exchange is complete")

	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.Equal(t, []string{"svc-reports"}, rec.subjects)
	require.Equal(t, []mcp.Revision{mcp.Rev20250618}, rec.revs)
	require.Equal(t, []string{"tools/call"}, rec.methods)
	require.Equal(t, []string{res}, rec.resps)
	require.InDelta(t, 1, metric(t, h.reg, "mcpguard_extproc_messages_total", "direction", "request", "method", "tools/call"), 0)
	require.InDelta(t, 1, metric(t, h.reg, "mcpguard_extproc_messages_total", "direction", "response", "method", "tools/call"), 0)
	require.InDelta(t, 1, metric(t, h.reg, "mcpguard_extproc_decisions_total", "stage", "protocol", "action", "continue"), 0)
	require.InDelta(t, 1, metric(t, h.reg, "mcpguard_extproc_streams_total"), 0)
}

func TestRequestRefused(t *testing.T) {
	meta2026 := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",` +
		`"io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}`
	call2026 := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"query","arguments":{},` + meta2026 + `}}`
	deny := &stage{name: "policy", req: func(_ context.Context, x *extproc.Exchange) (extproc.Verdict, error) {
		if x.Body != nil && x.Body.Messages[0].Tool == "drop_db" {
			v := extproc.Refuse(-31003, "tool blocked by policy")
			v.Status = http.StatusForbidden
			return v, nil
		}
		if x.Body != nil && x.Body.Messages[0].Tool == "crash" {
			return extproc.Verdict{}, errors.New("policy store unavailable")
		}
		return extproc.Pass, nil
	}}
	small := extproc.DefaultConfig()
	small.MaxRequestBytes = 64

	cases := []struct {
		name    string
		cfg     extproc.Config
		noIdent bool
		get     bool
		headers []string
		body    string
		status  int
		code    int
		id      string
	}{
		{
			name: "missing identity", noIdent: true, body: toolsCall(7, "query"),
			headers: []string{"mcp-protocol-version", "2025-06-18"}, status: 403, code: -31001, id: "7",
		},
		{
			name: "missing identity on GET", noIdent: true, get: true,
			headers: []string{"mcp-protocol-version", "2025-06-18"}, status: 403, code: -31001, id: "null",
		},
		{
			name: "batch on 2025-06-18", body: "[" + toolsCall(1, "a") + "," + toolsCall(2, "b") + "]",
			headers: []string{"mcp-protocol-version", "2025-06-18"}, status: 400, code: mcp.CodeInvalidRequest, id: "null",
		},
		{
			name: "2026-07-28 mcp-name mismatch", body: call2026, status: 400, code: mcp.CodeHeaderMismatch, id: "3",
			headers: []string{"mcp-protocol-version", "2026-07-28", "mcp-method", "tools/call", "mcp-name", "other"},
		},
		{
			name: "unknown revision", body: toolsCall(4, "query"), status: 400, code: mcp.CodeUnsupportedVersion, id: "4",
			headers: []string{"mcp-protocol-version", "1999-01-01"},
		},
		{
			name: "over the size cap", cfg: small, body: toolsCall(5, strings.Repeat("x", 64)), status: 413,
			code: mcp.CodeInvalidRequest, id: "null", headers: []string{"mcp-protocol-version", "2025-06-18"},
		},
		{
			name: "unparsable body", body: `{"jsonrpc":"2.0",`, status: 400, code: mcp.CodeParse, id: "null",
			headers: []string{"mcp-protocol-version", "2025-06-18"},
		},
		{
			name: "policy stage denies", body: toolsCall(8, "drop_db"), status: 403, code: -31003, id: "8",
			headers: []string{"mcp-protocol-version", "2025-06-18"},
		},
		{
			name: "stage fails closed", body: toolsCall(9, "crash"), status: 200, code: mcp.CodeInternal, id: "9",
			headers: []string{"mcp-protocol-version", "2025-06-18"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if cfg.MaxRequestBytes == 0 {
				cfg = extproc.DefaultConfig()
			}
			h := start(t, cfg, deny)
			e := h.open(t, t.Context())
			if tc.noIdent {
				e.meta = nil
			}
			if tc.get {
				e.requestHeaders(true, append([]string{":method", "GET", ":path", "/mcp", "accept", "text/event-stream"},
					tc.headers...)...)
			} else {
				e.post(tc.body, tc.headers...)
			}
			code, rpc := immediate(t, e.recv())
			require.Equal(t, tc.status, code)
			require.Equal(t, tc.code, rpc.Error.Code)
			require.JSONEq(t, tc.id, string(rpc.ID))
			require.NotContains(t, rpc.Error.Message, "select", "no body content in errors")
		})
	}
}

func TestBatchDeniedPerRequest(t *testing.T) {
	deny := &stage{name: "policy", req: func(context.Context, *extproc.Exchange) (extproc.Verdict, error) {
		return extproc.Refuse(-31003, "blocked"), nil
	}}
	h := start(t, extproc.DefaultConfig(), deny)
	e := h.open(t, t.Context())
	e.post("["+toolsCall(1, "a")+","+toolsCall(2, "b")+"]", "mcp-protocol-version", "2025-03-26")
	r := e.recv()
	ir := r.GetImmediateResponse()
	require.NotNil(t, ir)
	var errs []rpcError
	require.NoError(t, json.Unmarshal(ir.GetBody(), &errs))
	require.Len(t, errs, 2)
	require.JSONEq(t, "1", string(errs[0].ID))
	require.JSONEq(t, "2", string(errs[1].ID))
	require.Equal(t, -31003, errs[1].Error.Code)
}

func TestBodilessRequestPasses(t *testing.T) {
	h := start(t, extproc.DefaultConfig())
	e := h.open(t, t.Context())
	e.requestHeaders(true, ":method", "DELETE", ":path", "/mcp", "mcp-protocol-version", "2025-06-18", "mcp-session-id", "s1")
	r := e.recv()
	require.NotNil(t, r.GetRequestHeaders(), "got %v", r)
	e.responseHeaders(true, ":status", "204")
	require.NotNil(t, e.recv().GetResponseHeaders())
}

func TestJSONMutationSetsContentLength(t *testing.T) {
	mask := &stage{name: "mask", resp: func(_ context.Context, _ *extproc.Exchange, r *extproc.Response) (extproc.Verdict, error) {
		masked := strings.ReplaceAll(string(r.Msg.Raw), "hunter2", "[MASKED:password]")
		return extproc.Verdict{Action: extproc.Replace, Message: json.RawMessage(masked)}, nil
	}}
	h := start(t, extproc.DefaultConfig(), mask)
	e := h.open(t, t.Context())
	e.post(toolsCall(1, "query"), "mcp-protocol-version", "2025-06-18")
	e.passed()
	in := result(1, "password is hunter2")
	e.responseHeaders(false, ":status", "200", "content-type", "application/json; charset=utf-8", "content-length", "60")
	require.NotNil(t, e.recv().GetResponseHeaders())
	e.responseBody([]byte(in), true)
	c := e.recv().GetResponseBody().GetResponse()
	out := c.GetBodyMutation().GetBody()
	require.Equal(t, result(1, "password is [MASKED:password]"), string(out))
	cl, ok := setHeader(t, c.GetHeaderMutation(), "content-length")
	require.True(t, ok, "a length-changing mutation must set content-length")
	require.Equal(t, len(out), atoi(t, cl))
	require.True(t, json.Valid(out))
}

func TestResponseDenied(t *testing.T) {
	block := &stage{name: "dlp", resp: func(context.Context, *extproc.Exchange, *extproc.Response) (extproc.Verdict, error) {
		return extproc.Refuse(mcp.CodeInternal, "response withheld: secret detected"), nil
	}}
	h := start(t, extproc.DefaultConfig(), block)
	e := h.open(t, t.Context())
	e.post(toolsCall(42, "query"), "mcp-protocol-version", "2025-06-18")
	e.passed()
	e.responseHeaders(false, ":status", "200", "content-type", "application/json", "content-length", "40")
	require.NotNil(t, e.recv().GetResponseHeaders())
	e.responseBody([]byte(result(42, "AKIA...")), true)
	c := e.recv().GetResponseBody().GetResponse()
	var got rpcError
	require.NoError(t, json.Unmarshal(c.GetBodyMutation().GetBody(), &got))
	require.JSONEq(t, "42", string(got.ID))
	require.Equal(t, mcp.CodeInternal, got.Error.Code)
	cl, ok := setHeader(t, c.GetHeaderMutation(), "content-length")
	require.True(t, ok)
	require.Equal(t, len(c.GetBodyMutation().GetBody()), atoi(t, cl))
}

func TestOtherContentTypes(t *testing.T) {
	cases := []struct {
		name   string
		status string
		ct     string
		body   string
		check  func(t *testing.T, r *extprocv3.ProcessingResponse)
	}{
		{
			name: "202 text body dropped", status: "202", ct: "text/plain", body: "Accepted",
			check: func(t *testing.T, r *extprocv3.ProcessingResponse) {
				c := r.GetResponseBody().GetResponse()
				require.NotNil(t, c.GetBodyMutation())
				require.Empty(t, c.GetBodyMutation().GetBody())
				cl, _ := setHeader(t, c.GetHeaderMutation(), "content-length")
				require.Equal(t, "0", cl)
			},
		},
		{
			name: "200 html refused", status: "200", ct: "text/html", body: "<html>secret</html>",
			check: func(t *testing.T, r *extprocv3.ProcessingResponse) {
				code, rpc := immediate(t, r)
				require.Equal(t, 502, code)
				require.JSONEq(t, "1", string(rpc.ID))
			},
		},
		{
			name: "404 text keeps status", status: "404", ct: "text/plain", body: "session not found",
			check: func(t *testing.T, r *extprocv3.ProcessingResponse) {
				code, rpc := immediate(t, r)
				require.Equal(t, 404, code)
				require.Equal(t, mcp.CodeInternal, rpc.Error.Code)
			},
		},
		{
			name: "unparsable JSON refused", status: "200", ct: "application/json", body: `{"jsonrpc":"2.0","id":1,"result":`,
			check: func(t *testing.T, r *extprocv3.ProcessingResponse) {
				code, rpc := immediate(t, r)
				require.Equal(t, 502, code)
				require.JSONEq(t, "1", string(rpc.ID))
			},
		},
		{
			name: "empty body passes", status: "200", ct: "text/plain", body: "",
			check: func(t *testing.T, r *extprocv3.ProcessingResponse) {
				require.NotNil(t, r.GetResponseBody())
				require.Nil(t, r.GetResponseBody().GetResponse().GetBodyMutation())
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, extproc.DefaultConfig())
			e := h.open(t, t.Context())
			e.post(toolsCall(1, "query"), "mcp-protocol-version", "2025-06-18")
			e.passed()
			e.responseHeaders(false, ":status", tc.status, "content-type", tc.ct, "content-length", "10")
			require.NotNil(t, e.recv().GetResponseHeaders())
			e.responseBody([]byte(tc.body), true)
			tc.check(t, e.recv())
		})
	}
}

func TestLargeJSONStreamedAndAccumulated(t *testing.T) {
	same := func(t *testing.T, in, out []byte) { require.Equal(t, string(in), string(out)) }
	cases := []struct {
		name string
		size int // bytes of result text
		max  int
		cl   bool // send content-length
		want func(t *testing.T, in, out []byte)
	}{
		{name: "20MB result passes", size: 20 << 20, max: 32 << 20, cl: true, want: same},
		{name: "chunked JSON without content-length", size: 3 << 20, max: 32 << 20, want: same},
		{
			name: "over max_response_bytes withheld", size: 3 << 20, max: 2 << 20, cl: true,
			want: func(t *testing.T, _, out []byte) {
				var got rpcError
				require.NoError(t, json.Unmarshal(out, &got))
				require.JSONEq(t, "1", string(got.ID))
				require.Equal(t, mcp.CodeInternal, got.Error.Code)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := extproc.DefaultConfig()
			cfg.MaxResponseBytes = tc.max
			h := start(t, cfg)
			e := h.open(t, t.Context())
			e.post(toolsCall(1, "query"), "mcp-protocol-version", "2025-06-18")
			e.passed()
			big := []byte(result(1, strings.Repeat("a", tc.size)))
			hdrs := []string{":status", "200", "content-type", "application/json"}
			if tc.cl {
				hdrs = append(hdrs, "content-length", strconv.Itoa(len(big)))
			}
			e.responseHeaders(false, hdrs...)
			r := e.recv()
			require.Equal(t, filterv3.ProcessingMode_STREAMED, r.GetModeOverride().GetResponseBodyMode())
			require.Equal(t, filterv3.ProcessingMode_BUFFERED, r.GetModeOverride().GetRequestBodyMode(),
				"both body modes are set explicitly")
			const chunk = 1 << 20
			for off := 0; off < len(big); off += chunk {
				end := min(off+chunk, len(big))
				e.responseBody(big[off:end], end == len(big))
				c := e.recv().GetResponseBody().GetResponse()
				require.NotNil(t, c.GetBodyMutation(), "every chunk is answered with its replacement")
				if end < len(big) {
					require.Empty(t, c.GetBodyMutation().GetBody(), "held until the whole body is inspected")
					continue
				}
				tc.want(t, big, c.GetBodyMutation().GetBody())
			}
		})
	}
}

func TestHoldSendsTimeoutOverrideFirst(t *testing.T) {
	release := make(chan struct{})
	second := make(chan error, 1)
	approve := &stage{name: "approvals", req: func(ctx context.Context, x *extproc.Exchange) (extproc.Verdict, error) {
		d, err := x.Hold(2 * time.Hour)
		if err != nil {
			return extproc.Verdict{}, err
		}
		if d != 30*time.Minute {
			return extproc.Verdict{}, errors.New("hold not capped at max_hold")
		}
		_, err = x.Hold(time.Minute)
		second <- err
		select {
		case <-release:
			return extproc.Pass, nil
		case <-ctx.Done():
			return extproc.Verdict{}, ctx.Err()
		}
	}}
	h := start(t, extproc.DefaultConfig(), approve)
	e := h.open(t, t.Context())
	e.post(toolsCall(1, "deploy"), "mcp-protocol-version", "2025-06-18")

	r := e.recv()
	require.Nil(t, r.GetResponse(), "the override travels alone")
	require.Equal(t, 30*time.Minute, r.GetOverrideMessageTimeout().AsDuration())
	require.Error(t, <-second, "Envoy honours one override per state")
	close(release)
	e.passed()
}

func TestOutOfOrder(t *testing.T) {
	get := []string{":method", "GET", ":path", "/mcp", "mcp-protocol-version", "2025-06-18"}
	cases := []struct {
		name string
		run  func(e *envoy)
	}{
		{name: "response headers first", run: func(e *envoy) { e.responseHeaders(false, ":status", "200") }},
		{name: "request body first", run: func(e *envoy) { e.requestBody(toolsCall(1, "a")) }},
		{name: "request headers twice", run: func(e *envoy) {
			e.requestHeaders(false, ":method", "POST", ":path", "/mcp")
			e.recv()
			e.requestHeaders(false, ":method", "POST", ":path", "/mcp")
		}},
		{name: "response body before response headers", run: func(e *envoy) {
			e.requestHeaders(true, get...)
			e.recv()
			e.responseBody([]byte("x"), true)
		}},
		{name: "request trailers", run: func(e *envoy) {
			e.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestTrailers{
				RequestTrailers: &extprocv3.HttpTrailers{},
			}})
		}},
		{name: "request body not buffered", run: func(e *envoy) {
			e.modes = &extprocv3.ProtocolConfiguration{RequestBodyMode: filterv3.ProcessingMode_STREAMED}
			e.requestHeaders(false, ":method", "POST", ":path", "/mcp")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, extproc.DefaultConfig())
			e := h.open(t, t.Context())
			tc.run(e)
			_, err := e.s.Recv()
			require.Error(t, err)
			require.Equal(t, codes.FailedPrecondition, status.Code(err), "err %v", err)
		})
	}
}

// TestBufferedBodyWithTrailers: when a request or response has trailers, Envoy sends the
// whole buffered body with end_of_stream false (the body ends as the trailers arrive, and
// they are forwarded only in trailer mode SEND). Such a body is inspected like any other:
// a valid one passes, a truncated one is refused, never a stream error (Envoy's 500).
func TestBufferedBodyWithTrailers(t *testing.T) {
	st, _, _ := newMasking(t)
	h := start(t, extproc.DefaultConfig(), st)

	e := h.open(t, t.Context())
	e.requestHeaders(false, ":method", "POST", ":path", "/mcp", "content-type", "application/json",
		"accept", "application/json, text/event-stream", "mcp-protocol-version", "2025-06-18")
	require.NotNil(t, e.recv().GetRequestHeaders())
	e.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
		RequestBody: &extprocv3.HttpBody{Body: []byte(toolsCall(1, "query")), EndOfStream: false},
	}})
	require.NotNil(t, e.recv().GetRequestBody(), "a whole buffered request body passes")
	body := toolResult(1, "card "+card)
	e.responseHeaders(false, ":status", "200", "content-type", "application/json", "content-length", strconv.Itoa(len(body)))
	require.NotNil(t, e.recv().GetResponseHeaders())
	e.responseBody([]byte(body), false)
	out := string(e.recv().GetResponseBody().GetResponse().GetBodyMutation().GetBody())
	require.Contains(t, out, "[REDACTED:CREDIT_CARD]", "the buffered response is inspected")

	e = h.open(t, t.Context())
	e.requestHeaders(false, ":method", "POST", ":path", "/mcp", "content-type", "application/json",
		"accept", "application/json, text/event-stream", "mcp-protocol-version", "2025-06-18")
	require.NotNil(t, e.recv().GetRequestHeaders())
	e.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
		RequestBody: &extprocv3.HttpBody{Body: []byte("{"), EndOfStream: false},
	}})
	code, _ := immediate(t, e.recv())
	require.Equal(t, http.StatusBadRequest, code, "a truncated body is refused")
}

func TestStreamEndsMidway(t *testing.T) {
	t.Run("client gone while a stage holds", func(t *testing.T) {
		held := make(chan struct{})
		stopped := make(chan struct{})
		hold := &stage{name: "approvals", req: func(ctx context.Context, x *extproc.Exchange) (extproc.Verdict, error) {
			if _, err := x.Hold(time.Hour); err != nil {
				return extproc.Verdict{}, err
			}
			close(held)
			<-ctx.Done()
			close(stopped)
			return extproc.Verdict{}, ctx.Err()
		}}
		h := start(t, extproc.DefaultConfig(), hold)
		ctx, cancel := context.WithCancel(t.Context())
		e := h.open(t, ctx)
		e.post(toolsCall(1, "deploy"), "mcp-protocol-version", "2025-06-18")
		require.NotNil(t, e.recv().GetOverrideMessageTimeout())
		<-held
		cancel()
		waitClosed(t, stopped, "stage context not cancelled")
		// GracefulStop waits for every handler: returning proves no stream goroutine is left.
		stoppedServer := make(chan struct{})
		go func() { h.gs.GracefulStop(); close(stoppedServer) }()
		waitClosed(t, stoppedServer, "a stream handler is still running")
		require.InDelta(t, 0, metric(t, h.reg, "mcpguard_extproc_streams_active"), 0)
	})
	t.Run("envoy half-closes after headers", func(t *testing.T) {
		h := start(t, extproc.DefaultConfig())
		e := h.open(t, t.Context())
		e.requestHeaders(false, ":method", "POST", ":path", "/mcp")
		e.recv()
		require.NoError(t, e.s.CloseSend())
		_, err := e.s.Recv()
		require.ErrorIs(t, err, io.EOF, "server closes the stream cleanly")
		stoppedServer := make(chan struct{})
		go func() { h.gs.GracefulStop(); close(stoppedServer) }()
		waitClosed(t, stoppedServer, "a stream handler is still running")
		require.InDelta(t, 0, metric(t, h.reg, "mcpguard_extproc_streams_active"), 0)
	})
}

// waitClosed fails the test if ch is not closed within a generous limit (a hang guard,
// not a timing assertion).
func waitClosed(t *testing.T, ch <-chan struct{}, msg string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatal(msg)
	}
}

func TestNewServerRejects(t *testing.T) {
	cases := []struct {
		name   string
		cfg    extproc.Config
		stages []extproc.Stage
		noReg  bool
	}{
		{name: "invalid config", cfg: extproc.Config{}},
		{name: "duplicate stage", cfg: extproc.DefaultConfig(), stages: []extproc.Stage{&stage{name: "a"}, &stage{name: "a"}}},
		{name: "reserved name", cfg: extproc.DefaultConfig(), stages: []extproc.Stage{&stage{name: "protocol"}}},
		{name: "not a stage", cfg: extproc.DefaultConfig(), stages: []extproc.Stage{named("x")}},
		{name: "no registerer", cfg: extproc.DefaultConfig(), noReg: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var reg prometheus.Registerer = prometheus.NewRegistry()
			if tc.noReg {
				reg = nil
			}
			_, err := extproc.NewServer(tc.cfg, nil, reg, tc.stages...)
			require.Error(t, err)
		})
	}
	t.Run("valid", func(t *testing.T) {
		_, err := extproc.NewServer(extproc.DefaultConfig(), nil, prometheus.NewRegistry(), &stage{name: "a"}, &stage{name: "b"})
		require.NoError(t, err)
	})
}

type named string

func (n named) Name() string { return string(n) }

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		mod  func(c *extproc.Config)
		want []string
	}{
		{name: "defaults", mod: func(*extproc.Config) {}},
		{
			name: "zero sizes", mod: func(c *extproc.Config) { c.MaxRequestBytes, c.MaxEventBytes = 0, -1 },
			want: []string{"max_request_bytes: must be positive", "max_event_bytes: must be positive"},
		},
		{
			name: "buffer above max", mod: func(c *extproc.Config) { c.BufferResponseBytes = c.MaxResponseBytes + 1 },
			want: []string{"buffer_response_bytes: must not exceed max_response_bytes"},
		},
		{
			name: "hold beyond envoy range", mod: func(c *extproc.Config) { c.MaxHold = 2 * time.Hour },
			want: []string{"max_hold: "},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := extproc.DefaultConfig()
			tc.mod(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}
