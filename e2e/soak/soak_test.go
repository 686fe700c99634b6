package soak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		wants []string
	}{
		{"zero", func(c *Config) { *c = Config{} }, []string{
			"duration: must be positive", "rate: must be", "workers: must be",
			"reconnect: must be", "mix: at least one", "sample: must be positive", "approver_poll: must be positive",
		}},
		{"negative weight", func(c *Config) { c.Mix.Denied = -1 }, []string{"mix.denied: must be within"}},
		{"warm-up leaves too few samples", func(c *Config) { c.WarmUp = c.Duration }, []string{"warm_up: must leave at least 6 samples"}},
		{"negative warm-up", func(c *Config) { c.WarmUp = -time.Second }, []string{"warm_up: must not be negative"}},
		{
			"negative tolerance", func(c *Config) { c.Tolerance.RSSBytes = -1; c.Tolerance.Goroutines = -1 },
			[]string{"tolerance.rss_bytes: must not be negative", "tolerance.goroutines: must not be negative"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			require.Error(t, err)
			for _, w := range tc.wants {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    Mem
		wantErr string
	}{
		{"linux", "Name:\tmcpguard\nVmPeak:\t  900 kB\nVmRSS:\t   61234 kB\nRssAnon:\t   18000 kB\nThreads:\t9\n", Mem{RSS: 61234 << 10, RSSAnon: 18000 << 10}, ""},
		{"no anon line", "VmRSS:\t 4 kB\n", Mem{RSS: 4 << 10}, ""},
		{"no rss", "Name:\tx\n", Mem{}, "no VmRSS"},
		{"bad unit", "VmRSS:\t 4 MB\n", Mem{}, "want"},
		{"bad number", "VmRSS:\t -4 kB\n", Mem{}, "bad size"},
		{"empty", "", Mem{}, "no VmRSS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := parseStatus([]byte(tc.in))
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, m)
		})
	}
}

func TestParseStat(t *testing.T) {
	fields := "S 1 2 3 0 -1 4194560 100 0 0 0 %d %d 0 0 20 0 9 0 12345 0 0"
	for _, tc := range []struct {
		name    string
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"plain", "4242 (mcpguard) " + fmt.Sprintf(fields, 150, 50), 2 * time.Second, false},
		{"name with spaces and parens", "7 (a) b (c)) " + fmt.Sprintf(fields, 1, 2), 30 * time.Millisecond, false},
		{"no name", "4242 mcpguard S 1", 0, true},
		{"truncated", "4242 (mcpguard) S 1 2 3", 0, true},
		{"negative", "1 (x) " + fmt.Sprintf(fields, -1, 0), 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := parseStat([]byte(tc.in))
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, d)
		})
	}
}

func TestGauge(t *testing.T) {
	text := "# HELP go_goroutines Number of goroutines.\n# TYPE go_goroutines gauge\ngo_goroutines_total 3\n" +
		"go_goroutines{x=\"1\"} 7\ngo_goroutines 42\ngo_memstats_heap_inuse_bytes 1.2e+07 1700000000\n"
	for _, tc := range []struct {
		name    string
		metric  string
		want    float64
		wantErr bool
	}{
		{"unlabelled sample, not a prefix or a labelled one", "go_goroutines", 42, false},
		{"exponent and timestamp", "go_memstats_heap_inuse_bytes", 1.2e7, false},
		{"absent", "process_open_fds", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := gauge([]byte(text), tc.metric)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.InDelta(t, tc.want, v, 1e-9)
		})
	}
	_, err := gauge([]byte("go_goroutines many\n"), "go_goroutines")
	require.Error(t, err)
}

func TestHasServe(t *testing.T) {
	require.True(t, hasServe([]string{"/tmp/x/mcpguard", "serve", "--config", "/tmp/x/mcpguard.yaml"}, "/tmp/x/mcpguard.yaml"))
	require.False(t, hasServe([]string{"mcpguard", "token", "--config", "/tmp/x/mcpguard.yaml"}, "/tmp/x/mcpguard.yaml"))
	require.False(t, hasServe([]string{"mcpguard", "serve", "--config", "/tmp/y.yaml"}, "/tmp/x/mcpguard.yaml"))
	require.False(t, hasServe([]string{"mcpguard", "serve", "--config"}, "/tmp/x/mcpguard.yaml"))
}

func TestSequence(t *testing.T) {
	seq := sequence(Mix{Allowed: 3, Denied: 1, Masked: 1, Approved: 1})
	require.Equal(t, []Kind{Allowed, Denied, Masked, Approved, Allowed, Allowed}, seq)
	require.Equal(t, []Kind{Masked}, sequence(Mix{Masked: 1}))
}

func TestOutcome(t *testing.T) {
	res := func(s string) *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
	}
	for _, tc := range []struct {
		name string
		kind Kind
		r    *mcp.CallToolResult
		err  error
		want string
		ok   bool
	}{
		{"allowed echoed", Allowed, res("soak-allow-7"), nil, "ok", true},
		{"allowed altered", Allowed, res("soak-allow-8"), nil, "wrong result", false},
		{"allowed denied", Allowed, nil, &jsonrpc.Error{Code: codeDenied}, "denied_by_policy", false},
		{"denied denied", Denied, nil, fmt.Errorf("call: %w", &jsonrpc.Error{Code: codeDenied}), "denied_by_policy", true},
		{"denied passed", Denied, res("x"), nil, "not denied", false},
		{"approval deferred", Approved, nil, &jsonrpc.Error{Code: -31041}, "rpc -31041", false},
		{"masked", Masked, res(`{"rows":[[1,"[REDACTED:EMAIL]"]]}`), nil, "ok", true},
		{"masked leaked", Masked, res(`{"rows":[[1,"ada@example.com"]]}`), nil, "not masked", false},
		{"tool error", Allowed, &mcp.CallToolResult{IsError: true}, nil, "tool error", false},
		{"timeout", Allowed, nil, fmt.Errorf("x: %w", context.DeadlineExceeded), "timeout", false},
		{"transport", Masked, nil, errors.New("connection reset"), "transport", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCall(tc.kind, 7)
			got := outcome(tc.kind, c, tc.r, tc.err)
			require.Equal(t, tc.want, got)
			ok := expected(tc.kind, got)
			require.Equal(t, tc.ok, ok)
		})
	}
}

func TestGrowth(t *testing.T) {
	series := func(n int, f func(i int) float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = f(i)
		}
		return v
	}
	for _, tc := range []struct {
		name string
		vals []float64
		ok   bool
	}{
		{"flat with noise", series(30, func(i int) float64 { return 100 + float64(i%5) }), true},
		{"spike in the last third", series(30, func(i int) float64 { return map[bool]float64{true: 400, false: 100}[i == 28] }), true},
		{"leak", series(30, func(i int) float64 { return 100 + 5*float64(i) }), false},
		{"too few samples", []float64{1, 1, 1, 1, 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := growth("goroutines", tc.vals, 0.10, 10)
			require.Equal(t, tc.ok, g.OK(), "%+v", g)
		})
	}
}

func TestGrowthsSkipWarmUp(t *testing.T) {
	var s []Sample
	for i := range 40 {
		g := 50
		if i < 10 {
			g = 10 + 4*i // start-up ramp, inside the warm-up
		}
		s = append(s, Sample{At: time.Duration(i) * time.Second, Goroutines: g, RSS: 60 << 20})
	}
	gs := growths(s, 10*time.Second, DefaultConfig().Tolerance)
	require.Len(t, gs, 2)
	for _, g := range gs {
		require.True(t, g.OK(), "%+v", g)
		require.Equal(t, 30, g.Samples)
	}
	gs = growths(s, 0, Tolerance{})
	require.False(t, gs[0].OK(), "the ramp counts as growth without warm-up")
}

func TestArgMarkerAndFound(t *testing.T) {
	for _, k := range Kinds {
		c := newCall(k, 12)
		msg, err := json.Marshal(map[string]any{
			"jsonrpc": "2.0", "id": 3, "method": "tools/call",
			"params": map[string]any{"name": c.tool, "arguments": c.args},
		})
		require.NoError(t, err)
		require.Equal(t, c.marker, argMarker(msg), k)
		require.NotEqual(t, newCall(k, 1).marker, c.marker, "no prefix collisions")
	}
	require.Empty(t, argMarker([]byte(`{"method":"tools/list"}`)))
	require.Empty(t, argMarker([]byte(`not json`)))

	answers := map[string]*answer{"r1": {response: true}, "r2": {denial: true}, "r3": {response: true, denial: true}}
	require.True(t, found(newCall(Allowed, 1), []string{"r1"}, answers))
	require.False(t, found(newCall(Allowed, 1), []string{"r2"}, answers))
	require.True(t, found(newCall(Denied, 1), []string{"r2"}, answers))
	require.False(t, found(newCall(Denied, 1), []string{"r3"}, answers))
	require.False(t, found(newCall(Allowed, 1), []string{"r1", "r1"}, answers), "recorded twice")
	require.False(t, found(newCall(Allowed, 1), nil, answers))
}

func TestParsePending(t *testing.T) {
	ids, err := parsePending([]byte(`{"approvals":[{"id":"a1","tool":"echo"},{"id":"b2"}]}`))
	require.NoError(t, err)
	require.Equal(t, []string{"a1", "b2"}, ids)
	for _, bad := range []string{`{"approvals":[{"id":"../x"}]}`, `{"approvals":[{}]}`, `[`} {
		_, err := parsePending([]byte(bad))
		require.Error(t, err, bad)
	}
}

func TestReportErr(t *testing.T) {
	ok := &Report{
		Requests: 10, Approved: 1, Listings: 7,
		Config:  Config{ApproverPoll: 200 * time.Millisecond, Sample: 5 * time.Second},
		Samples: []Sample{{}, {}},
		ByKind:  map[Kind]KindStats{Approved: {Calls: 1, Outcomes: map[string]int{"ok": 1}}},
		Growth:  []Growth{{Name: "rss", First: 1, Last: 1, Limit: 2, Samples: 9}},
		Storage: Stored{Sessions: 3, Verified: 3, Expected: 10, Found: 10},
	}
	require.NoError(t, ok.Err())
	var b strings.Builder
	ok.Print(&b)
	require.Contains(t, b.String(), "PASS")
	require.Contains(t, b.String(), "mcpguard served 7 approval listings (every 200ms) and 2 /metrics scrapes (every 5s)")

	bad := *ok
	bad.Errors = map[string]int{"masked: transport": 2}
	bad.Storage.Missing = map[Kind]int{Denied: 1}
	bad.Storage.Verified = 2
	bad.Growth = []Growth{{Name: "goroutines", First: 10, Last: 50, Limit: 20, Samples: 9}}
	err := bad.Err()
	require.Error(t, err)
	for _, w := range []string{"unexpected masked: transport: 2", "1 denied exchanges missing", "2 of 3 sessions verified", "goroutines grew"} {
		require.Contains(t, err.Error(), w)
	}
}

func TestThin(t *testing.T) {
	s := make([]Sample, 100)
	for i := range s {
		s[i].Calls = i
	}
	out := thin(s, 10)
	require.Len(t, out, 10)
	require.Equal(t, 0, out[0].Calls)
	require.Equal(t, 99, out[9].Calls)
	require.Len(t, thin(s[:5], 10), 5)
}
