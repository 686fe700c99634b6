// Package slacktest is a fake of Slack's servers for tests, since the real ones cannot run
// here: the Web API methods mcpguard calls, response URLs, and a user who clicks buttons
// and whose clicks are signed as Slack signs them.
package slacktest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// Fake stands in for Slack's servers, which cannot run here. It serves the two Web
// API methods the Slack app calls (chat.postMessage, chat.update) and the response_url of
// clicks, and checks what Slack checks: the bot token, the channel, that chat.update names
// a message it posted (channel and ts), and the Block Kit limits and shapes of the blocks
// (https://docs.slack.dev/reference/block-kit). It also plays the user: click builds the
// block_actions interaction Slack sends for a button of a posted message, signed the way
// Slack signs requests (v0 HMAC-SHA256 over "v0:timestamp:body").
type Fake struct {
	t testing.TB
	// Token is the bot token the Web API accepts; Channel the one channel it knows.
	Token   string
	Channel string
	srv     *httptest.Server

	mu       sync.Mutex
	seq      int
	messages map[string]Message // ts → current message
	posts    []Message
	updates  []Message
	replies  []map[string]any
	// Hold, when set, delays chat.postMessage answers until it is closed.
	Hold chan struct{}
}

// Message is a message as posted or last updated.
type Message struct {
	Channel, TS, Text string
	Blocks            []map[string]any
}

// Lock guards changes to Token and Hold while requests may arrive; Unlock ends it.
func (f *Fake) Lock() { f.mu.Lock() }

// Unlock ends Lock.
func (f *Fake) Unlock() { f.mu.Unlock() }

// APIURL is the Web API base (slack.api_url).
func (f *Fake) APIURL() string { return f.srv.URL + "/api/" }

// ResponseURLPrefix is what the response URLs of clicks start with (slack.response_url_prefix).
func (f *Fake) ResponseURLPrefix() string { return f.srv.URL + "/hooks/" }

// New starts the fake on 127.0.0.1; it stops with the test.
func New(t testing.TB) *Fake {
	t.Helper()
	f := &Fake{t: t, Token: "xoxb-fake-bot-token", Channel: "C0APPROVALS", messages: map[string]Message{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/chat.postMessage", f.chat(false))
	mux.HandleFunc("POST /api/chat.update", f.chat(true))
	mux.HandleFunc("POST /hooks/actions/", f.responseURL)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func slackOK(w http.ResponseWriter, v map[string]any) {
	v["ok"] = true
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func slackFail(w http.ResponseWriter, code string) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": code})
}

func (f *Fake) chat(update bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			slackFail(w, "invalid_form_data")
			return
		}
		tok := r.PostForm.Get("token")
		if h := r.Header.Get("Authorization"); h != "" {
			tok = strings.TrimPrefix(h, "Bearer ")
		}
		f.mu.Lock()
		want, hold := f.Token, f.Hold
		f.mu.Unlock()
		if tok != want {
			slackFail(w, "invalid_auth")
			return
		}
		if r.PostForm.Get("channel") != f.Channel {
			slackFail(w, "channel_not_found")
			return
		}
		text := r.PostForm.Get("text")
		var blocks []map[string]any
		if err := json.Unmarshal([]byte(r.PostForm.Get("blocks")), &blocks); err != nil {
			slackFail(w, "invalid_blocks_format")
			return
		}
		if err := checkBlocks(blocks); err != nil {
			f.t.Errorf("fake Slack: invalid_blocks: %v", err)
			slackFail(w, "invalid_blocks")
			return
		}
		if text == "" || utf8.RuneCountInString(text) > 40000 {
			slackFail(w, "no_text")
			return
		}
		if !update && hold != nil {
			<-hold
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if update {
			ts := r.PostForm.Get("ts")
			if _, ok := f.messages[ts]; !ok {
				slackFail(w, "message_not_found")
				return
			}
			m := Message{Channel: f.Channel, TS: ts, Text: text, Blocks: blocks}
			f.messages[ts] = m
			f.updates = append(f.updates, m)
			slackOK(w, map[string]any{"channel": f.Channel, "ts": ts, "text": text})
			return
		}
		f.seq++
		ts := fmt.Sprintf("1780000000.%06d", f.seq)
		m := Message{Channel: f.Channel, TS: ts, Text: text, Blocks: blocks}
		f.messages[ts] = m
		f.posts = append(f.posts, m)
		slackOK(w, map[string]any{"channel": f.Channel, "ts": ts, "message": map[string]any{"text": text, "ts": ts}})
	}
}

// checkBlocks applies Block Kit's limits to the block types the app sends.
func checkBlocks(blocks []map[string]any) error {
	if len(blocks) == 0 || len(blocks) > 50 {
		return fmt.Errorf("%d blocks", len(blocks))
	}
	for i, b := range blocks {
		if id, _ := b["block_id"].(string); len(id) > 255 {
			return fmt.Errorf("block %d: block_id too long", i)
		}
		switch b["type"] {
		case "section":
			t, _ := b["text"].(map[string]any)
			s, _ := t["text"].(string)
			if (t["type"] != "mrkdwn" && t["type"] != "plain_text") || s == "" || utf8.RuneCountInString(s) > 3000 {
				return fmt.Errorf("block %d: section text %v (%d characters)", i, t["type"], utf8.RuneCountInString(s))
			}
		case "actions":
			els, _ := b["elements"].([]any)
			if len(els) == 0 || len(els) > 25 {
				return fmt.Errorf("block %d: %d elements", i, len(els))
			}
			for _, e := range els {
				el, _ := e.(map[string]any)
				txt, _ := el["text"].(map[string]any)
				label, _ := txt["text"].(string)
				id, _ := el["action_id"].(string)
				val, _ := el["value"].(string)
				if el["type"] != "button" || txt["type"] != "plain_text" || label == "" || utf8.RuneCountInString(label) > 75 ||
					id == "" || len(id) > 255 || len(val) > 2000 {
					return fmt.Errorf("block %d: bad button %v", i, el)
				}
				if st, ok := el["style"]; ok && st != "primary" && st != "danger" {
					return fmt.Errorf("block %d: style %v", i, st)
				}
			}
		default:
			return fmt.Errorf("block %d: unexpected type %v", i, b["type"])
		}
	}
	return nil
}

func (f *Fake) responseURL(w http.ResponseWriter, r *http.Request) {
	var m map[string]any
	if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&m) != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.replies = append(f.replies, m)
	f.mu.Unlock()
	_, _ = io.WriteString(w, "ok")
}

// Snapshot returns the messages posted, the updates made and the response_url replies so far.
func (f *Fake) Snapshot() (posts, updates []Message, replies []map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Message(nil), f.posts...), append([]Message(nil), f.updates...), append([]map[string]any(nil), f.replies...)
}

// Button finds the button with actionID in m.
func Button(m Message, actionID string) (map[string]any, bool) {
	for _, b := range m.Blocks {
		els, _ := b["elements"].([]any)
		for _, e := range els {
			if el, _ := e.(map[string]any); el["action_id"] == actionID {
				return el, true
			}
		}
	}
	return nil, false
}

// Click is the block_actions interaction Slack sends when user of team clicks the
// button actionID of message m.
func (f *Fake) Click(m Message, actionID, team, user string) []byte {
	f.t.Helper()
	el, ok := Button(m, actionID)
	if !ok {
		f.t.Fatalf("fake Slack: message %s has no %q button", m.TS, actionID)
	}
	p := map[string]any{
		"type":         "block_actions",
		"user":         map[string]any{"id": user, "username": strings.ToLower(user), "name": strings.ToLower(user), "team_id": team},
		"api_app_id":   "A0MCPGUARD",
		"token":        "verification-token-unused",
		"container":    map[string]any{"type": "message", "message_ts": m.TS, "channel_id": m.Channel, "is_ephemeral": false},
		"trigger_id":   "1234.5678.abcd",
		"team":         map[string]any{"id": team, "domain": "acme"},
		"enterprise":   nil,
		"channel":      map[string]any{"id": m.Channel, "name": "approvals"},
		"message":      map[string]any{"type": "message", "ts": m.TS, "text": m.Text, "blocks": m.Blocks, "bot_id": "B0BOT"},
		"state":        map[string]any{"values": map[string]any{}},
		"response_url": f.srv.URL + "/hooks/actions/" + team + "/1/" + strconv.FormatInt(time.Now().UnixNano(), 36),
		"actions": []any{map[string]any{
			"action_id": el["action_id"], "block_id": "decide", "text": el["text"], "value": el["value"],
			"style": el["style"], "type": "button", "action_ts": "1780000001.000200",
		}},
	}
	b, err := json.Marshal(p)
	if err != nil {
		f.t.Fatal(err)
	}
	return []byte("payload=" + url.QueryEscape(string(b)))
}

// Sign signs body as Slack does: X-Slack-Signature = "v0=" + hex(HMAC-SHA256(secret,
// "v0:" + timestamp + ":" + body)).
func Sign(req *http.Request, secret string, ts time.Time, body []byte) {
	s := strconv.FormatInt(ts.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("v0:" + s + ":"))
	m.Write(body)
	req.Header.Set("X-Slack-Request-Timestamp", s)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(m.Sum(nil)))
}
