package emulator

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"golang.org/x/net/http/httpguts"
)

// field is one header entry; keys are lower-case, pseudo-headers start with ':'.
type field struct{ k, v string }

// fields is an ordered header map as Envoy keeps it: repeated keys are separate entries.
type fields []field

func fromHTTP(h http.Header) fields {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out fields
	for _, k := range keys {
		for _, v := range h[k] {
			out = append(out, field{strings.ToLower(k), v})
		}
	}
	return out
}

func (f fields) get(k string) (string, bool) {
	for _, e := range f {
		if e.k == k {
			return e.v, true
		}
	}
	return "", false
}

func (f fields) value(k string) string { v, _ := f.get(k); return v }

func (f *fields) del(k string) {
	out := (*f)[:0]
	for _, e := range *f {
		if e.k != k {
			out = append(out, e)
		}
	}
	*f = out
}

// set replaces every entry of k with one, keeping the position of the first.
func (f *fields) set(k, v string) {
	for i, e := range *f {
		if e.k == k {
			(*f)[i].v = v
			rest := (*f)[i+1:]
			(*f) = (*f)[:i+1]
			for _, r := range rest {
				if r.k != k {
					*f = append(*f, r)
				}
			}
			return
		}
	}
	*f = append(*f, field{k, v})
}

func (f *fields) add(k, v string) { *f = append(*f, field{k, v}) }

// joined is the ext_authz view: one value per key, duplicates comma-joined.
func (f fields) joined() map[string]string {
	m := map[string]string{}
	for _, e := range f {
		if old, ok := m[e.k]; ok {
			m[e.k] = old + "," + e.v
			continue
		}
		m[e.k] = e.v
	}
	return m
}

// headerMap is the ext_proc wire form: values in raw_value only.
func (f fields) headerMap() *corev3.HeaderMap {
	hm := &corev3.HeaderMap{}
	for _, e := range f {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: e.k, RawValue: []byte(e.v)})
	}
	return hm
}

// toHTTP writes the regular (non-pseudo) entries into h.
func (f fields) toHTTP(h http.Header) {
	for _, e := range f {
		if strings.HasPrefix(e.k, ":") {
			continue
		}
		h[http.CanonicalHeaderKey(e.k)] = append(h[http.CanonicalHeaderKey(e.k)], e.v)
	}
}

func (f fields) clone() fields { return append(fields(nil), f...) }

// errMutation is a header mutation Envoy refuses with a local reply, whatever failure_mode_allow says.
var errMutation = errors.New("invalid header mutation")

// procIgnored reports keys whose mutation the default HeaderMutationRules silently ignore.
func procIgnored(k string) bool {
	switch k {
	case "host", ":authority", ":scheme", ":method":
		return true
	}
	return strings.HasPrefix(k, "x-envoy-")
}

// applyProc applies an ext_proc HeaderMutation with Envoy's rules: raw_value only (value-only sets an
// empty header, both set is an error), append defaults to false, append_action is ignored, protected keys
// are ignored, invalid names or values are errors. It returns the number of ignored mutations.
func applyProc(f *fields, m *extprocv3.HeaderMutation, response bool) (int, error) {
	return applyProcReplacing(f, m, response, false)
}

// applyProcReplacing is applyProc for a headers answer; replacing is set when its status is
// CONTINUE_AND_REPLACE, under which Envoy lets the processor change :method (mutation_utils.cc,
// applyHeaderMutations: "to stay compatible"; ExtProcIntegrationTest ConvertGetToPost turns a
// GET into a POST that way).
func applyProcReplacing(f *fields, m *extprocv3.HeaderMutation, response, replacing bool) (int, error) {
	ignored := 0
	// Removals first, then sets and appends: MutationUtils::applyHeaderMutations in
	// source/extensions/filters/http/ext_proc/mutation_utils.cc walks remove_headers before
	// set_headers, so a header removed and appended again in one mutation keeps what is appended.
	for _, k := range m.GetRemoveHeaders() {
		k = strings.ToLower(k)
		if strings.HasPrefix(k, ":") || procIgnored(k) {
			ignored++
			continue
		}
		if !validName(k) {
			return ignored, fmt.Errorf("%w: invalid header name %q", errMutation, k)
		}
		f.del(k)
	}
	for _, o := range m.GetSetHeaders() {
		h := o.GetHeader()
		k := strings.ToLower(h.GetKey())
		if h.GetValue() != "" && len(h.GetRawValue()) > 0 {
			return ignored, fmt.Errorf("%w: %s has both value and raw_value", errMutation, k)
		}
		v := string(h.GetRawValue())
		if !validName(k) || !httpguts.ValidHeaderFieldValue(v) {
			return ignored, fmt.Errorf("%w: invalid header %q", errMutation, k)
		}
		if replacing && !response && k == ":method" && !o.GetAppend().GetValue() {
			f.set(k, v)
			continue
		}
		if procIgnored(k) || (strings.HasPrefix(k, ":") && k != ":path" && (!response || k != ":status")) {
			ignored++
			continue
		}
		if k == ":status" && !validStatus(v, o.GetAppend().GetValue()) {
			// The default mutation rules (disallow_is_error false) ignore a bad :status: Envoy's
			// ExtProcIntegrationTest GetAndSetHeadersOnResponseBadStatus (100) and ...TwoStatuses
			// (a second, appended :status) keep the status they had.
			ignored++
			continue
		}
		if o.GetAppend().GetValue() {
			f.add(k, v)
			continue
		}
		f.set(k, v)
	}
	return ignored, nil
}

// validStatus is a :status a mutation may set: one 3-digit code from 200, replacing the current one.
func validStatus(v string, appended bool) bool {
	n, err := strconv.Atoi(v)
	return err == nil && n >= 200 && n <= 999 && !appended
}

func validName(k string) bool {
	if strings.HasPrefix(k, ":") {
		return len(k) > 1 && httpguts.ValidHeaderFieldName(k[1:])
	}
	return httpguts.ValidHeaderFieldName(k)
}

// applyAuthz applies ext_authz OkHttpResponse headers: value (not raw_value); the deprecated append
// wins when set, append_action otherwise, and the default overwrites.
func applyAuthz(f *fields, opts []*corev3.HeaderValueOption) {
	for _, o := range opts {
		k, v := strings.ToLower(o.GetHeader().GetKey()), o.GetHeader().GetValue()
		if !validName(k) || strings.HasPrefix(k, ":") || !httpguts.ValidHeaderFieldValue(v) {
			continue
		}
		if a := o.GetAppend(); a != nil {
			if a.GetValue() {
				f.add(k, v)
			} else {
				f.set(k, v)
			}
			continue
		}
		_, exists := f.get(k)
		switch o.GetAppendAction() {
		case corev3.HeaderValueOption_ADD_IF_ABSENT:
			if !exists {
				f.add(k, v)
			}
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
			if exists {
				f.set(k, v)
			}
		default:
			f.set(k, v)
		}
	}
}

// headerLimits are the HCM's limits on a header map: max_request_headers_kb (default 60) and
// common_http_protocol_options.max_headers_count (default 100). Envoy applies them to the request
// headers its codec reads, and again after an ext_proc mutation (mutation_utils.cc,
// headerMutationResultCheck), where going over is an invalid mutation.
type headerLimits struct {
	bytes int // sum of key and value lengths, as HeaderMap::byteSize counts
	count int // entries, pseudo-headers included
}

func (l headerLimits) check(f fields) error {
	n := 0
	for _, e := range f {
		n += len(e.k) + len(e.v)
	}
	if n > l.bytes {
		return fmt.Errorf("%w: headers of %d bytes after mutation, limit %d", errMutation, n, l.bytes)
	}
	if len(f) > l.count {
		return fmt.Errorf("%w: %d headers after mutation, limit %d", errMutation, len(f), l.count)
	}
	return nil
}

// checkMutation refuses a mutation that removes or sets more headers than the map may hold, before
// any of it is applied: mutation_utils.cc, responseHeaderSizeCheck, runs first in applyHeaderMutations,
// so removing more entries than max_headers_count is an error even though the result would shrink.
func (l headerLimits) checkMutation(m *extprocv3.HeaderMutation) error {
	if n := len(m.GetRemoveHeaders()); n > l.count {
		return fmt.Errorf("%w: %d headers removed, limit %d", errMutation, n, l.count)
	}
	if n := len(m.GetSetHeaders()); n > l.count {
		return fmt.Errorf("%w: %d headers set, limit %d", errMutation, n, l.count)
	}
	return nil
}

// mutate applies an ext_proc header mutation, then checks the result against the HCM limits.
func (x *exchange) mutate(f *fields, m *extprocv3.HeaderMutation, response bool) error {
	return x.mutateReplacing(f, m, response, false)
}

// mutateReplacing is mutate for a headers answer whose status may be CONTINUE_AND_REPLACE.
func (x *exchange) mutateReplacing(f *fields, m *extprocv3.HeaderMutation, response, replacing bool) error {
	if err := x.e.p.headerLimits.checkMutation(m); err != nil {
		return err
	}
	if _, err := applyProcReplacing(f, m, response, replacing); err != nil {
		return err
	}
	if len(m.GetSetHeaders())+len(m.GetRemoveHeaders()) == 0 {
		return nil
	}
	return x.e.p.headerLimits.check(*f)
}
