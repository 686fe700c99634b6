package authz

import (
	"bytes"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcpguard/mcpguard/authz/authztest"
)

const (
	testAudience = "https://mcp.example.com/mcp"
	testMetadata = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
	testScope    = "mcp:tools"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// clock is a settable time source for cache and expiry tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func withClock(f func() time.Time) Option { return func(o *options) { o.now = f } }

type env struct {
	iss    *authztest.Issuer
	cfg    Config
	v      *Verifier
	s      *Server
	client authv3.AuthorizationClient
	logs   *syncBuffer
	reg    *prometheus.Registry
}

func testConfig(iss *authztest.Issuer) Config {
	cfg := DefaultConfig()
	if iss != nil {
		cfg.Issuers = []IssuerConfig{{Issuer: iss.URL}}
	}
	cfg.Audience = testAudience
	cfg.RequiredScopes = []string{testScope}
	cfg.ResourceMetadataURL = testMetadata
	cfg.JWKS.RetryInterval = 20 * time.Millisecond
	return cfg
}

// newEnv starts a test issuer, a verifier and the ext_authz service on a real gRPC listener.
func newEnv(t *testing.T, mutate func(*Config), opts ...Option) *env {
	t.Helper()
	e := &env{iss: authztest.NewIssuer(t), logs: &syncBuffer{}, reg: prometheus.NewRegistry()}
	e.cfg = testConfig(e.iss)
	if mutate != nil {
		mutate(&e.cfg)
	}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	v, err := NewVerifier(t.Context(), e.cfg, log, e.reg, opts...)
	require.NoError(t, err)
	t.Cleanup(v.Close)
	e.v = v
	e.s = NewServer(v, e.cfg, log, e.reg)
	e.client = serve(t, e.s)
	return e
}

// serve runs s on 127.0.0.1 and returns a client connected over real gRPC.
func serve(t testing.TB, s *Server) authv3.AuthorizationClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := grpc.NewServer()
	s.Register(g)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = g.Serve(lis)
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = conn.Close()
		g.Stop()
		<-done
	})
	return authv3.NewAuthorizationClient(conn)
}

// request is a CheckRequest shaped as Envoy sends it: lower-case header keys, id, path, context extensions.
func request(auth string, extra map[string]string, ext map[string]string) *authv3.CheckRequest {
	h := map[string]string{
		":authority": "mcp.example.com", ":method": "POST", ":path": "/mcp", ":scheme": "https",
		"content-type": "application/json", "accept": "application/json, text/event-stream",
		"x-request-id": "req-1", "mcp-protocol-version": "2025-11-25",
	}
	if auth != "" {
		h["authorization"] = auth
	}
	path := "/mcp"
	for k, v := range extra {
		if k == ":path" {
			path = v
		}
		h[k] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "req-1", Method: "POST", Path: path, Host: "mcp.example.com", Scheme: "https",
			Protocol: "HTTP/1.1", Headers: h,
		}},
		ContextExtensions: ext,
	}}
}

// value reads a counter or gauge.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	require.NoError(t, m.Write(&d))
	if c := d.GetCounter(); c != nil {
		return c.GetValue()
	}
	return d.GetGauge().GetValue()
}
