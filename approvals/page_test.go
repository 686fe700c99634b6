package approvals

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPage(t *testing.T) {
	s, srv := newAPI(t)
	res, err := s.Begin(t.Context(), sqlCall(`{"password":"hunter2","query":"drop table t"}`))
	require.NoError(t, err)
	id := res.Request.ID
	noRedirect := *srv.Client()
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	post := func(t *testing.T, path string, form url.Values, cookie, origin string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), "POST", srv.URL+path, strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: cookieName, Value: cookie})
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := noRedirect.Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { _ = resp.Body.Close() })
		return resp
	}
	get := func(t *testing.T, cookie string) string {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/approvals", nil)
		require.NoError(t, err)
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: cookieName, Value: cookie})
		}
		resp, err := noRedirect.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}

	t.Run("anonymous sees only the sign-in form", func(t *testing.T) {
		body := get(t, "")
		require.Contains(t, body, `id="signin"`)
		require.NotContains(t, body, id)
	})
	t.Run("sign in with a bad token refused", func(t *testing.T) {
		resp := post(t, "/approvals/signin", url.Values{"token": {"forged"}}, "", "")
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		require.Empty(t, resp.Cookies())
	})
	t.Run("sign in sets a strict http-only cookie", func(t *testing.T) {
		resp := post(t, "/approvals/signin", url.Values{"token": {"Bearer dba"}}, "", "")
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		c := resp.Cookies()[0]
		require.Equal(t, "dba", c.Value)
		require.True(t, c.HttpOnly)
		require.Equal(t, http.SameSiteStrictMode, c.SameSite)
	})
	t.Run("approver sees the masked request", func(t *testing.T) {
		body := get(t, "dba")
		require.Contains(t, body, "req-"+id)
		require.Contains(t, body, "drop table t")
		require.NotContains(t, body, "hunter2")
	})
	t.Run("requester does not get buttons for their own call", func(t *testing.T) {
		require.NotContains(t, get(t, "agent"), "req-"+id)
	})
	t.Run("cross-site post refused", func(t *testing.T) {
		resp := post(t, "/approvals/"+id+"/decide", url.Values{"decision": {"approve"}}, "dba", "https://evil.example")
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		r, err := s.Get(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, Pending, r.State)
	})
	t.Run("decision without a cookie is not recorded", func(t *testing.T) {
		resp := post(t, "/approvals/"+id+"/decide", url.Values{"decision": {"approve"}}, "", "")
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		r, err := s.Get(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, Pending, r.State)
	})
	t.Run("deny from the page", func(t *testing.T) {
		resp := post(t, "/approvals/"+id+"/decide", url.Values{"decision": {"deny"}, "reason": {"nope"}}, "dba", srv.URL)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		require.Contains(t, resp.Header.Get("Location"), "Denied")
		r, err := s.Get(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, Denied, r.State)
		require.Equal(t, "alice", r.Decision.By.Subject)
	})
}
