package approvals

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/identity"
)

// tokens is a hand-written Authenticator: token → identity.
type tokens map[string]identity.Identity

func (t tokens) Authenticate(_ context.Context, tok string) (identity.Identity, error) {
	id, ok := t[tok]
	if !ok {
		return identity.Identity{}, errors.New("unknown token")
	}
	return id, nil
}

func newAPI(t *testing.T) (*Service, *httptest.Server) {
	t.Helper()
	s, _, _, _ := newTestService(t, nil)
	mux := http.NewServeMux()
	for p, h := range s.Routes(tokens{"dba": dba, "agent": agent, "outsider": outsider}, nil) {
		mux.Handle(p, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return s, srv
}

func call(t *testing.T, srv *httptest.Server, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	_ = json.Unmarshal(buf.Bytes(), &out)
	return resp.StatusCode, out
}

func TestAPI(t *testing.T) {
	s, srv := newAPI(t)
	open := func(t *testing.T) string {
		t.Helper()
		res, err := s.Begin(t.Context(), sqlCall(`{"password":"p","query":"`+t.Name()+`"}`))
		require.NoError(t, err)
		return res.Request.ID
	}
	tests := []struct {
		name, method, path, token, body string
		want                            int
	}{
		{name: "anonymous list", method: "GET", path: "/v1/approvals", want: 401},
		{name: "bad token", method: "GET", path: "/v1/approvals", token: "forged", want: 401},
		{name: "anonymous approve", method: "POST", path: "/v1/approvals/{id}/approve", body: `{}`, want: 401},
		{name: "list pending", method: "GET", path: "/v1/approvals?state=pending", token: "dba", want: 200},
		{name: "unknown state", method: "GET", path: "/v1/approvals?state=maybe", token: "dba", want: 400},
		{name: "get", method: "GET", path: "/v1/approvals/{id}", token: "dba", want: 200},
		{name: "get hidden from outsider", method: "GET", path: "/v1/approvals/{id}", token: "outsider", want: 404},
		{name: "get unknown", method: "GET", path: "/v1/approvals/nope", token: "dba", want: 404},
		{name: "self approval", method: "POST", path: "/v1/approvals/{id}/approve", token: "agent", body: `{"reason":"me"}`, want: 403},
		{name: "outsider approval", method: "POST", path: "/v1/approvals/{id}/approve", token: "outsider", body: `{}`, want: 403},
		{name: "deny needs reason", method: "POST", path: "/v1/approvals/{id}/deny", token: "dba", body: `{}`, want: 400},
		{name: "unknown field", method: "POST", path: "/v1/approvals/{id}/approve", token: "dba", body: `{"reason":"x","grant":"all"}`, want: 400},
		{name: "approve", method: "POST", path: "/v1/approvals/{id}/approve", token: "dba", body: `{"reason":"ok"}`, want: 200},
		{name: "deny", method: "POST", path: "/v1/approvals/{id}/deny", token: "dba", body: `{"reason":"no"}`, want: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := open(t)
			code, body := call(t, srv, tc.method, strings.ReplaceAll(tc.path, "{id}", id), tc.token, tc.body)
			require.Equal(t, tc.want, code, body)
			if tc.want == 200 && strings.Contains(tc.path, "{id}") {
				require.Equal(t, id, body["id"])
				require.NotContains(t, body, "keys")
				require.Equal(t, "***", body["arguments"].(map[string]any)["password"])
			}
		})
	}
	t.Run("decision recorded once with who and when", func(t *testing.T) {
		id := open(t)
		code, body := call(t, srv, "POST", "/v1/approvals/"+id+"/approve", "dba", `{"reason":"looks fine"}`)
		require.Equal(t, 200, code)
		d := body["decision"].(map[string]any)
		require.Equal(t, "alice", d["by"].(map[string]any)["subject"])
		require.NotEmpty(t, d["at"])
		code, _ = call(t, srv, "POST", "/v1/approvals/"+id+"/deny", "dba", `{"reason":"changed my mind"}`)
		require.Equal(t, 409, code)
	})
}
