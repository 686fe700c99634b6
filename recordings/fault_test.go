package recordings_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/recordings"
)

// recordClosed records a three-segment session into a directory sink and returns it.
func recordClosed(t *testing.T) (root string, sink *recordings.Dir, pub ed25519.PublicKey, keys []string) {
	t.Helper()
	cfg := testConfig(t)
	cfg.Segment.MaxBytes = 1 << 10
	sink, err := recordings.NewDir(cfg.Sink.Dir.Path)
	require.NoError(t, err)
	key := testKey(t)
	r := openRecorder(t, cfg, sink, key)
	for i := range 6 {
		exchange(t, r, "tamper", i)
	}
	require.NoError(t, r.Close(t.Context()))
	keys, err = sink.List(t.Context(), "")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(keys), 4, "three segments and a manifest")
	return cfg.Sink.Dir.Path, sink, key.Public().(ed25519.PublicKey), keys
}

func TestVerifyDetectsTampering(t *testing.T) {
	find := func(keys []string, suffix string) string {
		for _, k := range keys {
			if strings.HasSuffix(k, suffix) {
				return k
			}
		}
		t.Fatalf("no key ending %s in %v", suffix, keys)
		return ""
	}
	cases := []struct {
		name   string
		tamper func(t *testing.T, root string, s *recordings.Dir, keys []string)
		want   string
	}{
		{"untouched", func(*testing.T, string, *recordings.Dir, []string) {}, ""},
		{"altered segment", func(t *testing.T, root string, s *recordings.Dir, keys []string) {
			k := find(keys, "000002.jsonl.gz")
			b, err := s.Get(t.Context(), k)
			require.NoError(t, err)
			zr, err := gzip.NewReader(bytes.NewReader(b))
			require.NoError(t, err)
			var plain bytes.Buffer
			_, err = plain.ReadFrom(zr)
			require.NoError(t, err)
			var out bytes.Buffer
			zw := gzip.NewWriter(&out)
			_, _ = zw.Write(bytes.Replace(plain.Bytes(), []byte(`"hi"`), []byte(`"bye"`), 1))
			require.NoError(t, zw.Close())
			require.NoError(t, s.Put(t.Context(), k, out.Bytes()))
		}, "segment 000002 altered"},
		{"reordered segments", func(t *testing.T, root string, s *recordings.Dir, keys []string) {
			k1, k2 := find(keys, "000001.jsonl.gz"), find(keys, "000002.jsonl.gz")
			b1, _ := s.Get(t.Context(), k1)
			b2, _ := s.Get(t.Context(), k2)
			require.NoError(t, s.Put(t.Context(), k1, b2))
			require.NoError(t, s.Put(t.Context(), k2, b1))
		}, "segment 000001 altered or reordered"},
		{"deleted segment", func(t *testing.T, root string, s *recordings.Dir, keys []string) {
			require.NoError(t, os.Remove(filepath.Join(root, find(keys, "000002.jsonl.gz"))))
		}, "segment 000002 missing"},
		{"deleted manifest", func(t *testing.T, root string, s *recordings.Dir, keys []string) {
			require.NoError(t, os.Remove(filepath.Join(root, find(keys, "manifest.json"))))
		}, "manifest missing"},
		{"forged manifest", func(t *testing.T, root string, s *recordings.Dir, keys []string) {
			k := find(keys, "manifest.json")
			b, _ := s.Get(t.Context(), k)
			require.NoError(t, s.Put(t.Context(), k, bytes.Replace(b, []byte(`"events":`), []byte(`"events":1`), 1)))
		}, "manifest signature invalid"},
		{"segment added", func(t *testing.T, root string, s *recordings.Dir, keys []string) {
			k := find(keys, "000001.jsonl.gz")
			b, _ := s.Get(t.Context(), k)
			require.NoError(t, s.Put(t.Context(), strings.Replace(k, "000001", "000009", 1), b))
		}, "segment 000009 not listed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root, sink, pub, keys := recordClosed(t)
			c.tamper(t, root, sink, keys)
			v := verify(t, sink, "", "tamper", pub)
			if c.want == "" {
				require.True(t, v.OK(), v.String())
				return
			}
			require.False(t, v.OK())
			require.Contains(t, v.String(), c.want)
			require.True(t, strings.HasPrefix(v.String(), "FAIL tamper: chain r1~"), v.String())
		})
	}
}

// The helper process records and then waits to be killed with SIGKILL.
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv("RECORDINGS_CRASH_SPOOL")
	if dir == "" {
		t.Skip("helper process for TestKilledMidSessionRecovers")
	}
	cfg := recordings.DefaultConfig()
	cfg.ReplicaID = "r1"
	cfg.Spool.Dir = dir
	cfg.Segment.MaxBytes = 1 << 10
	cfg.Segment.MaxAge = time.Hour
	if mode := os.Getenv("RECORDINGS_CRASH_SYNC"); mode != "" {
		// interval with a pass far in the future: the kill lands before any fsync of the
		// exchanges, so what survives is what was written to the operating system.
		cfg.Spool.Sync, cfg.Spool.SyncInterval = recordings.SyncMode(mode), 10*time.Second
	}
	key, _, err := recordings.LoadKey(os.Getenv("RECORDINGS_CRASH_KEY"), false)
	require.NoError(t, err)
	r, err := recordings.Open(cfg, downSink(t), key, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	for i := range 5 {
		exchange(t, r, "crash", i)
	}
	os.Stdout.WriteString("durable\n")
	select {}
}

// downSink is an S3 sink whose server is not running: storage that stays unavailable.
func downSink(t *testing.T) recordings.Sink {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	s, err := recordings.NewS3(recordings.S3Config{Endpoint: addr, Bucket: "b", Insecure: true, PathStyle: true, AccessKey: "a", SecretKey: "s"})
	require.NoError(t, err)
	return s
}

// TestKilledMidSessionRecovers: every exchange acknowledged before a SIGKILL is recovered, in
// both sync modes (interval: written, never fsynced, and still nothing lost to a process crash).
func TestKilledMidSessionRecovers(t *testing.T) {
	for _, mode := range []recordings.SyncMode{recordings.SyncAlways, recordings.SyncInterval} {
		t.Run(string(mode), func(t *testing.T) { killedMidSession(t, mode) })
	}
}

func killedMidSession(t *testing.T, mode recordings.SyncMode) {
	spool := t.TempDir()
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	key, created, err := recordings.LoadKey(keyFile, true)
	require.NoError(t, err)
	require.True(t, created)

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$")
	cmd.Env = append(os.Environ(), "RECORDINGS_CRASH_SPOOL="+spool, "RECORDINGS_CRASH_KEY="+keyFile, "RECORDINGS_CRASH_SYNC="+string(mode))
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "durable\n", line)
	require.NoError(t, cmd.Process.Kill()) // SIGKILL: no shutdown code runs
	_ = cmd.Wait()

	cfg := testConfig(t)
	cfg.Spool.Dir = spool
	sink, err := recordings.NewDir(cfg.Sink.Dir.Path)
	require.NoError(t, err)
	r := openRecorder(t, cfg, sink, key)
	require.NoError(t, r.Close(t.Context()))

	v := verify(t, sink, "", "crash", key.Public().(ed25519.PublicKey))
	require.True(t, v.OK(), v.String())
	require.Equal(t, 16, v.Events, "session start and 5 exchanges of 3 events")
	a := recordings.NewArchive(sink, "")
	s, err := a.Find(t.Context(), "crash")
	require.NoError(t, err)
	require.True(t, s.Chains[0].Manifest.Recovered)

	// The recovered chain is indexed and continues its replica's chain of manifests.
	rep, err := recordings.NewArchive(sink, "").WithIndexGrace(0).VerifyAll(t.Context(), key.Public().(ed25519.PublicKey), nil)
	require.NoError(t, err)
	require.True(t, rep.OK(), "%v %v %v", rep.Sessions, rep.Replicas, rep.Days)
	require.Len(t, rep.Replicas, 1)
	require.Equal(t, 1, rep.Replicas[0].Manifests)
	require.Equal(t, 1, rep.Replicas[0].Parts)
}

func TestSpoolFull(t *testing.T) {
	cases := []struct {
		name    string
		policy  recordings.FullPolicy
		admit   error
		dropped float64
	}{
		{"fail_closed refuses", recordings.FailClosed, recordings.ErrSpoolFull, 0},
		{"drop_oldest drops and admits", recordings.DropOldest, nil, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Spool.MaxBytes = 1 << 20
			cfg.Spool.OnFull = c.policy
			cfg.Segment.MaxBytes = 64 << 10
			reg := prometheus.NewRegistry()
			r, err := recordings.Open(cfg, downSink(t), testKey(t), nil, reg)
			require.NoError(t, err)
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				defer cancel()
				_ = r.Close(ctx)
			})
			require.NoError(t, r.Admit())
			raw := make([]byte, 3000) // incompressible, so sealed segments stay large
			_, _ = rand.Read(raw)
			big := base64.StdEncoding.EncodeToString(raw)
			for i := 0; ; i++ {
				for range 20 {
					require.NoError(t, r.Record(recordings.Event{
						Kind: recordings.KindResponse, Session: "full",
						Message: []byte(`{"jsonrpc":"2.0","id":1,"result":{"t":"` + big + `"}}`),
					}))
				}
				require.NoError(t, r.Sync(t.Context()))
				if gauge(t, reg, "mcpguard_recordings_spool_bytes") > float64(cfg.Spool.MaxBytes) {
					break
				}
				require.Less(t, i, 10000)
			}
			require.ErrorIs(t, r.Admit(), c.admit)
			require.InDelta(t, c.dropped, min(gauge(t, reg, "mcpguard_recordings_dropped_segments_total"), 1), 0)
		})
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
