// Package mcpserver is the upstream MCP server of the end-to-end suite and the load tool: the
// official go-sdk server with a few tools (echo, slow, big, ask, execute_sql), served over every
// transport mcpguard must carry (Streamable HTTP stateful/stateless, JSON or SSE, and the
// 2024-11-05 HTTP+SSE transport). Tool outputs are deterministic so tests can compare them.
package mcpserver

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Mode selects the transport the server speaks.
type Mode string

// Transports the server can speak.
const (
	// Stateful is Streamable HTTP with sessions (2025-06-18, 2025-11-25), SSE responses.
	Stateful Mode = "stateful"
	// StatefulJSON is Stateful with application/json responses.
	StatefulJSON Mode = "stateful-json"
	// Stateless is Streamable HTTP without sessions (2026-07-28), SSE responses.
	Stateless Mode = "stateless"
	// StatelessJSON is Stateless with application/json responses.
	StatelessJSON Mode = "stateless-json"
	// SSE is the 2024-11-05 HTTP+SSE transport (GET stream plus POSTs with ?sessionid=).
	SSE Mode = "sse"
)

// Validate reports an unknown mode.
func (m Mode) Validate() error {
	switch m {
	case Stateful, StatefulJSON, Stateless, StatelessJSON, SSE:
		return nil
	}
	return fmt.Errorf("mode %q is not one of stateful, stateful-json, stateless, stateless-json, sse", m)
}

// Paths of the MCP endpoint: Streamable HTTP on Path, the 2024-11-05 transport's GET stream
// on SSEPath (its POST endpoint is SSEPath?sessionid=…, announced in the endpoint event).
const (
	Path    = "/mcp"
	SSEPath = "/sse"
)

// Options configures a [Server].
type Options struct {
	Mode Mode
	// Log receives the SDK's transport log; nil discards it.
	Log *slog.Logger
}

// Server is a running upstream MCP server on a loopback port.
type Server struct {
	mode  Mode
	mcp   *mcp.Server
	http  *http.Server
	lis   net.Listener
	stop  context.CancelFunc // ends every request context: cuts open SSE streams
	done  chan struct{}
	gates gates
}

// Start listens on 127.0.0.1 (a random port) and serves until Close.
func Start(opts Options) (*Server, error) {
	if err := opts.Mode.Validate(); err != nil {
		return nil, err
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{mode: opts.Mode, done: make(chan struct{}), gates: gates{m: map[string]chan struct{}{}}}
	s.mcp = mcp.NewServer(&mcp.Implementation{Name: "mcpguard-e2e-upstream", Version: "1.0.0"}, &mcp.ServerOptions{Logger: log})
	s.addTools()

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s.lis = lis
	mux := http.NewServeMux()
	mux.Handle(s.path(), s.handler(log))
	base, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return base }}
	go func() {
		defer close(s.done)
		_ = s.http.Serve(lis) // returns ErrServerClosed after Close
	}()
	return s, nil
}

// handler builds the transport for the mode. The SDK's DNS-rebinding guard is off: this
// server sits behind the gateway, which forwards the client's public Host (e.g.
// localhost:8080 or a real name) to a loopback listener; the guard would refuse that.
func (s *Server) handler(log *slog.Logger) http.Handler {
	get := func(*http.Request) *mcp.Server { return s.mcp }
	if s.mode == SSE {
		return mcp.NewSSEHandler(get, &mcp.SSEOptions{DisableLocalhostProtection: true, MaxRequestBodyBytes: 8 << 20})
	}
	o := &mcp.StreamableHTTPOptions{
		Stateless:                  s.mode == Stateless || s.mode == StatelessJSON,
		JSONResponse:               s.mode == StatefulJSON || s.mode == StatelessJSON,
		Logger:                     log,
		DisableLocalhostProtection: true,
		MaxRequestBodyBytes:        8 << 20,
	}
	if !o.Stateless {
		o.EventStore = mcp.NewMemoryEventStore(nil)
	}
	return mcp.NewStreamableHTTPHandler(get, o)
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// URL is the MCP endpoint for direct (gateway-less) access.
func (s *Server) URL() string { return "http://" + s.Addr() + s.path() }

// URLVia is the MCP endpoint reached through a gateway listening on addr.
func (s *Server) URLVia(addr string) string { return "http://" + addr + s.path() }

func (s *Server) path() string {
	if s.mode == SSE {
		return SSEPath
	}
	return Path
}

// Mode is the transport the server speaks.
func (s *Server) Mode() Mode { return s.mode }

// Release lets every slow call waiting on gate continue (see [SlowArgs.Gate]). Calls that
// reach the gate later pass straight through.
func (s *Server) Release(gate string) { s.gates.release(gate) }

// Close stops the server: running tools are cancelled and released, in-flight responses get
// until ctx ends (or 2s) to finish, then remaining connections (long-lived SSE streams the SDK
// keeps open) are cut. It waits for the serving goroutine.
func (s *Server) Close(ctx context.Context) error {
	s.gates.releaseAll()
	s.stop()
	grace, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var err error
	if s.http.Shutdown(grace) != nil {
		err = s.http.Close()
	}
	<-s.done
	if err != nil {
		return fmt.Errorf("close mcp server: %w", err)
	}
	return nil
}

// gates are named channels slow calls wait on, so tests can observe a tool mid-run.
type gates struct {
	mu  sync.Mutex
	m   map[string]chan struct{}
	all bool
}

func (g *gates) wait(ctx context.Context, name string) error {
	g.mu.Lock()
	ch, ok := g.m[name]
	if !ok {
		ch = make(chan struct{})
		if g.all {
			close(ch)
		}
		g.m[name] = ch
	}
	g.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for gate %s: %w", name, ctx.Err())
	}
}

func (g *gates) release(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ch, ok := g.m[name]
	if !ok {
		ch = make(chan struct{})
		g.m[name] = ch
	}
	select {
	case <-ch:
	default:
		close(ch)
	}
}

func (g *gates) releaseAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.all = true
	for _, ch := range g.m {
		select {
		case <-ch:
		default:
			close(ch)
		}
	}
}

// BigText is the deterministic text the big tool returns for n bytes: numbered lines, so a
// lost, duplicated or reordered chunk shows up in a comparison.
func BigText(n int) string {
	var b strings.Builder
	b.Grow(n + 64)
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "line %09d the quick brown fox jumps over the lazy dog\n", i)
	}
	return b.String()[:n]
}
