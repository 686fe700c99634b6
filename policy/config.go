package policy

import (
	"errors"
	"time"
)

// Config is the service configuration of policy (the `policy:` section).
type Config struct {
	// File is the policy file; empty uses the embedded default policy.
	File string `yaml:"file"`
	// ReloadInterval is how often the file is checked for changes (content hash).
	ReloadInterval time.Duration `yaml:"reload_interval"`
	// SessionTTL is how long idle session state (call counts, tool pins) is kept in memory.
	SessionTTL time.Duration `yaml:"session_ttl"`
	// SessionMaxEntries bounds the in-memory session state of one replica (about 250 bytes an
	// entry; a session holds a few). A new session beyond it is refused, failing closed, until
	// idle ones expire. The Redis store is bounded by Redis instead.
	SessionMaxEntries int `yaml:"session_max_entries"`
}

// DefaultConfig returns the defaults: the embedded policy, checked every 5s, sessions kept
// 24h, at most DefaultMemoryMaxEntries entries of session state in memory.
func DefaultConfig() Config {
	return Config{ReloadInterval: 5 * time.Second, SessionTTL: 24 * time.Hour, SessionMaxEntries: DefaultMemoryMaxEntries}
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.ReloadInterval < 100*time.Millisecond {
		errs = append(errs, errors.New("reload_interval: must be at least 100ms"))
	}
	if c.SessionTTL <= 0 {
		errs = append(errs, errors.New("session_ttl: must be positive"))
	}
	if c.SessionMaxEntries < 100 {
		errs = append(errs, errors.New("session_max_entries: must be at least 100"))
	}
	return errors.Join(errs...)
}
