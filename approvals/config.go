package approvals

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/mcpguard/mcpguard/signin"
)

// Config is the approvals configuration.
type Config struct {
	// Store is where requests live: the embedded file (default) or Redis for replicas.
	Store StoreConfig `yaml:"store"`
	// Hold is how long a call waits for a decision before it is deferred; keep it below
	// the ~60 s after which MCP clients give up on a call.
	Hold time.Duration `yaml:"hold"`
	// Expiry is how long a request stays pending before it expires.
	Expiry time.Duration `yaml:"expiry"`
	// RetryAfter is the retry hint a deferred call gets.
	RetryAfter time.Duration `yaml:"retry_after"`
	// GrantFor is the default grant scope: 0 lets the same call (same requester, tool and
	// canonical arguments) through once; a duration lets the requester call the tool with
	// any arguments for that long after approval.
	GrantFor time.Duration `yaml:"grant_for"`
	// RuleGrants overrides GrantFor per policy rule name.
	RuleGrants map[string]time.Duration `yaml:"rule_grants"`
	// MaxPendingPerRequester bounds the pending requests one requester (issuer and subject)
	// may have; a call that would open one more is refused (JSON-RPC -31044).
	MaxPendingPerRequester int `yaml:"max_pending_per_requester"`
	// MaxPending bounds the pending requests of the whole service (all replicas sharing the
	// store); beyond it new requests are refused (-31044).
	MaxPending int `yaml:"max_pending"`
	// Approvers are the groups that may decide when the policy rule names none.
	Approvers []string `yaml:"approvers"`
	// PublicURL is the approvals page as approvers reach it; links in errors and
	// notifications point below it.
	PublicURL string `yaml:"public_url"`
	// Poll re-reads a held request this often in case a change notification was lost.
	Poll time.Duration `yaml:"poll"`
	// Sweep is how often pending requests past their expiry are marked expired (and the
	// file store pruned), so expiries are counted even when nobody looks at them.
	Sweep time.Duration `yaml:"sweep"`
	// API configures the approver HTTP API.
	API APIConfig `yaml:"api"`
	// Notify configures webhook notifications.
	Notify NotifyConfig `yaml:"notify"`
	// SignIn lets people sign in to the page with OpenID Connect (off while its issuer is
	// empty: the page then takes pasted approver tokens).
	SignIn signin.Config `yaml:"signin"`
}

// StoreConfig selects and configures the store.
type StoreConfig struct {
	// Kind is "file" or "redis".
	Kind  string      `yaml:"kind"`
	File  FileConfig  `yaml:"file"`
	Redis RedisConfig `yaml:"redis"`
}

// FileConfig is the embedded store.
type FileConfig struct {
	// Path of the bbolt file; empty means approvals.db in the service's data directory.
	Path string `yaml:"path"`
	// Retention is how long requests are kept after creation; older ones are pruned.
	Retention time.Duration `yaml:"retention"`
}

// RedisConfig is the shared store for replicas.
type RedisConfig struct {
	Addr     string `yaml:"addr"`
	Username string `yaml:"username"`
	// PasswordFile holds the password, so the config file carries no secret.
	PasswordFile string        `yaml:"password_file"`
	DB           int           `yaml:"db"`
	TLS          bool          `yaml:"tls"`
	Prefix       string        `yaml:"prefix"`
	Retention    time.Duration `yaml:"retention"`
	DialTimeout  time.Duration `yaml:"dial_timeout"`
}

// APIConfig configures who may call the approver API.
type APIConfig struct {
	// Audience required in approvers' tokens; empty means the service's auth.audience.
	Audience string `yaml:"audience"`
}

// NotifyConfig configures webhook delivery.
type NotifyConfig struct {
	Webhooks []WebhookConfig `yaml:"webhooks"`
	// QueueSize bounds pending notifications; overflow is dropped and counted.
	QueueSize int `yaml:"queue_size"`
	// Attempts per notification, with exponential backoff from Backoff.
	Attempts int           `yaml:"attempts"`
	Backoff  time.Duration `yaml:"backoff"`
	Timeout  time.Duration `yaml:"timeout"`
}

// WebhookConfig is one webhook.
type WebhookConfig struct {
	URL string `yaml:"url"`
	// Format is "slack" (Slack-compatible text and blocks) or "json" (the generic payload).
	Format string `yaml:"format"`
}

// DefaultConfig returns the defaults; user YAML is decoded on top of it.
func DefaultConfig() Config {
	return Config{
		Store: StoreConfig{
			Kind:  "file",
			File:  FileConfig{Retention: 7 * 24 * time.Hour},
			Redis: RedisConfig{Prefix: "mcpguard:approvals:", Retention: 7 * 24 * time.Hour, DialTimeout: 5 * time.Second},
		},
		Hold:       25 * time.Second,
		Expiry:     time.Hour,
		RetryAfter: 30 * time.Second,
		Approvers:  []string{"mcp-approvers"},

		MaxPendingPerRequester: 20,
		MaxPending:             1000,
		PublicURL:              "http://127.0.0.1:9002/approvals",
		Poll:                   2 * time.Second,
		Sweep:                  time.Minute,
		Notify:                 NotifyConfig{QueueSize: 1000, Attempts: 5, Backoff: 500 * time.Millisecond, Timeout: 5 * time.Second},
		SignIn:                 signin.DefaultConfig(),
	}
}

// Validate reports every problem, each prefixed with its field path.
func (c Config) Validate() error {
	var errs []error
	switch c.Store.Kind {
	case "file":
	case "redis":
		r := c.Store.Redis
		if r.Addr == "" {
			errs = append(errs, errors.New("store.redis.addr: required when store.kind is redis"))
		}
		if r.Prefix == "" {
			errs = append(errs, errors.New("store.redis.prefix: required"))
		}
		if r.DB < 0 {
			errs = append(errs, errors.New("store.redis.db: must not be negative"))
		}
		if r.DialTimeout <= 0 {
			errs = append(errs, errors.New("store.redis.dial_timeout: must be positive"))
		}
	default:
		errs = append(errs, fmt.Errorf("store.kind: %q is not file or redis", c.Store.Kind))
	}
	if c.Store.Redis.Retention < c.Expiry {
		errs = append(errs, errors.New("store.redis.retention: must be at least expiry"))
	}
	if c.Store.File.Retention < c.Expiry {
		errs = append(errs, errors.New("store.file.retention: must be at least expiry"))
	}
	if c.Hold <= 0 {
		errs = append(errs, errors.New("hold: must be positive"))
	}
	if c.Expiry < c.Hold {
		errs = append(errs, errors.New("expiry: must be at least hold"))
	}
	if c.RetryAfter <= 0 {
		errs = append(errs, errors.New("retry_after: must be positive"))
	}
	if c.GrantFor < 0 {
		errs = append(errs, errors.New("grant_for: must not be negative"))
	}
	for name, d := range c.RuleGrants {
		if d < 0 {
			errs = append(errs, fmt.Errorf("rule_grants.%s: must not be negative", name))
		}
	}
	if c.MaxPendingPerRequester <= 0 {
		errs = append(errs, errors.New("max_pending_per_requester: must be positive"))
	}
	if c.MaxPending < c.MaxPendingPerRequester {
		errs = append(errs, errors.New("max_pending: must be at least max_pending_per_requester"))
	}
	for i, g := range c.Approvers {
		if g == "" {
			errs = append(errs, fmt.Errorf("approvers[%d]: must not be empty", i))
		}
	}
	if u, err := url.Parse(c.PublicURL); err != nil || !u.IsAbs() || (u.Scheme != "http" && u.Scheme != "https") {
		errs = append(errs, fmt.Errorf("public_url: %q is not an absolute http(s) URL", c.PublicURL))
	} else if c.SignIn.Enabled() && u.Scheme != "https" && !signin.Loopback(u.Hostname()) {
		// Session cookies are Secure only over https.
		errs = append(errs, fmt.Errorf("public_url: %q must be https when signin is configured (http only on a loopback address)", c.PublicURL))
	}
	errs = append(errs, signinErrs(c.SignIn.Validate())...)
	if c.Poll <= 0 {
		errs = append(errs, errors.New("poll: must be positive"))
	}
	if c.Sweep <= 0 {
		errs = append(errs, errors.New("sweep: must be positive"))
	}
	n := c.Notify
	if n.QueueSize <= 0 {
		errs = append(errs, errors.New("notify.queue_size: must be positive"))
	}
	if n.Attempts <= 0 {
		errs = append(errs, errors.New("notify.attempts: must be positive"))
	}
	if n.Backoff <= 0 {
		errs = append(errs, errors.New("notify.backoff: must be positive"))
	}
	if n.Timeout <= 0 {
		errs = append(errs, errors.New("notify.timeout: must be positive"))
	}
	for i, w := range n.Webhooks {
		if u, err := url.Parse(w.URL); err != nil || !u.IsAbs() || (u.Scheme != "http" && u.Scheme != "https") {
			errs = append(errs, fmt.Errorf("notify.webhooks[%d].url: not an absolute http(s) URL", i))
		}
		if w.Format != "slack" && w.Format != "json" {
			errs = append(errs, fmt.Errorf("notify.webhooks[%d].format: %q is not slack or json", i, w.Format))
		}
	}
	return errors.Join(errs...)
}

// grantFor is the grant scope for a rule.
func (c Config) grantFor(rule string) time.Duration {
	if d, ok := c.RuleGrants[rule]; ok {
		return d
	}
	return c.GrantFor
}

// signinErrs prefixes each problem of the sign-in config with its path.
func signinErrs(err error) []error {
	if err == nil {
		return nil
	}
	var out []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, fmt.Errorf("signin.%w", e))
		}
		return out
	}
	return []error{fmt.Errorf("signin.%w", err)}
}
