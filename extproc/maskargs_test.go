package extproc_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/extproc"
	"github.com/mcpguard/mcpguard/masking"
	"github.com/mcpguard/mcpguard/mcp"
)

func newArgumentMasking(t testing.TB) (*extproc.ArgumentMasking, *prometheus.Registry) {
	t.Helper()
	c := masking.DefaultConfig()
	c.Requests.ToolArguments = true
	m, err := masking.New(c)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	s, err := extproc.NewArgumentMasking(m, reg)
	require.NoError(t, err)
	return s, reg
}

// callWith is a tools/call request carrying args and a progress token.
func callWith(id int, tool, args string) string {
	return `{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"method":"tools/call","params":{"name":"` + tool +
		`","arguments":` + args + `,"_meta":{"progressToken":"ann@example.com"}}}`
}

// seen is a request stage that keeps the arguments of the first message it sees.
func seen(name string, into *[]string) *stage {
	return &stage{name: name, req: func(_ context.Context, x *extproc.Exchange) (extproc.Verdict, error) {
		for _, m := range x.Body.Messages {
			*into = append(*into, string(m.Arguments))
		}
		return extproc.Pass, nil
	}}
}

// TestArgumentMasking: the body Envoy forwards carries masked arguments and a matching
// content-length, is valid JSON-RPC, and differs from what the agent sent only inside
// params.arguments; a stage before masking (policy) sees the arguments as sent, one after
// it (recording) sees them masked.
func TestArgumentMasking(t *testing.T) {
	args := `{"card":"` + card + `","amount":12.5,"save":true,"memo":"lunch","tags":["x",null]}`
	masked := `{"card":"[REDACTED:CREDIT_CARD]","amount":12.5,"save":true,"memo":"lunch","tags":["x",null]}`
	cases := []struct {
		name     string
		rev      string
		in, want string // want "" means the body passes unchanged
		notes    int
	}{
		{name: "tool call", rev: "2025-06-18", in: callWith(1, "pay", args), want: callWith(1, "pay", masked), notes: 1},
		{name: "clean arguments pass unchanged", rev: "2025-06-18", in: callWith(1, "pay", `{"memo":"lunch","n":4111111111111112}`)},
		{name: "no arguments", rev: "2025-06-18", in: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"pay"}}`},
		{
			name: "other methods are not masked", rev: "2025-06-18",
			in: `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p","arguments":{"card":"` + card + `"}}}`,
		},
		{
			name: "batch: only the masked element changes", rev: "2025-03-26",
			in: "[" + callWith(1, "pay", args) + ",\n " + `{"jsonrpc":"2.0","id":2,"method":"tools/list"}` + "," + callWith(3, "pay", `{"k":"ann@example.com"}`) + "]",
			want: "[" + callWith(1, "pay", masked) + "," + `{"jsonrpc":"2.0","id":2,"method":"tools/list"}` + "," +
				callWith(3, "pay", `{"k":"[REDACTED:EMAIL]"}`) + "]", notes: 2,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, reg := newArgumentMasking(t)
			var before, after []string
			var notes []extproc.Note
			last := seen("after", &after)
			next := last.req
			last.req = func(ctx context.Context, x *extproc.Exchange) (extproc.Verdict, error) {
				notes = append(notes, x.Notes()...)
				return next(ctx, x)
			}
			h := start(t, extproc.DefaultConfig(), seen("before", &before), st, last)
			e := h.open(t, t.Context())
			e.post(tc.in, "mcp-protocol-version", tc.rev, "content-length", strconv.Itoa(len(tc.in)))
			if tc.want == "" {
				e.passed()
				require.Equal(t, before, after, "later stages see the body as sent")
				require.Empty(t, notes)
				return
			}
			r := e.recv().GetRequestBody().GetResponse()
			require.NotNil(t, r, "expected a request body response")
			got := r.GetBodyMutation().GetBody()
			require.Equal(t, tc.want, string(got), "only params.arguments of the masked elements change")
			cl, ok := setHeader(t, r.GetHeaderMutation(), "content-length")
			require.True(t, ok, "content-length travels with the new body")
			require.Equal(t, strconv.Itoa(len(got)), cl)
			_, err := mcp.Parse(got)
			require.NoError(t, err, "the forwarded body is valid JSON-RPC")
			require.Contains(t, before[0], card, "policy decides on the arguments as sent")
			require.JSONEq(t, masked, after[0], "later stages see what goes upstream")
			require.Len(t, notes, tc.notes)
			require.False(t, notes[0].Time.IsZero(), "notes carry the time they were made")
			notes[0].Time = time.Time{}
			require.Equal(t, extproc.Note{
				Stage: "argument_masking", Kind: "masked",
				Attrs: map[string]any{"tool": "pay", "counts": map[string]int{"CREDIT_CARD": 1}},
			}, notes[0])
			require.InDelta(t, 1, metric(t, reg, "mcpguard_masking_argument_findings_total", "type", "CREDIT_CARD"), 0)
		})
	}
}

// TestArgumentMaskingNumbers: a card number sent as a bare JSON number is masked like one
// sent as a string (the member becomes a string holding the redaction).
func TestArgumentMaskingNumbers(t *testing.T) {
	st, _ := newArgumentMasking(t)
	h := start(t, extproc.DefaultConfig(), st)
	e := h.open(t, t.Context())
	in := callWith(1, "pay", `{"memo":"lunch","n":4111111111111111}`)
	e.post(in, "mcp-protocol-version", "2025-06-18", "content-length", strconv.Itoa(len(in)))
	got := e.recv().GetRequestBody().GetResponse().GetBodyMutation().GetBody()
	require.Equal(t, callWith(1, "pay", `{"memo":"lunch","n":"[REDACTED:CREDIT_CARD]"}`), string(got))
}

// TestArgumentMaskingOffByDefault: with the default masking configuration only the response
// stage is built, and a tool call with a card number goes upstream as sent.
func TestArgumentMaskingOffByDefault(t *testing.T) {
	require.False(t, masking.DefaultConfig().Requests.ToolArguments)
	st, _, _ := newMasking(t)
	h := start(t, extproc.DefaultConfig(), st)
	e := h.open(t, t.Context())
	e.post(callWith(1, "pay", `{"card":"`+card+`"}`), "mcp-protocol-version", "2025-06-18")
	e.passed()
}

// TestRequestReplaceRefused: a request stage may change what messages carry but not which
// messages go upstream or what policy decided on; anything else refuses the request.
func TestRequestReplaceRefused(t *testing.T) {
	one := callWith(1, "pay", `{"k":"v"}`)
	cases := []struct {
		name, rev, in, out string
		bodiless           bool
	}{
		{name: "not JSON", in: one, out: `{"jsonrpc":"2.0",`},
		{name: "other tool", in: one, out: strings.Replace(one, `"pay"`, `"refund"`, 1)},
		{name: "other id", in: one, out: strings.Replace(one, `"id":1`, `"id":"1"`, 1)},
		{name: "other method", in: one, out: `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`},
		{
			name: "protocol version in _meta", in: one,
			out: strings.Replace(one, `"_meta":{`, `"_meta":{"io.modelcontextprotocol/protocolVersion":"2025-06-18",`, 1),
		},
		{name: "single message becomes a batch", in: one, out: "[" + one + "]"},
		{name: "message dropped from a batch", rev: "2025-03-26", in: "[" + one + "," + callWith(2, "pay", `{}`) + "]", out: "[" + one + "]"},
		{name: "empty replacement", in: one, out: ""},
		{name: "bodiless request", bodiless: true, out: one},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var reached bool
			bad := &stage{name: "rewriter", req: func(context.Context, *extproc.Exchange) (extproc.Verdict, error) {
				return extproc.Verdict{Action: extproc.Replace, Message: json.RawMessage(tc.out)}, nil
			}}
			after := &stage{name: "after", req: func(context.Context, *extproc.Exchange) (extproc.Verdict, error) {
				reached = true
				return extproc.Pass, nil
			}}
			h := start(t, extproc.DefaultConfig(), bad, after)
			e := h.open(t, t.Context())
			rev := tc.rev
			if rev == "" {
				rev = "2025-06-18"
			}
			if tc.bodiless {
				e.requestHeaders(true, ":method", "GET", ":path", "/mcp", ":authority", "mcp.example", ":scheme", "https",
					"accept", "text/event-stream", "mcp-protocol-version", rev, "mcp-session-id", "s1", "x-request-id", "req-1")
			} else {
				e.post(tc.in, "mcp-protocol-version", rev)
			}
			ir := e.recv().GetImmediateResponse()
			require.NotNil(t, ir, "the request is refused by the gateway")
			require.Equal(t, http.StatusOK, int(ir.GetStatus().GetCode()), "an internal JSON-RPC error keeps the session")
			body, err := mcp.Parse(ir.GetBody())
			require.NoError(t, err)
			for _, m := range body.Messages {
				require.Equal(t, mcp.KindError, m.Kind)
				require.Equal(t, mcp.CodeInternal, m.Err.Code)
				require.Equal(t, "request could not be checked", m.Err.Message)
			}
			require.False(t, reached, "nothing after a refused replacement runs")
		})
	}
}

// withoutArguments decodes a JSON-RPC body and drops every params.arguments, leaving what
// argument masking must not change.
func withoutArguments(t *testing.T, body []byte) string {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(body, &v))
	msgs, ok := v.([]any)
	if !ok {
		msgs = []any{v}
	}
	for _, m := range msgs {
		if p, ok := m.(map[string]any)["params"].(map[string]any); ok {
			delete(p, "arguments")
		}
	}
	out, err := json.Marshal(v)
	require.NoError(t, err)
	return string(out)
}

// FuzzArgumentMasking sends arbitrary bodies through argument masking over gRPC: a body that
// passes either goes upstream unchanged or is replaced by valid JSON-RPC with a matching
// content-length, the same messages and nothing changed outside params.arguments, and
// masking it again finds nothing.
func FuzzArgumentMasking(f *testing.F) {
	f.Add([]byte(callWith(1, "pay", `{"card":"`+card+`","n":1}`)))
	f.Add([]byte("[" + callWith(1, "pay", `{"k":"ann@example.com"}`) + `,{"jsonrpc":"2.0","method":"notifications/initialized"}]`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"n","arguments":{"\u0063ard":"4111\u00201111 1111 1111"}}}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"n","arguments":{"a":{"b":["` + awsKey + `"]}}}}`))
	st, _ := newArgumentMasking(f)
	h := start(f, extproc.DefaultConfig(), st)
	f.Fuzz(func(t *testing.T, body []byte) {
		e := h.open(t, t.Context())
		e.post(string(body), "mcp-protocol-version", "2025-03-26")
		r := e.recv()
		if ir := r.GetImmediateResponse(); ir != nil {
			require.NotContains(t, string(ir.GetBody()), "request could not be checked",
				"argument masking never fails or produces a replacement the gateway refuses")
			return
		}
		c := r.GetRequestBody().GetResponse()
		require.NotNil(t, c)
		out := c.GetBodyMutation().GetBody()
		if out == nil {
			return
		}
		cl, ok := setHeader(t, c.GetHeaderMutation(), "content-length")
		require.True(t, ok)
		require.Equal(t, strconv.Itoa(len(out)), cl)
		in, err := mcp.Parse(body)
		require.NoError(t, err)
		got, err := mcp.Parse(out)
		require.NoError(t, err, "forwarded %q", out)
		require.Len(t, got.Messages, len(in.Messages))
		if json.Unmarshal(body, new(any)) == nil {
			require.Equal(t, withoutArguments(t, body), withoutArguments(t, out))
		}
		again := h.open(t, t.Context())
		again.post(string(out), "mcp-protocol-version", "2025-03-26")
		again.passed()
	})
}

// BenchmarkArgumentMasking is the request phase of one tools/call over real gRPC with the
// argument masking stage: clean arguments (scanned, forwarded unchanged) and arguments with
// a card number (the body is rewritten with its content-length).
func BenchmarkArgumentMasking(b *testing.B) {
	st, _ := newArgumentMasking(b)
	h := start(b, extproc.DefaultConfig(), st)
	memo := strings.Repeat("lunch with the team at the usual place ", 25) // ~1 KB of prose
	for _, bc := range []struct{ name, body string }{
		{name: "clean", body: callWith(1, "pay", `{"memo":"`+memo+`","amount":12.5}`)},
		{name: "card", body: callWith(1, "pay", `{"memo":"`+memo+`","card":"`+card+`"}`)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			b.ReportAllocs()
			for b.Loop() {
				e := h.open(b, ctx)
				e.post(bc.body, "mcp-protocol-version", "2025-06-18")
				require.NotNil(b, e.recv().GetRequestBody())
			}
		})
	}
}
