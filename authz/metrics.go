package authz

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	refreshes *prometheus.CounterVec
	cache     *prometheus.CounterVec
	cacheHit  prometheus.Counter // cache's children, resolved once: the lookup is per check
	cacheMiss prometheus.Counter
	checks    *prometheus.CounterVec
	duration  prometheus.Histogram
}

func newVerifierMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpguard_authz_jwks_refreshes_total",
			Help: "Fetches of issuers' signing keys, by issuer and result (success, failure).",
		}, []string{"issuer", "result"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpguard_authz_token_cache_lookups_total",
			Help: "Verified-token cache lookups, by result (hit, miss).",
		}, []string{"result"}),
	}
	var err error
	if m.refreshes, err = register(reg, m.refreshes); err != nil {
		return nil, err
	}
	if m.cache, err = register(reg, m.cache); err != nil {
		return nil, err
	}
	m.cacheHit, m.cacheMiss = m.cache.WithLabelValues("hit"), m.cache.WithLabelValues("miss")
	return m, nil
}

func newServerMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpguard_authz_checks_total",
			Help: "ext_authz checks, by result (allowed, denied_unauthenticated, denied_forbidden, error).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mcpguard_authz_check_duration_seconds",
			Help:    "Time to answer an ext_authz check.",
			Buckets: []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3},
		}),
	}
	var err error
	if m.checks, err = register(reg, m.checks); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	for _, r := range []string{resultAllowed, resultUnauthenticated, resultForbidden, resultError} {
		m.checks.WithLabelValues(r)
	}
	return m, nil
}

// register adds c to reg; a collector already registered under the same description is reused,
// so several servers may share one registry. A nil reg registers nothing.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	switch {
	case err == nil:
		return c, nil
	case errors.As(err, &are):
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("register metric: %w", err)
}
