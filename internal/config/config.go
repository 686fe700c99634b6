// Package config turns one YAML file into the configuration of every mcpguard package.
//
// Defaults come first (each package's DefaultConfig), the file is decoded on top of them
// strictly (an unknown key is an error naming its path), and then every package validates
// its part; all problems are reported at once, each prefixed with its path in the file.
package config

import (
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mcpguard/mcpguard/approvals"
	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/extproc"
	"github.com/mcpguard/mcpguard/internal/devissuer"
	"github.com/mcpguard/mcpguard/internal/netx"
	"github.com/mcpguard/mcpguard/internal/telemetry"
	"github.com/mcpguard/mcpguard/masking"
	"github.com/mcpguard/mcpguard/policy"
	"github.com/mcpguard/mcpguard/recordings"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML is the embedded configuration `mcpguard serve` runs with when no file is given.
func DefaultYAML() []byte { return defaultYAML }

// Config is the whole service configuration.
type Config struct {
	DataDir    string            `yaml:"data_dir"`
	Log        Log               `yaml:"log"`
	GRPC       GRPC              `yaml:"grpc"`
	Admin      Admin             `yaml:"admin"`
	Shutdown   Shutdown          `yaml:"shutdown"`
	Auth       Auth              `yaml:"auth"`
	ExtProc    extproc.Config    `yaml:"extproc"`
	Policy     policy.Config     `yaml:"policy"`
	Recordings recordings.Config `yaml:"recordings"`
	Approvals  approvals.Config  `yaml:"approvals"`
	Masking    masking.Config    `yaml:"masking"`
	Tracing    telemetry.Tracing `yaml:"tracing"`
	Audit      audit.Config      `yaml:"audit"`
}

// Log configures the structured log.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json or text
}

// GRPC configures the port Envoy calls for ext_authz and ext_proc.
type GRPC struct {
	Listen               string         `yaml:"listen"` // host:port or unix:///path
	TLS                  netx.TLSConfig `yaml:"tls"`
	MaxRecvMsgBytes      int            `yaml:"max_recv_msg_bytes"`
	MaxSendMsgBytes      int            `yaml:"max_send_msg_bytes"`
	MaxConcurrentStreams uint32         `yaml:"max_concurrent_streams"`
	Keepalive            Keepalive      `yaml:"keepalive"`
}

// Keepalive is the server side of gRPC keepalive: what clients may do and how the server probes them.
type Keepalive struct {
	// MinTime is the shortest client ping interval tolerated; Envoy's cluster pings every 30 s.
	MinTime             time.Duration `yaml:"min_time"`
	PermitWithoutStream bool          `yaml:"permit_without_stream"`
	Time                time.Duration `yaml:"time"`    // server ping after this much idle
	Timeout             time.Duration `yaml:"timeout"` // wait for the ping ack
	MaxConnectionIdle   time.Duration `yaml:"max_connection_idle"`
}

// Admin configures the HTTP port for health, metrics, discovery and (later) approvals.
type Admin struct {
	Listen            string         `yaml:"listen"`
	TLS               netx.TLSConfig `yaml:"tls"`
	ReadHeaderTimeout time.Duration  `yaml:"read_header_timeout"`
	// Pprof serves Go's runtime profiles under /debug/pprof/ on the admin port. Off by
	// default: profiles show code paths and timing, so turn it on only where the admin
	// port is reachable by operators alone.
	Pprof bool `yaml:"pprof"`
}

// Shutdown orders the stop: not-ready, drain, graceful stop within Timeout.
type Shutdown struct {
	// Drain is how long the service keeps serving after reporting not-ready, so Envoy's
	// health checks move traffic away before connections close.
	Drain   time.Duration `yaml:"drain"`
	Timeout time.Duration `yaml:"timeout"`
}

// Auth is the token verification ([authz.Config], inline), the development issuer and the
// RFC 9728 protected resource metadata served on the admin port.
type Auth struct {
	authz.Config     `yaml:",inline"`
	DevIssuer        devissuer.Config `yaml:"dev_issuer"`
	ResourceMetadata ResourceMetadata `yaml:"resource_metadata"`
}

// ResourceMetadata is the RFC 9728 document MCP clients fetch to discover the authorization server.
type ResourceMetadata struct {
	// Resource is the canonical URI of the MCP server as clients reach it (through Envoy).
	Resource string `yaml:"resource"`
	// AuthorizationServers defaults to the configured issuers (and the development issuer).
	AuthorizationServers []string `yaml:"authorization_servers"`
	ScopesSupported      []string `yaml:"scopes_supported"`
	ResourceName         string   `yaml:"resource_name"`
	DocumentationURL     string   `yaml:"resource_documentation"`
}

// Default returns the built-in defaults, before any file.
func Default() Config {
	return Config{
		DataDir: "./data",
		Log:     Log{Level: "info", Format: "json"},
		GRPC: GRPC{
			Listen:               "127.0.0.1:9001",
			TLS:                  netx.TLSConfig{ReloadInterval: 10 * time.Second, MinVersion: "1.2"},
			MaxRecvMsgBytes:      64 << 20,
			MaxSendMsgBytes:      64 << 20,
			MaxConcurrentStreams: 100000,
			Keepalive: Keepalive{
				MinTime:             10 * time.Second,
				PermitWithoutStream: true,
				Time:                2 * time.Minute,
				Timeout:             20 * time.Second,
			},
		},
		Admin: Admin{
			Listen:            "127.0.0.1:9002",
			TLS:               netx.TLSConfig{ReloadInterval: 10 * time.Second, MinVersion: "1.2"},
			ReadHeaderTimeout: 10 * time.Second,
		},
		Shutdown: Shutdown{Drain: 5 * time.Second, Timeout: 25 * time.Second},
		Auth: Auth{
			Config:    authz.DefaultConfig(),
			DevIssuer: devissuer.DefaultConfig(),
		},
		ExtProc:    extproc.DefaultConfig(),
		Policy:     policy.DefaultConfig(),
		Recordings: recordings.DefaultConfig(),
		Approvals:  approvals.DefaultConfig(),
		Masking:    masking.DefaultConfig(),
		Tracing:    telemetry.DefaultTracing(),
		Audit:      audit.DefaultConfig(),
	}
}

// Load reads, decodes and validates the file at path. An empty path means the embedded default.
func Load(path string) (*Config, error) {
	if path == "" {
		return Parse(defaultYAML)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data)
}

// Parse decodes data on top of [Default] and validates the result. Decoding and validation
// problems come in one error, each with its path and, where the file sets it (or its
// parent), its line.
func Parse(data []byte) (*Config, error) {
	c, _, err := parse(data)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// parse is [Parse] that also returns the line of every path the file sets, and the config
// as far as it decoded even when there are problems (nil only when data is not YAML).
func parse(data []byte) (*Config, map[string]int, error) {
	c := Default()
	lines, decErr := decodeYAML(data, &c)
	if lines == nil { // not YAML at all: nothing else can be said
		return nil, nil, decErr
	}
	// Validation runs even when decoding found problems: a field that did not decode keeps
	// its default, so every other problem is still reported in this same run.
	valErr := withLines(c.Validate(), lines)
	return &c, lines, errors.Join(decErr, valErr)
}

// withLines appends to each problem "path: message" the line of its path in the file, or
// of the nearest parent the file sets ("auth.issuers[0].audience: required (line 12)").
func withLines(err error, lines map[string]int) error {
	if err == nil {
		return nil
	}
	leaves := prefixed("", err)
	out := make([]error, 0, len(leaves))
	for _, e := range leaves {
		msg := e.Error()
		path, _, ok := strings.Cut(msg, ": ")
		if ok {
			if line := lineOf(path, lines); line > 0 {
				out = append(out, fmt.Errorf("%w (line %d)", e, line))
				continue
			}
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// lineOf finds the line of path or of its nearest parent (auth.issuers[0].audience, then
// auth.issuers[0], auth.issuers, auth); 0 when the file sets none of them.
func lineOf(path string, lines map[string]int) int {
	for path != "" {
		if l, ok := lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i <= 0 {
			return 0
		}
		path = path[:i]
	}
	return 0
}

// Validate reports every problem in the configuration, each prefixed with its path.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir: required"))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q is not one of debug, info, warn, error", c.Log.Level))
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q is not json or text", c.Log.Format))
	}
	errs = append(errs, c.GRPC.validate()...)
	errs = append(errs, listenErrs("admin.listen", c.Admin.Listen)...)
	errs = append(errs, prefixed("admin.tls", c.Admin.TLS.Validate())...)
	if c.Admin.ReadHeaderTimeout <= 0 {
		errs = append(errs, errors.New("admin.read_header_timeout: must be positive"))
	}
	if c.Shutdown.Drain < 0 {
		errs = append(errs, errors.New("shutdown.drain: must not be negative"))
	}
	if c.Shutdown.Timeout <= 0 {
		errs = append(errs, errors.New("shutdown.timeout: must be positive"))
	}
	errs = append(errs, prefixed("auth", c.Auth.Validate())...)
	errs = append(errs, prefixed("auth.dev_issuer", c.Auth.DevIssuer.Validate())...)
	if len(c.Auth.Issuers) == 0 && !c.Auth.DevIssuer.Enabled {
		errs = append(errs, errors.New("auth.issuers: at least one issuer is required (or auth.dev_issuer.enabled for development)"))
	}
	errs = append(errs, c.Auth.ResourceMetadata.validate()...)
	errs = append(errs, prefixed("extproc", c.ExtProc.Validate())...)
	errs = append(errs, prefixed("policy", c.Policy.Validate())...)
	errs = append(errs, prefixed("recordings", c.Recordings.Validate())...)
	errs = append(errs, prefixed("approvals", c.Approvals.Validate())...)
	errs = append(errs, prefixed("masking", c.Masking.Validate())...)
	errs = append(errs, prefixed("tracing", c.Tracing.Validate())...)
	errs = append(errs, prefixed("audit", c.Audit.Validate())...)
	if need := c.ExtProc.RecvMsgSize(); c.GRPC.MaxRecvMsgBytes < need {
		// A BUFFERED body arrives from Envoy as one gRPC message.
		errs = append(errs, fmt.Errorf("grpc.max_recv_msg_bytes: must be at least %d to receive the bodies extproc buffers", need))
	}
	return errors.Join(errs...)
}

func (g GRPC) validate() []error {
	errs := listenErrs("grpc.listen", g.Listen)
	errs = append(errs, prefixed("grpc.tls", g.TLS.Validate())...)
	if g.MaxRecvMsgBytes < 1<<20 {
		errs = append(errs, errors.New("grpc.max_recv_msg_bytes: must be at least 1MiB"))
	}
	if g.MaxSendMsgBytes < 1<<20 {
		errs = append(errs, errors.New("grpc.max_send_msg_bytes: must be at least 1MiB"))
	}
	if g.MaxConcurrentStreams == 0 {
		errs = append(errs, errors.New("grpc.max_concurrent_streams: must be positive"))
	}
	k := g.Keepalive
	if k.MinTime <= 0 || k.Time <= 0 || k.Timeout <= 0 {
		errs = append(errs, errors.New("grpc.keepalive: min_time, time and timeout must be positive"))
	}
	if k.MaxConnectionIdle < 0 {
		errs = append(errs, errors.New("grpc.keepalive.max_connection_idle: must not be negative"))
	}
	return errs
}

func (r ResourceMetadata) validate() []error {
	var errs []error
	if r.Resource == "" {
		return []error{errors.New("auth.resource_metadata.resource: required (the MCP server URI clients use)")}
	}
	if u, err := url.Parse(r.Resource); err != nil || !u.IsAbs() || u.Fragment != "" {
		errs = append(errs, fmt.Errorf("auth.resource_metadata.resource: %q is not an absolute URI without fragment", r.Resource))
	}
	for i, s := range r.AuthorizationServers {
		if u, err := url.Parse(s); err != nil || !u.IsAbs() {
			errs = append(errs, fmt.Errorf("auth.resource_metadata.authorization_servers[%d]: %q is not an absolute URL", i, s))
		}
	}
	return errs
}

func listenErrs(path, addr string) []error {
	if addr == "" {
		return []error{fmt.Errorf("%s: required", path)}
	}
	if strings.HasPrefix(addr, "unix:") {
		if strings.TrimPrefix(strings.TrimPrefix(addr, "unix://"), "unix:") == "" {
			return []error{fmt.Errorf("%s: unix socket path missing", path)}
		}
		return nil
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return []error{fmt.Errorf("%s: %q is not host:port or unix:///path", path, addr)}
	}
	return nil
}

// prefixed puts path in front of each message of a (possibly joined) validation error.
func prefixed(path string, err error) []error {
	if err == nil {
		return nil
	}
	var leaves []error
	var flatten func(error)
	flatten = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				flatten(x)
			}
			return
		}
		leaves = append(leaves, e)
	}
	flatten(err)
	if path == "" {
		return leaves
	}
	out := make([]error, 0, len(leaves))
	for _, e := range leaves {
		sep := "."
		if strings.HasPrefix(e.Error(), "[") {
			sep = ""
		}
		out = append(out, fmt.Errorf("%s%s%w", path, sep, e))
	}
	return out
}

// DevKeyFile is where the development issuer keeps its signing key.
func (c Config) DevKeyFile() string {
	if c.Auth.DevIssuer.KeyFile != "" {
		return c.Auth.DevIssuer.KeyFile
	}
	return filepath.Join(c.DataDir, "dev-issuer", "key.pem")
}
