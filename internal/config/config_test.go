package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestEmbeddedDefault(t *testing.T) {
	c, err := Load("")
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9001", c.GRPC.Listen)
	require.Equal(t, "127.0.0.1:9002", c.Admin.Listen)
	require.Equal(t, "./data", c.DataDir)
	require.True(t, c.Auth.DevIssuer.Enabled, "the embedded default runs with the development issuer")
	require.False(t, c.GRPC.TLS.Enabled())
	require.Equal(t, filepath.Join("data", "dev-issuer", "key.pem"), c.DevKeyFile())
}

func TestDevIssuerOnlyInEmbeddedDefault(t *testing.T) {
	require.False(t, Default().Auth.DevIssuer.Enabled, "a config file must opt in to the development issuer")
}

func TestParseReportsEveryProblem(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "unknown keys and bad values",
			yaml: `
auth:
  issuers:
    - issuer: https://example.okta.com/oauth2/default
      audiense: https://mcp.example.com/mcp
  leeway: soon
grpc:
  keepalive:
    min_time: 10 seconds
shutdwn: {}
`,
			want: []string{
				"auth.issuers[0].audiense: unknown field (line 5)",
				`auth.leeway: invalid duration "soon"`,
				`grpc.keepalive.min_time: invalid duration "10 seconds"`,
				"shutdwn: unknown field (line 10)",
			},
		},
		{
			name: "missing required fields",
			yaml: "data_dir: \"\"\ngrpc:\n  listen: \"\"\nadmin:\n  listen: \"unix://\"\nshutdown:\n  timeout: 0s\n",
			want: []string{
				"data_dir: required",
				"grpc.listen: required",
				"admin.listen: unix socket path missing",
				"shutdown.timeout: must be positive",
				"auth.issuers: at least one issuer is required",
				"auth.resource_metadata.resource: required",
			},
		},
		{
			name: "nested package validation is prefixed",
			yaml: `
auth:
  audience: https://mcp.example.com/mcp
  issuers:
    - issuer: ""
  resource_metadata:
    resource: "relative/path"
    authorization_servers: ["::"]
grpc:
  tls:
    cert_file: /nonexistent/cert.pem
`,
			want: []string{
				"auth.issuers[0].issuer: required",
				`auth.resource_metadata.resource: "relative/path" is not an absolute URI`,
				`auth.resource_metadata.authorization_servers[0]: "::" is not an absolute URL`,
				"grpc.tls.",
			},
		},
		{
			name: "recordings web replay",
			yaml: "recordings:\n  web:\n    enabled: true\n    readerz: [security-team]\n",
			want: []string{"recordings.web.readerz: unknown field (line 4)", "recordings.web.readers: required when web.enabled"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestParseProductionShape(t *testing.T) {
	c, err := Parse([]byte(`
grpc:
  listen: unix:///run/mcpguard/grpc.sock
  max_recv_msg_bytes: 32MiB
admin:
  listen: 0.0.0.0:9002
auth:
  audience: https://mcp.example.com/mcp
  required_scopes: [mcp:tools]
  leeway: 45s
  issuers:
    - issuer: https://example.okta.com/oauth2/aus1
  resource_metadata:
    resource: https://mcp.example.com/mcp
`))
	require.NoError(t, err)
	require.Equal(t, 32<<20, c.GRPC.MaxRecvMsgBytes)
	require.Equal(t, 45*time.Second, c.Auth.Leeway)
	require.Equal(t, "https://example.okta.com/oauth2/aus1", c.Auth.Issuers[0].Issuer)
	require.False(t, c.Auth.DevIssuer.Enabled)
	// Defaults the file did not mention survive.
	require.Equal(t, Default().GRPC.Keepalive, c.GRPC.Keepalive)
	require.Equal(t, Default().Auth.Algorithms, c.Auth.Algorithms)
}

func TestLoadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(p, DefaultYAML(), 0o600))
	_, err := Load(p)
	require.NoError(t, err)
	_, err = Load(p + ".missing")
	require.ErrorContains(t, err, "read config")
}

func TestPrefixed(t *testing.T) {
	require.Nil(t, prefixed("x", nil))
	errs := prefixed("auth", errors.Join(errors.New("issuers[0].issuer: required"), errors.New("[1]: bad")))
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	require.Equal(t, "auth.issuers[0].issuer: required\nauth[1]: bad", strings.Join(msgs, "\n"))
}
