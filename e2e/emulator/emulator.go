// Package emulator is an HTTP proxy that behaves like Envoy 1.40's HCM with the ext_authz → ext_proc → router
// chain, configured from the same bootstrap we ship. It refuses every bootstrap field it does not emulate
// (see README.md), talks real gRPC to the ext_authz/ext_proc clusters and real HTTP/1.1 upstream, and fails
// closed wherever Envoy would. Options.Trace observes every Check and Process message for assertions.
package emulator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"
)

// Options adjusts where the emulator listens and connects; everything else comes from the bootstrap.
type Options struct {
	Listen   string            // overrides the listener address, e.g. "127.0.0.1:0"
	Clusters map[string]string // overrides a cluster's endpoint: name → "host:port" or "unix:/path"
	Log      *slog.Logger      // nil: discard
	Trace    func(TraceEvent)  // optional; called synchronously, must not block
	// TimingHeader (debug, off by default) adds TimingHeader to every response: the time the request
	// waited on ext_authz and ext_proc, and on the upstream. It tells clients about the processors.
	TimingHeader bool
}

// TraceKind names what a TraceEvent records.
type TraceKind string

// Trace kinds, in the order they can occur for one HTTP request.
const (
	TraceCheckRequest       TraceKind = "ext_authz.check_request"
	TraceCheckResponse      TraceKind = "ext_authz.check_response"
	TraceProcessingRequest  TraceKind = "ext_proc.processing_request"
	TraceProcessingResponse TraceKind = "ext_proc.processing_response"
	TraceLocalReply         TraceKind = "local_reply"
	TraceReset              TraceKind = "stream_reset"
)

// TraceEvent is one observed message or outcome of an HTTP request.
type TraceEvent struct {
	RequestID string        // the x-request-id of the HTTP request
	Kind      TraceKind     // what happened
	Message   proto.Message // CheckRequest/CheckResponse/ProcessingRequest/ProcessingResponse; nil otherwise
	Status    int           // local reply status
	Details   string        // local reply or reset details, as Envoy's %RESPONSE_CODE_DETAILS%
}

// Emulator is a running (or ready to start) Envoy stand-in.
type Emulator struct {
	p         *plan
	o         Options
	log       *slog.Logger
	conns     map[string]*grpc.ClientConn
	inflight  map[string]*atomic.Int64
	transport map[string]*http.Transport
	srv       *http.Server
	ln        net.Listener
	wg        sync.WaitGroup // goroutines that outlive a request: graceful ext_proc closes
	serveDone chan struct{}
}

// New checks b against what the emulator implements and prepares the clients. It fails with every
// unsupported field path at once.
func New(b *bootstrapv3.Bootstrap, o Options) (*Emulator, error) {
	p, err := compile(b)
	if err != nil {
		return nil, fmt.Errorf("emulate bootstrap: %w", err)
	}
	if o.Listen != "" {
		p.listen = o.Listen
	}
	var errs []error
	for name, addr := range o.Clusters {
		c := p.clusters[name]
		if c == nil {
			errs = append(errs, fmt.Errorf("options.clusters[%s]: unknown cluster", name))
			continue
		}
		c.addr = addr
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	e := &Emulator{
		p: p, o: o, log: o.Log,
		conns:     map[string]*grpc.ClientConn{},
		inflight:  map[string]*atomic.Int64{},
		transport: map[string]*http.Transport{},
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	for name, c := range p.clusters {
		e.inflight[name] = &atomic.Int64{}
		if c.h2 {
			cc, err := dialGRPC(c)
			if err != nil {
				return nil, errors.Join(err, e.closeConns())
			}
			e.conns[name] = cc
			continue
		}
		e.transport[name] = newTransport(c)
	}
	return e, nil
}

func dialGRPC(c *cluster) (*grpc.ClientConn, error) {
	target := "passthrough:///" + c.addr
	if strings.HasPrefix(c.addr, "unix:") {
		target = c.addr
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// Envoy's EnvoyGrpc sends the cluster name as :authority unless authority is set per service.
		grpc.WithAuthority(c.name),
		// EnvoyGrpc.max_receive_message_length defaults to unlimited; grpc-go's client default is 4 MiB,
		// which would reset responses whose collected body comes back as one message.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)),
	}
	if c.keepalive > 0 {
		opts = append(opts, grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: c.keepalive, Timeout: c.keepaliveTO}))
	}
	cc, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial cluster %s: %w", c.name, err)
	}
	return cc, nil
}

func newTransport(c *cluster) *http.Transport {
	d := &net.Dialer{Timeout: c.connectTimeout}
	addr := c.addr
	return &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			if p, ok := strings.CutPrefix(addr, "unix:"); ok {
				return d.DialContext(ctx, "unix", p)
			}
			return d.DialContext(ctx, "tcp", addr)
		},
		// The router forwards bytes as they arrive: no transparent decompression, no HTTP/2 upgrade.
		DisableCompression: true,
		ForceAttemptHTTP2:  false,
		IdleConnTimeout:    time.Hour,
	}
}

// Start listens on the configured (or overridden) address and serves until Close.
func (e *Emulator) Start(ctx context.Context) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", e.p.listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", e.p.listen, err)
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	e.ln = ln
	e.srv = &http.Server{
		Handler:           http.HandlerFunc(e.serveHTTP),
		Protocols:         &protos,
		ReadHeaderTimeout: e.p.headersTimeout,
		MaxHeaderBytes:    e.p.headerLimits.bytes,
		ErrorLog:          slog.NewLogLogger(e.log.Handler(), slog.LevelDebug),
	}
	e.serveDone = make(chan struct{})
	go func() {
		defer close(e.serveDone)
		if err := e.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error("serve", "err", err)
		}
	}()
	return nil
}

// Addr is the address the emulator listens on (valid after Start).
func (e *Emulator) Addr() string {
	if e.ln == nil {
		return e.p.listen
	}
	return e.ln.Addr().String()
}

// Close stops accepting, waits for in-flight requests until ctx ends (then drops them), and closes the
// gRPC and upstream connections.
func (e *Emulator) Close(ctx context.Context) error {
	var err error
	if e.srv != nil {
		if err = e.srv.Shutdown(ctx); err != nil {
			err = errors.Join(fmt.Errorf("shutdown: %w", err), e.srv.Close())
		}
		<-e.serveDone
	}
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		err = errors.Join(err, fmt.Errorf("wait for ext_proc streams: %w", ctx.Err()))
	}
	for _, t := range e.transport {
		t.CloseIdleConnections()
	}
	return errors.Join(err, e.closeConns())
}

func (e *Emulator) closeConns() error {
	var errs []error
	for name, cc := range e.conns {
		if err := cc.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close cluster %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func (e *Emulator) trace(ev TraceEvent) {
	if e.o.Trace != nil {
		e.o.Trace(ev)
	}
}

// acquire takes one request slot on cluster name, as Envoy's circuit breaker max_requests does.
func (e *Emulator) acquire(name string) (release func(), ok bool) {
	c := e.inflight[name]
	if c.Add(1) > e.p.clusters[name].maxRequests {
		c.Add(-1)
		return nil, false
	}
	var once sync.Once
	return func() { once.Do(func() { c.Add(-1) }) }, true
}
