package masking

// batch is how many new bytes a [Stream] collects before it scans again, so that tiny
// chunks do not cause a rescan each.
const batch = 64 << 10

// Wire masks wire text: a JSON or SSE body as sent, escapes not decoded. It is what a
// [Stream] produces for the same bytes however they are split, and returns s itself with
// nil counts when nothing was found.
func (m *Masker) Wire(s []byte) ([]byte, Counts) {
	fs := m.find(s, nil, true, nil)
	if len(fs) == 0 {
		return s, nil
	}
	var c Counts
	return m.apply(make([]byte, 0, len(s)+32), s, fs, &c), c
}

// Stream masks wire text that arrives in pieces, for bodies too large to hold whole. It
// never emits the last Holdback bytes before Close, and moves each cut left of any finding
// that straddles it, so a secret split across pieces at any byte is masked exactly as
// [Masker.Wire] masks the whole text. A Stream is used by one goroutine.
type Stream struct {
	m      *Masker
	pend   []byte
	ctx    int // leading bytes of pend already emitted, kept as look-behind
	counts Counts
	fs     []finding
}

// NewStream returns a Stream for one body.
func (m *Masker) NewStream() *Stream { return &Stream{m: m} }

// Holdback is the number of bytes a [Stream] keeps back: the longest possible finding
// plus the look-behind any detector uses.
func (m *Masker) Holdback() int { return m.holdback }

// Write adds p and returns the masked bytes that are now safe to emit (possibly none).
// p is not retained.
func (s *Stream) Write(p []byte) []byte {
	s.pend = append(s.pend, p...)
	if len(s.pend)-s.ctx < s.m.holdback+s.m.batch {
		return nil
	}
	return s.process(false)
}

// Close masks and returns everything still held; the Stream can then be used again.
func (s *Stream) Close() []byte {
	out := s.process(true)
	s.pend, s.ctx = s.pend[:0], 0
	return out
}

// Counts returns the findings so far by type.
func (s *Stream) Counts() Counts { return s.counts }

func (s *Stream) process(final bool) []byte {
	p := s.pend
	s.fs = s.m.find(p, nil, true, s.fs)
	cut := len(p)
	if !final {
		cut = len(p) - s.m.holdback
		for _, f := range s.fs {
			if f.start < cut && f.end > cut {
				cut = f.start
			}
		}
		cut = max(cut, s.ctx)
	}
	out := make([]byte, 0, cut-s.ctx+64)
	last := s.ctx
	for _, f := range s.fs {
		if f.end <= s.ctx || f.start >= cut {
			continue
		}
		f.start = max(f.start, s.ctx) // cannot happen with enough look-behind; mask the rest anyway
		out = append(out, p[last:f.start]...)
		out = s.m.replace(out, p[f.start:f.end], f.typ)
		last = f.end
		if s.counts == nil {
			s.counts = Counts{}
		}
		s.counts[s.m.types[f.typ]]++
	}
	out = append(out, p[last:cut]...)
	keep := min(cut, leftContext)
	n := copy(s.pend, p[cut-keep:])
	s.pend, s.ctx = s.pend[:n], keep
	return out
}
