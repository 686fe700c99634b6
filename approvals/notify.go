package approvals

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// Webhooks delivers new requests to the configured webhooks from a bounded queue, retrying
// with exponential backoff. A full queue drops the notification and counts it: approvers
// still see the request on the page and in the API.
type Webhooks struct {
	cfg    NotifyConfig
	link   func(id string) string
	client *http.Client
	log    *slog.Logger
	q      chan Request
	sent   *prometheus.CounterVec
}

var _ Notifier = (*Webhooks)(nil)

// NewWebhooks returns the notifier; link builds the approve URL of a request (use
// [Service.Link]). Call Run to deliver. A nil client uses one with cfg.Timeout.
func NewWebhooks(cfg NotifyConfig, link func(string) string, client *http.Client, log *slog.Logger, reg prometheus.Registerer) (*Webhooks, error) {
	if reg == nil {
		return nil, errors.New("webhooks: a prometheus registerer is required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if client == nil {
		client = &http.Client{Timeout: cfg.Timeout}
	}
	w := &Webhooks{
		cfg: cfg, link: link, client: client, log: log, q: make(chan Request, cfg.QueueSize),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpguard_approvals_notifications_total",
			Help: "Webhook notifications by result: sent, failed (after all attempts), dropped (queue full).",
		}, []string{"result"}),
	}
	if err := reg.Register(w.sent); err != nil {
		return nil, fmt.Errorf("register webhook metrics: %w", err)
	}
	return w, nil
}

// Notify implements [Notifier]; it never blocks.
func (w *Webhooks) Notify(r Request) {
	if len(w.cfg.Webhooks) == 0 {
		return
	}
	select {
	case w.q <- r:
	default:
		w.sent.WithLabelValues("dropped").Inc()
		w.log.Warn("approval notification dropped: queue full", "approval_id", r.ID)
	}
}

// Run delivers queued notifications until ctx ends.
func (w *Webhooks) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-w.q:
			for _, h := range w.cfg.Webhooks {
				w.deliver(ctx, h, r)
			}
		}
	}
}

func (w *Webhooks) deliver(ctx context.Context, h WebhookConfig, r Request) {
	body, err := Payload(h.Format, r, w.link(r.ID))
	if err != nil {
		w.sent.WithLabelValues("failed").Inc()
		w.log.Error("approval notification not encoded", "approval_id", r.ID, "err", err.Error())
		return
	}
	wait := w.cfg.Backoff
	for attempt := 1; ; attempt++ {
		retry, err := w.post(ctx, h.URL, body)
		if err == nil {
			w.sent.WithLabelValues("sent").Inc()
			w.log.Info("approval notification sent", "approval_id", r.ID, "format", h.Format, "attempt", attempt)
			return
		}
		if !retry || attempt >= w.cfg.Attempts {
			w.sent.WithLabelValues("failed").Inc()
			w.log.Warn("approval notification failed", "approval_id", r.ID, "format", h.Format, "attempts", attempt, "err", err.Error())
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait *= 2
	}
}

// post sends one attempt; retry reports whether another attempt may succeed.
func (w *Webhooks) post(ctx context.Context, u string, body []byte) (retry bool, _ error) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("build webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		return true, fmt.Errorf("post webhook: %w", err)
	}
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("webhook answered %d", resp.StatusCode)
	default:
		return false, fmt.Errorf("webhook answered %d", resp.StatusCode)
	}
}

// Payload renders a notification: "json" is the generic document (the request as the API
// shows it, complete), "slack" a Slack incoming-webhook message (the facts, every parameter
// made visible, and a button to the approve link).
func Payload(format string, r Request, link string) ([]byte, error) {
	switch format {
	case "json":
		return json.Marshal(map[string]any{
			"type": "approval_requested", "approve_url": link, "approval": view(r),
		})
	case "slack":
		return json.Marshal(map[string]any{"text": slackSummary(r, link), "blocks": slackBlocks(r, link)})
	}
	return nil, fmt.Errorf("unknown webhook format %q", format)
}

func slackSummary(r Request, link string) string {
	return fmt.Sprintf("*Approval needed* for `%s` requested by %s (rule %s). Approve or deny: %s",
		slackEscape(r.Tool), slackEscape(r.Requester.Subject), slackEscape(r.Rule), link)
}

// Slack limits: a section's text is at most 3000 characters, a message at most 50 blocks.
const (
	slackText      = 2900
	slackMaxBlocks = 45
)

// slackBlocks lays out the request: summary, the rule's message, the facts, then every
// parameter in full across as many sections as it takes. What does not fit in Slack's block
// limit is said to be on the page, never dropped without a word.
func slackBlocks(r Request, link string) []any {
	section := func(text string) any {
		return map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": text}}
	}
	blocks := []any{section(slackSummary(r, link))}
	if r.Message != "" {
		blocks = append(blocks, section("> "+slackEscape(r.Message)))
	}
	facts := fmt.Sprintf("*Requester:* %s (client %s, issuer %s)\n*Groups:* %s\n*MCP server:* %s%s\n*Session:* %s\n*Policy version:* %s\n*Expires:* %s",
		r.Requester.Subject, orNone(r.Requester.ClientID), r.Requester.Issuer, orNone(strings.Join(r.Requester.Groups, ", ")),
		r.Route.Authority, r.Route.Path, orNone(r.SessionID), orNone(r.PolicyVersion), r.ExpiresAt.UTC().Format(time.RFC3339))
	if r.Reason != "" {
		facts += "\n*Why held:* " + r.Reason
	}
	blocks = append(blocks, section(slackEscape(facts)))
	var text strings.Builder
	for _, f := range shownFields(r) {
		text.WriteString("params" + f.Path + " = " + f.Value + "\n")
	}
	rest := slackEscape(text.String())
	for rest != "" && len(blocks) < slackMaxBlocks {
		n := min(len(rest), slackText)
		for n < len(rest) && !utf8.RuneStart(rest[n]) {
			n--
		}
		blocks = append(blocks, section("```"+rest[:n]+"```"))
		rest = rest[n:]
	}
	if rest != "" {
		blocks = append(blocks, section(fmt.Sprintf("_%d more characters of parameters: see the approvals page._", utf8.RuneCountInString(rest))))
	}
	return append(blocks, map[string]any{"type": "actions", "elements": []any{map[string]any{
		"type": "button", "text": map[string]any{"type": "plain_text", "text": "Review"}, "url": link,
	}}})
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
