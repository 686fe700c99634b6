package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpguard/mcpguard/approvals"
	"github.com/mcpguard/mcpguard/demo/server"
)

// JSON-RPC error codes the gateway answers with (see README, Policy and Approvals).
const (
	codeDenied         = -31003
	codeDeferred       = -31041
	codeApprovalDenied = -31042
	codeLapsed         = -31043
)

// Queries of the script.
const (
	selectSQL = "SELECT customer, plan, seats FROM customers ORDER BY seats DESC LIMIT 3"
	dropSQL   = "DROP DATABASE billing"
)

// agent is the scripted MCP client and the narration.
type agent struct {
	e    *env
	auto bool
	out  io.Writer
	s    *mcp.ClientSession
	api  *http.Client
}

// play connects as the agent through the gateway and runs each step in order.
func play(ctx context.Context, e *env, auto bool, out io.Writer) error {
	a := &agent{e: e, auto: auto, out: out, api: &http.Client{Timeout: 10 * time.Second}}
	hc := &http.Client{Transport: bearer{token: e.agentToken, next: http.DefaultTransport}}
	c := mcp.NewClient(&mcp.Implementation{Name: "demo-agent", Version: "1.0.0"}, nil)
	s, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: e.mcpURL(), HTTPClient: hc, MaxRetries: -1}, nil)
	if err != nil {
		return fmt.Errorf("connect through the gateway: %w", err)
	}
	a.s = s
	defer s.Close() // a no-op once the recording step closed it
	fmt.Fprintf(out, "\nThe agent %q connected to %s with an Okta-style JWT (development issuer); MCP session %s.\n",
		Agent, e.mcpURL(), s.ID())
	steps := []struct {
		title string
		run   func(context.Context) error
	}{
		{"An allowed call", a.allowed},
		{"A blocked DROP DATABASE", a.blocked},
		{"A masked secret", a.masked},
		{"An approval", a.approval},
		{"The recording, replayed and verified", a.recording},
	}
	for i, st := range steps {
		fmt.Fprintf(out, "\n━━ Step %d/%d: %s ━━\n", i+1, len(steps), st.title)
		if err := st.run(ctx); err != nil {
			return fmt.Errorf("step %d (%s): %w", i+1, st.title, err)
		}
	}
	fmt.Fprintf(out, "\n✔ Demo complete.\n")
	return nil
}

// bearer sends the agent's token on every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

func (a *agent) printf(format string, args ...any) { fmt.Fprintf(a.out, format, args...) }

// call narrates a tools/call and makes it.
func (a *agent) call(ctx context.Context, tool string, args map[string]any) (*mcp.CallToolResult, error) {
	b, _ := json.Marshal(args)
	a.printf("  agent → tools/call %s %s\n", tool, b)
	return a.s.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
}

func (a *agent) allowed(ctx context.Context) error {
	a.printf("  A read-only query. No rule matches it, so the policy default (allow) lets it through.\n")
	r, err := a.call(ctx, "query", map[string]any{"sql": selectSQL})
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	got := resultText(r)
	if got != server.Customers {
		return fmt.Errorf("query result changed on the way: %q", got)
	}
	a.printf("  ✓ allowed; the server's answer arrived unchanged:\n%s", indent(got, "      "))
	return nil
}

func (a *agent) blocked(ctx context.Context) error {
	a.printf("  The agent tries to drop the database. mcpguard parses the SQL (Postgres grammar) before it\n" +
		"  reaches the server.\n")
	_, err := a.call(ctx, "query", map[string]any{"sql": dropSQL})
	if err == nil {
		return fmt.Errorf("the call was allowed, want JSON-RPC error %d", codeDenied)
	}
	e, ok := asRPC(err)
	if !ok || e.Code != codeDenied {
		return fmt.Errorf("want JSON-RPC error %d: %w", codeDenied, err)
	}
	var data struct{ Rule, Reason string }
	_ = json.Unmarshal(e.Data, &data)
	a.printf("  ✗ blocked: JSON-RPC error %d %q (rule %s: %s)\n", e.Code, e.Message, data.Rule, data.Reason)
	a.printf("    The MCP server never saw the statement; the agent's session stays open.\n")
	return nil
}

func (a *agent) masked(ctx context.Context) error {
	a.printf("  The agent reads a service's config. This is what the MCP server sends back:\n%s", indent(server.ConfigFile, "      "))
	r, err := a.call(ctx, "read_config", map[string]any{"service": "billing"})
	if err != nil {
		return fmt.Errorf("read_config: %w", err)
	}
	got := resultText(r)
	for _, secret := range []string{"Tr0ub4dor-horse-9", "AKIA4HXQ2ZJ7PLM3KDRT", "wJa9rXUtnF3MI2K7MDENGbPxRfiCYq8Zk1vLmN0s"} {
		if strings.Contains(got, secret) {
			return errors.New("a secret reached the agent unmasked")
		}
	}
	if !strings.Contains(got, "[REDACTED:") {
		return fmt.Errorf("no masking marker in %q", got)
	}
	a.printf("  ✓ masked; this is what the agent (and the recording) received:\n%s", indent(got, "      "))
	return nil
}

func (a *agent) approval(ctx context.Context) error {
	a.printf("  The agent deploys to production. The rule deploy-needs-release-manager holds the call\n"+
		"  (up to %v) until someone in group \"release\" approves; the agent itself cannot.\n", a.e.hold)
	args := map[string]any{"service": "billing", "version": "1.4.2"}
	type result struct {
		r   *mcp.CallToolResult
		err error
	}
	done := make(chan result, 1)
	cctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); <-done }() // the call never outlives the step
	go func() {
		r, err := a.call(cctx, "deploy", args)
		done <- result{r, err}
	}()
	req, err := a.pending(ctx)
	if err != nil {
		return err
	}
	cmd := []string{a.e.bin, "approvals", "approve", req.ID, "--url", "http://" + a.e.admin, "--token-file", a.e.tokenFile, "--reason", "release-42"}
	a.printf("  ⏸ held: approval request %s (rule %s). As %s, approve it from another terminal:\n\n", req.ID, req.Rule, Approver)
	a.printf("      %s\n\n", strings.Join(cmd, " "))
	a.printf("    (or deny it: same command with deny … --reason \"not today\"; or sign in at http://%s/approvals\n"+
		"    with the token in %s)\n", a.e.admin, a.e.tokenFile)
	if a.auto {
		a.printf("  DEMO_AUTO_APPROVE=1: running that command now.\n")
		out, err := a.e.mcpguard(ctx, cmd[1:]...)
		if err != nil {
			return err
		}
		a.printf("    $ mcpguard %s\n%s", strings.Join(cmd[1:], " "), indent(out, "    "))
	} else {
		a.printf("  Waiting for the decision (Ctrl-C ends the demo)…\n")
	}
	var res result
	select {
	case res = <-done:
		done <- res // for the deferred wait
	case <-ctx.Done():
		return fmt.Errorf("wait for the approval: %w", ctx.Err())
	}
	if e, ok := asRPC(res.err); ok && e.Code == codeDeferred {
		a.printf("  … the hold ended before a decision: the agent got JSON-RPC error %d (deferred) and\n"+
			"    will retry the same call once %s is decided.\n", codeDeferred, req.ID)
		if err := a.decided(ctx, req.ID); err != nil {
			return err
		}
		r, err := a.call(ctx, "deploy", args)
		res = result{r, err}
	}
	return a.outcome(res.r, res.err)
}

// outcome narrates how the approval ended: approved and run, or refused by the approver.
func (a *agent) outcome(r *mcp.CallToolResult, err error) error {
	if err == nil {
		a.printf("  ✓ approved: the call went upstream and returned %q\n", resultText(r))
		return nil
	}
	e, ok := asRPC(err)
	if !ok || (e.Code != codeApprovalDenied && e.Code != codeLapsed) {
		return fmt.Errorf("deploy: %w", err)
	}
	a.printf("  ✗ not approved: JSON-RPC error %d %q\n", e.Code, e.Message)
	return nil
}

// pending finds the approval request the deploy call opened, as the approver sees it.
func (a *agent) pending(ctx context.Context) (approvals.Request, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		var out struct {
			Approvals []approvals.Request `json:"approvals"`
		}
		if err := a.get(ctx, "/v1/approvals?state=pending", &out); err != nil {
			return approvals.Request{}, err
		}
		for _, r := range out.Approvals {
			if r.Tool == "deploy" && r.Requester.Subject == Agent {
				return r, nil
			}
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return approvals.Request{}, fmt.Errorf("wait for the approval request: %w", err)
		}
	}
}

// decided waits until the request is no longer pending.
func (a *agent) decided(ctx context.Context, id string) error {
	for {
		var r approvals.Request
		if err := a.get(ctx, "/v1/approvals/"+url.PathEscape(id), &r); err != nil {
			return err
		}
		if r.Effective(time.Now()) != approvals.Pending {
			return nil
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return fmt.Errorf("wait for the decision: %w", err)
		}
	}
}

// get reads the approvals API as the approver.
func (a *agent) get(ctx context.Context, path string, out any) error {
	tok, err := readToken(a.e.tokenFile)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.e.admin+path, nil)
	if err != nil {
		return fmt.Errorf("build approvals request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := a.api.Do(req)
	if err != nil {
		return fmt.Errorf("call approvals api: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("approvals api %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(out); err != nil {
		return fmt.Errorf("decode approvals api answer: %w", err)
	}
	return nil
}

func (a *agent) recording(ctx context.Context) error {
	id := a.s.ID()
	if err := a.s.Close(); err != nil {
		return fmt.Errorf("close session: %w", err)
	}
	a.printf("  The agent closed session %s. mcpguard seals its recording (hash-chained segments)\n"+
		"  and signs the manifest; the mcpguard CLI reads it back.\n", id)
	verify := []string{"recordings", "verify", id, "--config", a.e.cfg}
	var verdict string
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		out, err := a.e.mcpguard(wait, verify...)
		if err == nil {
			verdict = out
			break
		}
		if serr := sleep(wait, 250*time.Millisecond); serr != nil {
			return fmt.Errorf("wait for the recording to verify: %w", errors.Join(serr, fmt.Errorf("%s%w", out, err)))
		}
	}
	play := []string{"recordings", "play", id, "--config", a.e.cfg}
	out, err := a.e.mcpguard(ctx, play...)
	if err != nil {
		return err
	}
	a.printf("\n  $ mcpguard %s\n%s", strings.Join(play, " "), indent(out, "    "))
	a.printf("\n  $ mcpguard %s\n%s", strings.Join(verify, " "), indent(verdict, "    "))
	return nil
}

func resultText(r *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range r.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

func asRPC(err error) (*jsonrpc.Error, bool) {
	var e *jsonrpc.Error
	return e, errors.As(err, &e)
}

// indent prefixes every line of s and ends it with a newline.
func indent(s, prefix string) string {
	s = strings.TrimRight(s, "\n")
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix) + "\n"
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func readToken(path string) (string, error) {
	b, err := os.ReadFile(path) //nolint:gosec // the token file the demo wrote in its temporary directory
	if err != nil {
		return "", fmt.Errorf("read token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
