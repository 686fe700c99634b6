// Package harness starts and stops the pieces of an end-to-end run: the real mcpguard binary
// (built once, random ports, temp data dir, development issuer), the Envoy emulator configured
// by envoy/envoy.yaml with only addresses overridden, and MCP clients that carry a bearer token.
// Every start has a matching stop that waits; logs are kept in memory for dumping on failure.
package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"
)

// Audience is the MCP resource tokens must be issued for: the context_extensions audience of
// envoy/envoy.yaml's MCP route.
const Audience = "http://localhost:8080/mcp"

// ApproverAudience is what approver tokens are issued for: the approvals API refuses tokens for
// [Audience] (approvals.api.audience defaults to auth.audience + "/approvals").
const ApproverAudience = Audience + "/approvals"

// ModuleRoot is the directory holding the mcpguard go.mod (from `go env GOMOD`).
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside a module")
	}
	return filepath.Dir(mod), nil
}

// Build compiles cmd/mcpguard of the module at root into dir and returns the binary's path.
func Build(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "mcpguard")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/mcpguard")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build mcpguard: %w\n%s", err, out)
	}
	return bin, nil
}

// GuardOptions configures [StartGuard].
type GuardOptions struct {
	Bin string // the binary from [Build]
	Dir string // holds the generated config and the data directory
	// Config replaces top-level sections of the generated configuration (e.g. "extproc").
	Config map[string]any
	// Ready bounds the wait for the start line and /readyz; default 30s.
	Ready time.Duration
	// Env is added to the environment mcpguard inherits (e.g. GOMAXPROCS=1).
	Env []string
}

// Guard is a running mcpguard process.
type Guard struct {
	// GRPC and Admin are the addresses mcpguard reported in its start line.
	GRPC, Admin string
	// ConfigPath is the generated configuration file.
	ConfigPath string

	bin  string
	cmd  *exec.Cmd
	logs *Logs
	done chan struct{}
	err  error // exit status, valid once done is closed
}

// guardConfig is the configuration an end-to-end run starts mcpguard with: random loopback
// ports, a private data directory, the development issuer for the Envoy audience, and
// events large enough for a 20 MiB tool result on an SSE stream.
func guardConfig(dir string, extra map[string]any) map[string]any {
	c := map[string]any{
		"data_dir": filepath.Join(dir, "data"),
		"log":      map[string]any{"level": "info", "format": "json"},
		"grpc":     map[string]any{"listen": "127.0.0.1:0"},
		"admin":    map[string]any{"listen": "127.0.0.1:0"},
		"shutdown": map[string]any{"drain": "0s", "timeout": "5s"},
		"auth": map[string]any{
			"audience":              Audience,
			"resource_metadata_url": "http://localhost:8080/.well-known/oauth-protected-resource/mcp",
			"resource_metadata": map[string]any{
				"resource":         Audience,
				"scopes_supported": []string{"mcp:tools"},
				"resource_name":    "mcpguard e2e",
			},
			"dev_issuer": map[string]any{
				"enabled":  true,
				"issuer":   "http://127.0.0.1/dev",
				"audience": Audience,
			},
		},
		"extproc": map[string]any{"max_event_bytes": 32 << 20},
	}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

// StartGuard writes a configuration, starts `mcpguard serve` and returns once it reported its
// addresses and /readyz answers 200.
func StartGuard(ctx context.Context, o GuardOptions) (*Guard, error) {
	if o.Ready <= 0 {
		o.Ready = 30 * time.Second
	}
	data, err := yaml.Marshal(guardConfig(o.Dir, o.Config))
	if err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	g := &Guard{ConfigPath: filepath.Join(o.Dir, "mcpguard.yaml"), bin: o.Bin, logs: newLogs(), done: make(chan struct{})}
	if err := os.WriteFile(g.ConfigPath, data, 0o600); err != nil {
		return nil, fmt.Errorf("write config: %w", err)
	}
	g.cmd = exec.Command(o.Bin, "serve", "--config", g.ConfigPath)
	g.cmd.Stdout = g.logs
	g.cmd.Stderr = g.logs
	if len(o.Env) > 0 {
		g.cmd.Env = append(os.Environ(), o.Env...)
	}
	if err := g.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start mcpguard: %w", err)
	}
	go func() {
		g.err = g.cmd.Wait()
		close(g.done)
	}()

	ctx, cancel := context.WithTimeout(ctx, o.Ready)
	defer cancel()
	if err := g.waitReady(ctx); err != nil {
		stopErr := g.Stop(context.WithoutCancel(ctx))
		return nil, errors.Join(err, stopErr)
	}
	return g, nil
}

func (g *Guard) waitReady(ctx context.Context) error {
	select {
	case line := <-g.logs.started:
		var s struct{ GRPC, Admin string }
		if err := json.Unmarshal(line, &s); err != nil || s.GRPC == "" || s.Admin == "" {
			return fmt.Errorf("parse start line %q: missing grpc or admin address", line)
		}
		g.GRPC, g.Admin = s.GRPC, s.Admin
	case <-g.done:
		return fmt.Errorf("mcpguard exited before starting: %w", g.err)
	case <-ctx.Done():
		return fmt.Errorf("wait for mcpguard start line: %w", ctx.Err())
	}
	c := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+g.Admin+"/readyz", nil)
		if err != nil {
			return fmt.Errorf("readyz request: %w", err)
		}
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-g.done:
			return fmt.Errorf("mcpguard exited before ready: %w", g.err)
		case <-ctx.Done():
			return fmt.Errorf("wait for /readyz: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// TokenOptions are the claims of a development token; zero values take mcpguard's defaults
// except Audience, which defaults to [Audience].
type TokenOptions struct {
	Subject  string
	Scopes   []string
	Groups   []string
	Audience string
	TTL      time.Duration
}

// Token mints a JWT with `mcpguard token` against the running configuration.
func (g *Guard) Token(ctx context.Context, o TokenOptions) (string, error) {
	args := append([]string{"token", "--config", g.ConfigPath}, tokenArgs(o)...)
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, g.bin, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("mcpguard token: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return jwtFrom(out)
}

// tokenArgs are the `mcpguard token` flags for o's claims.
func tokenArgs(o TokenOptions) []string {
	var args []string
	if o.Subject != "" {
		args = append(args, "--sub", o.Subject)
	}
	if len(o.Scopes) > 0 {
		args = append(args, "--scope", strings.Join(o.Scopes, ","))
	}
	if len(o.Groups) > 0 {
		args = append(args, "--groups", strings.Join(o.Groups, ","))
	}
	if o.Audience == "" {
		o.Audience = Audience
	}
	args = append(args, "--aud", o.Audience)
	if o.TTL != 0 {
		args = append(args, "--ttl", o.TTL.String())
	}
	return args
}

// jwtFrom is the token a token command printed, refused unless it looks like a JWT.
func jwtFrom(out []byte) (string, error) {
	tok := strings.TrimSpace(string(out))
	if strings.Count(tok, ".") != 2 {
		return "", errors.New("mcpguard token: output is not a JWT")
	}
	return tok, nil
}

// Logs is everything mcpguard wrote so far (JSON lines).
func (g *Guard) Logs() *Logs { return g.logs }

// Stop sends SIGTERM and waits for the process to exit; if ctx ends first it is killed.
// A clean exit after SIGTERM returns nil.
func (g *Guard) Stop(ctx context.Context) error {
	select {
	case <-g.done:
		return g.exitErr()
	default:
	}
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal mcpguard: %w", err)
	}
	select {
	case <-g.done:
		return g.exitErr()
	case <-ctx.Done():
		_ = g.cmd.Process.Kill()
		<-g.done
		return fmt.Errorf("stop mcpguard: killed: %w", ctx.Err())
	}
}

func (g *Guard) exitErr() error {
	if g.err != nil {
		return fmt.Errorf("mcpguard exit: %w", g.err)
	}
	return nil
}

// Logs is a concurrency-safe log sink that also spots mcpguard's start line.
type Logs struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	partial []byte
	seen    bool
	started chan []byte
}

func newLogs() *Logs { return &Logs{started: make(chan []byte, 1)} }

// Write implements io.Writer.
func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	if l.seen {
		return len(p), nil
	}
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := l.partial[:i]
		l.partial = l.partial[i+1:]
		if bytes.Contains(line, []byte(`"msg":"mcpguard started"`)) {
			l.seen = true
			l.started <- bytes.Clone(line)
			l.partial = nil
			return len(p), nil
		}
	}
}

// Len is the number of bytes logged so far; pass it to [Logs.Since] to see what came after.
func (l *Logs) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Len()
}

// Since returns what was logged after offset.
func (l *Logs) Since(offset int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buf.Bytes()
	if offset > len(b) {
		offset = len(b)
	}
	return string(b[offset:])
}

// String returns the whole log.
func (l *Logs) String() string { return l.Since(0) }
