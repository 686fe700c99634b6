package recordings_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"

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
