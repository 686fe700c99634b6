package emulator

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authzfv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/stretchr/testify/require"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/mcpguard/mcpguard/e2e/emulator/emulatortest"
)

func hv(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}}
}

func TestExtAuthz(t *testing.T) {
	identity, err := structpb.NewStruct(map[string]any{"sub": "agent-1"})
	require.NoError(t, err)
	allow := &authv3.CheckResponse{
		Status:          &rpcstatus.Status{},
		DynamicMetadata: identity,
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers:              []*corev3.HeaderValueOption{hv("x-identity", "agent-1")},
			HeadersToRemove:      []string{"x-spoofed", ":path", "host"},
			ResponseHeadersToAdd: []*corev3.HeaderValueOption{hv("x-authz", "ok")},
		}},
	}
	deny := &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(codes.PermissionDenied)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode_Unauthorized},
			Headers: []*corev3.HeaderValueOption{hv("www-authenticate", `Bearer resource_metadata="x"`)},
			Body:    "unauthorized",
		}},
	}
	tests := []struct {
		name       string
		decide     func(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error)
		failOpen   bool
		wantCode   int
		wantProc   bool
		wantHeader string
	}{
		{name: "allow mutates headers and forwards metadata", decide: func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) { return allow, nil }, wantCode: 200, wantProc: true},
		{name: "deny is a local reply and skips ext_proc", decide: func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) { return deny, nil }, wantCode: 401},
		{name: "error gives 403", decide: func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
			return nil, status.Error(codes.Internal, "down")
		}, wantCode: 403},
		{name: "timeout gives 403", decide: func(ctx context.Context, _ *authv3.CheckRequest) (*authv3.CheckResponse, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}, wantCode: 403},
		{name: "error with failure_mode_allow continues and marks the request", decide: func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
			return nil, errors.New("down")
		}, failOpen: true, wantCode: 200, wantProc: true, wantHeader: "x-envoy-auth-failure-mode-allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := loadBase(t)
			editAuthz(t, b, func(c *authzfv3.ExtAuthz) {
				// Long enough for the first Check to reach the server on a loaded machine (the
				// connection is dialled then): a call that times out before it reaches the server
				// would leave nothing to inspect below.
				c.GetGrpcService().Timeout = durationpb.New(time.Second)
				c.FailureModeAllow = tc.failOpen
				c.FailureModeAllowHeaderAdd = tc.failOpen
			})
			type seen struct {
				req      *authv3.CheckRequest
				deadline bool
			}
			calls := make(chan seen, 1)
			az := &emulatortest.Authorizer{Decide: func(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
				_, dl := ctx.Deadline()
				calls <- seen{req, dl}
				return tc.decide(ctx, req)
			}}
			up := newEcho()
			h := start(t, b, nil, az, up)
			resp, body := do(t, http.MethodPost, h.url+"/mcp?q=1", `{"id":1}`, "X-Spoofed", "1", "X-Dup", "a", "Authorization", "Bearer t")
			require.Equal(t, tc.wantCode, resp.StatusCode, body)
			call := <-calls
			got := call.req
			require.True(t, call.deadline, "Check carries the grpc_service.timeout deadline")

			hr := got.GetAttributes().GetRequest().GetHttp()
			require.Equal(t, "/mcp?q=1", hr.GetPath())
			require.Equal(t, http.MethodPost, hr.GetMethod())
			require.Equal(t, "http", hr.GetScheme())
			require.Equal(t, "HTTP/1.1", hr.GetProtocol())
			require.NotEmpty(t, hr.GetId())
			require.Equal(t, hr.GetId(), hr.GetHeaders()["x-request-id"])
			require.Equal(t, "Bearer t", hr.GetHeaders()["authorization"])
			require.Equal(t, "/mcp?q=1", hr.GetHeaders()[":path"])
			require.Equal(t, "mcp", got.GetAttributes().GetContextExtensions()["route"])
			require.Equal(t, "127.0.0.1", got.GetAttributes().GetSource().GetAddress().GetSocketAddress().GetAddress())
			require.NotNil(t, got.GetAttributes().GetRequest().GetTime())

			streams := h.proc.Streams()
			if !tc.wantProc {
				require.Empty(t, streams, "ext_proc not invoked")
				require.Empty(t, up.got)
				if tc.wantCode == 401 {
					require.Equal(t, "unauthorized", body)
					require.Equal(t, `Bearer resource_metadata="x"`, resp.Header.Get("Www-Authenticate"))
				}
				return
			}
			r := <-up.got
			if tc.wantHeader != "" {
				require.Equal(t, "true", r.Header.Get(tc.wantHeader))
				return
			}
			require.Equal(t, "agent-1", r.Header.Get("X-Identity"))
			require.Empty(t, r.Header.Get("X-Spoofed"))
			require.Equal(t, "ok", resp.Header.Get("X-Authz"))
			v, ok := header(streams[0][0].GetRequestHeaders(), "x-identity")
			require.True(t, ok, "ext_proc sees ext_authz's headers")
			require.Equal(t, "agent-1", v)
			for _, m := range streams[0] {
				md := m.GetMetadataContext().GetFilterMetadata()[nsExtAuthz]
				require.Equal(t, "agent-1", md.GetFields()["sub"].GetStringValue())
			}
		})
	}
}

func TestRouterAndLimits(t *testing.T) {
	t.Run("per-route disabled filters", func(t *testing.T) {
		az := &emulatortest.Authorizer{Decide: func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
			return nil, errors.New("must not be called")
		}}
		h := start(t, loadBase(t), nil, az, nil)
		resp, body := do(t, http.MethodGet, h.url+"/open", "")
		require.Equal(t, 200, resp.StatusCode)
		require.Equal(t, "ok", body)
		require.Equal(t, "2", resp.Header.Get("Content-Length"), "content-length kept without processing")
		require.Empty(t, h.proc.Streams())
	})
	t.Run("request over the buffer limit is 413", func(t *testing.T) {
		h := start(t, loadBase(t), nil, nil, newEcho())
		resp, _ := do(t, http.MethodPost, h.url+"/mcp", strings.Repeat("x", 70000))
		require.Equal(t, 413, resp.StatusCode)
	})
	t.Run("upstream connect failure is 503", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		dead := ln.Addr().String()
		require.NoError(t, ln.Close())
		b := loadBase(t)
		grpcAddr := emulatortest.Serve(t, &emulatortest.Processor{}, &emulatortest.Authorizer{})
		e, err := New(b, Options{Listen: "127.0.0.1:0", Clusters: map[string]string{"mcpguard_grpc": grpcAddr, "mcp_upstream": dead}})
		require.NoError(t, err)
		require.NoError(t, e.Start(t.Context()))
		t.Cleanup(func() { require.NoError(t, e.Close(context.Background())) })
		resp, _ := do(t, http.MethodGet, "http://"+e.Addr()+"/mcp", "")
		require.Equal(t, 503, resp.StatusCode)
	})
	t.Run("downstream disconnect cancels the gRPC stream", func(t *testing.T) {
		entered := make(chan struct{})
		proc := &emulatortest.Processor{Handle: func(ctx context.Context, _ *emulatortest.Stream, r *extprocv3.ProcessingRequest) (resps, error) {
			if r.GetRequestHeaders() != nil {
				close(entered)
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return cont(r)
		}}
		h := start(t, loadBase(t), proc, nil, nil)
		ctx, cancel := context.WithCancel(t.Context())
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url+"/mcp", nil)
		require.NoError(t, err)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				_ = resp.Body.Close()
			}
		}()
		<-entered
		cancel()
		<-done
		require.Eventually(t, func() bool {
			ended, cancelled := h.proc.Ended()
			return ended == 1 && cancelled == 1
		}, 10*time.Second, 10*time.Millisecond)
	})
	t.Run("domains * match any host", func(t *testing.T) {
		b := loadBase(t)
		h := start(t, b, nil, nil, nil)
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, h.url+"/mcp", nil)
		require.NoError(t, err)
		req.Host = "example.com"
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, 200, resp.StatusCode)
	})
}
