package bootstrap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	authzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// breaks holds, per product rule, a way to violate it and the field path its error names.
var breaks = map[string]struct {
	bad  func(c *conf)
	path string
}{
	"filter order ext_authz, ext_proc, router": {
		func(c *conf) { c.filters[0], c.filters[1] = c.filters[1], c.filters[0] }, ".typed_config.http_filters: ",
	},
	"ext_authz fails closed": {
		func(c *conf) { c.authz.FailureModeAllow = true }, "(envoy.filters.http.ext_authz).typed_config.failure_mode_allow: must be false",
	},
	"ext_authz reads headers only": {
		func(c *conf) { c.authz.WithRequestBody = &authzv3.BufferSettings{MaxRequestBytes: 1024} }, "(envoy.filters.http.ext_authz).typed_config.with_request_body",
	},
	"ext_proc fails closed": {
		func(c *conf) { c.proc.FailureModeAllow = true }, "(envoy.filters.http.ext_proc).typed_config.failure_mode_allow: must be false",
	},
	"ext_authz identity forwarded to ext_proc": {
		func(c *conf) { c.proc.MetadataOptions = nil }, "(envoy.filters.http.ext_proc).typed_config.metadata_options.forwarding_namespaces.untyped: [] lacks",
	},
	"ext_proc modes: buffered bodies, override allowed": {
		func(c *conf) { c.proc.AllowModeOverride = false }, "typed_config.allow_mode_override: must be true",
	},
	"approval hold ceiling": {
		func(c *conf) { c.proc.MaxMessageTimeout = durationpb.New(time.Minute) }, "typed_config.max_message_timeout: 1m0s, must be at least 30m0s",
	},
	"idle timers outlast the longest hold": {
		func(c *conf) { c.main.GetRoute().IdleTimeout = durationpb.New(900 * time.Second) }, ".routes[1].route.idle_timeout: 15m0s must exceed",
	},
	"gRPC cluster speaks HTTP/2 with lifted circuit breakers": {
		func(c *conf) {
			c.clusters[c.proc.GetGrpcService().GetEnvoyGrpc().GetClusterName()].CircuitBreakers = nil
		},
		"static_resources.clusters[0](mcpguard_grpc).circuit_breakers: no DEFAULT thresholds",
	},
	"protected-resource metadata bypasses both filters": {
		func(c *conf) { delete(c.prm.TypedPerFilterConfig, "envoy.filters.http.ext_authz") },
		".routes[0].typed_per_filter_config[envoy.filters.http.ext_authz]: missing",
	},
	"MCP route tells ext_authz the audience and scopes": {
		func(c *conf) { delete(c.main.TypedPerFilterConfig, "envoy.filters.http.ext_authz") },
		".routes[1].typed_per_filter_config[envoy.filters.http.ext_authz]: missing",
	},
	"buffer limit fits BUFFERED responses": {
		func(c *conf) { c.buffer = nil }, "static_resources.listeners[0](mcp_ingress).per_connection_buffer_limit_bytes: 0, must be at least",
	},
	"admin on loopback": {
		func(c *conf) {
			c.b.Admin.Address = &corev3.Address{Address: &corev3.Address_SocketAddress{
				SocketAddress: &corev3.SocketAddress{Address: "0.0.0.0"},
			}}
		}, `admin.address.socket_address.address: "0.0.0.0" is not loopback`,
	},
}

// TestRulesCatch breaks the shipped envoy.yaml one rule at a time: each rule must notice and
// name the field to fix.
func TestRulesCatch(t *testing.T) {
	require.Len(t, breaks, len(rules), "every rule has a way to break it")
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			br, ok := breaks[r.name]
			require.True(t, ok, "no way to break %q", r.name)
			b, err := Load("../envoy.yaml")
			require.NoError(t, err)
			cs, err := confs(b, Options{})
			require.NoError(t, err)
			require.NotEmpty(t, cs)
			require.NoError(t, r.check(cs[0]))
			br.bad(cs[0])
			err = r.check(cs[0])
			require.Error(t, err)
			require.Contains(t, err.Error(), br.path)
		})
	}
}

// TestCheckFileReportsEveryProblem: a bootstrap that passes strict validation but breaks
// several product rules gets all of them at once, each with its field path.
func TestCheckFileReportsEveryProblem(t *testing.T) {
	require.NoError(t, CheckFile("../envoy.yaml"))
	data, err := os.ReadFile("../envoy.yaml")
	require.NoError(t, err)
	src := string(data)
	for _, r := range [][2]string{
		{"max_message_timeout: 1800s", "max_message_timeout: 60s"},
		{"untyped: [envoy.filters.http.ext_authz]", "untyped: [other]"},
		{"max_requests: 100000", "max_requests: 1000"},
	} {
		require.Contains(t, src, r[0])
		src = strings.Replace(src, r[0], r[1], 1)
	}
	path := filepath.Join(t.TempDir(), "envoy.yaml")
	require.NoError(t, os.WriteFile(path, []byte(src), 0o600))
	err = CheckFile(path)
	require.Error(t, err)
	for _, want := range []string{
		"(envoy.filters.http.ext_proc).typed_config.max_message_timeout: 1m0s, must be at least 30m0s",
		"(envoy.filters.http.ext_proc).typed_config.metadata_options.forwarding_namespaces.untyped: [other] lacks envoy.filters.http.ext_authz",
		"static_resources.clusters[0](mcpguard_grpc).circuit_breakers.thresholds[0].max_requests: 1000, must be at least 10000",
	} {
		require.Contains(t, err.Error(), want)
	}
	require.ErrorContains(t, CheckFile("testdata/bad_proc_failure_mode_allow.yaml"), "failure_mode_allow: must be false")
}

// TestHoldOption: with Options.Hold, a control plane without max_message_timeout passes when
// message_timeout outlasts the hold, and fails when it does not; the idle timers are then held
// to message_timeout.
func TestHoldOption(t *testing.T) {
	load := func(t *testing.T, mt, mx time.Duration) *bootstrapv3.Bootstrap {
		t.Helper()
		b, err := Load("../envoy.yaml")
		require.NoError(t, err)
		cs, err := confs(b, Options{})
		require.NoError(t, err)
		cs[0].proc.MessageTimeout = durationpb.New(mt)
		cs[0].proc.MaxMessageTimeout = durationpb.New(mx)
		f := cs[0].hcm.GetHttpFilters()[1]
		a, err := anypb.New(cs[0].proc)
		require.NoError(t, err)
		f.ConfigType = &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}
		h, err := anypb.New(cs[0].hcm)
		require.NoError(t, err)
		b.StaticResources.Listeners[0].FilterChains[0].Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: h}
		return b
	}
	hold := 25 * time.Second
	require.NoError(t, CheckWith(load(t, 30*time.Second, 0), Options{Hold: hold}))
	require.ErrorContains(t, CheckWith(load(t, 20*time.Second, 0), Options{Hold: hold}), "must exceed the approval hold 25s")
	require.ErrorContains(t, Check(load(t, 30*time.Second, 0)), "max_message_timeout: 0s, must be at least 30m0s")
	require.NoError(t, CheckWith(load(t, 2*time.Second, 1800*time.Second), Options{Hold: hold}))
	// A 40m message timeout is above the route idle_timeout (1860s): a 408 would come first.
	require.ErrorContains(t, CheckWith(load(t, 40*time.Minute, 0), Options{Hold: hold}), "route.idle_timeout: 31m0s must exceed max_message_timeout 40m0s")
}
