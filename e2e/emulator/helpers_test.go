package emulator

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	authzfv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	procfv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/mcpguard/mcpguard/e2e/emulator/emulatortest"
)

// parseBootstrap decodes YAML strictly into a Bootstrap (the emulator's own fixtures only).
func parseBootstrap(t testing.TB, data []byte) *bootstrapv3.Bootstrap {
	t.Helper()
	js, err := yaml.YAMLToJSON(data)
	require.NoError(t, err)
	var b bootstrapv3.Bootstrap
	require.NoError(t, protojson.Unmarshal(js, &b))
	return &b
}

func loadBase(t testing.TB) *bootstrapv3.Bootstrap {
	t.Helper()
	data, err := os.ReadFile("testdata/base.yaml")
	require.NoError(t, err)
	return parseBootstrap(t, data)
}

// editFilter unpacks the HCM filter whose config is of m's type, lets edit change it, and packs it back.
func editFilter[M proto.Message](t testing.TB, b *bootstrapv3.Bootstrap, m M, edit func(M)) {
	t.Helper()
	f := b.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetFilters()[0]
	var h hcmv3.HttpConnectionManager
	require.NoError(t, f.GetTypedConfig().UnmarshalTo(&h))
	if hm, ok := any(m).(*hcmv3.HttpConnectionManager); ok {
		proto.Merge(hm, &h)
		edit(m)
		require.NoError(t, f.GetTypedConfig().MarshalFrom(hm))
		return
	}
	found := false
	for _, hf := range h.GetHttpFilters() {
		if hf.GetTypedConfig().MessageIs(m) {
			require.NoError(t, hf.GetTypedConfig().UnmarshalTo(m))
			edit(m)
			require.NoError(t, hf.GetTypedConfig().MarshalFrom(m))
			found = true
		}
	}
	require.True(t, found, "filter not in bootstrap")
	require.NoError(t, f.GetTypedConfig().MarshalFrom(&h))
}

func editProc(t testing.TB, b *bootstrapv3.Bootstrap, edit func(*procfv3.ExternalProcessor)) {
	t.Helper()
	editFilter(t, b, &procfv3.ExternalProcessor{}, edit)
}

func editAuthz(t testing.TB, b *bootstrapv3.Bootstrap, edit func(*authzfv3.ExtAuthz)) {
	t.Helper()
	editFilter(t, b, &authzfv3.ExtAuthz{}, edit)
}

func editHCM(t testing.TB, b *bootstrapv3.Bootstrap, edit func(*hcmv3.HttpConnectionManager)) {
	t.Helper()
	editFilter(t, b, &hcmv3.HttpConnectionManager{}, edit)
}

// tracer records TraceEvents.
type tracer struct {
	mu sync.Mutex
	ev []TraceEvent
}

func (tr *tracer) add(e TraceEvent) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.ev = append(tr.ev, e)
}

func (tr *tracer) events() []TraceEvent {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]TraceEvent(nil), tr.ev...)
}

func (tr *tracer) localReply() (TraceEvent, bool) {
	for _, e := range tr.events() {
		if e.Kind == TraceLocalReply || e.Kind == TraceReset {
			return e, true
		}
	}
	return TraceEvent{}, false
}

// harness runs the emulator in front of an upstream handler with scripted gRPC services.
type harness struct {
	emu   *Emulator
	url   string
	proc  *emulatortest.Processor
	authz *emulatortest.Authorizer
	trace *tracer
}

func start(t testing.TB, b *bootstrapv3.Bootstrap, proc *emulatortest.Processor, authz *emulatortest.Authorizer, upstream http.Handler) *harness {
	t.Helper()
	if proc == nil {
		proc = &emulatortest.Processor{}
	}
	if authz == nil {
		authz = &emulatortest.Authorizer{}
	}
	if upstream == nil {
		upstream = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	}
	up := httptest.NewServer(upstream)
	t.Cleanup(up.Close)
	grpcAddr := emulatortest.Serve(t, proc, authz)
	tr := &tracer{}
	emu, err := New(b, Options{
		Listen:   "127.0.0.1:0",
		Clusters: map[string]string{"mcpguard_grpc": grpcAddr, "mcp_upstream": up.Listener.Addr().String()},
		Trace:    tr.add,
	})
	require.NoError(t, err)
	require.NoError(t, emu.Start(t.Context()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, emu.Close(ctx))
	})
	return &harness{emu: emu, url: "http://" + emu.Addr(), proc: proc, authz: authz, trace: tr}
}

// kinds lists the request types of a stream, e.g. "request_headers", "response_body".
func kinds(reqs []*extprocv3.ProcessingRequest) []string {
	var out []string
	for _, r := range reqs {
		switch r.GetRequest().(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			out = append(out, "request_headers")
		case *extprocv3.ProcessingRequest_RequestBody:
			out = append(out, "request_body")
		case *extprocv3.ProcessingRequest_RequestTrailers:
			out = append(out, "request_trailers")
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			out = append(out, "response_headers")
		case *extprocv3.ProcessingRequest_ResponseBody:
			out = append(out, "response_body")
		case *extprocv3.ProcessingRequest_ResponseTrailers:
			out = append(out, "response_trailers")
		}
	}
	return out
}

func header(reqs *extprocv3.HttpHeaders, k string) (string, bool) {
	for _, h := range reqs.GetHeaders().GetHeaders() {
		if h.GetKey() == k {
			return string(h.GetRawValue()), true
		}
	}
	return "", false
}
