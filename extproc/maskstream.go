package extproc

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mcpguard/mcpguard/mcp"
)

// FragmentStage is a response stage that can also process a server-sent event too large
// to parse (over Config.MaxEventBytes) as raw bytes while it streams through. Such an event
// passes only when there is at least one response stage and every one is a FragmentStage;
// otherwise the stream ends with an error, as an uninspectable event must not pass unseen.
type FragmentStage interface {
	ResponseStage
	// Fragments returns the filter for one oversized event of x.
	Fragments(x *Exchange) Filter
}

// Filter rewrites the raw bytes of one oversized event as they arrive.
type Filter interface {
	// Write takes the next bytes and returns those that may be emitted now.
	Write(p []byte) []byte
	// Close returns the rest at the end of the event.
	Close() []byte
}

// oversize passes one fragment of an oversized event through the response stages' filters,
// each filter's output feeding the next.
func (st *stream) oversize(ev mcp.Event) ([]byte, error) {
	if st.frag == nil {
		if len(st.s.resp) == 0 {
			return nil, status.Error(codes.ResourceExhausted, "server-sent event over max_event_bytes")
		}
		st.frag = make([]Filter, 0, len(st.s.resp))
		for _, stg := range st.s.resp {
			fs, ok := stg.(FragmentStage)
			if !ok {
				st.frag = nil
				return nil, status.Error(codes.ResourceExhausted, "server-sent event over max_event_bytes")
			}
			st.frag = append(st.frag, fs.Fragments(st.x))
		}
	}
	out := ev.Raw
	for _, f := range st.frag {
		out = f.Write(out)
	}
	if !ev.End {
		return out, nil
	}
	var carry []byte
	for _, f := range st.frag {
		var o []byte
		if len(carry) > 0 {
			o = f.Write(carry)
		}
		carry = append(o, f.Close()...)
	}
	st.frag = nil
	return append(append([]byte{}, out...), carry...), nil
}
