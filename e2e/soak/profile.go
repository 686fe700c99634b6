package soak

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// withProfiling turns on mcpguard's /debug/pprof/ when profiles were asked for. Without
// -profile the config stays as it was, so a binary from before admin.pprof still starts.
func (o Options) withProfiling(config map[string]any) {
	if o.Profile != "" {
		config["admin"] = map[string]any{"listen": "127.0.0.1:0", "pprof": true}
	}
}

// profile starts fetching mcpguard's CPU profile for the next d (whole seconds, at least
// one) and returns the wait for it; the profile lands in Options.Profile as NAME.pprof.
// Without Options.Profile it does nothing.
func (e *env) profile(ctx context.Context, name string, d time.Duration) func() error {
	if e.o.Profile == "" {
		return func() error { return nil }
	}
	secs := max(1, int(d/time.Second))
	path := filepath.Join(e.o.Profile, strings.ReplaceAll(name, "+", "-")+".pprof")
	done := make(chan error, 1)
	go func() { done <- fetchProfile(ctx, "http://"+e.guard.Admin, secs, path) }()
	return func() error { return <-done }
}

func fetchProfile(ctx context.Context, base string, secs int, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, secs), nil)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile: %s from %s", resp.Status, base)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("profile %s: %w", path, err)
	}
	return f.Close()
}
