// Package server is the MCP server behind the gateway in `make demo`: a billing team's tools
// (query, read_config, deploy) built on the official go-sdk. Nothing runs for real: query returns
// fixed rows, read_config a fixed file that holds fake secrets, deploy a fixed confirmation.
package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Path is the Streamable HTTP endpoint of the server.
const Path = "/mcp"

// ConfigFile is what read_config returns: an environment file with a database password and an
// AWS key pair, all made up, so the demo can show them masked on the way back to the agent.
//
//nolint:gosec // made-up credentials: the point of the masking step
const ConfigFile = `# /etc/billing/app.env
DATABASE_URL=postgres://billing:Tr0ub4dor-horse-9@db.internal:5432/billing
AWS_ACCESS_KEY_ID=AKIA4HXQ2ZJ7PLM3KDRT
AWS_SECRET_ACCESS_KEY=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
LOG_LEVEL=info
`

// Customers is the row set query returns, whatever the SQL: no personal data, so it passes
// unmasked.
const Customers = `[{"customer":"Acme Corp","plan":"enterprise","seats":250},{"customer":"Globex","plan":"team","seats":40},{"customer":"Initech","plan":"team","seats":12}]`

// QueryArgs are the arguments of query.
type QueryArgs struct {
	SQL string `json:"sql" jsonschema:"one SQL statement"`
}

// ReadConfigArgs are the arguments of read_config.
type ReadConfigArgs struct {
	Service string `json:"service" jsonschema:"the service whose configuration to read"`
}

// DeployArgs are the arguments of deploy.
type DeployArgs struct {
	Service string `json:"service"`
	Version string `json:"version"`
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

// New returns the MCP server with the demo tools.
func New() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "billing-tools", Version: "1.0.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "query", Description: "Run one SQL statement against the billing database."},
		func(context.Context, *mcp.CallToolRequest, QueryArgs) (*mcp.CallToolResult, any, error) {
			return text(Customers), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "read_config", Description: "Read a service's environment file."},
		func(context.Context, *mcp.CallToolRequest, ReadConfigArgs) (*mcp.CallToolResult, any, error) {
			return text(ConfigFile), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "deploy", Description: "Deploy a service version to production."},
		func(_ context.Context, _ *mcp.CallToolRequest, a DeployArgs) (*mcp.CallToolResult, any, error) {
			if a.Service == "" || a.Version == "" {
				return nil, nil, errors.New("deploy: service and version are required")
			}
			return text(fmt.Sprintf("deployed %s %s to production", a.Service, a.Version)), nil, nil
		})
	return s
}

// Handler serves [New] over stateful Streamable HTTP on [Path]. The SDK's localhost guard is
// off because the gateway forwards the client's Host header to this loopback listener.
func Handler() http.Handler {
	s := New()
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s },
		&mcp.StreamableHTTPOptions{DisableLocalhostProtection: true, MaxRequestBodyBytes: 1 << 20})
	mux := http.NewServeMux()
	mux.Handle(Path, h)
	return mux
}
