package emulator

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// Type URLs of the typed_config payloads the emulator implements. Any other @type is refused.
const (
	typeHCM          = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
	typeExtAuthz     = "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz"
	typeExtAuthzR    = "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute"
	typeExtProc      = "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor"
	typeExtProcR     = "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute"
	typeRouter       = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
	typeHTTPOptions  = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	typeStdoutLogger = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"
)

// roots names each emulated typed_config, as it appears in "not emulated" errors.
var roots = map[string]string{
	typeHCM:          "hcm",
	typeExtAuthz:     "ext_authz",
	typeExtAuthzR:    "ext_authz_per_route",
	typeExtProc:      "ext_proc",
	typeExtProcR:     "ext_proc_per_route",
	typeRouter:       "router",
	typeHTTPOptions:  "http_protocol_options",
	typeStdoutLogger: "stdout_access_log",
}

// allowed lists, per root, the field paths (indexes and map keys dropped) the emulator honours or harmlessly
// ignores. "x.*" admits the whole subtree under x. README.md explains each entry.
var allowed = map[string]string{
	"bootstrap": `
node.*
admin.*
static_resources.listeners.name
static_resources.listeners.address.socket_address.address
static_resources.listeners.address.socket_address.port_value
static_resources.listeners.per_connection_buffer_limit_bytes
static_resources.listeners.filter_chains.filters.name
static_resources.listeners.filter_chains.filters.typed_config
static_resources.clusters.name
static_resources.clusters.type
static_resources.clusters.connect_timeout
static_resources.clusters.lb_policy
static_resources.clusters.dns_lookup_family
static_resources.clusters.load_assignment.cluster_name
static_resources.clusters.load_assignment.endpoints.lb_endpoints.endpoint.address.socket_address.address
static_resources.clusters.load_assignment.endpoints.lb_endpoints.endpoint.address.socket_address.port_value
static_resources.clusters.load_assignment.endpoints.lb_endpoints.endpoint.address.pipe.path
static_resources.clusters.typed_extension_protocol_options
static_resources.clusters.circuit_breakers.thresholds.priority
static_resources.clusters.circuit_breakers.thresholds.max_requests
static_resources.clusters.circuit_breakers.thresholds.max_pending_requests
static_resources.clusters.circuit_breakers.thresholds.max_connections
static_resources.clusters.circuit_breakers.thresholds.max_retries
`,
	"hcm": `
stat_prefix
codec_type
generate_request_id
stream_idle_timeout
request_timeout
request_headers_timeout
use_remote_address
max_request_headers_kb
common_http_protocol_options.max_headers_count
access_log.name
access_log.typed_config
route_config.name
route_config.virtual_hosts.name
route_config.virtual_hosts.domains
route_config.virtual_hosts.routes.name
route_config.virtual_hosts.routes.match.prefix
route_config.virtual_hosts.routes.match.path
route_config.virtual_hosts.routes.match.safe_regex.regex
route_config.virtual_hosts.routes.route.cluster
route_config.virtual_hosts.routes.route.timeout
route_config.virtual_hosts.routes.route.idle_timeout
route_config.virtual_hosts.routes.typed_per_filter_config
http_filters.name
http_filters.typed_config
`,
	"ext_authz": `
grpc_service.envoy_grpc.cluster_name
grpc_service.envoy_grpc.authority
grpc_service.timeout
grpc_service.initial_metadata.*
transport_api_version
failure_mode_allow
failure_mode_allow_header_add
status_on_error.code
stat_prefix
include_peer_certificate
encode_raw_headers
`,
	"ext_authz_per_route": `
disabled
check_settings.context_extensions
`,
	"ext_proc": `
grpc_service.envoy_grpc.cluster_name
grpc_service.envoy_grpc.authority
grpc_service.timeout
grpc_service.initial_metadata.*
failure_mode_allow
processing_mode.*
request_attributes
response_attributes
message_timeout
max_message_timeout
stat_prefix
allow_mode_override
allowed_override_modes.*
disable_immediate_response
metadata_options.forwarding_namespaces.untyped
metadata_options.receiving_namespaces.untyped
status_on_error.code
`,
	"ext_proc_per_route": `
disabled
overrides.processing_mode.*
overrides.failure_mode_allow
`,
	"router": ``,
	"stdout_access_log": `
log_format.*
`,
	"http_protocol_options": `
explicit_http_config.http_protocol_options
explicit_http_config.http2_protocol_options.connection_keepalive.interval
explicit_http_config.http2_protocol_options.connection_keepalive.timeout
common_http_protocol_options.idle_timeout
`,
}

// allowSets is allowed compiled: every listed path, every prefix of one, and the "x.*" subtrees.
var allowSets = compileAllowed()

type allowSet struct {
	paths    map[string]bool
	subtrees []string
}

func compileAllowed() map[string]allowSet {
	out := make(map[string]allowSet, len(allowed))
	for root, text := range allowed {
		s := allowSet{paths: map[string]bool{}}
		for _, line := range strings.Fields(text) {
			if p, ok := strings.CutSuffix(line, ".*"); ok {
				s.subtrees = append(s.subtrees, p)
				line = p
			}
			parts := strings.Split(line, ".")
			for i := range parts {
				s.paths[strings.Join(parts[:i+1], ".")] = true
			}
		}
		out[root] = s
	}
	return out
}

func (s allowSet) subtree(key string) bool {
	for _, p := range s.subtrees {
		if key == p || strings.HasPrefix(key, p+".") {
			return true
		}
	}
	return false
}

// leafTypes are well-known messages treated as values: their inner fields are never walked.
var leafTypes = map[protoreflect.FullName]bool{
	"google.protobuf.Duration":    true,
	"google.protobuf.BoolValue":   true,
	"google.protobuf.UInt32Value": true,
	"google.protobuf.UInt64Value": true,
	"google.protobuf.Int64Value":  true,
	"google.protobuf.StringValue": true,
	"google.protobuf.Struct":      true,
	"google.protobuf.Empty":       true,
}

// checkFields walks every set field of m (a message of kind root) and returns one error per field that
// is not in the allow-list, e.g. "ext_proc.http_service: not emulated". Any payloads are unpacked and
// checked against their own root.
func checkFields(m protoreflect.Message, root string) error {
	var errs []error
	walkFields(m, root, root, "", &errs)
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

func walkFields(m protoreflect.Message, root, disp, key string, errs *[]error) {
	set := allowSets[root]
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := string(fd.Name())
		k, d := join(key, name), disp+"."+name
		if !set.paths[k] {
			*errs = append(*errs, fmt.Errorf("%s: not emulated", d))
			return true
		}
		if fd.Kind() != protoreflect.MessageKind || set.subtree(k) {
			return true
		}
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walkValue(l.Get(i).Message(), root, fmt.Sprintf("%s[%d]", d, i), k, errs)
			}
		case fd.IsMap():
			v.Map().Range(func(mk protoreflect.MapKey, mv protoreflect.Value) bool {
				if fd.MapValue().Kind() == protoreflect.MessageKind {
					walkValue(mv.Message(), root, fmt.Sprintf("%s[%s]", d, mk.String()), k, errs)
				}
				return true
			})
		default:
			walkValue(v.Message(), root, d, k, errs)
		}
		return true
	})
}

func walkValue(m protoreflect.Message, root, disp, key string, errs *[]error) {
	full := m.Descriptor().FullName()
	if leafTypes[full] {
		return
	}
	if full == "google.protobuf.Any" {
		a, ok := m.Interface().(*anypb.Any)
		if !ok {
			*errs = append(*errs, fmt.Errorf("%s: unreadable Any", disp))
			return
		}
		sub, ok := roots[a.GetTypeUrl()]
		if !ok {
			*errs = append(*errs, fmt.Errorf("%s: type %s not emulated", disp, a.GetTypeUrl()))
			return
		}
		inner, err := a.UnmarshalNew()
		if err != nil {
			*errs = append(*errs, fmt.Errorf("%s: decode %s: %w", disp, a.GetTypeUrl(), err))
			return
		}
		walkFields(inner.ProtoReflect(), sub, sub, "", errs)
		return
	}
	walkFields(m, root, disp, key, errs)
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}
