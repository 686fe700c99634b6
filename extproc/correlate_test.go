package extproc

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/identity"
	"github.com/mcpguard/mcpguard/mcp"
	"github.com/mcpguard/mcpguard/policy"
)

func req(id int, method string) mcp.Message {
	return mcp.Message{Kind: mcp.KindRequest, ID: json.RawMessage(strconv.Itoa(id)), Method: method}
}

func TestCorrelationsBounded(t *testing.T) {
	now := time.Unix(0, 0)
	c := newCorrelations(correlationLimits{PerSession: 3, Total: 5, TTL: time.Minute})
	c.now = func() time.Time { return now }

	c.add("a", []mcp.Message{req(1, "tools/list"), req(2, "ping"), req(3, "ping"), req(4, "ping")})
	require.Equal(t, 3, c.len(), "per-session cap")
	require.Nil(t, c.take("a", json.RawMessage("1")), "the oldest request went first")
	ids, known := c.toolsLists("a")
	require.Empty(t, ids)
	require.False(t, known, "an eviction makes the session's answers uncertain")
	require.Equal(t, "ping", c.take("a", json.RawMessage("4")).Method)
	require.Nil(t, c.take("a", json.RawMessage("4")), "an answer is matched once")

	c.add("b", []mcp.Message{req(1, "tools/list")})
	ids, known = c.toolsLists("b")
	require.Equal(t, []json.RawMessage{json.RawMessage("1")}, ids)
	require.True(t, known)
	c.add("c", []mcp.Message{req(1, "ping"), req(2, "ping"), req(3, "ping")})
	require.LessOrEqual(t, c.len(), 5, "total cap")
	require.Nil(t, c.take("a", json.RawMessage("2")), "the least recently used session went first")

	c.add("b", []mcp.Message{req(1, "tools/call")})
	require.Nil(t, c.take("b", json.RawMessage("1")), "an id reused while pending matches nothing")

	now = now.Add(2 * time.Minute)
	require.Nil(t, c.take("c", json.RawMessage("3")), "expired")
	c.add("d", nil)
	require.Equal(t, 0, c.len(), "idle sessions expire")
}

// TestCorrelationsFlood: many ids in many sessions never grow the table past its caps.
func TestCorrelationsFlood(t *testing.T) {
	lim := defaultCorrelationLimits()
	c := newCorrelations(lim)
	msgs := make([]mcp.Message, 1000)
	for i := range msgs {
		msgs[i] = req(i, "tools/list")
	}
	for s := range 300 {
		c.add(strconv.Itoa(s), msgs)
		require.LessOrEqual(t, c.len(), lim.Total)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.sessions {
		require.LessOrEqual(t, len(s.reqs), lim.PerSession)
		require.LessOrEqual(t, len(s.order), 2*lim.PerSession+len(msgs))
	}
}

// TestCorrelationsKeepNoLargeEntry: an id, a tool name or a session id the client made
// large is not kept (the table would otherwise hold megabytes per entry); the session's
// answers are then uncertain, so policy withholds what it cannot match.
func TestCorrelationsKeepNoLargeEntry(t *testing.T) {
	c := newCorrelations(defaultCorrelationLimits())
	big := json.RawMessage(`"` + strings.Repeat("x", 1<<20) + `"`)
	c.add("s", []mcp.Message{{Kind: mcp.KindRequest, ID: big, Method: "tools/list"}, req(2, "tools/list")})
	require.Equal(t, 1, c.len())
	ids, known := c.toolsLists("s")
	require.Equal(t, []json.RawMessage{json.RawMessage("2")}, ids)
	require.False(t, known, "a request was not kept")
	require.Nil(t, c.take("s", big))

	c.add(strings.Repeat("s", 1<<20), []mcp.Message{req(1, "tools/list")})
	require.Equal(t, 1, c.len(), "a session id over the bound keeps nothing")
}

// BenchmarkSessionCheck is the added cost per request of the binding check, in-process store.
func BenchmarkSessionCheck(b *testing.B) {
	s, err := NewSessions(policy.NewMemory(time.Hour), prometheus.NewRegistry())
	require.NoError(b, err)
	x := &Exchange{
		Identity:  identity.Identity{Issuer: "https://okta.example/oauth2/default", Subject: "svc-reports"},
		SessionID: "5f2b4c1e-7a9d-4e3b-8c6f-1d2e3f4a5b6c", Method: "POST", Path: "/mcp",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		v, err := s.OnRequest(ctx, x)
		if err != nil || v.Action != Continue {
			b.Fatal(v, err)
		}
	}
}

// FuzzLegacySession: the session parameter of a client path or an upstream endpoint event
// and the shape check on upstream results never panic, and a session only comes from a query.
func FuzzLegacySession(f *testing.F) {
	for _, s := range []string{
		"/sse?sessionid=abc", "/messages/?session_id=x&y=1", "/m?sessionId=%zz", "/sse#?sessionid=a",
		"?sessionid=", `{"tools":[{"name":"a"}]}`, `{"tools":{}}`, "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if sid, _ := legacySession(s); sid != "" {
			require.Contains(t, s, "?")
		}
		_ = listsTools(json.RawMessage(s))
	})
}
