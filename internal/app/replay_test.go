package app

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/approvals"
	"github.com/mcpguard/mcpguard/recordings"
)

func TestRecordingLink(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  approvals.Request
		want string
	}{
		{"session and request", approvals.Request{SessionID: "S1", RequestID: "r-1"}, "recordings/S1#req-r-1"},
		{"session id that is no safe name", approvals.Request{SessionID: "a/b", RequestID: "r-1"}, "recordings/" + recordings.SessionKey("a/b", nil, "") + "#req-r-1"},
		{"no session: search by request id", approvals.Request{RequestID: "r-1"}, "recordings?request_id=r-1"},
		{"nothing to link", approvals.Request{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, recordingLink(tc.req))
		})
	}
}
