package harness

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

const startLine = `{"level":"INFO","msg":"mcpguard started","grpc":"127.0.0.1:1","admin":"127.0.0.1:2"}`

// feed writes data to a fresh Logs in chunks of size n and reports the start line it spotted.
func feed(t *testing.T, data []byte, n int) (*Logs, []byte) {
	t.Helper()
	l := newLogs()
	for i := 0; i < len(data); i += n {
		_, err := l.Write(data[i:min(i+n, len(data))])
		require.NoError(t, err)
	}
	select {
	case line := <-l.started:
		return l, line
	default:
		return l, nil
	}
}

func TestLogsStartLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want string
	}{
		{"alone", startLine + "\n", startLine},
		{"after warnings", `{"msg":"development token issuer enabled"}` + "\n" + startLine + "\n{\"msg\":\"ready\"}\n", startLine},
		{"unterminated", startLine, ""},
		{"absent", `{"msg":"mcpguard stopped"}` + "\n", ""},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range []int{1, 7, 1 << 20} {
				l, got := feed(t, []byte(tc.in), n)
				require.Equal(t, tc.want, string(got), "chunk %d", n)
				require.Equal(t, tc.in, l.String(), "everything is kept")
			}
		})
	}
}

func TestLogsSince(t *testing.T) {
	l := newLogs()
	_, _ = l.Write([]byte("one\n"))
	mark := l.Len()
	_, _ = l.Write([]byte("two\n"))
	require.Equal(t, "two\n", l.Since(mark))
	require.Empty(t, l.Since(1000))
}

// FuzzLogs: whatever the process writes, in whatever chunks, Logs keeps it all, never
// panics, and reports the start line exactly when a complete one was written.
func FuzzLogs(f *testing.F) {
	f.Add([]byte(startLine+"\n"), uint8(3))
	f.Add([]byte("x\n"+startLine+"\n"+startLine+"\n"), uint8(1))
	f.Add([]byte("\n\n\r\n"), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		n := int(chunk)%64 + 1
		l, got := feed(t, data, n)
		require.Equal(t, string(data), l.String())
		if got != nil {
			require.Contains(t, string(got), `"msg":"mcpguard started"`)
			require.NotContains(t, string(got), "\n")
			require.True(t, bytes.Contains(data, append(bytes.Clone(got), '\n')))
		}
	})
}
