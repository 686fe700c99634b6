package e2e_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/e2e/harness"
	"github.com/mcpguard/mcpguard/e2e/mcpserver"
)

// trailerUpstream answers every JSON-RPC request with a result holding a card number, as a
// server-sent event followed by a trailer, and reports the request body it saw.
func trailerUpstream(t *testing.T, sawBody chan<- string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		sawBody <- string(b)
		var req struct {
			ID json.RawMessage `json:"id"`
		}
		if json.Unmarshal(b, &req) != nil || len(req.ID) == 0 {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Trailer", "X-Checksum")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `data: {"jsonrpc":"2.0","id":`+string(req.ID)+
			`,"result":{"content":[{"type":"text","text":"paid with 4111 1111 1111 1111"}]}}`+"\n\n")
		w.Header().Set("X-Checksum", "abc")
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestTrailers: a request and a response that carry trailers pass the gateway inspected. Envoy
// sends the last body chunk of such a message with end_of_stream false (the body ends as the
// trailers arrive), which mcpguard used to refuse for a buffered request as "arrived in
// parts": every request with trailers became an error on real Envoy. The emulator now does as Envoy does. The streams it then resets
// after the last response (Envoy's default close) leave no warning or error in the log.
func TestTrailers(t *testing.T) {
	require.NoError(t, suite.err, "the suite could not start mcpguard")
	mark := suite.guard.Logs().Len()
	saw := make(chan string, 4)
	up := trailerUpstream(t, saw)
	gw := gatewayFor(t, suite.guard, up.Listener.Addr().String())
	defer func() {
		if t.Failed() {
			t.Log(suite.guard.Logs().Since(mark))
		}
	}()

	body := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"report","arguments":{}}}`
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+gw.Addr()+mcpserver.Path,
		io.NopCloser(strings.NewReader(body)))
	require.NoError(t, err)
	req.ContentLength = -1 // chunked, so the request can carry a trailer
	req.Trailer = http.Header{"X-Client-Digest": {"d1"}}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", harness.V20250618)
	resp, err := harness.HTTPClient(suite.token).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "body %s", raw)
	require.JSONEq(t, body, <-saw, "the upstream got the request as sent")
	require.Contains(t, string(raw), "[REDACTED:CREDIT_CARD]", "the response was inspected")
	require.NotContains(t, string(raw), "4111 1111 1111 1111")

	logs := suite.guard.Logs().Since(mark)
	require.NotContains(t, logs, `"level":"WARN"`, "a reset after the last response is a normal end")
	require.NotContains(t, logs, `"level":"ERROR"`)
}

// TestLargeJSONWithTrailers: a JSON result too large for Envoy to buffer (mcpguard switches it to
// STREAMED) that ends with trailers arrives whole and masked. Its last chunk comes with
// end_of_stream false; mcpguard used to wait for an end_of_stream that never came and answer every
// chunk empty, so the agent got an empty 200. An HTTP/1.1 upstream cannot send content-length
// and trailers together (extproc's unit tests cover that case, as an HTTP/2 upstream sends it).
func TestLargeJSONWithTrailers(t *testing.T) {
	require.NoError(t, suite.err, "the suite could not start mcpguard")
	mark := suite.guard.Logs().Len()
	filler := strings.Repeat("a", 2<<20)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID json.RawMessage `json:"id"`
		}
		if json.NewDecoder(r.Body).Decode(&req) != nil || len(req.ID) == 0 {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Trailer", "X-Checksum")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":`+string(req.ID)+
			`,"result":{"content":[{"type":"text","text":"`+filler+` paid with 4111 1111 1111 1111"}]}}`)
		w.Header().Set("X-Checksum", "abc")
	}))
	t.Cleanup(up.Close)
	gw := gatewayFor(t, suite.guard, up.Listener.Addr().String())
	defer func() {
		if t.Failed() {
			t.Log(suite.guard.Logs().Since(mark))
		}
	}()

	body := `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"report","arguments":{}}}`
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+gw.Addr()+mcpserver.Path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", harness.V20250618)
	resp, err := harness.HTTPClient(suite.token).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var got struct {
		ID     json.RawMessage `json:"id"`
		Result struct {
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal(raw, &got), "the whole body arrived (%d bytes)", len(raw))
	require.JSONEq(t, "4", string(got.ID))
	require.Len(t, got.Result.Content, 1)
	text := got.Result.Content[0].Text
	require.True(t, strings.HasPrefix(text, filler), "the 2 MiB result is intact")
	require.Contains(t, text, "[REDACTED:CREDIT_CARD]", "the response was inspected")
	require.NotContains(t, string(raw), "4111 1111 1111 1111")
	require.Equal(t, "abc", resp.Trailer.Get("X-Checksum"), "the trailers follow the body")

	logs := suite.guard.Logs().Since(mark)
	require.NotContains(t, logs, `"level":"WARN"`)
	require.NotContains(t, logs, `"level":"ERROR"`)
}
