package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/stretchr/testify/require"
	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/mcpguard/mcpguard/identity"
	"github.com/mcpguard/mcpguard/internal/testutil"
)

func TestRunCommandLine(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		err    error
		stdout string
		stderr string
	}{
		{name: "no args prints usage", args: nil, err: ErrUsage, stderr: "mcpguard serve [--config FILE]"},
		{name: "help", args: []string{"--help"}, stdout: "mcpguard token [flags]"},
		{name: "unknown command", args: []string{"bogus"}, err: ErrUsage, stderr: `unknown command "bogus"`},
		{name: "version", args: []string{"version"}, stdout: "mcpguard dev"},
		{name: "serve help", args: []string{"serve", "--help"}, stderr: "-config"},
		{name: "serve bad flag", args: []string{"serve", "--nope"}, err: ErrUsage, stderr: "flag provided but not defined"},
		{name: "serve stray argument", args: []string{"serve", "extra"}, err: ErrUsage, stderr: "unexpected arguments: extra"},
		{name: "config without subcommand", args: []string{"config"}, err: ErrUsage, stderr: "config validate FILE"},
		{name: "config default", args: []string{"config", "default"}, stdout: "dev_issuer:"},
		{name: "token help", args: []string{"token", "--help"}, stderr: "-scope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := Run(t.Context(), tc.args, &out, &errb)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
			} else {
				require.NoError(t, err)
			}
			require.Contains(t, out.String(), tc.stdout)
			require.Contains(t, errb.String(), tc.stderr)
		})
	}
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte(`
auth:
  audience: https://mcp.example.com/mcp
  leeway: 5 seconds
  issuers:
    - issuer: https://example.okta.com/oauth2/default
      audiense: https://mcp.example.com/mcp
grpc:
  listen: nowhere
`), 0o600))
	var out, errb bytes.Buffer
	err := Run(t.Context(), []string{"config", "validate", bad}, &out, &errb)
	require.Error(t, err)
	for _, want := range []string{
		"auth.issuers[0].audiense: unknown field (line 7)",
		`auth.leeway: invalid duration "5 seconds"`,
	} {
		require.Contains(t, errb.String(), want)
	}

	// Decoding and validation problems come in the same run.
	invalid := filepath.Join(dir, "invalid.yaml")
	require.NoError(t, os.WriteFile(invalid, []byte("grpc:\n  listen: nowhere\nlog:\n  level: loud\n"), 0o600))
	errb.Reset()
	require.Error(t, Run(t.Context(), []string{"config", "validate", invalid}, &out, &errb))
	for _, want := range []string{
		`grpc.listen: "nowhere" is not host:port or unix:///path`,
		`log.level: "loud" is not one of debug, info, warn, error`,
		"auth.resource_metadata.resource: required",
		"auth.issuers: at least one issuer is required",
	} {
		require.Contains(t, errb.String(), want)
	}

	good := filepath.Join(dir, "good.yaml")
	var def bytes.Buffer
	require.NoError(t, Run(t.Context(), []string{"config", "default"}, &def, io.Discard))
	require.NoError(t, os.WriteFile(good, def.Bytes(), 0o600))
	out.Reset()
	require.NoError(t, Run(t.Context(), []string{"config", "validate", good}, &out, io.Discard))
	require.Contains(t, out.String(), "good.yaml: ok")

	require.Error(t, Run(t.Context(), []string{"config", "validate", filepath.Join(dir, "missing.yaml")}, io.Discard, io.Discard))
}

// instance is one `mcpguard serve` running inside the test process.
type instance struct {
	cfgPath string
	logs    *testutil.Buffer
	grpc    string
	admin   string
	cancel  context.CancelFunc
	done    chan error
}

func start(t *testing.T, cfgYAML string) *instance {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "mcpguard.yaml")
	cfgYAML = strings.ReplaceAll(cfgYAML, "DATA_DIR", filepath.Join(dir, "data"))
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfgYAML), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{cfgPath: cfgPath, logs: &testutil.Buffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- Run(ctx, []string{"serve", "--config", cfgPath}, io.Discard, in.logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-in.done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
		if t.Failed() {
			t.Logf("service log:\n%s", in.logs.String())
		}
	})
	require.Eventually(t, func() bool {
		for _, l := range in.logs.JSONLines() {
			if l["msg"] == "mcpguard started" {
				in.grpc, in.admin = l["grpc"].(string), l["admin"].(string)
				return true
			}
		}
		select {
		case err := <-in.done:
			t.Fatalf("serve exited early: %v\n%s", err, in.logs.String())
		default:
		}
		return false
	}, 20*time.Second, 10*time.Millisecond)
	return in
}

func (in *instance) token(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	require.NoError(t, Run(t.Context(), append([]string{"token", "--config", in.cfgPath}, args...), &out, &errb), errb.String())
	return strings.TrimSpace(out.String())
}

const devConfig = `
data_dir: DATA_DIR
grpc:
  listen: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
shutdown:
  drain: 300ms
  timeout: 5s
auth:
  audience: http://localhost:8080/mcp
  required_scopes: [mcp:tools]
  resource_metadata_url: http://localhost:8080/.well-known/oauth-protected-resource/mcp
  resource_metadata:
    resource: http://localhost:8080/mcp
    scopes_supported: [mcp:tools]
  dev_issuer:
    enabled: true
    issuer: http://127.0.0.1:9002/dev
    audience: http://localhost:8080/mcp
`

func checkRequest(token string) *authv3.CheckRequest {
	headers := map[string]string{":path": "/mcp", ":method": "POST", "x-mcpguard-subject": "forged"}
	if token != "" {
		headers["authorization"] = "Bearer " + token
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Id: "req-1", Method: "POST", Path: "/mcp", Host: "localhost:8080", Headers: headers},
	}}}
}

func httpGet(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestServeDevelopmentDefaults(t *testing.T) {
	in := start(t, devConfig)
	base := "http://" + in.admin
	require.Eventually(t, func() bool {
		code, _ := httpGet(t, http.DefaultClient, base+"/readyz")
		return code == http.StatusOK
	}, 20*time.Second, 20*time.Millisecond)
	code, body := httpGet(t, http.DefaultClient, base+"/healthz")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, in.logs.String(), "development token issuer enabled")

	// Protected resource metadata, root and path-inserted forms.
	for _, p := range []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"} {
		code, body = httpGet(t, http.DefaultClient, base+p)
		require.Equal(t, http.StatusOK, code, p)
		var prm map[string]any
		require.NoError(t, json.Unmarshal([]byte(body), &prm))
		require.Equal(t, "http://localhost:8080/mcp", prm["resource"])
		require.Equal(t, []any{"http://127.0.0.1:9002/dev"}, prm["authorization_servers"])
	}
	code, _ = httpGet(t, http.DefaultClient, base+"/.well-known/oauth-protected-resource/other")
	require.Equal(t, http.StatusNotFound, code)
	code, body = httpGet(t, http.DefaultClient, base+"/dev/.well-known/openid-configuration")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"issuer":"http://127.0.0.1:9002/dev"`)

	conn, err := grpc.NewClient(in.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	hr, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{Service: "envoy.service.auth.v3.Authorization"})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, hr.GetStatus())

	auth := authv3.NewAuthorizationClient(conn)
	tok := in.token(t, "--sub", "agent-1", "--scope", "mcp:tools", "--groups", "dba,ops", "--ttl", "10m")
	resp, err := auth.Check(t.Context(), checkRequest(tok))
	require.NoError(t, err)
	require.Equal(t, int32(rpccode.Code_OK), resp.GetStatus().GetCode())
	id, err := identity.FromStruct(resp.GetDynamicMetadata())
	require.NoError(t, err)
	require.Equal(t, "agent-1", id.Subject)
	require.Equal(t, []string{"dba", "ops"}, id.Groups)
	require.Contains(t, resp.GetOkResponse().GetHeadersToRemove(), "x-mcpguard-subject")
	require.Contains(t, resp.GetOkResponse().GetHeadersToRemove(), "authorization")

	resp, err = auth.Check(t.Context(), checkRequest(""))
	require.NoError(t, err)
	require.Equal(t, int32(rpccode.Code_UNAUTHENTICATED), resp.GetStatus().GetCode())
	require.EqualValues(t, http.StatusUnauthorized, resp.GetDeniedResponse().GetStatus().GetCode())
	requireHeader(t, resp.GetDeniedResponse().GetHeaders(), "www-authenticate",
		`resource_metadata="http://localhost:8080/.well-known/oauth-protected-resource/mcp"`)

	noScope := in.token(t, "--sub", "agent-2", "--scope", "other")
	resp, err = auth.Check(t.Context(), checkRequest(noScope))
	require.NoError(t, err)
	require.EqualValues(t, http.StatusForbidden, resp.GetDeniedResponse().GetStatus().GetCode())
	require.NotContains(t, in.logs.String(), tok, "tokens must never be logged")

	code, body = httpGet(t, http.DefaultClient, base+"/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `mcpguard_authz_checks_total{result="allowed"} 1`)
	require.Contains(t, body, "mcpguard_build_info")

	// Ordered shutdown: readiness fails first while gRPC still answers, then everything stops.
	in.cancel()
	require.Eventually(t, func() bool {
		code, _ := httpGet(t, http.DefaultClient, base+"/readyz")
		return code == http.StatusServiceUnavailable
	}, 5*time.Second, 5*time.Millisecond)
	resp, err = auth.Check(t.Context(), checkRequest(tok))
	require.NoError(t, err, "gRPC keeps serving while draining")
	require.Equal(t, int32(rpccode.Code_OK), resp.GetStatus().GetCode())
	select {
	case err := <-in.done:
		require.NoError(t, err)
		in.done <- err
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
	logs := in.logs.String()
	require.Less(t, strings.Index(logs, "shutting down"), strings.Index(logs, "mcpguard stopped"))
}

func requireHeader(t *testing.T, hs []*corev3.HeaderValueOption, name, contains string) {
	t.Helper()
	for _, h := range hs {
		if strings.EqualFold(h.GetHeader().GetKey(), name) {
			require.Contains(t, h.GetHeader().GetValue(), contains)
			return
		}
	}
	t.Fatalf("header %s missing in %v", name, hs)
}

func TestServeMutualTLSAndUnixSocket(t *testing.T) {
	dir := t.TempDir()
	pki := testutil.NewPKI(t, dir)
	sock := filepath.Join(dir, "grpc.sock")
	cfg := strings.Replace(devConfig, "grpc:\n  listen: 127.0.0.1:0", fmt.Sprintf(`grpc:
  listen: unix://%s
  tls:
    cert_file: %s
    key_file: %s
    client_ca_file: %s`, sock, pki.ServerCert, pki.ServerKey, pki.CAFile), 1)
	cfg = strings.Replace(cfg, "admin:\n  listen: 127.0.0.1:0", fmt.Sprintf(`admin:
  listen: 127.0.0.1:0
  tls:
    cert_file: %s
    key_file: %s`, pki.ServerCert, pki.ServerKey), 1)
	in := start(t, cfg)

	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(pki.CAFile)
	require.NoError(t, err)
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	httpsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	require.Eventually(t, func() bool {
		code, _ := httpGet(t, httpsClient, "https://"+in.admin+"/readyz")
		return code == http.StatusOK
	}, 20*time.Second, 20*time.Millisecond)

	clientCert, err := tls.LoadX509KeyPair(pki.ClientCert, pki.ClientKey)
	require.NoError(t, err)
	call := func(certs []tls.Certificate) error {
		creds := credentials.NewTLS(&tls.Config{RootCAs: pool, Certificates: certs, ServerName: "localhost", MinVersion: tls.VersionTLS12})
		conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(creds))
		require.NoError(t, err)
		defer conn.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	require.NoError(t, call([]tls.Certificate{clientCert}), "client with a certificate from the configured CA")
	err = call(nil)
	require.Error(t, err, "a client without a certificate is refused")
	require.NotErrorIs(t, err, context.Canceled)
}
