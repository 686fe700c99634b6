package emulator

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkRoundTrip measures one POST through ext_authz, ext_proc (BUFFERED request, STREAMED
// response) and the router, with Continue-only services.
func BenchmarkRoundTrip(b *testing.B) {
	h := start(b, loadBase(b), nil, nil, newDiscard())
	const body = `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	b.ReportAllocs()
	for b.Loop() {
		req, err := http.NewRequestWithContext(b.Context(), http.MethodPost, h.url+"/mcp", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

func newDiscard() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
	})
}
