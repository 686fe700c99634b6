package emulator

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	// Linked so that typed_config payloads resolve when unpacked.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	authzfv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	procfv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	httpoptsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Envoy defaults the emulator reproduces.
const (
	defaultBufferLimit   = 1 << 20
	defaultStreamIdle    = 300 * time.Second
	defaultRouteTimeout  = 15 * time.Second
	defaultGrpcTimeout   = 200 * time.Millisecond
	defaultMsgTimeout    = 200 * time.Millisecond
	defaultMaxRequests   = 1024
	defaultAuthzOnError  = 403
	defaultProcOnError   = 500
	filterExtAuthz       = "envoy.filters.http.ext_authz"
	filterExtProc        = "envoy.filters.http.ext_proc"
	filterRouter         = "envoy.filters.http.router"
	protocolOptionsKey   = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	requestHeadersLimitB = 60 << 10
	defaultMaxHeaders    = 100
)

// plan is the bootstrap reduced to what the emulator runs.
type plan struct {
	listen         string
	bufLimit       int64
	generateID     bool
	useRemote      bool
	streamIdle     time.Duration
	requestTimeout time.Duration
	headersTimeout time.Duration
	headerLimits   headerLimits
	vhosts         []*vhost
	authz          *authzConf // nil: no ext_authz filter
	proc           *procConf  // nil: no ext_proc filter
	clusters       map[string]*cluster
}

type vhost struct {
	domains []string
	routes  []*route
}

type route struct {
	name         string
	prefix       string
	path         string
	re           *regexp.Regexp
	cluster      string
	timeout      time.Duration
	idleTimeout  time.Duration // 0: the HCM stream_idle_timeout applies
	idleSet      bool
	authzOff     bool
	authzExt     map[string]string
	procOff      bool
	procMode     *mode
	procFailOpen *bool
}

type cluster struct {
	name           string
	addr           string // host:port or unix:/path
	h2             bool
	connectTimeout time.Duration
	maxRequests    int64
	keepalive      time.Duration
	keepaliveTO    time.Duration
}

type authzConf struct {
	cluster       string
	authority     string
	timeout       time.Duration
	metadata      [][2]string
	failOpen      bool
	failOpenHdr   bool
	statusOnError int
	rawHeaders    bool
}

type procConf struct {
	cluster          string
	authority        string
	metadata         [][2]string
	failOpen         bool
	mode             mode
	modeProto        *procfv3.ProcessingMode // as configured: the base of a mode_override
	reqAttrs         []string
	respAttrs        []string
	msgTimeout       time.Duration
	maxMsgTimeout    time.Duration
	allowOverride    bool
	allowedOverrides []*procfv3.ProcessingMode
	disableImmediate bool
	forwardNS        []string
	receiveNS        []string
	statusOnError    int
}

// mode is a resolved ProcessingMode: header and trailer modes are booleans (send or not).
type mode struct {
	reqHeaders, respHeaders   bool
	reqTrailers, respTrailers bool
	reqBody, respBody         procfv3.ProcessingMode_BodySendMode
}

func modeFrom(m *procfv3.ProcessingMode) mode {
	return mode{
		reqHeaders:   m.GetRequestHeaderMode() != procfv3.ProcessingMode_SKIP,
		respHeaders:  m.GetResponseHeaderMode() != procfv3.ProcessingMode_SKIP,
		reqTrailers:  m.GetRequestTrailerMode() == procfv3.ProcessingMode_SEND,
		respTrailers: m.GetResponseTrailerMode() == procfv3.ProcessingMode_SEND,
		reqBody:      m.GetRequestBodyMode(),
		respBody:     m.GetResponseBodyMode(),
	}
}

// attributes the emulator can evaluate; any other CEL expression is refused by New.
var knownAttrs = map[string]bool{
	"request.id": true, "request.path": true, "request.url_path": true, "request.method": true,
	"request.host": true, "request.scheme": true, "request.protocol": true, "request.query": true,
	"source.address": true, "source.port": true, "destination.address": true, "destination.port": true,
	"connection.mtls": true, "xds.route_name": true, "xds.cluster_name": true, "response.code": true,
}

// compile checks b against the allow-list and reduces it to a plan, returning every problem at once.
func compile(b *bootstrapv3.Bootstrap) (*plan, error) {
	if b == nil {
		return nil, errors.New("bootstrap: missing")
	}
	if err := checkFields(b.ProtoReflect(), "bootstrap"); err != nil {
		return nil, err
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	p := &plan{clusters: map[string]*cluster{}}

	for i, c := range b.GetStaticResources().GetClusters() {
		cl, err := compileCluster(c)
		if err != nil {
			bad("clusters[%d]: %w", i, err)
			continue
		}
		if p.clusters[cl.name] != nil {
			bad("clusters[%d].name: duplicate %q", i, cl.name)
		}
		p.clusters[cl.name] = cl
	}

	ls := b.GetStaticResources().GetListeners()
	if len(ls) != 1 {
		bad("static_resources.listeners: exactly one listener emulated, got %d", len(ls))
		return nil, errors.Join(errs...)
	}
	l := ls[0]
	sa := l.GetAddress().GetSocketAddress()
	p.listen = net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue())))
	p.bufLimit = defaultBufferLimit
	if v := l.GetPerConnectionBufferLimitBytes(); v != nil {
		p.bufLimit = int64(v.GetValue())
	}
	if len(l.GetFilterChains()) != 1 || len(l.GetFilterChains()[0].GetFilters()) != 1 {
		bad("listeners[0].filter_chains: exactly one chain with one HttpConnectionManager emulated")
		return nil, errors.Join(errs...)
	}
	tc := l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig()
	var hcm hcmv3.HttpConnectionManager
	if tc.GetTypeUrl() != typeHCM || tc.UnmarshalTo(&hcm) != nil {
		bad("listeners[0].filter_chains[0].filters[0]: HttpConnectionManager required")
		return nil, errors.Join(errs...)
	}
	if err := p.compileHCM(&hcm); err != nil {
		errs = append(errs, err)
	}
	return p, errors.Join(errs...)
}

func compileCluster(c *clusterv3.Cluster) (*cluster, error) {
	var errs []error
	cl := &cluster{name: c.GetName(), maxRequests: defaultMaxRequests, connectTimeout: 5 * time.Second}
	if cl.name == "" {
		errs = append(errs, errors.New("name: required"))
	}
	switch c.GetType() {
	case clusterv3.Cluster_STATIC, clusterv3.Cluster_STRICT_DNS, clusterv3.Cluster_LOGICAL_DNS:
	default:
		errs = append(errs, fmt.Errorf("type: %s not emulated", c.GetType()))
	}
	if c.GetLbPolicy() != clusterv3.Cluster_ROUND_ROBIN {
		errs = append(errs, fmt.Errorf("lb_policy: %s not emulated", c.GetLbPolicy()))
	}
	if d := c.GetConnectTimeout(); d != nil {
		cl.connectTimeout = d.AsDuration()
	}
	var addrs []string
	for _, e := range c.GetLoadAssignment().GetEndpoints() {
		for _, le := range e.GetLbEndpoints() {
			a := le.GetEndpoint().GetAddress()
			if p := a.GetPipe(); p != nil {
				addrs = append(addrs, "unix:"+p.GetPath())
				continue
			}
			sa := a.GetSocketAddress()
			addrs = append(addrs, net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue()))))
		}
	}
	if len(addrs) != 1 {
		errs = append(errs, fmt.Errorf("load_assignment: exactly one endpoint emulated, got %d", len(addrs)))
	} else {
		cl.addr = addrs[0]
	}
	for _, t := range c.GetCircuitBreakers().GetThresholds() {
		if t.GetPriority() != corev3.RoutingPriority_DEFAULT {
			// Only DEFAULT-priority traffic exists here, so HIGH thresholds never apply.
			continue
		}
		if v := t.GetMaxRequests(); v != nil {
			cl.maxRequests = int64(v.GetValue())
		}
	}
	if a, ok := c.GetTypedExtensionProtocolOptions()[protocolOptionsKey]; ok {
		if err := cl.protocolOptions(a); err != nil {
			errs = append(errs, err)
		}
	}
	for k := range c.GetTypedExtensionProtocolOptions() {
		if k != protocolOptionsKey {
			errs = append(errs, fmt.Errorf("typed_extension_protocol_options[%s]: not emulated", k))
		}
	}
	return cl, errors.Join(errs...)
}

func (cl *cluster) protocolOptions(a *anypb.Any) error {
	var o httpoptsv3.HttpProtocolOptions
	if a.GetTypeUrl() != typeHTTPOptions || a.UnmarshalTo(&o) != nil {
		return fmt.Errorf("typed_extension_protocol_options[%s]: unexpected type %s", protocolOptionsKey, a.GetTypeUrl())
	}
	ex := o.GetExplicitHttpConfig()
	if ex == nil {
		return fmt.Errorf("typed_extension_protocol_options[%s]: explicit_http_config required", protocolOptionsKey)
	}
	if h2 := ex.GetHttp2ProtocolOptions(); h2 != nil {
		cl.h2 = true
		cl.keepalive = ex.GetHttp2ProtocolOptions().GetConnectionKeepalive().GetInterval().AsDuration()
		cl.keepaliveTO = h2.GetConnectionKeepalive().GetTimeout().AsDuration()
	}
	return nil
}

func (p *plan) compileHCM(h *hcmv3.HttpConnectionManager) error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	p.generateID = h.GetGenerateRequestId() == nil || h.GetGenerateRequestId().GetValue()
	p.useRemote = h.GetUseRemoteAddress().GetValue()
	p.streamIdle = durOr(h.GetStreamIdleTimeout(), defaultStreamIdle)
	p.requestTimeout = h.GetRequestTimeout().AsDuration()
	p.headersTimeout = h.GetRequestHeadersTimeout().AsDuration()
	p.headerLimits = headerLimits{bytes: requestHeadersLimitB, count: defaultMaxHeaders}
	if v := h.GetMaxRequestHeadersKb(); v != nil {
		p.headerLimits.bytes = int(v.GetValue()) << 10
	}
	if v := h.GetCommonHttpProtocolOptions().GetMaxHeadersCount(); v != nil {
		p.headerLimits.count = int(v.GetValue())
	}
	for i, al := range h.GetAccessLog() {
		if al.GetTypedConfig().GetTypeUrl() != typeStdoutLogger {
			bad("hcm.access_log[%d]: only the stdout logger is emulated", i)
		}
	}
	fs := h.GetHttpFilters()
	if len(fs) == 0 || fs[len(fs)-1].GetTypedConfig().GetTypeUrl() != typeRouter {
		bad("hcm.http_filters: the router must be the last filter")
	}
	seen := map[string]bool{}
	order := []string{}
	for i, f := range fs {
		tu := f.GetTypedConfig().GetTypeUrl()
		if seen[tu] {
			bad("hcm.http_filters[%d]: a second %s filter is not emulated", i, roots[tu])
		}
		seen[tu] = true
		order = append(order, tu)
		switch tu {
		case typeExtAuthz:
			var c authzfv3.ExtAuthz
			if err := f.GetTypedConfig().UnmarshalTo(&c); err != nil {
				bad("hcm.http_filters[%d]: decode ext_authz: %w", i, err)
				continue
			}
			a, err := p.compileAuthz(&c)
			if err != nil {
				bad("hcm.http_filters[%d]: %w", i, err)
			}
			p.authz = a
		case typeExtProc:
			var c procfv3.ExternalProcessor
			if err := f.GetTypedConfig().UnmarshalTo(&c); err != nil {
				bad("hcm.http_filters[%d]: decode ext_proc: %w", i, err)
				continue
			}
			pc, err := p.compileProc(&c)
			if err != nil {
				bad("hcm.http_filters[%d]: %w", i, err)
			}
			p.proc = pc
		case typeRouter:
		default:
			bad("hcm.http_filters[%d]: %s not emulated", i, tu)
		}
	}
	if seen[typeExtAuthz] && seen[typeExtProc] && indexOf(order, typeExtAuthz) > indexOf(order, typeExtProc) {
		bad("hcm.http_filters: ext_proc before ext_authz is not emulated")
	}
	rc := h.GetRouteConfig()
	if rc == nil {
		bad("hcm.route_config: required (rds is not emulated)")
	}
	for i, v := range rc.GetVirtualHosts() {
		vh := &vhost{domains: v.GetDomains()}
		for j, r := range v.GetRoutes() {
			rt, err := p.compileRoute(r)
			if err != nil {
				bad("hcm.route_config.virtual_hosts[%d].routes[%d]: %w", i, j, err)
				continue
			}
			vh.routes = append(vh.routes, rt)
		}
		p.vhosts = append(p.vhosts, vh)
	}
	return errors.Join(errs...)
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func (p *plan) grpcCluster(name string) error {
	c := p.clusters[name]
	if c == nil {
		return fmt.Errorf("grpc_service.envoy_grpc.cluster_name: unknown cluster %q", name)
	}
	if !c.h2 {
		return fmt.Errorf("grpc_service.envoy_grpc.cluster_name: cluster %q must speak HTTP/2", name)
	}
	return nil
}

func (p *plan) compileAuthz(c *authzfv3.ExtAuthz) (*authzConf, error) {
	var errs []error
	g := c.GetGrpcService()
	a := &authzConf{
		cluster:       g.GetEnvoyGrpc().GetClusterName(),
		authority:     g.GetEnvoyGrpc().GetAuthority(),
		timeout:       durOr(g.GetTimeout(), defaultGrpcTimeout),
		failOpen:      c.GetFailureModeAllow(),
		failOpenHdr:   c.GetFailureModeAllowHeaderAdd(),
		statusOnError: defaultAuthzOnError,
		rawHeaders:    c.GetEncodeRawHeaders(),
	}
	for _, m := range g.GetInitialMetadata() {
		a.metadata = append(a.metadata, [2]string{m.GetKey(), m.GetValue()})
	}
	if g == nil {
		errs = append(errs, errors.New("ext_authz.grpc_service: required (http_service is not emulated)"))
	} else if err := p.grpcCluster(a.cluster); err != nil {
		errs = append(errs, fmt.Errorf("ext_authz.%w", err))
	}
	if c.GetTransportApiVersion() != corev3.ApiVersion_V3 {
		errs = append(errs, errors.New("ext_authz.transport_api_version: must be V3"))
	}
	if s := c.GetStatusOnError(); s != nil && s.GetCode() != 0 {
		a.statusOnError = int(s.GetCode())
	}
	return a, errors.Join(errs...)
}

func (p *plan) compileProc(c *procfv3.ExternalProcessor) (*procConf, error) {
	var errs []error
	g := c.GetGrpcService()
	pc := &procConf{
		cluster:          g.GetEnvoyGrpc().GetClusterName(),
		authority:        g.GetEnvoyGrpc().GetAuthority(),
		failOpen:         c.GetFailureModeAllow(),
		mode:             modeFrom(c.GetProcessingMode()),
		modeProto:        c.GetProcessingMode(),
		reqAttrs:         c.GetRequestAttributes(),
		respAttrs:        c.GetResponseAttributes(),
		msgTimeout:       durOr(c.GetMessageTimeout(), defaultMsgTimeout),
		maxMsgTimeout:    c.GetMaxMessageTimeout().AsDuration(),
		allowOverride:    c.GetAllowModeOverride(),
		disableImmediate: c.GetDisableImmediateResponse(),
		forwardNS:        c.GetMetadataOptions().GetForwardingNamespaces().GetUntyped(),
		receiveNS:        c.GetMetadataOptions().GetReceivingNamespaces().GetUntyped(),
		statusOnError:    defaultProcOnError,
	}
	for _, m := range g.GetInitialMetadata() {
		pc.metadata = append(pc.metadata, [2]string{m.GetKey(), m.GetValue()})
	}
	if g == nil {
		errs = append(errs, errors.New("ext_proc.grpc_service: required (http_service is not emulated)"))
	} else if err := p.grpcCluster(pc.cluster); err != nil {
		errs = append(errs, fmt.Errorf("ext_proc.%w", err))
	}
	pc.allowedOverrides = c.GetAllowedOverrideModes()
	if s := c.GetStatusOnError(); s != nil && s.GetCode() != 0 {
		pc.statusOnError = int(s.GetCode())
	}
	if err := checkMode("ext_proc.processing_mode", pc.mode); err != nil {
		errs = append(errs, err)
	}
	for i, a := range c.GetRequestAttributes() {
		if !knownAttrs[a] || strings.HasPrefix(a, "response.") {
			errs = append(errs, fmt.Errorf("ext_proc.request_attributes[%d]: %q not emulated", i, a))
		}
	}
	for i, a := range c.GetResponseAttributes() {
		if !knownAttrs[a] {
			errs = append(errs, fmt.Errorf("ext_proc.response_attributes[%d]: %q not emulated", i, a))
		}
	}
	return pc, errors.Join(errs...)
}

// checkMode refuses modes Envoy refuses at load (FULL_DUPLEX_STREAMED without trailer SEND) and the
// GRPC body mode, which Envoy does not implement.
func checkMode(path string, m mode) error {
	var errs []error
	if m.reqBody == procfv3.ProcessingMode_GRPC || m.respBody == procfv3.ProcessingMode_GRPC {
		errs = append(errs, fmt.Errorf("%s: GRPC body mode is not implemented by Envoy", path))
	}
	if m.reqBody == procfv3.ProcessingMode_FULL_DUPLEX_STREAMED && !m.reqTrailers {
		errs = append(errs, fmt.Errorf("%s.request_trailer_mode: must be SEND with FULL_DUPLEX_STREAMED", path))
	}
	if m.respBody == procfv3.ProcessingMode_FULL_DUPLEX_STREAMED && !m.respTrailers {
		errs = append(errs, fmt.Errorf("%s.response_trailer_mode: must be SEND with FULL_DUPLEX_STREAMED", path))
	}
	return errors.Join(errs...)
}

func (p *plan) compileRoute(r *routev3.Route) (*route, error) {
	var errs []error
	rt := &route{name: r.GetName(), cluster: r.GetRoute().GetCluster(), timeout: durOr(r.GetRoute().GetTimeout(), defaultRouteTimeout)}
	m := r.GetMatch()
	switch {
	case m.GetSafeRegex() != nil:
		re, err := regexp.Compile("^(?:" + m.GetSafeRegex().GetRegex() + ")$")
		if err != nil {
			errs = append(errs, fmt.Errorf("match.safe_regex.regex: %w", err))
		}
		rt.re = re
	case m.GetPath() != "":
		rt.path = m.GetPath()
	default:
		rt.prefix = m.GetPrefix()
	}
	if r.GetRoute() == nil {
		errs = append(errs, errors.New("route: required (redirect and direct_response are not emulated)"))
	} else if p.clusters[rt.cluster] == nil {
		errs = append(errs, fmt.Errorf("route.cluster: unknown cluster %q", rt.cluster))
	}
	if d := r.GetRoute().GetIdleTimeout(); d != nil {
		rt.idleTimeout, rt.idleSet = d.AsDuration(), true
	}
	for name, a := range r.GetTypedPerFilterConfig() {
		switch name {
		case filterExtAuthz:
			var c authzfv3.ExtAuthzPerRoute
			if a.GetTypeUrl() != typeExtAuthzR || a.UnmarshalTo(&c) != nil {
				errs = append(errs, fmt.Errorf("typed_per_filter_config[%s]: ExtAuthzPerRoute required", name))
				continue
			}
			rt.authzOff = c.GetDisabled()
			rt.authzExt = c.GetCheckSettings().GetContextExtensions()
		case filterExtProc:
			var c procfv3.ExtProcPerRoute
			if a.GetTypeUrl() != typeExtProcR || a.UnmarshalTo(&c) != nil {
				errs = append(errs, fmt.Errorf("typed_per_filter_config[%s]: ExtProcPerRoute required", name))
				continue
			}
			rt.procOff = c.GetDisabled()
			if o := c.GetOverrides(); o != nil {
				if pm := o.GetProcessingMode(); pm != nil {
					md := modeFrom(pm)
					rt.procMode = &md
					if err := checkMode(fmt.Sprintf("typed_per_filter_config[%s].overrides.processing_mode", name), md); err != nil {
						errs = append(errs, err)
					}
				}
				if fa := o.GetFailureModeAllow(); fa != nil {
					v := fa.GetValue()
					rt.procFailOpen = &v
				}
			}
		default:
			errs = append(errs, fmt.Errorf("typed_per_filter_config[%s]: not emulated", name))
		}
	}
	return rt, errors.Join(errs...)
}

func durOr(d *durationpb.Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return d.AsDuration()
}
