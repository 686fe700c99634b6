package netx

import (
	"crypto/tls"
	"testing"
)

// BenchmarkGetConfigForClient measures the per-handshake lookup of the current material.
func BenchmarkGetConfigForClient(b *testing.B) {
	r := benchReloader(b)
	get := r.ServerConfig("h2").GetConfigForClient
	hello := &tls.ClientHelloInfo{}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := get(hello); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckUnchanged measures one Run tick when the files did not change (read + hash).
func BenchmarkCheckUnchanged(b *testing.B) {
	r := benchReloader(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.load(false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReload measures a forced reload: read, hash and parse the pair and the CA.
func BenchmarkReload(b *testing.B) {
	r := benchReloader(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Reload(); err != nil {
			b.Fatal(err)
		}
	}
}

func benchReloader(b *testing.B) *Reloader {
	b.Helper()
	ca := newCA(b, "ca")
	f := newFiles(b)
	f.writeLeaf(b, ca.issue(b, true))
	writeFile(b, f.ca, ca.pem)
	r, err := NewReloader(TLSConfig{CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.ca}, newLogger(&logBuf{}))
	if err != nil {
		b.Fatal(err)
	}
	return r
}
