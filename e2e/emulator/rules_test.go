package emulator

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	procfv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/stretchr/testify/require"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/mcpguard/mcpguard/e2e/emulator/emulatortest"
)

// trailing is an upstream answering with a body and a trailer.
var trailing = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Trailer", "X-Checksum")
	_, _ = io.WriteString(w, "body")
	w.Header().Set("X-Checksum", "abc")
})

// setRouteProc gives the catch-all route of base.yaml a per-route ext_proc processing mode.
func setRouteProc(t *testing.T, b *bootstrapv3.Bootstrap, pm *procfv3.ProcessingMode) {
	t.Helper()
	editHCM(t, b, func(h *hcmv3.HttpConnectionManager) {
		routes := h.GetRouteConfig().GetVirtualHosts()[0].GetRoutes()
		a, err := anypb.New(&procfv3.ExtProcPerRoute{Override: &procfv3.ExtProcPerRoute_Overrides{
			Overrides: &procfv3.ExtProcOverrides{ProcessingMode: pm},
		}})
		require.NoError(t, err)
		routes[len(routes)-1].TypedPerFilterConfig[filterExtProc] = a
	})
}

// TestModeOverrideBase: a header response's mode_override is merged over the filter's configured
// mode, not a per-route one, and allowed_override_modes is compared with that merged mode.
func TestModeOverrideBase(t *testing.T) {
	respHeadersOverride := func(mo *procfv3.ProcessingMode) *emulatortest.Processor {
		return &emulatortest.Processor{Handle: func(_ context.Context, _ *emulatortest.Stream, r *extprocv3.ProcessingRequest) (resps, error) {
			resp := emulatortest.Continue(r)
			if r.GetResponseHeaders() != nil {
				resp.ModeOverride = mo
			}
			return resps{resp}, nil
		}}
	}
	t.Run("merged over the filter mode, not the route's", func(t *testing.T) {
		b := loadBase(t)
		setRouteProc(t, b, &procfv3.ProcessingMode{
			RequestBodyMode: procfv3.ProcessingMode_BUFFERED, ResponseBodyMode: procfv3.ProcessingMode_STREAMED,
			ResponseTrailerMode: procfv3.ProcessingMode_SEND,
		})
		h := start(t, b, respHeadersOverride(&procfv3.ProcessingMode{
			RequestBodyMode: procfv3.ProcessingMode_BUFFERED, ResponseBodyMode: procfv3.ProcessingMode_STREAMED,
		}), nil, trailing)
		resp, body := do(t, http.MethodGet, h.url+"/mcp", "")
		require.Equal(t, 200, resp.StatusCode)
		require.Equal(t, "body", body)
		got := kinds(h.proc.Streams()[0])
		require.NotContains(t, got, "response_trailers",
			"the DEFAULT trailer mode of the override keeps the filter's SKIP, not the route's SEND: %v", got)
	})
	t.Run("allowed_override_modes lists the merged mode", func(t *testing.T) {
		b := loadBase(t)
		editProc(t, b, func(c *procfv3.ExternalProcessor) {
			merged := mergeModeProto(c.GetProcessingMode(), &procfv3.ProcessingMode{ResponseBodyMode: procfv3.ProcessingMode_NONE})
			c.AllowedOverrideModes = []*procfv3.ProcessingMode{merged}
		})
		h := start(t, b, respHeadersOverride(&procfv3.ProcessingMode{ResponseBodyMode: procfv3.ProcessingMode_NONE}), nil, nil)
		resp, body := do(t, http.MethodGet, h.url+"/mcp", "")
		require.Equal(t, 200, resp.StatusCode)
		require.Equal(t, "ok", body)
		require.Equal(t, []string{"request_headers", "response_headers"}, kinds(h.proc.Streams()[0]),
			"the partial override is allowed because its merge is listed")
	})
}

// TestOverrideTimeoutPerMessage: override_message_timeout may extend each outstanding message once,
// not once per kind of message: two streamed chunks may each be held past message_timeout.
func TestOverrideTimeoutPerMessage(t *testing.T) {
	b := loadBase(t)
	editProc(t, b, func(c *procfv3.ExternalProcessor) { c.MessageTimeout = durationpb.New(100 * time.Millisecond) })
	proc := &emulatortest.Processor{Handle: func(ctx context.Context, st *emulatortest.Stream, r *extprocv3.ProcessingRequest) (resps, error) {
		if r.GetResponseBody() == nil {
			return cont(r)
		}
		if err := st.Send(&extprocv3.ProcessingResponse{OverrideMessageTimeout: durationpb.New(10 * time.Second)}); err != nil {
			return nil, err
		}
		select {
		case <-time.After(400 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return cont(r)
	}}
	// The upstream writes the next event (the last one empty: end of stream) only once the
	// previous chunk was answered, so one message is outstanding at a time: a chunk sent while
	// another is held would re-arm the direction's single timer with message_timeout.
	events := []string{"data: 1\n\n", "data: 2\n\n", ""}
	up := &sse{events: events, next: make(chan struct{})}
	h := start(t, b, proc, nil, up)
	answered := func() int {
		n := 0
		for _, ev := range h.trace.events() {
			if m, ok := ev.Message.(*extprocv3.ProcessingResponse); ok && m.GetResponseBody() != nil {
				n++
			}
		}
		return n
	}
	go func() {
		for want := 1; want <= 2; want++ {
			for answered() < want {
				select {
				case <-time.After(10 * time.Millisecond):
				case <-t.Context().Done():
					return
				}
			}
			select {
			case up.next <- struct{}{}:
			case <-t.Context().Done():
				return
			}
		}
	}()
	resp, body := do(t, http.MethodGet, h.url+"/mcp", "")
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, strings.Join(events, ""), body, "both chunks were extended")
	_, failed := h.trace.localReply()
	require.False(t, failed)
}

// blocked is an upstream that answers only when its request ends; it reports that it did.
type blocked struct{ gone chan struct{} }

func (u *blocked) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
	close(u.gone)
}

// TestUnsolicitedEndsActAtOnce: an immediate response or a stream error from the processor while
// the upstream call is in flight ends the request then: the upstream call is reset and the local
// reply sent, as Envoy's sendLocalReply does.
func TestUnsolicitedEndsActAtOnce(t *testing.T) {
	tests := []struct {
		name        string
		unsolicited func(st *emulatortest.Stream) error
		wantCode    int
		wantDetails string
		wantBody    string
	}{
		{
			name: "immediate response",
			unsolicited: func(st *emulatortest.Stream) error {
				return st.Send(&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
					ImmediateResponse: &extprocv3.ImmediateResponse{
						Status: &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden}, Body: []byte("revoked"), Details: "revoked",
					},
				}})
			},
			wantCode: 403, wantDetails: "revoked", wantBody: "revoked",
		},
		{
			name:        "gRPC error",
			unsolicited: func(*emulatortest.Stream) error { return status.Error(codes.Aborted, "policy reloaded") },
			wantCode:    503, wantDetails: "ext_proc_error_gRPC_error_10{policy_reloaded}",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := loadBase(t)
			editProc(t, b, func(c *procfv3.ExternalProcessor) {
				c.StatusOnError = &typev3.HttpStatus{Code: typev3.StatusCode_ServiceUnavailable}
			})
			up := &blocked{gone: make(chan struct{})}
			proc := &emulatortest.Processor{Handle: func(ctx context.Context, st *emulatortest.Stream, r *extprocv3.ProcessingRequest) (resps, error) {
				if r.GetRequestBody() == nil {
					return cont(r)
				}
				if err := st.Send(emulatortest.Continue(r)); err != nil {
					return nil, err
				}
				select {
				case <-time.After(200 * time.Millisecond): // the upstream call is under way
				case <-ctx.Done():
					return nil, ctx.Err()
				}
				if err := tc.unsolicited(st); err != nil {
					return nil, err
				}
				<-ctx.Done()
				return nil, ctx.Err()
			}}
			h := start(t, b, proc, nil, up)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url+"/mcp", strings.NewReader(`{"id":1}`))
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err, "the local reply comes while the upstream still holds the request")
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tc.wantCode, resp.StatusCode)
			require.Equal(t, tc.wantBody, string(body))
			<-up.gone // the upstream request was reset
			ev, ok := h.trace.localReply()
			require.True(t, ok)
			require.Equal(t, tc.wantDetails, ev.Details)
		})
	}
}

// TestStandaloneModeOverride: a ProcessingResponse carrying only mode_override after
// request_headers (API 1.40) moves a STREAMED request body to FULL_DUPLEX_STREAMED; it answers
// nothing by itself, and is not a spurious message.
func TestStandaloneModeOverride(t *testing.T) {
	b := loadBase(t)
	editProc(t, b, func(c *procfv3.ExternalProcessor) {
		c.ProcessingMode.RequestBodyMode = procfv3.ProcessingMode_STREAMED
	})
	var got []byte
	proc := &emulatortest.Processor{Handle: func(_ context.Context, st *emulatortest.Stream, r *extprocv3.ProcessingRequest) (resps, error) {
		switch {
		case r.GetRequestHeaders() != nil:
			if err := st.Send(&extprocv3.ProcessingResponse{ModeOverride: &procfv3.ProcessingMode{
				RequestBodyMode: procfv3.ProcessingMode_FULL_DUPLEX_STREAMED, RequestTrailerMode: procfv3.ProcessingMode_SEND,
			}}); err != nil {
				return nil, err
			}
			return cont(r)
		case r.GetRequestBody() != nil:
			got = append(got, r.GetRequestBody().GetBody()...)
			if !r.GetRequestBody().GetEndOfStream() {
				return nil, nil
			}
			return resps{emulatortest.With(r, &extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{
				Mutation: &extprocv3.BodyMutation_StreamedResponse{StreamedResponse: &extprocv3.StreamedBodyResponse{
					Body: []byte(strings.ToUpper(string(got))), EndOfStream: true,
				}},
			}})}, nil
		}
		return cont(r)
	}}
	up := newEcho()
	h := start(t, b, proc, nil, up)
	resp, _ := do(t, http.MethodPost, h.url+"/mcp", `{"id":1}`)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, `{"ID":1}`, <-up.body, "the body went through the server as FULL_DUPLEX_STREAMED")
}

// TestExtAuthzRules: dynamic metadata as Envoy stores it and headers_to_remove matched lower-cased.
func TestExtAuthzRules(t *testing.T) {
	md, err := structpb.NewStruct(map[string]any{"sub": "agent-1"})
	require.NoError(t, err)
	az := &emulatortest.Authorizer{Decide: func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		return &authv3.CheckResponse{
			Status:          &rpcstatus.Status{},
			DynamicMetadata: md,
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
				HeadersToRemove: []string{"X-Spoofed-Identity", "Host"},
			}},
		}, nil
	}}
	up := newEcho()
	h := start(t, loadBase(t), nil, az, up)
	resp, _ := do(t, http.MethodPost, h.url+"/mcp", `{"id":1}`, "X-Spoofed-Identity", "admin")
	require.Equal(t, 200, resp.StatusCode)
	r := <-up.got
	require.Empty(t, r.Header.Get("X-Spoofed-Identity"), "a mixed-case name removes the lower-cased header")
	require.NotEmpty(t, r.Host)
	for _, m := range h.proc.Streams()[0] {
		got := m.GetMetadataContext().GetFilterMetadata()[nsExtAuthz]
		require.Equal(t, "agent-1", got.GetFields()["sub"].GetStringValue())
		d, ok := got.GetFields()["ext_authz_duration"].GetKind().(*structpb.Value_NumberValue)
		require.True(t, ok, "an allowing Check with metadata adds its duration in ms: %v", got)
		require.GreaterOrEqual(t, d.NumberValue, 0.0)
	}
}

// TestMutationHeaderLimits: a header mutation that takes the headers over the HCM limits is an
// invalid mutation (status_on_error), as mutation_utils.cc checks after applying it.
func TestMutationHeaderLimits(t *testing.T) {
	tests := []struct {
		name   string
		set    []*corev3.HeaderValueOption
		remove []string
		limit  func(*hcmv3.HttpConnectionManager)
	}{
		{
			name:  "over max_request_headers_kb",
			set:   []*corev3.HeaderValueOption{rawHV("x-big", strings.Repeat("a", 2<<10))},
			limit: func(h *hcmv3.HttpConnectionManager) { h.MaxRequestHeadersKb = wrapperspb.UInt32(2) },
		},
		{
			name: "over max_headers_count",
			set:  manyHeaders(12),
			limit: func(h *hcmv3.HttpConnectionManager) {
				// The request itself has fewer (the emulator checks the count only after mutations).
				h.CommonHttpProtocolOptions = &corev3.HttpProtocolOptions{MaxHeadersCount: wrapperspb.UInt32(12)}
			},
		},
		{
			// responseHeaderSizeCheck: more removals than max_headers_count is refused before any
			// is applied, although removing absent headers would leave the map as it was.
			name:   "more removals than max_headers_count",
			remove: removeNames(13),
			limit: func(h *hcmv3.HttpConnectionManager) {
				h.CommonHttpProtocolOptions = &corev3.HttpProtocolOptions{MaxHeadersCount: wrapperspb.UInt32(12)}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := loadBase(t)
			editHCM(t, b, tc.limit)
			proc := &emulatortest.Processor{Handle: func(_ context.Context, _ *emulatortest.Stream, r *extprocv3.ProcessingRequest) (resps, error) {
				if r.GetRequestHeaders() != nil {
					return resps{emulatortest.With(r, &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: tc.set, RemoveHeaders: tc.remove}})}, nil
				}
				return cont(r)
			}}
			up := newEcho()
			h := start(t, b, proc, nil, up)
			resp, body := do(t, http.MethodGet, h.url+"/mcp", "")
			require.Equal(t, 500, resp.StatusCode, body)
			require.Empty(t, up.got)
			ev, ok := h.trace.localReply()
			require.True(t, ok)
			require.Equal(t, "ext_proc_error_invalid_mutation", ev.Details)
		})
	}
	t.Run("within the limits", func(t *testing.T) {
		h := start(t, loadBase(t), &emulatortest.Processor{Handle: func(_ context.Context, _ *emulatortest.Stream, r *extprocv3.ProcessingRequest) (resps, error) {
			if r.GetRequestHeaders() != nil {
				return resps{emulatortest.With(r, &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{
					SetHeaders: []*corev3.HeaderValueOption{rawHV("x-big", strings.Repeat("a", 2<<10))},
				}})}, nil
			}
			return cont(r)
		}}, nil, nil)
		resp, _ := do(t, http.MethodGet, h.url+"/mcp", "")
		require.Equal(t, 200, resp.StatusCode, "the 60 KiB default holds it")
	})
	t.Run("as many removals as max_headers_count", func(t *testing.T) {
		b := loadBase(t)
		editHCM(t, b, func(h *hcmv3.HttpConnectionManager) {
			h.CommonHttpProtocolOptions = &corev3.HttpProtocolOptions{MaxHeadersCount: wrapperspb.UInt32(12)}
		})
		h := start(t, b, &emulatortest.Processor{Handle: func(_ context.Context, _ *emulatortest.Stream, r *extprocv3.ProcessingRequest) (resps, error) {
			if r.GetRequestHeaders() != nil {
				return resps{emulatortest.With(r, &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{RemoveHeaders: removeNames(12)}})}, nil
			}
			return cont(r)
		}}, nil, nil)
		resp, _ := do(t, http.MethodGet, h.url+"/mcp", "")
		require.Equal(t, 200, resp.StatusCode)
	})
}

func removeNames(n int) []string {
	var out []string
	for i := range n {
		out = append(out, "x-absent-"+strconv.Itoa(i))
	}
	return out
}

func manyHeaders(n int) []*corev3.HeaderValueOption {
	var out []*corev3.HeaderValueOption
	for i := range n {
		out = append(out, rawHV("x-h"+strconv.Itoa(i), "v"))
	}
	return out
}

func rawHV(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, RawValue: []byte(v)}}
}
