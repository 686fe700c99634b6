package app

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// panicGuard turns a panic in a gRPC handler into an Internal error for that call or stream.
// Envoy then fails the one request closed (failure_mode_allow is false) instead of every
// request failing because the process died. Classifiers contain their parsers' panics
// themselves; this is the net under everything else.
type panicGuard struct {
	log    *slog.Logger
	panics prometheus.Counter
}

func newPanicGuard(log *slog.Logger, reg prometheus.Registerer) (*panicGuard, error) {
	g := &panicGuard{log: log, panics: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "mcpguard_grpc_panics_total",
		Help: "gRPC calls and streams that panicked and were failed with Internal (a bug: see the error log).",
	})}
	if err := reg.Register(g.panics); err != nil {
		return nil, fmt.Errorf("register metric: %w", err)
	}
	return g, nil
}

func (g *panicGuard) options() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(g.unary), grpc.ChainStreamInterceptor(g.stream)}
}

func (g *panicGuard) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (_ any, err error) {
	defer g.recover(info.FullMethod, &err)
	return h(ctx, req)
}

func (g *panicGuard) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	defer g.recover(info.FullMethod, &err)
	return h(srv, ss)
}

// recover is deferred by the interceptors. The log names the method, the runtime error (or
// only the type of any other panic value, which might carry message content) and the stack,
// whose frames hold addresses, never bodies.
func (g *panicGuard) recover(method string, err *error) {
	r := recover()
	if r == nil {
		return
	}
	g.panics.Inc()
	what := fmt.Sprintf("panic value of type %T", r)
	if re, ok := r.(runtime.Error); ok {
		what = re.Error()
	}
	g.log.Error("gRPC handler panicked; this call failed closed", "method", method, "panic", what, "stack", string(debug.Stack()))
	*err = status.Error(codes.Internal, "mcpguard internal error")
}
