package harness

import (
	"context"
	"fmt"
	"net/http"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Protocol revisions the suite pins.
const (
	V20241105 = "2024-11-05" // HTTP+SSE transport
	V20250618 = "2025-06-18"
	V20251125 = "2025-11-25"
	V20260728 = "2026-07-28" // stateless
)

// bearer adds an Authorization header to every request (never to the log).
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// HTTPClient is an http.Client that sends token as a bearer credential on every request
// (no header when token is empty). Connections are not shared with other clients.
func HTTPClient(token string) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	if token == "" {
		return &http.Client{Transport: t}
	}
	return &http.Client{Transport: bearer{token: token, next: t}}
}

// ClientOptions configures [Connect].
type ClientOptions struct {
	Endpoint string // the MCP URL (gateway or upstream)
	Token    string // bearer token; empty sends none
	// Version pins the protocol revision; V20241105 selects the HTTP+SSE transport.
	Version string
	// DisableStandaloneSSE skips the GET stream of stateful sessions.
	DisableStandaloneSSE bool
	// Name is the client's name in clientInfo; default mcpguard-e2e.
	Name string
	// Client are the SDK client options (handlers for sampling, elicitation, progress).
	Client *mcp.ClientOptions
	// HTTP overrides the client built from Token.
	HTTP *http.Client
}

// Connect opens an MCP client session. Events of any size are accepted (the suite sends
// 20 MiB results) and the client does not retry broken streams, so a gateway fault shows.
func Connect(ctx context.Context, o ClientOptions) (*mcp.ClientSession, error) {
	hc := o.HTTP
	if hc == nil {
		hc = HTTPClient(o.Token)
	}
	var t mcp.Transport
	if o.Version == V20241105 {
		t = &mcp.SSEClientTransport{Endpoint: o.Endpoint, HTTPClient: hc, MaxEventSize: -1}
	} else {
		t = &mcp.StreamableClientTransport{
			Endpoint: o.Endpoint, HTTPClient: hc, MaxEventSize: -1, MaxRetries: -1,
			DisableStandaloneSSE: o.DisableStandaloneSSE,
		}
	}
	name := o.Name
	if name == "" {
		name = "mcpguard-e2e"
	}
	c := mcp.NewClient(&mcp.Implementation{Name: name, Version: "1.0.0"}, o.Client)
	s, err := c.Connect(ctx, t, &mcp.ClientSessionOptions{ProtocolVersion: o.Version})
	if err != nil {
		return nil, fmt.Errorf("connect %s (%s): %w", o.Endpoint, o.Version, err)
	}
	return s, nil
}
