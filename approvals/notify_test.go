package approvals

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
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
		ID: "R1", Tool: "deploy", Requester: Party{Subject: "agent-<1>"}, Rule: "deploys",
		Arguments: json.RawMessage(`{"env":"prod"}`),
	}
	w.Notify(r)
	require.Eventually(t, func() bool {
		return counter(t, reg, "mcpguard_approvals_notifications_total", "failed") == 1
	}, 10*time.Second, 5*time.Millisecond)

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, bodies, 2, "both formats delivered after retries")
	require.Equal(t, "https://gw.example/approvals#R1", bodies[0]["approve_url"])
	require.Equal(t, "deploy", bodies[0]["approval"].(map[string]any)["tool"])
	require.Contains(t, bodies[1]["text"], "https://gw.example/approvals#R1")
	require.Contains(t, bodies[1]["text"], "agent-&lt;1&gt;")
	require.Len(t, bodies[1]["blocks"], 3)
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
