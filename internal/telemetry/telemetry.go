// Package telemetry builds the service's logger, metrics registry and OpenTelemetry pipeline.
//
// Both are created once in internal/app and injected into every package; nothing here is
// global, so tests get their own registry and a captured log.
package telemetry

import (
	"io"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// NewLogger returns a slog logger writing JSON (or text) lines at the given level; lines
// logged with a span in their context carry trace_id and span_id.
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "text" {
		return slog.New(WithTrace(slog.NewTextHandler(w, opts)))
	}
	return slog.New(WithTrace(slog.NewJSONHandler(w, opts)))
}

// NewRegistry returns a registry with the Go runtime and process collectors and
// mcpguard_build_info{version} set to 1.
func NewRegistry(version string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "mcpguard_build_info",
		Help:        "Build information; always 1.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	info.Set(1)
	reg.MustRegister(info)
	return reg
}
