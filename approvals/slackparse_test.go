package approvals

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// clickBody is a minimal block_actions form body for the parser tests.
func clickBody(action, value, team, user string) []byte {
	p, _ := json.Marshal(map[string]any{
		"type": "block_actions", "team": map[string]any{"id": team}, "user": map[string]any{"id": user, "team_id": team},
		"response_url": "https://hooks.slack.com/actions/T1/1/x",
		"actions":      []any{map[string]any{"action_id": action, "block_id": "decide", "value": value, "type": "button"}},
	})
	return []byte("payload=" + url.QueryEscape(string(p)))
}

func TestParseSlackAction(t *testing.T) {
	const form = "application/x-www-form-urlencoded"
	got, err := parseSlackAction(form, clickBody("approve", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "T1", "U1"))
	require.NoError(t, err)
	require.Equal(t, slackAction{
		Approve: true, RequestID: "ABCDEFGHIJKLMNOPQRSTUVWXYZ", TeamID: "T1", UserID: "U1",
		ResponseURL: "https://hooks.slack.com/actions/T1/1/x",
	}, got)
	got, err = parseSlackAction(form+"; charset=utf-8", clickBody("deny", "ABC234", "T1", "U1"))
	require.NoError(t, err)
	require.False(t, got.Approve)
	got, err = parseSlackAction(form, clickBody("review", "ABC234", "T1", "U1"))
	require.NoError(t, err)
	require.True(t, got.Review, "the link button is reported too, and acknowledged")

	for _, tc := range []struct {
		name, ct string
		body     []byte
	}{
		{"json content type", "application/json", clickBody("approve", "ABC", "T1", "U1")},
		{"no payload", form, []byte("x=1")},
		{"two payloads", form, append(clickBody("approve", "ABC", "T1", "U1"), []byte("&payload={}")...)},
		{"extra field", form, append(clickBody("approve", "ABC", "T1", "U1"), []byte("&token=x")...)},
		{"bad form", form, []byte("payload=%zz")},
		{"not json", form, []byte("payload=nope")},
		{"trailing json", form, []byte("payload=" + url.QueryEscape(`{"type":"block_actions"} {}`))},
		{"other type", form, []byte("payload=" + url.QueryEscape(`{"type":"view_submission"}`))},
		{"no action", form, []byte("payload=" + url.QueryEscape(`{"type":"block_actions","team":{"id":"T1"},"user":{"id":"U1"},"actions":[]}`))},
		{"unknown action", form, clickBody("approve_all", "ABC", "T1", "U1")},
		{"bad request id", form, clickBody("approve", "abc/../x", "T1", "U1")},
		{"no team", form, clickBody("approve", "ABC", "", "U1")},
		{"lower-case user", form, clickBody("approve", "ABC", "T1", "u1")},
		{"two actions", form, []byte("payload=" + url.QueryEscape(`{"type":"block_actions","team":{"id":"T1"},"user":{"id":"U1"},"actions":[`+
			`{"action_id":"approve","block_id":"d","value":"ABC"},{"action_id":"approve","block_id":"d","value":"DEF"}]}`))},
		{"user from another team", form, []byte("payload=" + url.QueryEscape(`{"type":"block_actions","team":{"id":"T1"},"user":{"id":"U1","team_id":"T2"},"actions":[`+
			`{"action_id":"approve","block_id":"d","value":"ABC"}]}`))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseSlackAction(tc.ct, tc.body)
			require.Error(t, err)
		})
	}
}

// FuzzParseSlackAction: the interactivity parser never panics, and whatever it accepts is
// one of our two actions on a well-formed request id by a well-formed Slack user.
func FuzzParseSlackAction(f *testing.F) {
	f.Add(clickBody("approve", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "T1", "U1"))
	f.Add(clickBody("deny", "ABC", "T1", "W1"))
	f.Add([]byte("payload=" + url.QueryEscape(`{"type":"block_actions","actions":[{"action_id":"approve"}],"message":{"blocks":[{"type":"section"}]}}`)))
	f.Add([]byte("payload=%7B%7D"))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := parseSlackAction("application/x-www-form-urlencoded", body)
		if err != nil {
			return
		}
		if !requestID(got.RequestID) || !slackID(got.TeamID) || !slackID(got.UserID) {
			t.Fatalf("accepted %+v", got)
		}
		again, err := parseSlackAction("application/x-www-form-urlencoded", body)
		if err != nil || again != got {
			t.Fatalf("not deterministic: %+v %v", again, err)
		}
	})
}
