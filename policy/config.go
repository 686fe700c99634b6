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
}

// DefaultConfig returns the defaults: the embedded policy, checked every 5s, sessions kept 24h.
func DefaultConfig() Config {
	return Config{ReloadInterval: 5 * time.Second, SessionTTL: 24 * time.Hour}
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
	return errors.Join(errs...)
}
