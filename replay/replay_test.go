package replay_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/approvals"
	"github.com/mcpguard/mcpguard/identity"
	"github.com/mcpguard/mcpguard/recordings"
	"github.com/mcpguard/mcpguard/replay"
	"github.com/mcpguard/mcpguard/signin"
)

// fakeAuth stands in for the approver token verifier: tokens are looked up in a map.
type fakeAuth map[string]identity.Identity

func (f fakeAuth) Authenticate(_ context.Context, tok string) (identity.Identity, error) {
	if tok == "agent" {
		return identity.Identity{}, approvals.ErrAgentToken
	}
	id, ok := f[tok]
	if !ok {
		return identity.Identity{}, errors.New("unknown token")
	}
	return id, nil
}

var auth = fakeAuth{
	"reader":   {Subject: "sec-1", Issuer: "https://idp", Groups: []string{"staff", "security-team"}},
	"outsider": {Subject: "dev-1", Issuer: "https://idp", Groups: []string{"developers"}},
}

const hostile = "<script>alert(1)</script>\u202Egnp.exe"

type env struct {
	dir string
	pub ed25519.PublicKey
	mux *http.ServeMux
}

// record writes two sessions with a real recorder to a directory sink: sess-alpha (agent-1:
// an allowed echo with hostile and long arguments, a denied SQL call, a masked response, a
// sealed original) and sess-beta (agent-2: one allowed lookup).
func record(t *testing.T) env {
	t.Helper()
	cfg := recordings.DefaultConfig()
	cfg.ReplicaID = "r1"
	cfg.Spool.Dir = t.TempDir()
	cfg.Sink.Dir.Path = t.TempDir()
	sink, err := recordings.NewDir(cfg.Sink.Dir.Path)
	require.NoError(t, err)
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	r, err := recordings.Open(cfg, sink, key, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	agent1 := &recordings.Identity{Subject: "agent-1", Issuer: "https://idp"}
	agent2 := &recordings.Identity{Subject: "agent-2", ClientID: "client-2", Issuer: "https://idp"}
	long := strings.Repeat("x", 700) + "END-OF-LONG"
	rec := func(ev recordings.Event) { require.NoError(t, r.Record(ev)) }
	rec(recordings.Event{
		Kind: recordings.KindRequest, Session: "sess-alpha", RequestID: "rid-1", Identity: agent1, Method: "tools/call", Tool: "echo",
		Message: []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + strings.ReplaceAll(hostile, "\u202E", `\u202e`) + `","long":"` + long + `"}}}`),
		Sealed:  "AGE-SEALED-ORIGINAL-SECRET",
	})
	rec(recordings.Event{
		Kind: recordings.KindNote, Session: "sess-alpha", RequestID: "rid-1",
		Note: &recordings.Note{Stage: "policy", Kind: "decision", Attrs: map[string]any{"rule": "allow-echo", "action": "allow"}},
	})
	rec(recordings.Event{
		Kind: recordings.KindResponse, Session: "sess-alpha", RequestID: "rid-1", Method: "tools/call", Status: 200,
		Message: []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"[REDACTED:EMAIL]"}]}}`),
	})
	rec(recordings.Event{
		Kind: recordings.KindNote, Session: "sess-alpha", RequestID: "rid-1",
		Note: &recordings.Note{Stage: "masking", Kind: "masked", Attrs: map[string]any{"counts": map[string]int{"EMAIL": 1}}},
	})
	rec(recordings.Event{
		Kind: recordings.KindRequest, Session: "sess-alpha", RequestID: "rid-2", Identity: agent1, Method: "tools/call", Tool: "execute_sql",
		Message: []byte(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"execute_sql","arguments":{"query":"DROP TABLE users"}}}`),
	})
	rec(recordings.Event{
		Kind: recordings.KindNote, Session: "sess-alpha", RequestID: "rid-2",
		Note: &recordings.Note{Stage: "policy", Kind: "decision", Attrs: map[string]any{"rule": "sql-destructive", "action": "deny"}},
	})
	rec(recordings.Event{
		Kind: recordings.KindDenial, Session: "sess-alpha", RequestID: "rid-2", Status: 200,
		Message: []byte(`{"jsonrpc":"2.0","id":2,"error":{"code":-32001,"message":"blocked by policy"}}`),
	})
	rec(recordings.Event{Kind: recordings.KindSessionEnd, Session: "sess-alpha"})
	rec(recordings.Event{
		Kind: recordings.KindRequest, Session: "sess-beta", RequestID: "rid-3", Identity: agent2, Method: "tools/call", Tool: "lookup",
		Message: []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup","arguments":{}}}`),
	})
	rec(recordings.Event{
		Kind: recordings.KindNote, Session: "sess-beta", RequestID: "rid-3",
		Note: &recordings.Note{Stage: "policy", Kind: "decision", Attrs: map[string]any{"rule": "allow-lookup", "action": "allow"}},
	})
	held := time.Now()
	rec(recordings.Event{
		Kind: recordings.KindRequest, Session: "sess-beta", RequestID: "rid-4", Identity: agent2, Method: "tools/call", Tool: "deploy", Time: held,
		Message: []byte(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"deploy","arguments":{}}}`),
	})
	rec(recordings.Event{
		Kind: recordings.KindNote, Session: "sess-beta", RequestID: "rid-4", Time: held.Add(20 * time.Second),
		Note: &recordings.Note{Stage: "approvals", Kind: "approval", Attrs: map[string]any{"rule": "deploys", "state": "approved", "by": "rm-1"}},
	})
	rec(recordings.Event{Kind: recordings.KindForward, Session: "sess-beta", RequestID: "rid-4", Time: held.Add(20*time.Second + time.Millisecond)})
	rec(recordings.Event{Kind: recordings.KindSessionEnd, Session: "sess-beta"})
	require.NoError(t, r.Sync(t.Context()))
	require.NoError(t, r.Close(t.Context()))
	e := env{dir: cfg.Sink.Dir.Path, pub: pub}
	e.mux = newMux(t, sink, replay.Options{Readers: []string{"security-team"}, Auth: auth, PublicKey: pub})
	return e
}

func newMux(t *testing.T, sink recordings.Sink, o replay.Options) *http.ServeMux {
	t.Helper()
	rp, err := replay.New(sink, "", o)
	require.NoError(t, err)
	mux := http.NewServeMux()
	for p, h := range rp.Routes() {
		mux.Handle(p, h)
	}
	return mux
}

func get(t *testing.T, mux http.Handler, method, target, token string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, target, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	return w
}

func TestAccess(t *testing.T) {
	e := record(t)
	for _, tc := range []struct {
		name, method, target, token string
		code                        int
		body                        string
	}{
		{"no token", "GET", "/recordings?tool=echo", "", http.StatusUnauthorized, "Sign in required"},
		{"invalid token", "GET", "/recordings/sess-alpha", "forged", http.StatusUnauthorized, "not accepted"},
		{"agent token", "GET", "/recordings/sess-alpha", "agent", http.StatusForbidden, "Agent tokens"},
		{"wrong group", "GET", "/recordings/sess-alpha", "outsider", http.StatusForbidden, "not in a group"},
		{"wrong group search", "GET", "/recordings?tool=echo", "outsider", http.StatusForbidden, "not in a group"},
		{"reader", "GET", "/recordings/sess-alpha", "reader", http.StatusOK, "sess-alpha"},
		{"read-only", "POST", "/recordings/sess-alpha", "reader", http.StatusMethodNotAllowed, ""},
		{"no delete", "DELETE", "/recordings/sess-alpha", "reader", http.StatusMethodNotAllowed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := get(t, e.mux, tc.method, tc.target, tc.token)
			require.Equal(t, tc.code, w.Code, w.Body.String())
			require.Contains(t, w.Body.String(), tc.body)
			if tc.code == http.StatusForbidden || tc.code == http.StatusUnauthorized {
				require.NotContains(t, w.Body.String(), "DROP TABLE")
			}
		})
	}
}

// With OpenID Connect sign-in, a visit without a session is sent to sign in and comes
// back to the page it asked for.
func TestSignInRedirect(t *testing.T) {
	e := record(t)
	key := filepath.Join(t.TempDir(), "cookie-key")
	require.NoError(t, os.WriteFile(key, []byte(strings.Repeat("k", 40)), 0o600))
	si, err := signin.New(signin.Config{
		Issuer: "https://idp.example", ClientID: "mcpguard", CookieKeyFile: key,
		Scopes: []string{"openid"}, GroupsClaim: "groups", SessionTTL: time.Hour,
	}, signin.Options{PublicURL: "http://127.0.0.1:9002/approvals"})
	require.NoError(t, err)
	sink, err := recordings.NewDir(e.dir)
	require.NoError(t, err)
	mux := newMux(t, sink, replay.Options{Readers: []string{"security-team"}, SignIn: si, PublicKey: e.pub})
	w := get(t, mux, "GET", "/recordings/sess-alpha?tool=echo", "reader")
	require.Equal(t, http.StatusSeeOther, w.Code, "a bearer token is no session")
	require.Equal(t, "http://127.0.0.1:9002/approvals/signin?return=%2Frecordings%2Fsess-alpha%3Ftool%3Decho", w.Header().Get("Location"))
}

func TestSearch(t *testing.T) {
	e := record(t)
	for _, tc := range []struct {
		name, query string
		want, not   []string
	}{
		{"everything", "since=1h", []string{"sess-alpha", "sess-beta"}, nil},
		{"tool", "tool=execute_sql", []string{"sess-alpha"}, []string{"sess-beta"}},
		{"identity subject exact", "identity=agent-2", []string{"sess-beta"}, []string{"sess-alpha"}},
		{"identity client id", "identity=client-2", []string{"sess-beta"}, []string{"sess-alpha"}},
		{"identity is no substring", "identity=agent", nil, []string{"sess-alpha", "sess-beta"}},
		{"rule", "rule=allow-lookup", []string{"sess-beta"}, []string{"sess-alpha"}},
		{"decision", "decision=deny", []string{"sess-alpha"}, []string{"sess-beta"}},
		{"session prefix", "session=sess-b", []string{"sess-beta"}, []string{"sess-alpha"}},
		{"until in the past", "until=2020-01-01", nil, []string{"sess-alpha", "sess-beta"}},
		{"since in the future", "since=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339), nil, []string{"sess-alpha", "sess-beta"}},
		{"combined", "tool=echo&decision=allow&identity=agent-1", []string{"sess-alpha"}, []string{"sess-beta"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := get(t, e.mux, "GET", "/recordings?"+tc.query, "reader")
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			body := w.Body.String()
			for _, s := range tc.want {
				require.Contains(t, body, `href="recordings/`+s)
			}
			for _, s := range tc.not {
				require.NotContains(t, body, `href="recordings/`+s)
			}
			require.Contains(t, body, "session(s)")
		})
	}

	t.Run("bad time refused, not ignored", func(t *testing.T) {
		w := get(t, e.mux, "GET", "/recordings?since=yesterday&tool=echo", "reader")
		require.Equal(t, http.StatusBadRequest, w.Code)
		require.Contains(t, w.Body.String(), "Search not run")
		require.NotContains(t, w.Body.String(), `href="/recordings/sess-`)
	})
	t.Run("request id opens the session at the request", func(t *testing.T) {
		w := get(t, e.mux, "GET", "/recordings?request_id=rid-2", "reader")
		require.Equal(t, http.StatusSeeOther, w.Code, w.Body.String())
		require.Equal(t, "recordings/sess-alpha?request_id=rid-2#req-rid-2", w.Header().Get("Location"))
	})
	t.Run("first visit runs no search", func(t *testing.T) {
		w := get(t, e.mux, "GET", "/recordings", "reader")
		require.Equal(t, http.StatusOK, w.Code)
		require.NotContains(t, w.Body.String(), "session(s)")
	})
}

func TestSession(t *testing.T) {
	e := record(t)
	w := get(t, e.mux, "GET", "/recordings/sess-al", "reader")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	body := w.Body.String()
	h := w.Header()
	assert.Equal(t, "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'", h.Get("Content-Security-Policy"))
	assert.Equal(t, "nosniff", h.Get("X-Content-Type-Options"))
	assert.Equal(t, "no-store", h.Get("Cache-Control"))

	require.Contains(t, body, `<code id="session">sess-alpha</code>`, "a unique prefix opens the session")
	require.Contains(t, body, "✔ Verified: 1 chain(s)")
	require.NotContains(t, body, "FAILED")
	for _, want := range []string{
		`id="req-rid-1"`, `id="req-rid-2"`, "DROP TABLE users", "sql-destructive", "blocked by policy",
		`class="denial"`, `class="note masking"`, "masking masked", "EMAIL", "[REDACTED:EMAIL]",
		"sealed original kept (not shown)",
	} {
		require.Contains(t, body, want)
	}
	require.NotContains(t, body, "AGE-SEALED-ORIGINAL-SECRET", "sealed originals are never shown")

	// Hostile content is escaped and its hidden characters visible.
	require.NotContains(t, body, "<script>")
	require.NotContains(t, body, "\u202E")
	require.Contains(t, body, `&lt;script&gt;alert(1)&lt;/script&gt;\u202Egnp.exe`)

	// A long message is folded, never cut.
	require.Contains(t, body, "characters: show all)</summary>")
	require.Contains(t, body, strings.Repeat("x", 700)+"END-OF-LONG")

	t.Run("hold and approval", func(t *testing.T) {
		body := get(t, e.mux, "GET", "/recordings/sess-beta", "reader").Body.String()
		require.Contains(t, body, `<tr class="note hold"><td>`)
		require.Contains(t, body, "+20s after receipt")
		require.Contains(t, body, "+20.001s after receipt", "the forward after the hold")
		require.Contains(t, body, `&#34;state&#34;:&#34;approved&#34;`)
	})
	t.Run("ambiguous prefix", func(t *testing.T) {
		w := get(t, e.mux, "GET", "/recordings/sess-", "reader")
		require.Equal(t, http.StatusConflict, w.Code)
		require.Contains(t, w.Body.String(), "sess-alpha, sess-beta")
	})
	t.Run("unknown", func(t *testing.T) {
		w := get(t, e.mux, "GET", "/recordings/%3Cb%3Enope", "reader")
		require.Equal(t, http.StatusNotFound, w.Code)
		require.Contains(t, w.Body.String(), "&lt;b&gt;nope")
	})
}

func TestVerificationFailureShown(t *testing.T) {
	t.Run("tampered segment", func(t *testing.T) {
		e := record(t)
		var seg string
		require.NoError(t, filepath.WalkDir(e.dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && strings.Contains(p, "sess-alpha") && strings.HasSuffix(p, ".jsonl.gz") {
				seg = p
			}
			return err
		}))
		require.NotEmpty(t, seg)
		require.NoError(t, os.WriteFile(seg, []byte("not a segment"), 0o600))
		w := get(t, e.mux, "GET", "/recordings/sess-alpha", "reader")
		require.Equal(t, http.StatusOK, w.Code)
		body := w.Body.String()
		require.Contains(t, body, "✘ Verification FAILED.")
		require.Contains(t, body, `<li class="problem">`)
		require.NotContains(t, body, "✔ Verified")
		require.Contains(t, body, `id="read-error"`, "the unreadable segment is said, not skipped")
	})
	t.Run("other key", func(t *testing.T) {
		e := record(t)
		other, _, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		sink, err := recordings.NewDir(e.dir)
		require.NoError(t, err)
		mux := newMux(t, sink, replay.Options{Readers: []string{"security-team"}, Auth: auth, PublicKey: other})
		w := get(t, mux, "GET", "/recordings/sess-beta", "reader")
		require.Equal(t, http.StatusOK, w.Code)
		require.Contains(t, w.Body.String(), "✘ Verification FAILED.")
		require.Contains(t, w.Body.String(), "signature invalid")
	})
}

// A link from the approvals page lands on the row of the request.
func TestLink(t *testing.T) {
	e := record(t)
	l := replay.Link("sess-alpha", "rid-2")
	require.Equal(t, "recordings/sess-alpha#req-rid-2", l)
	path, frag, _ := strings.Cut(l, "#")
	w := get(t, e.mux, "GET", "/"+path, "reader")
	require.Equal(t, http.StatusOK, w.Code)
	require.Contains(t, w.Body.String(), `<tr class="request" id="`+frag+`">`)
	require.Equal(t, "recordings?request_id=a+b%2Fc", replay.Link("", "a b/c"))
	require.Equal(t, "recordings/a%3Fb", replay.Link("a?b", ""))
	require.Empty(t, replay.Link("", ""))
}
