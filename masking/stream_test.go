package masking

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/masking/maskingtest"
)

// planted are secrets of every built-in type; none may survive masking.
var planted = []string{
	"4111 1111 1111 1111", "5555555555554444", "123-45-6788", "alice.smith@example.com", "(415) 555-0132",
	"+44 20 7946 0958", "DE89 3704 0044 0532 0130 00", "AKIAZ3MHQX7RBN2KLD4P", "q8Fv/3Jk+Lw9Zr2Tn5Xb7Hc1Md4Sg6Pa0Ye8Ru3W",
	"ghp_R7mKx2Lq9Vt4Nw8Zb3Hc6Jd1Fs5Gp0Ya2Ue7", "glpat-x9Kc2Vb7Nm4Lq8Wz3Rt5", "xoxb-2048576123-4096173849-Zq8Wm3Rk9Tn2Vb6Xc1Lp5Hd",
	"sk_live_51Hq8ZxK3mN7pR2tV9wB4cY6", "AIzaSyB3k9Zq2Xv7Lm4Np8Rt1Wc6Hd0Jf5Gs3Qz",
	"sk-proj-Z3k9Q2x7Lm4Np8Rt1Wc6Hd0Jf5Gs3Bv9Yq2Xe7Lm4Np8Rt1Wc6Hd0Jf5Gs3Bv9Y",
	"sk-ant-api03-Zx8Kq3Vm7Lp2Nt9Rw4Bc6Hd1Jf5Gs0Ya8Ue3Io7Pk2Mn9Qw4Er6Ty1Ui5Op3As8Df2Gh",
	"00QCjAl4MlVWPXM8bkR2xL9nT3vY7zK1pD5sF6gH0j",
	"eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhZ2VudC0xIn0.c2lnbmF0dXJlLWJ5dGVz",
	"MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun", "Tr0ub4dorXx3", "Xk9#mP2$qLw7Zr",
}

// providerLines carries a sample of every provider format, one per line.
var providerLines = func() string {
	var b strings.Builder
	for _, p := range maskingtest.ProviderSamples(1) {
		planted = append(planted, p.Text)
		b.WriteString(p.Line + "\n")
	}
	return b.String()
}()

// wireEvent is an SSE event carrying a tool result whose text holds every planted value,
// as it crosses the wire (JSON-escaped).
func wireEvent(t testing.TB) []byte {
	t.Helper()
	text := "Report for the audit.\ncard " + planted[0] + " and " + planted[1] + ", ssn " + planted[2] +
		"\ncontact " + planted[3] + " " + planted[4] + " / " + planted[5] + "\niban " + planted[6] +
		"\naws " + planted[7] + " aws_secret_access_key=" + planted[8] + "\ntokens " + strings.Join(planted[9:16], " ") +
		"\nokta SSWS " + planted[16] + "\njwt " + planted[17] +
		"\n-----BEGIN RSA PRIVATE KEY-----\n" + planted[18] + "\n-----END RSA PRIVATE KEY-----\n" +
		"db postgres://app:" + planted[19] + "@db.internal/app password=" + planted[20] + "\nend of report."
	msg, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "result": map[string]any{
		// The provider samples go in once: the split tests below are quadratic in the event's length.
		"content": []any{map[string]any{"type": "text", "text": text + "\n" + providerLines}}, "structuredContent": map[string]any{"text": text},
	}})
	require.NoError(t, err)
	return append(append([]byte("id: 9\ndata: "), msg...), "\n\n"...)
}

func collect(s *Stream, chunks ...[]byte) []byte {
	var out []byte
	for _, c := range chunks {
		out = append(out, s.Write(c)...)
	}
	return append(out, s.Close()...)
}

func checkWire(t *testing.T, out []byte) {
	t.Helper()
	for _, p := range planted {
		enc, _ := json.Marshal(p)
		require.NotContains(t, string(out), strings.Trim(string(enc), `"`), "planted value leaked")
	}
	data := bytes.TrimSuffix(bytes.TrimPrefix(out, []byte("id: 9\ndata: ")), []byte("\n\n"))
	require.True(t, json.Valid(data), "masked event data must stay valid JSON: %s", data)
}

// TestStreamSplitAtEveryOffset feeds an event in two pieces split at every byte offset, and
// in runs of small chunks, through a Stream with a small window: the output is always
// byte-identical to masking the whole text, and nothing planted leaks.
func TestStreamSplitAtEveryOffset(t *testing.T) {
	m, err := New(DefaultConfig())
	require.NoError(t, err)
	m.holdback, m.batch = 600, 16 // small, to exercise many cuts on a short text
	ev := wireEvent(t)
	want, counts := m.Wire(ev)
	checkWire(t, want)
	require.Len(t, counts, numBuiltin, "every built-in type is found: %v", counts)

	t.Run("two pieces", func(t *testing.T) {
		for k := 0; k <= len(ev); k++ {
			got := collect(m.NewStream(), ev[:k], ev[k:])
			if !bytes.Equal(want, got) {
				require.Equal(t, string(want), string(got), "split at %d", k)
			}
		}
	})
	t.Run("three pieces", func(t *testing.T) {
		for k := 0; k+37 <= len(ev); k += 3 {
			got := collect(m.NewStream(), ev[:k], ev[k:k+37], ev[k+37:])
			if !bytes.Equal(want, got) {
				require.Equal(t, string(want), string(got), "split at %d and %d", k, k+37)
			}
		}
	})
	for _, size := range []int{1, 2, 3, 7, 64, 599, 601, 4096} {
		t.Run(fmt.Sprintf("chunks of %d", size), func(t *testing.T) {
			var chunks [][]byte
			for i := 0; i < len(ev); i += size {
				chunks = append(chunks, ev[i:min(len(ev), i+size)])
			}
			require.Equal(t, string(want), string(collect(m.NewStream(), chunks...)), "chunk size %d", size)
		})
	}
}

// TestStreamDefaultWindow streams a large body of many events in random chunks through the
// production window: the output equals masking the whole body at once.
func TestStreamDefaultWindow(t *testing.T) {
	m, err := New(DefaultConfig())
	require.NoError(t, err)
	ev := wireEvent(t)
	body := bytes.Repeat(ev, 120) // ~250 KB
	want, wantCounts := m.Wire(body)
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 3 {
		s := m.NewStream()
		var out []byte
		for i := 0; i < len(body); {
			n := 1 + rng.IntN(9000)
			out = append(out, s.Write(body[i:min(len(body), i+n)])...)
			i += n
		}
		out = append(out, s.Close()...)
		require.Len(t, out, len(want), "round %d", round)
		require.True(t, bytes.Equal(want, out), "round %d", round)
		require.Equal(t, wantCounts, s.Counts(), "round %d", round)
	}
}

func TestStreamHoldsBack(t *testing.T) {
	m, err := New(DefaultConfig())
	require.NoError(t, err)
	s := m.NewStream()
	big := bytes.Repeat([]byte("plain words without secrets. "), 4000)
	out := s.Write(big)
	require.NotEmpty(t, out, "a large body streams before its end")
	require.GreaterOrEqual(t, len(big)-len(out), m.Holdback(), "the last Holdback bytes stay back")
	require.Equal(t, string(big), string(append(out, s.Close()...)))
}
