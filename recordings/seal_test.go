package recordings_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/recordings"
)

func TestSealUnseal(t *testing.T) {
	owner, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	second, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	other, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	s, err := recordings.NewSealer([]string{owner.Recipient().String(), second.Recipient().String()})
	require.NoError(t, err)
	plain := []byte(`{"password":"hunter2"}`)
	sealed, err := s.Seal(plain)
	require.NoError(t, err)
	require.NotContains(t, sealed, "hunter2")

	for _, id := range []age.Identity{owner, second} {
		got, err := recordings.Unseal(sealed, id)
		require.NoError(t, err)
		require.Equal(t, plain, got, "every recipient can open it")
	}
	_, err = recordings.Unseal(sealed, other)
	require.ErrorIs(t, err, recordings.ErrNotSealedTo, "another key cannot")

	raw, err := base64.StdEncoding.DecodeString(sealed)
	require.NoError(t, err)
	raw[len(raw)-3] ^= 1
	_, err = recordings.Unseal(base64.StdEncoding.EncodeToString(raw), owner)
	require.Error(t, err, "altered ciphertext does not open")
	require.NotErrorIs(t, err, recordings.ErrNotSealedTo)
	_, err = recordings.Unseal("%%%", owner)
	require.ErrorContains(t, err, "not base64")

	none, err := recordings.NewSealer(nil)
	require.NoError(t, err)
	require.Nil(t, none, "no recipients, no sealing")
}

func TestParseIdentities(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	ids, err := recordings.ParseIdentities(strings.NewReader("# created: now\n# public key: " + id.Recipient().String() + "\n" + id.String() + "\n"))
	require.NoError(t, err)
	require.Len(t, ids, 1)
	_, err = recordings.ParseIdentities(strings.NewReader(id.Recipient().String() + "\n"))
	require.Error(t, err, "a public key is not an identity")
	require.NotContains(t, err.Error(), id.Recipient().String())
}

// Sealed blobs come back from storage an attacker may have written to.
func FuzzUnseal(f *testing.F) {
	id, err := age.GenerateX25519Identity()
	require.NoError(f, err)
	s, err := recordings.NewSealer([]string{id.Recipient().String()})
	require.NoError(f, err)
	sealed, err := s.Seal([]byte(`{"a":1}`))
	require.NoError(f, err)
	f.Add(sealed)
	f.Add("")
	f.Add("YWdlLWVuY3J5cHRpb24ub3JnL3YxCg==")
	f.Fuzz(func(t *testing.T, in string) {
		out, err := recordings.Unseal(in, id)
		if err == nil {
			require.LessOrEqual(t, len(out), 16<<20)
		}
	})
}

// BenchmarkSeal is sealing one recorded request (about 200 bytes) to one and to two age
// X25519 recipients: one ephemeral key agreement per recipient dominates.
func BenchmarkSeal(b *testing.B) {
	plain := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"login","arguments":{"user":"ops","password":"Tr0ub4dor&3-horse","dsn":"postgres://app:s3cr3tPassw0rd@db.internal:5432/app"}}}`)
	for _, n := range []int{1, 2} {
		var to []string
		for range n {
			id, err := age.GenerateX25519Identity()
			require.NoError(b, err)
			to = append(to, id.Recipient().String())
		}
		s, err := recordings.NewSealer(to)
		require.NoError(b, err)
		b.Run("recipients="+string(rune('0'+n)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Seal(plain); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
