package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/trace"
)

var errUnknownOutcome = errors.New("unknown outcome")

// Config says where audit events go.
type Config struct {
	// Enabled turns the audit events on.
	Enabled bool `yaml:"enabled"`
	// Output is "stdout", "stderr" or the path of a file events are appended to (created
	// 0600); "none" writes no lines (OpenTelemetry only).
	Output string `yaml:"output"`
	// OTel also sends every event as an OpenTelemetry log record over OTLP (endpoint and
	// headers from the standard OTEL_EXPORTER_OTLP_* variables).
	OTel bool `yaml:"otel"`
	// QueueSize bounds the events waiting to be written; when full, events are dropped and
	// counted in mcpguard_audit_dropped_total rather than slowing requests down.
	QueueSize int `yaml:"queue_size"`
}

// DefaultConfig is off; when enabled, JSON lines on stdout with a queue of 4096 events.
func DefaultConfig() Config {
	return Config{Output: "stdout", QueueSize: 4096}
}

// Validate reports every problem, each with its field name.
func (c Config) Validate() error {
	var errs []error
	if c.Output == "" {
		errs = append(errs, errors.New("output: required (stdout, stderr, none or a file path)"))
	}
	if c.Enabled && c.Output == "none" && !c.OTel {
		errs = append(errs, errors.New("output: none needs otel: true, or events go nowhere"))
	}
	if c.QueueSize < 1 || c.QueueSize > 1<<20 {
		errs = append(errs, errors.New("queue_size: must be within 1..1048576"))
	}
	return errors.Join(errs...)
}

// Log writes events off the request path: [Log.Emit] queues, one goroutine writes.
type Log struct {
	w    *bufio.Writer
	file io.Closer // the opened file, nil for stdout/stderr
	otel otellog.Logger
	log  *slog.Logger

	mu     sync.RWMutex
	closed bool
	ch     chan queued
	done   chan struct{}

	events  *prometheus.CounterVec
	dropped prometheus.Counter
}

type queued struct {
	ev Event
	sc trace.SpanContext
}

// Open starts the writer for c. stdout is where "stdout" goes; ol, when non-nil, receives
// every event as a log record. Close stops it.
func Open(c Config, stdout io.Writer, ol otellog.Logger, log *slog.Logger, reg prometheus.Registerer) (*Log, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("audit config: %w", err)
	}
	if reg == nil {
		return nil, errors.New("audit: a prometheus registerer is required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Log{
		otel: ol, log: log,
		ch:   make(chan queued, c.QueueSize),
		done: make(chan struct{}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpguard_audit_events_total",
			Help: "Audit events emitted, by outcome (allowed, denied, held, approved, deferred, masked).",
		}, []string{"outcome"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpguard_audit_dropped_total",
			Help: "Audit events dropped because the audit queue was full (audit.queue_size).",
		}),
	}
	for _, o := range []Outcome{Allowed, Denied, Held, Approved, Deferred, Masked} {
		l.events.WithLabelValues(string(o))
	}
	var out io.Writer
	switch c.Output {
	case "stdout":
		out = stdout
	case "stderr":
		out = os.Stderr
	case "none":
	default:
		f, err := os.OpenFile(c.Output, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open audit file: %w", err)
		}
		out, l.file = f, f
	}
	if out != nil {
		l.w = bufio.NewWriterSize(out, 64<<10)
	}
	for _, col := range []prometheus.Collector{l.events, l.dropped} {
		if err := reg.Register(col); err != nil {
			if l.file != nil {
				_ = l.file.Close()
			}
			return nil, fmt.Errorf("register audit metrics: %w", err)
		}
	}
	go l.run()
	return l, nil
}

// Emit queues ev; it never blocks. sc, when valid, ties the OpenTelemetry log record to its
// span (the JSON line carries ev.TraceID and ev.SpanID).
func (l *Log) Emit(ev Event, sc trace.SpanContext) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		l.dropped.Inc()
		return
	}
	select {
	case l.ch <- queued{ev: ev, sc: sc}:
	default:
		l.dropped.Inc()
	}
}

func (l *Log) run() {
	defer close(l.done)
	for q := range l.ch {
		l.write(q)
		if len(l.ch) == 0 {
			l.flush()
		}
	}
	l.flush()
}

func (l *Log) write(q queued) {
	l.events.WithLabelValues(string(q.ev.Outcome)).Inc()
	if l.w != nil {
		b, err := json.Marshal(q.ev)
		if err == nil {
			_, _ = l.w.Write(append(b, '\n'))
		}
	}
	if l.otel != nil {
		ctx := context.Background()
		if q.sc.IsValid() {
			ctx = trace.ContextWithSpanContext(ctx, q.sc)
		}
		l.otel.Emit(ctx, Record(q.ev))
	}
}

func (l *Log) flush() {
	if l.w == nil {
		return
	}
	if err := l.w.Flush(); err != nil {
		l.log.Error("audit events not written", "err", err.Error())
	}
}

// Close writes what is queued and stops the writer, within ctx.
func (l *Log) Close(ctx context.Context) error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.ch)
	}
	l.mu.Unlock()
	select {
	case <-l.done:
	case <-ctx.Done():
		return fmt.Errorf("audit close: %w", ctx.Err())
	}
	if l.file != nil {
		if err := l.file.Close(); err != nil {
			return fmt.Errorf("close audit file: %w", err)
		}
	}
	return nil
}

// EventName is the OpenTelemetry event name of audit log records.
const EventName = "mcpguard.audit"

// Record is ev as an OpenTelemetry log record: the event name mcpguard.audit, severity INFO,
// the outcome as body, and the JSON fields of [Event] as attributes of the same names.
func Record(ev Event) otellog.Record {
	var r otellog.Record
	r.SetEventName(EventName)
	r.SetTimestamp(ev.Time)
	r.SetSeverity(otellog.SeverityInfo)
	r.SetSeverityText("INFO")
	r.SetBody(attribute.StringValue(string(ev.Outcome)))
	attrs := make([]attribute.KeyValue, 0, 16)
	str := func(k, v string) {
		if v != "" {
			attrs = append(attrs, attribute.String(k, v))
		}
	}
	str("outcome", string(ev.Outcome))
	str("stage", ev.Stage)
	str("subject", ev.Subject)
	str("client_id", ev.ClientID)
	str("issuer", ev.Issuer)
	str("request_id", ev.RequestID)
	str("session_id", ev.SessionID)
	str("method", ev.Method)
	str("tool", ev.Tool)
	str("direction", ev.Direction)
	str("rule", ev.Rule)
	str("action", ev.Action)
	if ev.Observe {
		attrs = append(attrs, attribute.Bool("observe", true))
	}
	str("reason", ev.Reason)
	str("approval_id", ev.ApprovalID)
	str("approver", ev.Approver)
	if ev.Status != 0 {
		attrs = append(attrs, attribute.Int("status", ev.Status))
	}
	if len(ev.Masked) > 0 {
		keys := make([]string, 0, len(ev.Masked))
		for k := range ev.Masked {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		kvs := make([]attribute.KeyValue, 0, len(keys))
		for _, k := range keys {
			kvs = append(kvs, attribute.Int(k, ev.Masked[k]))
		}
		attrs = append(attrs, attribute.Map("masked", kvs...))
	}
	r.AddAttributes(attrs...)
	return r
}
