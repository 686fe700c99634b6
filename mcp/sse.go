package mcp

import (
	"bytes"
	"strings"
)

// DefaultMaxEvent is the event size cap of a [Decoder] whose MaxEvent is 0.
const DefaultMaxEvent = 4 << 20

// Event is one complete server-sent event, or a fragment of an oversized one.
type Event struct {
	ID, Name string // id:, event:
	Data     []byte // data lines joined with "\n"
	Retry    string // retry: as sent
	HasID    bool
	HasData  bool   // at least one data: line (an event with empty data is still dispatched)
	Comment  bool   // the event consisted only of comment lines
	Raw      []byte // the exact bytes of the event including its terminating blank line

	// Oversize marks a fragment of an event larger than the decoder's MaxEvent: only Raw is set,
	// and it must be handled as unparsed text (for example by a hold-back masker). End marks the
	// fragment that completes the oversized event; the next event is parsed normally again.
	Oversize bool
	End      bool
}

// Decoder splits an SSE byte stream into events incrementally: chunks may split anywhere (inside
// a field name, between \r and \n, inside UTF-8). Feed returns the events completed by p. Raw bytes
// re-emitted in order reproduce the input byte for byte; Pending reports bytes held for an
// incomplete event; Flush returns them at end of stream.
//
// An event whose Raw would exceed MaxEvent (0 means [DefaultMaxEvent]) is never parsed: its bytes
// come back as Oversize fragments as they arrive, so memory stays bounded by MaxEvent plus one
// chunk. Events up to MaxEvent are identical however the stream is split. The zero value is ready.
type Decoder struct {
	MaxEvent int

	buf      []byte // bytes of the current event not yet returned
	scan     int    // start of the current, incomplete line in buf
	started  bool   // the optional leading BOM has been dealt with
	bomLen   int    // length of the BOM that opens the pending first event, or 0
	oversize bool   // inside an oversized event
	midLine  bool   // oversize: the current line already has content returned in a fragment
}

var bom = []byte("\xEF\xBB\xBF")

// Feed appends p to the stream and returns the events it completed. The events stay valid after
// later calls; p is not retained.
func (d *Decoder) Feed(p []byte) []Event {
	if len(p) == 0 {
		return nil
	}
	d.buf = append(d.buf, p...)
	if !d.started {
		n := min(len(d.buf), len(bom))
		if bytes.Equal(d.buf[:n], bom[:n]) {
			if n < len(bom) {
				return nil // could still be a BOM
			}
			d.scan, d.bomLen = len(bom), len(bom)
		}
		d.started = true
	}
	limit := d.MaxEvent
	if limit <= 0 {
		limit = DefaultMaxEvent
	}
	var evs []Event
	start := 0 // start of the current event in d.buf
	for {
		i, next := lineEnd(d.buf, d.scan)
		if i < 0 {
			break
		}
		blank := i == d.scan && !d.midLine
		d.scan, d.midLine = next, false
		if !blank {
			continue
		}
		raw := d.buf[start:next:next]
		switch {
		case d.oversize:
			evs = append(evs, Event{Raw: raw, Oversize: true, End: true})
			d.oversize = false
		case len(raw) > limit:
			evs = append(evs, Event{Raw: raw, Oversize: true, End: true})
		default:
			evs = append(evs, parseEvent(raw, d.bomLen))
		}
		start, d.bomLen = next, 0
	}
	if !d.oversize && d.Pending()-start > limit {
		d.oversize = true
	}
	if d.oversize {
		// Return everything but a trailing CR, whose LF may follow in the next chunk.
		cut := len(d.buf)
		if cut > start && d.buf[cut-1] == '\r' {
			cut--
		}
		if cut > start {
			evs = append(evs, Event{Raw: d.buf[start:cut:cut], Oversize: true})
			if cut > d.scan {
				d.midLine = true
				d.scan = cut
			}
			start, d.bomLen = cut, 0
		}
	}
	if start > 0 {
		// Earlier events alias d.buf: the next append must copy rather than overwrite them.
		d.buf = d.buf[start:len(d.buf):len(d.buf)]
		d.scan -= start
		if len(d.buf) == 0 {
			d.buf = nil
		}
	}
	return evs
}

// Pending reports the number of bytes held for an incomplete event.
func (d *Decoder) Pending() int { return len(d.buf) }

// Flush returns the held bytes of an incomplete event at end of stream and resets the decoder.
// They were never parsed: a caller must treat them like an Oversize fragment, not release them as
// checked.
func (d *Decoder) Flush() []byte {
	b := d.buf
	*d = Decoder{MaxEvent: d.MaxEvent, started: d.started}
	return b
}

// lineEnd finds the next line terminator at or after from: i is its index and next the index after
// it. A CR at the very end is not reported yet, since an LF may follow. i < 0 means none.
func lineEnd(b []byte, from int) (i, next int) {
	rest := b[from:]
	j := bytes.IndexByte(rest, '\n')
	var cr int
	if j < 0 {
		cr = bytes.IndexByte(rest, '\r')
	} else {
		cr = bytes.IndexByte(rest[:j], '\r')
	}
	switch {
	case cr >= 0:
		k := from + cr
		if k+1 == len(b) {
			return -1, 0
		}
		if b[k+1] == '\n' {
			return k, k + 2
		}
		return k, k + 1
	case j >= 0:
		return from + j, from + j + 1
	}
	return -1, 0
}

// parseEvent interprets the complete event raw, whose first skip bytes are the stream's BOM.
func parseEvent(raw []byte, skip int) Event {
	e := Event{Raw: raw}
	pos := skip
	lines, comments := 0, 0
	var data []byte
	own := false // data is a private copy, not an alias of raw
	for {
		i, next := lineEnd(raw, pos)
		if i < 0 || i == pos {
			break // the blank line that ends the event
		}
		line := raw[pos:i]
		pos = next
		lines++
		if line[0] == ':' {
			comments++
			continue
		}
		name, value := line, line[len(line):]
		if c := bytes.IndexByte(line, ':'); c >= 0 {
			name, value = line[:c], line[c+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(name) {
		case "data":
			switch {
			case !e.HasData:
				data = value[:len(value):len(value)]
			case !own:
				data = append(append(append(make([]byte, 0, 2*(len(data)+len(value))+1), data...), '\n'), value...)
				own = true
			default:
				data = append(append(data, '\n'), value...)
			}
			e.HasData = true
		case "event":
			e.Name = string(value)
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				e.ID, e.HasID = string(value), true
			}
		case "retry":
			e.Retry = string(value)
		}
	}
	e.Data = data
	e.Comment = lines > 0 && comments == lines
	return e
}

// Encode writes an event in canonical form (used when an event's data was changed, e.g. masked):
// id, event, data lines split on \n (a CR also splits), retry, terminated by a blank line. Comments
// and unknown fields are dropped; id, event and retry values are cut at the first line break.
func (e Event) Encode() []byte {
	out := make([]byte, 0, len(e.Data)+len(e.ID)+len(e.Name)+32)
	field := func(name, v string) {
		if i := strings.IndexAny(v, "\r\n"); i >= 0 {
			v = v[:i]
		}
		out = append(out, name...)
		out = append(out, ": "...)
		out = append(out, v...)
		out = append(out, '\n')
	}
	if e.HasID {
		field("id", e.ID)
	}
	if e.Name != "" {
		field("event", e.Name)
	}
	if e.HasData || len(e.Data) > 0 {
		rest := e.Data
		for {
			i := bytes.IndexAny(rest, "\r\n")
			if i < 0 {
				out = append(out, "data: "...)
				out = append(out, rest...)
				out = append(out, '\n')
				break
			}
			out = append(out, "data: "...)
			out = append(out, rest[:i]...)
			out = append(out, '\n')
			if rest[i] == '\r' && i+1 < len(rest) && rest[i+1] == '\n' {
				i++
			}
			rest = rest[i+1:]
		}
	}
	if e.Retry != "" {
		field("retry", e.Retry)
	}
	return append(out, '\n')
}
