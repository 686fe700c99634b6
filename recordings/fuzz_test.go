package recordings_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/recordings"
)

// Segments and manifests come back from storage that an attacker may have written to.
func FuzzParseSegment(f *testing.F) {
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte("not gzip"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, evs, err := recordings.ParseSegment(data)
		if err == nil {
			require.Equal(t, "segment", h.Type)
			require.NotNil(t, evs[:0:0])
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"manifest":{"version":1,"session":"s","chain":"r~1","replica":"r","started":"2025-01-01T00:00:00Z","ended":"2025-01-01T00:00:00Z","events":1,"segments":[]},"key_id":"k","signature":"AA=="}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"manifest":1}`))
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := recordings.ParseManifest(data, nil)
		if err == nil {
			require.Equal(t, 1, m.Version)
		}
		// Only the holder of the private key can sign: nothing the fuzzer makes verifies.
		_, err = recordings.ParseManifest(data, pub)
		require.Error(t, err)
	})
}

func FuzzParseKey(f *testing.F) {
	f.Add("p", "p/2025/01/02/sess/r1~20250102T000000.000000000Z/000001.jsonl.gz")
	f.Add("", "2025/01/02/sess/r1~x/manifest.json")
	f.Add("p", "p/../../x")
	f.Fuzz(func(t *testing.T, prefix, key string) {
		k, ok := recordings.ParseKey(prefix, key)
		if ok {
			require.NotContains(t, k.Session, "/")
			require.NotEqual(t, "..", k.Session)
			require.NotEqual(t, ".", k.Session)
			require.NotEqual(t, k.Manifest, k.Seq > 0, "a key is a manifest or a segment with seq > 0")
		}
	})
}

// Index parts come back from storage like manifests: decoded without trust, bounded.
func FuzzParseIndexPart(f *testing.F) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(f, err)
	p := &recordings.IndexPart{
		Version: 1, Replica: "r1", Epoch: "20250102T000000.000000000Z", Seq: 1, Day: "2025-01-02",
		Entries: []recordings.IndexEntry{{Session: "s", Chain: "r1~x", Manifest: "00", Facets: recordings.Facets{Tools: []string{"echo"}}}},
	}
	obj, _, err := recordings.SignIndexPart(p, key)
	require.NoError(f, err)
	f.Add(obj)
	f.Add([]byte("not gzip"))
	f.Add([]byte{})
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := recordings.ParseIndexPart(data, nil)
		if err == nil {
			require.Equal(t, 1, p.Version)
			require.NotZero(t, p.Seq)
			for _, e := range p.Entries {
				require.NotContains(t, e.Session, "/")
				require.NotContains(t, e.Chain, "/")
			}
		}
		_, err = recordings.ParseIndexPart(data, pub)
		require.Error(t, err, "nothing the fuzzer makes is signed by this key")
	})
}

// --since and --until come from the command line.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"7d", "36h", "1d12h30m", "2025-06-18", "2025-06-18T09:15:02Z", "", "-1d", "99999999999d", "0s"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := recordings.ParseTime(s, now)
		if err != nil {
			return
		}
		require.False(t, got.IsZero() && s != "0001-01-01" && !strings.HasPrefix(s, "0001-01-01T"), "%q", s)
		if _, derr := time.Parse(time.DateOnly, s); derr != nil {
			if _, rerr := time.Parse(time.RFC3339Nano, s); rerr != nil {
				require.True(t, got.Before(now), "a duration reaches back: %q gave %s", s, got)
				require.True(t, got.After(now.Add(-101*365*24*time.Hour)), "%q", s)
			}
		}
	})
}
