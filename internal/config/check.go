package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mcpguard/mcpguard/internal/devissuer"
	"github.com/mcpguard/mcpguard/masking"
	"github.com/mcpguard/mcpguard/policy"
	"github.com/mcpguard/mcpguard/recordings"
)

// Check loads the config at path like [Load] and also opens every file it names the way the
// service will: the policy (read and compiled), masking's hash key (and the masking rules
// compiled with it), the recordings signing key, the development issuer's key, the Redis
// password file, approvals' webhook secrets, Slack token and signing secret, the approvals
// sign-in's client secret and cookie key, the TLS files (checked by Validate), and the data
// directory. Nothing is created. All problems come in one error, each with its path in the
// config and its line.
func Check(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	c, lines, err := parse(data)
	if c == nil {
		return err
	}
	// The files are checked even when the config has problems, from what did decode.
	return errors.Join(err, withLines(errors.Join(c.checkFiles()...), lines))
}

// checkFiles opens what the service opens at startup. Relative paths are relative to the
// working directory, as they are for the service.
func (c *Config) checkFiles() []error {
	var errs []error
	if f := c.Policy.File; f != "" {
		if data, err := os.ReadFile(f); err != nil { //nolint:gosec // G703: the operator's config names the file
			errs = append(errs, fmt.Errorf("policy.file: %w", err))
		} else if _, err := policy.Compile(data); err != nil {
			for _, e := range leaves(err) {
				// "line 5: rules[0]…" from the policy becomes "policy.yaml:5: rules[0]…".
				msg := e.Error()
				if rest, ok := strings.CutPrefix(msg, "line "); ok {
					if n, tail, found := strings.Cut(rest, ": "); found && strings.Trim(n, "0123456789") == "" {
						msg = n + ": " + tail
						errs = append(errs, fmt.Errorf("policy.file: %s:%s", f, msg))
						continue
					}
				}
				errs = append(errs, fmt.Errorf("policy.file: %s: %s", f, msg))
			}
		}
	}
	if m := c.Masking; m.HashKeyFile != "" {
		key, err := os.ReadFile(m.HashKeyFile)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("masking.hash_key_file: %w", err))
		case strings.TrimSpace(string(key)) == "":
			errs = append(errs, fmt.Errorf("masking.hash_key_file: %s is empty", m.HashKeyFile))
		case m.Enabled:
			m.HashKey, m.HashKeyFile = strings.TrimSpace(string(key)), ""
			if _, err := masking.New(m); err != nil {
				errs = append(errs, fmt.Errorf("masking.hash_key_file: with the key from %s: %w", c.Masking.HashKeyFile, err))
			}
		}
	}
	if c.Recordings.Enabled {
		keyFile, field := c.Recordings.SigningKeyFile, "recordings.signing_key_file"
		if keyFile == "" {
			keyFile, field = filepath.Join(c.DataDir, "recordings-signing-key.pem"), "data_dir"
		}
		if _, err := os.Stat(keyFile); err == nil || c.Recordings.SigningKeyFile != "" { //nolint:gosec // G703: named by the config
			if _, _, err := recordings.LoadKey(keyFile, false); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", field, err))
			}
		}
	}
	if c.Auth.DevIssuer.Enabled {
		field := "auth.dev_issuer.key_file"
		if c.Auth.DevIssuer.KeyFile == "" {
			field = "data_dir"
		}
		if err := devissuer.CheckKey(c.Auth.DevIssuer, c.DevKeyFile()); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		}
	}
	if r := c.Approvals.Store.Redis; c.Approvals.Store.Kind == "redis" && r.PasswordFile != "" {
		b, err := os.ReadFile(r.PasswordFile)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("approvals.store.redis.password_file: %w", err))
		case strings.TrimSpace(string(b)) == "":
			errs = append(errs, fmt.Errorf("approvals.store.redis.password_file: %s is empty", r.PasswordFile))
		}
	}
	errs = append(errs, prefixed("approvals", errors.Join(c.Approvals.CheckFiles()...))...)
	for _, d := range []struct{ field, dir string }{
		{"data_dir", c.DataDir},
		{"recordings.spool.dir", c.Recordings.Spool.Dir},
		{"recordings.sink.dir.path", c.Recordings.Sink.Dir.Path},
	} {
		if d.dir == "" {
			continue
		}
		if fi, err := os.Stat(d.dir); err == nil && !fi.IsDir() {
			errs = append(errs, fmt.Errorf("%s: %s is not a directory", d.field, d.dir))
		} else if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("%s: %w", d.field, err))
		}
	}
	return errs
}

// leaves flattens a joined error.
func leaves(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []error{err}
}
