// Package extproc is the Envoy ext_proc server: one state machine per gRPC stream (one
// HTTP request) runs a pipeline of stages over the parsed MCP messages in both directions.
// Invariants: identity comes only from ext_authz metadata; every Envoy message gets exactly
// one answer of the matching type; anything unparsable, unknown or out of order is refused.
package extproc

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Server implements envoy.service.ext_proc.v3.ExternalProcessor.
type Server struct {
	extprocv3.UnimplementedExternalProcessorServer

	cfg  Config
	log  *slog.Logger
	m    *metrics
	req  []RequestStage
	resp []ResponseStage
	obs  []Observer // see record.go
	sess *Sessions  // binds the sessions the upstream opens (session.go); nil without it

	tracer trace.Tracer // nil: tracing off (observe.go)
	audit  Auditor      // nil: no audit events
}

var _ extprocv3.ExternalProcessorServer = (*Server)(nil)

// NewServer validates cfg, registers the metrics on reg and builds the pipeline (a nil log
// discards). The
// protocol stage (mcp.Check: revision, batch and header/body rules) always runs first on
// the request path; stages follow in the given order, each being a [RequestStage], a
// [ResponseStage] or both.
func NewServer(cfg Config, log *slog.Logger, reg prometheus.Registerer, stages ...Stage) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("extproc config: %w", err)
	}
	if reg == nil {
		return nil, errors.New("extproc: a prometheus registerer is required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log, req: []RequestStage{protocol{}}}
	seen := map[string]bool{protocol{}.Name(): true}
	for i, st := range stages {
		name := st.Name()
		if name == "" || seen[name] {
			return nil, fmt.Errorf("stage %d: name %q empty or not unique", i, name)
		}
		seen[name] = true
		rq, okReq := st.(RequestStage)
		rs, okResp := st.(ResponseStage)
		if !okReq && !okResp {
			return nil, fmt.Errorf("stage %q: neither a request nor a response stage", name)
		}
		if okReq {
			s.req = append(s.req, rq)
		}
		if okResp {
			s.resp = append(s.resp, rs)
		}
		if ss, ok := st.(*Sessions); ok {
			s.sess = ss
		}
		if o, ok := st.(Observer); ok {
			s.obs = append(s.obs, o)
		}
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s.m = m
	return s, nil
}

// Register adds the ExternalProcessor service to a gRPC server.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	extprocv3.RegisterExternalProcessorServer(r, s)
}

// Process serves one ext_proc stream until Envoy closes it, the stream's context ends or
// the exchange is complete. A gRPC error return makes Envoy fail the request closed.
func (s *Server) Process(srv extprocv3.ExternalProcessor_ProcessServer) error {
	s.m.streams.Inc()
	s.m.active.Inc()
	defer s.m.active.Dec()

	st := newStream(s, srv)
	defer st.ended()
	defer st.releaseCodec()
	var failed error
	defer func() { st.endTrace(failed) }()
	for {
		req, err := srv.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			failed = err
			return err
		}
		resp, err := st.handle(srv.Context(), req)
		if err == nil && st.x != nil && st.x.obs != nil {
			st.requestDecided(resp)
		}
		if err != nil {
			failed = err
			if srv.Context().Err() != nil {
				return status.FromContextError(srv.Context().Err()).Err()
			}
			st.log.Warn("ext_proc stream refused", "phase", st.phase.String(), "err", err)
			if _, ok := status.FromError(err); !ok {
				err = status.Error(codes.Internal, err.Error())
			}
			return err
		}
		if (st.phase == finished || st.phase == awaitResponseEnd) && !st.completed {
			// An accumulated body answered whole before its end_of_stream (trailers follow)
			// completes the exchange too: nothing after it is forwarded.
			st.completed = true
			if err := st.completing(srv.Context(), resp); err != nil {
				failed = err
				st.log.Warn("exchange not completed", "err", err)
				return status.Error(codes.Unavailable, "exchange could not be completed")
			}
		}
		if err := srv.Send(resp); err != nil {
			return fmt.Errorf("send processing response: %w", err)
		}
		if st.phase == finished {
			return nil
		}
	}
}
