package extproc_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mcpguard/mcpguard/extproc"
	"github.com/mcpguard/mcpguard/masking"
	"github.com/mcpguard/mcpguard/mcp"
)

const (
	card   = "4111 1111 1111 1111"
	awsKey = "AKIAZ3MHQX7RBN2KLD4P"
)

func newMasking(t *testing.T) (*extproc.Masking, *masking.Masker, *prometheus.Registry) {
	t.Helper()
	m, err := masking.New(masking.DefaultConfig())
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	s, err := extproc.NewMasking(m, reg)
	require.NoError(t, err)
	return s, m, reg
}

// noted is a stage after masking that keeps the notes it sees.
func noted(into *[]extproc.Note) *stage {
	return &stage{name: "after", resp: func(_ context.Context, x *extproc.Exchange, _ *extproc.Response) (extproc.Verdict, error) {
		*into = append((*into)[:0], x.Notes()...)
		return extproc.Pass, nil
	}}
}

// toolResult is a tools/call result with text and structuredContent.
func toolResult(id int, text string) string {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "result": map[string]any{
		"content":           []any{map[string]any{"type": "text", "text": text}},
		"structuredContent": map[string]any{"text": text, "count": 2},
	}})
	return string(b)
}

func TestMaskingStage(t *testing.T) {
	secret := "card " + card + " key " + awsKey
	masked := "card [REDACTED:CREDIT_CARD] key [REDACTED:AWS_ACCESS_KEY]"
	cases := []struct {
		name, in, want string
		counts         map[string]int
	}{
		{
			name: "tool result text and structuredContent", in: toolResult(1, secret), want: toolResult(1, masked),
			counts: map[string]int{"CREDIT_CARD": 2, "AWS_ACCESS_KEY": 2},
		},
		{name: "clean result passes unchanged", in: toolResult(1, "nothing to see"), want: ""},
		{
			name: "error message", in: `{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"connect postgres://app:Tr0ub4dorXx3@db failed"}}`,
			want:   `{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"connect postgres://app:[REDACTED:CONN_PASSWORD]@db failed"}}`,
			counts: map[string]int{"CONN_PASSWORD": 1},
		},
		{
			name: "string id and envelope untouched", in: `{"jsonrpc":"2.0","id":"ann@example.com","result":{"contents":[{"uri":"x","text":"mail ann@example.com"}]}}`,
			want:   `{"jsonrpc":"2.0","id":"ann@example.com","result":{"contents":[{"uri":"x","text":"mail [REDACTED:EMAIL]"}]}}`,
			counts: map[string]int{"EMAIL": 1},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, _, reg := newMasking(t)
			var notes []extproc.Note
			h := start(t, extproc.DefaultConfig(), st, noted(&notes))
			e := h.open(t, t.Context())
			e.post(toolsCall(1, "query"), "mcp-protocol-version", "2025-06-18")
			e.passed()
			e.responseHeaders(false, ":status", "200", "content-type", "application/json", "content-length", strconv.Itoa(len(tc.in)))
			require.NotNil(t, e.recv().GetResponseHeaders())
			e.responseBody([]byte(tc.in), true)
			r := e.recv().GetResponseBody().GetResponse()
			if tc.want == "" {
				require.Nil(t, r.GetBodyMutation(), "an unchanged body is not rewritten")
				require.Empty(t, notes)
				return
			}
			got := r.GetBodyMutation().GetBody()
			require.JSONEq(t, tc.want, string(got))
			cl, ok := setHeader(t, r.GetHeaderMutation(), "content-length")
			require.True(t, ok)
			require.Equal(t, strconv.Itoa(len(got)), cl)
			require.Len(t, notes, 1)
			require.False(t, notes[0].Time.IsZero(), "notes carry the time they were made")
			notes[0].Time = time.Time{}
			require.Equal(t, extproc.Note{Stage: "masking", Kind: "masked", Attrs: map[string]any{"counts": tc.counts}}, notes[0])
			for typ, n := range tc.counts {
				require.InDelta(t, float64(n), metric(t, reg, "mcpguard_masking_findings_total", "type", typ), 0)
			}
		})
	}
}

func TestMaskingSSEMessages(t *testing.T) {
	st, _, _ := newMasking(t)
	h := start(t, extproc.DefaultConfig(), st)
	progress := `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":1,"message":"mailing ann@example.com"}}`
	sampling := `{"jsonrpc":"2.0","id":7,"method":"sampling/createMessage","params":{"messages":[{"role":"user","content":{"type":"text","text":"ssn 123-45-6788"}}],"maxTokens":9}}`
	in := "id: 1\ndata: " + progress + "\n\n" + "id: 2\ndata: " + sampling + "\n\n" + "id: 3\ndata: " + toolResult(1, "key "+awsKey) + "\n\n"
	e := openSSE(t, h)
	e.responseBody([]byte(in), true)
	out := emitted(t, e.recv(), []byte(in))
	var dec mcp.Decoder
	evs := dec.Feed(out)
	require.Len(t, evs, 3)
	require.JSONEq(t, strings.Replace(progress, "ann@example.com", "[REDACTED:EMAIL]", 1), string(evs[0].Data))
	require.JSONEq(t, strings.Replace(sampling, "123-45-6788", "[REDACTED:US_SSN]", 1), string(evs[1].Data))
	require.JSONEq(t, toolResult(1, "key [REDACTED:AWS_ACCESS_KEY]"), string(evs[2].Data))
	require.Equal(t, []string{"1", "2", "3"}, []string{evs[0].ID, evs[1].ID, evs[2].ID})
}

// oversizeEvent is an SSE event over a 256-byte max_event_bytes holding secrets.
func oversizeEvent() string {
	text := strings.Repeat("filler words ", 40) + "card " + card + " key " + awsKey +
		"\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n-----END RSA PRIVATE KEY-----\n" +
		strings.Repeat(" more words", 30)
	return "id: 4\ndata: " + toolResult(2, text) + "\n\n"
}

// TestMaskingOversizeEventSplitAtEveryOffset streams an event over max_event_bytes in two
// pieces split at every byte offset: it passes masked exactly as masking its whole wire
// text, nothing planted leaks, and the data stays valid JSON.
func TestMaskingOversizeEventSplitAtEveryOffset(t *testing.T) {
	st, m, _ := newMasking(t)
	cfg := extproc.DefaultConfig()
	cfg.MaxEventBytes = 256
	h := start(t, cfg, st)
	ev := oversizeEvent()
	next := "id: 5\ndata: " + toolResult(3, "mail ann@example.com") + "\n\n"
	want, counts := m.Wire([]byte(ev))
	require.NotContains(t, string(want), awsKey)
	require.NotContains(t, string(want), "MIIEow")
	require.Equal(t, masking.Counts{"CREDIT_CARD": 2, "AWS_ACCESS_KEY": 2, "PRIVATE_KEY": 2}, counts)
	for k := 1; k < len(ev); k += 3 {
		e := openSSE(t, h)
		e.responseBody([]byte(ev[:k]), false)
		out := emitted(t, e.recv(), []byte(ev[:k]))
		e.responseBody([]byte(ev[k:]+next), true)
		out = append(out, emitted(t, e.recv(), []byte(ev[k:]+next))...)
		require.True(t, strings.HasPrefix(string(out), string(want)), "split at %d:\n%s", k, out)
		rest := strings.TrimPrefix(string(out), string(want))
		require.Equal(t, "id: 5\ndata: "+toolResult(3, "mail [REDACTED:EMAIL]")+"\n\n", rest, "the next event is parsed and masked normally")
		data := strings.TrimSuffix(strings.TrimPrefix(string(want), "id: 4\ndata: "), "\n\n")
		require.True(t, json.Valid([]byte(data)))
	}
}

// TestMaskingOversizeChunks streams an oversized event in small chunks: the masked bytes
// equal masking the whole event, and the findings are counted.
func TestMaskingOversizeChunks(t *testing.T) {
	st, m, reg := newMasking(t)
	cfg := extproc.DefaultConfig()
	cfg.MaxEventBytes = 256
	h := start(t, cfg, st)
	ev := oversizeEvent()
	want, _ := m.Wire([]byte(ev))
	e := openSSE(t, h)
	var out []byte
	for i := 0; i < len(ev); i += 100 {
		c := []byte(ev[i:min(len(ev), i+100)])
		e.responseBody(c, i+100 >= len(ev))
		out = append(out, emitted(t, e.recv(), c)...)
	}
	require.Equal(t, string(want), string(out))
	require.InDelta(t, 2, metric(t, reg, "mcpguard_masking_findings_total", "type", "AWS_ACCESS_KEY"), 0)
}

// TestMaskingOversizeNeedsEveryStage: an oversized event passes only when every response
// stage can filter raw fragments; otherwise it is refused as before.
func TestMaskingOversizeNeedsEveryStage(t *testing.T) {
	st, _, _ := newMasking(t)
	cfg := extproc.DefaultConfig()
	cfg.MaxEventBytes = 256
	for _, tc := range []struct {
		name   string
		stages []extproc.Stage
	}{
		{name: "a stage that cannot filter", stages: []extproc.Stage{st, &stage{name: "policy"}}},
		{name: "no response stage", stages: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, cfg, tc.stages...)
			e := openSSE(t, h)
			e.responseBody([]byte(oversizeEvent()), false)
			_, err := e.s.Recv()
			require.Error(t, err)
			require.Equal(t, codes.ResourceExhausted, status.Code(err), "err %v", err)
		})
	}
}
