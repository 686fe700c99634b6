package mcp

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// feedAll feeds chunks into a fresh decoder and returns its events and the flushed tail.
func feedAll(t *testing.T, max int, chunks ...[]byte) ([]Event, []byte) {
	t.Helper()
	d := &Decoder{MaxEvent: max}
	var evs []Event
	for _, c := range chunks {
		evs = append(evs, d.Feed(c)...)
	}
	return evs, d.Flush()
}

// joinRaw concatenates the Raw bytes of events and a tail.
func joinRaw(evs []Event, tail []byte) []byte {
	var out []byte
	for _, e := range evs {
		out = append(out, e.Raw...)
	}
	return append(out, tail...)
}

func TestDecoderEvents(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Event // Raw is checked by concatenation
		tail string
	}{
		{
			name: "message event",
			in:   "event: message\ndata: {\"jsonrpc\":\"2.0\"}\n\n",
			want: []Event{{Name: "message", Data: []byte(`{"jsonrpc":"2.0"}`), HasData: true}},
		},
		{
			name: "multi-line data, id, retry",
			in:   "id: 42\ndata: a\ndata:b\ndata:  c\nretry: 3000\n\n",
			want: []Event{{ID: "42", HasID: true, Data: []byte("a\nb\n c"), HasData: true, Retry: "3000"}},
		},
		{
			name: "priming event with empty data",
			in:   "id: 0\ndata:\n\n",
			want: []Event{{ID: "0", HasID: true, Data: []byte{}, HasData: true}},
		},
		{
			name: "CRLF",
			in:   "data: x\r\nid: 7\r\n\r\ndata: y\r\n\r\n",
			want: []Event{{Data: []byte("x"), HasData: true, ID: "7", HasID: true}, {Data: []byte("y"), HasData: true}},
		},
		{
			name: "CR only",
			in:   "data: x\rdata: y\r\rdata: z\r\r\n",
			want: []Event{{Data: []byte("x\ny"), HasData: true}, {Data: []byte("z"), HasData: true}},
		},
		{
			name: "mixed endings",
			in:   "data: a\r\ndata: b\rdata: c\n\r\n",
			want: []Event{{Data: []byte("a\nb\nc"), HasData: true}},
		},
		{
			name: "leading BOM",
			in:   "\xEF\xBB\xBFdata: x\n\n",
			want: []Event{{Data: []byte("x"), HasData: true}},
		},
		{
			name: "BOM only stripped once",
			in:   "\xEF\xBB\xBF\n\xEF\xBB\xBFdata: x\n\n",
			want: []Event{{}, {}},
		},
		{
			name: "comment only (keep-alive)",
			in:   ": keep-alive\n\n:\n: more\n\n",
			want: []Event{{Comment: true}, {Comment: true}},
		},
		{
			name: "comment inside an event",
			in:   ": hi\ndata: x\n\n",
			want: []Event{{Data: []byte("x"), HasData: true}},
		},
		{
			name: "field without colon and unknown field",
			in:   "data\nfoo: bar\nevent\n\n",
			want: []Event{{Data: []byte{}, HasData: true}},
		},
		{
			name: "id with NUL ignored, empty id kept",
			in:   "id: a\x00b\ndata: 1\n\nid\ndata: 2\n\n",
			want: []Event{{Data: []byte("1"), HasData: true}, {ID: "", HasID: true, Data: []byte("2"), HasData: true}},
		},
		{
			name: "last id and event win",
			in:   "id: 1\nid: 2\nevent: a\nevent: b\ndata: x\n\n",
			want: []Event{{ID: "2", HasID: true, Name: "b", Data: []byte("x"), HasData: true}},
		},
		{
			name: "blank lines are empty events",
			in:   "\n\r\n\r",
			want: []Event{{}, {}},
			tail: "\r",
		},
		{
			name: "incomplete event held",
			in:   "data: x\n\ndata: partial\n",
			want: []Event{{Data: []byte("x"), HasData: true}},
			tail: "data: partial\n",
		},
		{
			name: "data with UTF-8",
			in:   "data: grüße ✓\n\n",
			want: []Event{{Data: []byte("grüße ✓"), HasData: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, tail := feedAll(t, 0, []byte(tt.in))
			require.Equal(t, tt.in, string(joinRaw(evs, tail)))
			require.Equal(t, tt.tail, string(tail))
			require.Len(t, evs, len(tt.want))
			for i := range evs {
				got := evs[i]
				got.Raw = nil
				require.Equal(t, tt.want[i], got, "event %d", i)
			}
		})
	}
}

const sseStream = "\xEF\xBB\xBFid: 0\ndata:\n\n" +
	": keep-alive\r\n\r\n" +
	"event: message\r\nid: 1\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\r\n\r\n" +
	"data: line1\rdata: line2\r\r" +
	"retry: 500\nid: 2\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\n" +
	"data: \"result\":{\"content\":[{\"type\":\"text\",\"text\":\"grüße\"}]}}\n\n" +
	"data: tail\r\n\r"

func TestDecoderSplitEveryOffset(t *testing.T) {
	in := []byte(sseStream)
	whole, wholeTail := feedAll(t, 0, in)
	require.Len(t, whole, 5)
	require.Equal(t, "data: tail\r\n\r", string(wholeTail), "a trailing CR waits for a possible LF")
	for i := 0; i <= len(in); i++ {
		evs, tail := feedAll(t, 0, in[:i], in[i:])
		require.Equal(t, whole, evs, "split at %d", i)
		require.Equal(t, wholeTail, tail, "split at %d", i)
		require.Equal(t, in, joinRaw(evs, tail), "split at %d", i)
	}
}

func TestDecoderSplitEveryPair(t *testing.T) {
	in := []byte("\xEF\xBB\xBFid: 1\r\ndata: a\r\n\r\n: c\r\rdata: é\n\n")
	whole, wholeTail := feedAll(t, 0, in)
	require.Len(t, whole, 3)
	for i := 0; i <= len(in); i++ {
		for j := i; j <= len(in); j++ {
			evs, tail := feedAll(t, 0, in[:i], in[i:j], in[j:])
			require.Equal(t, whole, evs, "split at %d,%d", i, j)
			require.Equal(t, wholeTail, tail)
		}
	}
}

func TestDecoderByteAtATime(t *testing.T) {
	in := []byte(sseStream)
	whole, wholeTail := feedAll(t, 0, in)
	chunks := make([][]byte, len(in))
	for i := range in {
		chunks[i] = in[i : i+1]
	}
	evs, tail := feedAll(t, 0, chunks...)
	require.Equal(t, whole, evs)
	require.Equal(t, wholeTail, tail)
}

func TestDecoderCRLFSplit(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		raws   []string
		tail   string
	}{
		{"between CR and LF of a field line", []string{"data: a\r", "\n\r\n"}, []string{"data: a\r\n\r\n"}, ""},
		{"between CR and LF of the blank line", []string{"data: a\r\n\r", "\n"}, []string{"data: a\r\n\r\n"}, ""},
		{"CR blank line confirmed by next event", []string{"data: a\r\r", "data: b\r\r\n"}, []string{"data: a\r\r", "data: b\r\r\n"}, ""},
		{"held CR at end of stream", []string{"data: a\r\r"}, nil, "data: a\r\r"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunks := make([][]byte, len(tt.chunks))
			for i, c := range tt.chunks {
				chunks[i] = []byte(c)
			}
			evs, tail := feedAll(t, 0, chunks...)
			var raws []string
			for _, e := range evs {
				raws = append(raws, string(e.Raw))
			}
			require.Equal(t, tt.raws, raws)
			require.Equal(t, tt.tail, string(tail))
		})
	}
}

func TestDecoderPending(t *testing.T) {
	d := &Decoder{}
	require.Empty(t, d.Feed([]byte("data: abc")))
	require.Equal(t, 9, d.Pending())
	require.Len(t, d.Feed([]byte("\n\ndata")), 1)
	require.Equal(t, 4, d.Pending())
	require.Equal(t, "data", string(d.Flush()))
	require.Equal(t, 0, d.Pending())
}

func TestDecoderEventsStayValid(t *testing.T) {
	d := &Decoder{}
	first := d.Feed([]byte("data: one\n\ndata: t"))
	require.Len(t, first, 1)
	for range 100 {
		d.Feed([]byte("wo two two two\n"))
	}
	d.Feed([]byte("\n"))
	require.Equal(t, "data: one\n\n", string(first[0].Raw))
	require.Equal(t, "one", string(first[0].Data))
}

func TestDecoderOversize(t *testing.T) {
	big := "data: " + strings.Repeat("x", 100) + "\ndata: y\n\n"
	small := "data: s\n\n"
	tests := []struct {
		name   string
		max    int
		chunks []string
	}{
		{"completes in one chunk", 32, []string{small + big + small}},
		{"grows across chunks", 32, []string{small + big[:20], big[20:50], big[50:] + small}},
		{"byte at a time", 32, strings.Split(small+big+small, "")},
		{"split in the CRLF of the blank line", 32, []string{small + strings.ReplaceAll(big, "\n", "\r\n")[:len(big)+2], "\n" + small}},
		{"event exactly at the cap is parsed", len(big), []string{small, big, small}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunks := make([][]byte, len(tt.chunks))
			var in []byte
			for i, c := range tt.chunks {
				chunks[i] = []byte(c)
				in = append(in, c...)
			}
			evs, tail := feedAll(t, tt.max, chunks...)
			require.Equal(t, in, joinRaw(evs, tail))
			require.Empty(t, tail)
			// Group: small event, oversized fragments ending with End (or the parsed big event), small event.
			require.Equal(t, "s", string(evs[0].Data))
			require.Equal(t, "s", string(evs[len(evs)-1].Data))
			mid := evs[1 : len(evs)-1]
			if tt.max >= len(big) {
				require.Len(t, mid, 1)
				require.False(t, mid[0].Oversize)
				return
			}
			var frag []byte
			for i, e := range mid {
				require.True(t, e.Oversize)
				require.Equal(t, i == len(mid)-1, e.End, "fragment %d", i)
				require.Empty(t, e.Data)
				require.LessOrEqual(t, len(e.Raw), 2*tt.max+len(tt.chunks[0])+len(big))
				frag = append(frag, e.Raw...)
			}
			require.Contains(t, []string{big, strings.ReplaceAll(big, "\n", "\r\n")}, string(frag))
		})
	}
}

func TestDecoderOversizeBoundsMemory(t *testing.T) {
	d := &Decoder{MaxEvent: 1024}
	chunk := bytes.Repeat([]byte("data: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"), 64)
	var n int
	for range 200 {
		for _, e := range d.Feed(chunk) {
			require.True(t, e.Oversize)
			n += len(e.Raw)
		}
		require.LessOrEqual(t, d.Pending(), 1024)
	}
	evs := d.Feed([]byte("\n"))
	require.Len(t, evs, 1)
	require.True(t, evs[0].End)
	require.Equal(t, 200*len(chunk)+1, n+len(evs[0].Raw))
}

func TestEventEncode(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{"full", Event{ID: "1", HasID: true, Name: "message", Data: []byte("a\nb"), HasData: true, Retry: "10"}, "id: 1\nevent: message\ndata: a\ndata: b\nretry: 10\n\n"},
		{"empty data kept", Event{Data: []byte{}, HasData: true}, "data: \n\n"},
		{"no data", Event{ID: "", HasID: true}, "id: \n\n"},
		{"CR and CRLF in data split lines", Event{Data: []byte("a\r\nb\rc"), HasData: true}, "data: a\ndata: b\ndata: c\n\n"},
		{"line breaks cannot inject fields", Event{ID: "1\ndata: evil", HasID: true, Name: "x\rdata: evil", Data: []byte("ok"), HasData: true}, "id: 1\nevent: x\ndata: ok\n\n"},
		{"trailing newline in data", Event{Data: []byte("a\n"), HasData: true}, "data: a\ndata: \n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := tt.ev.Encode()
			require.Equal(t, tt.want, string(out))
			evs, tail := feedAll(t, 0, out)
			require.Empty(t, tail)
			require.Len(t, evs, 1)
			require.Equal(t, out, evs[0].Raw)
		})
	}
}

func TestEventEncodeRoundTrip(t *testing.T) {
	evs, _ := feedAll(t, 0, []byte(sseStream))
	for i, e := range evs {
		t.Run(string(rune('a'+i)), func(t *testing.T) {
			if e.Comment {
				return
			}
			back, tail := feedAll(t, 0, e.Encode())
			require.Empty(t, tail)
			require.Len(t, back, 1)
			got := back[0]
			got.Raw = nil
			want := e
			want.Raw = nil
			require.Equal(t, want, got)
		})
	}
}
