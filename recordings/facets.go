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
	if ev.RequestID != "" && !slices.Contains(f.RequestIDs, ev.RequestID) {
		if len(f.RequestIDs) < maxRequestIDs {
			f.RequestIDs = append(f.RequestIDs, ev.RequestID)
		} else {
			f.RequestIDsTruncated = true
		}
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
		if slices.Contains(f.RequestIDs, id) {
			continue
		}
		if len(f.RequestIDs) < maxRequestIDs {
			f.RequestIDs = append(f.RequestIDs, id)
		} else {
			f.RequestIDsTruncated = true
		}
	}
	f.RequestIDsTruncated = f.RequestIDsTruncated || o.RequestIDsTruncated
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
