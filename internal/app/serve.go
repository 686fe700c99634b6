package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/extproc"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/internal/devissuer"
	"github.com/mcpguard/mcpguard/internal/netx"
	"github.com/mcpguard/mcpguard/internal/telemetry"
)

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	configPath := fs.String("config", "", "config file (default: the embedded development config)")
	if err := parseFlags(fs, args, stderr, "serve [--config FILE]"); err != nil {
		return helpOK(err)
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		return fmt.Errorf("load config: %w", err)
	}
	log := telemetry.NewLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	// The OpenTelemetry SDK reports export failures through its one global handler.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("opentelemetry", "err", err.Error()) }))
	reg := telemetry.NewRegistry(Version)
	s, err := newService(ctx, cfg, log, reg, stdout)
	if err != nil {
		return err
	}
	return s.run(ctx)
}

// service is one running mcpguard: the gRPC port Envoy calls and the admin HTTP port.
type service struct {
	cfg      *config.Config
	log      *slog.Logger
	verifier *authz.Verifier
	grpc     *grpc.Server
	health   *health.Server
	admin    *http.Server
	grpcLis  net.Listener
	adminLis net.Listener
	reloads  []*netx.Reloader
	// closers flush and stop the pipeline's stages after gRPC has stopped (recordings last).
	closers  []func(context.Context) error
	draining atomic.Bool
	ready    atomic.Bool
}

// Services Envoy calls; their health follows readiness.
var grpcServices = []string{"", "envoy.service.auth.v3.Authorization", "envoy.service.ext_proc.v3.ExternalProcessor"}

// streamWorkers is the number of goroutines that serve gRPC streams one after another.
const streamWorkers = 64

func newService(ctx context.Context, cfg *config.Config, log *slog.Logger, reg *prometheus.Registry, stdout io.Writer) (_ *service, err error) {
	s := &service{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			s.closeAll()
		}
	}()

	var opts []authz.Option
	extra := map[string]http.Handler{}
	if dc := cfg.Auth.DevIssuer; dc.Enabled {
		iss, err := devissuer.Open(dc, cfg.DevKeyFile())
		if err != nil {
			return nil, fmt.Errorf("open development issuer: %w", err)
		}
		log.Warn("development token issuer enabled: anyone who can read its key can mint any identity; never use it in production",
			"issuer", iss.Issuer(), "key_file", cfg.DevKeyFile())
		opts = append(opts, authz.WithStaticIssuer(iss.Issuer(), iss.JWKS()))
		if p := resourcePath(iss.Issuer()); p != "" {
			extra[p+"/"] = iss.Handler()
		}
	}
	s.verifier, err = authz.NewVerifier(ctx, cfg.Auth.Config, log, reg, opts...)
	if err != nil {
		return nil, fmt.Errorf("start token verifier: %w", err)
	}
	pipeline, closers, err := stages(ctx, cfg, log, reg, s.verifier, extra)
	s.closers = closers
	if err != nil {
		return nil, fmt.Errorf("build pipeline: %w", err)
	}
	ext, err := extproc.NewServer(cfg.ExtProc, log, reg, pipeline...)
	if err != nil {
		return nil, fmt.Errorf("start ext_proc: %w", err)
	}
	tp, aud, err := s.observability(ctx, log, reg, stdout)
	if err != nil {
		return nil, err
	}
	ext.Instrument(tp, aud)

	guard, err := newPanicGuard(log, reg)
	if err != nil {
		return nil, err
	}
	gopts := []grpc.ServerOption{
		// Envoy's ext_proc messages repeat the caller's metadata_context; the codec decodes
		// each distinct one once (extproc.Codec).
		grpc.ForceServerCodecV2(extproc.NewCodec()),
		// Streams run on reused goroutines whose stacks have already grown to what a stream
		// needs, instead of a fresh 8 KiB stack that is copied as it grows (7% of the CPU of
		// an allowed call). Beyond this many concurrent streams, grpc-go starts a goroutine
		// per stream as before.
		grpc.NumStreamWorkers(streamWorkers),
		grpc.MaxRecvMsgSize(cfg.GRPC.MaxRecvMsgBytes),
		grpc.MaxSendMsgSize(cfg.GRPC.MaxSendMsgBytes),
		grpc.MaxConcurrentStreams(cfg.GRPC.MaxConcurrentStreams),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             cfg.GRPC.Keepalive.MinTime,
			PermitWithoutStream: cfg.GRPC.Keepalive.PermitWithoutStream,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:              cfg.GRPC.Keepalive.Time,
			Timeout:           cfg.GRPC.Keepalive.Timeout,
			MaxConnectionIdle: cfg.GRPC.Keepalive.MaxConnectionIdle,
		}),
	}
	if cfg.GRPC.TLS.Enabled() {
		r, err := s.reloader(cfg.GRPC.TLS)
		if err != nil {
			return nil, fmt.Errorf("grpc tls: %w", err)
		}
		gopts = append(gopts, grpc.Creds(credentials.NewTLS(r.ServerConfig())))
	}
	s.grpc = grpc.NewServer(append(gopts, guard.options()...)...)
	az := authz.NewServer(s.verifier, cfg.Auth.Config, log, reg)
	az.Instrument(tp, aud)
	az.Register(s.grpc)
	ext.Register(s.grpc)
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	s.setHealth(false)

	mux, err := adminMux(cfg, reg, s.readiness, extra)
	if err != nil {
		return nil, err
	}
	s.admin = &http.Server{Handler: mux, ReadHeaderTimeout: cfg.Admin.ReadHeaderTimeout, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	if cfg.Admin.TLS.Enabled() {
		r, err := s.reloader(cfg.Admin.TLS)
		if err != nil {
			return nil, fmt.Errorf("admin tls: %w", err)
		}
		s.admin.TLSConfig = r.ServerConfig()
	}

	if s.grpcLis, err = netx.Listen(ctx, cfg.GRPC.Listen); err != nil {
		return nil, fmt.Errorf("grpc listen: %w", err)
	}
	if s.adminLis, err = netx.Listen(ctx, cfg.Admin.Listen); err != nil {
		return nil, fmt.Errorf("admin listen: %w", err)
	}
	return s, nil
}

func (s *service) reloader(c netx.TLSConfig) (*netx.Reloader, error) {
	r, err := netx.NewReloader(c, s.log)
	if err != nil {
		return nil, err
	}
	s.reloads = append(s.reloads, r)
	return r, nil
}

// readiness is nil once every issuer's keys are loaded, and fails again while draining.
func (s *service) readiness() error {
	if s.draining.Load() {
		return errors.New("shutting down")
	}
	return s.verifier.Ready()
}

func (s *service) setHealth(serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	for _, svc := range grpcServices {
		s.health.SetServingStatus(svc, st)
	}
}

// watchReadiness keeps gRPC health in step with readiness and logs each change once.
func (s *service) watchReadiness(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		err := s.readiness()
		if ok := err == nil; ok != s.ready.Load() {
			s.ready.Store(ok)
			s.setHealth(ok)
			if ok {
				s.log.Info("ready")
			} else {
				s.log.Warn("not ready", "reason", err.Error())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *service) run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	s.log.Info("mcpguard started", "version", Version,
		"grpc", s.grpcLis.Addr().String(), "grpc_tls", s.cfg.GRPC.TLS.Enabled(), "grpc_mtls", s.cfg.GRPC.TLS.ClientCAFile != "",
		"admin", s.adminLis.Addr().String(), "admin_tls", s.cfg.Admin.TLS.Enabled())
	g.Go(func() error {
		if err := s.grpc.Serve(s.grpcLis); err != nil {
			return fmt.Errorf("grpc serve: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		var err error
		if s.admin.TLSConfig != nil {
			err = s.admin.ServeTLS(s.adminLis, "", "")
		} else {
			err = s.admin.Serve(s.adminLis)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("admin serve: %w", err)
		}
		return nil
	})
	for _, r := range s.reloads {
		g.Go(func() error { r.Run(gctx); return nil })
	}
	g.Go(func() error { s.watchReadiness(gctx); return nil })
	g.Go(func() error {
		<-gctx.Done()
		s.shutdown()
		return nil
	})
	err := g.Wait()
	s.verifier.Close()
	s.log.Info("mcpguard stopped")
	return err
}

// shutdown stops in order: report not ready (gRPC health and /readyz), keep serving for
// the drain period so Envoy moves new traffic away, then stop gRPC gracefully within the
// timeout (in-flight ext_proc streams finish), and finally stop the admin port.
func (s *service) shutdown() {
	s.log.Info("shutting down", "drain", s.cfg.Shutdown.Drain.String(), "timeout", s.cfg.Shutdown.Timeout.String())
	s.draining.Store(true)
	s.setHealth(false)
	time.Sleep(s.cfg.Shutdown.Drain)

	deadline := time.Now().Add(s.cfg.Shutdown.Timeout)
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Until(deadline)):
		s.log.Warn("graceful stop timed out; closing remaining streams")
		s.grpc.Stop()
		<-done
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline.Add(time.Second))
	defer cancel()
	for _, c := range s.closers {
		if err := c(ctx); err != nil {
			s.log.Error("stage shutdown", "err", err.Error())
		}
	}
	if err := s.admin.Shutdown(ctx); err != nil {
		s.log.Warn("admin shutdown", "err", err.Error())
		_ = s.admin.Close()
	}
}

// closeAll releases what newService opened when it fails part way.
func (s *service) closeAll() {
	for _, c := range s.closers {
		_ = c(context.Background())
	}
	if s.verifier != nil {
		s.verifier.Close()
	}
	for _, l := range []net.Listener{s.grpcLis, s.adminLis} {
		if l != nil {
			_ = l.Close()
		}
	}
}
