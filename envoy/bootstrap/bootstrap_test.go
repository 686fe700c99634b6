package bootstrap_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	"github.com/mcpguard/mcpguard/envoy/bootstrap"
)

// fixtures lists every file in testdata/ with what loading it must report.
var fixtures = []struct {
	file string
	want []string // substrings the error must contain; none means the file is valid
}{
	{file: "good.yaml"},
	{file: "deprecated.yaml"},
	{file: "bad_yaml.yaml", want: []string{"parse yaml"}},
	{file: "bad_unknown_field.yaml", want: []string{`unknown field "failure_mode_alow"`}},
	{file: "bad_enum.yaml", want: []string{"invalid value for enum", "STREAMING"}},
	{file: "bad_duration.yaml", want: []string{"invalid google.protobuf.Duration", "2 seconds"}},
	{file: "bad_type_url.yaml", want: []string{"unable to resolve", "ExternalProcesor"}},
	{file: "bad_required.yaml", want: []string{"HttpConnectionManager.StatPrefix"}},
	{file: "bad_range.yaml", want: []string{"ExternalProcessor.MaxMessageTimeout", "range [0s, 1h0m0s]"}},
	{file: "bad_empty_cluster_name.yaml", want: []string{"GrpcService_EnvoyGrpc.ClusterName", `cluster "" is not defined`}},
	{file: "bad_undefined_cluster.yaml", want: []string{"route.cluster: cluster \"mcp_upstrem\" is not defined"}},
	{file: "bad_grpc_not_http2.yaml", want: []string{`cluster "mcpguard_grpc" must speak HTTP/2`}},
	{file: "bad_router_not_last.yaml", want: []string{"(envoy.filters.http.router): the router must be the last http filter"}},
	{file: "bad_proc_no_service.yaml", want: []string{"typed_config.grpc_service: required"}},
	{file: "bad_duplicate_cluster.yaml", want: []string{`duplicate cluster name "mcp_upstream"`}},
	{file: "bad_authz_failure_mode_allow.yaml", want: []string{"(envoy.filters.http.ext_authz).typed_config.failure_mode_allow: must be false"}},
	{file: "bad_proc_failure_mode_allow.yaml", want: []string{"(envoy.filters.http.ext_proc).typed_config.failure_mode_allow: must be false"}},
	{file: "bad_per_route_failure_mode_allow.yaml", want: []string{"overrides.failure_mode_allow: must be false"}},
	{file: "bad_full_duplex.yaml", want: []string{"response_trailer_mode: must be SEND"}},
	{file: "bad_max_below_message.yaml", want: []string{"max_message_timeout: 1s must not be less than message_timeout 2s"}},
	{file: "bad_shadow_mode.yaml", want: []string{"shadow_mode: must be false"}},
	{file: "bad_observability_mode.yaml", want: []string{"observability_mode: must be false"}},
	{file: "bad_filter_disabled.yaml", want: []string{"(envoy.filters.http.ext_authz): must be neither disabled nor optional"}},
	{file: "bad_dynamic_resources.yaml", want: []string{"dynamic_resources: not supported"}},
	{file: "bad_rds.yaml", want: []string{"route_config: required"}},
	{file: "bad_route_cache.yaml", want: []string{"route_cache_action: must not be set together with disable_clear_route_cache"}},
}

func TestLoad(t *testing.T) {
	for _, tt := range fixtures {
		t.Run(strings.TrimSuffix(tt.file, ".yaml"), func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			b, err := bootstrap.Load(path)
			if len(tt.want) == 0 {
				require.NoError(t, err)
				require.NotNil(t, b)
				return
			}
			require.Error(t, err)
			require.Nil(t, b)
			require.Contains(t, err.Error(), path, "errors name the file")
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

// TestFixturesCovered keeps the table and testdata/ in step: a fixture nobody asserts proves nothing.
func TestFixturesCovered(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	require.NoError(t, err)
	var got, want []string
	for _, f := range files {
		got = append(got, filepath.Base(f))
	}
	for _, f := range fixtures {
		want = append(want, f.file)
	}
	require.ElementsMatch(t, want, got)
}

// TestWalkerNeeded shows why Validate unpacks Any: the generated ValidateAll alone accepts
// fixtures whose only defect is inside a typed_config.
func TestWalkerNeeded(t *testing.T) {
	for _, file := range []string{"bad_required.yaml", "bad_range.yaml", "bad_empty_cluster_name.yaml"} {
		t.Run(strings.TrimSuffix(file, ".yaml"), func(t *testing.T) {
			b := decode(t, file)
			require.NoError(t, b.ValidateAll(), "PGV stops at Any")
			require.Error(t, bootstrap.Validate(b))
		})
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string
	}{
		{name: "none", file: "good.yaml"},
		{name: "cluster http2_protocol_options", file: "deprecated.yaml", want: []string{
			"static_resources.clusters[0](mcpguard_grpc).http2_protocol_options: deprecated field",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := bootstrap.Load(filepath.Join("testdata", tt.file))
			require.NoError(t, err)
			require.Equal(t, tt.want, bootstrap.Warnings(b))
		})
	}
}

func TestValidateNil(t *testing.T) {
	require.Error(t, bootstrap.Validate(nil))
	require.Empty(t, bootstrap.Warnings(nil))
}

func TestParseJSON(t *testing.T) {
	// JSON is YAML: the same bootstrap in JSON form loads the same way.
	b := decode(t, "good.yaml")
	js, err := protojson.Marshal(b)
	require.NoError(t, err)
	got, err := bootstrap.Parse(js)
	require.NoError(t, err)
	require.Len(t, got.GetStaticResources().GetClusters(), len(b.GetStaticResources().GetClusters()))
}

func TestLoadMissingFile(t *testing.T) {
	_, err := bootstrap.Load(filepath.Join(t.TempDir(), "absent.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// decode parses a fixture without validating it.
func decode(t *testing.T, file string) *bootstrapv3.Bootstrap {
	t.Helper()
	y, err := os.ReadFile(filepath.Join("testdata", file))
	require.NoError(t, err)
	js, err := yaml.YAMLToJSON(y)
	require.NoError(t, err)
	var b bootstrapv3.Bootstrap
	require.NoError(t, protojson.Unmarshal(js, &b))
	return &b
}

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	require.NoError(f, err)
	for _, file := range files {
		data, err := os.ReadFile(file)
		require.NoError(f, err)
		f.Add(data)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`static_resources: {clusters: [{name: a}, {name: a}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := bootstrap.Parse(data)
		if err != nil {
			require.Nil(t, b)
			return
		}
		// Whatever parses must survive a second validation and a round trip unchanged.
		require.NoError(t, bootstrap.Validate(b))
		js, err := protojson.Marshal(b)
		require.NoError(t, err)
		again, err := bootstrap.Parse(js)
		require.NoError(t, err)
		require.NotNil(t, again)
	})
}

func BenchmarkLoad(b *testing.B) {
	path := filepath.Join("testdata", "good.yaml")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bootstrap.Load(path); err != nil {
			b.Fatal(err)
		}
	}
}
