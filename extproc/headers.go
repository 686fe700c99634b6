package extproc

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// HeaderStage is a response stage that also rewrites the values of the upstream's response
// headers before they reach the client (a token in a debug header, say). Values are never
// logged: a stage reports what it changed on the exchange, as for messages.
type HeaderStage interface {
	ResponseStage
	// ResponseHeader returns the value to send for one header field of x's response and
	// whether it differs from value.
	ResponseHeader(x *Exchange, name, value string) (string, bool)
}

// maskHeaders runs every HeaderStage over the response's header fields and adds to c the
// mutation that replaces what changed. A name with one field is set; a name with several
// (one of them changed) is removed and every field appended again in order, since Envoy
// applies removals before additions (mutation_utils.cc, applyHeaderMutations).
func (st *stream) maskHeaders(hm *corev3.HeaderMap, c *extprocv3.CommonResponse) {
	var stages []HeaderStage
	for _, stg := range st.s.resp {
		if hs, ok := stg.(HeaderStage); ok {
			stages = append(stages, hs)
		}
	}
	if len(stages) == 0 {
		return
	}
	type field struct{ k, v string }
	var fields []field
	count := map[string]int{}
	changed := map[string]bool{}
	for _, h := range hm.GetHeaders() {
		k := h.GetKey()
		v := string(h.GetRawValue())
		if v == "" {
			v = h.GetValue()
		}
		for _, stg := range stages {
			if out, ok := stg.ResponseHeader(st.x, k, v); ok {
				v, changed[k] = out, true
			}
		}
		fields = append(fields, field{k, v})
		count[k]++
	}
	if len(changed) == 0 {
		return
	}
	if c.HeaderMutation == nil {
		c.HeaderMutation = &extprocv3.HeaderMutation{}
	}
	m := c.HeaderMutation
	for k := range changed {
		if count[k] > 1 {
			m.RemoveHeaders = append(m.RemoveHeaders, k)
		}
	}
	for _, f := range fields {
		if !changed[f.k] {
			continue
		}
		o := header(f.k, f.v)
		if count[f.k] > 1 {
			o.Append = wrapperspb.Bool(true)
		}
		m.SetHeaders = append(m.SetHeaders, o)
	}
}

// RawEventStage is a response stage that rewrites the wire bytes of a server-sent event
// that carries no message: comments, priming events (an id: and no data) and the
// 2024-11-05 endpoint announcement reach the client as they are, so what they hold (an
// id, a comment) must be inspected like any other text. The result must keep the
// event's framing.
type RawEventStage interface {
	ResponseStage
	RawEvent(x *Exchange, raw []byte) []byte
}

// rawEvent runs every RawEventStage over an event that carries no message.
func (st *stream) rawEvent(raw []byte) []byte {
	for _, stg := range st.s.resp {
		if rs, ok := stg.(RawEventStage); ok {
			raw = rs.RawEvent(st.x, raw)
		}
	}
	return raw
}
