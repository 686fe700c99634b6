package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
)

// Environment variables that point the scenarios at an already-running gateway (for example
// the docker compose stack) instead of the emulator, which stays the default.
const (
	// EnvGateway is the gateway's base URL, e.g. http://127.0.0.1:8080.
	EnvGateway = "MCPGUARD_E2E_GATEWAY"
	// EnvTokenCmd is the command that prints one development token on stdout; the claims are
	// appended as `--sub`, `--scope`, `--groups`, `--aud` and `--ttl` flags, as `mcpguard token`
	// takes them. Words are split on spaces (no shell quoting), e.g.
	// "docker compose -f e2e/docker-compose.yaml exec -T mcpguard mcpguard token --config /etc/mcpguard/config.yaml".
	EnvTokenCmd = "MCPGUARD_E2E_TOKEN_CMD"
)

// Remote is a gateway the harness did not start: real Envoy in front of mcpguard.
type Remote struct {
	base     *url.URL
	tokenCmd []string
}

// RemoteFromEnv reads [EnvGateway] and [EnvTokenCmd]. It returns nil and no error when
// [EnvGateway] is unset; a set but unusable configuration is an error, never a silent
// fallback to the emulator.
func RemoteFromEnv() (*Remote, error) {
	return remoteFrom(os.Getenv(EnvGateway), os.Getenv(EnvTokenCmd))
}

func remoteFrom(gateway, tokenCmd string) (*Remote, error) {
	if gateway == "" {
		return nil, nil
	}
	u, err := url.Parse(gateway)
	var errs []error
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("%s: %w", EnvGateway, err))
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		errs = append(errs, fmt.Errorf("%s: must be an absolute http or https URL", EnvGateway))
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		errs = append(errs, fmt.Errorf("%s: must be the base URL, without path or query", EnvGateway))
	}
	words := strings.Fields(tokenCmd)
	if len(words) == 0 {
		errs = append(errs, fmt.Errorf("%s: required when %s is set", EnvTokenCmd, EnvGateway))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	u.Path = ""
	return &Remote{base: u, tokenCmd: words}, nil
}

// Addr is the gateway's host:port.
func (r *Remote) Addr() string { return r.base.Host }

// URL returns the gateway's URL for path, e.g. URL("/mcp").
func (r *Remote) URL(path string) string { return r.base.String() + path }

// Token mints a development token with the configured command.
func (r *Remote) Token(ctx context.Context, o TokenOptions) (string, error) {
	args := append(append([]string{}, r.tokenCmd[1:]...), tokenArgs(o)...)
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, r.tokenCmd[0], args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w: %s", EnvTokenCmd, err, strings.TrimSpace(stderr.String()))
	}
	return jwtFrom(out)
}
