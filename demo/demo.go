// Package demo runs `make demo`: the Envoy emulator configured by envoy/envoy.yaml, mcpguard with
// the demo config and policy (files next to this one) and the demo MCP server, each a child
// process on loopback; then a scripted agent (the go-sdk client) narrates an allowed call, a
// blocked DROP DATABASE, a masked secret, an approval and the replayed, verified recording.
// Every child is stopped and the temporary directory removed before [Run] returns.
package demo

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mcpguard/mcpguard/demo/server"
)

//go:embed mcpguard.yaml
var configYAML []byte

//go:embed policy.yaml
var policyYAML []byte

// Binaries the demo starts, found in [Options.BinDir].
const (
	GuardBin    = "mcpguard"
	EmulatorBin = "envoy-emulator"
	ServerBin   = "demo-server"
)

// Identities of the demo.
const (
	Agent    = "billing-agent" // the non-human identity calling the tools
	Approver = "alice"         // a release manager (group release)
)

// startLimit bounds the wait for each child's start line and for mcpguard's readiness.
const startLimit = 30 * time.Second

// Options configures [Run].
type Options struct {
	// BinDir holds [GuardBin], [EmulatorBin] and [ServerBin].
	BinDir string
	// Envoy is the Envoy bootstrap the emulator runs (envoy/envoy.yaml); only cluster
	// endpoints and the listener address are overridden.
	Envoy string
	// AutoApprove runs the printed approval command itself instead of waiting for a person.
	AutoApprove bool
	// Hold overrides approvals.hold of the demo config (25s) when positive: how long the
	// deploy call waits for a decision before the agent is told to retry later.
	Hold time.Duration
	// Keep leaves the temporary directory (config, data, logs) in place.
	Keep bool
}

// env is a running demo: the children, their addresses and the tokens.
type env struct {
	dir, bin, cfg         string
	hold                  time.Duration
	admin, gateway        string // host:port
	agentToken, tokenFile string // the agent's token; the file holding the approver's
}

// Run starts the demo, plays the script to stdout and stops everything. Child logs are in the
// temporary directory; on failure their last lines go to stderr.
func Run(ctx context.Context, o Options, stdout, stderr io.Writer) (err error) {
	dir, err := os.MkdirTemp("", "mcpguard-demo-")
	if err != nil {
		return fmt.Errorf("create work dir: %w", err)
	}
	if o.Keep {
		defer fmt.Fprintf(stdout, "\nThe demo's config, data and logs are kept in %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	bin, err := filepath.Abs(o.BinDir)
	if err != nil {
		return fmt.Errorf("resolve bin dir: %w", err)
	}
	e := &env{dir: dir, bin: filepath.Join(bin, GuardBin), hold: o.Hold}

	var procs []*proc
	defer func() {
		if err != nil && ctx.Err() == nil {
			for _, p := range procs {
				fmt.Fprintf(stderr, "--- last lines of %s ---\n%s\n", p.logPath, p.tail(20))
			}
		}
		for i := len(procs) - 1; i >= 0; i-- { // the gateway first, the upstream last
			err = errors.Join(err, procs[i].stop(15*time.Second))
		}
	}()
	launch := func(name, marker, bin string, args ...string) (map[string]any, error) {
		p, err := start(dir, name, marker, bin, args...)
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
		return p.ready(ctx, startLimit)
	}

	fmt.Fprintf(stdout, "Starting the demo in %s (logs: *.log there)\n", dir)
	up, err := launch("demo-server", "demo mcp server listening", filepath.Join(bin, ServerBin), "-listen", "127.0.0.1:0")
	if err != nil {
		return err
	}
	upstream := str(up, "addr")
	if err := e.writeConfig(); err != nil {
		return err
	}
	g, err := launch("mcpguard", "mcpguard started", e.bin, "serve", "--config", e.cfg)
	if err != nil {
		return err
	}
	grpcAddr := str(g, "grpc")
	if e.admin != str(g, "admin") {
		return fmt.Errorf("mcpguard admin listens on %q, want %q", str(g, "admin"), e.admin)
	}
	if err := waitReady(ctx, "http://"+e.admin+"/readyz"); err != nil {
		return err
	}
	gw, err := launch("envoy", "envoy emulator listening", filepath.Join(bin, EmulatorBin),
		"-c", o.Envoy, "-listen", "127.0.0.1:0",
		"-cluster", "mcpguard_grpc="+grpcAddr, "-cluster", "mcpguard_admin="+e.admin, "-cluster", "mcp_upstream="+upstream)
	if err != nil {
		return err
	}
	e.gateway = str(gw, "addr")
	if err := e.mintTokens(ctx); err != nil {
		return err
	}

	fmt.Fprintf(stdout, `
  agent ──► Envoy (emulator, %s, %s)
              ├─ ext_authz + ext_proc ──► mcpguard (gRPC %s, admin http://%s)
              └─ router ───────────────► demo MCP server (%s: query, read_config, deploy)
  policy: %s
`, e.gateway, o.Envoy, grpcAddr, e.admin, upstream, filepath.Join(dir, "policy.yaml"))
	return play(ctx, e, o.AutoApprove, stdout)
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// writeConfig writes the demo config and policy into the work directory, with the data
// directory, the policy path and the admin address (a free port, so approval links in
// errors point at it) filled in.
func (e *env) writeConfig() error {
	admin, err := freePort()
	if err != nil {
		return err
	}
	e.admin = admin
	pol := filepath.Join(e.dir, "policy.yaml")
	if err := os.WriteFile(pol, policyYAML, 0o600); err != nil {
		return fmt.Errorf("write policy: %w", err)
	}
	var c map[string]any
	if err := yaml.Unmarshal(configYAML, &c); err != nil {
		return fmt.Errorf("parse demo config: %w", err)
	}
	c["data_dir"] = filepath.Join(e.dir, "data")
	section(c, "policy")["file"] = pol
	section(c, "admin")["listen"] = admin
	ap := section(c, "approvals")
	ap["public_url"] = "http://" + admin + "/approvals"
	if e.hold > 0 {
		ap["hold"] = e.hold.String()
	} else {
		s, _ := ap["hold"].(string)
		if e.hold, err = time.ParseDuration(s); err != nil {
			return fmt.Errorf("demo config approvals.hold: %w", err)
		}
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode demo config: %w", err)
	}
	e.cfg = filepath.Join(e.dir, "mcpguard.yaml")
	if err := os.WriteFile(e.cfg, out, 0o600); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

func section(c map[string]any, name string) map[string]any {
	s, ok := c[name].(map[string]any)
	if !ok {
		s = map[string]any{}
		c[name] = s
	}
	return s
}

// freePort is a loopback address nothing listens on right now.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// waitReady polls url until it answers 200.
func waitReady(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, startLimit)
	defer cancel()
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("build readiness request: %w", err)
		}
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", url, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// mintTokens gets the agent's token and writes the approver's to a file for the CLI.
func (e *env) mintTokens(ctx context.Context) error {
	tok, err := e.token(ctx, Agent)
	if err != nil {
		return err
	}
	e.agentToken = tok
	// Approvers use tokens for the approvals audience (mcpguard.yaml's auth.audience plus
	// "/approvals"); the API refuses the agents' MCP-audience tokens.
	tok, err = e.token(ctx, Approver, "--groups", "release", "--aud", "http://localhost:8080/mcp/approvals")
	if err != nil {
		return err
	}
	e.tokenFile = filepath.Join(e.dir, Approver+".token")
	if err := os.WriteFile(e.tokenFile, []byte(tok+"\n"), 0o600); err != nil {
		return fmt.Errorf("write approver token: %w", err)
	}
	return nil
}

func (e *env) token(ctx context.Context, sub string, extra ...string) (string, error) {
	args := append([]string{"token", "--config", e.cfg, "--sub", sub, "--scope", "mcp:tools", "--ttl", "2h"}, extra...)
	out, err := e.mcpguard(ctx, args...)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(out), nil
}

// mcpguard runs the mcpguard CLI and returns its standard output; a failure carries stderr.
func (e *env) mcpguard(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, e.bin, args...) //nolint:gosec // the mcpguard binary the demo built, with arguments it composed
	var errOut strings.Builder
	cmd.Stderr = &errOut
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("mcpguard %s: %w: %s", args[0], err, strings.TrimSpace(errOut.String()))
	}
	return string(out), nil
}

// mcpURL is the MCP endpoint through the gateway.
func (e *env) mcpURL() string { return "http://" + e.gateway + server.Path }
