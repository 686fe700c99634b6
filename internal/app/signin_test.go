package app

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/authz/authztest"
	"github.com/mcpguard/mcpguard/internal/config"
	"github.com/mcpguard/mcpguard/signin/signintest"
)

// TestApprovalsSignInWiring: with approvals.signin configured, the admin routes send the
// page's visitors to the configured provider; without it the page takes pasted tokens.
func TestApprovalsSignInWiring(t *testing.T) {
	op := signintest.Start(t, nil, []signintest.Client{{ID: "mcpguard", Secret: "x"}})
	iss := authztest.NewIssuer(t)
	acfg := authz.DefaultConfig()
	acfg.Audience = "https://mcp.example.com/mcp"
	acfg.ResourceMetadataURL = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
	v, err := authz.NewVerifier(t.Context(), acfg, slog.New(slog.DiscardHandler), nil, authz.WithStaticIssuer(iss.URL, iss.JWKS()))
	require.NoError(t, err)

	routes := func(t *testing.T, edit func(*config.Config)) http.Handler {
		t.Helper()
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		cfg.Auth.Audience = acfg.Audience
		edit(&cfg)
		p, err := openApprovals(t.Context(), &cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), v)
		require.NoError(t, err)
		t.Cleanup(func() {
			for _, c := range p.closers {
				_ = c(t.Context())
			}
		})
		mux := http.NewServeMux()
		for pat, h := range p.routes {
			mux.Handle(pat, h)
		}
		return mux
	}
	get := func(h http.Handler, path string) *http.Response {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Result()
	}

	mux := routes(t, func(c *config.Config) {
		c.Approvals.SignIn.Issuer, c.Approvals.SignIn.ClientID = op.Issuer, "mcpguard"
	})
	resp := get(mux, "/approvals")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "approvals/signin", resp.Header.Get("Location"))
	resp = get(mux, "/approvals/signin")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	to, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(to.String(), op.Issuer+"/"), to.String())
	require.Equal(t, "mcpguard", to.Query().Get("client_id"))
	require.Equal(t, "http://127.0.0.1:9002/approvals/signin/callback", to.Query().Get("redirect_uri"))

	plain := routes(t, func(*config.Config) {})
	resp = get(plain, "/approvals")
	require.Equal(t, http.StatusOK, resp.StatusCode, "no sign-in configured: today's token page")
}
