package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/mcpguard/mcpguard/approvals"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/extproc"
	"github.com/mcpguard/mcpguard/identity"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/masking"
	"github.com/mcpguard/mcpguard/policy"
	"github.com/mcpguard/mcpguard/signin"
)

// approvalParts is what the approvals feature contributes to a running service.
type approvalParts struct {
	approver extproc.Approver
	// sessions is the policy's session state: in Redis when approvals use Redis, so
	// replicas agree on call counts and pinned tools.
	sessions policy.Store
	routes   map[string]http.Handler
	closers  []func(context.Context) error
	// people and auth sign readers in to the recordings replay as approvers are.
	people *signin.SignIn
	auth   approvals.Authenticator
}

// approverAuth authenticates approvers with the service's token verifier: a token must be
// issued for the approvals audience and must not also be valid for the MCP audience, so an
// agent's token (or one minted for both) never decides approvals.
type approverAuth struct {
	v        *authz.Verifier
	aud, mcp string
}

func (a approverAuth) Authenticate(ctx context.Context, token string) (identity.Identity, error) {
	id, err := a.v.Authenticate(ctx, token, a.aud)
	if _, mcpErr := a.v.Authenticate(ctx, token, a.mcp); mcpErr == nil {
		return identity.Identity{}, approvals.ErrAgentToken
	}
	return id, err
}

// approverAudience is the audience approvers' tokens must carry: approvals.api.audience, by
// default the MCP audience with "/approvals" appended. It must differ from the MCP audience.
func approverAudience(cfg *config.Config) (string, error) {
	aud := cfg.Approvals.API.Audience
	if aud == "" {
		aud = strings.TrimRight(cfg.Auth.Audience, "/") + "/approvals"
	}
	if aud == cfg.Auth.Audience {
		return "", fmt.Errorf("approvals.api.audience: must differ from auth.audience (%s), so agent tokens cannot decide approvals", aud)
	}
	return aud, nil
}

// openApprovals opens the configured store, the service, its webhook notifier and the
// approver routes. On error everything opened so far is closed by the returned closers.
func openApprovals(ctx context.Context, cfg *config.Config, log *slog.Logger, reg prometheus.Registerer, v *authz.Verifier) (p approvalParts, err error) {
	ac := cfg.Approvals
	base := log // sign-in names its own component
	log = log.With("component", "approvals")
	var store approvals.Store
	switch ac.Store.Kind {
	case "redis":
		rc, err := redisClient(ctx, ac.Store.Redis)
		if err != nil {
			return p, err
		}
		p.closers = append(p.closers, func(context.Context) error { return rc.Close() })
		rs, err := approvals.NewRedisStore(ctx, rc, ac.Store.Redis.Prefix, ac.Store.Redis.Retention)
		if err != nil {
			return p, err
		}
		store = rs
		p.sessions = approvals.NewRedisSessions(rc, ac.Store.Redis.Prefix+"sessions:", cfg.Policy.SessionTTL)
	default:
		path := ac.Store.File.Path
		if path == "" {
			path = filepath.Join(cfg.DataDir, "approvals.db")
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return p, fmt.Errorf("approvals directory: %w", err)
		}
		fs, err := approvals.OpenFile(path)
		if err != nil {
			return p, err
		}
		store = fs
		mem := policy.NewMemory(cfg.Policy.SessionTTL, policy.MemoryMaxEntries(cfg.Policy.SessionMaxEntries))
		if err := registerSessionMetrics(reg, mem); err != nil {
			return p, err
		}
		p.sessions = mem
	}
	// Held calls end with gRPC's stop, before the store closes (closers run in order).
	p.closers = append([]func(context.Context) error{func(context.Context) error { return store.Close() }}, p.closers...)

	var svc *approvals.Service
	hooks, err := approvals.NewWebhooks(ac.Notify, func(id string) string { return svc.Link(id) }, nil, log, reg)
	if err != nil {
		return p, err
	}
	mk, err := approvalMasker(cfg.Masking)
	if err != nil {
		return p, err
	}
	var opts []approvals.Option
	p.people, opts, err = signInOptions(ac, base)
	if err != nil {
		return p, err
	}
	if cfg.Recordings.Web.Enabled {
		opts = append(opts, approvals.WithRecordingLink(recordingLink))
	}
	svc, err = approvals.New(ac, store, log, reg, append(opts, approvals.WithNotifier(hooks), approvals.WithMasker(mk))...)
	if err != nil {
		return p, err
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		wg.Go(func() { svc.Run(runCtx) })
		hooks.Run(runCtx)
		wg.Wait()
	}()
	p.closers = append([]func(context.Context) error{func(context.Context) error {
		stop()
		<-done
		return nil
	}}, p.closers...)

	if p.approver, err = extproc.NewApprovals(svc); err != nil {
		return p, err
	}
	aud, err := approverAudience(cfg)
	if err != nil {
		return p, err
	}
	p.auth = approverAuth{v: v, aud: aud, mcp: cfg.Auth.Audience}
	p.routes = svc.Routes(p.auth, log)
	for pattern, h := range svc.SlackRoutes() {
		p.routes[pattern] = h
	}
	return p, nil
}

// approvalMasker masks what approval requests keep with the configured detectors (every
// built-in one when masking is off), always with the redact strategy: approvers see
// [REDACTED:TYPE] where a secret was, and the store never holds it.
func approvalMasker(mc masking.Config) (*masking.Masker, error) {
	c := masking.DefaultConfig()
	if mc.Enabled {
		c.Detectors, c.Custom = mc.Detectors, mc.Custom
		for _, f := range mc.Fields {
			f.Strategy = masking.Redact
			c.Fields = append(c.Fields, f)
		}
	}
	m, err := masking.New(c)
	if err != nil {
		return nil, fmt.Errorf("approvals masker: %w", err)
	}
	return m, nil
}

func redisClient(ctx context.Context, c approvals.RedisConfig) (*redis.Client, error) {
	o := &redis.Options{Addr: c.Addr, Username: c.Username, DB: c.DB, DialTimeout: c.DialTimeout}
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("read redis password: %w", err)
		}
		o.Password = strings.TrimSpace(string(b))
	}
	if c.TLS {
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	rc := redis.NewClient(o)
	pctx, cancel := context.WithTimeout(ctx, c.DialTimeout)
	defer cancel()
	if err := rc.Ping(pctx).Err(); err != nil {
		_ = rc.Close()
		return nil, fmt.Errorf("connect to redis %s: %w", c.Addr, err)
	}
	return rc, nil
}

// registerSessionMetrics exposes the in-memory session store's size and refusals.
func registerSessionMetrics(reg prometheus.Registerer, mem *policy.Memory) error {
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mcpguard_policy_session_entries", Help: "Entries of session state held in memory (bindings, call counters, tool pins).",
		}, func() float64 { return float64(mem.Len()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "mcpguard_policy_session_refused_total", Help: "New session keys refused because the in-memory session store was full (policy.session_max_entries).",
		}, func() float64 { return float64(mem.Refused()) }),
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register session metrics: %w", err)
		}
	}
	return nil
}
