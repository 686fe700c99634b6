package recordings_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/recordings"
)

// BenchmarkExchange is the recorder's cost per exchange: three events then the durable
// commit the gateway waits for. Run in parallel, commits are shared (group commit);
// events/s is the sustained rate, upload_lag the time from seal to storage (directory sink).
func BenchmarkExchange(b *testing.B) {
	for _, par := range []int{1, 16} {
		b.Run(fmt.Sprintf("streams=%d", par), func(b *testing.B) {
			cfg := recordings.DefaultConfig()
			cfg.ReplicaID = "bench"
			cfg.Spool.Dir = b.TempDir()
			cfg.Sink.Dir.Path = b.TempDir()
			sink, err := recordings.NewDir(cfg.Sink.Dir.Path)
			require.NoError(b, err)
			reg := prometheus.NewRegistry()
			r, err := recordings.Open(cfg, sink, testKey(b), nil, reg)
			require.NoError(b, err)
			b.ReportAllocs()
			b.SetParallelism(par)
			var n atomic.Int64
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				s := fmt.Sprintf("bench-%d", n.Add(1))
				i := 0
				for pb.Next() {
					exchange(b, r, s, i)
					i++
				}
			})
			el := time.Since(start)
			b.ReportMetric(float64(3*b.N)/el.Seconds(), "events/s")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			require.NoError(b, r.Close(ctx))
			mfs, _ := reg.Gather()
			for _, mf := range mfs {
				if mf.GetName() == "mcpguard_recordings_upload_lag_seconds" {
					h := mf.GetMetric()[0].GetHistogram()
					if h.GetSampleCount() > 0 {
						b.ReportMetric(h.GetSampleSum()/float64(h.GetSampleCount())*1000, "upload_lag_ms")
					}
				}
			}
			keys, _ := sink.List(context.Background(), "")
			var bytes int
			for _, k := range keys {
				d, _ := sink.Get(context.Background(), k)
				bytes += len(d)
			}
			b.ReportMetric(float64(bytes)/float64(b.N), "stored_B/exchange")
		})
	}
}

// BenchmarkCommitLatency is the latency recording adds to one exchange (three events, then
// the commit the final answer waits for) with 32 concurrent streams, each its own session;
// p50 and p99 per exchange. The streams run back to back (closed loop), so the recorder is
// saturated: by Little's law the mean latency is 32 × ns/op, whatever the p50.
// The segment=64KiB cases seal a segment every ~90 exchanges of a stream, so seals fall
// among the commits as they do in a long run.
func BenchmarkCommitLatency(b *testing.B) {
	for _, mode := range commitModes {
		b.Run("sync="+mode, func(b *testing.B) { commitLatency(b, mode, 0, 0) })
	}
	for _, mode := range commitModes {
		b.Run("sync="+mode+",segment=64KiB", func(b *testing.B) { commitLatency(b, mode, 0, 64<<10) })
	}
}

// BenchmarkCommitLatencyPaced is BenchmarkCommitLatency with the 32 streams paced to 2,000
// exchanges/s in all (each stream every 16 ms, staggered), about the most recorded calls/s
// two cores carry through the whole gateway (docs/capacity.md): the latency an exchange sees
// when the recorder is not the bottleneck. Latency is from the exchange's start. The floor
// case only encodes the three events, without recorder: the p99 the machine itself imposes on
// that much work at that pace.
func BenchmarkCommitLatencyPaced(b *testing.B) {
	for _, mode := range append([]string{"floor"}, commitModes...) {
		b.Run("sync="+mode, func(b *testing.B) { commitLatency(b, mode, 2000, 0) })
	}
}

// commitLatency runs 32 streams of exchanges, back to back with rate 0, else paced to rate
// exchanges/s in all; segBytes, when not 0, is segment.max_bytes.
func commitLatency(b *testing.B, mode string, rate int, segBytes int64) {
	cfg := recordings.DefaultConfig()
	cfg.ReplicaID = "bench"
	cfg.Spool.Dir = b.TempDir()
	cfg.Sink.Dir.Path = b.TempDir()
	if mode != "floor" {
		setMode(&cfg, mode)
	}
	if segBytes > 0 {
		cfg.Segment.MaxBytes = segBytes
	}
	sink, err := recordings.NewDir(cfg.Sink.Dir.Path)
	require.NoError(b, err)
	reg := prometheus.NewRegistry()
	r, err := recordings.Open(cfg, sink, testKey(b), nil, reg)
	require.NoError(b, err)
	const streams = 32
	var every time.Duration
	if rate > 0 {
		every = time.Second * streams / time.Duration(rate)
	}
	run := func(s string, i int) { exchange(b, r, s, i) }
	if mode == "floor" {
		run = func(s string, i int) { encodeExchange(b, s, i) }
	}
	lat := make([][]time.Duration, streams)
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism((streams + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.RunParallel(func(pb *testing.PB) {
		id := int(next.Add(1)-1) % streams
		s := fmt.Sprintf("bench-%d", id)
		var mine []time.Duration
		due := time.Now().Add(every * time.Duration(id) / streams)
		i := 0
		for pb.Next() {
			if every > 0 {
				time.Sleep(time.Until(due))
				due = due.Add(every)
			}
			start := time.Now()
			run(s, i)
			mine = append(mine, time.Since(start))
			if every > 0 && due.Before(start) {
				due = start // late: no burst to catch up
			}
			i++
		}
		lat[id] = append(lat[id], mine...)
	})
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2].Nanoseconds())/1e3, "p50-µs")
		b.ReportMetric(float64(all[len(all)*99/100].Nanoseconds())/1e3, "p99-µs")
	}
	if mode == string(recordings.SyncAlways) {
		// How well the group commit batches: exchanges per write-and-fsync pass.
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "mcpguard_recordings_commit_duration_seconds" {
				if n := mf.GetMetric()[0].GetHistogram().GetSampleCount(); n > 0 {
					b.ReportMetric(float64(b.N)/float64(n), "exchanges/fsync")
				}
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(b, r.Close(ctx))
}

// encodeExchange is the encoding part of exchange alone: what an exchange costs without the
// recorder's locks and I/O.
func encodeExchange(b *testing.B, s string, n int) {
	rid := fmt.Sprintf("req-%s-%d", s, n)
	now := time.Now().UTC()
	for _, ev := range []recordings.Event{
		{Kind: recordings.KindRequest, Session: s, RequestID: rid, Identity: alice, Method: "tools/call", Tool: "echo", Message: []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}`)},
		{Kind: recordings.KindNote, Session: s, RequestID: rid, Note: &recordings.Note{Stage: "policy", Kind: "decision", Attrs: map[string]any{"rule": "allow-echo", "action": "allow"}}},
		{Kind: recordings.KindResponse, Session: s, RequestID: rid, Method: "tools/call", Status: 200, Message: []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hi"}]}}`)},
	} {
		ev.Time = now
		if _, err := json.Marshal(ev); err != nil {
			b.Fatal(err)
		}
	}
}

var commitModes = []string{string(recordings.SyncAlways), string(recordings.SyncInterval)}

func setMode(cfg *recordings.Config, mode string) { cfg.Spool.Sync = recordings.SyncMode(mode) }
