package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/e2e/emulator"
	"github.com/mcpguard/mcpguard/e2e/harness"
	"github.com/mcpguard/mcpguard/e2e/mcpserver"
)

// suite is the one mcpguard process every test of this package talks to (built and started
// once in TestMain), and the tokens minted from it.
var suite struct {
	root     string
	guard    *harness.Guard
	token    string // sub agent-1, scope mcp:tools, aud = the Envoy route's audience
	wrongAud string // same, issued for another resource
	err      error  // why the suite could not start; every test fails with it
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "mcpguard-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	suite.err = setup(ctx, dir)
	code := m.Run()
	if suite.guard != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer scancel()
		if err := suite.guard.Stop(sctx); err != nil {
			fmt.Fprintf(os.Stderr, "mcpguard did not stop cleanly on SIGTERM: %v\n%s", err, suite.guard.Logs())
			code = 1
		}
	}
	return code
}

func setup(ctx context.Context, dir string) error {
	root, err := harness.ModuleRoot(ctx)
	if err != nil {
		return err
	}
	suite.root = root
	bin, err := harness.Build(ctx, root, dir)
	if err != nil {
		return err
	}
	g, err := harness.StartGuard(ctx, harness.GuardOptions{Bin: bin, Dir: dir})
	if err != nil {
		return err
	}
	suite.guard = g
	if suite.token, err = g.Token(ctx, harness.TokenOptions{Subject: "agent-1", Scopes: []string{"mcp:tools"}}); err != nil {
		return err
	}
	suite.wrongAud, err = g.Token(ctx, harness.TokenOptions{Subject: "agent-1", Scopes: []string{"mcp:tools"}, Audience: "http://other.example/mcp"})
	return err
}

// stack is one upstream MCP server behind its own emulator, wired to the shared mcpguard.
type stack struct {
	up    *mcpserver.Server
	gw    *harness.Gateway
	trace *trace
}

// suiteBin is the mcpguard binary the suite built.
func suiteBin() string { return filepath.Join(filepath.Dir(suite.guard.ConfigPath), "mcpguard") }

// extraGuard starts another mcpguard from the suite's binary, in dir, with cfg over the
// harness defaults. It stops with the test, and its log is printed when the test fails.
func extraGuard(t *testing.T, dir string, cfg map[string]any) *harness.Guard {
	t.Helper()
	require.NoError(t, suite.err, "the suite could not start mcpguard")
	g, err := harness.StartGuard(t.Context(), harness.GuardOptions{Bin: suiteBin(), Dir: dir, Config: cfg})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 15*time.Second)
		defer cancel()
		require.NoError(t, g.Stop(ctx))
		if t.Failed() {
			t.Logf("mcpguard log:\n%s", g.Logs())
		}
	})
	return g
}

// newStack starts an upstream in mode and a gateway in front of it; on failure the
// emulator's and mcpguard's logs of this test are printed.
func newStack(t *testing.T, mode mcpserver.Mode) *stack {
	t.Helper()
	require.NoError(t, suite.err, "the suite could not start mcpguard")
	mark := suite.guard.Logs().Len()
	var emuLog bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewJSONHandler(lockedWriter{&mu, &emuLog}, &slog.HandlerOptions{Level: slog.LevelDebug}))

	up, err := mcpserver.Start(mcpserver.Options{Mode: mode})
	require.NoError(t, err)
	tr := &trace{}
	gw, err := harness.StartGateway(t.Context(), harness.GatewayOptions{
		Root: suite.root, GRPC: suite.guard.GRPC, Admin: suite.guard.Admin, Upstream: up.Addr(),
		Log: log, Trace: tr.add,
	})
	if err != nil {
		_ = up.Close(context.WithoutCancel(t.Context()))
		require.NoError(t, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 5*time.Second)
		defer cancel()
		require.NoError(t, up.Close(ctx))
		_ = gw.Close(ctx) // in-flight streams the test abandoned are cut: not an error here
		if t.Failed() {
			mu.Lock()
			t.Logf("emulator log:\n%s", emuLog.String())
			mu.Unlock()
			t.Logf("mcpguard log:\n%s", suite.guard.Logs().Since(mark))
			t.Logf("requests seen by the emulator:\n%s", tr)
		}
	})
	return &stack{up: up, gw: gw, trace: tr}
}

// url is the MCP endpoint through the gateway.
func (s *stack) url() string { return s.up.URLVia(s.gw.Addr()) }

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// trace keeps what the emulator saw per HTTP request: method, response status, and whether
// mcpguard answered with an immediate response.
type trace struct {
	mu   sync.Mutex
	reqs map[string]*seen
	ids  []string
}

type seen struct {
	method, path string
	status       string
	immediate    int    // status of an ext_proc immediate response, 0 if none
	local        int    // status of a local reply (ext_authz denial, error), 0 if none
	details      string // local reply or reset details (Envoy's %RESPONSE_CODE_DETAILS%)
}

func (tr *trace) add(ev emulator.TraceEvent) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.reqs == nil {
		tr.reqs = map[string]*seen{}
	}
	s := tr.reqs[ev.RequestID]
	if s == nil {
		s = &seen{}
		tr.reqs[ev.RequestID] = s
		tr.ids = append(tr.ids, ev.RequestID)
	}
	switch ev.Kind {
	case emulator.TraceProcessingRequest:
		pr, _ := ev.Message.(*extprocv3.ProcessingRequest)
		if h := pr.GetRequestHeaders(); h != nil {
			s.method, s.path = header(h, ":method"), header(h, ":path")
		}
		if h := pr.GetResponseHeaders(); h != nil {
			s.status = header(h, ":status")
		}
	case emulator.TraceProcessingResponse:
		pr, _ := ev.Message.(*extprocv3.ProcessingResponse)
		if ir := pr.GetImmediateResponse(); ir != nil {
			s.immediate = int(ir.GetStatus().GetCode())
			if s.immediate == 0 {
				s.immediate = 200
			}
		}
	case emulator.TraceLocalReply:
		s.local, s.details = ev.Status, ev.Details
	case emulator.TraceReset:
		s.details = "reset: " + ev.Details
	case emulator.TraceCheckRequest, emulator.TraceCheckResponse:
		// ext_authz traffic: the summary is about the ext_proc exchange.
	}
}

func header(h *extprocv3.HttpHeaders, name string) string {
	for _, hv := range h.GetHeaders().GetHeaders() {
		if strings.EqualFold(hv.GetKey(), name) {
			if len(hv.GetRawValue()) > 0 {
				return string(hv.GetRawValue())
			}
			return hv.GetValue()
		}
	}
	return ""
}

// String lists every request: method path -> status, and who answered if not the upstream.
func (tr *trace) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var b strings.Builder
	for _, id := range tr.ids {
		s := tr.reqs[id]
		fmt.Fprintf(&b, "%s %s %s -> %s immediate=%d local=%d %s\n", id, s.method, s.path, s.status, s.immediate, s.local, s.details)
	}
	return b.String()
}

// find returns the requests with the given method, in arrival order.
func (tr *trace) find(method string) []seen {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []seen
	for _, id := range tr.ids {
		if s := tr.reqs[id]; s.method == method {
			out = append(out, *s)
		}
	}
	return out
}

// immediates counts requests mcpguard answered itself.
func (tr *trace) immediates() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, s := range tr.reqs {
		if s.immediate != 0 {
			n++
		}
	}
	return n
}

// rpcError is the JSON-RPC error of a refused request.
type rpcError struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// post sends one raw MCP POST through the gateway and returns status, headers and body.
func post(t *testing.T, url, token string, hdr map[string]string, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := harness.HTTPClient(token).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, b
}
