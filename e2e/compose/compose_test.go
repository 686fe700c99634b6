// Package compose_test checks e2e/docker-compose.yaml without a container engine (services,
// pinned images, one shared network namespace, addresses matching envoy/envoy.yaml and the
// mcpguard config, mounts and build files that exist) and, when MCPGUARD_E2E_GATEWAY points at
// the running stack, runs the end-to-end scenarios through real Envoy.
package compose_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/mcpguard/mcpguard/e2e/bootstrap"
	"github.com/mcpguard/mcpguard/internal/config"
)

// file is the part of the compose specification the checks read.
type file struct {
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
}

type service struct {
	Image       string            `yaml:"image"`
	Build       *build            `yaml:"build"`
	NetworkMode string            `yaml:"network_mode"`
	Command     []string          `yaml:"command"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	Environment map[string]string `yaml:"environment"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
}

type build struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

// facts are what the compose file must agree with, read from the repository.
type facts struct {
	dir          string            // directory of the compose file (relative paths start here)
	envoyMinor   string            // "1.40", from go-control-plane/envoy in go.mod
	listenerPort int               // Envoy's MCP listener port
	clusters     map[string]string // cluster name -> host:port in envoy/envoy.yaml
	guard        *config.Config    // e2e/compose/mcpguard.yaml
}

var wantServices = []string{"envoy", "mcpguard", "mcpserver", "redis", "s3", "s3-bucket"}

// pinned is an image reference with an explicit version tag (or digest), never latest.
var pinned = regexp.MustCompile(`^[a-z0-9./_-]+:(v?[0-9][A-Za-z0-9._-]*|RELEASE\.[0-9TZ-]+|compose)(@sha256:[0-9a-f]{64})?$`)

// check returns every way f disagrees with the repository.
func check(f file, fx facts) []string {
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }

	var names []string
	for n := range f.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	if !slices.Equal(names, wantServices) {
		bad("services: got %v, want %v", names, wantServices)
	}
	for _, n := range names {
		s := f.Services[n]
		switch {
		case s.Image == "":
			bad("services.%s.image: required (pinned)", n)
		case !pinned.MatchString(s.Image) || strings.HasSuffix(s.Image, ":latest"):
			bad("services.%s.image: %q is not pinned to a version", n, s.Image)
		}
		if n != "envoy" && s.NetworkMode != "service:envoy" {
			bad("services.%s.network_mode: must be service:envoy (envoy/envoy.yaml uses 127.0.0.1 clusters)", n)
		}
		if n != "envoy" && len(s.Ports) > 0 {
			bad("services.%s.ports: publish on the envoy service (shared network namespace)", n)
		}
		for dep := range s.DependsOn {
			if _, ok := f.Services[dep]; !ok {
				bad("services.%s.depends_on: unknown service %q", n, dep)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(filepath.Join(fx.dir, src)); err != nil {
					bad("services.%s.volumes: %s: %v", n, src, err)
				}
			} else if _, ok := f.Volumes[src]; !ok {
				bad("services.%s.volumes: named volume %q not declared", n, src)
			}
		}
		if s.Build != nil {
			df := filepath.Join(fx.dir, s.Build.Context, s.Build.Dockerfile)
			if _, err := os.Stat(df); err != nil {
				bad("services.%s.build: %v", n, err)
			}
		}
	}

	envoy := f.Services["envoy"]
	if m := regexp.MustCompile(`^envoyproxy/envoy:v(\d+\.\d+)\.\d+$`).FindStringSubmatch(envoy.Image); m == nil || m[1] != fx.envoyMinor {
		bad("services.envoy.image: %q must be envoyproxy/envoy:v%s.x (the minor envoy/ targets)", envoy.Image, fx.envoyMinor)
	}
	if !slices.Contains(envoy.Volumes, "../envoy/envoy.yaml:/etc/envoy/envoy.yaml:ro") {
		bad("services.envoy.volumes: must mount ../envoy/envoy.yaml read-only, unchanged")
	}
	published := map[int]bool{}
	for _, p := range envoy.Ports {
		parts := strings.Split(p, ":")
		if len(parts) != 3 || parts[0] != "127.0.0.1" {
			bad("services.envoy.ports: %q must publish on the host's loopback (127.0.0.1:HOST:CONTAINER)", p)
			continue
		}
		port, _ := strconv.Atoi(parts[2])
		published[port] = true
	}
	if !published[fx.listenerPort] {
		bad("services.envoy.ports: Envoy's listener port %d not published", fx.listenerPort)
	}

	// Addresses inside the shared namespace must be the ones envoy/envoy.yaml dials.
	if got, want := fx.guard.GRPC.Listen, fx.clusters["mcpguard_grpc"]; !samePort(got, want) {
		bad("compose/mcpguard.yaml grpc.listen: %s, envoy.yaml mcpguard_grpc dials %s", got, want)
	}
	if got, want := fx.guard.Admin.Listen, fx.clusters["mcpguard_admin"]; !samePort(got, want) {
		bad("compose/mcpguard.yaml admin.listen: %s, envoy.yaml mcpguard_admin dials %s", got, want)
	}
	if got, want := flagValue(f.Services["mcpserver"].Command, "-listen"), fx.clusters["mcp_upstream"]; got != want {
		bad("services.mcpserver.command -listen: %s, envoy.yaml mcp_upstream dials %s", got, want)
	}
	if got, want := flagValue(f.Services["s3"].Command, "--port"), fx.guard.Recordings.Sink.S3.Endpoint; got != want {
		bad("services.s3.command --port: %s, compose/mcpguard.yaml recordings.sink.s3.endpoint is %s", got, want)
	}
	if got, want := "127.0.0.1:"+flagValue(f.Services["redis"].Command, "--port"), fx.guard.Approvals.Store.Redis.Addr; got != want {
		bad("services.redis.command --port: %s, compose/mcpguard.yaml approvals.store.redis.addr is %s", got, want)
	}
	s3 := f.Services["s3"].Environment
	if s3["ROOT_ACCESS_KEY"] != fx.guard.Recordings.Sink.S3.AccessKey || s3["ROOT_SECRET_KEY"] != fx.guard.Recordings.Sink.S3.SecretKey {
		bad("services.s3.environment: root credentials differ from compose/mcpguard.yaml recordings.sink.s3")
	}
	if !strings.Contains(f.Services["s3-bucket"].Command[len(f.Services["s3-bucket"].Command)-1], "/"+fx.guard.Recordings.Sink.S3.Bucket) {
		bad("services.s3-bucket.command: does not create bucket %s", fx.guard.Recordings.Sink.S3.Bucket)
	}
	if c := f.Services["mcpguard"].DependsOn["s3-bucket"].Condition; c != "service_completed_successfully" {
		bad("services.mcpguard.depends_on.s3-bucket: condition %q, want service_completed_successfully", c)
	}
	return errs
}

func flagValue(cmd []string, name string) string {
	for i, w := range cmd {
		if w == name && i+1 < len(cmd) {
			return cmd[i+1]
		}
	}
	return ""
}

// samePort: a listen address serves a cluster endpoint in the same namespace when the ports
// match and the host is that endpoint's or a wildcard.
func samePort(listen, endpoint string) bool {
	lh, lp, err1 := net.SplitHostPort(listen)
	eh, ep, err2 := net.SplitHostPort(endpoint)
	return err1 == nil && err2 == nil && lp == ep && (lh == eh || lh == "0.0.0.0" || lh == "")
}

func loadFacts(t *testing.T) facts {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	fx := facts{dir: filepath.Join(root, "e2e"), clusters: map[string]string{}}

	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	m := regexp.MustCompile(`github.com/envoyproxy/go-control-plane/envoy v(\d+\.\d+)\.\d+`).FindSubmatch(mod)
	require.NotNil(t, m, "go-control-plane/envoy in go.mod")
	fx.envoyMinor = string(m[1])

	b, err := bootstrap.Load(filepath.Join(root, "envoy", "envoy.yaml"))
	require.NoError(t, err)
	for _, l := range b.GetStaticResources().GetListeners() {
		if l.GetName() == "mcp_ingress" {
			fx.listenerPort = int(l.GetAddress().GetSocketAddress().GetPortValue())
		}
	}
	for _, c := range b.GetStaticResources().GetClusters() {
		sa := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
		fx.clusters[c.GetName()] = net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue())))
	}

	fx.guard, err = config.Load(filepath.Join(root, "e2e", "compose", "mcpguard.yaml"))
	require.NoError(t, err, "e2e/compose/mcpguard.yaml must pass mcpguard's own validation")
	return fx
}

func loadFile(t *testing.T, dir string) file {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "docker-compose.yaml"))
	require.NoError(t, err)
	var f file
	require.NoError(t, yaml.Unmarshal(data, &f))
	return f
}

// TestComposeFile checks the shipped file, then that each kind of mistake is caught.
func TestComposeFile(t *testing.T) {
	fx := loadFacts(t)
	require.Equal(t, 8080, fx.listenerPort)

	tests := []struct {
		name   string
		mutate func(f *file)
		want   string // a substring of an expected problem; empty: none at all
	}{
		{name: "shipped file", mutate: func(*file) {}},
		{name: "unpinned image", mutate: func(f *file) { setImage(f, "redis", "redis:latest") }, want: "services.redis.image"},
		{name: "untagged image", mutate: func(f *file) { setImage(f, "s3", "versity/versitygw") }, want: "services.s3.image"},
		{name: "other envoy minor", mutate: func(f *file) { setImage(f, "envoy", "envoyproxy/envoy:v1.39.2") }, want: "services.envoy.image"},
		{name: "own network", mutate: func(f *file) { s := f.Services["redis"]; s.NetworkMode = ""; f.Services["redis"] = s }, want: "services.redis.network_mode"},
		{name: "port on a sidecar", mutate: func(f *file) {
			s := f.Services["mcpguard"]
			s.Ports = []string{"127.0.0.1:9001:9001"}
			f.Services["mcpguard"] = s
		}, want: "services.mcpguard.ports"},
		{name: "listener exposed beyond loopback", mutate: func(f *file) { s := f.Services["envoy"]; s.Ports = []string{"8080:8080"}; f.Services["envoy"] = s }, want: "must publish on the host's loopback"},
		{name: "missing mount source", mutate: func(f *file) {
			s := f.Services["mcpguard"]
			s.Volumes = []string{"./compose/nope.yaml:/etc/mcpguard/config.yaml:ro"}
			f.Services["mcpguard"] = s
		}, want: "compose/nope.yaml"},
		{name: "upstream on another port", mutate: func(f *file) {
			s := f.Services["mcpserver"]
			s.Command = []string{"-listen", "127.0.0.1:9999"}
			f.Services["mcpserver"] = s
		}, want: "mcp_upstream"},
		{name: "missing service", mutate: func(f *file) { delete(f.Services, "redis"); dropDep(f, "redis") }, want: "services: got"},
		{name: "missing dockerfile", mutate: func(f *file) {
			s := f.Services["mcpserver"]
			s.Build = &build{Context: "..", Dockerfile: "nope.Dockerfile"}
			f.Services["mcpserver"] = s
		}, want: "services.mcpserver.build"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := loadFile(t, fx.dir)
			tc.mutate(&f)
			errs := check(f, fx)
			if tc.want == "" {
				require.Empty(t, errs)
				return
			}
			require.NotEmpty(t, errs)
			require.Contains(t, strings.Join(errs, "\n"), tc.want)
		})
	}
}

func setImage(f *file, name, image string) {
	s := f.Services[name]
	s.Image = image
	f.Services[name] = s
}

func dropDep(f *file, name string) {
	for n, s := range f.Services {
		delete(s.DependsOn, name)
		f.Services[n] = s
	}
}
