package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRemoteFrom(t *testing.T) {
	tests := []struct {
		name, gateway, cmd string
		wantNil            bool
		wantErr            []string
		wantURL            string
	}{
		{name: "unset keeps the emulator", wantNil: true},
		{name: "unset ignores a token command", cmd: "mint", wantNil: true},
		{name: "base url", gateway: "http://127.0.0.1:8080", cmd: "mint --config x", wantURL: "http://127.0.0.1:8080/mcp"},
		{name: "trailing slash", gateway: "http://127.0.0.1:8080/", cmd: "mint", wantURL: "http://127.0.0.1:8080/mcp"},
		{name: "no token command", gateway: "http://127.0.0.1:8080", wantErr: []string{EnvTokenCmd + ": required"}},
		{name: "blank token command", gateway: "http://127.0.0.1:8080", cmd: "  ", wantErr: []string{EnvTokenCmd + ": required"}},
		{name: "not absolute", gateway: "127.0.0.1:8080", cmd: "mint", wantErr: []string{EnvGateway + ": "}},
		{name: "other scheme", gateway: "ftp://127.0.0.1:8080", cmd: "mint", wantErr: []string{EnvGateway + ": must be an absolute"}},
		{name: "with path", gateway: "http://127.0.0.1:8080/mcp", cmd: "mint", wantErr: []string{EnvGateway + ": must be the base URL"}},
		{name: "every problem at once", gateway: "http://h/x?y", wantErr: []string{EnvGateway + ": must be the base URL", EnvTokenCmd + ": required"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := remoteFrom(tc.gateway, tc.cmd)
			if len(tc.wantErr) > 0 {
				require.Error(t, err)
				for _, w := range tc.wantErr {
					require.Contains(t, err.Error(), w)
				}
				require.Nil(t, r)
				return
			}
			require.NoError(t, err)
			if tc.wantNil {
				require.Nil(t, r)
				return
			}
			require.Equal(t, tc.wantURL, r.URL("/mcp"))
			require.Equal(t, "127.0.0.1:8080", r.Addr())
		})
	}
}

// TestRemoteToken runs a real token command: the claims arrive as mcpguard token flags after
// the configured words, and output that is not a JWT is refused.
func TestRemoteToken(t *testing.T) {
	tests := []struct {
		name, out string
		opts      TokenOptions
		wantArgs  string
		wantErr   string
	}{
		{
			name: "claims as flags", out: "h.p.s",
			opts:     TokenOptions{Subject: "agent-1", Scopes: []string{"mcp:tools", "x"}, Groups: []string{"g"}},
			wantArgs: "--config /etc/c.yaml --sub agent-1 --scope mcp:tools,x --groups g --aud " + Audience,
		},
		{name: "audience override", out: "h.p.s", opts: TokenOptions{Audience: "http://other/mcp"}, wantArgs: "--config /etc/c.yaml --aud http://other/mcp"},
		{name: "not a jwt", out: "sorry", wantErr: "not a JWT"},
		{name: "command fails", out: "", wantErr: EnvTokenCmd},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			argsFile := filepath.Join(dir, "args")
			script := "#!/bin/sh\necho \"$@\" > " + argsFile + "\n"
			if tc.out == "" {
				script += "echo boom >&2\nexit 3\n"
			} else {
				script += "echo " + tc.out + "\n"
			}
			bin := filepath.Join(dir, "mint")
			require.NoError(t, os.WriteFile(bin, []byte(script), 0o700))
			r, err := remoteFrom("http://127.0.0.1:8080", bin+" --config /etc/c.yaml")
			require.NoError(t, err)

			tok, err := r.Token(t.Context(), tc.opts)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				require.Empty(t, tok)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.out, tok)
			args, err := os.ReadFile(argsFile)
			require.NoError(t, err)
			require.Equal(t, tc.wantArgs, strings.TrimSpace(string(args)))
		})
	}
}
