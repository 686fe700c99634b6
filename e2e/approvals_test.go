package e2e_test

import (
	"context"
	"encoding/json"
	"io"
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

	"github.com/mcpguard/mcpguard/approvals/approvalstest"
	"github.com/mcpguard/mcpguard/e2e/harness"
	"github.com/mcpguard/mcpguard/e2e/mcpserver"
)

// approvalPolicy holds every echo call for the release group; everything else passes.
const approvalPolicy = `version: 1
default: allow
rules:
  - name: echo-needs-release
    when: request.tool == "echo"
    action: require_approval
    approvers: [release]
    message: echo needs a release manager
`

// Error codes of the approval flow (extproc.CodeApproval*).
const (
	codeDeferred = -31041
	codeDenied   = -31042
)

// approvalHold is short so the deferral scenario stays quick, yet well above the 2 s after
// which the approver acts in the held scenario.
const approvalHold = "5s"

// approverAudience is the approvals API's audience: the default, the MCP audience plus
// "/approvals".
const approverAudience = harness.ApproverAudience

type approvalEnv struct {
	g   *harness.Guard
	url string // MCP endpoint through the gateway
	// MCP tokens: the requester, and a requester in the release group.
	agent, selfAgent string
	// Approvals-audience tokens: the release manager, and selfAgent's principal.
	rm, selfApprover string
}

// approvalGuard starts mcpguard with approvalPolicy and extra approvals config, a gateway
// and an upstream, and mints the tokens. keyFile shares the dev issuer between replicas.
func approvalGuard(t *testing.T, approvals map[string]any, keyFile string) approvalEnv {
	t.Helper()
	return approvalGuardIn(t, t.TempDir(), approvals, keyFile)
}

// approvalGuardIn is approvalGuard with its directory (and so its data) in dir.
func approvalGuardIn(t *testing.T, dir string, approvals map[string]any, keyFile string) approvalEnv {
	t.Helper()
	pol := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(pol, []byte(approvalPolicy), 0o600))
	cfg := map[string]any{
		"policy":    map[string]any{"file": pol},
		"approvals": approvals,
	}
	if keyFile != "" {
		cfg["auth"] = devAuth(keyFile)
	}
	g := extraGuard(t, dir, cfg) // tests may stop it earlier: stopping twice is fine
	up, err := mcpserver.Start(mcpserver.Options{Mode: mcpserver.StatefulJSON})
	require.NoError(t, err)
	t.Cleanup(func() { _ = up.Close(context.WithoutCancel(t.Context())) })
	gw := gatewayFor(t, g, up.Addr())
	env := approvalEnv{g: g, url: up.URLVia(gw.Addr())}
	mint := func(aud, sub string, groups ...string) string {
		tok, err := g.Token(t.Context(), harness.TokenOptions{Subject: sub, Scopes: []string{"mcp:tools"}, Groups: groups, Audience: aud})
		require.NoError(t, err)
		return tok
	}
	env.agent, env.selfAgent = mint(harness.Audience, "agent-7"), mint(harness.Audience, "agent-8", "release")
	env.rm, env.selfApprover = mint(approverAudience, "rm-1", "release"), mint(approverAudience, "agent-8", "release")
	return env
}

// devAuth is the suite's auth section with the development issuer's key in keyFile.
func devAuth(keyFile string) map[string]any {
	return map[string]any{
		"audience":              harness.Audience,
		"resource_metadata_url": "http://localhost:8080/.well-known/oauth-protected-resource/mcp",
		"resource_metadata":     map[string]any{"resource": harness.Audience, "scopes_supported": []string{"mcp:tools"}},
		"dev_issuer":            map[string]any{"enabled": true, "issuer": "http://127.0.0.1/dev", "audience": harness.Audience, "key_file": keyFile},
	}
}

// api calls the approvals API on the admin port; token "" is anonymous.
func api(t *testing.T, g *harness.Guard, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+g.Admin+path, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	_ = json.Unmarshal(data, &out)
	return resp.StatusCode, out
}

// pending waits until token sees exactly one pending request and returns its id.
func pending(t *testing.T, g *harness.Guard, token string) string {
	t.Helper()
	var id string
	require.Eventually(t, func() bool {
		code, body := api(t, g, "GET", "/v1/approvals?state=pending", token, "")
		list, _ := body["approvals"].([]any)
		if code != 200 || len(list) != 1 {
			return false
		}
		id, _ = list[0].(map[string]any)["id"].(string)
		return id != ""
	}, wait, 20*time.Millisecond)
	return id
}

type callResult struct {
	res *mcp.CallToolResult
	err error
	at  time.Time
}

// echoAsync calls echo in the background.
func echoAsync(t *testing.T, s *mcp.ClientSession, msg string) <-chan callResult {
	t.Helper()
	ch := make(chan callResult, 1)
	go func() {
		r, err := s.CallTool(t.Context(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": msg}})
		ch <- callResult{r, err, time.Now()}
	}()
	return ch
}

func rpcErr(t *testing.T, err error) *jsonrpc.Error {
	t.Helper()
	var e *jsonrpc.Error
	require.ErrorAs(t, err, &e, "expected a JSON-RPC error")
	return e
}

func TestApprovals(t *testing.T) {
	env := approvalGuard(t, map[string]any{"hold": approvalHold}, "")
	g := env.g

	t.Run("held, approved after 2s, proceeds with its result", func(t *testing.T) {
		s := connect(t, env.url, env.agent, "2025-06-18", nil)
		done := echoAsync(t, s, "ship it")
		id := pending(t, g, env.rm)
		time.Sleep(2 * time.Second)
		code, body := api(t, g, "POST", "/v1/approvals/"+id+"/approve", env.rm, `{"reason":"release 42"}`)
		require.Equal(t, 200, code, body)
		approved := time.Now()
		r := <-done
		require.NoError(t, r.err)
		require.Equal(t, "ship it", text(t, r.res))
		t.Logf("approval to result: %v", r.at.Sub(approved))
		d := body["decision"].(map[string]any)
		require.Equal(t, "rm-1", d["by"].(map[string]any)["subject"])
		require.NotEmpty(t, d["at"])
	})

	t.Run("denied gets the approver's reason", func(t *testing.T) {
		s := connect(t, env.url, env.agent, "2025-06-18", nil)
		done := echoAsync(t, s, "drop it")
		id := pending(t, g, env.rm)
		code, _ := api(t, g, "POST", "/v1/approvals/"+id+"/deny", env.rm, `{"reason":"not during the freeze"}`)
		require.Equal(t, 200, code)
		e := rpcErr(t, (<-done).err)
		require.Equal(t, int64(codeDenied), e.Code)
		require.Contains(t, e.Message, "not during the freeze")
	})

	t.Run("anonymous and forged API calls refused", func(t *testing.T) {
		for _, tok := range []string{"", "not-a-token", suite.wrongAud} {
			code, _ := api(t, g, "GET", "/v1/approvals", tok, "")
			require.Equal(t, 401, code)
			code, _ = api(t, g, "POST", "/v1/approvals/x/approve", tok, `{}`)
			require.Equal(t, 401, code)
		}
	})

	t.Run("agent tokens refused whatever their groups", func(t *testing.T) {
		s := connect(t, env.url, env.agent, "2025-06-18", nil)
		done := echoAsync(t, s, "another agent's call")
		id := pending(t, g, env.rm)
		for _, path := range []string{"/v1/approvals/" + id + "/approve", "/v1/approvals"} {
			method := "POST"
			if path == "/v1/approvals" {
				method = "GET"
			}
			code, body := api(t, g, method, path, env.selfAgent, `{}`)
			require.Equal(t, 403, code, body)
			require.Contains(t, body["error"], "agent tokens cannot decide approvals")
		}
		code, _ := api(t, g, "POST", "/v1/approvals/"+id+"/approve", env.rm, `{}`)
		require.Equal(t, 200, code)
		require.NoError(t, (<-done).err)
	})

	t.Run("self approval refused", func(t *testing.T) {
		s := connect(t, env.url, env.selfAgent, "2025-06-18", nil)
		done := echoAsync(t, s, "my own")
		id := pending(t, g, env.selfApprover)
		code, body := api(t, g, "POST", "/v1/approvals/"+id+"/approve", env.selfApprover, `{}`)
		require.Equal(t, 403, code, body)
		require.Contains(t, body["error"], "own call")
		code, _ = api(t, g, "POST", "/v1/approvals/"+id+"/approve", env.rm, `{}`)
		require.Equal(t, 200, code)
		require.NoError(t, (<-done).err)
	})

	t.Run("mcpguard approvals ls and approve", func(t *testing.T) {
		s := connect(t, env.url, env.agent, "2025-06-18", nil)
		done := echoAsync(t, s, "via the cli")
		id := pending(t, g, env.rm)
		tokFile := filepath.Join(t.TempDir(), "token")
		require.NoError(t, os.WriteFile(tokFile, []byte(env.rm), 0o600))
		bin := suiteBin()
		cli := func(args ...string) string {
			t.Helper()
			args = append(args, "--url", "http://"+g.Admin, "--token-file", tokFile)
			out, err := exec.CommandContext(t.Context(), bin, append([]string{"approvals"}, args...)...).CombinedOutput()
			require.NoError(t, err, "%s", out)
			return string(out)
		}
		ls := cli("ls")
		require.Contains(t, ls, id)
		require.Contains(t, ls, "agent-7")
		require.Contains(t, ls, "echo-needs-release")
		require.Contains(t, cli("approve", id, "--reason", "from the terminal"), id+" approved by rm-1")
		require.NoError(t, (<-done).err)
		require.NotContains(t, cli("ls"), id, "no longer pending")
	})

	t.Run("hold timeout defers; approved retry passes once", func(t *testing.T) {
		s := connect(t, env.url, env.agent, "2025-06-18", nil)
		args := map[string]any{"text": "later"}
		_, err := s.CallTool(t.Context(), &mcp.CallToolParams{Name: "echo", Arguments: args})
		e := rpcErr(t, err)
		require.Equal(t, int64(codeDeferred), e.Code)
		var data struct {
			ID         string `json:"approval_id"`
			URL        string `json:"approve_url"`
			RetryAfter int    `json:"retry_after_seconds"`
		}
		require.NoError(t, json.Unmarshal(e.Data, &data))
		require.NotEmpty(t, data.ID)
		require.Contains(t, data.URL, data.ID)
		require.Positive(t, data.RetryAfter)

		code, _ := api(t, g, "POST", "/v1/approvals/"+data.ID+"/approve", env.rm, `{"reason":"ok"}`)
		require.Equal(t, 200, code)
		require.Equal(t, "later", text(t, call(t, s, "echo", args)), "the retry passes")

		_, err = s.CallTool(t.Context(), &mcp.CallToolParams{Name: "echo", Arguments: args})
		e = rpcErr(t, err)
		require.Equal(t, int64(codeDeferred), e.Code, "a consumed grant never passes again")
		require.NotContains(t, string(e.Data), data.ID)
	})
}

// TestApprovalsReplicas: two mcpguard processes share Redis; a call held on one is
// released by an approval made through the other's API.
func TestApprovalsReplicas(t *testing.T) {
	addr := approvalstest.StartRedis(t)
	key := filepath.Join(t.TempDir(), "dev-key.pem")
	cfg := map[string]any{"hold": "20s", "store": map[string]any{"kind": "redis", "redis": map[string]any{"addr": addr}}}
	a := approvalGuard(t, cfg, key)
	b := approvalGuard(t, cfg, key)

	s := connect(t, a.url, a.agent, "2025-06-18", nil)
	done := echoAsync(t, s, "across replicas")
	id := pending(t, b.g, b.rm)
	code, body := api(t, b.g, "POST", "/v1/approvals/"+id+"/approve", b.rm, `{"reason":"via b"}`)
	require.Equal(t, 200, code, body)
	approved := time.Now()
	r := <-done
	require.NoError(t, r.err)
	require.Equal(t, "across replicas", text(t, r.res))
	t.Logf("approval (replica b) to result (replica a): %v", r.at.Sub(approved))
}

// TestApprovalsPage drives the approvals page in headless Chromium: sign in by pasting a
// token, see the pending request, approve it with a reason, and the held call completes.
func TestApprovalsPage(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		browser, err = exec.LookPath("chromium-browser")
	}
	require.NoError(t, err, "chromium is required (apt-get install chromium)")
	env := approvalGuard(t, map[string]any{"hold": "25s"}, "")

	s := connect(t, env.url, env.agent, "2025-06-18", nil)
	done := echoAsync(t, s, "from the browser")
	id := pending(t, env.g, env.rm)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	ctx, cancel := context.WithTimeout(bctx, wait)
	defer cancel()

	page := "http://" + env.g.Admin + "/approvals"
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SetValue(chromedp.ID("token"), env.rm),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("who")),
	))
	who, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("who")))
	require.NoError(t, err)
	require.Equal(t, "rm-1", who)
	row, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("req-"+id)))
	require.NoError(t, err)
	require.Contains(t, row, "agent-7", "who asked")
	require.Contains(t, row, "echo", "the tool")
	require.Contains(t, row, "from the browser", "the arguments")
	require.Contains(t, row, "echo-needs-release", "the rule")
	require.Contains(t, row, "echo needs a release manager", "the rule's message")
	require.Contains(t, row, "params.arguments.text", "every member of params")

	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#req-`+id+` input[name="reason"]`), "checked in the browser"),
		chromedp.Click(chromedp.CSS(`#req-`+id+` button[value="approve"]`)),
		chromedp.WaitVisible(chromedp.ID("message")),
	))
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("message")))
	require.NoError(t, err)
	require.Contains(t, msg, "Approved "+id)

	r := <-done
	require.NoError(t, r.err)
	require.Equal(t, "from the browser", text(t, r.res))
	code, body := api(t, env.g, "GET", "/v1/approvals/"+id, env.rm, "")
	require.Equal(t, 200, code)
	require.Equal(t, "checked in the browser", body["decision"].(map[string]any)["reason"])
}

// TestApprovalsSurviveRestart: a call deferred before a restart is approved after it, and the
// retry passes once (file store, same data directory).
func TestApprovalsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := map[string]any{"hold": "1s"}
	before := approvalGuardIn(t, dir, cfg, "")
	s := connect(t, before.url, before.agent, "2025-06-18", nil)
	args := map[string]any{"text": "after restart"}
	_, err := s.CallTool(t.Context(), &mcp.CallToolParams{Name: "echo", Arguments: args})
	e := rpcErr(t, err)
	require.Equal(t, int64(codeDeferred), e.Code)
	var data struct {
		ID string `json:"approval_id"`
	}
	require.NoError(t, json.Unmarshal(e.Data, &data))
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	require.NoError(t, before.g.Stop(ctx))

	after := approvalGuardIn(t, dir, cfg, "")
	code, body := api(t, after.g, "POST", "/v1/approvals/"+data.ID+"/approve", after.rm, `{"reason":"after restart"}`)
	require.Equal(t, 200, code, body)
	s2 := connect(t, after.url, after.agent, "2025-06-18", nil)
	require.Equal(t, "after restart", text(t, call(t, s2, "echo", args)))
}
