package emulator

import (
	"net/http"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"golang.org/x/net/http/httpguts"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// FuzzHeaderMutation feeds server-chosen header mutations (untrusted input to the proxy) through the
// ext_proc rules: no panic, protected headers unchanged, and a success never yields an invalid header.
func FuzzHeaderMutation(f *testing.F) {
	f.Add("x-a", "", []byte("v"), false, "x-b")
	f.Add(":authority", "", []byte("evil"), false, "host")
	f.Add("x-a", "both", []byte("v"), true, ":path")
	f.Add("x-bad\r\n", "", []byte("a\nb"), false, "")
	f.Add(":status", "", []byte("99"), false, "x-envoy-x")
	f.Fuzz(func(t *testing.T, key, value string, raw []byte, app bool, remove string) {
		base := fields{{":authority", "mcp.example"}, {":method", "POST"}, {":scheme", "http"}, {"host", "mcp.example"}, {"x-a", "1"}}
		m := &extprocv3.HeaderMutation{
			SetHeaders:    []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: key, Value: value, RawValue: raw}, Append: wrapperspb.Bool(app)}},
			RemoveHeaders: []string{remove},
		}
		for _, response := range []bool{false, true} {
			f := base.clone()
			if _, err := applyProc(&f, m, response); err != nil {
				continue
			}
			for _, k := range []string{":authority", ":method", ":scheme", "host"} {
				if f.value(k) != base.value(k) {
					t.Fatalf("protected header %s changed to %q", k, f.value(k))
				}
			}
			for _, e := range f {
				if !validName(e.k) || !httpguts.ValidHeaderFieldValue(e.v) || e.k != strings.ToLower(e.k) {
					t.Fatalf("invalid header after mutation: %q: %q", e.k, e.v)
				}
			}
			h := http.Header{}
			f.toHTTP(h)
		}
	})
}
