package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/internal/telemetry"
)

// auditor is what the servers emit audit events to; audit.Log implements it.
type auditor interface {
	Emit(ev audit.Event, sc trace.SpanContext)
}

// observability builds the trace provider (nil when tracing is off) and the audit log (nil
// when off) and registers their shutdown after the stages': audit events of the last
// exchanges are written, then the exporters flush.
func (s *service) observability(ctx context.Context, log *slog.Logger, reg prometheus.Registerer, stdout io.Writer) (trace.TracerProvider, auditor, error) {
	cfg := s.cfg
	ac := cfg.Audit
	o, err := telemetry.NewOTel(ctx, cfg.Tracing, Version, ac.Enabled && ac.OTel)
	if err != nil {
		return nil, nil, fmt.Errorf("opentelemetry: %w", err)
	}
	var aud auditor
	if ac.Enabled {
		var ol otellog.Logger
		if o.Logs != nil {
			ol = o.Logs.Logger("github.com/mcpguard/mcpguard/audit")
		}
		l, err := audit.Open(ac, stdout, ol, log, reg)
		if err != nil {
			return nil, nil, errors.Join(fmt.Errorf("audit: %w", err), o.Shutdown(ctx))
		}
		aud = l
		s.closers = append(s.closers, l.Close)
	}
	s.closers = append(s.closers, o.Shutdown)
	if o.Tracer != nil {
		log.Info("tracing on", "endpoint", cfg.Tracing.Endpoint, "service_name", cfg.Tracing.ServiceName)
	}
	return o.Tracer, aud, nil
}
