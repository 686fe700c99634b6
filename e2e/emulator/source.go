package emulator

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
)

const readChunk = 32 << 10

// source reads a body in its own goroutine into a bounded queue, one entry per read, as Envoy's codec
// delivers data callbacks. Above limit queued bytes it stops reading (back-pressure, like a watermark).
// Chunks that queue up while the consumer is busy can be taken at once (coalesced).
type source struct {
	mu       sync.Mutex
	wake     chan struct{}
	space    chan struct{}
	q        [][]byte
	size     int64
	limit    int64
	eos      bool
	err      error
	trailer  func() http.Header
	activity func()
	done     chan struct{}
}

// chunk is one body piece handed to the pipeline.
type chunk struct {
	data []byte
	eos  bool
}

func startSource(wg *sync.WaitGroup, r io.Reader, limit int64, trailer func() http.Header, activity func()) *source {
	s := &source{
		wake: make(chan struct{}, 1), space: make(chan struct{}, 1), limit: limit,
		trailer: trailer, activity: activity, done: make(chan struct{}),
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(s.done)
		s.read(r)
	}()
	return s
}

func emptySource() *source {
	s := &source{wake: make(chan struct{}, 1), space: make(chan struct{}, 1), eos: true, done: make(chan struct{})}
	close(s.done)
	return s
}

func (s *source) read(r io.Reader) {
	for {
		s.mu.Lock()
		for s.size >= s.limit && s.limit > 0 && s.err == nil {
			s.mu.Unlock()
			<-s.space
			s.mu.Lock()
		}
		stop := s.err != nil
		s.mu.Unlock()
		if stop {
			return
		}
		buf := make([]byte, readChunk)
		n, err := r.Read(buf)
		if n > 0 && s.activity != nil {
			s.activity()
		}
		s.mu.Lock()
		if n > 0 {
			s.q = append(s.q, buf[:n])
			s.size += int64(n)
		}
		switch {
		case errors.Is(err, io.EOF):
			s.eos = true
		case err != nil:
			s.err = err
		}
		end := s.eos || s.err != nil
		s.mu.Unlock()
		s.signal(s.wake)
		if end {
			return
		}
	}
}

func (s *source) signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// abort stops reading after the current Read returns.
func (s *source) abort(err error) {
	s.mu.Lock()
	if s.err == nil && !s.eos {
		s.err = err
	}
	s.mu.Unlock()
	s.signal(s.space)
}

// next blocks until data or the end is available. With all set it takes everything queued as one chunk.
// The final chunk has eos set; it may be empty (chunked bodies end with an empty data frame).
func (s *source) next(ctx context.Context, all bool) (chunk, error) {
	for {
		s.mu.Lock()
		if len(s.q) > 0 {
			var c chunk
			if all {
				for _, b := range s.q {
					c.data = append(c.data, b...)
				}
				s.q = nil
			} else {
				c.data, s.q = s.q[0], s.q[1:]
			}
			s.size -= int64(len(c.data))
			c.eos = s.eos && len(s.q) == 0
			s.mu.Unlock()
			s.signal(s.space)
			return c, nil
		}
		if s.err != nil {
			err := s.err
			s.mu.Unlock()
			return chunk{}, err
		}
		if s.eos {
			s.mu.Unlock()
			return chunk{eos: true}, nil
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-ctx.Done():
			return chunk{}, ctx.Err()
		}
	}
}

// errOverLimit reports a body that does not fit the buffer limit.
var errOverLimit = errors.New("body over buffer limit")

// readAll collects the whole body, failing once more than limit bytes are buffered.
func (s *source) readAll(ctx context.Context, limit int64) ([]byte, error) {
	var out []byte
	for {
		c, err := s.next(ctx, true)
		if err != nil {
			return nil, err
		}
		out = append(out, c.data...)
		if int64(len(out)) > limit {
			return out, errOverLimit
		}
		if c.eos {
			return out, nil
		}
	}
}

// readUpTo collects until the end or until at least limit bytes are buffered.
func (s *source) readUpTo(ctx context.Context, limit int64) (chunk, error) {
	var out chunk
	for {
		c, err := s.next(ctx, true)
		if err != nil {
			return out, err
		}
		out.data = append(out.data, c.data...)
		if c.eos {
			out.eos = true
			return out, nil
		}
		if int64(len(out.data)) >= limit {
			return out, nil
		}
	}
}

// trailers returns the body's trailers once it ended (nil when there are none).
func (s *source) trailers() http.Header {
	if s.trailer == nil {
		return nil
	}
	t := s.trailer()
	if len(t) == 0 {
		return nil
	}
	return t
}

// reader exposes what is left of the source as an io.Reader (no processing).
func (s *source) reader(ctx context.Context) io.Reader { return &srcReader{s: s, ctx: ctx} }

type srcReader struct {
	s   *source
	ctx context.Context
	buf []byte
	eos bool
}

func (r *srcReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.eos {
			return 0, io.EOF
		}
		c, err := r.s.next(r.ctx, false)
		if err != nil {
			return 0, err
		}
		r.buf, r.eos = c.data, c.eos
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}
