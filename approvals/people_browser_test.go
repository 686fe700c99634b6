package approvals

import (
	"context"
	"flag"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

var signInRounds = flag.Int("signin.rounds", 3, "sign-in round trips TestPageSignInBrowser measures")

// TestPageSignInBrowser drives the page in headless Chromium against a real OpenID
// provider: the page sends the browser to the provider, the person logs in there, comes
// back signed in, approves a pending request, signs out (ending the provider's session
// too) and must sign in again. Then it measures the sign-in round trip (-signin.rounds).
func TestPageSignInBrowser(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		browser, err = exec.LookPath("chromium-browser")
	}
	require.NoError(t, err, "chromium is required (make deps installs it)")
	e := newPeopleEnv(t)
	res, err := e.s.Begin(t.Context(), sqlCall(`{"query":"drop table t"}`))
	require.NoError(t, err)
	id := res.Request.ID

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	ctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()
	location := func(t *testing.T) string {
		t.Helper()
		u, err := chromedp.Run(ctx, chromedp.Location())
		require.NoError(t, err)
		return u
	}
	text := func(t *testing.T, sel chromedp.CSS) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		require.NoError(t, err)
		return s
	}
	login := chromedp.Steps(
		chromedp.SetValue(chromedp.ID("username"), personAlice.Username),
		chromedp.SetValue(chromedp.ID("password"), personAlice.Password),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("who")),
	)

	// The page sends the browser to the provider's login form.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(e.page), chromedp.WaitVisible(chromedp.ID("username"))))
	require.True(t, strings.HasPrefix(location(t), e.op.Issuer+"/login"), location(t))
	// Logged in there, it is back on the page, signed in.
	require.NoError(t, chromedp.Do(ctx, login))
	require.Equal(t, e.page, location(t))
	require.Equal(t, "alice", text(t, "#who"))
	row := text(t, chromedp.CSS("#req-"+id))
	require.Contains(t, row, "drop table t")
	require.Contains(t, row, "agent-1")

	// Approve; the page shows it decided.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#req-`+id+` input[name="reason"]`), "checked in the browser"),
		chromedp.Click(chromedp.CSS(`#req-`+id+` button[value="approve"]`)),
		chromedp.WaitVisible(chromedp.ID("message")),
	))
	require.Contains(t, text(t, "#message"), "Approved "+id)
	r, err := e.s.Get(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, Approved, r.State)
	require.Equal(t, personAlice.ID, r.Decision.By.Subject)
	require.Equal(t, "checked in the browser", r.Decision.Reason)

	// Sign out: through the provider's end_session back to the signed-out page.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID("signin-again")),
	))
	require.Equal(t, e.page+"/signedout", location(t))
	require.EqualValues(t, 1, e.op.EndSessions())
	// The page requires signing in again.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(e.page), chromedp.WaitVisible(chromedp.ID("username"))))
	require.True(t, strings.HasPrefix(location(t), e.op.Issuer+"/login"), location(t))

	// The round trip: page → provider → (login form filled) → callback → signed-in page.
	var total, back []time.Duration
	for range *signInRounds {
		_, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{})
		require.NoError(t, err)
		t0 := time.Now()
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(e.page), chromedp.WaitVisible(chromedp.ID("username")),
			chromedp.SetValue(chromedp.ID("username"), personAlice.Username),
			chromedp.SetValue(chromedp.ID("password"), personAlice.Password)))
		t1 := time.Now()
		require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.ID("login")), chromedp.WaitVisible(chromedp.ID("who"))))
		t2 := time.Now()
		total, back = append(total, t2.Sub(t0)), append(back, t2.Sub(t1))
	}
	t.Logf("sign-in round trip over %d runs: page→signed-in p50 %v (max %v); login submit→callback→signed-in p50 %v (max %v)",
		len(total), p50(total), slices.Max(total), p50(back), slices.Max(back))
}

func p50(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
