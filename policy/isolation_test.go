package policy_test

import (
	"bufio"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/policy"
)

// isolationWorker makes the test binary a parse worker: it answers length-prefixed Postgres
// payloads on stdin with (parsed, statements) on stdout. It prototypes running libpg_query
// in a separate, crash-containing process, to measure what the process hop costs.
const isolationWorker = "MCPGUARD_PARSE_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(isolationWorker) == "1" {
		os.Exit(parseWorker(os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

func parseWorker(in io.Reader, out io.Writer) int {
	r, w := bufio.NewReader(in), bufio.NewWriter(out)
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return 0
		}
		q := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(r, q); err != nil {
			return 1
		}
		got := policy.ClassifySQL(policy.Postgres, string(q))
		var res [5]byte
		if got.Parsed {
			res[0] = 1
		}
		binary.BigEndian.PutUint32(res[1:], uint32(len(got.Statements)))
		if _, err := w.Write(res[:]); err != nil {
			return 1
		}
		if err := w.Flush(); err != nil {
			return 1
		}
	}
}

// worker is a running parse worker process.
type worker struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startWorker(tb testing.TB) *worker {
	tb.Helper()
	cmd := exec.CommandContext(tb.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), isolationWorker+"=1")
	in, err := cmd.StdinPipe()
	require.NoError(tb, err)
	out, err := cmd.StdoutPipe()
	require.NoError(tb, err)
	require.NoError(tb, cmd.Start())
	tb.Cleanup(func() {
		_ = in.Close()
		_ = cmd.Wait()
	})
	return &worker{cmd: cmd, in: in, out: bufio.NewReader(out)}
}

func (w *worker) classify(tb testing.TB, q string) (bool, int) {
	buf := make([]byte, 4+len(q))
	binary.BigEndian.PutUint32(buf, uint32(len(q)))
	copy(buf[4:], q)
	_, err := w.in.Write(buf)
	require.NoError(tb, err)
	var res [5]byte
	_, err = io.ReadFull(w.out, res[:])
	require.NoError(tb, err)
	return res[0] == 1, int(binary.BigEndian.Uint32(res[1:]))
}

// TestParseWorkerAgrees: the prototype worker answers as the in-process classifier does.
func TestParseWorkerAgrees(t *testing.T) {
	w := startWorker(t)
	for _, q := range corpusOf(t, func(c corpusCase) bool { return !c.Shell && c.Dialect == policy.Postgres }) {
		want := policy.ClassifySQL(policy.Postgres, q)
		parsed, n := w.classify(t, q)
		require.Equal(t, want.Parsed, parsed, q)
		require.Len(t, want.Statements, n, q)
	}
}

// BenchmarkParseIsolation measures one Postgres classification over the corpus statements
// in process and through a worker process over pipes (the hop a crash-containing worker
// would add); p50 and p99 are reported per statement.
func BenchmarkParseIsolation(b *testing.B) {
	qs := corpusOf(b, func(c corpusCase) bool { return !c.Shell && c.Dialect == policy.Postgres })
	qs = append(qs, wideQuery())
	run := func(b *testing.B, f func(q string)) {
		b.Helper()
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := range b.N {
			start := time.Now()
			f(qs[i%len(qs)])
			lat = append(lat, time.Since(start))
		}
		b.StopTimer()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1000, "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1000, "p99-µs")
	}
	b.Run("in-process", func(b *testing.B) {
		run(b, func(q string) { _ = policy.ClassifySQL(policy.Postgres, q) })
	})
	b.Run("worker-process", func(b *testing.B) {
		w := startWorker(b)
		run(b, func(q string) { _, _ = w.classify(b, q) })
	})
}

// BenchmarkClassifyLarge measures the classification of the 64 KiB report query (nested 100
// deep) in each dialect, the largest kind of payload the bounds are meant to keep.
func BenchmarkClassifyLarge(b *testing.B) {
	q := wideQuery()
	for _, d := range []policy.Dialect{policy.Postgres, policy.MySQL} {
		b.Run(string(d), func(b *testing.B) {
			if !policy.ClassifySQL(d, q).Parsed {
				b.Fatal("not parsed")
			}
			b.SetBytes(int64(len(q)))
			for b.Loop() {
				_ = policy.ClassifySQL(d, q)
			}
		})
	}
}
