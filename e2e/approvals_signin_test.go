package e2e_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/e2e/harness"
	"github.com/mcpguard/mcpguard/e2e/mcpserver"
	"github.com/mcpguard/mcpguard/signin/signintest"
)

// TestApprovalsPageSignIn runs mcpguard with approvals.signin against a real OpenID provider
// on 127.0.0.1: a call is held, a person opens the page in headless Chromium, is sent to the
// provider, logs in, comes back signed in, approves, and the held call completes; the
// decision is recorded as that person.
func TestApprovalsPageSignIn(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		browser, err = exec.LookPath("chromium-browser")
	}
	require.NoError(t, err, "chromium is required (apt-get install chromium)")

	// The admin port is chosen here: the provider must know the redirect URI before
	// mcpguard starts.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	admin := l.Addr().String()
	require.NoError(t, l.Close())
	page := "http://" + admin + "/approvals"
	op := signintest.Start(t,
		[]signintest.User{{ID: "u-rm", Username: "rm", Password: "rm-pw", Email: "rm@example.com", Groups: []string{"release"}}},
		[]signintest.Client{{
			ID: "mcpguard", Secret: "s3cret", RedirectURIs: []string{page + "/signin/callback"},
			PostLogoutRedirectURIs: []string{page + "/signedout"},
		}})

	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	g := extraGuard(t, dir, map[string]any{
		"admin":  map[string]any{"listen": admin},
		"policy": map[string]any{"file": write("policy.yaml", approvalPolicy)},
		"approvals": map[string]any{
			"hold":       "25s",
			"public_url": page,
			"signin": map[string]any{
				"issuer": op.Issuer, "client_id": "mcpguard",
				"client_secret_file": write("client-secret", "s3cret\n"),
				"cookie_key_file":    write("cookie-key", strings.Repeat("k", 48)),
			},
		},
	})
	up, err := mcpserver.Start(mcpserver.Options{Mode: mcpserver.StatefulJSON})
	require.NoError(t, err)
	t.Cleanup(func() { _ = up.Close(context.WithoutCancel(t.Context())) })
	gw := gatewayFor(t, g, up.Addr())
	mint := func(aud, sub string, groups ...string) string {
		tok, err := g.Token(t.Context(), harness.TokenOptions{Subject: sub, Scopes: []string{"mcp:tools"}, Groups: groups, Audience: aud})
		require.NoError(t, err)
		return tok
	}
	s := connect(t, up.URLVia(gw.Addr()), mint(harness.Audience, "agent-7"), "2025-06-18", nil)
	done := echoAsync(t, s, "approved by a person")
	id := pending(t, g, mint(approverAudience, "rm-1", "release"))

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	ctx, cancel := context.WithTimeout(bctx, wait)
	defer cancel()

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.ID("username")),
	))
	at, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(at, op.Issuer+"/login"), "sent to the provider: %s", at)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("username"), "rm"),
		chromedp.SetValue(chromedp.ID("password"), "rm-pw"),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("who")),
	))
	who, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("who")))
	require.NoError(t, err)
	require.Equal(t, "rm", who)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#req-`+id+` input[name="reason"]`), "signed in with OpenID Connect"),
		chromedp.Click(chromedp.CSS(`#req-`+id+` button[value="approve"]`)),
		chromedp.WaitVisible(chromedp.ID("message")),
	))
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("message")))
	require.NoError(t, err)
	require.Contains(t, msg, "Approved "+id)

	r := <-done
	require.NoError(t, r.err)
	require.Equal(t, "approved by a person", text(t, r.res))
	code, body := api(t, g, "GET", "/v1/approvals/"+id, mint(approverAudience, "rm-1", "release"), "")
	require.Equal(t, 200, code)
	by := body["decision"].(map[string]any)["by"].(map[string]any)
	require.Equal(t, "u-rm", by["subject"])
	require.Equal(t, op.Issuer, by["issuer"])
}
