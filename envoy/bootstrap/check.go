package bootstrap

import (
	"fmt"
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
)

// ProtocolOptionsKey is the typed_extension_protocol_options key under which a cluster declares its
// upstream HTTP protocol (HTTP/2 for gRPC clusters).
const ProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// defaultMessageTimeout is ext_proc's message_timeout when the field is unset.
const defaultMessageTimeout = 200 * time.Millisecond

// failer records one problem at path.
type failer func(path, format string, args ...any)

// crossCheck enforces what PGV cannot express: references between resources, filter order, ext_proc
// semantics Envoy checks only in C++, and mcpguard's fail-closed rules.
func crossCheck(b *bootstrapv3.Bootstrap, nodes []node) []error {
	var errs []error
	var fail failer = func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}

	if b.GetDynamicResources() != nil {
		// Cluster references into xDS cannot be checked offline; mcpguard ships a static bootstrap.
		fail("dynamic_resources", "not supported: references cannot be checked offline")
	}
	clusters := map[string]*clusterv3.Cluster{}
	for i, c := range b.GetStaticResources().GetClusters() {
		if _, dup := clusters[c.GetName()]; dup {
			fail(fmt.Sprintf("static_resources.clusters[%d](%s)", i, c.GetName()), "duplicate cluster name %q", c.GetName())
			continue
		}
		clusters[c.GetName()] = c
	}
	ref := func(path, name string) {
		if _, ok := clusters[name]; !ok {
			fail(path, "cluster %q is not defined", name)
		}
	}

	for _, n := range nodes {
		p := n.path
		switch m := n.msg.(type) {
		case *corev3.GrpcService:
			if g := m.GetEnvoyGrpc(); g != nil {
				c, ok := clusters[g.GetClusterName()]
				switch {
				case !ok:
					fail(p+".envoy_grpc.cluster_name", "cluster %q is not defined", g.GetClusterName())
				case !http2(c):
					fail(p+".envoy_grpc.cluster_name", "cluster %q must speak HTTP/2 for gRPC (typed_extension_protocol_options[%q].explicit_http_config.http2_protocol_options)", g.GetClusterName(), ProtocolOptionsKey)
				}
			}
		case *corev3.HttpUri:
			ref(p+".cluster", m.GetCluster())
		case *routev3.RouteAction:
			checkRoute(p, m, ref, fail)
		case *hcmv3.HttpConnectionManager:
			checkHCM(p, m, fail)
		case *authzv3.ExtAuthz:
			if m.GetFailureModeAllow() {
				fail(p+".failure_mode_allow", "must be false: mcpguard fails closed")
			}
			if m.GetGrpcService().GetEnvoyGrpc() == nil {
				fail(p+".grpc_service.envoy_grpc", "required: mcpguard serves ext_authz over gRPC through an Envoy cluster")
			}
			if m.GetShadowMode() {
				fail(p+".shadow_mode", "must be false: decisions would not be enforced")
			}
			if m.GetFilterEnabled() != nil || m.GetFilterEnabledMetadata() != nil {
				fail(p+".filter_enabled", "not supported: authorization applies to every request (disable it per route instead)")
			}
		case *procv3.ExternalProcessor:
			checkProc(p, m, fail)
		case *procv3.ExtProcPerRoute:
			o := m.GetOverrides()
			if o.GetFailureModeAllow().GetValue() {
				fail(p+".overrides.failure_mode_allow", "must be false: mcpguard fails closed")
			}
			if o.GetAsyncMode() { //nolint:staticcheck // SA1019: a deprecated field still configures Envoy, so it is checked
				fail(p+".overrides.async_mode", "must be false: mcpguard must be able to block and mask")
			}
			checkModes(p+".overrides.processing_mode", o.GetProcessingMode(), fail)
		}
	}
	return errs
}

func checkRoute(p string, a *routev3.RouteAction, ref func(path, name string), fail failer) {
	switch {
	case a.GetCluster() != "":
		ref(p+".cluster", a.GetCluster())
	case a.GetWeightedClusters() != nil:
		for i, w := range a.GetWeightedClusters().GetClusters() {
			ref(fmt.Sprintf("%s.weighted_clusters.clusters[%d].name", p, i), w.GetName())
		}
	default:
		// cluster_header and cluster specifier plugins pick the cluster at request time.
		fail(p, "cluster or weighted_clusters required: a cluster chosen at request time cannot be checked")
	}
	for i, m := range a.GetRequestMirrorPolicies() {
		if m.GetCluster() != "" {
			ref(fmt.Sprintf("%s.request_mirror_policies[%d].cluster", p, i), m.GetCluster())
		}
	}
}

func checkHCM(p string, h *hcmv3.HttpConnectionManager, fail failer) {
	if h.GetRouteConfig() == nil {
		fail(p+".route_config", "required: rds and scoped_routes cannot be checked offline")
	}
	fs := h.GetHttpFilters()
	if len(fs) == 0 {
		fail(p+".http_filters", "required: the router must be the last http filter")
		return
	}
	for i, f := range fs {
		fp := fmt.Sprintf("%s.http_filters[%d](%s)", p, i, f.GetName())
		if f.GetTypedConfig() == nil {
			fail(fp, "typed_config required: config_discovery cannot be checked offline")
			continue
		}
		guard := f.GetTypedConfig().MessageIs((*authzv3.ExtAuthz)(nil)) || f.GetTypedConfig().MessageIs((*procv3.ExternalProcessor)(nil))
		if guard && (f.GetDisabled() || f.GetIsOptional()) {
			// A filter disabled here runs only where a route re-enables it: everything else passes unchecked.
			fail(fp, "must be neither disabled nor optional: disable it per route instead")
		}
		isRouter := f.GetTypedConfig().MessageIs((*routerv3.Router)(nil))
		if isRouter && i != len(fs)-1 {
			fail(fp, "the router must be the last http filter")
		}
		if !isRouter && i == len(fs)-1 {
			fail(fp, "the last http filter must be the router (envoy.filters.http.router)")
		}
	}
}

func checkProc(p string, x *procv3.ExternalProcessor, fail failer) {
	if x.GetFailureModeAllow() {
		fail(p+".failure_mode_allow", "must be false: mcpguard fails closed")
	}
	if x.GetObservabilityMode() {
		fail(p+".observability_mode", "must be false: mcpguard must be able to block and mask")
	}
	if x.GetHttpService() != nil {
		fail(p+".http_service", "not supported: http_service cannot carry bodies; use grpc_service")
	}
	if x.GetGrpcService() == nil {
		fail(p+".grpc_service", "required: ext_proc needs a grpc_service")
	} else if x.GetGrpcService().GetEnvoyGrpc() == nil {
		fail(p+".grpc_service.envoy_grpc", "required: mcpguard serves ext_proc over gRPC through an Envoy cluster")
	}
	checkModes(p+".processing_mode", x.GetProcessingMode(), fail)
	msg := defaultMessageTimeout
	if x.GetMessageTimeout() != nil {
		msg = x.GetMessageTimeout().AsDuration()
	}
	// max_message_timeout 0 disables override_message_timeout; any other value is the ceiling.
	if mx := x.GetMaxMessageTimeout().AsDuration(); x.GetMaxMessageTimeout() != nil && mx != 0 && mx < msg {
		fail(p+".max_message_timeout", "%s must not be less than message_timeout %s", mx, msg)
	}
	if x.GetDisableClearRouteCache() && x.GetRouteCacheAction() != procv3.ExternalProcessor_DEFAULT {
		fail(p+".route_cache_action", "must not be set together with disable_clear_route_cache")
	}
}

// checkModes applies Envoy's rule that a FULL_DUPLEX_STREAMED body needs its trailers sent.
func checkModes(p string, m *procv3.ProcessingMode, fail failer) {
	if m.GetRequestBodyMode() == procv3.ProcessingMode_FULL_DUPLEX_STREAMED && m.GetRequestTrailerMode() != procv3.ProcessingMode_SEND {
		fail(p+".request_trailer_mode", "must be SEND when request_body_mode is FULL_DUPLEX_STREAMED")
	}
	if m.GetResponseBodyMode() == procv3.ProcessingMode_FULL_DUPLEX_STREAMED && m.GetResponseTrailerMode() != procv3.ProcessingMode_SEND {
		fail(p+".response_trailer_mode", "must be SEND when response_body_mode is FULL_DUPLEX_STREAMED")
	}
}

// http2 reports whether c speaks HTTP/2 upstream: explicitly, or by ALPN over TLS.
func http2(c *clusterv3.Cluster) bool {
	if c.GetHttp2ProtocolOptions() != nil { //nolint:staticcheck // deprecated form still accepted by Envoy; Warnings flags it
		return true
	}
	a := c.GetTypedExtensionProtocolOptions()[ProtocolOptionsKey]
	if a == nil {
		return false
	}
	var o upstreamv3.HttpProtocolOptions
	if err := a.UnmarshalTo(&o); err != nil {
		return false
	}
	if o.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil {
		return true
	}
	return o.GetAutoConfig().GetHttp2ProtocolOptions() != nil && c.GetTransportSocket() != nil
}
