package recordings

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"
)

// TestGenerateArchive writes a synthetic archive for measuring the readers at scale
// (docs/recordings.md#numbers); it runs only when RECGEN_N is set:
//
//	RECGEN_N=100000 RECGEN_DIR=/tmp/rec RECGEN_KEY=/tmp/rec-key.pem go test ./recordings -run TestGenerateArchive -timeout 1h
//
// RECGEN_S3=host:port,bucket,access,secret writes to S3 instead of RECGEN_DIR;
// RECGEN_LEGACY=1 writes version 1 manifests and no index (what earlier releases read);
// RECGEN_DAYS spreads the sessions over that many days back from now (default 10);
// RECGEN_REPLICAS over that many replicas (default 2). Directory objects are written
// without fsync (a measurement fixture, not a recording).
func TestGenerateArchive(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("RECGEN_N"))
	if n <= 0 {
		t.Skip("set RECGEN_N to generate an archive")
	}
	days := envInt("RECGEN_DAYS", 10)
	replicas := envInt("RECGEN_REPLICAS", 2)
	legacy := os.Getenv("RECGEN_LEGACY") == "1"
	key, _, err := LoadKey(os.Getenv("RECGEN_KEY"), true)
	require.NoError(t, err)
	put := dirPut(t, os.Getenv("RECGEN_DIR"))
	if s := os.Getenv("RECGEN_S3"); s != "" {
		parts := strings.Split(s, ",")
		require.Len(t, parts, 4, "RECGEN_S3=host:port,bucket,access,secret")
		c := S3Config{Endpoint: parts[0], Bucket: parts[1], AccessKey: parts[2], SecretKey: parts[3], Region: "us-east-1", PathStyle: true, Insecure: true}
		sink, err := NewS3(c)
		require.NoError(t, err)
		if ok, err := sink.Client().BucketExists(t.Context(), c.Bucket); err == nil && !ok {
			require.NoError(t, sink.Client().MakeBucket(t.Context(), c.Bucket, minio.MakeBucketOptions{Region: c.Region}))
		}
		put = sink.Put
	}
	start := time.Now().UTC().Add(-time.Duration(days) * 24 * time.Hour).Truncate(time.Hour)
	step := time.Duration(days) * 24 * time.Hour / time.Duration(n)
	type repState struct {
		seq  uint64
		prev string
		idx  map[string][]IndexEntry
	}
	reps := make([]*repState, replicas)
	for i := range reps {
		reps[i] = &repState{idx: map[string][]IndexEntry{}}
	}
	epoch := epochName(start)
	g, ctx := errgroup.WithContext(t.Context())
	g.SetLimit(16)
	for i := range n {
		r := reps[i%replicas]
		replica := fmt.Sprintf("gen-%d", i%replicas)
		started := start.Add(time.Duration(i) * step)
		session := fmt.Sprintf("%08x-%04x-gen", uint32(i)*2654435761, i%65536)
		m, objs := genSession(t, key, session, replica, started, i, legacy)
		prefix := chainPrefix("mcp", started, session, m.Chain)
		var man []byte
		if legacy {
			man = legacyManifest(t, m, key)
		} else {
			m.Epoch, m.ReplicaSeq, m.PrevManifest = epoch, r.seq+1, r.prev
			man, err = signManifest(m, key)
			require.NoError(t, err)
			sum := hashHex(man)
			r.seq, r.prev = m.ReplicaSeq, sum
			day := dayOf(started)
			r.idx[day] = append(r.idx[day], IndexEntry{
				Session: session, Chain: m.Chain, Started: m.Started, Ended: m.Ended, Events: m.Events,
				Segments: len(m.Segments), Identity: m.Identity, Facets: m.Facets, Manifest: sum, ManifestSeq: m.ReplicaSeq,
			})
		}
		g.Go(func() error {
			for j, o := range objs {
				if err := put(ctx, prefix+"/"+segmentName(j+1), o); err != nil {
					return err
				}
			}
			return put(ctx, prefix+"/"+manifestName, man)
		})
	}
	if !legacy {
		for ri, r := range reps {
			var seq uint64
			prev := ""
			for d := range days + 1 {
				day := dayOf(start.Add(time.Duration(d) * 24 * time.Hour))
				list := r.idx[day]
				for len(list) > 0 {
					k := min(len(list), indexPartEntries)
					p := &IndexPart{Version: indexPartVersion, Replica: fmt.Sprintf("gen-%d", ri), Epoch: epoch, Seq: seq + 1, Prev: prev, Day: day, Written: list[k-1].Ended, Entries: list[:k]}
					obj, sum, err := SignIndexPart(p, key)
					require.NoError(t, err)
					g.Go(func() error { return put(ctx, indexPartKey("mcp", p), obj) })
					seq, prev, list = p.Seq, sum, list[k:]
				}
			}
		}
	}
	require.NoError(t, g.Wait())
	pub, _ := key.Public().(ed25519.PublicKey)
	t.Logf("wrote %d sessions over %d days, %d replicas; public key %s", n, days, replicas, EncodePublicKey(pub))
}

func genSession(t *testing.T, key ed25519.PrivateKey, session, replica string, started time.Time, i int, legacy bool) (*Manifest, [][]byte) {
	t.Helper()
	chain := chainID(replica, started)
	id := &Identity{Subject: fmt.Sprintf("agent-%d", i%50), ClientID: fmt.Sprintf("client-%d", i%50), Issuer: "https://issuer.example"}
	tools := []string{"echo", "execute_sql", "read_file"}
	tool := tools[i%len(tools)]
	rid := fmt.Sprintf("req-%08d", i)
	action := "allow"
	if i%7 == 0 {
		action = "deny"
	}
	at := func(ms int) time.Time { return started.Add(time.Duration(ms) * time.Millisecond) }
	evs := []Event{
		{Kind: KindSessionStart, Time: at(0), Identity: id, RequestID: rid},
		{
			Kind: KindRequest, Time: at(1), Identity: id, RequestID: rid, HTTP: "POST /mcp", Method: "tools/call", Tool: tool,
			Message: json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + tool + `","arguments":{"q":"generated"}}}`),
		},
		{Kind: KindNote, Time: at(2), RequestID: rid, Note: &Note{Stage: "policy", Kind: "decision", Attrs: map[string]any{"rule": "rule-" + tool, "action": action}}},
		{
			Kind: KindResponse, Time: at(3), RequestID: rid, Status: 200, Method: "tools/call", Tool: tool,
			Message: json.RawMessage(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}`),
		},
		{Kind: KindSessionEnd, Time: at(4), Note: &Note{Stage: "recording", Kind: "session_end", Attrs: map[string]any{"reason": "deleted"}}},
	}
	var f Facets
	lines, _ := json.Marshal(Header{Type: "segment", Session: session, Chain: chain, Seq: 1, Created: started})
	lines = append(lines, '\n')
	for j := range evs {
		evs[j].Seq, evs[j].Session = uint64(j+1), session
		f.add(&evs[j])
		b, err := json.Marshal(evs[j])
		require.NoError(t, err)
		lines = append(append(lines, b...), '\n')
	}
	obj, sum, err := seal(lines)
	require.NoError(t, err)
	m := &Manifest{
		Version: manifestVersion, Session: session, Chain: chain, Replica: replica, Started: started, Ended: at(5),
		Events: len(evs), Identity: id, Facets: f.sorted(), Segments: []SegmentRef{{Seq: 1, SHA256: sum, Size: int64(len(obj)), Events: len(evs)}},
	}
	if legacy {
		m.Version = 1
	}
	return m, [][]byte{obj}
}

// legacyManifest is a version 1 manifest exactly as earlier releases wrote (and read) it.
func legacyManifest(t *testing.T, m *Manifest, key ed25519.PrivateKey) []byte {
	t.Helper()
	body, err := json.Marshal(struct {
		Version  int          `json:"version"`
		Session  string       `json:"session"`
		Chain    string       `json:"chain"`
		Replica  string       `json:"replica"`
		Started  time.Time    `json:"started"`
		Ended    time.Time    `json:"ended"`
		Events   int          `json:"events"`
		Identity *Identity    `json:"identity,omitempty"`
		Tools    []string     `json:"tools,omitempty"`
		Segments []SegmentRef `json:"segments"`
	}{1, m.Session, m.Chain, m.Replica, m.Started, m.Ended, m.Events, m.Identity, m.Tools, m.Segments})
	require.NoError(t, err)
	pub, _ := key.Public().(ed25519.PublicKey)
	out, err := json.Marshal(signed{Manifest: body, KeyID: KeyID(pub), Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(key, body))})
	require.NoError(t, err)
	return out
}

func dirPut(t *testing.T, root string) func(context.Context, string, []byte) error {
	return func(_ context.Context, key string, data []byte) error {
		if root == "" {
			t.Fatal("set RECGEN_DIR or RECGEN_S3")
		}
		p := filepath.Join(root, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		return os.WriteFile(p, data, 0o600)
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
