package extproc

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strconv"
	"strings"

	"github.com/andybalholm/brotli"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/klauspost/compress/zstd"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mcpguard/mcpguard/mcp"
)

// Content codings. Masking reads JSON-RPC, so a coded body is either decoded here before
// any stage sees it, or refused: compressed bytes hold no `data:` line and no JSON, and
// would otherwise pass uninspected. Requests ask upstreams for identity (see
// [requestHeadersPass]), so only an upstream that compresses regardless reaches this code.

// coding is a content-coding (RFC 9110 §8.4.1) mcpguard can undo.
type coding string

const (
	codingGzip    coding = "gzip"
	codingDeflate coding = "deflate"
	codingBrotli  coding = "br"
	codingZstd    coding = "zstd"
)

var (
	errUnknownCoding = errors.New("unknown content coding")
	errStackedCoding = errors.New("more than one content coding")
	errDecodedSize   = errors.New("decoded body over max_response_bytes")
	errTrailingData  = errors.New("data after the end of the coded body")
	errDecodeStopped = errors.New("decoding stopped")
)

// zstdMaxWindow is the largest zstd window accepted: RFC 9659 §3 limits the "zstd" HTTP
// content coding to 8 MiB windows, which bounds the decoder's memory.
const zstdMaxWindow = 8 << 20

// decodeStep is how many decoded bytes are produced between two checks of the limit.
const decodeStep = 32 << 10

// parseCoding returns the content coding a content-encoding value names: "" when the body
// is not coded (absent, empty or identity). Stacked codings (`gzip, br`) are refused:
// servers do not stack them, and each layer would multiply a bomb's expansion.
func parseCoding(v string) (coding, error) {
	var got string
	n := 0
	for t := range strings.SplitSeq(v, ",") {
		t = strings.ToLower(strings.TrimSpace(t))
		if t == "" || t == "identity" {
			continue
		}
		got = t
		n++
	}
	switch {
	case n == 0:
		return "", nil
	case n > 1:
		return "", errStackedCoding
	}
	switch got {
	case "gzip", "x-gzip": // RFC 9110 §8.4.1.3: x-gzip is gzip
		return codingGzip, nil
	case "deflate":
		return codingDeflate, nil
	case "br":
		return codingBrotli, nil
	case "zstd":
		return codingZstd, nil
	}
	return "", errUnknownCoding
}

// decoder undoes a content coding as the coded chunks arrive. The decompressors of the
// standard library and klauspost/compress pull from an io.Reader, and Envoy pushes chunks:
// the decompressor runs as a coroutine (iter.Pull) that is resumed with each chunk and
// suspends when it has used it all, so one chunk in gives exactly the bytes it decodes to,
// without a goroutine of its own running alongside the stream's.
type decoder struct {
	c    coding
	left int // decoded bytes still allowed, over the whole body

	in   []byte // coded bytes the coroutine has not read yet
	eos  bool   // in holds the last coded bytes
	seen bool   // some coded byte arrived
	out  []byte // decoded bytes of the current Write

	done bool  // the coded body ended and was verified
	err  error // sticky: decoding failed

	next func() (struct{}, bool)
	stop func()
}

func newDecoder(c coding, limit int) *decoder {
	d := &decoder{c: c, left: limit}
	d.next, d.stop = iter.Pull(d.run)
	return d
}

// Write decodes the next coded chunk; eos marks the last one. It returns the decoded bytes
// this chunk completes. After an error, every Write returns it.
func (d *decoder) Write(p []byte, eos bool) ([]byte, error) {
	if d.err != nil {
		return nil, d.err
	}
	if d.done {
		if len(p) > 0 {
			d.err = errTrailingData
		}
		return nil, d.err
	}
	d.seen = d.seen || len(p) > 0
	if eos && !d.seen {
		// An empty body with a content-encoding header (a 202, a HEAD-like answer) has
		// nothing to decode; the coded form of "" is not empty, so this is not a bypass.
		d.done = true
		d.stop()
		return nil, nil
	}
	d.in, d.eos, d.out = p, eos, nil
	if _, more := d.next(); !more && !d.done && d.err == nil {
		d.err = errDecodeStopped
	}
	out := d.out
	d.out = nil
	if d.err != nil {
		return nil, d.err
	}
	return out, nil
}

// Close releases the coroutine and the decompressor's state.
func (d *decoder) Close() { d.stop() }

// run is the coroutine: it decodes until the coded body ends or fails.
func (d *decoder) run(yield func(struct{}) bool) {
	src := bufio.NewReader(&feed{d: d, yield: yield})
	err := d.decode(src)
	if err == nil && (src.Buffered() > 0 || len(d.in) > 0) {
		err = errTrailingData
	}
	if err != nil {
		d.err = err
		return
	}
	d.done = true
}

func (d *decoder) decode(src *bufio.Reader) error {
	r, closer, err := openCoding(d.c, src)
	if err != nil {
		return fmt.Errorf("open %s: %w", d.c, err)
	}
	defer closer()
	// Read into a buffer of its own: Read may suspend the coroutine, and Write hands d.out
	// to the caller meanwhile.
	buf := make([]byte, decodeStep)
	for {
		n, err := r.Read(buf)
		if n > d.left {
			d.left = 0
			return errDecodedSize
		}
		d.left -= n
		if cap(d.out)-len(d.out) < n {
			// Grow by doubling, never past what the limit still allows: append's 1.25x
			// growth of large slices would allocate about five times a bomb's limit.
			grown := make([]byte, len(d.out), min(2*cap(d.out)+n, len(d.out)+n+d.left))
			copy(grown, d.out)
			d.out = grown
		}
		d.out = append(d.out, buf[:n]...)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("decode %s: %w", d.c, err)
		}
	}
}

// openCoding returns the decompressor of c reading src, and what releases it.
func openCoding(c coding, src *bufio.Reader) (io.Reader, func(), error) {
	switch c {
	case codingGzip:
		zr, err := gzip.NewReader(src) // reads concatenated members, as RFC 1952 allows
		if err != nil {
			return nil, nil, err
		}
		return zr, func() { _ = zr.Close() }, nil
	case codingDeflate:
		// RFC 9110 §8.4.1.2: "deflate" is the zlib format, but some servers send raw
		// deflate; tell them apart by the zlib header (method 8, window ≤ 32K, FCHECK).
		hdr, _ := src.Peek(2)
		if len(hdr) == 2 && hdr[0]&0x0f == 8 && hdr[0]>>4 <= 7 && (uint16(hdr[0])<<8|uint16(hdr[1]))%31 == 0 {
			zr, err := zlib.NewReader(src)
			if err != nil {
				return nil, nil, err
			}
			return zr, func() { _ = zr.Close() }, nil
		}
		fr := flate.NewReader(src)
		return fr, func() { _ = fr.Close() }, nil
	case codingBrotli:
		return brotli.NewReader(src), func() {}, nil
	case codingZstd:
		// One block in flight: decoding stays on this coroutine, with no goroutines.
		zr, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return nil, nil, err
		}
		return zr, zr.Close, nil
	}
	return nil, nil, errUnknownCoding
}

// feed is the coded side of the coroutine: it hands over the current chunk and, once it
// is used up, suspends until the next Write (or reports the end after the last one).
type feed struct {
	d     *decoder
	yield func(struct{}) bool
}

func (f *feed) Read(p []byte) (int, error) {
	for len(f.d.in) == 0 {
		if f.d.eos {
			return 0, io.EOF
		}
		if !f.yield(struct{}{}) {
			return 0, errDecodeStopped
		}
	}
	n := copy(p, f.d.in)
	f.d.in = f.d.in[n:]
	return n, nil
}

// requestHeadersPass is the answer that lets request headers go on. It asks the upstream
// for an uncoded response: with no Accept-Encoding any coding is acceptable (RFC 9110
// §12.5.3), so the header is set to identity rather than removed. Envoy applies it to the
// upstream request only; the agent still gets a plain body, which it accepts by definition.
func requestHeadersPass() *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{
		RequestHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{
			HeaderMutation: &extprocv3.HeaderMutation{
				SetHeaders: []*corev3.HeaderValueOption{header("accept-encoding", "identity")},
			},
		}},
	}}
}

// codedRequest refuses a request body with a content coding: policy reads JSON-RPC, and an
// upstream that decodes request bodies must never get bytes policy did not read. Returns
// nil when the body is not coded.
func (st *stream) codedRequest(hs Headers) *extprocv3.ProcessingResponse {
	c, err := parseCoding(hs.Get("content-encoding"))
	if err == nil && c == "" {
		return nil
	}
	st.s.m.decisions.WithLabelValues("encoding", Deny.String()).Inc()
	st.log.Warn("coded request body refused")
	r := immediate(http.StatusUnsupportedMediaType, mcp.ErrorResponse(nil, &mcp.Error{
		Code: mcp.CodeInvalidRequest, Message: "request content-encoding not supported: send the body uncompressed",
	}), "mcpguard_coded_request")
	// RFC 9110 §15.5.16: a 415 for a content coding names the acceptable ones.
	hm := r.GetImmediateResponse().GetHeaders()
	hm.SetHeaders = append(hm.SetHeaders, header("accept-encoding", "identity"))
	return r
}

// codedResponse prepares the decoding of a coded response body: content-encoding goes from
// the headers (the client gets the plain, inspected body). The coded length goes too: a
// streamed body loses content-length in responseHeaders, as every body switched to
// STREAMED does, and a BUFFERED body gets its new length in the body response. An unknown
// or stacked coding is refused before any byte leaves.
func (st *stream) codedResponse(hs Headers, c *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	cd, err := parseCoding(hs.Get("content-encoding"))
	if err != nil {
		st.s.m.decisions.WithLabelValues("encoding", Deny.String()).Inc()
		st.log.Warn("upstream response with an unsupported content coding refused", "err", err)
		st.phase = finished
		return immediate(http.StatusBadGateway, mcp.ErrorResponse(st.x.requestID(),
			internal("upstream response has an unsupported content encoding")), "mcpguard_unsupported_content_encoding")
	}
	if cd == "" {
		return nil
	}
	st.codec = newDecoder(cd, st.s.cfg.MaxResponseBytes)
	if c.HeaderMutation == nil {
		c.HeaderMutation = &extprocv3.HeaderMutation{}
	}
	c.HeaderMutation.RemoveHeaders = append(c.HeaderMutation.RemoveHeaders, "content-encoding")
	return nil
}

// decodedBody answers a response body message: through the decoder when the response is
// coded, so every stage (masking, recording) sees the plain bytes and only they go on.
func (st *stream) decodedBody(ctx context.Context, b *extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
	if st.codec == nil {
		return st.responseBody(ctx, b)
	}
	// A buffered body is one message, the whole body even when trailers follow (it then
	// carries end_of_stream false): the coded body must end there, verified.
	eos := b.GetEndOfStream() || st.mode == respBuffered
	if eos {
		defer st.codec.Close()
	}
	plain, err := st.codec.Write(b.GetBody(), eos)
	if err != nil {
		return st.undecodable(err, eos)
	}
	r, err := st.responseBody(ctx, &extprocv3.HttpBody{Body: plain, EndOfStream: eos})
	if err != nil {
		return nil, err
	}
	// An answer without a body mutation means "forward the chunk as received", which is
	// the coded chunk: the plain bytes must be sent instead.
	c := r.GetResponseBody().GetResponse()
	if c != nil && c.GetBodyMutation() == nil {
		if plain == nil {
			plain = []byte{}
		}
		c.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: plain}}
		if st.mode == respBuffered {
			c.HeaderMutation = &extprocv3.HeaderMutation{
				SetHeaders: []*corev3.HeaderValueOption{header("content-length", strconv.Itoa(len(plain)))},
			}
		}
	}
	return r, nil
}

// undecodable answers a body that failed to decode (corrupt, trailing data, or over
// max_response_bytes decoded: a bomb stops there). Nothing decoded after the failure is
// sent. A buffered body is refused whole; an accumulated JSON body (headers already out)
// becomes a JSON-RPC error at its end; an event stream ends with an error, as for any
// event that cannot be inspected.
func (st *stream) undecodable(err error, eos bool) (*extprocv3.ProcessingResponse, error) {
	msg := "upstream response could not be decoded"
	code := codes.DataLoss
	if errors.Is(err, errDecodedSize) {
		msg, code = "response too large to inspect", codes.ResourceExhausted
	}
	if !st.codecLogged {
		st.codecLogged = true
		st.log.Warn("coded upstream response withheld", "err", err)
	}
	switch st.mode {
	case respEvents:
		return nil, status.Error(code, msg)
	case respAccumulate:
		if st.phase == awaitResponseEnd {
			// The inspected body already went out: what follows it cannot be answered with
			// an error body any more.
			return nil, status.Error(code, msg)
		}
		if !eos {
			return bodyResponse([]byte{}, nil), nil
		}
		st.phase = finished
		return bodyResponse(mcp.ErrorResponse(st.x.requestID(), internal(msg)), nil), nil
	case respBuffered:
	}
	st.phase = finished
	return immediate(http.StatusBadGateway, mcp.ErrorResponse(st.x.requestID(), internal(msg)),
		"mcpguard_undecodable_response"), nil
}

// releaseCodec frees the decoder of a stream that ended mid-body.
func (st *stream) releaseCodec() {
	if st.codec != nil {
		st.codec.Close()
	}
}
