package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Source holds the policy in force and reloads it when its file changes. A file that fails
// to load or compile leaves the last good policy in force (logged and counted).
type Source struct {
	path     string
	interval time.Duration
	log      *slog.Logger
	cur      atomic.Pointer[Set]
	sum      [sha256.Size]byte
	// failed identifies the last content (or read error) that did not load, so that a
	// broken file is logged and counted once per change, not on every poll.
	failed string

	reloads *prometheus.CounterVec
	rules   prometheus.Gauge
}

// Open compiles the configured policy (the embedded default when cfg.File is empty). An
// initial policy that does not compile is an error: the service must not start without one.
func Open(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Source, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Source{
		path: cfg.File, interval: cfg.ReloadInterval, log: log,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpguard_policy_reloads_total",
			Help: "Policy file reloads by result (ok, error).",
		}, []string{"result"}),
		rules: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mcpguard_policy_rules",
			Help: "Rules in the policy in force.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{s.reloads, s.rules} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register policy metrics: %w", err)
			}
		}
	}
	data := DefaultPolicy()
	if cfg.File != "" {
		var err error
		if data, err = os.ReadFile(cfg.File); err != nil {
			return nil, fmt.Errorf("read policy: %w", err)
		}
	}
	set, err := Compile(data)
	if err != nil {
		return nil, fmt.Errorf("compile policy %s: %w", s.name(), err)
	}
	s.store(set, data)
	return s, nil
}

// Current is the policy in force.
func (s *Source) Current() *Set { return s.cur.Load() }

// Run checks the file every ReloadInterval until ctx ends. It returns at once for the
// embedded policy.
func (s *Source) Run(ctx context.Context) {
	if s.path == "" {
		return
	}
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = s.Reload()
		}
	}
}

// Reload reads the file and, when its content changed and compiles, puts it in force. It
// reports whether a new policy took effect; on error the last good policy stays, and the
// error is logged and counted once per change of the file (every call returns it).
// Reload is called from one goroutine (Run) at a time.
func (s *Source) Reload() (bool, error) {
	if s.path == "" {
		return false, nil
	}
	data, err := os.ReadFile(s.path)
	sum := sha256.Sum256(data)
	if err == nil && sum == s.sum {
		s.failed = ""
		return false, nil
	}
	attempt := "content " + string(sum[:])
	if err != nil {
		attempt = "read " + err.Error()
	}
	var set *Set
	if err == nil {
		set, err = Compile(data)
	}
	if err != nil {
		if attempt != s.failed {
			s.failed = attempt
			s.reloads.WithLabelValues("error").Inc()
			s.log.Error("policy reload failed; the last good policy stays in force", "file", s.path, "err", err)
		}
		return false, fmt.Errorf("reload policy: %w", err)
	}
	s.failed = ""
	s.store(set, data)
	s.reloads.WithLabelValues("ok").Inc()
	s.log.Info("policy reloaded", "file", s.path, "rules", len(set.rules))
	return true, nil
}

func (s *Source) store(set *Set, data []byte) {
	s.sum = sha256.Sum256(bytes.Clone(data))
	s.cur.Store(set)
	s.rules.Set(float64(len(set.rules)))
}

func (s *Source) name() string {
	if s.path == "" {
		return "(embedded default)"
	}
	return s.path
}
