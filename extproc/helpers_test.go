package extproc_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/mcpguard/mcpguard/extproc"
	"github.com/mcpguard/mcpguard/identity"
)

// harness is a real gRPC server on 127.0.0.1 with the ext_proc service, and a client.
type harness struct {
	client extprocv3.ExternalProcessorClient
	reg    *prometheus.Registry
	gs     *grpc.Server
}

func start(t testing.TB, cfg extproc.Config, stages ...extproc.Stage) *harness {
	t.Helper()
	reg := prometheus.NewRegistry()
	srv, err := extproc.NewServer(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), reg, stages...)
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(cfg.RecvMsgSize()), grpc.ForceServerCodecV2(extproc.NewCodec())) // as internal/app serves
	srv.Register(gs)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gs.Serve(lis)
	}()
	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = conn.Close()
		gs.Stop()
		<-served
	})
	return &harness{client: extprocv3.NewExternalProcessorClient(conn), reg: reg, gs: gs}
}

// envoy drives one ext_proc stream the way Envoy 1.40 does with the project's envoy.yaml:
// protocol_config and attributes on the first message, metadata_context on every message,
// lower-cased headers in raw_value.
type envoy struct {
	t     testing.TB
	s     extprocv3.ExternalProcessor_ProcessClient
	meta  *corev3.Metadata
	modes *extprocv3.ProtocolConfiguration // protocol_config of the first message; nil: envoy.yaml's
	first bool
}

var caller = identity.Identity{
	Subject: "svc-reports", ClientID: "0oa1", Issuer: "https://okta.example/oauth2/default",
	Scopes: []string{"mcp:tools"},
}

func (h *harness) open(t testing.TB, ctx context.Context) *envoy {
	t.Helper()
	s, err := h.client.Process(ctx)
	require.NoError(t, err)
	return &envoy{t: t, s: s, first: true, meta: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
		identity.Namespace: caller.Struct(),
	}}}
}

func headerMap(kv ...string) *corev3.HeaderMap {
	m := &corev3.HeaderMap{}
	for i := 0; i+1 < len(kv); i += 2 {
		m.Headers = append(m.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	return m
}

func (e *envoy) send(r *extprocv3.ProcessingRequest) {
	e.t.Helper()
	r.MetadataContext = e.meta
	if e.first {
		r.ProtocolConfig = e.modes
		if r.ProtocolConfig == nil {
			r.ProtocolConfig = &extprocv3.ProtocolConfiguration{
				RequestBodyMode:  filterv3.ProcessingMode_BUFFERED,
				ResponseBodyMode: filterv3.ProcessingMode_BUFFERED,
			}
		}
		r.Attributes = map[string]*structpb.Struct{"envoy.filters.http.ext_proc": {Fields: map[string]*structpb.Value{
			"request.id": structpb.NewStringValue("req-1"),
		}}}
		e.first = false
	}
	require.NoError(e.t, e.s.Send(r))
}

func (e *envoy) requestHeaders(eos bool, kv ...string) {
	e.t.Helper()
	e.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: headerMap(kv...), EndOfStream: eos},
	}})
}

func (e *envoy) requestBody(body string) {
	e.t.Helper()
	e.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
		RequestBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: true},
	}})
}

func (e *envoy) responseHeaders(eos bool, kv ...string) {
	e.t.Helper()
	e.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{
		ResponseHeaders: &extprocv3.HttpHeaders{Headers: headerMap(kv...), EndOfStream: eos},
	}})
}

func (e *envoy) responseBody(body []byte, eos bool) {
	e.t.Helper()
	e.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{
		ResponseBody: &extprocv3.HttpBody{Body: body, EndOfStream: eos},
	}})
}

func (e *envoy) recv() *extprocv3.ProcessingResponse {
	e.t.Helper()
	r, err := e.s.Recv()
	require.NoError(e.t, err)
	return r
}

// post sends the request phase of a POST to /mcp with the given extra headers and body.
func (e *envoy) post(body string, kv ...string) {
	e.t.Helper()
	base := []string{
		":method", "POST", ":path", "/mcp", ":authority", "mcp.example", ":scheme", "https",
		"content-type", "application/json", "accept", "application/json, text/event-stream",
		"x-request-id", "req-1",
	}
	e.requestHeaders(false, append(base, kv...)...)
	r := e.recv()
	require.NotNil(e.t, r.GetRequestHeaders(), "request headers answered with %v", r)
	e.requestBody(body)
}

// passed asserts the request body was let through unchanged.
func (e *envoy) passed() {
	e.t.Helper()
	r := e.recv()
	require.NotNil(e.t, r.GetRequestBody(), "expected a request body response, got %v", r)
	require.Nil(e.t, r.GetRequestBody().GetResponse().GetBodyMutation())
}

// rpcError is a JSON-RPC error response as a client reads it.
type rpcError struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// immediate asserts an immediate response and decodes its JSON-RPC body.
func immediate(t testing.TB, r *extprocv3.ProcessingResponse) (int, rpcError) {
	t.Helper()
	ir := r.GetImmediateResponse()
	require.NotNil(t, ir, "expected an immediate response, got %v", r)
	var ct string
	for _, h := range ir.GetHeaders().GetSetHeaders() {
		if h.GetHeader().GetKey() == "content-type" {
			require.Empty(t, h.GetHeader().GetValue(), "ext_proc reads raw_value only")
			ct = string(h.GetHeader().GetRawValue())
		}
	}
	require.Equal(t, "application/json", ct)
	var e rpcError
	require.NoError(t, json.Unmarshal(ir.GetBody(), &e), "body %q", ir.GetBody())
	require.Equal(t, "2.0", e.JSONRPC)
	return int(ir.GetStatus().GetCode()), e
}

// setHeader returns the raw value set for key in a mutation, and whether it was set.
func setHeader(t testing.TB, m *extprocv3.HeaderMutation, key string) (string, bool) {
	t.Helper()
	for _, h := range m.GetSetHeaders() {
		if h.GetHeader().GetKey() == key {
			require.Empty(t, h.GetHeader().GetValue(), "ext_proc reads raw_value only")
			return string(h.GetHeader().GetRawValue()), true
		}
	}
	return "", false
}

// metric returns the value of a counter or gauge with the given labels.
func metric(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if matches(m, labels) {
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

func matches(m *dto.Metric, labels []string) bool {
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

func toolsCall(id int, tool string) string {
	return `{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"method":"tools/call","params":{"name":"` + tool +
		`","arguments":{"sql":"select 1"}}}`
}

func result(id int, text string) string {
	return `{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"result":{"content":[{"type":"text","text":"` + text + `"}]}}`
}
