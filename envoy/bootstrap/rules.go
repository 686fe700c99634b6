package bootstrap

import (
	"errors"
	"fmt"
	"slices"
	"strings"
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
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/mcpguard/mcpguard/identity"
)

// Bounds of a deployable bootstrap.
const (
	prmPrefix = "/.well-known/oauth-protected-resource"
	// MinHold is the longest approval hold mcpguard promises (approvals.hold may be set up to
	// it): ext_proc's max_message_timeout and the idle timers must outlast it.
	MinHold        = 30 * time.Minute
	minBreaker     = 10000    // concurrent requests (each holds an ext_proc stream)
	minBufferBytes = 32 << 20 // largest BUFFERED MCP response body
)

// conf is one HTTP connection manager of a bootstrap with its filters unpacked, and the
// field path of each part, so that a problem names where to fix it.
type conf struct {
	b                    *bootstrapv3.Bootstrap
	listener, listenerAt string
	buffer               *wrapperspb.UInt32Value
	hcm                  *hcmv3.HttpConnectionManager
	hcmAt                string
	filters              []string // type names of http_filters, in order
	authz                *authzv3.ExtAuthz
	proc                 *procv3.ExternalProcessor
	authzAt, procAt      string
	clusters             map[string]*clusterv3.Cluster
	clusterAt            map[string]string
	prm, main            *routev3.Route
	prmAt, mainAt        string
	opts                 Options
}

// Options adapts [CheckWith] to an Envoy whose ext_proc filter a control plane writes.
type Options struct {
	// Hold is the approval hold (approvals.hold) of the mcpguard behind this Envoy. Zero keeps
	// the rule for the shipped bootstrap: max_message_timeout of at least [MinHold] and a
	// short message_timeout. When set, a control plane that cannot write max_message_timeout
	// (Envoy Gateway) may instead give message_timeout more than Hold: mcpguard then answers a
	// held message within the ordinary timer, and override_message_timeout is not needed.
	Hold time.Duration
}

// ceiling is how long ext_proc lets mcpguard hold one message: max_message_timeout when
// overrides are on, else message_timeout.
func (c *conf) ceiling() time.Duration {
	if mx := c.proc.GetMaxMessageTimeout().AsDuration(); mx > 0 {
		return mx
	}
	if c.opts.Hold > 0 {
		return c.proc.GetMessageTimeout().AsDuration()
	}
	return 0
}

// rule is one of mcpguard's product rules for a deployable bootstrap.
type rule struct {
	name  string
	check func(c *conf) error
}

// rules are checked on every HTTP connection manager. Each has a way to break it in the
// tests, so every rule is shown to fail on a config that violates it.
var rules = []rule{
	{
		name: "filter order ext_authz, ext_proc, router",
		check: func(c *conf) error {
			want := []string{
				string(proto.MessageName(&authzv3.ExtAuthz{})),
				string(proto.MessageName(&procv3.ExternalProcessor{})),
				string(proto.MessageName(&routerv3.Router{})),
			}
			if !slices.Equal(c.filters, want) {
				return fmt.Errorf("%s.http_filters: %v, want %v", c.hcmAt, c.filters, want)
			}
			return nil
		},
	},
	{
		name: "ext_authz fails closed",
		check: func(c *conf) error {
			if c.authz.GetFailureModeAllow() {
				return fmt.Errorf("%s.failure_mode_allow: must be false (a failed check would let the call through)", c.authzAt)
			}
			if code := c.authz.GetStatusOnError().GetCode(); code < 500 {
				return fmt.Errorf("%s.status_on_error.code: %d, want a 5xx", c.authzAt, code)
			}
			return nil
		},
	},
	{
		name: "ext_authz reads headers only",
		check: func(c *conf) error {
			if c.authz.GetWithRequestBody() != nil {
				return fmt.Errorf("%s.with_request_body: must not be set (it buffers every route; ext_proc reads bodies)", c.authzAt)
			}
			return nil
		},
	},
	{
		name: "ext_proc fails closed",
		check: func(c *conf) error {
			if c.proc.GetFailureModeAllow() {
				return fmt.Errorf("%s.failure_mode_allow: must be false (a failed check would let the call through)", c.procAt)
			}
			return nil
		},
	},
	{
		name: "ext_authz identity forwarded to ext_proc",
		check: func(c *conf) error {
			ns := c.proc.GetMetadataOptions().GetForwardingNamespaces().GetUntyped()
			if !slices.Contains(ns, identity.Namespace) {
				return fmt.Errorf("%s.metadata_options.forwarding_namespaces.untyped: %v lacks %s (ext_proc would see no identity)", c.procAt, ns, identity.Namespace)
			}
			return nil
		},
	},
	{
		name: "ext_proc modes: buffered bodies, override allowed",
		check: func(c *conf) error {
			m := c.proc.GetProcessingMode()
			var errs []error
			if !c.proc.GetAllowModeOverride() {
				errs = append(errs, fmt.Errorf("%s.allow_mode_override: must be true (SSE responses switch to STREAMED)", c.procAt))
			}
			if m.GetRequestBodyMode() != procv3.ProcessingMode_BUFFERED || m.GetResponseBodyMode() != procv3.ProcessingMode_BUFFERED {
				errs = append(errs, fmt.Errorf("%s.processing_mode: body modes %s/%s, want BUFFERED/BUFFERED", c.procAt, m.GetRequestBodyMode(), m.GetResponseBodyMode()))
			}
			if m.GetRequestHeaderMode() != procv3.ProcessingMode_SEND || m.GetResponseHeaderMode() != procv3.ProcessingMode_SEND {
				errs = append(errs, fmt.Errorf("%s.processing_mode: header modes must be SEND", c.procAt))
			}
			if !slices.Contains(c.proc.GetRequestAttributes(), "request.id") {
				errs = append(errs, fmt.Errorf("%s.request_attributes: lacks request.id", c.procAt))
			}
			return errors.Join(errs...)
		},
	},
	{
		name: "approval hold ceiling",
		check: func(c *conf) error {
			if h := c.opts.Hold; h > 0 {
				if ceil := c.ceiling(); ceil <= h {
					return fmt.Errorf("%s: message_timeout %s / max_message_timeout %s: one of them must exceed the approval hold %s", c.procAt, c.proc.GetMessageTimeout().AsDuration(), c.proc.GetMaxMessageTimeout().AsDuration(), h)
				}
				return nil
			}
			if mx := c.proc.GetMaxMessageTimeout().AsDuration(); mx < MinHold {
				return fmt.Errorf("%s.max_message_timeout: %s, must be at least %s (the longest approval hold)", c.procAt, mx, MinHold)
			}
			if mt := c.proc.GetMessageTimeout().AsDuration(); mt <= 0 || mt > 10*time.Second {
				return fmt.Errorf("%s.message_timeout: %s, want short and positive (at most 10s)", c.procAt, mt)
			}
			return nil
		},
	},
	{
		name: "idle timers outlast the longest hold",
		check: func(c *conf) error {
			hold := c.ceiling()
			idle := c.hcm.GetStreamIdleTimeout().AsDuration()
			if c.hcm.GetStreamIdleTimeout() == nil || (idle != 0 && idle <= hold) {
				return fmt.Errorf("%s.stream_idle_timeout: %s must exceed max_message_timeout %s", c.hcmAt, idle, hold)
			}
			if rt := c.main.GetRoute().GetIdleTimeout(); rt != nil && rt.AsDuration() != 0 && rt.AsDuration() <= hold {
				return fmt.Errorf("%s.route.idle_timeout: %s must exceed max_message_timeout %s", c.mainAt, rt.AsDuration(), hold)
			}
			if t := c.main.GetRoute().GetTimeout(); t == nil || t.AsDuration() != 0 {
				return fmt.Errorf("%s.route.timeout: must be 0s (SSE responses have no deadline)", c.mainAt)
			}
			if c.hcm.GetRequestTimeout().AsDuration() != 0 {
				return fmt.Errorf("%s.request_timeout: must be 0s", c.hcmAt)
			}
			return nil
		},
	},
	{
		name: "gRPC cluster speaks HTTP/2 with lifted circuit breakers",
		check: func(c *conf) error {
			name := c.proc.GetGrpcService().GetEnvoyGrpc().GetClusterName()
			if a := c.authz.GetGrpcService().GetEnvoyGrpc().GetClusterName(); a != name {
				return fmt.Errorf("%s.grpc_service.envoy_grpc.cluster_name: %q, ext_proc uses %q: one mcpguard serves both", c.authzAt, a, name)
			}
			cl := c.clusters[name]
			if cl == nil {
				return fmt.Errorf("%s.grpc_service.envoy_grpc.cluster_name: cluster %q missing", c.procAt, name)
			}
			at := c.clusterAt[name]
			var o upstreamv3.HttpProtocolOptions
			a := cl.GetTypedExtensionProtocolOptions()[ProtocolOptionsKey]
			if a == nil || a.UnmarshalTo(&o) != nil || o.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
				return fmt.Errorf("%s.typed_extension_protocol_options: no explicit HTTP/2", at)
			}
			var errs []error
			if o.GetExplicitHttpConfig().GetHttp2ProtocolOptions().GetConnectionKeepalive().GetInterval() == nil {
				errs = append(errs, fmt.Errorf("%s.typed_extension_protocol_options: no HTTP/2 connection_keepalive.interval", at))
			}
			return errors.Join(append(errs, breakers(at, cl))...)
		},
	},
	{
		name: "protected-resource metadata bypasses both filters",
		check: func(c *conf) error {
			if c.prm == nil {
				return fmt.Errorf("%s.route_config: no route for %s", c.hcmAt, prmPrefix)
			}
			var az authzv3.ExtAuthzPerRoute
			if err := perRoute(c.prm, c.prmAt, "envoy.filters.http.ext_authz", &az); err != nil {
				return err
			}
			if !az.GetDisabled() {
				return fmt.Errorf("%s.typed_per_filter_config[envoy.filters.http.ext_authz].disabled: must be true", c.prmAt)
			}
			var pr procv3.ExtProcPerRoute
			if err := perRoute(c.prm, c.prmAt, "envoy.filters.http.ext_proc", &pr); err != nil {
				return err
			}
			if !pr.GetDisabled() {
				return fmt.Errorf("%s.typed_per_filter_config[envoy.filters.http.ext_proc].disabled: must be true", c.prmAt)
			}
			return nil
		},
	},
	{
		name: "MCP route tells ext_authz the audience and scopes",
		check: func(c *conf) error {
			var az authzv3.ExtAuthzPerRoute
			if err := perRoute(c.main, c.mainAt, "envoy.filters.http.ext_authz", &az); err != nil {
				return err
			}
			at := c.mainAt + ".typed_per_filter_config[envoy.filters.http.ext_authz]"
			if az.GetDisabled() {
				return fmt.Errorf("%s.disabled: ext_authz must run on the MCP route", at)
			}
			ext := az.GetCheckSettings().GetContextExtensions()
			if !strings.HasPrefix(ext["audience"], "http") || ext["scopes"] == "" {
				return fmt.Errorf("%s.check_settings.context_extensions: %v, want an audience URL and scopes", at, ext)
			}
			return nil
		},
	},
	{
		name: "buffer limit fits BUFFERED responses",
		check: func(c *conf) error {
			if c.buffer.GetValue() < minBufferBytes {
				return fmt.Errorf("%s.per_connection_buffer_limit_bytes: %d, must be at least %d", c.listenerAt, c.buffer.GetValue(), minBufferBytes)
			}
			return nil
		},
	},
	{
		name: "admin on loopback",
		check: func(c *conf) error {
			if a := c.b.GetAdmin().GetAddress().GetSocketAddress().GetAddress(); a != "127.0.0.1" && a != "::1" {
				return fmt.Errorf("admin.address.socket_address.address: %q is not loopback", a)
			}
			return nil
		},
	},
}

// Check applies mcpguard's product rules to a bootstrap that passed [Validate]: both filters
// fail closed, ext_authz's identity namespace reaches ext_proc, ext_proc's timeouts and the
// idle timers outlast the longest approval hold, buffers fit buffered bodies, the gRPC
// cluster's circuit breakers are lifted. Every problem names its field path.
func Check(b *bootstrapv3.Bootstrap) error { return CheckWith(b, Options{}) }

// CheckWith is [Check] with the hold rule adapted by o.
func CheckWith(b *bootstrapv3.Bootstrap, o Options) error {
	cs, err := confs(b, o)
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range cs {
		for _, r := range rules {
			if err := r.check(c); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// CheckFile loads the bootstrap at path strictly ([Load]) and applies [Check]; deprecated
// fields are reported too.
func CheckFile(path string) error {
	b, err := Load(path)
	if err != nil {
		return err
	}
	var errs []error
	for _, w := range Warnings(b) {
		errs = append(errs, fmt.Errorf("deprecated: %s", w))
	}
	if err := Check(b); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bootstrap %s: %w", path, err)
	}
	return nil
}

// confs unpacks every HTTP connection manager of b.
func confs(b *bootstrapv3.Bootstrap, o Options) ([]*conf, error) {
	clusters := map[string]*clusterv3.Cluster{}
	clusterAt := map[string]string{}
	for i, c := range b.GetStaticResources().GetClusters() {
		clusters[c.GetName()] = c
		clusterAt[c.GetName()] = fmt.Sprintf("static_resources.clusters[%d](%s)", i, c.GetName())
	}
	var out []*conf
	var errs []error
	for li, l := range b.GetStaticResources().GetListeners() {
		lAt := fmt.Sprintf("static_resources.listeners[%d](%s)", li, l.GetName())
		for fci, fc := range l.GetFilterChains() {
			for fi, f := range fc.GetFilters() {
				var hcm hcmv3.HttpConnectionManager
				if f.GetTypedConfig().UnmarshalTo(&hcm) != nil {
					continue
				}
				hAt := fmt.Sprintf("%s.filter_chains[%d].filters[%d](%s).typed_config", lAt, fci, fi, f.GetName())
				c := &conf{
					b: b, listener: l.GetName(), listenerAt: lAt, buffer: l.GetPerConnectionBufferLimitBytes(),
					hcm: &hcm, hcmAt: hAt, clusters: clusters, clusterAt: clusterAt, opts: o,
				}
				for hi, hf := range hcm.GetHttpFilters() {
					inner, err := hf.GetTypedConfig().UnmarshalNew()
					if err != nil {
						errs = append(errs, fmt.Errorf("%s.http_filters[%d](%s).typed_config: %w", hAt, hi, hf.GetName(), err))
						continue
					}
					c.filters = append(c.filters, string(proto.MessageName(inner)))
					at := fmt.Sprintf("%s.http_filters[%d](%s).typed_config", hAt, hi, hf.GetName())
					switch m := inner.(type) {
					case *authzv3.ExtAuthz:
						c.authz, c.authzAt = m, at
					case *procv3.ExternalProcessor:
						c.proc, c.procAt = m, at
					}
				}
				for vi, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
					for ri, r := range vh.GetRoutes() {
						rAt := fmt.Sprintf("%s.route_config.virtual_hosts[%d](%s).routes[%d]", hAt, vi, vh.GetName(), ri)
						switch r.GetMatch().GetPrefix() {
						case prmPrefix:
							c.prm, c.prmAt = r, rAt
						case "/":
							c.main, c.mainAt = r, rAt
						}
					}
				}
				switch {
				case c.authz == nil:
					errs = append(errs, fmt.Errorf("%s.http_filters: no ext_authz filter", hAt))
				case c.proc == nil:
					errs = append(errs, fmt.Errorf("%s.http_filters: no ext_proc filter", hAt))
				case c.main == nil:
					errs = append(errs, fmt.Errorf("%s.route_config: no catch-all (prefix /) MCP route", hAt))
				default:
					out = append(out, c)
				}
			}
		}
	}
	if len(out) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("static_resources.listeners: no HTTP connection manager"))
	}
	return out, errors.Join(errs...)
}

func perRoute(r *routev3.Route, at, filter string, into proto.Message) error {
	a := r.GetTypedPerFilterConfig()[filter]
	if a == nil {
		return fmt.Errorf("%s.typed_per_filter_config[%s]: missing", at, filter)
	}
	if err := a.UnmarshalTo(into); err != nil {
		return fmt.Errorf("%s.typed_per_filter_config[%s]: %w", at, filter, err)
	}
	return nil
}

func breakers(at string, cl *clusterv3.Cluster) error {
	for i, th := range cl.GetCircuitBreakers().GetThresholds() {
		if th.GetPriority() != corev3.RoutingPriority_DEFAULT {
			continue
		}
		var errs []error
		for _, f := range []struct {
			name string
			v    *wrapperspb.UInt32Value
		}{
			{"max_requests", th.GetMaxRequests()},
			{"max_pending_requests", th.GetMaxPendingRequests()},
			{"max_connections", th.GetMaxConnections()},
		} {
			if f.v.GetValue() < minBreaker {
				errs = append(errs, fmt.Errorf("%s.circuit_breakers.thresholds[%d].%s: %d, must be at least %d", at, i, f.name, f.v.GetValue(), minBreaker))
			}
		}
		return errors.Join(errs...)
	}
	return fmt.Errorf("%s.circuit_breakers: no DEFAULT thresholds (Envoy's 1024 applies)", at)
}
