package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Limits keep a misbehaving caller (or the load tool) from exhausting the machine.
const (
	maxSteps   = 1000
	maxDelay   = 10 * time.Second
	maxBigMB   = 64
	answerWait = 30 * time.Second
)

// EchoArgs are the arguments of the echo tool, which returns Text unchanged.
type EchoArgs struct {
	Text string `json:"text" jsonschema:"the text to return"`
}

// SlowArgs are the arguments of the slow tool. It sends Steps progress notifications
// (Progress 1..Steps, Total Steps) DelayMS apart and then returns "done <steps>". With Gate
// set it stops after the first notification until [Server.Release](Gate), so a test can
// prove that progress reached the client while the tool was still running.
type SlowArgs struct {
	Steps   int    `json:"steps" jsonschema:"number of progress notifications"`
	DelayMS int    `json:"delay_ms,omitempty" jsonschema:"pause between notifications in milliseconds"`
	Gate    string `json:"gate,omitempty" jsonschema:"wait after the first notification until released"`
}

// BigArgs are the arguments of the big tool, which returns [BigText](MB<<20) as one text block.
type BigArgs struct {
	MB int `json:"mb" jsonschema:"size of the result in MiB"`
}

// AskArgs are the arguments of the ask tool. It asks the client for a sampling completion
// and for an elicitation (a form with one string field "answer") and returns
// "sampled=<text> elicited=<action>:<answer>".
type AskArgs struct {
	Question string `json:"question"`
}

// SQLArgs are the arguments of the execute_sql tool, which returns [Rows] as structured
// content and as JSON text. It never runs anything: it is a target for policy tests.
type SQLArgs struct {
	Query string `json:"query"`
}

// Rows is the fixed row set execute_sql returns.
var Rows = map[string]any{
	"columns": []string{"id", "email"},
	"rows":    [][]any{{1, "ada@example.com"}, {2, "grace@example.com"}},
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

func (s *Server) addTools() {
	mcp.AddTool(s.mcp, &mcp.Tool{Name: "echo", Description: "Return the text unchanged."},
		func(_ context.Context, _ *mcp.CallToolRequest, a EchoArgs) (*mcp.CallToolResult, any, error) {
			return text(a.Text), nil, nil
		})
	mcp.AddTool(s.mcp, &mcp.Tool{Name: "slow", Description: "Report progress step by step, then finish."}, s.slow)
	mcp.AddTool(s.mcp, &mcp.Tool{Name: "big", Description: "Return a large text result."},
		func(_ context.Context, _ *mcp.CallToolRequest, a BigArgs) (*mcp.CallToolResult, any, error) {
			if a.MB < 0 || a.MB > maxBigMB {
				return nil, nil, fmt.Errorf("mb must be within 0..%d", maxBigMB)
			}
			return text(BigText(a.MB << 20)), nil, nil
		})
	mcp.AddTool(s.mcp, &mcp.Tool{Name: "ask", Description: "Ask the client to sample and to elicit an answer."}, ask)
	mcp.AddTool(s.mcp, &mcp.Tool{Name: "execute_sql", Description: "Run a SQL query against the demo database."},
		func(_ context.Context, _ *mcp.CallToolRequest, _ SQLArgs) (*mcp.CallToolResult, any, error) {
			r := text(`{"columns":["id","email"],"rows":[[1,"ada@example.com"],[2,"grace@example.com"]]}`)
			r.StructuredContent = Rows
			return r, nil, nil
		})
}

func (s *Server) slow(ctx context.Context, req *mcp.CallToolRequest, a SlowArgs) (*mcp.CallToolResult, any, error) {
	if a.Steps < 0 || a.Steps > maxSteps {
		return nil, nil, fmt.Errorf("steps must be within 0..%d", maxSteps)
	}
	delay := time.Duration(a.DelayMS) * time.Millisecond
	if delay < 0 || delay > maxDelay {
		return nil, nil, fmt.Errorf("delay_ms must be within 0..%d", maxDelay.Milliseconds())
	}
	tok := req.Params.GetProgressToken()
	for i := 1; i <= a.Steps; i++ {
		if i > 1 && delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, nil, fmt.Errorf("slow: %w", ctx.Err())
			case <-t.C:
			}
		}
		if tok != nil {
			err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
				ProgressToken: tok, Progress: float64(i), Total: float64(a.Steps), Message: fmt.Sprintf("step %d", i),
			})
			if err != nil {
				return nil, nil, fmt.Errorf("notify progress: %w", err)
			}
		}
		if i == 1 && a.Gate != "" {
			if err := s.gates.wait(ctx, a.Gate); err != nil {
				return nil, nil, err
			}
		}
	}
	return text(fmt.Sprintf("done %d", a.Steps)), nil, nil
}

func ask(ctx context.Context, req *mcp.CallToolRequest, a AskArgs) (*mcp.CallToolResult, any, error) {
	ctx, cancel := context.WithTimeout(ctx, answerWait)
	defer cancel()
	sampled, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{
		MaxTokens: 64,
		Messages:  []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: a.Question}}},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("sampling: %w", err)
	}
	st, ok := sampled.Content.(*mcp.TextContent)
	if !ok {
		return nil, nil, errors.New("sampling: answer is not text")
	}
	el, err := req.Session.Elicit(ctx, &mcp.ElicitParams{
		Message: a.Question,
		RequestedSchema: map[string]any{
			"type":       "object",
			"properties": map[string]any{"answer": map[string]any{"type": "string"}},
			"required":   []string{"answer"},
		},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("elicitation: %w", err)
	}
	return text(fmt.Sprintf("sampled=%s elicited=%s:%v", st.Text, el.Action, el.Content["answer"])), nil, nil
}
