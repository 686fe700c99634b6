package deploy_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	authzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	procv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	istionet "istio.io/api/networking/v1alpha3"
	istiosec "istio.io/api/security/v1beta1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwapiv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/mcpguard/mcpguard/envoy/bootstrap"
	"github.com/mcpguard/mcpguard/identity"
)

// recipeSchemas holds the CRD schemas of Envoy Gateway, the Gateway API and Istio, read from
// the modules this module requires (the versions go.sum pins), and strict decoders into their
// Go API types.
func recipeSchemas(t *testing.T) *schemas {
	t.Helper()
	var s schemas
	eg := moduleDir(t, "github.com/envoyproxy/gateway")
	s.addCRDs(t, glob(t, filepath.Join(eg, "charts/gateway-helm/charts/crds/crds/generated/*.yaml"))...)
	gw := moduleDir(t, "sigs.k8s.io/gateway-api")
	s.addCRDs(t, glob(t, filepath.Join(gw, "config/crd/standard/*.yaml"))...)
	s.addCRDs(t, filepath.Join(moduleDir(t, "istio.io/api"), "kubernetes/customresourcedefinitions.gen.yaml"))

	// Envoy Gateway and the Gateway API: strict decoding into their Go types, as for built-ins.
	sch := runtime.NewScheme()
	require.NoError(t, egv1a1.AddToScheme(sch))
	require.NoError(t, gwapiv1.Install(sch))
	require.NoError(t, gwapiv1b1.Install(sch))
	strict := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, sch, sch, kjson.SerializerOptions{Strict: true})
	s.typed = map[schema.GroupVersionKind]func([]byte) error{}
	for gvk := range sch.AllKnownTypes() {
		s.typed[gvk] = func(js []byte) error {
			_, _, err := strict.Decode(js, nil, nil)
			return err
		}
	}
	// Istio: the spec is an istio.io/api protobuf message; protojson refuses unknown fields
	// (Istio's own JSON unmarshalers allow them).
	for _, k := range []struct {
		gvk schema.GroupVersionKind
		msg func() proto.Message
	}{
		{schema.GroupVersionKind{Group: "security.istio.io", Version: "v1", Kind: "AuthorizationPolicy"}, func() proto.Message { return &istiosec.AuthorizationPolicy{} }},
		{schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1alpha3", Kind: "EnvoyFilter"}, func() proto.Message { return &istionet.EnvoyFilter{} }},
		{schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "DestinationRule"}, func() proto.Message { return &istionet.DestinationRule{} }},
		{schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "VirtualService"}, func() proto.Message { return &istionet.VirtualService{} }},
	} {
		s.typed[k.gvk] = func(js []byte) error {
			var o struct {
				Spec json.RawMessage `json:"spec"`
			}
			if err := json.Unmarshal(js, &o); err != nil {
				return err
			}
			return protojson.Unmarshal(o.Spec, k.msg())
		}
	}
	return &s
}

func readObjects(t *testing.T, file string) []object {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	return splitObjects(t, file, string(data))
}

// TestRecipesValidate holds every object of the recipes to its CRD schema and Go API type.
func TestRecipesValidate(t *testing.T) {
	s := recipeSchemas(t)
	for _, f := range []string{"gateway/mcpguard.yaml", "istio/mcpguard.yaml"} {
		objs := readObjects(t, f)
		require.NotEmpty(t, objs)
		for _, o := range objs {
			require.NoError(t, s.validate(o), f)
		}
	}
	// The istiod values: strictly a MeshConfig.
	var mesh struct {
		MeshConfig json.RawMessage `json:"meshConfig"`
	}
	data, err := os.ReadFile("istio/meshconfig.yaml")
	require.NoError(t, err)
	require.NoError(t, yaml.UnmarshalStrict(data, &mesh))
	require.NoError(t, protojson.Unmarshal(mesh.MeshConfig, &meshv1alpha1.MeshConfig{}))
}

// TestRecipeSchemasCatch: the recipe validators refuse a misspelled field, in each project's
// schema and type.
func TestRecipeSchemasCatch(t *testing.T) {
	s := recipeSchemas(t)
	for name, tc := range map[string]struct {
		file, kind, from, to, needle, want string
	}{
		"Envoy Gateway field":   {"gateway/mcpguard.yaml", "EnvoyExtensionPolicy", "messageTimeout:", "messageTimeouts:", `"messageTimeouts"`, "messageTimeouts"},
		"Envoy Gateway enum":    {"gateway/mcpguard.yaml", "EnvoyExtensionPolicy", "body: Buffered ", "body: Buffer ", `"Buffer"`, "Buffer"},
		"Gateway API field":     {"gateway/mcpguard.yaml", "HTTPRoute", "timeouts:", "timeout:", `"timeout"`, "timeout"},
		"Istio field":           {"istio/mcpguard.yaml", "AuthorizationPolicy", "provider:", "providers:", `"providers"`, "providers"},
		"Istio enum":            {"istio/mcpguard.yaml", "EnvoyFilter", "operation: INSERT_BEFORE", "operation: INSERT_AFTERWARDS", "INSERT_AFTERWARDS", "INSERT_AFTERWARDS"},
		"Istio DestinationRule": {"istio/mcpguard.yaml", "DestinationRule", "http2MaxRequests", "http2MaxRequest", `"http2MaxRequest"`, "http2MaxRequest"},
	} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(tc.file)
			require.NoError(t, err)
			require.Contains(t, string(data), tc.from)
			bad := strings.Replace(string(data), tc.from, tc.to, 1)
			for _, o := range splitObjects(t, tc.file, bad) {
				if o.u.GetKind() == tc.kind && strings.Contains(string(o.json), tc.needle) {
					err := s.validate(o)
					require.Error(t, err)
					require.Contains(t, err.Error(), tc.want)
					return
				}
			}
			t.Fatalf("no mutated %s", tc.kind)
		})
	}
}

// shipped is envoy/envoy.yaml, the bootstrap a derived configuration is spliced into: the
// parts a recipe determines replace the shipped ones, the rest stays.
func shipped(t *testing.T) (*bootstrapv3.Bootstrap, *hcmv3.HttpConnectionManager) {
	t.Helper()
	b, err := bootstrap.Load("../envoy/envoy.yaml")
	require.NoError(t, err)
	var hcm hcmv3.HttpConnectionManager
	require.NoError(t, b.StaticResources.Listeners[0].FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(&hcm))
	return b, &hcm
}

// splice puts the derived filters, HCM and cluster into b and returns the result of
// [bootstrap.Validate] (every PGV rule) and [bootstrap.CheckWith].
func splice(t *testing.T, b *bootstrapv3.Bootstrap, hcm *hcmv3.HttpConnectionManager, az *authzv3.ExtAuthz, pr *procv3.ExternalProcessor, cl *clusterv3.Cluster, hold time.Duration) (validate, check error) {
	t.Helper()
	for _, f := range hcm.HttpFilters {
		var m proto.Message
		switch f.Name {
		case "envoy.filters.http.ext_authz":
			m = az
		case "envoy.filters.http.ext_proc":
			m = pr
		default:
			continue
		}
		a, err := anypb.New(m)
		require.NoError(t, err)
		f.ConfigType = &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}
	}
	a, err := anypb.New(hcm)
	require.NoError(t, err)
	b.StaticResources.Listeners[0].FilterChains[0].Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
	for i, c := range b.StaticResources.Clusters {
		if c.Name == "mcpguard_grpc" {
			cl.Name, cl.LoadAssignment = c.Name, c.LoadAssignment
			cl.ClusterDiscoveryType, cl.ConnectTimeout = c.ClusterDiscoveryType, c.ConnectTimeout
			b.StaticResources.Clusters[i] = cl
		}
	}
	return bootstrap.Validate(b), bootstrap.CheckWith(b, bootstrap.Options{Hold: hold})
}

func mainRoute(t *testing.T, hcm *hcmv3.HttpConnectionManager) *routev3.Route {
	t.Helper()
	for _, r := range hcm.GetRouteConfig().GetVirtualHosts()[0].GetRoutes() {
		if r.GetMatch().GetPrefix() == "/" {
			return r
		}
	}
	t.Fatal("no catch-all route in envoy/envoy.yaml")
	return nil
}

// chartHold is approvals.hold of the chart's default values: the recipes must outlast it.
func chartHold(t *testing.T) time.Duration {
	t.Helper()
	r := index(t, renderObjects(t, nil, nil))
	return duration(t, r.config, "approvals", "hold")
}

// decodeAs strictly decodes the recipe's object of kind (and name, if given) into v.
func decodeAs(t *testing.T, objs []object, kind, name string, v any) {
	t.Helper()
	for _, o := range objs {
		if o.u.GetKind() == kind && (name == "" || o.u.GetName() == name) {
			require.NoError(t, yaml.UnmarshalStrict(o.json, v))
			return
		}
	}
	t.Fatalf("no %s %s", kind, name)
}

// egExtProc is the ext_proc filter Envoy Gateway v1.9.1 writes for one EnvoyExtensionPolicy
// extProc entry: internal/gatewayapi/envoyextensionpolicy.go (buildExtProc, API → IR) and
// internal/xds/translator/extproc.go (extProcConfig, buildProcessingMode; IR → xDS), which
// are internal packages and cannot be imported. Unset modes are SKIP/NONE; a request or
// response block turns its headers on.
func egExtProc(t *testing.T, ep egv1a1.ExtProc) *procv3.ExternalProcessor {
	t.Helper()
	pm := &procv3.ProcessingMode{
		RequestHeaderMode: procv3.ProcessingMode_SKIP, ResponseHeaderMode: procv3.ProcessingMode_SKIP,
		RequestBodyMode: procv3.ProcessingMode_NONE, ResponseBodyMode: procv3.ProcessingMode_NONE,
		RequestTrailerMode: procv3.ProcessingMode_SKIP, ResponseTrailerMode: procv3.ProcessingMode_SKIP,
	}
	body := func(m *egv1a1.ExtProcBodyProcessingMode) procv3.ProcessingMode_BodySendMode {
		switch *m {
		case egv1a1.BufferedExtProcBodyProcessingMode:
			return procv3.ProcessingMode_BUFFERED
		case egv1a1.BufferedPartialExtBodyHeaderProcessingMode:
			return procv3.ProcessingMode_BUFFERED_PARTIAL
		case egv1a1.StreamedExtProcBodyProcessingMode:
			return procv3.ProcessingMode_STREAMED
		case egv1a1.FullDuplexStreamedExtBodyProcessingMode:
			return procv3.ProcessingMode_FULL_DUPLEX_STREAMED
		}
		return procv3.ProcessingMode_NONE
	}
	c := &procv3.ExternalProcessor{
		GrpcService: &corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: "mcpguard_grpc"}},
			Timeout:         durationpb.New(10 * time.Second), // defaultExtServiceRequestTimeout
		},
		ProcessingMode: pm,
	}
	if m := ep.ProcessingMode; m != nil {
		if r := m.Request; r != nil {
			pm.RequestHeaderMode = procv3.ProcessingMode_SEND
			if r.Body != nil {
				pm.RequestBodyMode = body(r.Body)
				if pm.RequestBodyMode == procv3.ProcessingMode_FULL_DUPLEX_STREAMED {
					pm.RequestTrailerMode = procv3.ProcessingMode_SEND
				}
			}
			c.RequestAttributes = append(c.RequestAttributes, r.Attributes...)
		}
		if r := m.Response; r != nil {
			pm.ResponseHeaderMode = procv3.ProcessingMode_SEND
			if r.Body != nil {
				pm.ResponseBodyMode = body(r.Body)
				if pm.ResponseBodyMode == procv3.ProcessingMode_FULL_DUPLEX_STREAMED {
					pm.ResponseTrailerMode = procv3.ProcessingMode_SEND
				}
			}
			c.ResponseAttributes = append(c.ResponseAttributes, r.Attributes...)
		}
		c.AllowModeOverride = m.AllowModeOverride
	}
	if ep.ShadowMode != nil {
		c.ObservabilityMode = *ep.ShadowMode
	}
	if ep.FailOpen != nil {
		c.FailureModeAllow = *ep.FailOpen
	}
	if ep.MessageTimeout != nil {
		d, err := time.ParseDuration(string(*ep.MessageTimeout))
		require.NoError(t, err)
		c.MessageTimeout = durationpb.New(d)
	}
	if md := ep.Metadata; md != nil {
		c.MetadataOptions = &procv3.MetadataOptions{}
		if md.AccessibleNamespaces != nil {
			c.MetadataOptions.ForwardingNamespaces = &procv3.MetadataOptions_MetadataNamespaces{Untyped: md.AccessibleNamespaces}
		}
		if md.WritableNamespaces != nil {
			c.MetadataOptions.ReceivingNamespaces = &procv3.MetadataOptions_MetadataNamespaces{Untyped: md.WritableNamespaces}
		}
	}
	if ep.StatusOnError != nil {
		c.StatusOnError = &typev3.HttpStatus{Code: typev3.StatusCode(*ep.StatusOnError)}
	}
	return c
}

// egExtAuthz is the ext_authz filter Envoy Gateway v1.9.1 writes for a SecurityPolicy's gRPC
// extAuth (internal/xds/translator/extauth.go, extAuthConfig), and the per-route settings it
// puts on the targeted route (context extensions).
func egExtAuthz(t *testing.T, ea egv1a1.ExtAuth) (*authzv3.ExtAuthz, *authzv3.ExtAuthzPerRoute) {
	t.Helper()
	require.NotNil(t, ea.GRPC, "mcpguard serves ext_authz over gRPC")
	timeout := 10 * time.Second
	if ea.Timeout != nil {
		d, err := time.ParseDuration(string(*ea.Timeout))
		require.NoError(t, err)
		timeout = d
	}
	c := &authzv3.ExtAuthz{
		TransportApiVersion: corev3.ApiVersion_V3,
		Services: &authzv3.ExtAuthz_GrpcService{GrpcService: &corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: "mcpguard_grpc"}},
			Timeout:         durationpb.New(timeout),
		}},
	}
	if ea.FailOpen != nil {
		c.FailureModeAllow = *ea.FailOpen
	}
	if ea.BodyToExtAuth != nil {
		c.WithRequestBody = &authzv3.BufferSettings{MaxRequestBytes: ea.BodyToExtAuth.MaxRequestBytes}
	}
	if ea.StatusOnError != nil {
		c.StatusOnError = &typev3.HttpStatus{Code: typev3.StatusCode(*ea.StatusOnError)}
	}
	ext := map[string]string{}
	for _, e := range ea.ContextExtensions {
		require.Equal(t, egv1a1.ContextExtensionValueTypeValue, e.Type, "context extension %s: only literal values are modelled", e.Name)
		ext[e.Name] = *e.Value
	}
	return c, &authzv3.ExtAuthzPerRoute{Override: &authzv3.ExtAuthzPerRoute_CheckSettings{CheckSettings: &authzv3.CheckSettings{ContextExtensions: ext}}}
}

// grpcCluster is the cluster a control plane writes for mcpguard's gRPC Service: explicit
// HTTP/2 with the given keepalive, and DEFAULT circuit breakers.
func grpcCluster(t *testing.T, keepalive *corev3.KeepaliveSettings, conns, pending, requests uint32) *clusterv3.Cluster {
	t.Helper()
	po, err := anypb.New(&upstreamv3.HttpProtocolOptions{UpstreamProtocolOptions: &upstreamv3.HttpProtocolOptions_ExplicitHttpConfig_{
		ExplicitHttpConfig: &upstreamv3.HttpProtocolOptions_ExplicitHttpConfig{ProtocolConfig: &upstreamv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
			Http2ProtocolOptions: &corev3.Http2ProtocolOptions{ConnectionKeepalive: keepalive},
		}},
	}})
	require.NoError(t, err)
	return &clusterv3.Cluster{
		TypedExtensionProtocolOptions: map[string]*anypb.Any{bootstrap.ProtocolOptionsKey: po},
		CircuitBreakers: &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
			Priority:           corev3.RoutingPriority_DEFAULT,
			MaxConnections:     wrapperspb.UInt32(conns),
			MaxPendingRequests: wrapperspb.UInt32(pending),
			MaxRequests:        wrapperspb.UInt32(requests),
		}}},
	}
}

func egCluster(t *testing.T, bs *egv1a1.ClusterSettings) *clusterv3.Cluster {
	t.Helper()
	require.NotNil(t, bs)
	u32 := func(p *int64) uint32 {
		if p == nil {
			return 1024 // Envoy's default
		}
		return uint32(*p)
	}
	var ka *corev3.KeepaliveSettings
	if h := bs.HTTP2; h != nil && h.ConnectionKeepalive != nil {
		ka = &corev3.KeepaliveSettings{}
		if h.ConnectionKeepalive.Interval != nil {
			d, err := time.ParseDuration(string(*h.ConnectionKeepalive.Interval))
			require.NoError(t, err)
			ka.Interval = durationpb.New(d)
		}
		if h.ConnectionKeepalive.Timeout != nil {
			d, err := time.ParseDuration(string(*h.ConnectionKeepalive.Timeout))
			require.NoError(t, err)
			ka.Timeout = durationpb.New(d)
		}
	}
	cb := bs.CircuitBreaker
	if cb == nil {
		cb = &egv1a1.CircuitBreaker{}
	}
	return grpcCluster(t, ka, u32(cb.MaxConnections), u32(cb.MaxPendingRequests), u32(cb.MaxParallelRequests))
}

func gwDuration(t *testing.T, d *gwapiv1.Duration) *durationpb.Duration {
	t.Helper()
	if d == nil {
		return nil
	}
	v, err := time.ParseDuration(string(*d))
	require.NoError(t, err)
	return durationpb.New(v)
}

// egRecipe is the Envoy Gateway recipe decoded into Envoy Gateway's and the Gateway API's
// Go types.
type egRecipe struct {
	route  gwapiv1.HTTPRoute
	sec    egv1a1.SecurityPolicy
	ext    egv1a1.EnvoyExtensionPolicy
	client egv1a1.ClientTrafficPolicy
	back   egv1a1.BackendTrafficPolicy
}

func loadEG(t *testing.T, text string) *egRecipe {
	t.Helper()
	objs := splitObjects(t, "gateway/mcpguard.yaml", text)
	var r egRecipe
	decodeAs(t, objs, "HTTPRoute", "mcp", &r.route)
	decodeAs(t, objs, "SecurityPolicy", "", &r.sec)
	decodeAs(t, objs, "EnvoyExtensionPolicy", "", &r.ext)
	decodeAs(t, objs, "ClientTrafficPolicy", "", &r.client)
	decodeAs(t, objs, "BackendTrafficPolicy", "", &r.back)
	return &r
}

// deriveEG is the Envoy configuration the recipe makes Envoy Gateway write, spliced into
// envoy/envoy.yaml: the ext_authz and ext_proc filters, mcpguard's cluster (both policies
// name the same Service; Envoy Gateway writes one cluster per policy, with the same
// settings), the listener's buffer limit and HCM timers (ClientTrafficPolicy), the MCP
// route's timeouts (HTTPRoute, BackendTrafficPolicy) and its ext_authz context extensions.
func deriveEG(t *testing.T, r *egRecipe) (validate, check error) {
	t.Helper()
	require.Len(t, r.ext.Spec.ExtProc, 1)
	ep := r.ext.Spec.ExtProc[0]
	ea := *r.sec.Spec.ExtAuth
	for _, refs := range [][]egv1a1.BackendRef{ea.GRPC.BackendRefs, ep.BackendRefs} {
		require.Len(t, refs, 1)
		require.Equal(t, "mcpguard-grpc", string(refs[0].Name))
		require.Equal(t, int32(9001), int32(*refs[0].Port))
	}
	require.Equal(t, ea.GRPC.BackendSettings, ep.BackendSettings, "both clusters to mcpguard get the same settings")
	for _, p := range []egv1a1.PolicyTargetReferences{r.sec.Spec.PolicyTargetReferences, r.ext.Spec.PolicyTargetReferences} {
		require.Len(t, p.TargetRefs, 1)
		require.Equal(t, r.route.Name, string(p.TargetRefs[0].Name), "both policies attach to the MCP route")
	}

	b, hcm := shipped(t)
	az, perRoute := egExtAuthz(t, ea)
	pr := egExtProc(t, ep)
	if c := r.client.Spec.Connection; c != nil && c.BufferLimit != nil {
		b.StaticResources.Listeners[0].PerConnectionBufferLimitBytes = wrapperspb.UInt32(uint32(c.BufferLimit.Value()))
	} else {
		b.StaticResources.Listeners[0].PerConnectionBufferLimitBytes = wrapperspb.UInt32(32768) // Envoy Gateway's default
	}
	hcm.StreamIdleTimeout, hcm.RequestTimeout = nil, nil
	if h := r.client.Spec.Timeout; h != nil && h.HTTP != nil {
		hcm.StreamIdleTimeout = gwDuration(t, h.HTTP.StreamIdleTimeout)
		hcm.RequestTimeout = gwDuration(t, h.HTTP.RequestReceivedTimeout)
	}
	route := mainRoute(t, hcm)
	ra := route.GetRoute()
	ra.Timeout, ra.IdleTimeout = nil, nil
	require.Len(t, r.route.Spec.Rules, 1)
	if to := r.route.Spec.Rules[0].Timeouts; to != nil {
		ra.Timeout = gwDuration(t, to.Request)
	}
	if h := r.back.Spec.Timeout; h != nil && h.HTTP != nil {
		if h.HTTP.RequestTimeout != nil {
			ra.Timeout = gwDuration(t, h.HTTP.RequestTimeout)
		}
		ra.IdleTimeout = gwDuration(t, h.HTTP.StreamIdleTimeout)
	}
	pa, err := anypb.New(perRoute)
	require.NoError(t, err)
	route.TypedPerFilterConfig["envoy.filters.http.ext_authz"] = pa
	return splice(t, b, hcm, az, pr, egCluster(t, ep.BackendSettings), chartHold(t))
}

// TestEnvoyGatewayDerived derives what Envoy Gateway writes from the recipe and holds it to
// envoy/bootstrap's rules, with the hold rule adapted to a control plane that cannot set
// max_message_timeout (message timeout above the chart's approvals.hold).
func TestEnvoyGatewayDerived(t *testing.T) {
	data, err := os.ReadFile("gateway/mcpguard.yaml")
	require.NoError(t, err)
	validate, check := deriveEG(t, loadEG(t, string(data)))
	require.NoError(t, validate)
	require.NoError(t, check)

	// Each rule that matters here, broken in the recipe, is caught in the derived config.
	for name, tc := range map[string]struct{ from, to, want string }{
		"ext_proc fails open":       {"      failOpen: false\n      statusOnError: 503\n      # Envoy Gateway cannot", "      failOpen: true\n      statusOnError: 503\n      # Envoy Gateway cannot", "failure_mode_allow: must be false"},
		"ext_authz fails open":      {"    failOpen: false\n    statusOnError: 503\n    # The gRPC", "    failOpen: true\n    statusOnError: 503\n    # The gRPC", "failure_mode_allow: must be false"},
		"ext_authz 403 on error":    {"    statusOnError: 503\n    # The gRPC", "    statusOnError: 403\n    # The gRPC", "status_on_error.code: 403, want a 5xx"},
		"message timeout too short": {"messageTimeout: 30s", "messageTimeout: 20s", "must exceed the approval hold 25s"},
		"identity not forwarded":    {"accessibleNamespaces: [envoy.filters.http.ext_authz]", "accessibleNamespaces: [envoy.filters.http.jwt_authn]", "lacks " + identity.Namespace},
		"no mode override":          {"allowModeOverride: true", "allowModeOverride: false", "allow_mode_override: must be true"},
		"streamed request body":     {"body: Buffered          # MCP requests", "body: Streamed          # MCP requests", "want BUFFERED/BUFFERED"},
		"small buffer":              {"bufferLimit: 32Mi", "bufferLimit: 1Mi", "per_connection_buffer_limit_bytes: 1048576"},
		"default circuit breaker":   {"maxParallelRequests: 100000\n        http2:", "maxParallelRequests: 1000\n        http2:", "max_requests: 1000, must be at least 10000"},
		"route idle below timeout":  {"streamIdleTimeout: 1860s", "streamIdleTimeout: 20s", "route.idle_timeout: 20s must exceed"},
		"route timeout":             {"      requestTimeout: 0s", "      requestTimeout: 15s", "route.timeout: must be 0s"},
		"no audience":               {`{name: audience, type: Value, value: "https://mcp.example.com/mcp"}`, `{name: aud, type: Value, value: "https://mcp.example.com/mcp"}`, "want an audience URL and scopes"},
	} {
		t.Run(name, func(t *testing.T) {
			require.Contains(t, string(data), tc.from)
			// Every occurrence: both policies carry the same backend settings.
			bad := strings.ReplaceAll(string(data), tc.from, tc.to)
			validate, check := deriveEG(t, loadEG(t, bad))
			err := errors.Join(validate, check)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestEnvoyGatewayFitsChart: the names, ports and labels the recipe relies on are what the
// chart renders.
func TestEnvoyGatewayFitsChart(t *testing.T) {
	r := index(t, renderObjects(t, nil, nil))
	svcs := map[string]int32{}
	for _, s := range r.services {
		svcs[s.Namespace+"/"+s.Name] = s.Spec.Ports[0].Port
	}
	require.Equal(t, int32(9001), svcs["mcpguard/mcpguard-grpc"])
	require.Equal(t, int32(9002), svcs["mcpguard/mcpguard-admin"])
	// The chart's default network policy admits Envoy Gateway's proxy pods to the gRPC port.
	eg := map[string]string{"app.kubernetes.io/managed-by": "envoy-gateway", "app.kubernetes.io/component": "proxy", "app.kubernetes.io/name": "envoy"}
	found := false
	for _, np := range r.netpols {
		for _, rule := range np.Spec.Ingress {
			if rule.Ports[0].Port.String() != "grpc" {
				continue
			}
			for _, peer := range rule.From {
				if selects(t, peer.PodSelector, eg) {
					found = true
				}
			}
		}
	}
	require.True(t, found, "Envoy Gateway's proxies may not reach the gRPC port")
}

// istioRecipe is the Istio recipe decoded into istio.io/api's messages.
type istioRecipe struct {
	provider *meshv1alpha1.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationGrpcProvider
	policy   *istiosec.AuthorizationPolicy
	filter   *istionet.EnvoyFilter
	rule     *istionet.DestinationRule
}

func specOf(t *testing.T, objs []object, kind string, m proto.Message) {
	t.Helper()
	for _, o := range objs {
		if o.u.GetKind() == kind {
			var x struct {
				Spec json.RawMessage `json:"spec"`
			}
			require.NoError(t, json.Unmarshal(o.json, &x))
			require.NoError(t, protojson.Unmarshal(x.Spec, m))
			return
		}
	}
	t.Fatalf("no %s", kind)
}

func loadIstio(t *testing.T, mesh, recipe string) *istioRecipe {
	t.Helper()
	var mc struct {
		MeshConfig json.RawMessage `json:"meshConfig"`
	}
	require.NoError(t, yaml.UnmarshalStrict([]byte(mesh), &mc))
	var m meshv1alpha1.MeshConfig
	require.NoError(t, protojson.Unmarshal(mc.MeshConfig, &m))
	r := &istioRecipe{policy: &istiosec.AuthorizationPolicy{}, filter: &istionet.EnvoyFilter{}, rule: &istionet.DestinationRule{}}
	objs := splitObjects(t, "istio/mcpguard.yaml", recipe)
	specOf(t, objs, "AuthorizationPolicy", r.policy)
	specOf(t, objs, "EnvoyFilter", r.filter)
	specOf(t, objs, "DestinationRule", r.rule)
	require.Equal(t, istiosec.AuthorizationPolicy_CUSTOM, r.policy.GetAction())
	for _, p := range m.GetExtensionProviders() {
		if p.GetName() == r.policy.GetProvider().GetName() {
			r.provider = p.GetEnvoyExtAuthzGrpc()
		}
	}
	require.NotNil(t, r.provider, "the AuthorizationPolicy's provider is an envoyExtAuthzGrpc provider of the mesh config")
	return r
}

// deriveIstio is the Envoy configuration of the MCP workload's inbound HTTP chain that the
// recipe makes Istio write, spliced into envoy/envoy.yaml: the ext_authz filter istiod builds
// from the extension provider (pilot/pkg/security/authz/builder/extauthz.go: envoy_grpc to the
// outbound cluster, the provider's timeout, failOpen, statusOnError), the ext_proc filter
// the EnvoyFilter inserts (its patch value, decoded as an Envoy HttpFilter), the listener and
// HCM merges, and the outbound cluster with the DestinationRule's connection pool.
//
// istiod also gives ext_authz a filter_enabled_metadata matcher on the RBAC shadow filter's
// mark; it is left out here after checking that the CUSTOM policy marks every request (one
// empty rule). Istio writes no per-route context extensions: mcpguard then applies
// auth.audience and auth.required_scopes from its config.
func deriveIstio(t *testing.T, r *istioRecipe) (validate, check error) {
	t.Helper()
	rules := r.policy.GetRules()
	require.Len(t, rules, 1, "one rule")
	require.True(t, proto.Equal(rules[0], &istiosec.Rule{}), "an empty rule: ext_authz runs on every request")

	b, hcm := shipped(t)
	p := r.provider
	cluster := fmt.Sprintf("outbound|%d||%s", p.GetPort(), p.GetService())
	az := &authzv3.ExtAuthz{
		FailureModeAllow: p.GetFailOpen(),
		Services: &authzv3.ExtAuthz_GrpcService{GrpcService: &corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{
				ClusterName: "mcpguard_grpc", Authority: strings.ReplaceAll(cluster, "|", "_."),
			}},
			Timeout: p.GetTimeout(),
		}},
	}
	if s := p.GetStatusOnError(); s != "" {
		var code int32
		_, err := fmt.Sscan(s, &code)
		require.NoError(t, err)
		az.StatusOnError = &typev3.HttpStatus{Code: typev3.StatusCode(code)}
	}
	if p.GetIncludeRequestBodyInCheck() != nil {
		az.WithRequestBody = &authzv3.BufferSettings{MaxRequestBytes: p.GetIncludeRequestBodyInCheck().GetMaxRequestBytes()}
	}

	var pr *procv3.ExternalProcessor
	for i, cp := range r.filter.GetConfigPatches() {
		value, err := protojson.Marshal(cp.GetPatch().GetValue())
		require.NoError(t, err)
		ctx := cp.GetMatch().GetContext()
		require.Equal(t, istionet.EnvoyFilter_SIDECAR_INBOUND, ctx, "patch %d applies to the inbound side", i)
		switch cp.GetApplyTo() {
		case istionet.EnvoyFilter_HTTP_FILTER:
			require.Equal(t, istionet.EnvoyFilter_Patch_INSERT_BEFORE, cp.GetPatch().GetOperation())
			require.Equal(t, "envoy.filters.http.router", cp.GetMatch().GetListener().GetFilterChain().GetFilter().GetSubFilter().GetName(),
				"ext_proc goes right before the router, after Istio's ext_authz")
			var f hcmv3.HttpFilter
			require.NoError(t, protojson.Unmarshal(value, &f), "patch %d value is an Envoy HttpFilter", i)
			require.Equal(t, "envoy.filters.http.ext_proc", f.GetName())
			pr = &procv3.ExternalProcessor{}
			require.NoError(t, f.GetTypedConfig().UnmarshalTo(pr))
			require.Equal(t, cluster, pr.GetGrpcService().GetEnvoyGrpc().GetClusterName(), "ext_proc calls the provider's cluster")
			pr.GrpcService.GetEnvoyGrpc().ClusterName = "mcpguard_grpc"
		case istionet.EnvoyFilter_LISTENER:
			var l listenerv3.Listener
			require.NoError(t, protojson.Unmarshal(value, &l), "patch %d value is an Envoy Listener", i)
			proto.Merge(b.StaticResources.Listeners[0], &l)
		case istionet.EnvoyFilter_NETWORK_FILTER:
			var f listenerv3.Filter
			require.NoError(t, protojson.Unmarshal(value, &f), "patch %d value is an Envoy network Filter", i)
			var h hcmv3.HttpConnectionManager
			require.NoError(t, f.GetTypedConfig().UnmarshalTo(&h))
			proto.Merge(hcm, &h)
		default:
			t.Fatalf("patch %d: applyTo %s is not modelled", i, cp.GetApplyTo())
		}
	}
	require.NotNil(t, pr, "the EnvoyFilter inserts ext_proc")

	// Istio's inbound routes: no route timeout, no idle_timeout of their own; no per-route
	// ext_authz settings.
	route := mainRoute(t, hcm)
	route.GetRoute().Timeout = durationpb.New(0)
	route.GetRoute().IdleTimeout = nil
	delete(route.TypedPerFilterConfig, "envoy.filters.http.ext_authz")
	empty, err := anypb.New(&authzv3.ExtAuthzPerRoute{Override: &authzv3.ExtAuthzPerRoute_CheckSettings{CheckSettings: &authzv3.CheckSettings{}}})
	require.NoError(t, err)
	route.TypedPerFilterConfig["envoy.filters.http.ext_authz"] = empty

	require.Equal(t, p.GetService(), r.rule.GetHost(), "the DestinationRule is for mcpguard's Service")
	pool := r.rule.GetTrafficPolicy().GetConnectionPool()
	cl := grpcCluster(t, nil, uint32(pool.GetTcp().GetMaxConnections()), uint32(pool.GetHttp().GetHttp1MaxPendingRequests()), uint32(pool.GetHttp().GetHttp2MaxRequests()))
	return splice(t, b, hcm, az, pr, cl, chartHold(t))
}

// istioGaps are the rules the derived Istio configuration breaks by design, each with why it
// is acceptable; every other rule must hold.
var istioGaps = []string{
	// A DestinationRule has no HTTP/2 PING setting; its tcpKeepalive notices dead peers instead.
	"no HTTP/2 connection_keepalive.interval",
	// No per-route context extensions from Istio: mcpguard applies auth.audience and
	// auth.required_scopes from its own config to every request.
	"want an audience URL and scopes",
}

// TestIstioDerived derives the MCP workload's inbound chain from the recipe and holds it to
// envoy/bootstrap's rules; istioGaps lists the two that cannot hold on Istio and why.
func TestIstioDerived(t *testing.T) {
	mesh, err := os.ReadFile("istio/meshconfig.yaml")
	require.NoError(t, err)
	recipe, err := os.ReadFile("istio/mcpguard.yaml")
	require.NoError(t, err)
	validate, check := deriveIstio(t, loadIstio(t, string(mesh), string(recipe)))
	require.NoError(t, validate)
	requireOnly(t, check, istioGaps)

	for name, tc := range map[string]struct {
		file     string
		from, to string
		want     string
	}{
		"ext_authz fails open":   {"mesh", "failOpen: false", "failOpen: true", "failure_mode_allow: must be false"},
		"ext_authz 403":          {"mesh", `statusOnError: "503"`, `statusOnError: "403"`, "want a 5xx"},
		"ext_proc fails open":    {"recipe", "failure_mode_allow: false", "failure_mode_allow: true", "failure_mode_allow: must be false"},
		"no hold ceiling":        {"recipe", "max_message_timeout: 1800s", "max_message_timeout: 20s", "must exceed the approval hold 25s"},
		"identity not forwarded": {"recipe", "untyped: [envoy.filters.http.ext_authz]", "untyped: [istio_authn]", "lacks " + identity.Namespace},
		"small buffer":           {"recipe", "per_connection_buffer_limit_bytes: 33554432", "per_connection_buffer_limit_bytes: 1048576", "per_connection_buffer_limit_bytes: 1048576"},
		"idle timer":             {"recipe", "stream_idle_timeout: 3600s", "stream_idle_timeout: 300s", "stream_idle_timeout: 5m0s must exceed"},
		"circuit breaker":        {"recipe", "http2MaxRequests: 100000", "http2MaxRequests: 1024", "max_requests: 1024, must be at least 10000"},
		"streamed body":          {"recipe", "request_body_mode: BUFFERED", "request_body_mode: STREAMED", "want BUFFERED/BUFFERED"},
	} {
		t.Run(name, func(t *testing.T) {
			m, rc := string(mesh), string(recipe)
			src := &rc
			if tc.file == "mesh" {
				src = &m
			}
			require.Contains(t, *src, tc.from)
			*src = strings.Replace(*src, tc.from, tc.to, 1)
			validate, check := deriveIstio(t, loadIstio(t, m, rc))
			err := errors.Join(validate, check)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

// requireOnly asserts that err holds exactly one problem per gap, and nothing else.
func requireOnly(t *testing.T, err error, gaps []string) {
	t.Helper()
	require.Error(t, err)
	var rest []string
	seen := map[string]bool{}
	for _, line := range strings.Split(err.Error(), "\n") {
		matched := false
		for _, g := range gaps {
			if strings.Contains(line, g) {
				matched, seen[g] = true, true
			}
		}
		if !matched && line != "" {
			rest = append(rest, line)
		}
	}
	require.Empty(t, rest, "problems besides the known gaps")
	require.Len(t, seen, len(gaps), "every known gap still shows (remove the ones that no longer apply)")
}
