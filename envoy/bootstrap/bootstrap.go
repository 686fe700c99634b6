// Package bootstrap loads and validates the Envoy v3 bootstrap that users deploy in front of mcpguard.
//
// Validation is offline and strict: unknown fields, unresolvable types and every protoc-gen-validate rule
// (inside every google.protobuf.Any, at any depth) are errors, plus cross-checks PGV cannot express and
// mcpguard's product rules (fail closed). A config that passes here is the config the emulator runs.
package bootstrap

import (
	"errors"
	"fmt"
	"os"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	// Extension types the bootstrap may name in typed_config. protojson resolves an Any's @type
	// through the global registry, so a type that is not linked here is refused as unresolvable.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"
)

// Load reads the bootstrap at path (YAML or JSON), decodes it strictly and validates it.
// Every error names the file.
func Load(path string) (*bootstrapv3.Bootstrap, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read bootstrap: %w", err)
	}
	b, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("bootstrap %s: %w", path, err)
	}
	return b, nil
}

// Parse decodes a bootstrap from YAML or JSON (YAML is a superset) and validates it with [Validate].
// Unknown fields, bad enum names, bad durations and unregistered @types are refused.
func Parse(data []byte) (*bootstrapv3.Bootstrap, error) {
	b, err := decode(data)
	if err != nil {
		return nil, err
	}
	if err := Validate(b); err != nil {
		return nil, err
	}
	return b, nil
}

func decode(data []byte) (*bootstrapv3.Bootstrap, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("parse yaml: %w", err)
	}
	var b bootstrapv3.Bootstrap
	// DiscardUnknown stays false: a misspelled field must fail, not silently vanish.
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(js, &b); err != nil {
		return nil, fmt.Errorf("decode bootstrap: %w", err)
	}
	return &b, nil
}

// Validate runs Bootstrap.ValidateAll, then unpacks every google.protobuf.Any at any depth and runs
// ValidateAll on its payload (PGV does not look inside Any). Then the cross-checks: static resources
// only; unique cluster names; every cluster named by a route, HttpUri or envoy_grpc service exists;
// gRPC clusters speak HTTP/2; the router is the last HTTP filter; ext_authz and ext_proc use
// envoy_grpc, fail closed and enforce (not disabled, shadow, observability or async mode);
// FULL_DUPLEX_STREAMED bodies send trailers; max_message_timeout is not below message_timeout;
// disable_clear_route_cache excludes route_cache_action. It returns all problems joined, each
// prefixed with its field path, or nil. Deprecated fields are not errors; [Warnings] lists them.
func Validate(b *bootstrapv3.Bootstrap) error {
	if b == nil {
		return errors.New("bootstrap: missing")
	}
	t := inspect(b)
	return errors.Join(t.problems...)
}

// Warnings lists the deprecated fields and enum values that b sets, each with its path.
// Envoy may turn deprecated fields into errors in a later release; the shipped config sets none.
func Warnings(b *bootstrapv3.Bootstrap) []string {
	if b == nil {
		return nil
	}
	return inspect(b).warnings
}

// inspect walks b once and gathers PGV problems, warnings and the cross-check results.
func inspect(b *bootstrapv3.Bootstrap) *tree {
	t := &tree{}
	if err := b.ValidateAll(); err != nil {
		t.problems = append(t.problems, fmt.Errorf("bootstrap: %w", err))
	}
	t.walk("", b.ProtoReflect())
	t.problems = append(t.problems, crossCheck(b, t.nodes)...)
	return t
}
