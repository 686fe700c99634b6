package soak

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// FuzzParseStatus: any /proc/PID/status content gives sizes that are whole kB and not
// negative, or an error; never a panic.
func FuzzParseStatus(f *testing.F) {
	f.Add([]byte("Name:\tmcpguard\nVmRSS:\t   61234 kB\nRssAnon:\t 18000 kB\n"))
	f.Add([]byte("VmRSS: 1 kB"))
	f.Add([]byte("VmRSS:\t99999999999999999999 kB\n"))
	f.Add([]byte("RssAnon:\t4 kB\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := parseStatus(raw)
		if err != nil {
			return
		}
		require.GreaterOrEqual(t, m.RSS, int64(0))
		require.GreaterOrEqual(t, m.RSSAnon, int64(0))
		require.Zero(t, m.RSS%1024)
		require.True(t, bytes.Contains(raw, []byte("VmRSS:")))
	})
}

// FuzzParseStat: any /proc/PID/stat line gives a CPU time that is not negative, or an error.
func FuzzParseStat(f *testing.F) {
	f.Add([]byte("4242 (mcpguard) S 1 2 3 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 9 0 12345"))
	f.Add([]byte("7 (a) b (c)) S 1 2 3 0 -1 0 0 0 0 0 1 2"))
	f.Add([]byte(")"))
	f.Add([]byte("1 (x) S 1 2 3 0 -1 0 0 0 0 0 99999999999999999999 0"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := parseStat(raw)
		if err == nil {
			require.GreaterOrEqual(t, d, time.Duration(0))
			require.True(t, bytes.Contains(raw, []byte(")")))
		}
	})
}

// FuzzGauge: a value is returned only when the exposition holds a line naming the metric
// without labels, and it round-trips through that line's first field.
func FuzzGauge(f *testing.F) {
	f.Add([]byte("# TYPE go_goroutines gauge\ngo_goroutines 42\n"), "go_goroutines")
	f.Add([]byte("go_goroutines{a=\"b\"} 1\ngo_goroutines 2 1700000000\r\n"), "go_goroutines")
	f.Add([]byte("x NaN\n"), "x")
	f.Add([]byte("x +Inf\n"), "x")
	f.Fuzz(func(t *testing.T, text []byte, name string) {
		v, err := gauge(text, name)
		if err != nil {
			return
		}
		require.True(t, bytes.HasPrefix(text, []byte(name+" ")) || bytes.Contains(text, []byte("\n"+name+" ")))
		_ = v
	})
}

// FuzzParsePending: ids handed to the approve URL never carry path or query syntax.
func FuzzParsePending(f *testing.F) {
	f.Add([]byte(`{"approvals":[{"id":"a1"},{"id":"b2"}]}`))
	f.Add([]byte(`{"approvals":[{"id":"../../v1/x?y"}]}`))
	f.Add([]byte(`{"approvals":null}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ids, err := parsePending(data)
		if err != nil {
			return
		}
		for _, id := range ids {
			require.NotEmpty(t, id)
			require.NotContains(t, id, "/")
			require.NotContains(t, id, "?")
			require.NotContains(t, id, "#")
			require.NotContains(t, id, "%")
		}
	})
}

func BenchmarkGauge(b *testing.B) {
	var text bytes.Buffer
	for i := range 300 {
		text.WriteString("# HELP m" + strconv.Itoa(i) + " help\nm" + strconv.Itoa(i) + "{a=\"b\"} 1\n")
	}
	text.WriteString("go_goroutines 42\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := gauge(text.Bytes(), "go_goroutines"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseStatus(b *testing.B) {
	raw := []byte("Name:\tmcpguard\nUmask:\t0022\nState:\tS (sleeping)\nVmPeak:\t 1400000 kB\nVmSize:\t 1300000 kB\nVmRSS:\t   61234 kB\nRssAnon:\t   18000 kB\nRssFile:\t   43000 kB\nThreads:\t9\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseStatus(raw); err != nil {
			b.Fatal(err)
		}
	}
}
