package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestApprovalsSignInConfig(t *testing.T) {
	base := `
auth:
  issuers: [{issuer: "https://example.okta.com/oauth2/default", audience: "https://mcp.example.com/mcp"}]
  audience: https://mcp.example.com/mcp
  resource_metadata: {resource: "https://mcp.example.com/mcp"}
approvals:
  public_url: https://ops.example.com/approvals
  signin:
    issuer: https://example.okta.com
`
	_, err := Parse([]byte(base + "    session_ttl: 72h\n"))
	require.ErrorContains(t, err, "approvals.signin.client_id: required (line 8)")
	require.ErrorContains(t, err, "approvals.signin.session_ttl: must be between 1m and 24h (line 10)")

	dir := t.TempDir()
	key := filepath.Join(dir, "cookie.key")
	require.NoError(t, os.WriteFile(key, []byte("short\n"), 0o600))
	full := base + "    client_id: 0oa1\n    client_secret_file: " + filepath.Join(dir, "missing") + "\n    cookie_key_file: " + key + "\n" +
		"data_dir: " + dir + "\n"
	c, err := Parse([]byte(full))
	require.NoError(t, err)
	require.Equal(t, "0oa1", c.Approvals.SignIn.ClientID)
	require.Equal(t, []string{"openid", "profile", "email"}, c.Approvals.SignIn.Scopes, "defaults apply")
	path := filepath.Join(dir, "mcpguard.yaml")
	require.NoError(t, os.WriteFile(path, []byte(full), 0o600))
	err = Check(path)
	require.ErrorContains(t, err, "approvals.signin.client_secret_file: read client secret")
	require.ErrorContains(t, err, "approvals.signin.cookie_key_file: "+key+" holds 5 bytes, need at least 32")
}
