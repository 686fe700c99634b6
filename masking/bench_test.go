package masking_test

import (
	"testing"

	"github.com/mcpguard/mcpguard/masking"
	"github.com/mcpguard/mcpguard/masking/maskingtest"
)

func newMasker(b *testing.B) *masking.Masker {
	b.Helper()
	m, err := masking.New(masking.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkJSON masks the result of every document of a 2 MB generated corpus.
func BenchmarkJSON(b *testing.B) {
	m := newMasker(b)
	docs := maskingtest.Corpus(1, 2<<20)
	n := 0
	for _, d := range docs {
		n += len(d.JSON)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		for _, d := range docs {
			if _, _, err := m.Member(d.JSON, "result"); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkStream masks the same corpus as one SSE wire body through the hold-back Stream.
func BenchmarkStream(b *testing.B) {
	m := newMasker(b)
	var body []byte
	for _, d := range maskingtest.Corpus(1, 2<<20) {
		body = append(append(append(body, "data: "...), d.JSON...), "\n\n"...)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		s := m.NewStream()
		for i := 0; i < len(body); i += 16 << 10 {
			s.Write(body[i:min(len(body), i+16<<10)])
		}
		s.Close()
	}
}

// BenchmarkResult20KB is the added latency of masking one 20 KB tool result.
func BenchmarkResult20KB(b *testing.B) {
	m := newMasker(b)
	d := maskingtest.Result(3, 20<<10)
	b.SetBytes(int64(len(d.JSON)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := m.Member(d.JSON, "result"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkShape masks 1 MB of each shape of tool output on its own, so that a slow shape
// shows by name instead of hiding in the mean.
func BenchmarkShape(b *testing.B) {
	m := newMasker(b)
	for _, shape := range maskingtest.Shapes {
		docs := maskingtest.ShapeCorpus(1, shape, 1<<20)
		n := 0
		for _, d := range docs {
			n += len(d.JSON)
		}
		b.Run(shape, func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				for _, d := range docs {
					if _, _, err := m.Member(d.JSON, "result"); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
