package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/slack-go/slack"

	"github.com/mcpguard/mcpguard/identity"
)

// maxSlackBody bounds an interactivity request. Slack echoes the whole message in it, and
// ours carry every parameter (up to 45 sections of 3000 characters, form-encoded).
const maxSlackBody = 1 << 20

// slackApp posts each request to a Slack channel with Approve and Deny buttons, updates
// the message when the request ends (decided anywhere, or expired), and takes decisions
// from the buttons through Slack's interactivity requests, verified with the app's signing
// secret. Deliveries go through its own [outbox].
type slackApp struct {
	s       *Service
	cfg     SlackConfig
	api     *slack.Client
	http    *http.Client
	signing string
	users   map[[2]string]SlackUser
	out     *outbox
}

var _ Notifier = (*slackApp)(nil)

func newSlackApp(s *Service, reg prometheus.Registerer) (*slackApp, error) {
	c := s.cfg.Slack
	token, err := readSecret(c.BotTokenFile)
	if err != nil {
		return nil, fmt.Errorf("slack.bot_token_file: %w", err)
	}
	signing, err := readSecret(c.SigningSecretFile)
	if err != nil {
		return nil, fmt.Errorf("slack.signing_secret_file: %w", err)
	}
	met, err := notifyMetrics(reg)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{}
	a := &slackApp{
		s: s, cfg: c, http: hc, signing: string(signing), users: map[[2]string]SlackUser{},
		api: slack.New(string(token), slack.OptionAPIURL(c.APIURL), slack.OptionHTTPClient(hc)),
		out: newOutbox(hookSlack, s.cfg.Notify, met, s.log.With("component", "slack")),
	}
	for _, u := range c.Users {
		a.users[[2]string{u.TeamID, u.UserID}] = u
	}
	return a, nil
}

// Notify implements [Notifier]: a new request is posted, an ended one updated.
func (a *slackApp) Notify(e Event) {
	id := e.Request.ID
	switch e.Type {
	case EventRequested:
		var posted *SlackMessage
		a.out.offer(delivery{id: id, event: "post", send: func(ctx context.Context) error {
			var err error
			posted, err = a.post(ctx, e.Request, posted)
			return err
		}})
	case EventDecided:
		a.out.offer(delivery{id: id, event: "update", send: func(ctx context.Context) error {
			r, err := a.s.store.Get(ctx, id)
			if err != nil {
				return fmt.Errorf("read approval: %w", err)
			}
			if r.Slack == nil {
				// Not posted yet (or posted by a replica that has not recorded it): the
				// poster sees the request ended when it records the message, and updates it.
				return nil
			}
			return a.update(ctx, r)
		}})
	}
}

// post posts r (unless an earlier attempt did: posted) and records the message on the
// request. If the request ended in the meantime, the message is updated at once, so a
// decision made before the message was recorded still shows.
func (a *slackApp) post(ctx context.Context, r Request, posted *SlackMessage) (*SlackMessage, error) {
	if posted == nil {
		text, blocks := slackMessage(r, a.s.Link(r.ID), true)
		ch, ts, err := a.api.PostMessageContext(ctx, a.cfg.Channel, slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...))
		if err != nil {
			return nil, slackError("chat.postMessage", err)
		}
		posted = &SlackMessage{Channel: ch, TS: ts}
	}
	var now Request
	_, err := a.s.store.Update(ctx, r.ID, func(q *Request) error {
		q.Slack = posted
		now = *q
		return nil
	})
	if err != nil {
		return posted, fmt.Errorf("record slack message: %w", err)
	}
	if now.Effective(a.s.now()) != Pending {
		now.State = now.Effective(a.s.now())
		return posted, a.update(ctx, now)
	}
	return posted, nil
}

// update replaces the message of r with its current state, without buttons.
func (a *slackApp) update(ctx context.Context, r Request) error {
	text, blocks := slackMessage(r, a.s.Link(r.ID), true)
	_, _, _, err := a.api.UpdateMessageContext(ctx, r.Slack.Channel, r.Slack.TS, slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...))
	if err != nil {
		return slackError("chat.update", err)
	}
	return nil
}

// slackError tells retryable failures (rate limits, 5xx, transport) from ones another
// attempt cannot fix (Slack's ok:false answers such as invalid_auth or channel_not_found).
func slackError(method string, err error) error {
	err = fmt.Errorf("slack %s: %w", method, err)
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout":
			return err
		}
		return permanent(err)
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) && sc.Code < 500 && sc.Code != http.StatusTooManyRequests {
		return permanent(err)
	}
	return err
}

// slackAction is a verified button click.
type slackAction struct {
	// Review is a click on the link to the page: Slack reports it too, and it only needs
	// an acknowledgement.
	Review      bool
	Approve     bool
	RequestID   string
	TeamID      string
	UserID      string
	ResponseURL string
}

// parseSlackAction parses an interactivity request body: a form with exactly one field,
// payload, holding a block_actions interaction with exactly one of our buttons. Anything
// else is an error.
func parseSlackAction(contentType string, body []byte) (slackAction, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return slackAction{}, errors.New("content type is not a form")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return slackAction{}, fmt.Errorf("parse form: %w", err)
	}
	if len(form) != 1 || len(form["payload"]) != 1 {
		return slackAction{}, errors.New("form must hold exactly one payload")
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(form["payload"][0]), &cb); err != nil {
		return slackAction{}, fmt.Errorf("parse payload: %w", err)
	}
	if cb.Type != slack.InteractionTypeBlockActions {
		return slackAction{}, fmt.Errorf("interaction type %q is not block_actions", cb.Type)
	}
	acts := cb.ActionCallback.BlockActions
	if len(acts) != 1 || len(cb.ActionCallback.AttachmentActions) != 0 {
		return slackAction{}, errors.New("payload must hold exactly one block action")
	}
	act := acts[0]
	out := slackAction{RequestID: act.Value, TeamID: cb.Team.ID, UserID: cb.User.ID, ResponseURL: cb.ResponseURL}
	switch act.ActionID {
	case slackApprove:
		out.Approve = true
	case slackDeny:
	case slackReview:
		out.Review = true
	default:
		return slackAction{}, fmt.Errorf("unknown action %q", act.ActionID)
	}
	if !requestID(out.RequestID) {
		return slackAction{}, errors.New("action value is not a request id")
	}
	if !slackID(out.TeamID) || !slackID(out.UserID) {
		return slackAction{}, errors.New("payload lacks a valid team and user id")
	}
	if cb.User.TeamID != "" && cb.User.TeamID != out.TeamID {
		return slackAction{}, errors.New("user's team differs from the payload's team")
	}
	return out, nil
}

// requestID reports a plausible request id: [rand.Text] output, 26 base32 characters.
func requestID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if (c < 'A' || c > 'Z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// actions serves Slack's interactivity requests (POST {public path}/slack/actions). The
// signature is checked over the raw body before anything in it is read; decisions then
// follow the same rules as the API (approver group, not one's own call, still pending).
// Refusals go back to the clicker as ephemeral messages through the click's response_url.
func (a *slackApp) actions(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSlackBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "request too large")
			return
		}
		writeError(w, http.StatusBadRequest, "unreadable request")
		return
	}
	sv, err := slack.NewSecretsVerifier(r.Header, a.signing)
	if err == nil {
		_, _ = sv.Write(body)
		err = sv.Ensure()
	}
	if err != nil {
		a.s.log.Warn("slack request refused: signature", "err", err.Error())
		writeError(w, http.StatusUnauthorized, "invalid signature")
		return
	}
	act, err := parseSlackAction(r.Header.Get("Content-Type"), body)
	if err != nil {
		a.s.log.Warn("slack request refused: payload", "err", err.Error())
		writeError(w, http.StatusBadRequest, "unsupported interaction")
		return
	}
	w.WriteHeader(http.StatusOK)
	if act.Review {
		return
	}
	u, ok := a.users[[2]string{act.TeamID, act.UserID}]
	if !ok {
		a.s.log.Warn("slack click refused: user not mapped to an approver", "slack_team", act.TeamID, "slack_user", act.UserID, "approval_id", act.RequestID)
		a.reply(act, "You are not mapped to an approver identity in mcpguard (approvals.slack.users), so you cannot decide approvals from Slack.")
		return
	}
	issuer := u.Issuer
	if issuer == "" {
		issuer = "slack:" + u.TeamID
	}
	who := identity.Identity{Subject: u.Subject, Issuer: issuer, ClientID: "slack", Groups: u.Groups}
	reason := ""
	if !act.Approve {
		reason = "denied in Slack"
	}
	_, err = a.s.Decide(r.Context(), act.RequestID, who, act.Approve, reason)
	switch {
	case err == nil:
		// The message is updated through the decided event, like a decision made elsewhere.
	case errors.Is(err, ErrNotFound):
		a.reply(act, "This approval request does not exist (any more).")
	case errors.Is(err, ErrForbidden):
		a.reply(act, "You cannot decide this request: "+strings.TrimPrefix(err.Error(), "decide approval "+act.RequestID+": "+ErrForbidden.Error()+": ")+".")
	case errors.Is(err, ErrConflict):
		a.reply(act, "This request is no longer pending: it was already decided or it expired.")
	default:
		a.s.log.Error("slack decision failed", "approval_id", act.RequestID, "err", err.Error())
		a.reply(act, "mcpguard could not record the decision; try again or use the approvals page.")
	}
}

// reply queues an ephemeral message to the clicker, if the click came with a response_url
// under the configured prefix (a signed request still never makes us post elsewhere).
func (a *slackApp) reply(act slackAction, text string) {
	if act.ResponseURL == "" || !strings.HasPrefix(act.ResponseURL, a.cfg.ResponseURLPrefix) {
		return
	}
	msg := &slack.WebhookMessage{ResponseType: slack.ResponseTypeEphemeral, ReplaceOriginal: false, Text: text}
	a.out.offer(delivery{id: act.RequestID, event: "reply", send: func(ctx context.Context) error {
		if err := slack.PostWebhookCustomHTTPContext(ctx, act.ResponseURL, a.http, msg); err != nil {
			return fmt.Errorf("slack response_url: %w", err)
		}
		return nil
	}})
}

// SlackRoutes returns Slack's interactivity endpoint for the admin port, keyed by ServeMux
// pattern, or nothing when Slack is not configured. Its URL is Config.PublicURL followed
// by /slack/actions.
func (s *Service) SlackRoutes() map[string]http.Handler {
	if s.slack == nil {
		return nil
	}
	return map[string]http.Handler{"POST /approvals/slack/actions": http.HandlerFunc(s.slack.actions)}
}
