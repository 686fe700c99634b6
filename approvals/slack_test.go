package approvals

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/approvals/slacktest"
	"github.com/mcpguard/mcpguard/identity"
)

const slackSecret = "8f742231b10e8888abcd99yyyzzz85a5"

type slackEnv struct {
	s     *Service
	clock *clock
	fake  *slacktest.Fake
	url   string // the interactivity endpoint
	base  string // the admin server
	reg   *prometheus.Registry
	cfg   Config
	store Store
}

// newSlackEnv runs a Service with the Slack app pointed at a fake Slack, and serves its
// interactivity endpoint.
func newSlackEnv(t *testing.T, mod func(*slacktest.Fake)) *slackEnv {
	t.Helper()
	f := slacktest.New(t)
	st, err := OpenFile(filepath.Join(t.TempDir(), "a.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	cfg := DefaultConfig()
	cfg.Approvers = []string{"dba"}
	cfg.PublicURL = "https://gw.example/approvals"
	cfg.Notify.Backoff, cfg.Notify.MaxBackoff = time.Millisecond, 10*time.Millisecond
	cfg.Slack = SlackConfig{
		Channel: f.Channel, BotTokenFile: secretFile(t, f.Token), SigningSecretFile: secretFile(t, slackSecret),
		APIURL: f.APIURL(), ResponseURLPrefix: f.ResponseURLPrefix(),
		Users: []SlackUser{
			{TeamID: "T1", UserID: "UALICE", Subject: "alice", Issuer: "https://idp.test", Groups: []string{"dba"}},
			{TeamID: "T1", UserID: "UAGENT", Subject: "agent-1", Issuer: "https://idp.test", Groups: []string{"dba"}},
			{TeamID: "T1", UserID: "UBOB", Subject: "bob", Groups: []string{"dev"}},
		},
	}
	require.NoError(t, cfg.Validate())
	if mod != nil {
		f.Lock()
		mod(f)
		f.Unlock()
	}
	c := &clock{t: time.Now().Truncate(time.Second)}
	reg := prometheus.NewRegistry()
	s, err := New(cfg, st, slog.New(slog.NewTextHandler(t.Output(), nil)), reg, WithClock(c.now))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	mux := http.NewServeMux()
	for p, h := range s.SlackRoutes() {
		mux.Handle(p, h)
	}
	for p, h := range s.Routes(tokens{"dba": dba}, nil) {
		mux.Handle(p, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &slackEnv{s: s, clock: c, fake: f, url: srv.URL + "/approvals/slack/actions", base: srv.URL, reg: reg, cfg: cfg, store: st}
}

// open begins a held call and waits for its Slack message.
func (e *slackEnv) open(t *testing.T, query string) (Request, slacktest.Message) {
	t.Helper()
	res, err := e.s.Begin(t.Context(), Call{
		Requester: identity.Identity{Subject: "agent-1", Issuer: "https://idp.test", ClientID: "ci-bot", Groups: []string{"agents", "deployers"}},
		Tool:      "execute_sql", Arguments: json.RawMessage(`{"query":"` + query + `"}`),
		Rule: "sql-writes", Message: "writes need a DBA", Reason: "ddl", PolicyVersion: "sha256:pol1",
		Route: Route{Authority: "db-tools:8080", Path: "/mcp"}, SessionID: "sess-42",
	})
	require.NoError(t, err)
	var m slacktest.Message
	require.Eventually(t, func() bool {
		posts, _, _ := e.fake.Snapshot()
		for _, p := range posts {
			if el, ok := slacktest.Button(p, "approve"); ok && el["value"] == res.Request.ID {
				m = p
				return true
			}
		}
		return false
	}, 10*time.Second, 2*time.Millisecond)
	return res.Request, m
}

// post sends body to the interactivity endpoint, signed at ts unless ts is zero.
func (e *slackEnv) post(t *testing.T, body []byte, ts time.Time, secret string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if !ts.IsZero() {
		slacktest.Sign(req, secret, ts, body)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp.StatusCode
}

func (e *slackEnv) click(t *testing.T, m slacktest.Message, action, user string) int {
	t.Helper()
	return e.post(t, e.fake.Click(m, action, "T1", user), time.Now(), slackSecret)
}

// updated waits for a chat.update of message m whose text contains want.
func (e *slackEnv) updated(t *testing.T, m slacktest.Message, want string) slacktest.Message {
	t.Helper()
	var got slacktest.Message
	require.Eventually(t, func() bool {
		_, updates, _ := e.fake.Snapshot()
		for _, u := range updates {
			if u.TS == m.TS && strings.Contains(u.Text, want) {
				got = u
				return true
			}
		}
		return false
	}, 10*time.Second, 2*time.Millisecond, "chat.update with %q", want)
	return got
}

// replied waits for an ephemeral reply containing want.
func (e *slackEnv) replied(t *testing.T, want string) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, _, replies := e.fake.Snapshot()
		for _, r := range replies {
			if r["response_type"] == "ephemeral" && r["replace_original"] == false && strings.Contains(r["text"].(string), want) {
				return true
			}
		}
		return false
	}, 10*time.Second, 2*time.Millisecond, "ephemeral reply with %q", want)
}

func blocksJSON(t *testing.T, m slacktest.Message) string {
	t.Helper()
	b, err := json.Marshal(m.Blocks)
	require.NoError(t, err)
	return string(b)
}

func TestSlackMessageCarriesTheRequest(t *testing.T) {
	e := newSlackEnv(t, nil)
	r, m := e.open(t, "drop table t")
	all := blocksJSON(t, m)
	for _, want := range []string{
		"*Rule:* sql-writes", "writes need a DBA", "*Requester:* agent-1 (client ci-bot)", "*Issuer:* https://idp.test",
		"*Groups:* agents, deployers", "*MCP server:* db-tools:8080/mcp", "*Session:* sess-42",
		"*Policy version:* sha256:pol1", "*Approver groups:* dba",
		"*Requested:* " + r.CreatedAt.Format(time.RFC3339), "*Expires:* " + r.ExpiresAt.Format(time.RFC3339),
		"params.query = drop table t", "https://gw.example/approvals#req-" + r.ID,
	} {
		require.Contains(t, all, want)
	}
	deny, ok := slacktest.Button(m, "deny")
	require.True(t, ok)
	require.Equal(t, r.ID, deny["value"])
	require.Eventually(t, func() bool {
		got, err := e.s.Get(t.Context(), r.ID)
		require.NoError(t, err)
		return got.Slack != nil && *got.Slack == SlackMessage{Channel: e.fake.Channel, TS: m.TS}
	}, 10*time.Second, 2*time.Millisecond, "the message is recorded for later updates")
}

func TestSlackApproveReleasesHeldCall(t *testing.T) {
	e := newSlackEnv(t, nil)
	r, m := e.open(t, "drop table t")
	waited := make(chan Result, 1)
	go func() {
		res, err := e.s.Wait(t.Context(), r.ID, time.Minute)
		if err != nil {
			res.Outcome = Waiting
		}
		waited <- res
	}()
	require.Equal(t, http.StatusOK, e.click(t, m, "approve", "UALICE"))
	res := <-waited
	require.Equal(t, Granted, res.Outcome)
	require.Equal(t, Party{Subject: "alice", Issuer: "https://idp.test", ClientID: "slack", Groups: []string{"dba"}}, res.Request.Decision.By)

	u := e.updated(t, m, "Approved")
	require.Contains(t, u.Text, "by alice (client slack) at ")
	_, stillThere := slacktest.Button(u, "approve")
	require.False(t, stillThere, "a decided message has no buttons")
	require.Contains(t, blocksJSON(t, u), "params.query = drop table t", "the facts stay on the message")
}

// TestSlackReviewClickAcknowledged: Slack also reports clicks on the link button; they
// are acknowledged and decide nothing.
func TestSlackReviewClickAcknowledged(t *testing.T) {
	e := newSlackEnv(t, nil)
	r, m := e.open(t, "drop table t")
	require.Equal(t, http.StatusOK, e.click(t, m, "review", "UNOBODY"))
	got, err := e.s.Get(t.Context(), r.ID)
	require.NoError(t, err)
	require.Equal(t, Pending, got.State)
	_, _, replies := e.fake.Snapshot()
	require.Empty(t, replies)
}

func TestSlackDeny(t *testing.T) {
	e := newSlackEnv(t, nil)
	r, m := e.open(t, "drop table t")
	require.Equal(t, http.StatusOK, e.click(t, m, "deny", "UALICE"))
	got, err := e.s.Get(t.Context(), r.ID)
	require.NoError(t, err)
	require.Equal(t, Denied, got.State)
	require.Equal(t, "denied in Slack", got.Decision.Reason)
	e.updated(t, m, "Denied* by alice")
}

// TestSlackRefusesForgedRequests: nothing but a request signed with the signing secret,
// within five minutes, over the exact body, decides anything.
func TestSlackRefusesForgedRequests(t *testing.T) {
	e := newSlackEnv(t, nil)
	r, m := e.open(t, "drop table t")
	body := e.fake.Click(m, "approve", "T1", "UALICE")
	tampered := bytes.Replace(body, []byte("UALICE"), []byte("UALICF"), 1)
	for _, tc := range []struct {
		name   string
		body   []byte
		ts     time.Time
		secret string
		signed []byte // when set, the signature is made over this body instead
		code   int
	}{
		{name: "unsigned", body: body, code: http.StatusUnauthorized},
		{name: "stale timestamp", body: body, ts: time.Now().Add(-6 * time.Minute), secret: slackSecret, code: http.StatusUnauthorized},
		{name: "future timestamp", body: body, ts: time.Now().Add(6 * time.Minute), secret: slackSecret, code: http.StatusUnauthorized},
		{name: "wrong secret", body: body, ts: time.Now(), secret: "not-the-secret", code: http.StatusUnauthorized},
		{name: "tampered body", body: tampered, signed: body, ts: time.Now(), secret: slackSecret, code: http.StatusUnauthorized},
		{name: "too large", body: append(bytes.Clone(body), bytes.Repeat([]byte("x"), maxSlackBody)...), ts: time.Now(), secret: slackSecret, code: http.StatusRequestEntityTooLarge},
		{name: "signed but not a button click", body: []byte(`payload={"type":"view_submission"}`), ts: time.Now(), secret: slackSecret, code: http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url, bytes.NewReader(tc.body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if !tc.ts.IsZero() {
				signed := tc.body
				if tc.signed != nil {
					signed = tc.signed
				}
				slacktest.Sign(req, tc.secret, tc.ts, signed)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			_ = resp.Body.Close()
			require.Equal(t, tc.code, resp.StatusCode)
			got, err := e.s.Get(t.Context(), r.ID)
			require.NoError(t, err)
			require.Equal(t, Pending, got.State, "nothing decided")
		})
	}
	// The genuine click still works afterwards.
	require.Equal(t, http.StatusOK, e.post(t, body, time.Now(), slackSecret))
	e.updated(t, m, "Approved")
}

// TestSlackRefusals: signed clicks by people who may not decide get an ephemeral answer
// and change nothing.
func TestSlackRefusals(t *testing.T) {
	e := newSlackEnv(t, nil)
	ctx := t.Context()
	for _, tc := range []struct {
		name, user, want string
		before           func(r Request)
	}{
		{name: "unmapped user", user: "UNOBODY", want: "not mapped to an approver"},
		{name: "not an approver", user: "UBOB", want: "not in an approver group"},
		{name: "self-approval", user: "UAGENT", want: "the requester cannot approve their own call"},
		{name: "already decided", user: "UALICE", want: "no longer pending", before: func(r Request) {
			_, err := e.s.Decide(ctx, r.ID, dba, false, "no")
			require.NoError(t, err)
		}},
		{name: "expired", user: "UALICE", want: "no longer pending", before: func(Request) { e.clock.add(2 * time.Hour) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, m := e.open(t, "drop table "+strings.ReplaceAll(tc.name, " ", "_"))
			if tc.before != nil {
				tc.before(r)
			}
			before, err := e.s.Get(ctx, r.ID)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, e.click(t, m, "approve", tc.user))
			e.replied(t, tc.want)
			after, err := e.s.Get(ctx, r.ID)
			require.NoError(t, err)
			require.Equal(t, before.State, after.State)
			require.Equal(t, before.Decision, after.Decision)
		})
	}
}

// TestSlackUpdatedWhenDecidedElsewhere: the page, the API and the CLI decide through
// Service.Decide (here directly, and through the API); expiry through the sweep. Each
// updates the Slack message.
func TestSlackUpdatedWhenDecidedElsewhere(t *testing.T) {
	e := newSlackEnv(t, nil)
	ctx := t.Context()
	r1, m1 := e.open(t, "drop table a")
	r2, m2 := e.open(t, "drop table b")
	_, err := e.s.Decide(ctx, r1.ID, dba, true, "looks fine")
	require.NoError(t, err)
	u := e.updated(t, m1, "Approved* by alice")
	require.Contains(t, u.Text, "looks fine")
	_, stillThere := slacktest.Button(u, "deny")
	require.False(t, stillThere)

	// Through the approver API, as the CLI does.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.base+"/v1/approvals/"+r2.ID+"/deny", strings.NewReader(`{"reason":"not in prod"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer dba")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, e.updated(t, m2, "Denied* by alice").Text, "not in prod")

	_, m3 := e.open(t, "drop table c")
	e.clock.add(2 * time.Hour)
	_, err = e.s.Sweep(ctx)
	require.NoError(t, err)
	e.updated(t, m3, "Expired")
}

// TestSlackDecidedBeforePostRecorded: a decision made on another replica while this one
// is still posting the message (so the other finds no message to update) shows on the
// message as soon as it is recorded.
func TestSlackDecidedBeforePostRecorded(t *testing.T) {
	hold := make(chan struct{})
	e := newSlackEnv(t, func(f *slacktest.Fake) { f.Hold = hold })
	reg2 := prometheus.NewRegistry()
	replica, err := New(e.cfg, e.store, nil, reg2, WithClock(e.clock.now))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); replica.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	res, err := e.s.Begin(t.Context(), sqlCall(`{"query":"drop table t"}`))
	require.NoError(t, err)
	_, err = replica.Decide(t.Context(), res.Request.ID, dba, true, "")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return counterOf(t, reg2, "slack", "sent") == 1 }, 10*time.Second, 2*time.Millisecond)
	close(hold)
	require.Eventually(t, func() bool {
		posts, updates, _ := e.fake.Snapshot()
		return len(posts) == 1 && len(updates) == 1 && updates[0].TS == posts[0].TS && strings.Contains(updates[0].Text, "Approved")
	}, 10*time.Second, 2*time.Millisecond)
}

// TestSlackWrongTokenNotRetried: Slack's invalid_auth is final: one attempt, counted failed.
func TestSlackWrongTokenNotRetried(t *testing.T) {
	e := newSlackEnv(t, func(f *slacktest.Fake) { f.Token = "xoxb-another" })
	_, err := e.s.Begin(t.Context(), sqlCall(`{"query":"drop table t"}`))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return counterOf(t, e.reg, "slack", "failed") == 1 }, 10*time.Second, 2*time.Millisecond)
	posts, _, _ := e.fake.Snapshot()
	require.Empty(t, posts)
}

func TestSlackConfigValidate(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.Slack.Channel, c.Slack.BotTokenFile, c.Slack.SigningSecretFile = "C1", "/t", "/s"
		c.Slack.Users = []SlackUser{{TeamID: "T1", UserID: "U1", Subject: "alice", Groups: []string{"dba"}}}
		return c
	}
	require.NoError(t, base().Validate())
	for _, tc := range []struct {
		name, want string
		mod        func(*Config)
	}{
		{"no channel", "slack.channel: required when slack is configured", func(c *Config) { c.Slack.Channel = "" }},
		{"bad channel", `slack.channel: "#approvals" is not a Slack channel ID`, func(c *Config) { c.Slack.Channel = "#approvals" }},
		{"no token", "slack.bot_token_file: required", func(c *Config) { c.Slack.BotTokenFile = "" }},
		{"no secret", "slack.signing_secret_file: required", func(c *Config) { c.Slack.SigningSecretFile = "" }},
		{"api url", "slack.api_url:", func(c *Config) { c.Slack.APIURL = "slack.com/api" }},
		{"no users", "slack.users: at least one", func(c *Config) { c.Slack.Users = nil }},
		{"user without groups", "slack.users[0].groups: at least one", func(c *Config) { c.Slack.Users[0].Groups = nil }},
		{"user without subject", "slack.users[0].subject: required", func(c *Config) { c.Slack.Users[0].Subject = "" }},
		{"bad user id", `slack.users[0].user_id: "u1" is not a Slack user ID`, func(c *Config) { c.Slack.Users[0].UserID = "u1" }},
		{"mapped twice", "slack.users[1]: T1/U1 is mapped twice", func(c *Config) { c.Slack.Users = append(c.Slack.Users, c.Slack.Users[0]) }},
		{"json hook unsigned", "notify.webhooks[0].secret_file: required for format json", func(c *Config) {
			c.Notify.Webhooks = []WebhookConfig{{URL: "https://h.example/", Format: "json"}}
		}},
		{"hook name", `notify.webhooks[1].name: "a" is used twice`, func(c *Config) {
			c.Notify.Webhooks = []WebhookConfig{{Name: "a", URL: "https://h/", Format: "slack"}, {Name: "a", URL: "https://h/", Format: "slack"}}
		}},
		{"hook name reserved", `notify.webhooks[0].name: "slack" is used twice (or is reserved)`, func(c *Config) {
			c.Notify.Webhooks = []WebhookConfig{{Name: "slack", URL: "https://h/", Format: "slack"}}
		}},
		{"max backoff", "notify.max_backoff: must be at least notify.backoff", func(c *Config) { c.Notify.MaxBackoff = time.Millisecond }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mod(&c)
			require.ErrorContains(t, c.Validate(), tc.want)
		})
	}
}

func TestCheckFiles(t *testing.T) {
	c := DefaultConfig()
	empty := secretFile(t, "")
	c.Notify.Webhooks = []WebhookConfig{{URL: "https://h/", Format: "json", SecretFile: filepath.Join(t.TempDir(), "missing")}}
	c.Slack = SlackConfig{Channel: "C1", BotTokenFile: empty, SigningSecretFile: secretFile(t, "ok")}
	errs := c.CheckFiles()
	require.Len(t, errs, 2)
	require.ErrorContains(t, errs[0], "notify.webhooks[0].secret_file: read secret:")
	require.ErrorContains(t, errs[1], "slack.bot_token_file: "+empty+" is empty")
}
