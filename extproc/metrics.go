package extproc

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	streams   prometheus.Counter
	active    prometheus.Gauge
	messages  *prometheus.CounterVec
	decisions *prometheus.CounterVec
	duration  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		streams: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpguard_extproc_streams_total",
			Help: "ext_proc streams opened by Envoy (one per HTTP request).",
		}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mcpguard_extproc_streams_active",
			Help: "ext_proc streams currently open.",
		}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpguard_extproc_messages_total",
			Help: "JSON-RPC messages inspected, by direction and MCP method (unknown methods as other).",
		}, []string{"direction", "method"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpguard_extproc_decisions_total",
			Help: "Stage verdicts, by stage and action.",
		}, []string{"stage", "action"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mcpguard_extproc_stage_duration_seconds",
			Help: "Time a stage took per message, holds included.",
			Buckets: []float64{
				.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5, 30, 120, 600, 1800,
			},
		}, []string{"stage"}),
	}
	for _, c := range []prometheus.Collector{m.streams, m.active, m.messages, m.decisions, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register extproc metrics: %w", err)
		}
	}
	return m, nil
}

// methods bounds the method label to what MCP defines.
var methods = map[string]bool{
	"initialize": true, "ping": true, "server/discover": true, "subscriptions/listen": true,
	"tools/list": true, "tools/call": true, "resources/list": true, "resources/templates/list": true,
	"resources/read": true, "resources/subscribe": true, "resources/unsubscribe": true,
	"prompts/list": true, "prompts/get": true, "completion/complete": true, "logging/setLevel": true,
	"tasks/get": true, "tasks/result": true, "tasks/list": true, "tasks/cancel": true,
	"sampling/createMessage": true, "elicitation/create": true, "roots/list": true,
	"notifications/initialized": true, "notifications/cancelled": true, "notifications/progress": true,
	"notifications/message": true, "notifications/tools/list_changed": true,
	"notifications/prompts/list_changed": true, "notifications/resources/list_changed": true,
	"notifications/resources/updated": true, "notifications/roots/list_changed": true,
	"notifications/elicitation/complete": true, "notifications/tasks/status": true,
	"notifications/subscriptions/acknowledged": true,
}

func methodLabel(m string) string {
	if methods[m] {
		return m
	}
	return "other"
}
