package emulator

import (
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authzfv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	procfv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/mcpguard/mcpguard/e2e/bootstrap"
)

func TestNewRefusesWhatIsNotEmulated(t *testing.T) {
	tests := []struct {
		name string
		edit func(t *testing.T, b *bootstrapv3.Bootstrap)
		want []string // substrings of the error; none → New succeeds
	}{
		{name: "base bootstrap is accepted", edit: func(*testing.T, *bootstrapv3.Bootstrap) {}},
		{
			name: "ext_proc http_service",
			edit: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				editProc(t, b, func(c *procfv3.ExternalProcessor) {
					c.HttpService = &procfv3.ExtProcHttpService{}
				})
			},
			want: []string{"ext_proc.http_service: not emulated"},
		},
		{
			name: "several problems at once",
			edit: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				editProc(t, b, func(c *procfv3.ExternalProcessor) {
					c.ObservabilityMode = true
					c.SendBodyWithoutWaitingForHeaderResponse = true
				})
				editAuthz(t, b, func(c *authzfv3.ExtAuthz) {
					c.WithRequestBody = &authzfv3.BufferSettings{MaxRequestBytes: 10}
				})
				editHCM(t, b, func(h *hcmv3.HttpConnectionManager) {
					h.ServerName = "x"
				})
			},
			want: []string{
				"ext_proc.observability_mode: not emulated",
				"ext_proc.send_body_without_waiting_for_header_response: not emulated",
				"ext_authz.with_request_body: not emulated",
				"hcm.server_name: not emulated",
			},
		},
		{
			name: "bootstrap-level field",
			edit: func(_ *testing.T, b *bootstrapv3.Bootstrap) {
				b.StaticResources.Clusters[1].PerConnectionBufferLimitBytes = wrapperspb.UInt32(1)
			},
			want: []string{"bootstrap.static_resources.clusters[1].per_connection_buffer_limit_bytes: not emulated"},
		},
		{
			name: "full duplex without trailer SEND",
			edit: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				editProc(t, b, func(c *procfv3.ExternalProcessor) {
					c.ProcessingMode.ResponseBodyMode = procfv3.ProcessingMode_FULL_DUPLEX_STREAMED
				})
			},
			want: []string{"response_trailer_mode: must be SEND with FULL_DUPLEX_STREAMED"},
		},
		{
			name: "unknown attribute",
			edit: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				editProc(t, b, func(c *procfv3.ExternalProcessor) { c.RequestAttributes = []string{"request.headers"} })
			},
			want: []string{`ext_proc.request_attributes[0]: "request.headers" not emulated`},
		},
		{
			name: "grpc service on a cluster without HTTP/2",
			edit: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				editAuthz(t, b, func(c *authzfv3.ExtAuthz) {
					c.Services = &authzfv3.ExtAuthz_GrpcService{GrpcService: &corev3.GrpcService{
						TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: "mcp_upstream"}},
					}}
				})
			},
			want: []string{`cluster "mcp_upstream" must speak HTTP/2`},
		},
		{
			name: "route to an unknown cluster",
			edit: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				editHCM(t, b, func(h *hcmv3.HttpConnectionManager) {
					h.GetRouteConfig().GetVirtualHosts()[0].GetRoutes()[1].GetRoute().ClusterSpecifier = nil
				})
			},
			want: []string{`route.cluster: unknown cluster ""`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := loadBase(t)
			tc.edit(t, b)
			e, err := New(b, Options{})
			if len(tc.want) == 0 {
				require.NoError(t, err)
				require.NoError(t, e.Close(t.Context()))
				return
			}
			require.Error(t, err)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestModeMerge(t *testing.T) {
	base := &procfv3.ProcessingMode{RequestBodyMode: procfv3.ProcessingMode_BUFFERED, ResponseBodyMode: procfv3.ProcessingMode_STREAMED}
	tests := []struct {
		name string
		o    *procfv3.ProcessingMode
		want mode
	}{
		{
			name: "DEFAULT header modes are unchanged, body modes always replaced",
			o:    &procfv3.ProcessingMode{ResponseBodyMode: procfv3.ProcessingMode_BUFFERED},
			want: mode{reqHeaders: true, respHeaders: true, respBody: procfv3.ProcessingMode_BUFFERED},
		},
		{
			name: "SKIP and SEND apply",
			o:    &procfv3.ProcessingMode{ResponseHeaderMode: procfv3.ProcessingMode_SKIP, ResponseTrailerMode: procfv3.ProcessingMode_SEND},
			want: mode{reqHeaders: true, respTrailers: true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, modeFrom(mergeModeProto(base, tc.o)))
		})
	}
}

func TestShippedBootstrapIsEmulated(t *testing.T) {
	b, err := bootstrap.Load("../../envoy/envoy.yaml")
	require.NoError(t, err)
	e, err := New(b, Options{Listen: "127.0.0.1:0"})
	require.NoError(t, err, "every field of envoy/envoy.yaml must be emulated")
	require.NoError(t, e.Close(t.Context()))
}
