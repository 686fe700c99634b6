package approvals

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpguard/mcpguard/identity"
	"github.com/mcpguard/mcpguard/masking"
	"github.com/mcpguard/mcpguard/signin"
)

// ErrArguments reports call arguments that cannot be put in canonical form.
var ErrArguments = errors.New("arguments are not canonical JSON")

// ErrPendingLimit reports a new request refused because its requester, or the service as a
// whole, already has as many pending requests as Config allows.
var ErrPendingLimit = errors.New("too many pending approval requests")

// LimitError is an [ErrPendingLimit] with the limit that was reached.
type LimitError struct {
	// Scope is "requester" (Config.MaxPendingPerRequester) or "global" (Config.MaxPending).
	Scope string
	Limit int
}

func (e *LimitError) Error() string {
	if e.Scope == scopeRequester {
		return fmt.Sprintf("%s: this requester already has %d pending", ErrPendingLimit, e.Limit)
	}
	return fmt.Sprintf("%s: %d are pending", ErrPendingLimit, e.Limit)
}

// Unwrap makes errors.Is(err, ErrPendingLimit) hold.
func (e *LimitError) Unwrap() error { return ErrPendingLimit }

const (
	scopeRequester = "requester"
	scopeGlobal    = "global"
)

// Masker masks secrets in a JSON document; [masking.Masker] with the redact strategy, so
// that what was masked reads as [REDACTED:TYPE].
type Masker interface {
	JSON(src []byte) ([]byte, masking.Counts, error)
}

// listLimit bounds what List reads from the store for states other than pending; pending
// requests come from the store's pending index and are never cut off.
const listLimit = 500

// Notifier tells approvers about a new request and about its end (decided or expired).
// Notify must not block the data path.
type Notifier interface {
	Notify(e Event)
}

// Service creates requests, waits for decisions and applies them. It is safe for
// concurrent use; all state is in the [Store], so replicas sharing one agree.
type Service struct {
	cfg    Config
	store  Store
	log    *slog.Logger
	met    *metrics
	notify []Notifier
	slack  *slackApp
	mask   Masker
	now    func() time.Time
	people *signin.SignIn // nil: approvers paste tokens into the page
	// recording links a request to its session's recording; nil: no links.
	recording func(Request) string
}

// Option changes a Service.
type Option func(*Service)

// WithNotifier sends events to n, in addition to any notifier given before.
func WithNotifier(n Notifier) Option { return func(s *Service) { s.notify = append(s.notify, n) } }

// WithMasker masks what requests keep with m instead of every built-in detector.
func WithMasker(m Masker) Option { return func(s *Service) { s.mask = m } }

// WithRecordingLink shows, for each request on the page, a link to the recording of its
// session (link returns "" when there is none).
func WithRecordingLink(link func(Request) string) Option {
	return func(s *Service) { s.recording = link }
}

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// New validates cfg and returns a Service over store. A nil log discards.
func New(cfg Config, store Store, log *slog.Logger, reg prometheus.Registerer, opts ...Option) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("approvals config: %w", err)
	}
	if store == nil {
		return nil, errors.New("approvals: a store is required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, store: store, log: log, met: m, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	if s.mask == nil {
		mk, err := masking.New(masking.DefaultConfig())
		if err != nil {
			return nil, fmt.Errorf("approvals masker: %w", err)
		}
		s.mask = mk
	}
	if cfg.Slack.Enabled() {
		if s.slack, err = newSlackApp(s, reg); err != nil {
			return nil, err
		}
		s.notify = append(s.notify, s.slack)
	}
	return s, nil
}

// emit tells every notifier about e.
func (s *Service) emit(t EventType, r Request) {
	for _, n := range s.notify {
		n.Notify(Event{Type: t, Request: r})
	}
}

// Hold is the configured hold.
func (s *Service) Hold() time.Duration { return s.cfg.Hold }

// RetryAfter is the retry hint for deferred calls.
func (s *Service) RetryAfter() time.Duration { return s.cfg.RetryAfter }

// Link is where an approver decides request id: its entry on the approvals page.
func (s *Service) Link(id string) string {
	return s.cfg.PublicURL + "#req-" + url.PathEscape(id)
}

// Call is a tool call that policy says needs approval.
type Call struct {
	Requester identity.Identity
	Tool      string
	// Arguments are the raw call arguments; only their masked form is kept, to show approvers.
	Arguments json.RawMessage
	// Params is the call's whole params object. When set, a one-time grant is bound to its
	// [Binding], so any member the client adds or changes anywhere in params needs a new
	// approval; when nil, to the canonical Arguments.
	Params json.RawMessage
	Rule   string
	// Message is the rule's message.
	Message string
	Reason  string
	// Approvers are the rule's approver groups; empty uses Config.Approvers.
	Approvers []string
	// PolicyVersion identifies the policy that holds the call; grants are bound to it.
	PolicyVersion string
	Route         Route
	RequestID     string
	SessionID     string
}

// Outcome is what happens to a call.
type Outcome uint8

// Outcomes of [Service.Begin] and [Service.Wait].
const (
	// Waiting: the request is pending; hold the call or defer it.
	Waiting Outcome = iota
	// Granted: the call may proceed.
	Granted
	// Refused: an approver denied the call; Request.Decision has the reason.
	Refused
	// Lapsed: the request expired, or its one-time grant was used by another call.
	Lapsed
)

// String names the outcome for notes and logs.
func (o Outcome) String() string {
	return [...]string{"waiting", "granted", "refused", "lapsed"}[o]
}

// Result is an outcome and the request behind it.
type Result struct {
	Outcome Outcome
	Request Request
	// Created is set when Begin opened a new request (approvers were notified).
	Created bool
}

// Begin looks for a grant covering c: a live time-scoped grant for the tool, or an approved
// one-time grant for exactly this call, which it consumes. Otherwise it reuses the pending
// request for this call or opens a new one and notifies approvers. A denial the requester
// has not heard of yet (the call was deferred) is returned once.
func (s *Service) Begin(ctx context.Context, c Call) (Result, error) {
	canon, err := Canonical(c.Arguments)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrArguments, err)
	}
	p := PartyOf(c.Requester)
	if p.Subject == "" || p.Issuer == "" || c.Tool == "" {
		return Result{}, errors.New("begin approval: requester and tool required")
	}
	ck := callKey(p, c.Tool, c.PolicyVersion, "call", canon)
	var params []byte
	if c.Params != nil {
		bound, err := Binding(c.Params)
		if err != nil {
			return Result{}, fmt.Errorf("%w: %w", ErrArguments, err)
		}
		ck = callKey(p, c.Tool, c.PolicyVersion, "params", bound)
		if params, err = Canonical(c.Params); err != nil {
			return Result{}, fmt.Errorf("%w: %w", ErrArguments, err)
		}
	}
	tk := toolKey(p, c.Tool, c.PolicyVersion)
	now := s.now()

	r, err := s.store.Lookup(ctx, tk)
	switch {
	case err == nil && r.State == Approved && now.Before(r.GrantUntil):
		s.met.event(evGranted)
		return Result{Outcome: Granted, Request: r}, nil
	case err != nil && !errors.Is(err, ErrNotFound):
		return Result{}, fmt.Errorf("look up tool grant: %w", err)
	}

	r, err = s.store.Lookup(ctx, ck)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Result{}, fmt.Errorf("look up call grant: %w", err)
	}
	if err == nil {
		switch r.Effective(now) {
		case Pending:
			return Result{Outcome: Waiting, Request: r}, nil
		case Approved:
			if r.GrantFor > 0 && now.Before(r.GrantUntil) {
				s.met.event(evGranted)
				return Result{Outcome: Granted, Request: r}, nil
			}
			if r.GrantFor == 0 {
				got, err := s.consume(ctx, r.ID)
				if err == nil {
					return Result{Outcome: Granted, Request: got}, nil
				}
				if !errors.Is(err, ErrConflict) {
					return Result{}, err
				}
			}
		case Denied:
			if r.DeliveredAt.IsZero() {
				got, err := s.deliverDenial(ctx, r.ID)
				if err == nil {
					return Result{Outcome: Refused, Request: got}, nil
				}
				if !errors.Is(err, ErrConflict) {
					return Result{}, err
				}
			}
		case Expired:
			s.expire(ctx, r.ID)
		case Consumed:
			// A consumed one-shot approval covers nothing more: open a new request.
		}
	}
	return s.open(ctx, c, p, canon, params, ck, now)
}

// masked is doc with every detector finding replaced; it fails rather than keep a
// document it could not mask.
func (s *Service) masked(doc []byte) (json.RawMessage, error) {
	if doc == nil {
		return nil, nil
	}
	out, _, err := s.mask.JSON(doc)
	if err != nil {
		return nil, fmt.Errorf("mask approval request: %w", err)
	}
	return json.RawMessage(out), nil
}

// underLimits refuses a new request when its requester or the service has too many pending.
// Two replicas opening at the same instant may each see room for one more, so the limits
// can be passed by at most the number of concurrent opens.
func (s *Service) underLimits(ctx context.Context, p Party, now time.Time) error {
	pending, err := s.store.Pending(ctx)
	if err != nil {
		return fmt.Errorf("count pending approvals: %w", err)
	}
	all, mine := 0, 0
	for _, r := range pending {
		if r.Effective(now) != Pending {
			continue
		}
		all++
		if r.Requester.Same(p) {
			mine++
		}
	}
	var lim *LimitError
	switch {
	case mine >= s.cfg.MaxPendingPerRequester:
		lim = &LimitError{Scope: scopeRequester, Limit: s.cfg.MaxPendingPerRequester}
	case all >= s.cfg.MaxPending:
		lim = &LimitError{Scope: scopeGlobal, Limit: s.cfg.MaxPending}
	default:
		return nil
	}
	s.met.limited.WithLabelValues(lim.Scope).Inc()
	s.log.Warn("approval request refused: pending limit reached", "scope", lim.Scope, "limit", lim.Limit,
		"requester", p.Subject)
	return lim
}

func (s *Service) open(ctx context.Context, c Call, p Party, canon, params []byte, ck string, now time.Time) (Result, error) {
	approvers := c.Approvers
	if len(approvers) == 0 {
		approvers = s.cfg.Approvers
	}
	if len(approvers) == 0 {
		return Result{}, errors.New("open approval: no approver groups for this rule")
	}
	if err := s.underLimits(ctx, p, now); err != nil {
		return Result{}, err
	}
	args, err := s.masked(canon)
	if err != nil {
		return Result{}, err
	}
	shownParams, err := s.masked(params)
	if err != nil {
		return Result{}, err
	}
	r := Request{
		ID: rand.Text(), State: Pending, Requester: p, Tool: c.Tool, Params: shownParams, Arguments: args,
		Rule: c.Rule, Message: c.Message, Reason: c.Reason, Approvers: slices.Clone(approvers),
		PolicyVersion: c.PolicyVersion, Route: c.Route, GrantFor: s.cfg.grantFor(c.Rule),
		CreatedAt: now.UTC(), ExpiresAt: now.Add(s.cfg.Expiry).UTC(), Keys: []string{ck},
		RequestID: c.RequestID, SessionID: c.SessionID,
	}
	if err := s.store.Create(ctx, r); err != nil {
		return Result{}, fmt.Errorf("open approval: %w", err)
	}
	s.met.event(evRequested)
	s.log.Info("approval requested", "approval_id", r.ID, "tool", r.Tool, "rule", r.Rule,
		"requester", r.Requester.Subject, "approvers", r.Approvers)
	s.emit(EventRequested, r)
	return Result{Outcome: Waiting, Request: r, Created: true}, nil
}

// Wait waits up to d for request id to be decided. Approved: a one-time grant is consumed
// and the outcome is Granted. Denied: Refused. Still pending after d: Waiting, and the
// request is marked deferred. It returns early with ctx's error.
func (s *Service) Wait(ctx context.Context, id string, d time.Duration) (Result, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changed, err := s.store.Watch(wctx, id)
	if err != nil {
		return Result{}, fmt.Errorf("watch approval: %w", err)
	}
	s.met.held.Inc()
	defer s.met.held.Dec()
	timer := time.NewTimer(d)
	defer timer.Stop()
	poll := time.NewTicker(s.cfg.Poll)
	defer poll.Stop()
	for {
		r, err := s.store.Get(ctx, id)
		if err != nil {
			return Result{}, fmt.Errorf("read approval: %w", err)
		}
		switch r.Effective(s.now()) {
		case Approved:
			s.observeRelease(r)
			if r.GrantFor > 0 {
				return Result{Outcome: Granted, Request: r}, nil
			}
			got, err := s.consume(ctx, id)
			if errors.Is(err, ErrConflict) {
				return Result{Outcome: Lapsed, Request: r}, nil
			}
			if err != nil {
				return Result{}, err
			}
			return Result{Outcome: Granted, Request: got}, nil
		case Denied:
			s.observeRelease(r)
			got, err := s.deliverDenial(ctx, id)
			if err != nil && !errors.Is(err, ErrConflict) {
				return Result{}, err
			}
			if err != nil {
				got = r
			}
			return Result{Outcome: Refused, Request: got}, nil
		case Expired, Consumed:
			s.expire(ctx, id)
			return Result{Outcome: Lapsed, Request: r}, nil
		case Pending:
			// Still undecided: wait below for a change, a poll tick or the hold deadline.
		}
		select {
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case <-changed:
		case <-poll.C:
		case <-timer.C:
			got, err := s.store.Update(ctx, id, func(q *Request) error { q.Deferred = true; return nil })
			if err != nil {
				return Result{}, fmt.Errorf("defer approval: %w", err)
			}
			if got.State != Pending {
				continue // decided at the last moment: apply it
			}
			s.met.event(evDeferred)
			return Result{Outcome: Waiting, Request: got}, nil
		}
	}
}

func (s *Service) observeRelease(r Request) {
	if r.Decision != nil {
		s.met.release.Observe(max(0, s.now().Sub(r.Decision.At).Seconds()))
	}
}

// consume turns an approved one-time grant into consumed; [ErrConflict] if it is not approved.
func (s *Service) consume(ctx context.Context, id string) (Request, error) {
	now := s.now()
	r, err := s.store.Update(ctx, id, func(q *Request) error {
		if q.State != Approved || q.GrantFor != 0 {
			return ErrConflict
		}
		q.State, q.DeliveredAt = Consumed, now.UTC()
		return nil
	})
	if err != nil {
		return Request{}, fmt.Errorf("consume grant: %w", err)
	}
	s.met.event(evConsumed)
	s.log.Info("approval consumed", "approval_id", id, "tool", r.Tool)
	return r, nil
}

func (s *Service) deliverDenial(ctx context.Context, id string) (Request, error) {
	now := s.now()
	r, err := s.store.Update(ctx, id, func(q *Request) error {
		if q.State != Denied || !q.DeliveredAt.IsZero() {
			return ErrConflict
		}
		q.DeliveredAt = now.UTC()
		return nil
	})
	if err != nil {
		return Request{}, fmt.Errorf("deliver denial: %w", err)
	}
	return r, nil
}

// expire records the expiry of a pending request past its time (once, wherever it is
// noticed); it reports whether this call made the transition.
func (s *Service) expire(ctx context.Context, id string) bool {
	now := s.now()
	r, err := s.store.Update(ctx, id, func(q *Request) error {
		if q.State != Pending || now.Before(q.ExpiresAt) {
			return ErrConflict
		}
		q.State = Expired
		return nil
	})
	if err != nil {
		return false
	}
	s.met.event(evExpired)
	s.log.Info("approval expired", "approval_id", id)
	s.emit(EventDecided, r)
	return true
}

// Decide records an approver's decision on a pending request. The approver must be in one
// of its approver groups and must not be its requester ([ErrForbidden]); a request that
// is no longer pending is [ErrConflict].
func (s *Service) Decide(ctx context.Context, id string, by identity.Identity, approve bool, reason string) (Request, error) {
	now := s.now()
	r, err := s.store.Update(ctx, id, func(q *Request) error {
		if q.Effective(now) != Pending {
			return ErrConflict
		}
		if err := q.CanApprove(by); err != nil {
			return err
		}
		q.Decision = &Decision{Approved: approve, By: PartyOf(by), At: now.UTC(), Reason: reason}
		q.State = Denied
		if approve {
			q.State = Approved
			if q.GrantFor > 0 {
				q.GrantUntil = now.Add(q.GrantFor).UTC()
				q.Keys = append(q.Keys, toolKey(q.Requester, q.Tool, q.PolicyVersion))
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrConflict) {
			s.expire(ctx, id)
		}
		return Request{}, fmt.Errorf("decide approval %s: %w", id, err)
	}
	ev := evDenied
	if approve {
		ev = evApproved
	}
	s.met.event(ev)
	s.log.Info("approval decided", "approval_id", id, "decision", ev, "approver", by.Subject, "tool", r.Tool)
	s.emit(EventDecided, r)
	return r, nil
}

// Get returns request id as it stands now (a pending request past expiry reads as expired).
func (s *Service) Get(ctx context.Context, id string) (Request, error) {
	r, err := s.store.Get(ctx, id)
	if err != nil {
		return Request{}, fmt.Errorf("get approval: %w", err)
	}
	r.State = r.Effective(s.now())
	return r, nil
}

// List returns the requests viewer may see (those they may decide or asked for), newest
// first, in the given state ("" for all). Pending lists every pending request; other states
// look at the newest 500 requests.
func (s *Service) List(ctx context.Context, viewer identity.Identity, state State) ([]Request, error) {
	var all []Request
	var err error
	if state == Pending {
		all, err = s.store.Pending(ctx)
	} else {
		all, err = s.store.List(ctx, listLimit)
	}
	if err != nil {
		return nil, fmt.Errorf("list approvals: %w", err)
	}
	now := s.now()
	out := []Request{}
	me := PartyOf(viewer)
	for _, r := range all {
		r.State = r.Effective(now)
		if state != "" && r.State != state {
			continue
		}
		if !me.Same(r.Requester) && !slices.ContainsFunc(viewer.Groups, func(g string) bool { return slices.Contains(r.Approvers, g) }) {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// pruner is a store that must delete old requests itself ([FileStore]).
type pruner interface {
	Prune(ctx context.Context, before time.Time) (int, error)
}

// Sweep marks pending requests past their expiry as expired, however old, and prunes
// requests older than the file store's retention. It returns how many requests expired.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	pending, err := s.store.Pending(ctx)
	if err != nil {
		return 0, fmt.Errorf("sweep approvals: %w", err)
	}
	now, n := s.now(), 0
	for _, r := range pending {
		if r.State == Pending && r.Effective(now) == Expired && s.expire(ctx, r.ID) {
			n++
		}
	}
	if p, ok := s.store.(pruner); ok {
		if _, err := p.Prune(ctx, now.Add(-s.cfg.Store.File.Retention)); err != nil {
			return n, err
		}
	}
	return n, nil
}

// Run sweeps every Config.Sweep, and delivers to Slack when configured, until ctx ends.
func (s *Service) Run(ctx context.Context) {
	if s.slack != nil {
		done := make(chan struct{})
		go func() { defer close(done); s.slack.out.run(ctx) }()
		defer func() { <-done }()
	}
	t := time.NewTicker(s.cfg.Sweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("approvals sweep", "err", err.Error())
			}
		}
	}
}
