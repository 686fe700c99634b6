package emulator

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	procfv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/mcpguard/mcpguard/e2e/emulator/emulatortest"
)

// sse is an upstream that writes one event per step, flushing each, and waits for next before the
// following one, so tests can prove an event reaches the client while the upstream is still open.
type sse struct {
	events []string
	next   chan struct{}
}

func (s *sse) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	for i, ev := range s.events {
		if i > 0 {
			select {
			case <-s.next:
			case <-r.Context().Done():
				return
			}
		}
		_, _ = io.WriteString(w, ev)
		w.(http.Flusher).Flush()
	}
}

func mask(b []byte) []byte { return bytes.ReplaceAll(b, []byte("secret"), []byte("******")) }

func maskingProc() *emulatortest.Processor {
	return &emulatortest.Processor{Handle: func(_ context.Context, _ *emulatortest.Stream, r *extprocv3.ProcessingRequest) (resps, error) {
		if b := r.GetResponseBody(); b != nil {
			return resps{emulatortest.With(r, &extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{
				Mutation: &extprocv3.BodyMutation_Body{Body: mask(b.GetBody())},
			}})}, nil
		}
		return cont(r)
	}}
}

func TestStreamedSSE(t *testing.T) {
	events := []string{"data: {\"a\":\"secret\"}\n\n", "data: {\"b\":2}\n\n", "data: {\"c\":\"secret\"}\n\n"}
	up := &sse{events: events, next: make(chan struct{})}
	h := start(t, loadBase(t), maskingProc(), nil, up)

	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, h.url+"/mcp", strings.NewReader(`{"id":1}`))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	require.Equal(t, []string{"chunked"}, resp.TransferEncoding)
	rd := bufio.NewReader(resp.Body)
	for i, ev := range events {
		if i > 0 {
			up.next <- struct{}{} // the upstream sends the next event only after the client saw this one
		}
		var got strings.Builder
		for got.Len() < len(ev) {
			line, err := rd.ReadString('\n')
			require.NoError(t, err)
			got.WriteString(line)
		}
		require.Equal(t, string(mask([]byte(ev))), got.String())
	}
	rest, err := io.ReadAll(rd)
	require.NoError(t, err)
	require.Empty(t, rest)
	s := h.proc.Streams()[0]
	require.Equal(t, "response_body", kinds(s)[len(s)-1])
}

func TestFullDuplexResponse(t *testing.T) {
	b := loadBase(t)
	editProc(t, b, func(c *procfv3.ExternalProcessor) {
		c.ProcessingMode.ResponseBodyMode = procfv3.ProcessingMode_FULL_DUPLEX_STREAMED
		c.ProcessingMode.ResponseTrailerMode = procfv3.ProcessingMode_SEND
	})
	// The server holds everything and answers with two streamed bodies after the last chunk (M:N).
	var mu sync.Mutex
	var buf []byte
	proc := &emulatortest.Processor{Handle: func(_ context.Context, _ *emulatortest.Stream, r *extprocv3.ProcessingRequest) (resps, error) {
		rb := r.GetResponseBody()
		if rb == nil {
			return cont(r)
		}
		mu.Lock()
		defer mu.Unlock()
		buf = append(buf, rb.GetBody()...)
		if !rb.GetEndOfStream() {
			return nil, nil
		}
		half := len(buf) / 2
		streamed := func(b []byte, eos bool) *extprocv3.ProcessingResponse {
			return emulatortest.With(r, &extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_StreamedResponse{
				StreamedResponse: &extprocv3.StreamedBodyResponse{Body: mask(b), EndOfStream: eos},
			}}})
		}
		return resps{streamed(buf[:half], false), streamed(buf[half:], true)}, nil
	}}
	events := []string{"data: secret-1\n\n", "data: secret-2\n\n"}
	up := &sse{events: events, next: make(chan struct{}, 1)}
	up.next <- struct{}{}
	h := start(t, b, proc, nil, up)
	resp, body := do(t, http.MethodGet, h.url+"/mcp", "")
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "data: ******-1\n\ndata: ******-2\n\n", body)
}

func TestModeOverride(t *testing.T) {
	tests := []struct {
		name      string
		inBody    bool // send the override on a body response instead of the header response
		allowed   []*procfv3.ProcessingMode
		wantKinds []string
	}{
		{
			name:      "response headers switch the body to NONE",
			wantKinds: []string{"request_headers", "response_headers"},
		},
		{
			name:      "an override not in allowed_override_modes is ignored",
			allowed:   []*procfv3.ProcessingMode{{ResponseBodyMode: procfv3.ProcessingMode_BUFFERED}},
			wantKinds: []string{"request_headers", "response_headers", "response_body"},
		},
		{
			name:      "an override in a body response is ignored",
			inBody:    true,
			wantKinds: []string{"request_headers", "response_headers", "response_body", "response_body"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := loadBase(t)
			editProc(t, b, func(c *procfv3.ExternalProcessor) { c.AllowedOverrideModes = tc.allowed })
			off := &procfv3.ProcessingMode{ResponseBodyMode: procfv3.ProcessingMode_NONE}
			proc := &emulatortest.Processor{Handle: func(_ context.Context, _ *emulatortest.Stream, r *extprocv3.ProcessingRequest) (resps, error) {
				resp := emulatortest.Continue(r)
				if (!tc.inBody && r.GetResponseHeaders() != nil) || (tc.inBody && r.GetResponseBody() != nil) {
					resp.ModeOverride = off
				}
				return resps{resp}, nil
			}}
			events := []string{"data: 1\n\n", "data: 2\n\n"}
			up := &sse{events: events, next: make(chan struct{}, 1)}
			up.next <- struct{}{}
			if tc.inBody {
				up.next = make(chan struct{})
				go func() { time.Sleep(50 * time.Millisecond); close(up.next) }()
			}
			h := start(t, b, proc, nil, up)
			resp, body := do(t, http.MethodGet, h.url+"/mcp", "")
			require.Equal(t, 200, resp.StatusCode)
			require.Equal(t, strings.Join(events, ""), body)
			got := kinds(h.proc.Streams()[0])
			if tc.inBody {
				require.GreaterOrEqual(t, len(got), 3)
				require.Equal(t, "response_body", got[len(got)-1], "body messages continue after an ignored override")
				return
			}
			if tc.wantKinds[len(tc.wantKinds)-1] != "response_body" {
				require.Equal(t, tc.wantKinds, got, "no body messages after the override")
				return
			}
			// Upstream reads may coalesce or not: any further messages are response_body chunks.
			require.GreaterOrEqual(t, len(got), len(tc.wantKinds))
			require.Equal(t, tc.wantKinds, got[:len(tc.wantKinds)])
			for _, k := range got[len(tc.wantKinds):] {
				require.Equal(t, "response_body", k)
			}
		})
	}
}

func TestServerClose(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		failOpen bool
		wantCode int
		wantBody string
	}{
		{name: "close OK mid-stream passes the rest through", err: emulatortest.ErrClose, wantCode: 200, wantBody: "data: secret\n\n"},
		{name: "close with an error fails closed", err: status.Error(codes.Internal, "boom"), wantCode: 500},
		{name: "close with an error and failure_mode_allow passes through", err: status.Error(codes.Internal, "boom"), failOpen: true, wantCode: 200, wantBody: "data: secret\n\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := loadBase(t)
			editProc(t, b, func(c *procfv3.ExternalProcessor) { c.FailureModeAllow = tc.failOpen })
			proc := &emulatortest.Processor{Handle: func(_ context.Context, _ *emulatortest.Stream, r *extprocv3.ProcessingRequest) (resps, error) {
				if r.GetRequestBody() != nil {
					return nil, tc.err
				}
				return cont(r)
			}}
			up := &sse{events: []string{"data: secret\n\n"}}
			h := start(t, b, proc, nil, up)
			resp, body := do(t, http.MethodPost, h.url+"/mcp", `{"id":1}`)
			require.Equal(t, tc.wantCode, resp.StatusCode)
			if tc.wantCode != 200 {
				ev, ok := h.trace.localReply()
				require.True(t, ok)
				require.Equal(t, "ext_proc_error_gRPC_error_13{boom}", ev.Details)
				return
			}
			require.Equal(t, tc.wantBody, body)
			require.Equal(t, []string{"request_headers", "request_body"}, kinds(h.proc.Streams()[0]), "no messages after the close")
		})
	}
}

func TestSpuriousResponse(t *testing.T) {
	tests := []struct {
		name     string
		answer   func(r *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse
		failOpen bool
		wantCode int
	}{
		{
			name: "response type does not match the request",
			answer: func(r *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}}
			},
			wantCode: 500,
		},
		{
			name: "streamed_response outside FULL_DUPLEX",
			answer: func(r *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{
					BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_StreamedResponse{StreamedResponse: &extprocv3.StreamedBodyResponse{}}},
				}}}}
			},
			wantCode: 500,
		},
		{
			name: "failure_mode_allow ignores the processor",
			answer: func(r *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}}
			},
			failOpen: true,
			wantCode: 200,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := loadBase(t)
			editProc(t, b, func(c *procfv3.ExternalProcessor) { c.FailureModeAllow = tc.failOpen })
			proc := &emulatortest.Processor{Handle: func(_ context.Context, _ *emulatortest.Stream, r *extprocv3.ProcessingRequest) (resps, error) {
				if r.GetRequestBody() != nil {
					return resps{tc.answer(r)}, nil
				}
				return cont(r)
			}}
			h := start(t, b, proc, nil, nil)
			resp, _ := do(t, http.MethodPost, h.url+"/mcp", `{"id":1}`)
			require.Equal(t, tc.wantCode, resp.StatusCode)
			if tc.wantCode == 500 {
				ev, _ := h.trace.localReply()
				require.Equal(t, "ext_proc_error_spurious_message", ev.Details)
			}
		})
	}
}

func TestCircuitBreaker(t *testing.T) {
	const limit = 2
	b := loadBase(t)
	b.StaticResources.Clusters[0].CircuitBreakers.Thresholds[0].MaxRequests = wrapperspb.UInt32(limit)
	// Without ext_authz: otherwise the third request's Check would overflow the shared cluster first.
	editHCM(t, b, func(h *hcmv3.HttpConnectionManager) { h.HttpFilters = h.HttpFilters[1:] })
	release := make(chan struct{})
	held := make(chan struct{}, limit)
	proc := &emulatortest.Processor{Handle: func(ctx context.Context, _ *emulatortest.Stream, r *extprocv3.ProcessingRequest) (resps, error) {
		if r.GetRequestHeaders() != nil {
			held <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return cont(r)
	}}
	h := start(t, b, proc, nil, nil)
	var wg sync.WaitGroup
	codesGot := make(chan int, limit)
	for range limit {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, h.url+"/mcp", nil)
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				_ = resp.Body.Close()
				codesGot <- resp.StatusCode
			}
		}()
	}
	for range limit {
		<-held
	}
	resp, _ := do(t, http.MethodGet, h.url+"/mcp", "")
	require.Equal(t, 500, resp.StatusCode)
	ev, ok := h.trace.localReply()
	require.True(t, ok)
	require.Contains(t, ev.Details, "overflow")
	require.Contains(t, ev.Details, "ext_proc_error_gRPC_error_14")
	close(release)
	wg.Wait()
	close(codesGot)
	for c := range codesGot {
		require.Equal(t, 200, c)
	}
}

func TestReceivingNamespaces(t *testing.T) {
	md, err := structpb.NewStruct(map[string]any{
		"mcp.policy": map[string]any{"decision": "allow"},
		"other":      map[string]any{"x": "y"},
	})
	require.NoError(t, err)
	proc := &emulatortest.Processor{Handle: func(_ context.Context, _ *emulatortest.Stream, r *extprocv3.ProcessingRequest) (resps, error) {
		resp := emulatortest.Continue(r)
		if r.GetRequestHeaders() != nil {
			resp.DynamicMetadata = md
		}
		return resps{resp}, nil
	}}
	b := loadBase(t)
	editProc(t, b, func(c *procfv3.ExternalProcessor) {
		c.MetadataOptions.ForwardingNamespaces.Untyped = append(c.MetadataOptions.ForwardingNamespaces.Untyped, "mcp.policy", "other")
	})
	h := start(t, b, proc, nil, nil)
	resp, _ := do(t, http.MethodGet, h.url+"/mcp", "")
	require.Equal(t, 200, resp.StatusCode)
	s := h.proc.Streams()[0]
	last := s[len(s)-1].GetMetadataContext().GetFilterMetadata()
	require.Equal(t, "allow", last["mcp.policy"].GetFields()["decision"].GetStringValue())
	require.NotContains(t, last, "other", "only receiving_namespaces are written")
}

// TestRequestTrailersWithoutBodyProcessing: with request body mode NONE and request trailers SEND,
// the body goes upstream unseen and the trailers still reach the processor after it (Envoy sends
// request_trailers whatever the body mode); a passing answer lets the request complete.
func TestRequestTrailersWithoutBodyProcessing(t *testing.T) {
	up := newUpstream()
	h := envoyRun(t, envoyProcBootstrap(t, func(c *procfv3.ExternalProcessor) {
		c.ProcessingMode = modes(func(m *procfv3.ProcessingMode) { m.RequestTrailerMode, m.ResponseHeaderMode = send, skip })
	}), script{"request_trailers": func(r *extprocv3.ProcessingRequest) (resps, error) {
		if v, _ := header(&extprocv3.HttpHeaders{Headers: r.GetRequestTrailers().GetTrailers()}, "x-trailer-foo"); v != "yes" {
			return nil, status.Errorf(codes.InvalidArgument, "x-trailer-foo = %q", v)
		}
		return resps{withTrailers(r, setHdrs("x-trailer-bar", "added"))}, nil
	}}.processor(), up)
	r := h.send(t, request{method: http.MethodPost, body: str("0123456789"), trailer: map[string]string{"x-trailer-foo": "yes"}})
	require.Equal(t, 200, r.status)
	require.Equal(t, "0123456789", up.received(t).body)
	require.Equal(t, []string{"request_headers", "request_trailers"}, h.messages())
}
