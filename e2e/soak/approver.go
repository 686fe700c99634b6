package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// approver approves every pending request it may decide, through the approvals API, as a
// human approver would from a second terminal.
type approver struct {
	admin string // host:port of the admin API
	token string // an approver in the rule's group, never the requester
	poll  time.Duration
	c     *http.Client

	mu       sync.Mutex
	approved int
	listed   int // listings answered: load the approver itself puts on mcpguard
	errs     map[string]int
}

// run polls until ctx ends.
func (a *approver) run(ctx context.Context) {
	tick := time.NewTicker(a.poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		ids, err := a.pending(ctx)
		if err != nil {
			a.fail(ctx, "list", err)
			continue
		}
		a.mu.Lock()
		a.listed++
		a.mu.Unlock()
		for _, id := range ids {
			if err := a.approve(ctx, id); err != nil {
				a.fail(ctx, "approve", err)
				continue
			}
			a.mu.Lock()
			a.approved++
			a.mu.Unlock()
		}
	}
}

func (a *approver) fail(ctx context.Context, what string, err error) {
	if ctx.Err() != nil {
		return // the run ended mid-request: not a fault of the service
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.errs == nil {
		a.errs = map[string]int{}
	}
	a.errs["approver "+what+": "+short(err)]++
}

func (a *approver) do(ctx context.Context, method, path, body string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+a.admin+path, strings.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("approvals request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("approvals %s: %w", method, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("approvals %s: %w", method, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("approvals %s: status %d", method, resp.StatusCode)
	}
	return data, nil
}

func (a *approver) pending(ctx context.Context) ([]string, error) {
	data, err := a.do(ctx, http.MethodGet, "/v1/approvals?state=pending", "")
	if err != nil {
		return nil, err
	}
	return parsePending(data)
}

// parsePending extracts the ids of {"approvals":[{"id":…},…]}.
func parsePending(data []byte) ([]string, error) {
	var body struct {
		Approvals []struct {
			ID string `json:"id"`
		} `json:"approvals"`
	}
	if err := json.Unmarshal(data, &body); err != nil {
		return nil, fmt.Errorf("decode pending approvals: %w", err)
	}
	ids := make([]string, 0, len(body.Approvals))
	for _, x := range body.Approvals {
		if x.ID == "" || strings.ContainsAny(x.ID, "/?#%") {
			return nil, fmt.Errorf("decode pending approvals: bad id %q", x.ID)
		}
		ids = append(ids, x.ID)
	}
	return ids, nil
}

func (a *approver) approve(ctx context.Context, id string) error {
	_, err := a.do(ctx, http.MethodPost, "/v1/approvals/"+id+"/approve", `{"reason":"soak"}`)
	return err
}

func (a *approver) result() (approved, listed int, errs map[string]int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	errs = make(map[string]int, len(a.errs))
	for k, v := range a.errs {
		errs[k] = v
	}
	return a.approved, a.listed, errs
}
