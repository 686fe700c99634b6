package devissuer

import (
	"path/filepath"
	"testing"
	"time"
)

func BenchmarkMint(b *testing.B) {
	for _, alg := range []string{ES256, RS256} {
		b.Run(alg, func(b *testing.B) {
			c := DefaultConfig()
			c.Algorithm = alg
			iss, err := Open(c, filepath.Join(b.TempDir(), "key.pem"))
			if err != nil {
				b.Fatal(err)
			}
			o := MintOptions{
				Subject: "agent", ClientID: "0oa-agent", Scopes: []string{"mcp:tools"}, Groups: []string{"sre"},
				TTL: time.Hour,
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := iss.Mint(o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpen measures loading an existing key file, as `mcpguard token` does on every run.
func BenchmarkOpen(b *testing.B) {
	path := filepath.Join(b.TempDir(), "key.pem")
	if _, err := Open(DefaultConfig(), path); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Open(DefaultConfig(), path); err != nil {
			b.Fatal(err)
		}
	}
}
