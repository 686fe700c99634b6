package harness

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/mcpguard/mcpguard/e2e/bootstrap"
	"github.com/mcpguard/mcpguard/e2e/emulator"
)

// GatewayOptions configures [StartGateway].
type GatewayOptions struct {
	// EnvoyYAML is the bootstrap; default envoy/envoy.yaml under the module root.
	EnvoyYAML string
	// Root is the module root, used to find the default bootstrap.
	Root string
	// GRPC, Admin and Upstream are the endpoints of the clusters mcpguard_grpc,
	// mcpguard_admin and mcp_upstream.
	GRPC, Admin, Upstream string
	Log                   *slog.Logger              // nil discards
	Trace                 func(emulator.TraceEvent) // optional
	// TimingHeader turns on the emulator's debug header x-emulator-timing (load measurements).
	TimingHeader bool
}

// Gateway is a running Envoy emulator on a random loopback port.
type Gateway struct {
	e *emulator.Emulator
}

// StartGateway loads the bootstrap unchanged, overrides the listener (127.0.0.1:0) and the
// three cluster addresses, and starts the emulator.
func StartGateway(ctx context.Context, o GatewayOptions) (*Gateway, error) {
	path := o.EnvoyYAML
	if path == "" {
		path = filepath.Join(o.Root, "envoy", "envoy.yaml")
	}
	b, err := bootstrap.Load(path)
	if err != nil {
		return nil, fmt.Errorf("load bootstrap: %w", err)
	}
	e, err := emulator.New(b, emulator.Options{
		Listen: "127.0.0.1:0",
		Clusters: map[string]string{
			"mcpguard_grpc":  o.GRPC,
			"mcpguard_admin": o.Admin,
			"mcp_upstream":   o.Upstream,
		},
		Log:          o.Log,
		Trace:        o.Trace,
		TimingHeader: o.TimingHeader,
	})
	if err != nil {
		return nil, fmt.Errorf("new emulator: %w", err)
	}
	if err := e.Start(ctx); err != nil {
		return nil, fmt.Errorf("start emulator: %w", err)
	}
	return &Gateway{e: e}, nil
}

// Addr is the listener address.
func (g *Gateway) Addr() string { return g.e.Addr() }

// URL is the MCP endpoint through the gateway.
func (g *Gateway) URL() string { return "http://" + g.e.Addr() + "/mcp" }

// Close stops the emulator, waiting for in-flight requests until ctx ends.
func (g *Gateway) Close(ctx context.Context) error {
	if err := g.e.Close(ctx); err != nil {
		return fmt.Errorf("close gateway: %w", err)
	}
	return nil
}
