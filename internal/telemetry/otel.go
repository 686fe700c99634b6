package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/log/noop"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Tracing configures OpenTelemetry traces exported over OTLP/gRPC. Anything the file leaves
// unset comes from the standard OTEL_* variables (OTEL_EXPORTER_OTLP_ENDPOINT, _HEADERS,
// _CERTIFICATE, OTEL_TRACES_SAMPLER, OTEL_BSP_*, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES);
// OTEL_SDK_DISABLED=true turns tracing off whatever the file says.
type Tracing struct {
	// Enabled turns tracing on. Off, no span is created and nothing is exported.
	Enabled bool `yaml:"enabled"`
	// Endpoint is the OTLP/gRPC receiver as a URL: http://host:4317 (plaintext) or
	// https://host:4317. Empty: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT,
	// else https://localhost:4317.
	Endpoint string `yaml:"endpoint"`
	// ServiceName is the service.name resource attribute (OTEL_SERVICE_NAME overrides it).
	ServiceName string `yaml:"service_name"`
	// Sampler decides which new traces are recorded.
	Sampler Sampler `yaml:"sampler"`
}

// Sampler is a ratio sampler, optionally honouring the caller's sampling decision.
type Sampler struct {
	// Ratio of traces sampled, 0..1. Unset: OTEL_TRACES_SAMPLER(_ARG), else all.
	Ratio *float64 `yaml:"ratio"`
	// ParentBased follows the sampled flag of the caller's traceparent (Envoy's or the
	// agent's) and applies Ratio only to traces that start here.
	ParentBased bool `yaml:"parent_based"`
}

// DefaultTracing is off; when enabled, parent-based sampling of every new trace.
func DefaultTracing() Tracing {
	return Tracing{ServiceName: "mcpguard", Sampler: Sampler{ParentBased: true}}
}

// Validate reports every problem, each with its field name.
func (t Tracing) Validate() error {
	var errs []error
	if t.Endpoint != "" {
		if u, err := url.Parse(t.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("endpoint: %q is not an http:// or https:// URL", t.Endpoint))
		}
	}
	if t.ServiceName == "" {
		errs = append(errs, errors.New("service_name: required"))
	}
	if r := t.Sampler.Ratio; r != nil && (*r < 0 || *r > 1) {
		errs = append(errs, errors.New("sampler.ratio: must be within 0..1"))
	}
	return errors.Join(errs...)
}

// sdkDisabled reports OTEL_SDK_DISABLED=true, the standard switch that turns the SDK off.
func sdkDisabled() bool {
	return strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true")
}

// OTel is the OpenTelemetry pipeline of one running service.
type OTel struct {
	// Tracer is nil when tracing is off: callers then do no span work at all.
	Tracer trace.TracerProvider
	// Logs is nil unless audit records go to OpenTelemetry.
	Logs otellog.LoggerProvider

	shutdown []func(context.Context) error
}

// Shutdown flushes and stops the exporters within ctx.
func (o *OTel) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range o.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}

// NewOTel builds the trace provider of t (nil when off) and, with logs, a log provider
// exporting OTLP log records to the same receiver. Exporters connect lazily: an unreachable
// collector costs dropped spans, never a failed start.
func NewOTel(ctx context.Context, t Tracing, version string, logs bool) (*OTel, error) {
	o := &OTel{}
	if sdkDisabled() || (!t.Enabled && !logs) {
		if logs {
			o.Logs = noop.NewLoggerProvider()
		}
		return o, nil
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(t.ServiceName), semconv.ServiceVersion(version)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil {
		return nil, fmt.Errorf("otel resource: %w", err)
	}
	if t.Enabled {
		var opts []otlptracegrpc.Option
		if t.Endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(t.Endpoint))
		}
		exp, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("otlp trace exporter: %w", err)
		}
		popts := []sdktrace.TracerProviderOption{sdktrace.WithBatcher(exp), sdktrace.WithResource(res)}
		if r := t.Sampler.Ratio; r != nil {
			s := sdktrace.TraceIDRatioBased(*r)
			if t.Sampler.ParentBased {
				s = sdktrace.ParentBased(s)
			}
			popts = append(popts, sdktrace.WithSampler(s))
		}
		tp := sdktrace.NewTracerProvider(popts...)
		o.Tracer = tp
		o.shutdown = append(o.shutdown, tp.Shutdown)
	}
	if logs {
		var opts []otlploggrpc.Option
		if t.Endpoint != "" {
			opts = append(opts, otlploggrpc.WithEndpointURL(t.Endpoint))
		}
		exp, err := otlploggrpc.New(ctx, opts...)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("otlp log exporter: %w", err), o.Shutdown(ctx))
		}
		lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewBatchProcessor(exp)), sdklog.WithResource(res))
		o.Logs = lp
		o.shutdown = append(o.shutdown, lp.Shutdown)
	}
	return o, nil
}
