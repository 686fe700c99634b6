package emulator

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	procfv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/mcpguard/mcpguard/e2e/emulator/emulatortest"
)

// This file is the fixture of the envoy_*_integration_test.go files: the starting point of Envoy's
// ExtProcIntegrationTest / ExtAuthzGrpcIntegrationTest expressed on base.yaml, the fake upstream of
// Envoy's HttpIntegrationTest (200 + 100 bytes), and a per-message-kind scripted processor.

// envoyProcBootstrap is base.yaml with the ext_proc filter reset to the proto defaults Envoy's fixture
// starts from (request/response headers SEND, bodies NONE, trailers SKIP, failure_mode_allow false,
// no override, no metadata options), then edited by the test. message_timeout is 2 s instead of
// Envoy's 200 ms default so a loaded machine does not time out; tests about timers set 200 ms.
// ext_authz is taken out of the chain, as in Envoy's fixture.
func envoyProcBootstrap(t *testing.T, edit func(*procfv3.ExternalProcessor)) *bootstrapv3.Bootstrap {
	t.Helper()
	b := loadBase(t)
	editAuthzOff(t, b)
	editProc(t, b, func(c *procfv3.ExternalProcessor) {
		*c = procfv3.ExternalProcessor{GrpcService: c.GetGrpcService(), MessageTimeout: durationpb.New(2 * time.Second)}
		if edit != nil {
			edit(c)
		}
	})
	return b
}

// modes builds a ProcessingMode; unset fields keep their proto default.
func modes(edit func(m *procfv3.ProcessingMode)) *procfv3.ProcessingMode {
	m := &procfv3.ProcessingMode{}
	edit(m)
	return m
}

const (
	send     = procfv3.ProcessingMode_SEND
	skip     = procfv3.ProcessingMode_SKIP
	buffered = procfv3.ProcessingMode_BUFFERED
	partial  = procfv3.ProcessingMode_BUFFERED_PARTIAL
	streamed = procfv3.ProcessingMode_STREAMED
	none     = procfv3.ProcessingMode_NONE
)

// upReq is what the fake upstream received.
type upReq struct {
	method  string
	path    string
	host    string
	header  http.Header
	body    string
	trailer http.Header
	chunked bool
}

// fakeUpstream answers like Envoy's handleUpstreamRequest: 200 and 100 bytes of 'a', with a
// content-length only when cl is set, and trailers when given.
type fakeUpstream struct {
	status  int
	body    string
	cl      bool
	empty   bool // 200 with content-length: 0
	chunks  int  // send the body in this many flushed chunks
	trailer map[string]string
	got     chan upReq
}

func newUpstream() *fakeUpstream {
	return &fakeUpstream{status: 200, body: strings.Repeat("a", 100), got: make(chan upReq, 8)}
}

func (u *fakeUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	u.got <- upReq{
		method: r.Method, path: r.URL.RequestURI(), host: r.Host, header: r.Header.Clone(), body: string(b), trailer: r.Trailer.Clone(),
		chunked: len(r.TransferEncoding) > 0 && r.TransferEncoding[0] == "chunked",
	}
	for k := range u.trailer {
		w.Header().Add("Trailer", k)
	}
	switch {
	case u.empty:
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(u.status)
		return
	case u.cl:
		w.Header().Set("Content-Length", strconv.Itoa(len(u.body)))
	}
	w.WriteHeader(u.status)
	http.NewResponseController(w).Flush()
	n := max(u.chunks, 1)
	size := (len(u.body) + n - 1) / n
	for i := 0; i < len(u.body); i += size {
		_, _ = io.WriteString(w, u.body[i:min(i+size, len(u.body))])
		http.NewResponseController(w).Flush()
	}
	for k, v := range u.trailer {
		w.Header().Set(k, v)
	}
}

// received returns the request the upstream got, failing if none came within a generous bound.
func (u *fakeUpstream) received(t *testing.T) upReq {
	t.Helper()
	select {
	case r := <-u.got:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("upstream not reached")
		return upReq{}
	}
}

func (u *fakeUpstream) notReached(t *testing.T) {
	t.Helper()
	select {
	case r := <-u.got:
		t.Fatalf("upstream reached: %s", r.method)
	default:
	}
}

// script answers each message kind ("request_headers", "response_body", ...) with its func; kinds
// without one are answered with an empty CONTINUE.
type script map[string]func(r *extprocv3.ProcessingRequest) (resps, error)

func (s script) processor() *emulatortest.Processor {
	return &emulatortest.Processor{Handle: func(_ context.Context, _ *emulatortest.Stream, r *extprocv3.ProcessingRequest) (resps, error) {
		if f, ok := s[kinds([]*extprocv3.ProcessingRequest{r})[0]]; ok {
			return f(r)
		}
		return cont(r)
	}}
}

func withHeaders(r *extprocv3.ProcessingRequest, m *extprocv3.HeaderMutation) *extprocv3.ProcessingResponse {
	return emulatortest.With(r, &extprocv3.CommonResponse{HeaderMutation: m})
}

func withBody(r *extprocv3.ProcessingRequest, body string, m *extprocv3.HeaderMutation) *extprocv3.ProcessingResponse {
	return emulatortest.With(r, &extprocv3.CommonResponse{
		HeaderMutation: m,
		BodyMutation:   &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte(body)}},
	})
}

func withTrailers(r *extprocv3.ProcessingRequest, m *extprocv3.HeaderMutation) *extprocv3.ProcessingResponse {
	resp := emulatortest.Continue(r)
	switch v := resp.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_RequestTrailers:
		v.RequestTrailers.HeaderMutation = m
	case *extprocv3.ProcessingResponse_ResponseTrailers:
		v.ResponseTrailers.HeaderMutation = m
	}
	return resp
}

// setHdrs is a mutation setting k1, v1, k2, v2, ... as raw values (append unset).
func setHdrs(kv ...string) *extprocv3.HeaderMutation {
	m := &extprocv3.HeaderMutation{}
	for i := 0; i+1 < len(kv); i += 2 {
		m.SetHeaders = append(m.SetHeaders, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])}})
	}
	return m
}

func appendHdr(m *extprocv3.HeaderMutation, k, v string) *extprocv3.HeaderMutation {
	m.SetHeaders = append(m.SetHeaders, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, RawValue: []byte(v)}, Append: wrapperspb.Bool(true)})
	return m
}

// envoyRun starts the emulator with b, the processor and the upstream.
func envoyRun(t *testing.T, b *bootstrapv3.Bootstrap, p *emulatortest.Processor, up http.Handler) *harness {
	t.Helper()
	return start(t, b, p, nil, up)
}

// request is one downstream request as Envoy's helpers send it.
type request struct {
	method   string
	path     string
	body     *string // nil: header-only
	chunked  bool    // no content-length (HTTP/1.1 chunked)
	header   map[string]string
	trailer  map[string]string
	bodyFrom io.Reader // a body written over time (chunked)
}

type reply struct {
	status  int
	header  http.Header
	body    string
	trailer http.Header
	err     error // reading the body failed (stream reset)
}

func str(s string) *string { return &s }

func (h *harness) send(t *testing.T, rq request) reply {
	t.Helper()
	if rq.method == "" {
		rq.method = http.MethodGet
	}
	if rq.path == "" {
		rq.path = "/"
	}
	var body io.Reader
	switch {
	case rq.bodyFrom != nil:
		body = rq.bodyFrom
	case rq.body != nil:
		body = strings.NewReader(*rq.body)
	}
	req, err := http.NewRequestWithContext(t.Context(), rq.method, h.url+rq.path, body)
	require.NoError(t, err)
	if rq.chunked || rq.bodyFrom != nil || rq.trailer != nil {
		req.ContentLength = -1
		req.TransferEncoding = []string{"chunked"}
		if req.Body == nil {
			req.Body = io.NopCloser(strings.NewReader(""))
		}
	}
	for k, v := range rq.header {
		req.Header.Set(k, v)
	}
	if rq.trailer != nil {
		req.Trailer = http.Header{}
		for k, v := range rq.trailer {
			req.Trailer.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, rerr := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: string(b), trailer: resp.Trailer, err: rerr}
}

// messages are the kinds of the messages the processor received on its first stream.
func (h *harness) messages() []string {
	s := h.proc.Streams()
	if len(s) == 0 {
		return nil
	}
	return kinds(s[0])
}
