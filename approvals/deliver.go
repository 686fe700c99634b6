package approvals

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// EventType says what happened to a request.
type EventType string

// Events notifiers are told about.
const (
	// EventRequested: a request was opened and waits for a decision.
	EventRequested EventType = "requested"
	// EventDecided: a request left the pending state; Request.State says how (approved,
	// denied or expired) and Request.Decision by whom.
	EventDecided EventType = "decided"
)

// Event is a change approvers are told about.
type Event struct {
	Type    EventType
	Request Request
}

// Notification results counted by mcpguard_approvals_notifications_total.
const (
	resultSent    = "sent"
	resultFailed  = "failed"
	resultDropped = "dropped"
)

// hookSlack is the metrics label of the Slack app's deliveries.
const hookSlack = "slack"

// notifyMetrics counts deliveries per hook. Webhooks and the Slack app share one family,
// so the collector already registered is reused.
func notifyMetrics(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mcpguard_approvals_notifications_total",
		Help: "Notifications by hook (its configured name, never the URL) and result: sent, failed (after all attempts), dropped (the hook's queue was full).",
	}, []string{"hook", "result"})
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing, nil
			}
		}
		return nil, fmt.Errorf("register notification metrics: %w", err)
	}
	return c, nil
}

// delivery is one notification to one hook; send makes one attempt and may run again.
type delivery struct {
	id    string // approval id, for logs
	event string
	send  func(ctx context.Context) error
}

// permanentError is a failure another attempt cannot fix (a 4xx answer, a bad token).
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return permanentError{err} }

// outbox is one hook's bounded queue and its single worker: retries with capped
// exponential backoff and jitter, each attempt under its own timeout. A full queue drops
// the new notification and counts it; the worker of one hook never waits for another's.
type outbox struct {
	name string
	cfg  NotifyConfig
	q    chan delivery
	met  *prometheus.CounterVec
	log  *slog.Logger
}

func newOutbox(name string, cfg NotifyConfig, met *prometheus.CounterVec, log *slog.Logger) *outbox {
	for _, r := range []string{resultSent, resultFailed, resultDropped} {
		met.WithLabelValues(name, r)
	}
	return &outbox{name: name, cfg: cfg, q: make(chan delivery, cfg.QueueSize), met: met, log: log.With("hook", name)}
}

// offer queues d without blocking.
func (o *outbox) offer(d delivery) {
	select {
	case o.q <- d:
	default:
		o.met.WithLabelValues(o.name, resultDropped).Inc()
		o.log.Warn("approval notification dropped: queue full", "approval_id", d.id, "event", d.event)
	}
}

// run delivers until ctx ends.
func (o *outbox) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-o.q:
			o.deliver(ctx, d)
		}
	}
}

func (o *outbox) deliver(ctx context.Context, d delivery) {
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, o.cfg.Timeout)
		err := d.send(actx)
		cancel()
		if err == nil {
			o.met.WithLabelValues(o.name, resultSent).Inc()
			o.log.Info("approval notification sent", "approval_id", d.id, "event", d.event, "attempt", attempt)
			return
		}
		var perm permanentError
		if errors.As(err, &perm) || attempt >= o.cfg.Attempts || ctx.Err() != nil {
			o.met.WithLabelValues(o.name, resultFailed).Inc()
			o.log.Warn("approval notification failed", "approval_id", d.id, "event", d.event, "attempts", attempt, "err", err.Error())
			return
		}
		t := time.NewTimer(o.backoff(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			o.met.WithLabelValues(o.name, resultFailed).Inc()
			return
		case <-t.C:
		}
	}
}

// backoff is the wait after the given failed attempt: Backoff doubled per attempt, capped
// at MaxBackoff, then drawn uniformly from its upper half.
func (o *outbox) backoff(attempt int) time.Duration {
	d := o.cfg.Backoff
	for i := 1; i < attempt && d < o.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, o.cfg.MaxBackoff)
	half := d / 2
	return half + rand.N(d-half+1) //nolint:gosec // G404: jitter, not a secret
}
