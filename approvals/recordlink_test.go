package approvals

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// The page links each pending request to its session's recording, the link escaped.
func TestPageRecordingLink(t *testing.T) {
	s, _, _, _ := newTestService(t, nil)
	c := sqlCall(`{"query":"drop table t"}`)
	c.SessionID, c.RequestID = "sess-1", `rid"><script>x</script>`
	res, err := s.Begin(t.Context(), c)
	require.NoError(t, err)
	mux := http.NewServeMux()
	for p, h := range s.Routes(tokens{"dba": dba}, nil) {
		mux.Handle(p, h)
	}
	body := func() string {
		req := httptest.NewRequestWithContext(t.Context(), "GET", "/approvals", nil)
		req.AddCookie(&http.Cookie{Name: cookieName, Value: "dba"})
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		b, err := io.ReadAll(w.Body)
		require.NoError(t, err)
		return string(b)
	}
	require.NotContains(t, body(), `class="recording"`, "no link without a replay")

	WithRecordingLink(func(r Request) string {
		return "recordings/" + r.SessionID + "#req-" + r.RequestID
	})(s)
	b := body()
	require.Contains(t, b, `<a class="recording" href="recordings/sess-1#req-rid%22%3e%3cscript%3ex%3c/script%3e">`, res.Request.ID)
	require.NotContains(t, b, "<script>x")
}
