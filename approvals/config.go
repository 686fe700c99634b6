package approvals

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
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
	// Slack posts requests to a Slack channel with Approve and Deny buttons and takes
	// decisions from them; off while Slack.Channel is empty.
	Slack SlackConfig `yaml:"slack"`
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
	// MaxBackoff caps the wait between attempts; each wait is drawn between half of it and
	// all of it (jitter), so hooks that failed together do not retry together.
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// Timeout bounds each attempt.
	Timeout time.Duration `yaml:"timeout"`
}

// WebhookConfig is one webhook. Each has its own queue (Notify.QueueSize) and worker, so
// a slow or failing endpoint delays no other.
type WebhookConfig struct {
	// Name labels the hook's metrics and logs (never the URL, which may hold a secret);
	// empty means "webhook_<index>".
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
	// Format is "slack" (a Slack incoming webhook: text and blocks) or "json" (the generic,
	// signed payload).
	Format string `yaml:"format"`
	// SecretFile holds the HMAC-SHA256 key that signs every "json" delivery
	// (X-Mcpguard-Signature over X-Mcpguard-Timestamp and the body); required for "json".
	SecretFile string `yaml:"secret_file"`
}

// SlackConfig is the Slack app that posts requests and takes decisions from its buttons.
type SlackConfig struct {
	// Channel is the channel ID requests are posted to; empty turns Slack off.
	Channel string `yaml:"channel"`
	// BotTokenFile holds the bot token (xoxb-…) that posts and updates messages
	// (scope chat:write).
	BotTokenFile string `yaml:"bot_token_file"`
	// SigningSecretFile holds the app's signing secret, which verifies that a button click
	// comes from Slack.
	SigningSecretFile string `yaml:"signing_secret_file"`
	// APIURL is the Slack Web API base, with a trailing slash.
	APIURL string `yaml:"api_url"`
	// ResponseURLPrefix is what a click's response_url must start with before anything is
	// posted to it.
	ResponseURLPrefix string `yaml:"response_url_prefix"`
	// Users maps Slack users to approver identities; a click by anyone else is refused.
	Users []SlackUser `yaml:"users"`
}

// SlackUser maps one Slack user to the approver identity their clicks decide as.
type SlackUser struct {
	// TeamID and UserID are the Slack workspace (T…) and user (U…/W…) IDs.
	TeamID string `yaml:"team_id"`
	UserID string `yaml:"user_id"`
	// Subject and Issuer are the person's identity at the identity provider; with the
	// issuer set, a person cannot approve a call made with their own identity. An empty
	// issuer means "slack:<team_id>".
	Subject string `yaml:"subject"`
	Issuer  string `yaml:"issuer"`
	// Groups are the approver groups the person decides for.
	Groups []string `yaml:"groups"`
}

// Enabled reports whether Slack is configured.
func (c SlackConfig) Enabled() bool { return c.Channel != "" }

// hookName is the metrics label of webhook i.
func (w WebhookConfig) hookName(i int) string {
	if w.Name != "" {
		return w.Name
	}
	return fmt.Sprintf("webhook_%d", i)
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
		Notify: NotifyConfig{
			QueueSize: 1000, Attempts: 5, Backoff: 500 * time.Millisecond, MaxBackoff: 30 * time.Second,
			Timeout: 5 * time.Second,
		},
		SignIn: signin.DefaultConfig(),
		Slack:  SlackConfig{APIURL: "https://slack.com/api/", ResponseURLPrefix: "https://hooks.slack.com/"},
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
	if n.MaxBackoff < n.Backoff {
		errs = append(errs, errors.New("notify.max_backoff: must be at least notify.backoff"))
	}
	if n.Timeout <= 0 {
		errs = append(errs, errors.New("notify.timeout: must be positive"))
	}
	names := map[string]bool{hookSlack: true}
	for i, w := range n.Webhooks {
		if !httpURL(w.URL) {
			errs = append(errs, fmt.Errorf("notify.webhooks[%d].url: not an absolute http(s) URL", i))
		}
		switch w.Format {
		case "json":
			if w.SecretFile == "" {
				errs = append(errs, fmt.Errorf("notify.webhooks[%d].secret_file: required for format json (deliveries are signed)", i))
			}
		case "slack":
			if w.SecretFile != "" {
				errs = append(errs, fmt.Errorf("notify.webhooks[%d].secret_file: only format json is signed", i))
			}
		default:
			errs = append(errs, fmt.Errorf("notify.webhooks[%d].format: %q is not slack or json", i, w.Format))
		}
		name := w.hookName(i)
		switch {
		case !validHookName(name):
			errs = append(errs, fmt.Errorf("notify.webhooks[%d].name: %q must be 1-64 of a-z, 0-9, _ and -", i, name))
		case names[name]:
			errs = append(errs, fmt.Errorf("notify.webhooks[%d].name: %q is used twice (or is reserved)", i, name))
		}
		names[name] = true
	}
	errs = append(errs, c.Slack.validate()...)
	return errors.Join(errs...)
}

func (c SlackConfig) validate() []error {
	if !c.Enabled() {
		if c.BotTokenFile != "" || c.SigningSecretFile != "" || len(c.Users) > 0 {
			return []error{errors.New("slack.channel: required when slack is configured")}
		}
		return nil
	}
	var errs []error
	if !slackID(c.Channel) {
		errs = append(errs, fmt.Errorf("slack.channel: %q is not a Slack channel ID (C…, G…)", c.Channel))
	}
	if c.BotTokenFile == "" {
		errs = append(errs, errors.New("slack.bot_token_file: required"))
	}
	if c.SigningSecretFile == "" {
		errs = append(errs, errors.New("slack.signing_secret_file: required"))
	}
	if !httpURL(c.APIURL) || !strings.HasSuffix(c.APIURL, "/") {
		errs = append(errs, fmt.Errorf("slack.api_url: %q is not an absolute http(s) URL ending in /", c.APIURL))
	}
	if !httpURL(c.ResponseURLPrefix) || !strings.HasSuffix(c.ResponseURLPrefix, "/") {
		errs = append(errs, fmt.Errorf("slack.response_url_prefix: %q is not an absolute http(s) URL ending in /", c.ResponseURLPrefix))
	}
	if len(c.Users) == 0 {
		errs = append(errs, errors.New("slack.users: at least one Slack user must be mapped to an approver"))
	}
	seen := map[[2]string]bool{}
	for i, u := range c.Users {
		f := fmt.Sprintf("slack.users[%d]", i)
		if !slackID(u.TeamID) {
			errs = append(errs, fmt.Errorf("%s.team_id: %q is not a Slack team ID", f, u.TeamID))
		}
		if !slackID(u.UserID) {
			errs = append(errs, fmt.Errorf("%s.user_id: %q is not a Slack user ID", f, u.UserID))
		}
		if u.Subject == "" {
			errs = append(errs, fmt.Errorf("%s.subject: required", f))
		}
		if len(u.Groups) == 0 {
			errs = append(errs, fmt.Errorf("%s.groups: at least one approver group required", f))
		}
		for j, g := range u.Groups {
			if g == "" {
				errs = append(errs, fmt.Errorf("%s.groups[%d]: must not be empty", f, j))
			}
		}
		k := [2]string{u.TeamID, u.UserID}
		if seen[k] {
			errs = append(errs, fmt.Errorf("%s: %s/%s is mapped twice", f, u.TeamID, u.UserID))
		}
		seen[k] = true
	}
	return errs
}

// CheckFiles reads the secret files the config names (webhook secrets, the Slack bot token
// and signing secret) as the service will, and reports each that is missing or empty,
// prefixed with its field path.
func (c Config) CheckFiles() []error {
	var errs []error
	check := func(field, path string) {
		if _, err := readSecret(path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		}
	}
	for i, w := range c.Notify.Webhooks {
		if w.SecretFile != "" {
			check(fmt.Sprintf("notify.webhooks[%d].secret_file", i), w.SecretFile)
		}
	}
	if c.Slack.Enabled() {
		if c.Slack.BotTokenFile != "" {
			check("slack.bot_token_file", c.Slack.BotTokenFile)
		}
		if c.Slack.SigningSecretFile != "" {
			check("slack.signing_secret_file", c.Slack.SigningSecretFile)
		}
	}
	for _, e := range c.SignIn.CheckFiles() {
		errs = append(errs, fmt.Errorf("signin.%w", e))
	}
	return errs
}

// readSecret reads a secret from a file, without surrounding whitespace; empty is an error.
func readSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path) //nolint:gosec // G304: the operator's config names the file
	if err != nil {
		return nil, fmt.Errorf("read secret: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	return b, nil
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.IsAbs() && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// slackID reports a Slack ID: upper-case letters and digits, as Slack issues them.
func slackID(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func validHookName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return false
		}
	}
	return true
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
