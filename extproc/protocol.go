package extproc

import (
	"context"

	"github.com/mcpguard/mcpguard/mcp"
)

// protocol is the first request stage: the transport rules of the revision the request
// declares (mcp.Check). It sets Exchange.Revision for the stages after it.
type protocol struct{}

func (protocol) Name() string { return "protocol" }

func (protocol) OnRequest(_ context.Context, x *Exchange) (Verdict, error) {
	rev, err := mcp.Check(mcp.Request{Method: x.Method, Path: x.Path, Headers: x.Headers, Body: x.Body})
	if err != nil {
		return Verdict{Action: Deny, Err: err, Status: err.HTTPStatus()}, nil
	}
	x.Revision = rev
	return Pass, nil
}
