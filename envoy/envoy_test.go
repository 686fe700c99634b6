package envoy_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	authzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	procv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/mcpguard/mcpguard/e2e/bootstrap"
	"github.com/mcpguard/mcpguard/identity"
)

const (
	prmPrefix      = "/.well-known/oauth-protected-resource"
	minHold        = 30 * time.Minute // the longest approval hold mcpguard promises
	minBreaker     = 10000            // concurrent requests (each holds an ext_proc stream)
	minBufferBytes = 32 << 20         // largest BUFFERED MCP response body
)

// conf is one HTTP connection manager of a bootstrap with its filters unpacked.
type conf struct {
	b         *bootstrapv3.Bootstrap
	listener  string
	buffer    *wrapperspb.UInt32Value
	hcm       *hcmv3.HttpConnectionManager
	filters   []string // type names of http_filters, in order
	authz     *authzv3.ExtAuthz
	proc      *procv3.ExternalProcessor
	clusters  map[string]*clusterv3.Cluster
	prm, main *routev3.Route
}

// rules are mcpguard's product rules for a deployable bootstrap. Each has a way to break it, so the
// rule is shown to fail on a config that violates it.
var rules = []struct {
	name  string
	check func(c *conf) error
	bad   func(c *conf)
}{
	{
		name: "filter order ext_authz, ext_proc, router",
		check: func(c *conf) error {
			want := []string{
				string(proto.MessageName(&authzv3.ExtAuthz{})),
				string(proto.MessageName(&procv3.ExternalProcessor{})),
				string(proto.MessageName(&routerv3.Router{})),
			}
			if !slices.Equal(c.filters, want) {
				return fmt.Errorf("http_filters %v, want %v", c.filters, want)
			}
			return nil
		},
		bad: func(c *conf) { c.filters[0], c.filters[1] = c.filters[1], c.filters[0] },
	},
	{
		name: "ext_authz fails closed",
		check: func(c *conf) error {
			if c.authz.GetFailureModeAllow() {
				return errors.New("ext_authz failure_mode_allow is true")
			}
			if code := c.authz.GetStatusOnError().GetCode(); code < 500 {
				return fmt.Errorf("ext_authz status_on_error %d, want a 5xx", code)
			}
			return nil
		},
		bad: func(c *conf) { c.authz.FailureModeAllow = true },
	},
	{
		name: "ext_authz reads headers only",
		check: func(c *conf) error {
			if c.authz.GetWithRequestBody() != nil {
				return errors.New("ext_authz with_request_body buffers every route")
			}
			return nil
		},
		bad: func(c *conf) { c.authz.WithRequestBody = &authzv3.BufferSettings{MaxRequestBytes: 1024} },
	},
	{
		name: "ext_proc fails closed",
		check: func(c *conf) error {
			if c.proc.GetFailureModeAllow() {
				return errors.New("ext_proc failure_mode_allow is true")
			}
			return nil
		},
		bad: func(c *conf) { c.proc.FailureModeAllow = true },
	},
	{
		name: "ext_authz identity forwarded to ext_proc",
		check: func(c *conf) error {
			ns := c.proc.GetMetadataOptions().GetForwardingNamespaces().GetUntyped()
			if !slices.Contains(ns, identity.Namespace) {
				return fmt.Errorf("ext_proc forwarding_namespaces.untyped %v lacks %s", ns, identity.Namespace)
			}
			return nil
		},
		bad: func(c *conf) { c.proc.MetadataOptions = nil },
	},
	{
		name: "ext_proc modes: buffered bodies, override allowed",
		check: func(c *conf) error {
			m := c.proc.GetProcessingMode()
			var errs []error
			if !c.proc.GetAllowModeOverride() {
				errs = append(errs, errors.New("allow_mode_override is false: SSE responses cannot switch to STREAMED"))
			}
			if m.GetRequestBodyMode() != procv3.ProcessingMode_BUFFERED || m.GetResponseBodyMode() != procv3.ProcessingMode_BUFFERED {
				errs = append(errs, fmt.Errorf("body modes %s/%s, want BUFFERED/BUFFERED", m.GetRequestBodyMode(), m.GetResponseBodyMode()))
			}
			if m.GetRequestHeaderMode() != procv3.ProcessingMode_SEND || m.GetResponseHeaderMode() != procv3.ProcessingMode_SEND {
				errs = append(errs, errors.New("header modes must be SEND"))
			}
			if !slices.Contains(c.proc.GetRequestAttributes(), "request.id") {
				errs = append(errs, errors.New("request_attributes lacks request.id"))
			}
			return errors.Join(errs...)
		},
		bad: func(c *conf) { c.proc.AllowModeOverride = false },
	},
	{
		name: "approval hold ceiling",
		check: func(c *conf) error {
			if mx := c.proc.GetMaxMessageTimeout().AsDuration(); mx < minHold {
				return fmt.Errorf("max_message_timeout %s < %s", mx, minHold)
			}
			if mt := c.proc.GetMessageTimeout().AsDuration(); mt <= 0 || mt > 10*time.Second {
				return fmt.Errorf("message_timeout %s: want short and positive", mt)
			}
			return nil
		},
		bad: func(c *conf) { c.proc.MaxMessageTimeout = durationpb.New(time.Minute) },
	},
	{
		name: "idle timers outlast the longest hold",
		check: func(c *conf) error {
			hold := c.proc.GetMaxMessageTimeout().AsDuration()
			idle := c.hcm.GetStreamIdleTimeout().AsDuration()
			if c.hcm.GetStreamIdleTimeout() == nil || (idle != 0 && idle <= hold) {
				return fmt.Errorf("stream_idle_timeout %s must exceed max_message_timeout %s", idle, hold)
			}
			if rt := c.main.GetRoute().GetIdleTimeout(); rt != nil && rt.AsDuration() != 0 && rt.AsDuration() <= hold {
				return fmt.Errorf("route idle_timeout %s must exceed max_message_timeout %s", rt.AsDuration(), hold)
			}
			if t := c.main.GetRoute().GetTimeout(); t == nil || t.AsDuration() != 0 {
				return errors.New("MCP route timeout must be 0s: SSE responses have no deadline")
			}
			if c.hcm.GetRequestTimeout().AsDuration() != 0 {
				return errors.New("request_timeout must be 0s")
			}
			return nil
		},
		bad: func(c *conf) { c.main.GetRoute().IdleTimeout = durationpb.New(900 * time.Second) },
	},
	{
		name: "gRPC cluster speaks HTTP/2 with lifted circuit breakers",
		check: func(c *conf) error {
			name := c.proc.GetGrpcService().GetEnvoyGrpc().GetClusterName()
			if a := c.authz.GetGrpcService().GetEnvoyGrpc().GetClusterName(); a != name {
				return fmt.Errorf("ext_authz uses cluster %q, ext_proc %q: one mcpguard serves both", a, name)
			}
			cl := c.clusters[name]
			if cl == nil {
				return fmt.Errorf("cluster %q missing", name)
			}
			var o upstreamv3.HttpProtocolOptions
			a := cl.GetTypedExtensionProtocolOptions()[bootstrap.ProtocolOptionsKey]
			if a == nil || a.UnmarshalTo(&o) != nil || o.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
				return fmt.Errorf("cluster %q: no explicit HTTP/2", name)
			}
			if o.GetExplicitHttpConfig().GetHttp2ProtocolOptions().GetConnectionKeepalive().GetInterval() == nil {
				return fmt.Errorf("cluster %q: no HTTP/2 keepalive", name)
			}
			return breakers(cl)
		},
		bad: func(c *conf) {
			c.clusters[c.proc.GetGrpcService().GetEnvoyGrpc().GetClusterName()].CircuitBreakers = nil
		},
	},
	{
		name: "protected-resource metadata bypasses both filters",
		check: func(c *conf) error {
			if c.prm == nil {
				return fmt.Errorf("no route for %s", prmPrefix)
			}
			var az authzv3.ExtAuthzPerRoute
			if err := perRoute(c.prm, "envoy.filters.http.ext_authz", &az); err != nil {
				return fmt.Errorf("%s: ext_authz per-route config: %w", prmPrefix, err)
			}
			if !az.GetDisabled() {
				return fmt.Errorf("%s: ext_authz not disabled", prmPrefix)
			}
			var pr procv3.ExtProcPerRoute
			if err := perRoute(c.prm, "envoy.filters.http.ext_proc", &pr); err != nil {
				return fmt.Errorf("%s: ext_proc per-route config: %w", prmPrefix, err)
			}
			if !pr.GetDisabled() {
				return fmt.Errorf("%s: ext_proc not disabled", prmPrefix)
			}
			return nil
		},
		bad: func(c *conf) { delete(c.prm.TypedPerFilterConfig, "envoy.filters.http.ext_authz") },
	},
	{
		name: "MCP route tells ext_authz the audience and scopes",
		check: func(c *conf) error {
			var az authzv3.ExtAuthzPerRoute
			if err := perRoute(c.main, "envoy.filters.http.ext_authz", &az); err != nil {
				return err
			}
			if az.GetDisabled() {
				return errors.New("ext_authz disabled on the MCP route")
			}
			ext := az.GetCheckSettings().GetContextExtensions()
			if !strings.HasPrefix(ext["audience"], "http") || ext["scopes"] == "" {
				return fmt.Errorf("context_extensions %v: want audience URL and scopes", ext)
			}
			return nil
		},
		bad: func(c *conf) { delete(c.main.TypedPerFilterConfig, "envoy.filters.http.ext_authz") },
	},
	{
		name: "buffer limit fits BUFFERED responses",
		check: func(c *conf) error {
			if c.buffer.GetValue() < minBufferBytes {
				return fmt.Errorf("listener %s per_connection_buffer_limit_bytes %d < %d", c.listener, c.buffer.GetValue(), minBufferBytes)
			}
			return nil
		},
		bad: func(c *conf) { c.buffer = nil },
	},
	{
		name: "admin on loopback",
		check: func(c *conf) error {
			if a := c.b.GetAdmin().GetAddress().GetSocketAddress().GetAddress(); a != "127.0.0.1" && a != "::1" {
				return fmt.Errorf("admin address %q is not loopback", a)
			}
			return nil
		},
		bad: func(c *conf) {
			c.b.Admin.Address = &corev3.Address{Address: &corev3.Address_SocketAddress{
				SocketAddress: &corev3.SocketAddress{Address: "0.0.0.0"},
			}}
		},
	},
}

// TestBootstraps loads every deployable bootstrap in this directory and checks the product rules.
func TestBootstraps(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			b, err := bootstrap.Load(file)
			require.NoError(t, err)
			require.Empty(t, bootstrap.Warnings(b), "deprecated fields")
			for _, c := range confs(t, b) {
				for _, r := range rules {
					t.Run(c.listener+"/"+r.name, func(t *testing.T) {
						require.NoError(t, r.check(c))
					})
				}
			}
		})
	}
}

// TestRulesCatch breaks envoy.yaml one rule at a time: each rule must notice.
func TestRulesCatch(t *testing.T) {
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			b, err := bootstrap.Load("envoy.yaml")
			require.NoError(t, err)
			cs := confs(t, b)
			require.NotEmpty(t, cs)
			r.bad(cs[0])
			require.Error(t, r.check(cs[0]))
		})
	}
}

// confs unpacks every HTTP connection manager of b.
func confs(t *testing.T, b *bootstrapv3.Bootstrap) []*conf {
	t.Helper()
	clusters := map[string]*clusterv3.Cluster{}
	for _, c := range b.GetStaticResources().GetClusters() {
		clusters[c.GetName()] = c
	}
	var out []*conf
	for _, l := range b.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				var hcm hcmv3.HttpConnectionManager
				if f.GetTypedConfig().UnmarshalTo(&hcm) != nil {
					continue
				}
				c := &conf{b: b, listener: l.GetName(), buffer: l.GetPerConnectionBufferLimitBytes(), hcm: &hcm, clusters: clusters}
				for _, hf := range hcm.GetHttpFilters() {
					inner, err := hf.GetTypedConfig().UnmarshalNew()
					require.NoError(t, err)
					c.filters = append(c.filters, string(proto.MessageName(inner)))
					switch m := inner.(type) {
					case *authzv3.ExtAuthz:
						c.authz = m
					case *procv3.ExternalProcessor:
						c.proc = m
					}
				}
				for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
					for _, r := range vh.GetRoutes() {
						switch r.GetMatch().GetPrefix() {
						case prmPrefix:
							c.prm = r
						case "/":
							c.main = r
						}
					}
				}
				require.NotNil(t, c.authz, "listener %s: no ext_authz", c.listener)
				require.NotNil(t, c.proc, "listener %s: no ext_proc", c.listener)
				require.NotNil(t, c.main, "listener %s: no catch-all MCP route", c.listener)
				out = append(out, c)
			}
		}
	}
	require.NotEmpty(t, out, "no HTTP listener")
	return out
}

func perRoute(r *routev3.Route, filter string, into proto.Message) error {
	a := r.GetTypedPerFilterConfig()[filter]
	if a == nil {
		return fmt.Errorf("no typed_per_filter_config[%q]", filter)
	}
	if err := a.UnmarshalTo(into); err != nil {
		return fmt.Errorf("unpack %s: %w", filter, err)
	}
	return nil
}

func breakers(cl *clusterv3.Cluster) error {
	for _, th := range cl.GetCircuitBreakers().GetThresholds() {
		if th.GetPriority() != corev3.RoutingPriority_DEFAULT {
			continue
		}
		for name, v := range map[string]*wrapperspb.UInt32Value{
			"max_requests":         th.GetMaxRequests(),
			"max_pending_requests": th.GetMaxPendingRequests(),
			"max_connections":      th.GetMaxConnections(),
		} {
			if v.GetValue() < minBreaker {
				return fmt.Errorf("cluster %s: %s %d < %d", cl.GetName(), name, v.GetValue(), minBreaker)
			}
		}
		return nil
	}
	return fmt.Errorf("cluster %s: no DEFAULT circuit breaker thresholds (Envoy's 1024 applies)", cl.GetName())
}
