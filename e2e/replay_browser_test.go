package e2e_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/e2e/harness"
	"github.com/mcpguard/mcpguard/e2e/mcpserver"
	"github.com/mcpguard/mcpguard/signin/signintest"
)

// TestRecordingsReplayInBrowser records a session through the emulator (an allowed call
// with hostile text, a masked one, a denied one), then a security engineer opens the
// replay on mcpguard's admin port in headless Chromium: signs in with a real OpenID
// provider, searches, opens the session and reads its timeline and verification verdict;
// after a segment is tampered with, the same page says verification failed.
func TestRecordingsReplayInBrowser(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		browser, err = exec.LookPath("chromium-browser")
	}
	require.NoError(t, err, "chromium is required (apt-get install chromium)")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	admin := l.Addr().String()
	require.NoError(t, l.Close())
	base := "http://" + admin
	page := base + "/approvals"
	op := signintest.Start(t,
		[]signintest.User{{ID: "u-sec", Username: "sec", Password: "sec-pw", Email: "sec@example.com", Groups: []string{"security-team"}}},
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
		"admin": map[string]any{"listen": admin},
		"approvals": map[string]any{
			"public_url": page,
			"signin": map[string]any{
				"issuer": op.Issuer, "client_id": "mcpguard",
				"client_secret_file": write("client-secret", "s3cret\n"),
				"cookie_key_file":    write("cookie-key", strings.Repeat("k", 48)),
			},
		},
		"recordings": map[string]any{
			"replica_id": "e2e-web",
			"segment":    map[string]any{"max_age": "200ms"},
			"upload":     map[string]any{"min_backoff": "20ms", "max_backoff": "200ms"},
			"web":        map[string]any{"enabled": true, "readers": []string{"security-team"}},
		},
	})
	up, err := mcpserver.Start(mcpserver.Options{Mode: mcpserver.Stateful})
	require.NoError(t, err)
	t.Cleanup(func() { _ = up.Close(context.WithoutCancel(t.Context())) })
	gw := gatewayFor(t, g, up.Addr())
	token, err := g.Token(t.Context(), harness.TokenOptions{Subject: "agent-web", Scopes: []string{"mcp:tools"}})
	require.NoError(t, err)
	s, err := harness.Connect(t.Context(), harness.ClientOptions{Endpoint: up.URLVia(gw.Addr()), Token: token, Version: "2025-06-18", Client: clientOpts(nil)})
	require.NoError(t, err)
	session := s.ID()
	require.NotEmpty(t, session)
	hostile := "<script>document.title='owned'</script>"
	require.Equal(t, hostile, text(t, call(t, s, "echo", map[string]any{"text": hostile})))
	long := strings.Repeat("abcdefghij", 60) + "THE-END"
	require.Equal(t, long, text(t, call(t, s, "echo", map[string]any{"text": long})))
	require.Equal(t, "pay with [REDACTED:CREDIT_CARD]", text(t, call(t, s, "echo", map[string]any{"text": "pay with 4111 1111 1111 1111"})))
	_, err = s.CallTool(t.Context(), &mcp.CallToolParams{Name: "execute_sql", Arguments: map[string]any{"query": "DROP TABLE users"}})
	var rpcErr *jsonrpc.Error
	require.ErrorAs(t, err, &rpcErr, "the default policy refuses destructive SQL")
	require.NoError(t, s.Close())

	cli := func(args ...string) (string, error) {
		cmd := exec.CommandContext(t.Context(), suiteBin(), append([]string{"recordings"}, append(args, "--config", g.ConfigPath)...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	require.Eventually(t, func() bool {
		out, err := cli("verify", session)
		return err == nil && strings.HasPrefix(out, "OK   "+session)
	}, 30*time.Second, 100*time.Millisecond, "the session is uploaded and verifies")

	// Without a session the replay sends people to sign in; it has no state-changing routes.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, m := range []string{"GET", "POST"} {
		req, err := http.NewRequestWithContext(t.Context(), m, base+"/recordings/"+session, nil)
		require.NoError(t, err)
		resp, err := noRedirect.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		want := map[string]int{"GET": http.StatusSeeOther, "POST": http.StatusMethodNotAllowed}[m]
		require.Equal(t, want, resp.StatusCode, m)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	ctx, cancel := context.WithTimeout(bctx, wait)
	defer cancel()

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/recordings"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SetValue(chromedp.ID("username"), "sec"),
		chromedp.SetValue(chromedp.ID("password"), "sec-pw"),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("search")),
	))
	at, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	require.Equal(t, base+"/recordings", at, "back on the replay after signing in")

	// Search with the CLI's filters.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("since"), "1h"),
		chromedp.SetValue(chromedp.ID("identity"), "agent-web"),
		chromedp.SetValue(chromedp.ID("decision"), "deny"),
		chromedp.Click(chromedp.ID("search")),
		chromedp.WaitVisible(chromedp.ID("results")),
	))
	results, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("results")))
	require.NoError(t, err)
	require.Contains(t, results, session)
	require.Contains(t, results, "execute_sql")

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("a.session")),
		chromedp.WaitVisible(chromedp.ID("verdict")),
	))
	verdict, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("verdict")))
	require.NoError(t, err)
	require.Contains(t, verdict, "✔ Verified")
	timeline, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.ID("timeline")))
	require.NoError(t, err)
	for _, want := range []string{
		"initialize", "tools/call · tool echo", hostile, "[REDACTED:CREDIT_CARD]", "masking masked",
		"DROP TABLE users", "sql-destructive", "denial", "policy decision", long,
	} {
		require.Contains(t, timeline, want)
	}
	require.NotContains(t, timeline, "4111", "what was masked is not in the recording")
	title, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.title + "|" + document.querySelectorAll("#timeline script").length`))
	require.NoError(t, err)
	require.Equal(t, "mcpguard recording|0", title, "recorded markup is shown as text, never run")

	// The long message is folded and opens complete.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#timeline details summary"))))
	opened, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#timeline details[open]")))
	require.NoError(t, err)
	require.Contains(t, opened, "THE-END")

	// Tampering with a stored segment shows on the same page.
	var seg string
	require.NoError(t, filepath.WalkDir(filepath.Join(dir, "data", "recordings"), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(p, session) && strings.HasSuffix(p, ".jsonl.gz") && seg == "" {
			seg = p
		}
		return err
	}))
	require.NotEmpty(t, seg, "a segment of the session in the directory sink")
	require.NoError(t, os.WriteFile(seg, []byte("tampered"), 0o600))
	require.NoError(t, chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("verdict"))))
	verdict, err = chromedp.Run(ctx, chromedp.Text(chromedp.ID("verdict")))
	require.NoError(t, err)
	require.Contains(t, verdict, "Verification FAILED")
	require.Contains(t, verdict, "altered or reordered")
	readErr, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("read-error")))
	require.NoError(t, err)
	require.Contains(t, readErr, "Events could not be read")
}
