package recordings

import (
	"slices"
)

// maxRequestIDs bounds the request ids a manifest and its index entry carry; a chain
// with more is marked truncated and a search by request id reads its segments instead.
const maxRequestIDs = 256

// Facets is what a chain can be searched by without reading its segments: the tools
// called, the policy rules that decided, the decisions taken (policy actions and approval
// states) and the request ids. Values come from events, never from argument values.
type Facets struct {
	Tools      []string `json:"tools,omitempty"`
	Rules      []string `json:"rules,omitempty"`
	Decisions  []string `json:"decisions,omitempty"`
	RequestIDs []string `json:"request_ids,omitempty"`
	// RequestIDsTruncated is set when the chain had more than 256 request ids.
	RequestIDsTruncated bool `json:"request_ids_truncated,omitempty"`
}

// add folds one event into the facets.
func (f *Facets) add(ev *Event) {
	if ev.Tool != "" {
		f.Tools = addOnce(f.Tools, ev.Tool)
	}
	if ev.RequestID != "" {
		f.addRequestID(ev.RequestID)
	}
	n := ev.Note
	if n == nil || n.Attrs == nil {
		return
	}
	if rule, ok := n.Attrs["rule"].(string); ok && rule != "" && (n.Stage == "policy" || n.Stage == "approvals") {
		f.Rules = addOnce(f.Rules, rule)
	}
	switch {
	case n.Stage == "policy" && n.Kind == "decision":
		if obs, _ := n.Attrs["observe"].(bool); obs {
			return // an observation is not a decision taken
		}
		if a, ok := n.Attrs["action"].(string); ok && a != "" {
			f.Decisions = addOnce(f.Decisions, a)
		}
	case n.Stage == "approvals" && n.Kind == "approval":
		if s, ok := n.Attrs["state"].(string); ok && s != "" && s != "pending" {
			f.Decisions = addOnce(f.Decisions, s)
		}
	}
}

// merge folds o into f.
func (f *Facets) merge(o Facets) {
	for _, t := range o.Tools {
		f.Tools = addOnce(f.Tools, t)
	}
	for _, r := range o.Rules {
		f.Rules = addOnce(f.Rules, r)
	}
	for _, d := range o.Decisions {
		f.Decisions = addOnce(f.Decisions, d)
	}
	for _, id := range o.RequestIDs {
		f.addRequestID(id)
	}
	f.RequestIDsTruncated = f.RequestIDsTruncated || o.RequestIDsTruncated
}

// addRequestID adds id unless it is there; a full list only marks the facets truncated.
// Once the list is full and marked, nothing can change, so the scan is skipped: a long
// session adds a request id with every event and merges a segment's ids at every flush.
func (f *Facets) addRequestID(id string) {
	full := len(f.RequestIDs) >= maxRequestIDs
	if full && f.RequestIDsTruncated {
		return
	}
	if slices.Contains(f.RequestIDs, id) {
		return
	}
	if full {
		f.RequestIDsTruncated = true
		return
	}
	f.RequestIDs = append(f.RequestIDs, id)
}

// clone returns a copy that shares no list with f.
func (f Facets) clone() Facets {
	out := f
	out.Tools = slices.Clone(f.Tools)
	out.Rules = slices.Clone(f.Rules)
	out.Decisions = slices.Clone(f.Decisions)
	out.RequestIDs = slices.Clone(f.RequestIDs)
	return out
}

// sorted returns a copy with every list sorted (request ids keep their order).
func (f Facets) sorted() Facets {
	out := f
	out.Tools = slices.Sorted(slices.Values(f.Tools))
	out.Rules = slices.Sorted(slices.Values(f.Rules))
	out.Decisions = slices.Sorted(slices.Values(f.Decisions))
	out.RequestIDs = slices.Clone(f.RequestIDs)
	return out
}

func addOnce(list []string, v string) []string {
	if slices.Contains(list, v) {
		return list
	}
	return append(list, v)
}
