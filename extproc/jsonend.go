package extproc

// valueEnd finds where the top-level JSON object or array of a body ends while the body
// arrives in pieces. A streamed body followed by trailers never carries end_of_stream: its
// last chunk comes with end_of_stream false and nothing else tells the processor that the
// body is over (the trailers message, if any, comes only after every chunk was answered).
// A JSON-RPC body is one object or array, so its closing bracket is where it ends.
//
// It only delimits: brackets are counted, not matched, and nothing is validated; the
// body is parsed in full once its end is seen. Strings (with escapes) are skipped so
// brackets inside them do not count.
type valueEnd struct {
	depth   int
	started bool // the opening bracket was seen
	inStr   bool
	esc     bool
	done    bool // the value ended
	opaque  bool // the body does not start with '{' or '[': its end cannot be seen
}

// feed scans the next piece of the body. It returns the offset in p just past the value's
// closing bracket when the value ends in p, and -1 otherwise (also after the end was
// already reported, and for a body whose end cannot be seen).
func (s *valueEnd) feed(p []byte) int {
	if s.done || s.opaque {
		return -1
	}
	for i, c := range p {
		if !s.started {
			switch c {
			case ' ', '\t', '\r', '\n':
				continue
			case '{', '[':
				s.started, s.depth = true, 1
				continue
			default:
				s.opaque = true
				return -1
			}
		}
		if s.inStr {
			switch {
			case s.esc:
				s.esc = false
			case c == '\\':
				s.esc = true
			case c == '"':
				s.inStr = false
			}
			continue
		}
		switch c {
		case '"':
			s.inStr = true
		case '{', '[':
			s.depth++
		case '}', ']':
			s.depth--
			if s.depth == 0 {
				s.done = true
				return i + 1
			}
		}
	}
	return -1
}

// onlySpace reports whether p holds nothing but JSON whitespace.
func onlySpace(p []byte) bool {
	for _, c := range p {
		switch c {
		case ' ', '\t', '\r', '\n':
		default:
			return false
		}
	}
	return true
}
