package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/stretchr/testify/require"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"

	"github.com/mcpguard/mcpguard/e2e/emulator/emulatortest"
)

// syncBuffer is a log sink the handler goroutines and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startOpts is start with Options adjusted by edit (logger, timing header).
func startOpts(t *testing.T, b *bootstrapv3.Bootstrap, proc *emulatortest.Processor, authz *emulatortest.Authorizer, upstream http.Handler, edit func(*Options)) string {
	t.Helper()
	if upstream == nil {
		upstream = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	}
	if proc == nil {
		proc = &emulatortest.Processor{}
	}
	if authz == nil {
		authz = &emulatortest.Authorizer{}
	}
	up := httptest.NewServer(upstream)
	t.Cleanup(up.Close)
	grpcAddr := emulatortest.Serve(t, proc, authz)
	o := Options{
		Listen:   "127.0.0.1:0",
		Clusters: map[string]string{"mcpguard_grpc": grpcAddr, "mcp_upstream": up.Listener.Addr().String()},
	}
	edit(&o)
	emu, err := New(b, o)
	require.NoError(t, err)
	require.NoError(t, emu.Start(t.Context()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, emu.Close(ctx))
	})
	return "http://" + emu.Addr()
}

// parsedTiming is the debug header split into its fields.
type parsedTiming struct {
	authz, extproc, upstream time.Duration
	n                        int
	hasUpstream              bool
}

func parseTimingHeader(t *testing.T, v string) parsedTiming {
	t.Helper()
	var p parsedTiming
	for _, kv := range strings.Split(v, ";") {
		k, val, ok := strings.Cut(kv, "=")
		require.True(t, ok, "field %q", kv)
		switch k {
		case "n":
			n, err := strconv.Atoi(val)
			require.NoError(t, err)
			p.n = n
		case "authz", "extproc", "upstream":
			f, err := strconv.ParseFloat(strings.TrimSuffix(val, "ms"), 64)
			require.NoError(t, err)
			d := time.Duration(f * float64(time.Millisecond))
			switch k {
			case "authz":
				p.authz = d
			case "extproc":
				p.extproc = d
			default:
				p.upstream, p.hasUpstream = d, true
			}
		default:
			t.Fatalf("unknown field %q in %q", k, v)
		}
	}
	return p
}

// slowProc answers every message after delay, so each round trip lasts at least that long.
func slowProc(delay time.Duration) *emulatortest.Processor {
	return &emulatortest.Processor{Handle: func(ctx context.Context, _ *emulatortest.Stream, r *extprocv3.ProcessingRequest) (resps, error) {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
		}
		return cont(r)
	}}
}

func slowAuthz(delay time.Duration, resp *authv3.CheckResponse) *emulatortest.Authorizer {
	return &emulatortest.Authorizer{Decide: func(ctx context.Context, _ *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
		}
		return resp, nil
	}}
}

// Lower bounds only: a round trip that includes a sleep of d lasts at least d on any machine.
const (
	authzDelay = 20 * time.Millisecond
	procDelay  = 5 * time.Millisecond
)

func TestTimingHeaderAndTrailer(t *testing.T) {
	url := startOpts(t, loadBase(t), slowProc(procDelay), slowAuthz(authzDelay, &authv3.CheckResponse{Status: &rpcstatus.Status{}}), nil,
		func(o *Options) { o.TimingHeader = true })
	resp, body := do(t, http.MethodPost, url+"/mcp", `{"id":1}`)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "ok", body)

	// The response body is STREAMED in base.yaml: headers go out after request headers, request body
	// and response headers were answered; the trailer adds the response body.
	h := parseTimingHeader(t, resp.Header.Get(TimingHeader))
	require.Equal(t, 3, h.n)
	require.GreaterOrEqual(t, h.authz, authzDelay)
	require.GreaterOrEqual(t, h.extproc, 3*procDelay)
	require.True(t, h.hasUpstream)

	tr := parseTimingHeader(t, resp.Trailer.Get(TimingHeader))
	require.Equal(t, 4, tr.n)
	require.Equal(t, h.authz, tr.authz, "authz is not called again")
	require.GreaterOrEqual(t, tr.extproc, h.extproc+procDelay)
}

func TestTimingHeaderOffByDefault(t *testing.T) {
	url := startOpts(t, loadBase(t), nil, nil, nil, func(*Options) {})
	resp, _ := do(t, http.MethodPost, url+"/mcp", `{"id":1}`)
	require.Equal(t, 200, resp.StatusCode)
	require.Empty(t, resp.Header.Get(TimingHeader))
	require.Empty(t, resp.Trailer.Get(TimingHeader))
}

// accessLines decodes the JSON access log lines.
func accessLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		if m["msg"] == "access" {
			out = append(out, m)
		}
	}
	return out
}

// waitAccess waits for n access lines: the line is written after the response completed.
func waitAccess(t *testing.T, buf *syncBuffer, n int) []map[string]any {
	t.Helper()
	var lines []map[string]any
	require.Eventually(t, func() bool {
		lines = accessLines(t, buf.String())
		return len(lines) >= n
	}, 10*time.Second, 5*time.Millisecond)
	require.Len(t, lines, n)
	return lines
}

func TestAccessLog(t *testing.T) {
	deny := &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(codes.PermissionDenied)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden}, Body: "no",
		}},
	}
	allow := &authv3.CheckResponse{Status: &rpcstatus.Status{}}
	tests := []struct {
		name        string
		check       *authv3.CheckResponse
		proc        *emulatortest.Processor
		wantStatus  float64
		wantDetails string
		wantCalls   float64
		wantPhases  map[string]float64 // phase → n
		wantUp      bool
	}{
		{
			name: "proxied", check: allow, proc: slowProc(procDelay), wantStatus: 200, wantDetails: "via_upstream", wantCalls: 4, wantUp: true,
			wantPhases: map[string]float64{"request_headers": 1, "request_body": 1, "response_headers": 1, "response_body": 1},
		},
		{
			name: "ext_authz denial", check: deny, proc: slowProc(procDelay), wantStatus: 403, wantDetails: "ext_authz_denied", wantCalls: 0,
		},
		{
			name: "immediate response counts the answered message", check: allow,
			proc: &emulatortest.Processor{Handle: func(context.Context, *emulatortest.Stream, *extprocv3.ProcessingRequest) (resps, error) {
				time.Sleep(procDelay)
				return resps{immediate(451, "blocked")}, nil
			}},
			wantStatus: 451, wantDetails: "blocked_by_policy", wantCalls: 1,
			wantPhases: map[string]float64{"request_headers": 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			buf := &syncBuffer{}
			url := startOpts(t, loadBase(t), tc.proc, slowAuthz(authzDelay, tc.check), nil, func(o *Options) {
				o.Log = slog.New(slog.NewJSONHandler(buf, nil))
			})
			resp, _ := do(t, http.MethodPost, url+"/mcp?token=sekret-query", `{"secret":"sekret-body"}`, "Authorization", "Bearer sekret-token")
			require.Equal(t, int(tc.wantStatus), resp.StatusCode)
			require.Empty(t, resp.Header.Get(TimingHeader), "debug header off")
			l := waitAccess(t, buf, 1)[0]
			require.Equal(t, "INFO", l["level"])
			require.Equal(t, "POST", l["method"])
			require.Equal(t, "/mcp", l["path"], "query dropped")
			require.InDelta(t, tc.wantStatus, l["status"], 0)
			require.Equal(t, tc.wantDetails, l["details"])
			require.NotEmpty(t, l["request_id"])
			require.InDelta(t, 1, l["ext_authz_calls"], 0)
			require.GreaterOrEqual(t, l["ext_authz_ms"], float64(authzDelay.Milliseconds()))
			require.InDelta(t, tc.wantCalls, l["ext_proc_calls"], 0)
			require.GreaterOrEqual(t, l["ext_proc_ms"], tc.wantCalls*float64(procDelay.Milliseconds()))
			_, hasUp := l["upstream_ms"]
			require.Equal(t, tc.wantUp, hasUp)
			phases, _ := l["ext_proc"].(map[string]any)
			require.Len(t, phases, len(tc.wantPhases))
			for name, n := range tc.wantPhases {
				ph, ok := phases[name].(map[string]any)
				require.True(t, ok, "phase %s in %v", name, phases)
				require.InDelta(t, n, ph["n"], 0)
				require.GreaterOrEqual(t, ph["max_ms"], float64(procDelay.Milliseconds()))
				require.GreaterOrEqual(t, ph["ms"], ph["max_ms"])
			}
			require.NotContains(t, buf.String(), "sekret", "no token, query or body in the log")
		})
	}
}

func TestAccessLogPipelinedStreamedChunks(t *testing.T) {
	// Every STREAMED response chunk is one round trip, measured from its own send.
	chunks := 3
	up := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for i := range chunks {
			_, _ = io.WriteString(w, "chunk"+strconv.Itoa(i))
			http.NewResponseController(w).Flush()
		}
	})
	buf := &syncBuffer{}
	url := startOpts(t, loadBase(t), slowProc(procDelay), nil, up, func(o *Options) {
		o.Log = slog.New(slog.NewJSONHandler(buf, nil))
		o.TimingHeader = true
	})
	resp, body := do(t, http.MethodGet, url+"/mcp", "")
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "chunk0chunk1chunk2", body)
	l := waitAccess(t, buf, 1)[0]
	ph := l["ext_proc"].(map[string]any)["response_body"].(map[string]any)
	n := ph["n"].(float64)
	// Go's upstream client may merge or split chunks, plus the final empty end_of_stream chunk.
	require.GreaterOrEqual(t, n, float64(1))
	tr := parseTimingHeader(t, resp.Trailer.Get(TimingHeader))
	require.InDelta(t, l["ext_proc_calls"], float64(tr.n), 0, "trailer and access log agree")
}
