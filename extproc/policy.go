package extproc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpguard/mcpguard/mcp"
	"github.com/mcpguard/mcpguard/policy"
)

// JSON-RPC error codes of policy refusals, outside the range JSON-RPC reserves
// (-32768..-32000) so agents can tell them from protocol errors and correct themselves.
const (
	// CodePolicyDenied: a rule denied the message; data carries rule and reason.
	CodePolicyDenied = -31003
	// CodeApprovalRequired: a rule requires approval and no approval flow is configured.
	CodeApprovalRequired = -31040
)

// Approver holds a message that policy requires approval for and returns the verdict once
// an approver decided (Pass to let it go upstream).
type Approver interface {
	OnApproval(ctx context.Context, x *Exchange, d policy.Decision) (Verdict, error)
}

// PolicySource yields the policy in force; [policy.Source] implements it.
type PolicySource interface {
	Current() *policy.Set
}

// Policy is the policy stage: it decides every client request and notification, filters
// tools/list results per identity and pins tool definitions per session.
type Policy struct {
	src      PolicySource
	store    policy.Store
	approver Approver

	decisions *prometheus.CounterVec
	changes   *prometheus.CounterVec
	withheld  prometheus.Counter
}

var (
	_ RequestStage  = (*Policy)(nil)
	_ ResponseStage = (*Policy)(nil)
	_ FragmentStage = (*Policy)(nil)
)

// NewPolicy returns the stage. approver may be nil: require_approval is then refused.
func NewPolicy(src PolicySource, store policy.Store, approver Approver, reg prometheus.Registerer) (*Policy, error) {
	if src == nil || store == nil || reg == nil {
		return nil, errors.New("policy stage: source, store and registerer are required")
	}
	p := &Policy{
		src: src, store: store, approver: approver,
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpguard_policy_decisions_total",
			Help: "Policy decisions by rule (default when no rule matched) and action.",
		}, []string{"rule", "action"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpguard_policy_tool_changes_total",
			Help: "Tool definitions that differ from the one pinned in the session, by resulting action.",
		}, []string{"action"}),
		withheld: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpguard_policy_oversize_withheld_total",
			Help: "Server-sent events over max_event_bytes withheld because policy had to read them (tools/list).",
		}),
	}
	for _, c := range []prometheus.Collector{p.decisions, p.changes, p.withheld} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register policy metrics: %w", err)
		}
	}
	return p, nil
}

// Name implements [Stage].
func (*Policy) Name() string { return "policy" }

// element is one decided message of the request body.
type element struct {
	id  json.RawMessage
	msg *mcp.Message
	d   policy.Decision
	in  policy.Input
}

// OnRequest decides every request and notification of the body. One denied element denies
// the whole body; the error lists each element's decision.
func (p *Policy) OnRequest(ctx context.Context, x *Exchange) (Verdict, error) {
	if x.Body == nil {
		return Pass, nil
	}
	set := p.src.Current()
	els := make([]element, 0, len(x.Body.Messages))
	for i := range x.Body.Messages {
		m := &x.Body.Messages[i]
		if m.Kind != mcp.KindRequest && m.Kind != mcp.KindNotification {
			continue // answers to server requests (sampling, elicitation) carry no method
		}
		// A member folding to a classified argument ("Query" for query) is read by upstreams
		// that decode case-insensitively; it is malformed input, refused even in observe mode.
		if err := set.CheckArguments(m); err != nil {
			return Verdict{Action: Deny, Err: &mcp.Error{Code: mcp.CodeInvalidParams, Message: "invalid params: " + err.Error()}}, nil
		}
		in, err := p.input(ctx, x, m)
		if err != nil {
			return Verdict{}, err
		}
		d := set.Decide(in)
		p.record(x, m, d)
		els = append(els, element{id: m.ID, msg: m, d: d, in: in})
	}
	var deny, hold *policy.Decision
	for i := range els {
		d := &els[i].d
		switch {
		case !d.Enforced():
		case d.Action == policy.Deny && deny == nil:
			deny = d
		case d.Action == policy.RequireApproval && hold == nil:
			hold = d
		case d.Action != policy.Deny && d.Action != policy.RequireApproval:
			deny = d // an unknown action is refused
		}
	}
	switch {
	case deny != nil:
		v := Verdict{Action: Deny, Err: refusal(CodePolicyDenied, deny, x.Body.Batch, els)}
		if deny.Reply == policy.ReplyToolError {
			ans, err := toolError(x, deny)
			if err != nil {
				return Verdict{}, err
			}
			v.Answer = ans
		}
		return v, nil
	case hold != nil && p.approver == nil:
		return Verdict{Action: Deny, Err: refusal(CodeApprovalRequired, hold, x.Body.Batch, els)}, nil
	case hold != nil:
		for _, e := range els {
			if e.d.Enforced() && e.d.Action == policy.RequireApproval {
				v, err := p.approve(ctx, x, set, e, els)
				if err != nil || v.Action != Continue {
					return v, err
				}
			}
		}
	}
	return Pass, nil
}

// maxRedecide bounds how often a held call is decided again because the policy changed
// while it was held.
const maxRedecide = 3

// approve asks the approver about e. An approval covers the policy version that asked for
// it: when the policy in force changed while the call was held, the current policy decides
// again, and a call it still holds needs an approval under the new version.
func (p *Policy) approve(ctx context.Context, x *Exchange, set *policy.Set, e element, els []element) (Verdict, error) {
	for range maxRedecide {
		v, err := p.approver.OnApproval(ctx, x, e.d)
		if err != nil {
			return Verdict{}, fmt.Errorf("approval: %w", err)
		}
		cur := p.src.Current()
		if v.Action != Continue || cur == set || cur.Version() == set.Version() {
			return v, nil
		}
		set = cur
		in := e.in
		in.Now = time.Now()
		e.d = set.Decide(in)
		x.Log.Info("policy changed while the call was held; decided again", "rule", ruleLabel(e.d.Rule),
			"action", string(e.d.Action), "policy_version", e.d.Version)
		x.AddNote(Note{Stage: "policy", Kind: "decision", Attrs: map[string]any{
			"rule": ruleLabel(e.d.Rule), "action": string(e.d.Action), "reason": e.d.Reason, "observe": e.d.DryRun,
			"redecided": true, "policy_version": e.d.Version,
		}})
		x.decided(e.msg, e.d)
		switch {
		case !e.d.Enforced():
			return Pass, nil
		case e.d.Action == policy.RequireApproval:
			continue
		default:
			return Verdict{Action: Deny, Err: refusal(CodePolicyDenied, &e.d, x.Body.Batch, els)}, nil
		}
	}
	return Verdict{Action: Deny, Err: &mcp.Error{
		Code:    CodeApprovalLapsed,
		Message: "the policy changed while the call was held; call again",
	}}, nil
}

// refusal is the JSON-RPC error for a denied or unapprovable body.
func refusal(code int, d *policy.Decision, batch bool, els []element) *mcp.Error {
	msg := d.Message
	if msg == "" {
		msg = "denied by policy"
	}
	if code == CodeApprovalRequired {
		msg = "approval required: " + msg
	}
	data := map[string]any{"rule": ruleLabel(d.Rule), "reason": d.Reason}
	if len(d.Approvers) > 0 {
		data["approvers"] = d.Approvers
	}
	if batch {
		list := make([]map[string]any, 0, len(els))
		for _, e := range els {
			list = append(list, map[string]any{
				"id": e.id, "action": string(e.d.Action), "rule": ruleLabel(e.d.Rule), "reason": e.d.Reason,
			})
		}
		data["elements"] = list
	}
	return &mcp.Error{Code: code, Message: msg, Data: data}
}

// toolError is the answer to a denied tools/call whose rule replies with a tool error: a
// result with isError and the rule's message, which clients hand to the model so it can
// correct its arguments. It is nil for anything but a single tools/call request (batches and
// other methods keep the JSON-RPC error, which every element or method understands).
func toolError(x *Exchange, d *policy.Decision) (json.RawMessage, error) {
	if x.Body == nil || x.Body.Batch || len(x.Body.Messages) != 1 {
		return nil, nil
	}
	m := &x.Body.Messages[0]
	if m.Kind != mcp.KindRequest || m.Method != "tools/call" {
		return nil, nil
	}
	text := d.Message
	if text == "" {
		text = "denied by policy"
	}
	type content struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	res := struct {
		Content    []content `json:"content"`
		IsError    bool      `json:"isError"`
		ResultType string    `json:"resultType,omitempty"`
	}{Content: []content{{"text", text}}, IsError: true}
	if x.Revision == mcp.Rev20260728 {
		res.ResultType = "complete" // required on every result from this revision on
	}
	out, err := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Result  any             `json:"result"`
	}{"2.0", m.ID, res})
	if err != nil {
		return nil, fmt.Errorf("encode tool error: %w", err)
	}
	return out, nil
}

func ruleLabel(r string) string {
	if r == "" {
		return "default"
	}
	return r
}

// sessionKey scopes session state: the MCP session, or the caller for stateless traffic.
func sessionKey(x *Exchange) string {
	if x.SessionID != "" {
		return "s\x00" + x.SessionID
	}
	return "i\x00" + x.Identity.Issuer + "\x00" + x.Identity.Subject
}

func (p *Policy) input(ctx context.Context, x *Exchange, m *mcp.Message) (policy.Input, error) {
	in := policy.Input{
		Identity: policy.Identity{
			Subject: x.Identity.Subject, ClientID: x.Identity.ClientID, Issuer: x.Identity.Issuer,
			Scopes: x.Identity.Scopes, Groups: x.Identity.Groups,
		},
		Msg: m, Revision: x.Revision, Headers: x.Headers, Now: time.Now(),
		Session: policy.Session{ID: x.SessionID},
	}
	if m.Method == "tools/call" {
		k := sessionKey(x)
		var err error
		if in.Session.Calls, err = p.store.Incr(ctx, k+"\x00calls"); err != nil {
			return in, fmt.Errorf("count calls: %w", err)
		}
		if in.Session.ToolCalls, err = p.store.Incr(ctx, k+"\x00calls\x00"+m.Tool); err != nil {
			return in, fmt.Errorf("count tool calls: %w", err)
		}
	}
	return in, nil
}

// record puts a decision on the metrics, the log and the exchange's notes.
func (p *Policy) record(x *Exchange, m *mcp.Message, d policy.Decision) {
	for _, o := range d.Observed {
		p.decisions.WithLabelValues(o.Rule, string(policy.Observe)).Inc()
		x.Log.Info("policy observation", "rule", o.Rule, "would", string(o.Would), "method", m.Method, "tool", m.Tool, "reason", o.Reason)
		x.AddNote(Note{Stage: "policy", Kind: "decision", Attrs: map[string]any{
			"rule": o.Rule, "action": string(o.Would), "reason": o.Reason, "observe": true,
		}})
	}
	p.decisions.WithLabelValues(ruleLabel(d.Rule), string(d.Action)).Inc()
	lvl := x.Log.Debug
	if d.Action != policy.Allow {
		lvl = x.Log.Info
	}
	lvl("policy decision", "rule", ruleLabel(d.Rule), "action", string(d.Action), "observe", d.DryRun,
		"method", m.Method, "tool", m.Tool, "reason", d.Reason)
	x.AddNote(Note{Stage: "policy", Kind: "decision", Attrs: map[string]any{
		"rule": ruleLabel(d.Rule), "action": string(d.Action), "reason": d.Reason, "observe": d.DryRun,
	}})
	x.decided(m, d)
}

// OnResponse filters tools/list results: tools the identity may not call are removed, tools
// whose definition changed since the session pinned them go through the policy as a
// tool_changed event, and on revisions with result caching a list that depends on the
// caller is marked private.
func (p *Policy) OnResponse(ctx context.Context, x *Exchange, r *Response) (Verdict, error) {
	req := p.requestFor(x, r.Msg)
	if req == nil && r.Msg.Kind == mcp.KindResult {
		// Not asked in this exchange: a 2024-11-05 answer on the GET stream (matched by the
		// session stage, by ids the client chose) or a replayed answer. A result shaped like
		// a tools/list result is filtered as one whatever it was matched to: an unfiltered
		// tool list must never reach the agent.
		req = r.Request
		if (req == nil || req.Method != "tools/list") && listsTools(r.Msg.Result) {
			req = &mcp.Message{Kind: mcp.KindRequest, ID: r.Msg.ID, Method: "tools/list"}
		}
	}
	if req == nil || req.Method != "tools/list" || r.Msg.Kind != mcp.KindResult {
		return Pass, nil
	}
	var res map[string]json.RawMessage
	if err := json.Unmarshal(r.Msg.Result, &res); err != nil {
		return Verdict{}, fmt.Errorf("decode tools/list result: %w", err)
	}
	var tools []json.RawMessage
	if err := json.Unmarshal(res["tools"], &tools); err != nil {
		return Verdict{}, fmt.Errorf("decode tools/list tools: %w", err)
	}
	if err := foldedTools(res, tools); err != nil {
		// A client that matches names case-insensitively (Go's encoding/json, and others)
		// could read a list or a definition the filter and the pins never saw.
		x.Log.Warn("tools/list result withheld", "err", err)
		return Verdict{Action: Deny, Err: internal("tools/list result withheld: ambiguous member names")}, nil
	}
	set := p.src.Current()
	base, err := p.input(ctx, x, req)
	if err != nil {
		return Verdict{}, err
	}
	kept := make([]json.RawMessage, 0, len(tools))
	for _, raw := range tools {
		var t struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(raw, &t); err != nil || t.Name == "" {
			x.Log.Warn("tools/list entry without a name withheld")
			continue
		}
		keep, err := p.visible(ctx, x, set, base, req, t.Name, raw)
		if err != nil {
			return Verdict{}, err
		}
		if keep {
			kept = append(kept, raw)
		}
	}
	// A list that depends on the caller must not be served to another caller from a cache.
	private := x.Revision == mcp.Rev20260728 && (len(kept) != len(tools) || set.PerIdentity())
	if len(kept) == len(tools) && !private {
		return Pass, nil
	}
	if res["tools"], err = json.Marshal(kept); err != nil {
		return Verdict{}, fmt.Errorf("encode tools: %w", err)
	}
	if private {
		res["cacheScope"] = json.RawMessage(`"private"`)
	}
	out, err := json.Marshal(struct {
		JSONRPC string                     `json:"jsonrpc"`
		ID      json.RawMessage            `json:"id"`
		Result  map[string]json.RawMessage `json:"result"`
	}{"2.0", r.Msg.ID, res})
	if err != nil {
		return Verdict{}, fmt.Errorf("encode tools/list result: %w", err)
	}
	return Verdict{Action: Replace, Message: out}, nil
}

// visible decides whether one listed tool stays: the identity may call it (rules that
// cannot be evaluated without arguments do not hide it) and its definition is the pinned one
// or the policy lets the change pass.
func (p *Policy) visible(ctx context.Context, x *Exchange, set *policy.Set, base policy.Input, req *mcp.Message, name string, raw json.RawMessage) (bool, error) {
	call := base
	call.Msg = &mcp.Message{Kind: mcp.KindRequest, Method: "tools/call", Tool: name}
	call.Listing = true
	if d := set.Decide(call); d.Enforced() && d.Action == policy.Deny {
		return false, nil
	}
	fp, err := policy.Fingerprint(raw)
	if err != nil {
		return false, fmt.Errorf("fingerprint tool: %w", err)
	}
	pinned, err := p.store.Pin(ctx, sessionKey(x)+"\x00pin\x00"+name, fp)
	if err != nil {
		return false, fmt.Errorf("pin tool: %w", err)
	}
	if pinned == fp {
		return true, nil
	}
	ev := base
	ev.Event = &policy.Event{Kind: "tool_changed", Tool: name}
	d := set.Decide(ev)
	p.record(x, req, d)
	p.changes.WithLabelValues(string(d.Action)).Inc()
	x.Log.Warn("tool definition changed since first listed in this session", "tool", name,
		"rule", ruleLabel(d.Rule), "action", string(d.Action), "observe", d.DryRun)
	return !d.Enforced(), nil
}

// requestFor finds the request of this exchange that m answers.
func (p *Policy) requestFor(x *Exchange, m *mcp.Message) *mcp.Message {
	if x.Body == nil || len(m.ID) == 0 {
		return nil
	}
	for i := range x.Body.Messages {
		q := &x.Body.Messages[i]
		if q.Kind == mcp.KindRequest && bytes.Equal(q.ID, m.ID) {
			return q
		}
	}
	return nil
}

// Fragments implements [FragmentStage]. An event too large to parse passes unchanged unless
// the exchange asked for something policy has to read in the answer (tools/list: visibility
// per identity and tool pinning). Then the event is withheld and the client gets a JSON-RPC
// error for each such request instead: an unfiltered tool list must never reach the agent.
func (p *Policy) Fragments(x *Exchange) Filter {
	var ids []json.RawMessage
	if x.Body != nil {
		for _, m := range x.Body.Messages {
			if m.Kind == mcp.KindRequest && m.Method == "tools/list" {
				ids = append(ids, m.ID)
			}
		}
	}
	if x.toolsLists != nil {
		// A 2024-11-05 GET stream carries the answers to the session's POSTs: withhold when
		// a tools/list is pending or when this replica cannot know (see correlations).
		pend, known := x.toolsLists()
		ids = append(ids, pend...)
		if !known && len(ids) == 0 {
			return &withholdFilter{p: p, x: x}
		}
	}
	if len(ids) == 0 {
		return passFilter{}
	}
	return &withholdFilter{p: p, x: x, ids: ids}
}

// passFilter lets an oversized event through as it arrives.
type passFilter struct{}

func (passFilter) Write(b []byte) []byte { return b }
func (passFilter) Close() []byte         { return nil }

// withholdFilter drops an oversized event policy cannot read and answers its requests with
// errors once the event is over.
type withholdFilter struct {
	p   *Policy
	x   *Exchange
	ids []json.RawMessage
	n   int
}

func (f *withholdFilter) Write(b []byte) []byte {
	f.n += len(b)
	return nil
}

func (f *withholdFilter) Close() []byte {
	f.p.withheld.Inc()
	f.x.Log.Warn("server-sent event over max_event_bytes may carry a tools/list result policy must filter; withheld", "bytes", f.n)
	f.x.AddNote(Note{Stage: "policy", Kind: "withheld", Attrs: map[string]any{"reason": "oversize_event", "bytes": f.n}})
	var out []byte
	for _, id := range f.ids {
		ev := mcp.Event{Name: "message", Data: mcp.ErrorResponse(id, internal("tools/list result too large to inspect"))}
		out = append(out, ev.Encode()...)
	}
	return out
}

// foldedTools reports a tools/list result whose member names are ambiguous to a client that
// matches them case-insensitively: a member of the result that folds to "tools" without
// being it, or a tool definition with two members that fold to the same name. (Exact
// duplicates are refused by the parser.)
func foldedTools(res map[string]json.RawMessage, tools []json.RawMessage) error {
	for k := range res {
		if k != "tools" && strings.EqualFold(k, "tools") {
			return errors.New("a result member folds to tools")
		}
	}
	for i, raw := range tools {
		var t map[string]json.RawMessage
		if json.Unmarshal(raw, &t) != nil {
			continue // not an object: withheld as an entry without a name
		}
		keys := make([]string, 0, len(t))
		for k := range t {
			for _, o := range keys {
				if strings.EqualFold(k, o) {
					return fmt.Errorf("tool %d has members whose names fold together", i)
				}
			}
			keys = append(keys, k)
		}
	}
	return nil
}
