package e2e_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/e2e/harness"
	"github.com/mcpguard/mcpguard/e2e/mcpserver"
)

const (
	blindCard = "4111111111111111"
	blindSSN  = "234567890"
	blindPass = "s3cr3tPa55w0rd"
	blindGH   = "ghp_R7mKx2Lq9Vt4Nw8Zb3Hc6Jd1Fs5Gp0Ya2Ue7"
)

// blindResult is a tools/call result whose structuredContent holds a card as a bare number,
// an AWS key as a member name, and rows whose values are secrets only by their member names.
func blindResult(id json.RawMessage) string {
	return `{"jsonrpc":"2.0","id":` + string(id) + `,"result":{"content":[{"type":"text","text":"rows attached"}],` +
		`"structuredContent":{"card":` + blindCard + `,"` + leakAWS + `":"deploy",` +
		`"rows":[{"ssn":` + blindSSN + `,"user_password":"` + blindPass + `","zip":94107}]}}}`
}

// blindUpstream answers every JSON-RPC request with blindResult, as a JSON body or as one
// server-sent event whose id: field carries a GitHub token. It is written by hand because
// an SDK server chooses its own event ids.
func blindUpstream(t *testing.T, sse bool) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc(mcpserver.Path, func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID json.RawMessage `json:"id"`
		}
		b, err := io.ReadAll(r.Body)
		if err != nil || json.Unmarshal(b, &req) != nil || len(req.ID) == 0 {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		// A debug header with a token, and a repeated header with a card in one field.
		w.Header().Set("X-Debug-Token", blindGH)
		w.Header().Add("X-Trace", "card "+blindCard)
		w.Header().Add("X-Trace", "plain")
		if !sse {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, blindResult(req.ID))
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		// Headers first, as a streaming server sends them: a short body written at once would
		// otherwise go out with a content-length, which the stream's masking changes.
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		_, _ = fmt.Fprintf(w, "id: %s\ndata: %s\n\n", blindGH, blindResult(req.ID))
		// A priming event (an id and no data) and a comment reach the client too.
		_, _ = fmt.Fprintf(w, "id: %s\nretry: 500\n\n: trace %s\n\n", blindGH, blindCard)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestMaskingBlindSpots: through the emulator, a card sent as a JSON number, an AWS key sent
// as a member name, an SSN number and a password known only by their member names, and a
// token in the SSE id: field all reach the agent masked, the document stays valid JSON, and
// none of the values reaches mcpguard's log.
func TestMaskingBlindSpots(t *testing.T) {
	require.NoError(t, suite.err, "the suite could not start mcpguard")
	body := `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"report","arguments":{}}}`
	for _, tc := range []struct {
		name string
		sse  bool
	}{{"json response", false}, {"sse response", true}} {
		t.Run(tc.name, func(t *testing.T) {
			mark := suite.guard.Logs().Len()
			up := blindUpstream(t, tc.sse)
			gw := gatewayFor(t, suite.guard, up.Listener.Addr().String())
			defer func() {
				if t.Failed() {
					t.Log(suite.guard.Logs().Since(mark))
				}
			}()
			code, hdr, raw := post(t, "http://"+gw.Addr()+mcpserver.Path, suite.token,
				map[string]string{"MCP-Protocol-Version": harness.V20250618}, body)
			require.Equal(t, http.StatusOK, code, "body %s", raw)
			require.Equal(t, "[REDACTED:GITHUB_TOKEN]", hdr.Get("X-Debug-Token"), "a token in a response header is masked")
			require.Equal(t, []string{"card [REDACTED:CREDIT_CARD]", "plain"}, hdr.Values("X-Trace"), "every field of a repeated header, in order")

			data := string(raw)
			if tc.sse {
				var ev sseEvent
				require.NoError(t, readEvents(strings.NewReader(data), func(e sseEvent) bool { ev = e; return false }), "body %s", raw)
				require.Equal(t, "[REDACTED:GITHUB_TOKEN]", ev.id, "the id: field is masked")
				data = ev.data
			}
			var msg struct {
				Result struct {
					StructuredContent map[string]any `json:"structuredContent"`
				} `json:"result"`
			}
			require.NoError(t, json.Unmarshal([]byte(data), &msg), "masked message must stay valid JSON: %s", data)
			require.Equal(t, map[string]any{
				"card":                      "[REDACTED:CREDIT_CARD]",
				"[REDACTED:AWS_ACCESS_KEY]": "deploy",
				"rows": []any{map[string]any{
					"ssn": "[REDACTED:US_SSN]", "user_password": "[REDACTED:GENERIC_SECRET]", "zip": float64(94107),
				}},
			}, msg.Result.StructuredContent)
			for _, v := range []string{blindCard, leakAWS, blindSSN, blindPass, blindGH} {
				require.NotContains(t, string(raw), v)
				require.NotContains(t, suite.guard.Logs().Since(mark), v)
			}
		})
	}
}
