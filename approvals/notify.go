package approvals

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/slack-go/slack"
)

// Webhooks delivers events to the configured webhooks. Each hook has its own bounded
// queue and worker with retries (see [NotifyConfig]), so a slow or failing endpoint delays
// no other; a full queue drops the notification and counts it: approvers still see the
// request on the page and in the API.
type Webhooks struct {
	hooks []*webhook
}

type webhook struct {
	cfg    WebhookConfig
	secret []byte
	link   func(id string) string
	client *http.Client
	out    *outbox
	now    func() time.Time
}

var _ Notifier = (*Webhooks)(nil)

// Headers of a signed ("json") webhook delivery.
const (
	// HeaderTimestamp is the Unix time (seconds) of the attempt.
	HeaderTimestamp = "X-Mcpguard-Timestamp"
	// HeaderSignature is "v1=" and the hex HMAC-SHA256, keyed with the hook's secret, of
	// the timestamp, a ".", and the body.
	HeaderSignature = "X-Mcpguard-Signature"
	// HeaderEvent is the event type: requested or decided.
	HeaderEvent = "X-Mcpguard-Event"
)

// NewWebhooks returns the notifier; link builds the approve URL of a request (use
// [Service.Link]). It reads each hook's secret file. Call Run to deliver. A nil client uses
// http.DefaultTransport; each attempt is bounded by cfg.Timeout.
func NewWebhooks(cfg NotifyConfig, link func(string) string, client *http.Client, log *slog.Logger, reg prometheus.Registerer) (*Webhooks, error) {
	if reg == nil {
		return nil, errors.New("webhooks: a prometheus registerer is required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if client == nil {
		client = &http.Client{}
	}
	met, err := notifyMetrics(reg)
	if err != nil {
		return nil, err
	}
	w := &Webhooks{}
	for i, h := range cfg.Webhooks {
		wh := &webhook{
			cfg: h, link: link, client: client, now: time.Now,
			out: newOutbox(h.hookName(i), cfg, met, log),
		}
		if h.SecretFile != "" {
			if wh.secret, err = readSecret(h.SecretFile); err != nil {
				return nil, fmt.Errorf("notify.webhooks[%d].secret_file: %w", i, err)
			}
		}
		w.hooks = append(w.hooks, wh)
	}
	return w, nil
}

// Notify implements [Notifier]; it never blocks.
func (w *Webhooks) Notify(e Event) {
	for _, h := range w.hooks {
		h.out.offer(delivery{id: e.Request.ID, event: string(e.Type), send: func(ctx context.Context) error {
			return h.send(ctx, e)
		}})
	}
}

// Run delivers queued notifications, one worker per hook, until ctx ends.
func (w *Webhooks) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, h := range w.hooks {
		wg.Go(func() { h.out.run(ctx) })
	}
	wg.Wait()
}

// send makes one attempt; the signature is made per attempt, over a fresh timestamp.
func (h *webhook) send(ctx context.Context, e Event) error {
	body, err := Payload(h.cfg.Format, e, h.link(e.Request.ID))
	if err != nil {
		return permanent(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return permanent(fmt.Errorf("build webhook request: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	if h.secret != nil {
		ts := strconv.FormatInt(h.now().Unix(), 10)
		req.Header.Set(HeaderTimestamp, ts)
		req.Header.Set(HeaderSignature, Sign(h.secret, ts, body))
		req.Header.Set(HeaderEvent, string(e.Type))
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return fmt.Errorf("post webhook: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("webhook answered %d", resp.StatusCode)
	default:
		return permanent(fmt.Errorf("webhook answered %d", resp.StatusCode))
	}
}

// Sign is the [HeaderSignature] value of body sent at timestamp ts with secret:
// "v1=" + hex(HMAC-SHA256(secret, ts + "." + body)).
func Sign(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// Payload renders a notification: "json" is the generic document (the request as the API
// shows it, complete, with the event and, once decided, its outcome), "slack" a Slack
// message (the facts, every parameter made visible, a button to the approve link, and
// once decided who decided and when).
func Payload(format string, e Event, link string) ([]byte, error) {
	r := e.Request
	switch format {
	case "json":
		doc := map[string]any{
			"id": r.ID + ":" + string(e.Type), "type": "approval_" + string(e.Type), "event": e.Type,
			"approve_url": link, "approval": view(r),
		}
		if e.Type == EventDecided {
			doc["outcome"] = r.State
		}
		return json.Marshal(doc)
	case "slack":
		text, blocks := slackMessage(r, link, false)
		return json.Marshal(slack.WebhookMessage{Text: text, Blocks: &slack.Blocks{BlockSet: blocks}})
	}
	return nil, fmt.Errorf("unknown webhook format %q", format)
}

func slackSummary(r Request, link string) string {
	return fmt.Sprintf("*Approval needed* for `%s` requested by %s (rule %s). Approve or deny: %s",
		slackEscape(r.Tool), slackEscape(r.Requester.Subject), slackEscape(r.Rule), link)
}

// slackOutcome says how a request that is no longer pending ended, and by whom.
func slackOutcome(r Request) string {
	var s string
	switch r.State {
	case Approved, Consumed:
		s = ":white_check_mark: *Approved*"
	case Denied:
		s = ":x: *Denied*"
	case Expired:
		return fmt.Sprintf(":hourglass: *Expired* undecided at %s", r.ExpiresAt.UTC().Format(time.RFC3339))
	default:
		return ""
	}
	if d := r.Decision; d != nil {
		by := d.By.Subject
		if d.By.ClientID != "" {
			by += " (client " + d.By.ClientID + ")"
		}
		s += fmt.Sprintf(" by %s at %s", slackEscape(by), d.At.UTC().Format(time.RFC3339))
		if d.Reason != "" {
			s += ": " + slackEscape(d.Reason)
		}
	}
	return s + fmt.Sprintf(" — `%s` requested by %s", slackEscape(r.Tool), slackEscape(r.Requester.Subject))
}

// Slack limits: a section's text is at most 3000 characters, a message at most 50 blocks.
const (
	slackText      = 2900
	slackMaxBlocks = 45
)

// Action IDs of the Slack buttons; the button's value is the request ID.
const (
	slackApprove = "approve"
	slackDeny    = "deny"
	slackReview  = "review"
)

// slackMessage lays out r as Block Kit: its state (once decided: who and when), the rule's
// message, the facts, then every parameter in full across as many sections as it takes.
// What does not fit in Slack's block limit is said to be on the page, never dropped without
// a word. A pending request gets Approve and Deny buttons when buttons is set (the Slack
// app), and always a link to the page.
func slackMessage(r Request, link string, buttons bool) (string, []slack.Block) {
	section := func(text string) slack.Block {
		return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
	}
	summary := slackSummary(r, link)
	if out := slackOutcome(r); out != "" {
		summary = out
	}
	blocks := []slack.Block{section(summary)}
	if r.Message != "" {
		blocks = append(blocks, section("> "+slackEscape(r.Message)))
	}
	facts := fmt.Sprintf("*Tool:* %s\n*Rule:* %s\n*Requester:* %s (client %s)\n*Issuer:* %s\n*Groups:* %s\n"+
		"*MCP server:* %s%s\n*Session:* %s\n*Policy version:* %s\n*Approver groups:* %s\n*Requested:* %s\n*Expires:* %s\n*Request:* %s",
		r.Tool, r.Rule, r.Requester.Subject, orNone(r.Requester.ClientID), r.Requester.Issuer,
		orNone(strings.Join(r.Requester.Groups, ", ")), orNone(r.Route.Authority), r.Route.Path, orNone(r.SessionID),
		orNone(r.PolicyVersion), strings.Join(r.Approvers, ", "), r.CreatedAt.UTC().Format(time.RFC3339),
		r.ExpiresAt.UTC().Format(time.RFC3339), r.ID)
	if r.Reason != "" {
		facts += "\n*Why held:* " + r.Reason
	}
	for _, c := range slackChunks(slackEscape(facts)) {
		blocks = append(blocks, section(c))
	}
	var text strings.Builder
	for _, f := range shownFields(r) {
		text.WriteString("params" + f.Path + " = " + f.Value + "\n")
	}
	chunks := slackChunks(slackEscape(text.String()))
	room := slackMaxBlocks - len(blocks)
	for i, c := range chunks {
		if i >= room {
			rest := 0
			for _, c := range chunks[i:] {
				rest += utf8.RuneCountInString(c)
			}
			blocks = append(blocks, section(fmt.Sprintf("_%d more characters of parameters: see the approvals page._", rest)))
			break
		}
		blocks = append(blocks, section("```"+c+"```"))
	}
	review := slack.NewButtonBlockElement(slackReview, r.ID, slack.NewTextBlockObject(slack.PlainTextType, "Review on the page", false, false))
	review.URL = link
	elems := []slack.BlockElement{review}
	if buttons && r.State == Pending {
		approve := slack.NewButtonBlockElement(slackApprove, r.ID, slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false)).
			WithStyle(slack.StylePrimary)
		approve.Confirm = slack.NewConfirmationBlockObject(
			slack.NewTextBlockObject(slack.PlainTextType, "Approve this call?", false, false),
			slack.NewTextBlockObject(slack.MarkdownType, fmt.Sprintf("`%s` requested by %s runs with the parameters shown.", slackEscape(r.Tool), slackEscape(r.Requester.Subject)), false, false),
			slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false),
			slack.NewTextBlockObject(slack.PlainTextType, "Cancel", false, false))
		deny := slack.NewButtonBlockElement(slackDeny, r.ID, slack.NewTextBlockObject(slack.PlainTextType, "Deny", false, false)).
			WithStyle(slack.StyleDanger)
		elems = []slack.BlockElement{approve, deny, review}
	}
	blocks = append(blocks, slack.NewActionBlock("decide", elems...))
	return summary, blocks
}

// slackChunks cuts escaped mrkdwn text into pieces that fit a section, on rune boundaries
// and never inside an escape (&amp; &lt; &gt;).
func slackChunks(s string) []string {
	var out []string
	for s != "" {
		n := min(len(s), slackText)
		for n < len(s) && !utf8.RuneStart(s[n]) {
			n--
		}
		if amp := strings.LastIndexByte(s[:n], '&'); n < len(s) && amp >= 0 && amp > n-5 && !strings.Contains(s[amp:n], ";") {
			n = amp
		}
		out = append(out, s[:n])
		s = s[n:]
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// slackEscape escapes the characters Slack's mrkdwn treats as control sequences.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
