package emulator

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authzfv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/stretchr/testify/require"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/mcpguard/mcpguard/e2e/emulator/emulatortest"
)

// Scenarios of Envoy's test/extensions/filters/http/ext_authz/ext_authz_integration_test.cc
// (ExtAuthzGrpcIntegrationTest.<Name>), each with the outcome Envoy's test expects. Envoy's fixture
// configures allowed_headers, with_request_body and decoder_header_mutation_rules, which the
// emulator refuses; the scenarios below do not depend on them (every header is sent, no body). The
// HTTP-service fixtures are not expressible (README.md).

// envoyAuthzBootstrap is base.yaml with ext_proc out of the chain and ext_authz as Envoy's gRPC
// fixture sets it (failure_mode_allow and its header together, a long Check deadline), then edited.
func envoyAuthzBootstrap(t *testing.T, edit func(*authzfv3.ExtAuthz)) *bootstrapv3.Bootstrap {
	t.Helper()
	b := loadBase(t)
	editHCM(t, b, func(h *hcmv3.HttpConnectionManager) {
		h.HttpFilters = append(h.GetHttpFilters()[:1:1], h.GetHttpFilters()[2:]...)
		for _, vh := range h.GetRouteConfig().GetVirtualHosts() {
			for _, r := range vh.GetRoutes() {
				delete(r.GetTypedPerFilterConfig(), "envoy.filters.http.ext_proc")
			}
		}
	})
	editAuthz(t, b, func(c *authzfv3.ExtAuthz) {
		c.GetGrpcService().Timeout = durationpb.New(300 * time.Second)
		if edit != nil {
			edit(c)
		}
		c.FailureModeAllowHeaderAdd = c.GetFailureModeAllow()
	})
	return b
}

// authzUpstream answers as waitForSuccessfulUpstreamResponse: 200, replaceable, replaceable2 and a
// cookie, and 512 bytes of 'a'.
func authzUpstream() *fakeUpstream {
	u := newUpstream()
	u.body = strings.Repeat("a", 512)
	return u
}

type authzHeaders struct {
	*fakeUpstream
}

func (u authzHeaders) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Replaceable", "set-by-upstream")
	w.Header().Set("Replaceable2", "set-by-upstream")
	w.Header().Set("Set-Cookie", "cookie1=snickerdoodle")
	u.fakeUpstream.ServeHTTP(w, r)
}

func opt(k, v string, append *bool, action corev3.HeaderValueOption_HeaderAppendAction) *corev3.HeaderValueOption {
	o := &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}, AppendAction: action}
	if append != nil {
		o.Append = wrapperspb.Bool(*append)
	}
	return o
}

var (
	appendTrue  = ptr(true)
	appendFalse = ptr(false)
)

func okCheck(ok *authv3.OkHttpResponse) func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		return &authv3.CheckResponse{Status: &rpcstatus.Status{}, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok}}, nil
	}
}

func neverAnswer(ctx context.Context, _ *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func startAuthz(t *testing.T, b *bootstrapv3.Bootstrap, decide func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error), up http.Handler) *harness {
	t.Helper()
	return start(t, b, &emulatortest.Processor{}, &emulatortest.Authorizer{Decide: decide}, up)
}

// ExtAuthzGrpcIntegrationTest.SendHeadersToAddAndToAppendToUpstream: the OK response overwrites
// header1, appends to header2, removes remove-me, and sets then appends `multiple` → upstream sees
// header1 = header1-replaced, header2 = header2,header2-appended, multiple =
// multiple-first,multiple-second, no remove-me; downstream 200 with the 512-byte body.
func TestEnvoyExtAuthz_SendHeadersToAddAndToAppendToUpstream(t *testing.T) {
	up := authzUpstream()
	h := startAuthz(t, envoyAuthzBootstrap(t, nil), okCheck(&authv3.OkHttpResponse{
		Headers: []*corev3.HeaderValueOption{
			opt("header1", "header1-replaced", appendFalse, 0),
			opt("header2", "header2-appended", appendTrue, 0),
			opt("multiple", "multiple-first", appendFalse, 0),
			opt("multiple", "multiple-second", appendTrue, 0),
		},
		HeadersToRemove: []string{"remove-me"},
	}), authzHeaders{up})
	r := h.send(t, request{method: http.MethodPost, path: "/test", body: str("abcd"), header: map[string]string{
		"header1": "header1", "header2": "header2", "remove-me": "upstream-should-not-see-me",
	}})
	require.Equal(t, 200, r.status)
	require.Len(t, r.body, 512)
	got := up.received(t)
	require.Equal(t, "header1-replaced", strings.Join(got.header.Values("Header1"), ","))
	require.Equal(t, "header2,header2-appended", strings.Join(got.header.Values("Header2"), ","))
	require.Equal(t, "multiple-first,multiple-second", strings.Join(got.header.Values("Multiple"), ","))
	require.Empty(t, got.header.Values("Remove-Me"))
	require.Equal(t, "abcd", got.body)
}

// ExtAuthzGrpcIntegrationTest.TimeoutFailClosed: Check deadline 1 ms, no answer, failure_mode_allow
// false → downstream 403.
func TestEnvoyExtAuthz_TimeoutFailClosed(t *testing.T) {
	up := authzUpstream()
	h := startAuthz(t, envoyAuthzBootstrap(t, func(c *authzfv3.ExtAuthz) {
		c.GetGrpcService().Timeout = durationpb.New(time.Millisecond)
	}), neverAnswer, authzHeaders{up})
	require.Equal(t, 403, h.send(t, request{method: http.MethodPost, path: "/test", body: str("")}).status)
	up.notReached(t)
}

// ExtAuthzGrpcIntegrationTest.TimeoutFailOpen: the same with failure_mode_allow (and its header) →
// proxied, the upstream sees x-envoy-auth-failure-mode-allowed: true, downstream 200.
func TestEnvoyExtAuthz_TimeoutFailOpen(t *testing.T) {
	up := authzUpstream()
	h := startAuthz(t, envoyAuthzBootstrap(t, func(c *authzfv3.ExtAuthz) {
		c.GetGrpcService().Timeout = durationpb.New(time.Millisecond)
		c.FailureModeAllow = true
	}), neverAnswer, authzHeaders{up})
	require.Equal(t, 200, h.send(t, request{method: http.MethodPost, path: "/test", body: str("")}).status)
	require.Equal(t, "true", up.received(t).header.Get("X-Envoy-Auth-Failure-Mode-Allowed"))
}

// ExtAuthzGrpcIntegrationTest.GoogleAsyncClientCreation (EnvoyGrpc side): two requests on one
// downstream connection each get their own Check, a POST to
// /envoy.service.auth.v3.Authorization/Check with content-type application/grpc, and both pass
// with their whole body upstream.
func TestEnvoyExtAuthz_GoogleAsyncClientCreation(t *testing.T) {
	var mu sync.Mutex
	var methods, ctypes []string
	up := authzUpstream()
	h := startAuthz(t, envoyAuthzBootstrap(t, nil), func(ctx context.Context, _ *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		m, _ := grpc.Method(ctx)
		md, _ := metadata.FromIncomingContext(ctx)
		mu.Lock()
		methods = append(methods, m)
		ctypes = append(ctypes, strings.Join(md.Get("content-type"), ","))
		mu.Unlock()
		return &authv3.CheckResponse{Status: &rpcstatus.Status{}}, nil
	}, authzHeaders{up})
	for _, body := range []string{"abcd", "abcdefgh"} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, h.url+"/test", strings.NewReader(body))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, 200, resp.StatusCode)
		require.Len(t, b, 512)
		require.Equal(t, body, up.received(t).body)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"/envoy.service.auth.v3.Authorization/Check", "/envoy.service.auth.v3.Authorization/Check"}, methods)
	require.Equal(t, []string{"application/grpc", "application/grpc"}, ctypes)
}

// ExtAuthzGrpcIntegrationTest.FailureModeAllowNonUtf8 (RawHeaders variant): failure_mode_allow, a
// header whose value is not UTF-8; the Check still succeeds and its response_headers_to_add apply →
// 200, set-cookie cookie1 and cookie2, downstream2 and replaceable from ext_authz. (The
// LegacyHeaders variant is not expressible: a proto3 string cannot carry the bytes, see README.md.)
func TestEnvoyExtAuthz_FailureModeAllowNonUtf8(t *testing.T) {
	bad := "valid_prefix\xc3(valid_suffix"
	seen := make(chan string, 1)
	up := authzUpstream()
	b := envoyAuthzBootstrap(t, func(c *authzfv3.ExtAuthz) {
		c.FailureModeAllow = true
		c.EncodeRawHeaders = true
	})
	h := startAuthz(t, b, func(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		for _, hv := range req.GetAttributes().GetRequest().GetHttp().GetHeaderMap().GetHeaders() {
			if hv.GetKey() == "x-bypass" {
				seen <- string(hv.GetRawValue())
			}
		}
		return okCheck(&authv3.OkHttpResponse{ResponseHeadersToAdd: []*corev3.HeaderValueOption{
			opt("downstream2", "downstream-should-see-me", appendTrue, 0),
			opt("set-cookie", "cookie2=gingerbread", appendTrue, 0),
			opt("replaceable", "by-ext-authz", appendFalse, 0),
		}})(context.Background(), req)
	}, authzHeaders{up})
	r := h.send(t, request{method: http.MethodPost, path: "/test", body: str(""), header: map[string]string{"x-bypass": bad}})
	require.Equal(t, 200, r.status)
	require.Equal(t, bad, <-seen)
	require.Equal(t, "cookie1=snickerdoodle,cookie2=gingerbread", strings.Join(r.header.Values("Set-Cookie"), ","))
	require.Equal(t, "downstream-should-see-me", r.header.Get("Downstream2"))
	require.Equal(t, "by-ext-authz", r.header.Get("Replaceable"))
	require.Len(t, r.body, 512)
	require.Empty(t, up.received(t).header.Get("X-Envoy-Auth-Failure-Mode-Allowed"), "the Check did not fail")
}

// ExtAuthzGrpcIntegrationTest.DownstreamHeadersOnSuccess: response_headers_to_add with append true,
// append false, ADD_IF_ABSENT and OVERWRITE_IF_EXISTS → set-cookie cookie1,cookie2 (cookie3 not
// added: one exists), downstream2 and downstream3 added, replaceable and replaceable2 overwritten.
func TestEnvoyExtAuthz_DownstreamHeadersOnSuccess(t *testing.T) {
	up := authzUpstream()
	h := startAuthz(t, envoyAuthzBootstrap(t, nil), okCheck(&authv3.OkHttpResponse{ResponseHeadersToAdd: []*corev3.HeaderValueOption{
		opt("downstream2", "should-be-added", appendTrue, 0),
		opt("set-cookie", "cookie2=gingerbread", appendTrue, 0),
		opt("replaceable", "set-by-ext-authz", appendFalse, 0),
		opt("downstream3", "should-be-added", nil, corev3.HeaderValueOption_ADD_IF_ABSENT),
		opt("set-cookie", "cookie3=peanutbutter", nil, corev3.HeaderValueOption_ADD_IF_ABSENT),
		opt("replaceable2", "set-by-ext-authz", nil, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS),
		opt("new-header", "should-not-be-added", nil, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS),
	}}), authzHeaders{up})
	r := h.send(t, request{method: http.MethodPost, path: "/test", body: str("")})
	require.Equal(t, 200, r.status)
	require.Equal(t, "cookie1=snickerdoodle,cookie2=gingerbread", strings.Join(r.header.Values("Set-Cookie"), ","))
	require.Equal(t, "should-be-added", r.header.Get("Downstream2"))
	require.Equal(t, "should-be-added", r.header.Get("Downstream3"))
	require.Equal(t, "set-by-ext-authz", strings.Join(r.header.Values("Replaceable"), ","))
	require.Equal(t, "set-by-ext-authz", strings.Join(r.header.Values("Replaceable2"), ","))
	require.Len(t, r.body, 512)
}
