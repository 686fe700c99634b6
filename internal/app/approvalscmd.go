package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mcpguard/mcpguard/approvals"
)

const approvalsUsage = `Usage:
  mcpguard approvals ls [--state pending|approved|denied|expired|consumed|all]
  mcpguard approvals approve ID [--reason TEXT]
  mcpguard approvals deny ID --reason TEXT

Common flags (before or after ID):
  --url URL          the admin port (default $MCPGUARD_ADMIN_URL or http://127.0.0.1:9002)
  --token-file FILE  file with your bearer token (default: $MCPGUARD_TOKEN)
`

// approvalsCmd lists and decides approval requests through the admin API.
func approvalsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, approvalsUsage)
		return ErrUsage
	}
	sub, rest := args[0], args[1:]
	if isHelp(sub) || wantsHelp(rest) {
		fmt.Fprint(stdout, approvalsUsage)
		return nil
	}
	var id string
	if sub == "approve" || sub == "deny" {
		if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
			id, rest = rest[0], rest[1:]
		}
	}
	fs := flag.NewFlagSet("approvals "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, approvalsUsage) }
	base := fs.String("url", envOr("MCPGUARD_ADMIN_URL", "http://127.0.0.1:9002"), "admin base URL")
	tokenFile := fs.String("token-file", "", "file holding the bearer token")
	state := fs.String("state", "pending", "state to list, or all")
	reason := fs.String("reason", "", "reason recorded with the decision")
	if err := fs.Parse(rest); err != nil {
		return helpOK(usageErr(err))
	}
	if id == "" && fs.NArg() > 0 && (sub == "approve" || sub == "deny") {
		id = fs.Arg(0)
	} else if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mcpguard: unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return ErrUsage
	}
	token := strings.TrimSpace(os.Getenv("MCPGUARD_TOKEN"))
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fmt.Errorf("read token: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		fmt.Fprintln(stderr, "mcpguard: a token is required: --token-file FILE or $MCPGUARD_TOKEN")
		return ErrUsage
	}
	c := apiClient{base: strings.TrimRight(*base, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}
	switch sub {
	case "ls":
		q := ""
		if *state != "all" {
			if approvals.State(*state).Validate() != nil {
				fmt.Fprintf(stderr, "mcpguard: unknown state %q\n", *state)
				return ErrUsage
			}
			q = "?state=" + url.QueryEscape(*state)
		}
		var out struct {
			Approvals []approvals.Request `json:"approvals"`
		}
		if err := c.do(ctx, http.MethodGet, "/v1/approvals"+q, nil, &out); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tTOOL\tREQUESTER\tRULE\tCREATED\tEXPIRES")
		for _, r := range out.Approvals {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.State, r.Tool, r.Requester.Subject, r.Rule,
				r.CreatedAt.Local().Format(time.DateTime), r.ExpiresAt.Local().Format(time.DateTime))
		}
		return tw.Flush()
	case "approve", "deny":
		if id == "" {
			fmt.Fprint(stderr, approvalsUsage)
			return ErrUsage
		}
		if sub == "deny" && strings.TrimSpace(*reason) == "" {
			fmt.Fprintln(stderr, "mcpguard: deny needs --reason")
			return ErrUsage
		}
		var r approvals.Request
		body := map[string]string{"reason": *reason}
		if err := c.do(ctx, http.MethodPost, "/v1/approvals/"+url.PathEscape(id)+"/"+sub, body, &r); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s %s by %s at %s\n", r.ID, r.State, r.Decision.By.Subject, r.Decision.At.Local().Format(time.DateTime))
		return nil
	default:
		fmt.Fprintf(stderr, "mcpguard: unknown approvals command %q\n\n%s", sub, approvalsUsage)
		return ErrUsage
	}
}

func usageErr(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return ErrUsage
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// apiClient calls the approvals API with a bearer token.
type apiClient struct {
	base, token string
	http        *http.Client
}

func (c apiClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("call approvals api: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("read approvals api answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		return fmt.Errorf("approvals api: %s: %s", resp.Status, e.Error)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode approvals api answer: %w", err)
	}
	return nil
}
