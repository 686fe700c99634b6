package app

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mcpguard/mcpguard/internal/yamlx"
	"github.com/mcpguard/mcpguard/mcp"
	"github.com/mcpguard/mcpguard/policy"
)

const policyUsage = `Usage:
  mcpguard policy test POLICY CASES.yaml
      decide every case (identity, JSON-RPC message, expected action); prints a table and
      exits 1 on any mismatch
  mcpguard policy replay DRAFT.yaml [--since 7d] [--until T] [--identity ID] [--tool NAME] [--config FILE]
      re-decide the recorded requests with a draft policy; report every decision that would
      change, per rule and per identity, with request ids
  mcpguard policy explain POLICY --message FILE [--sub S] [--client-id C] [--groups a,b] [--scopes x,y]
                          [--revision R] [--now RFC3339] [--event KIND --event-tool T] [--listing]
      show which rules matched a message and why
Cases set name, expect, message, identity {subject, client_id, issuer, scopes, groups},
revision, headers, session {id, calls, tool_calls}, event {kind, tool}, listing, now.
`

func policyCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (isHelp(args[0]) || args[0] == "test" && wantsHelp(args[1:])) {
		fmt.Fprint(stdout, policyUsage)
		return nil
	}
	if len(args) > 1 && args[0] == "explain" && wantsHelp(args[1:2]) {
		return policyExplain("", args[1:], stdout, stderr)
	}
	if len(args) < 2 || strings.HasPrefix(args[1], "-") {
		fmt.Fprint(stderr, policyUsage)
		return ErrUsage
	}
	switch args[0] {
	case "test":
		if len(args) != 3 {
			fmt.Fprint(stderr, policyUsage)
			return ErrUsage
		}
		return policyTest(args[1], args[2], stdout, stderr)
	case "explain":
		return policyExplain(args[1], args[2:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "mcpguard policy: unknown subcommand %q\n\n%s", args[0], policyUsage)
		return ErrUsage
	}
}

func loadPolicy(path string, stderr io.Writer) (*policy.Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	set, err := policy.Compile(data)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid\n", path)
		for line := range strings.SplitSeq(err.Error(), "\n") {
			fmt.Fprintf(stderr, "  %s\n", line)
		}
		return nil, errors.New("policy has problems")
	}
	return set, nil
}

// policyCase is one entry of a CASES.yaml file.
type policyCase struct {
	Name     string `yaml:"name"`
	Identity struct {
		Subject  string   `yaml:"subject"`
		ClientID string   `yaml:"client_id"`
		Issuer   string   `yaml:"issuer"`
		Scopes   []string `yaml:"scopes"`
		Groups   []string `yaml:"groups"`
	} `yaml:"identity"`
	// Message is the JSON-RPC message, as a JSON string or as YAML.
	Message  yaml.Node         `yaml:"message"`
	Revision string            `yaml:"revision"`
	Headers  map[string]string `yaml:"headers"`
	Session  struct {
		ID        string `yaml:"id"`
		Calls     int64  `yaml:"calls"`
		ToolCalls int64  `yaml:"tool_calls"`
	} `yaml:"session"`
	// Event decides a gateway event (tool_changed) instead of the message.
	Event struct {
		Kind string `yaml:"kind"`
		Tool string `yaml:"tool"`
	} `yaml:"event"`
	// Listing decides whether the message's tool is shown in tools/list (request.listing).
	Listing bool `yaml:"listing"`
	// Now is the decision time (RFC 3339); empty is the current time.
	Now    string        `yaml:"now"`
	Expect policy.Action `yaml:"expect"`
}

func (c policyCase) input() (policy.Input, error) {
	var raw []byte
	if c.Message.Kind == yaml.ScalarNode {
		raw = []byte(c.Message.Value)
	} else {
		var v any
		if err := c.Message.Decode(&v); err != nil {
			return policy.Input{}, fmt.Errorf("decode message: %w", err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return policy.Input{}, fmt.Errorf("encode message: %w", err)
		}
		raw = b
	}
	body, err := mcp.Parse(raw)
	if err != nil {
		return policy.Input{}, fmt.Errorf("parse message: %w", err)
	}
	if body.Batch || len(body.Messages) != 1 {
		return policy.Input{}, errors.New("message: one JSON-RPC message expected")
	}
	id := c.Identity
	in := policy.Input{
		Identity: policy.Identity{Subject: id.Subject, ClientID: id.ClientID, Issuer: id.Issuer, Scopes: id.Scopes, Groups: id.Groups},
		Msg:      &body.Messages[0], Revision: mcp.Revision(c.Revision), Headers: c.Headers,
		Session: policy.Session{ID: c.Session.ID, Calls: c.Session.Calls, ToolCalls: c.Session.ToolCalls},
		Listing: c.Listing,
	}
	if c.Event.Kind != "" || c.Event.Tool != "" {
		in.Event = &policy.Event{Kind: c.Event.Kind, Tool: c.Event.Tool}
	}
	if c.Now != "" {
		t, err := time.Parse(time.RFC3339, c.Now)
		if err != nil {
			return policy.Input{}, fmt.Errorf("now: %q is not an RFC 3339 time (2026-01-02T15:04:05Z)", c.Now)
		}
		in.Now = t
	}
	return in, nil
}

func policyTest(polPath, casesPath string, stdout, stderr io.Writer) error {
	set, err := loadPolicy(polPath, stderr)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(casesPath)
	if err != nil {
		return fmt.Errorf("read cases: %w", err)
	}
	var cases []policyCase
	if _, err := yamlx.Decode(data, &cases); err != nil {
		fmt.Fprintf(stderr, "%s: invalid\n", casesPath)
		printProblems(stderr, err)
		return errors.New("cases have problems")
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tEXPECT\tGOT\tRULE\tRESULT")
	failed := 0
	for i, c := range cases {
		name := c.Name
		if name == "" {
			name = fmt.Sprintf("#%d", i+1)
		}
		in, err := c.input()
		got, rule, result := "", "", "ok"
		switch {
		case err != nil:
			got, result = "error", "FAIL: "+err.Error()
		case c.Expect.Validate() != nil || c.Expect == policy.Observe:
			result = fmt.Sprintf("FAIL: expect %q is not allow, deny or require_approval", c.Expect)
		default:
			d := set.Decide(in)
			got, rule = string(d.Action), d.Rule
			if rule == "" {
				rule = "(default)"
			}
			if d.Action != c.Expect {
				result = "FAIL"
			}
		}
		if result != "ok" {
			failed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, c.Expect, got, rule, result)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	fmt.Fprintf(stdout, "%d cases, %d failed\n", len(cases), failed)
	if failed > 0 {
		return fmt.Errorf("%d of %d policy cases failed", failed, len(cases))
	}
	return nil
}

func policyExplain(polPath string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("policy explain", flag.ContinueOnError)
	msgPath := fs.String("message", "", "file with the JSON-RPC message (required)")
	sub := fs.String("sub", "", "identity subject")
	groups := fs.String("groups", "", "identity groups, comma-separated")
	scopes := fs.String("scopes", "", "identity scopes, comma-separated")
	rev := fs.String("revision", "", "MCP protocol revision")
	clientID := fs.String("client-id", "", "identity client id")
	now := fs.String("now", "", "decision time, RFC 3339 (default: now)")
	eventKind := fs.String("event", "", "decide a gateway event of this kind (tool_changed) instead of the message")
	eventTool := fs.String("event-tool", "", "the tool the event is about")
	listing := fs.Bool("listing", false, "decide whether the message's tool is listed in tools/list")
	if err := parseFlags(fs, args, stderr, "policy explain POLICY --message FILE [flags]"); err != nil {
		return helpOK(err)
	}
	if *msgPath == "" {
		fmt.Fprint(stderr, policyUsage)
		return ErrUsage
	}
	set, err := loadPolicy(polPath, stderr)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(*msgPath)
	if err != nil {
		return fmt.Errorf("read message: %w", err)
	}
	c := policyCase{Revision: *rev, Now: *now, Listing: *listing}
	c.Identity.Subject, c.Identity.Groups, c.Identity.Scopes = *sub, split(*groups), split(*scopes)
	c.Identity.ClientID = *clientID
	c.Event.Kind, c.Event.Tool = *eventKind, *eventTool
	c.Message = yaml.Node{Kind: yaml.ScalarNode, Value: string(raw)}
	in, err := c.input()
	if err != nil {
		return err
	}
	d, steps := set.Explain(in)
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tLINE\tACTION\tMATCHED\tNOTE")
	for _, s := range steps {
		note := s.Err
		if s.Skipped {
			note = "skipped: cannot match (index)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%t\t%s\n", s.Rule, s.Line, s.Action, s.Matched, note)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	rule := d.Rule
	if rule == "" {
		rule = "(default)"
	}
	fmt.Fprintf(stdout, "\ndecision: %s by %s", d.Action, rule)
	if d.DryRun {
		fmt.Fprint(stdout, " (observe mode: not enforced)")
	}
	fmt.Fprintln(stdout)
	if d.Message != "" {
		fmt.Fprintf(stdout, "message:  %s\n", d.Message)
	}
	if d.Reason != "" {
		fmt.Fprintf(stdout, "reason:   %s\n", d.Reason)
	}
	for _, o := range d.Observed {
		fmt.Fprintf(stdout, "observed: %s would %s\n", o.Rule, o.Would)
	}
	return nil
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
