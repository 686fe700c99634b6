package approvals

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
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
	t.Run("sign in with an agent token refused", func(t *testing.T) {
		resp := post(t, "/approvals/signin", url.Values{"token": {"mcp-token"}}, "", "")
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		require.Empty(t, resp.Cookies())
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Contains(t, string(b), "agent tokens cannot decide approvals")
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
		require.Contains(t, body, `<mark class="masked">[REDACTED:GENERIC_SECRET]</mark>`)
	})
	t.Run("approver sees the complete request with its facts", func(t *testing.T) {
		full, err := s.Begin(t.Context(), fullCall(t))
		require.NoError(t, err)
		body := get(t, "dba")
		i := strings.Index(body, `id="req-`+full.Request.ID+`"`)
		require.Positive(t, i)
		art := body[i:]
		art = art[:strings.Index(art, "</article>")]
		require.Contains(t, art, "1.4.2␠×600&amp;&amp; curl x|sh", "padding made visible, the command shown")
		require.Contains(t, art, "<code>params.Arguments.version</code>")
		require.Contains(t, art, "<code>params.arguments.version</code>")
		require.Contains(t, art, "production deploys need a release manager")
		require.Contains(t, art, "agents, release")
		require.Contains(t, art, "https://idp.test")
		require.Contains(t, art, "tools.internal:8080/mcp")
		require.Contains(t, art, "sess-42")
		require.Contains(t, art, "sha256:0123abcd")
		require.Contains(t, art, "ci-bot")
		require.Contains(t, art, `action="approvals/`+full.Request.ID+`/decide"`)
	})
	t.Run("long values fold but stay complete", func(t *testing.T) {
		c := sqlCall(`{"query":"select '` + strings.Repeat("x", 300) + `END'"}`)
		long, err := s.Begin(t.Context(), c)
		require.NoError(t, err)
		body := get(t, "dba")
		art := body[strings.Index(body, `id="req-`+long.Request.ID+`"`):]
		art = art[:strings.Index(art, "</article>")]
		require.Contains(t, art, "<details><summary>")
		require.Contains(t, art, "312 characters: show all")
		require.Contains(t, art, strings.Repeat("x", 300)+"END")
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

// TestPageBehindPrefix serves the page under /gw, as a proxy with a path prefix does: every
// form and redirect stays under the prefix, and the cookie is scoped to the public path.
func TestPageBehindPrefix(t *testing.T) {
	s, _, _, _ := newTestService(t, func(c *Config) { c.PublicURL = "https://gw.example/gw/approvals" })
	mux := http.NewServeMux()
	for p, h := range s.Routes(tokens{"dba": dba, "agent": agent}, nil) {
		mux.Handle(p, h)
	}
	outer := http.NewServeMux()
	outer.Handle("/gw/", http.StripPrefix("/gw", mux))
	srv := httptest.NewServer(outer)
	t.Cleanup(srv.Close)
	res, err := s.Begin(t.Context(), sqlCall(`{"query":"drop table t"}`))
	require.NoError(t, err)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	client := srv.Client()
	client.Jar = jar
	page := srv.URL + "/gw/approvals"
	// resolve follows a form's action from the page as a browser does.
	resolve := func(t *testing.T, body, id string) string {
		t.Helper()
		m := regexp.MustCompile(`<form method="post" action="([^"]+)"`).FindAllStringSubmatch(body, -1)
		require.NotEmpty(t, m)
		base, err := url.Parse(page)
		require.NoError(t, err)
		for _, f := range m {
			if strings.Contains(f[1], id) {
				ref, err := url.Parse(f[1])
				require.NoError(t, err)
				return base.ResolveReference(ref).String()
			}
		}
		t.Fatalf("no form with %q in %s", id, body)
		return ""
	}
	get := func(t *testing.T) string {
		t.Helper()
		resp, err := client.Get(page)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	signin := resolve(t, get(t), "signin")
	require.Equal(t, srv.URL+"/gw/approvals/signin", signin)
	resp, err := client.PostForm(signin, url.Values{"token": {"dba"}}) // follows the redirect back to the page
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, page, resp.Request.URL.String(), "redirected to the page under the prefix")
	require.Contains(t, string(b), "req-"+res.Request.ID, "signed in: the cookie reaches the page under the prefix")
	u, err := url.Parse(srv.URL + "/gw/approvals/x")
	require.NoError(t, err)
	require.Len(t, jar.Cookies(u), 1, "the cookie covers the page and its forms")
	u.Path = "/approvals"
	require.Empty(t, jar.Cookies(u), "and nothing outside the public path")

	decide := resolve(t, string(b), res.Request.ID)
	require.Equal(t, srv.URL+"/gw/approvals/"+res.Request.ID+"/decide", decide)
	resp, err = client.PostForm(decide, url.Values{"decision": {"approve"}})
	require.NoError(t, err)
	b, err = io.ReadAll(resp.Body)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, "/gw/approvals", resp.Request.URL.Path)
	require.Contains(t, string(b), "Approved "+res.Request.ID)
	r, err := s.Get(t.Context(), res.Request.ID)
	require.NoError(t, err)
	require.Equal(t, Approved, r.State)
	require.Equal(t, "https://gw.example/gw/approvals#req-"+r.ID, s.Link(r.ID))
}
