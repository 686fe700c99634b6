package extproc

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"
)

var allCodings = []coding{codingGzip, codingDeflate, codingBrotli, codingZstd}

func compress(t testing.TB, c coding, plain []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	var w interface {
		Write(p []byte) (int, error)
		Close() error
	}
	switch c {
	case codingGzip:
		w = gzip.NewWriter(&b)
	case codingDeflate:
		w = zlib.NewWriter(&b)
	case codingBrotli:
		w = brotli.NewWriter(&b)
	case codingZstd:
		zw, err := zstd.NewWriter(&b)
		require.NoError(t, err)
		w = zw
	}
	_, err := w.Write(plain)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return b.Bytes()
}

// decodeParts feeds parts to a fresh decoder and returns all it decoded, or its error.
func decodeParts(c coding, limit int, parts ...[]byte) ([]byte, error) {
	d := newDecoder(c, limit)
	defer d.Close()
	var out []byte
	for i, p := range parts {
		o, err := d.Write(p, i == len(parts)-1)
		if err != nil {
			return nil, err
		}
		out = append(out, o...)
	}
	return out, nil
}

func TestParseCoding(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want coding
		err  error
	}{
		{"", "", nil},
		{"identity", "", nil},
		{" gzip ", codingGzip, nil},
		{"X-GZIP", codingGzip, nil},
		{"deflate", codingDeflate, nil},
		{"br", codingBrotli, nil},
		{"zstd, identity", codingZstd, nil},
		{"gzip, br", "", errStackedCoding},
		{"gzip,gzip", "", errStackedCoding},
		{"compress", "", errUnknownCoding},
		{"x-custom", "", errUnknownCoding},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseCoding(tc.in)
			require.ErrorIs(t, err, tc.err)
			require.Equal(t, tc.want, got)
		})
	}
}

// TestDecoderSplitAtEveryOffset: however the coded body is cut into chunks, the decoded
// bytes are the same, and each chunk releases what it completes.
func TestDecoderSplitAtEveryOffset(t *testing.T) {
	plain := []byte(strings.Repeat(`data: {"jsonrpc":"2.0","id":1,"result":{}}`+"\n\n", 40))
	for _, c := range allCodings {
		t.Run(string(c), func(t *testing.T) {
			coded := compress(t, c, plain)
			for k := 0; k <= len(coded); k++ {
				got, err := decodeParts(c, 1<<20, coded[:k], coded[k:])
				require.NoError(t, err, "split at %d", k)
				require.Equal(t, plain, got, "split at %d", k)
			}
			parts := make([][]byte, len(coded))
			for i := range coded {
				parts[i] = coded[i : i+1]
			}
			got, err := decodeParts(c, 1<<20, parts...)
			require.NoError(t, err)
			require.Equal(t, plain, got, "byte by byte")
		})
	}
}

func TestDecoderLimitsAndErrors(t *testing.T) {
	plain := bytes.Repeat([]byte("x"), 100_000)
	for _, c := range allCodings {
		t.Run(string(c), func(t *testing.T) {
			coded := compress(t, c, plain)
			_, err := decodeParts(c, len(plain)-1, coded)
			require.ErrorIs(t, err, errDecodedSize)
			got, err := decodeParts(c, len(plain), coded)
			require.NoError(t, err, "exactly at the limit passes")
			require.Len(t, got, len(plain))
			_, err = decodeParts(c, 1<<20, coded[:len(coded)-1])
			require.Error(t, err, "truncated")
			_, err = decodeParts(c, 1<<20, coded, []byte("tail"))
			require.Error(t, err, "data after the coded body")
			got, err = decodeParts(c, 1<<20, nil)
			require.NoError(t, err, "an empty body has nothing to decode")
			require.Empty(t, got)
		})
	}
}

// TestDecoderReleased: a decoder abandoned mid-body leaves no goroutine behind.
func TestDecoderReleased(t *testing.T) {
	coded := compress(t, codingZstd, bytes.Repeat([]byte("abc"), 50_000))
	before := runtime.NumGoroutine()
	for range 50 {
		for _, c := range allCodings {
			d := newDecoder(c, 1<<20)
			_, _ = d.Write(coded[:len(coded)/2], false)
			d.Close()
		}
	}
	require.LessOrEqual(t, runtime.NumGoroutine(), before)
}

// FuzzDecoder: any coded input, cut anywhere, decodes to the same bytes (or fails) as when
// it arrives whole, never beyond the limit.
func FuzzDecoder(f *testing.F) {
	plain := []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"4111 1111 1111 1111"}]}}`)
	for i, c := range allCodings {
		coded := compress(f, c, plain)
		f.Add(uint8(i), coded, uint16(len(coded)/2))
		f.Add(uint8(i), coded[:len(coded)-2], uint16(3))
	}
	f.Add(uint8(1), []byte{0x78, 0x9c}, uint16(1))
	f.Fuzz(func(t *testing.T, which uint8, data []byte, cut uint16) {
		c := allCodings[int(which)%len(allCodings)]
		const limit = 1 << 16
		whole, werr := decodeParts(c, limit, data)
		k := min(int(cut), len(data))
		split, serr := decodeParts(c, limit, data[:k], data[k:])
		require.Equal(t, werr == nil, serr == nil, "whole: %v, split at %d: %v", werr, k, serr)
		if werr == nil {
			require.Equal(t, whole, split)
			require.LessOrEqual(t, len(whole), limit)
		}
	})
}

// BenchmarkDecode is the cost of decoding 1 MiB of SSE JSON-RPC text per coding, fed in
// 16 KiB chunks as Envoy streams it (the masking cost comes on top, for plain bodies too).
func BenchmarkDecode(b *testing.B) {
	var plain []byte
	for i := 0; len(plain) < 1<<20; i++ {
		plain = append(plain, `data: {"jsonrpc":"2.0","id":`+strconv.Itoa(i)+
			`,"result":{"content":[{"type":"text","text":"row `+strconv.Itoa(i*7919)+` of the billing report, total 1234.56 EUR"}]}}`+"\n\n"...)
	}
	plain = plain[:1<<20]
	for _, c := range allCodings {
		coded := compress(b, c, plain)
		b.Run(string(c), func(b *testing.B) {
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			for b.Loop() {
				d := newDecoder(c, 2<<20)
				n := 0
				for off := 0; off < len(coded); off += 16 << 10 {
					end := min(off+16<<10, len(coded))
					out, err := d.Write(coded[off:end], end == len(coded))
					if err != nil {
						b.Fatal(err)
					}
					n += len(out)
				}
				d.Close()
				if n != len(plain) {
					b.Fatalf("decoded %d bytes, want %d", n, len(plain))
				}
			}
		})
	}
}
