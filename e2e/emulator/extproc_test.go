package emulator

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	procfv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/mcpguard/mcpguard/e2e/emulator/emulatortest"
)

type resps = []*extprocv3.ProcessingResponse

func cont(r *extprocv3.ProcessingRequest) (resps, error) {
	return resps{emulatortest.Continue(r)}, nil
}

func setHeader(k, raw string) *extprocv3.HeaderMutation {
	return &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: k, RawValue: []byte(raw)}}}}
}

func immediate(code int, body string) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
		Status: &typev3.HttpStatus{Code: typev3.StatusCode(code)}, Body: []byte(body), Details: "blocked by policy",
		Headers: setHeader("x-blocked", "1"),
	}}}
}

// echo records what the upstream received.
type echo struct {
	got  chan *http.Request
	body chan string
}

func newEcho() *echo { return &echo{got: make(chan *http.Request, 8), body: make(chan string, 8)} }

func (e *echo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	e.got <- r
	e.body <- string(b)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"result":"secret"}`))
}

func do(t *testing.T, method, url, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func TestMessageOrder(t *testing.T) {
	tests := []struct {
		name   string
		method string
		body   string
		want   []string
	}{
		{
			name: "GET without a body", method: http.MethodGet,
			want: []string{"request_headers", "response_headers", "response_body"},
		},
		{
			name: "POST JSON-RPC with BUFFERED request", method: http.MethodPost, body: `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			want: []string{"request_headers", "request_body", "response_headers", "response_body"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := newEcho()
			h := start(t, loadBase(t), nil, nil, up)
			resp, body := do(t, tc.method, h.url+"/mcp?x=1", tc.body, "X-Custom", "A")
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, `{"result":"secret"}`, body) //nolint:testifylint // byte-exact, not JSON-equal: the body passes through untouched
			require.Empty(t, resp.Header.Get("Content-Length"), "STREAMED response drops content-length")
			require.Equal(t, tc.body, <-up.body)
			got := <-up.got
			require.Equal(t, "http", got.Header.Get("X-Forwarded-Proto"))
			require.NotEmpty(t, got.Header.Get("X-Request-Id"))

			streams := h.proc.Streams()
			require.Len(t, streams, 1)
			s := streams[0]
			require.Equal(t, tc.want, kinds(s))
			require.NotNil(t, s[0].GetProtocolConfig())
			require.Equal(t, procfv3.ProcessingMode_BUFFERED, s[0].GetProtocolConfig().GetRequestBodyMode())
			for _, r := range s[1:] {
				require.Nil(t, r.GetProtocolConfig(), "protocol_config only in the first message")
			}
			attrs := s[0].GetAttributes()["envoy.filters.http.ext_proc"].GetFields()
			require.Equal(t, got.Header.Get("X-Request-Id"), attrs["request.id"].GetStringValue())
			require.False(t, attrs["connection.mtls"].GetBoolValue())
			require.Contains(t, attrs["source.address"].GetStringValue(), "127.0.0.1:")
			rh := s[0].GetRequestHeaders()
			require.Equal(t, tc.body == "", rh.GetEndOfStream())
			p, _ := header(rh, ":path")
			require.Equal(t, "/mcp?x=1", p)
			v, ok := header(rh, "x-custom")
			require.True(t, ok, "header keys are lower-cased")
			require.Equal(t, "A", v)
			for _, r := range s {
				require.NotNil(t, r.GetMetadataContext(), "metadata_context in every message")
			}
			last := s[len(s)-1].GetResponseBody()
			require.True(t, last.GetEndOfStream())
		})
	}
}

// TestTrailersEndTheBody: a request with trailers has its buffered body sent with
// end_of_stream false, as Envoy sends it from decodeTrailers (ext_proc.cc, Filter::onTrailers);
// with trailer mode SKIP no trailers message follows.
func TestTrailersEndTheBody(t *testing.T) {
	up := newEcho()
	h := start(t, loadBase(t), nil, nil, up)
	const body = `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, h.url+"/mcp", io.NopCloser(strings.NewReader(body)))
	require.NoError(t, err)
	req.ContentLength = -1
	req.Trailer = http.Header{"X-Digest": {"d1"}}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, body, <-up.body) //nolint:testifylint // byte-exact: the body passes untouched
	streams := h.proc.Streams()
	require.Len(t, streams, 1)
	s := streams[0]
	require.Equal(t, []string{"request_headers", "request_body", "response_headers", "response_body"}, kinds(s))
	rb := s[1].GetRequestBody()
	require.Equal(t, body, string(rb.GetBody())) //nolint:testifylint // byte-exact: what Envoy sends
	require.False(t, rb.GetEndOfStream(), "the body ends with the trailers, not with end_of_stream")
}

func TestBufferedRequestMutation(t *testing.T) {
	const in = `{"jsonrpc":"2.0","id":1,"method":"tools/call"}`
	const out = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}`
	tests := []struct {
		name     string
		fixCL    bool
		wantCode int
		wantUp   string
	}{
		{name: "length change with content-length fix", fixCL: true, wantCode: 200, wantUp: out},
		{name: "length change without fix fails", fixCL: false, wantCode: 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := newEcho()
			proc := &emulatortest.Processor{Handle: func(_ context.Context, _ *emulatortest.Stream, r *extprocv3.ProcessingRequest) (resps, error) {
				if r.GetRequestBody() == nil {
					return cont(r)
				}
				cr := &extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte(out)}}}
				if tc.fixCL {
					cr.HeaderMutation = setHeader("content-length", strconv.Itoa(len(out)))
				}
				return resps{emulatortest.With(r, cr)}, nil
			}}
			h := start(t, loadBase(t), proc, nil, up)
			resp, body := do(t, http.MethodPost, h.url+"/mcp", in)
			require.Equal(t, tc.wantCode, resp.StatusCode, body)
			if tc.wantUp != "" {
				require.Equal(t, tc.wantUp, <-up.body)
				return
			}
			lr, ok := h.trace.localReply()
			require.True(t, ok)
			require.Contains(t, lr.Details, "mismatch_between_content_length")
			require.Empty(t, body, "Envoy's immediate response for a refused mutation has no body")
			require.Empty(t, up.got, "upstream never called")
		})
	}
}

func TestHeaderMutations(t *testing.T) {
	tests := []struct {
		name     string
		mutation *extprocv3.HeaderMutation
		wantCode int
		check    func(t *testing.T, r *http.Request)
	}{
		{
			name:     "raw_value sets the header",
			mutation: setHeader("x-policy", "allow"),
			wantCode: 200,
			check:    func(t *testing.T, r *http.Request) { require.Equal(t, "allow", r.Header.Get("X-Policy")) },
		},
		{
			name: "value only yields an empty header",
			mutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
				{Header: &corev3.HeaderValue{Key: "x-policy", Value: "allow"}},
			}},
			wantCode: 200,
			check: func(t *testing.T, r *http.Request) {
				require.Contains(t, r.Header, "X-Policy")
				require.Empty(t, r.Header.Get("X-Policy"))
			},
		},
		{
			name: "value and raw_value is an error",
			mutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
				{Header: &corev3.HeaderValue{Key: "x-policy", Value: "a", RawValue: []byte("b")}},
			}},
			wantCode: 500,
		},
		{
			name: "authority, host and x-envoy changes are ignored",
			mutation: &extprocv3.HeaderMutation{
				SetHeaders: []*corev3.HeaderValueOption{
					{Header: &corev3.HeaderValue{Key: ":authority", RawValue: []byte("evil")}},
					{Header: &corev3.HeaderValue{Key: "host", RawValue: []byte("evil")}},
					{Header: &corev3.HeaderValue{Key: "x-envoy-foo", RawValue: []byte("1")}},
				},
				RemoveHeaders: []string{":path", "host"},
			},
			wantCode: 200,
			check: func(t *testing.T, r *http.Request) {
				require.NotEqual(t, "evil", r.Host)
				require.Empty(t, r.Header.Get("X-Envoy-Foo"))
				require.Equal(t, "/mcp", r.URL.Path)
			},
		},
		{
			name: "append adds a second value; default overwrites",
			mutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
				{Header: &corev3.HeaderValue{Key: "x-a", RawValue: []byte("2")}, Append: wrapperspb.Bool(true)},
				{Header: &corev3.HeaderValue{Key: "x-b", RawValue: []byte("2")}},
			}},
			wantCode: 200,
			check: func(t *testing.T, r *http.Request) {
				require.Equal(t, []string{"1", "2"}, r.Header.Values("X-A"))
				require.Equal(t, []string{"2"}, r.Header.Values("X-B"))
			},
		},
		{
			name:     "invalid characters are an error",
			mutation: setHeader("x-bad", "a\r\nb"),
			wantCode: 500,
		},
		{
			name:     "path rewrite is honoured",
			mutation: setHeader(":path", "/rewritten"),
			wantCode: 200,
			check:    func(t *testing.T, r *http.Request) { require.Equal(t, "/rewritten", r.URL.Path) },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := newEcho()
			proc := &emulatortest.Processor{Handle: func(_ context.Context, _ *emulatortest.Stream, r *extprocv3.ProcessingRequest) (resps, error) {
				if r.GetRequestHeaders() != nil {
					return resps{emulatortest.With(r, &extprocv3.CommonResponse{HeaderMutation: tc.mutation})}, nil
				}
				return cont(r)
			}}
			h := start(t, loadBase(t), proc, nil, up)
			resp, _ := do(t, http.MethodGet, h.url+"/mcp", "", "X-A", "1", "X-B", "1")
			require.Equal(t, tc.wantCode, resp.StatusCode)
			if tc.check != nil {
				tc.check(t, <-up.got)
			}
		})
	}
}

func TestImmediateResponse(t *testing.T) {
	tests := []struct {
		name      string
		on        func(r *extprocv3.ProcessingRequest) bool
		status    int
		wantCode  int
		wantReset bool
	}{
		{name: "on request headers", on: func(r *extprocv3.ProcessingRequest) bool { return r.GetRequestHeaders() != nil }, status: 403, wantCode: 403},
		{name: "on request body", on: func(r *extprocv3.ProcessingRequest) bool { return r.GetRequestBody() != nil }, status: 403, wantCode: 403},
		{name: "status below 200 becomes 200", on: func(r *extprocv3.ProcessingRequest) bool { return r.GetRequestHeaders() != nil }, status: 100, wantCode: 200},
		{name: "on a response chunk after headers went out", on: func(r *extprocv3.ProcessingRequest) bool { return r.GetResponseBody() != nil }, status: 403, wantReset: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := newEcho()
			proc := &emulatortest.Processor{Handle: func(_ context.Context, _ *emulatortest.Stream, r *extprocv3.ProcessingRequest) (resps, error) {
				if tc.on(r) {
					return resps{immediate(tc.status, "denied")}, nil
				}
				return cont(r)
			}}
			h := start(t, loadBase(t), proc, nil, up)
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, h.url+"/mcp", strings.NewReader(`{"id":1}`))
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, rerr := io.ReadAll(resp.Body)
			if tc.wantReset {
				require.Equal(t, 200, resp.StatusCode, "status cannot change once sent")
				require.Error(t, rerr, "client sees an aborted response")
				ev, ok := h.trace.localReply()
				require.True(t, ok)
				require.Equal(t, TraceReset, ev.Kind)
				return
			}
			require.NoError(t, rerr)
			require.Equal(t, tc.wantCode, resp.StatusCode)
			require.Equal(t, "denied", string(b))
			require.Equal(t, "1", resp.Header.Get("X-Blocked"))
			ev, ok := h.trace.localReply()
			require.True(t, ok)
			require.Equal(t, "blocked_by_policy", ev.Details)
			require.Empty(t, up.got, "upstream not called")
			for _, e := range h.trace.events() {
				if e.Kind == TraceProcessingRequest {
					require.Nil(t, e.Message.(*extprocv3.ProcessingRequest).GetResponseHeaders(), "local reply does not go through ext_proc")
				}
			}
		})
	}
}

func TestMessageTimeout(t *testing.T) {
	override := func(d time.Duration) *extprocv3.ProcessingResponse {
		return &extprocv3.ProcessingResponse{OverrideMessageTimeout: durationpb.New(d)}
	}
	tests := []struct {
		name      string
		failOpen  bool
		overrides []time.Duration
		delay     time.Duration
		wantCode  int
	}{
		{name: "timeout gives 504", delay: 3 * time.Second, wantCode: 504},
		{name: "failure_mode_allow passes through", failOpen: true, delay: 3 * time.Second, wantCode: 200},
		{name: "override within max lets a late answer through", overrides: []time.Duration{8 * time.Second}, delay: 500 * time.Millisecond, wantCode: 200},
		{name: "override above max is ignored", overrides: []time.Duration{time.Hour}, delay: 3 * time.Second, wantCode: 504},
		{name: "override below 1ms is ignored", overrides: []time.Duration{time.Microsecond}, delay: 3 * time.Second, wantCode: 504},
		{name: "second override in the same state is ignored", overrides: []time.Duration{300 * time.Millisecond, 8 * time.Second}, delay: 3 * time.Second, wantCode: 504},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := loadBase(t)
			editProc(t, b, func(c *procfv3.ExternalProcessor) {
				c.MessageTimeout = durationpb.New(100 * time.Millisecond)
				c.FailureModeAllow = tc.failOpen
			})
			proc := &emulatortest.Processor{Handle: func(ctx context.Context, st *emulatortest.Stream, r *extprocv3.ProcessingRequest) (resps, error) {
				if r.GetRequestHeaders() == nil {
					return cont(r)
				}
				for _, d := range tc.overrides {
					if err := st.Send(override(d)); err != nil {
						return nil, err
					}
				}
				select {
				case <-time.After(tc.delay):
				case <-ctx.Done():
					return nil, ctx.Err()
				}
				return cont(r)
			}}
			h := start(t, b, proc, nil, nil)
			resp, _ := do(t, http.MethodGet, h.url+"/mcp", "")
			require.Equal(t, tc.wantCode, resp.StatusCode)
			if tc.wantCode == 504 {
				ev, ok := h.trace.localReply()
				require.True(t, ok)
				require.Equal(t, "ext_proc_error_per-message_timeout_exceeded", ev.Details)
			}
		})
	}
}
