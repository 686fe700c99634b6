package app

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/approvals"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/authz/authztest"
	"github.com/mcpguard/mcpguard/internal/config"
)

func TestApproverAudience(t *testing.T) {
	cfg := config.Default()
	cfg.Auth.Audience = "https://mcp.example.com/mcp/"
	aud, err := approverAudience(&cfg)
	require.NoError(t, err)
	require.Equal(t, "https://mcp.example.com/mcp/approvals", aud, "default: the MCP audience plus /approvals")
	cfg.Approvals.API.Audience = "https://approvals.example.com"
	aud, err = approverAudience(&cfg)
	require.NoError(t, err)
	require.Equal(t, "https://approvals.example.com", aud)
	cfg.Approvals.API.Audience = cfg.Auth.Audience
	_, err = approverAudience(&cfg)
	require.ErrorContains(t, err, "approvals.api.audience: must differ from auth.audience")
}

// TestApproverAuth checks approver tokens with a real verifier and issuer: only a token for
// the approvals audience, and not also for the MCP audience, authenticates an approver.
func TestApproverAuth(t *testing.T) {
	const mcpAud, apprAud = "https://mcp.example.com/mcp", "https://mcp.example.com/mcp/approvals"
	iss := authztest.NewIssuer(t)
	acfg := authz.DefaultConfig()
	acfg.Audience = mcpAud
	acfg.ResourceMetadataURL = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
	v, err := authz.NewVerifier(t.Context(), acfg, slog.New(slog.DiscardHandler), nil, authz.WithStaticIssuer(iss.URL, iss.JWKS()))
	require.NoError(t, err)
	auth := approverAuth{v: v, aud: apprAud, mcp: mcpAud}
	mint := func(aud any) string {
		c := iss.Claims(mcpAud, "")
		c["aud"] = aud
		c["groups"] = []string{"release"}
		return iss.Mint(c)
	}
	tests := []struct {
		name  string
		token string
		agent bool // refused as an agent token (403)
		ok    bool
	}{
		{name: "approver token", token: mint(apprAud), ok: true},
		{name: "agent token with the approver group", token: mint(mcpAud), agent: true},
		{name: "token for both audiences", token: mint([]string{mcpAud, apprAud}), agent: true},
		{name: "other audience", token: mint("https://elsewhere.example")},
		{name: "garbage", token: "x.y.z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := auth.Authenticate(t.Context(), tc.token)
			if tc.ok {
				require.NoError(t, err)
				require.Equal(t, []string{"release"}, id.Groups)
				return
			}
			require.Error(t, err)
			require.Equal(t, tc.agent, errors.Is(err, approvals.ErrAgentToken))
		})
	}
}
