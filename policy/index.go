package policy

import (
	"path"
	"regexp/syntax"
	"slices"
	"strings"

	celast "github.com/google/cel-go/common/ast"
)

// The rule index. At compile time each condition is read for what it needs of a few fields
// every message has (request.method and .tool, identity.subject, .client_id, .issuer, .groups,
// .scopes, event.kind and .tool): literal equality (request.tool == "x"), `in` a literal list,
// a literal `in` identity.groups, and literal prefixes (glob("admin_*", request.tool),
// s.startsWith("x"), s.matches("^x…")). A rule whose needs a message does not meet is not
// evaluated: its condition is false for that message, without error, so skipping it cannot
// change a decision (not even a fail-closed one, which needs an error).
//
// Soundness rests on CEL's evaluation of && and ||: `false && x` is false whatever x is
// (error included), and `a || b` is false when both sides are. A need of the right-hand side
// of && is used only when the left-hand side holds no comprehension: the left side is
// evaluated first, and a comprehension is the one thing that can run a condition into the
// cost limit (an error, so a refusal) before the false right side is reached.

// field is a message field the index knows.
type field uint8

const (
	fMethod field = iota
	fTool
	fSubject
	fClientID
	fIssuer
	fEventKind
	fEventTool
	fGroups // membership: the message holds one of the values
	fScopes
	numFields
)

var fieldNames = map[[2]string]field{
	{"request", "method"}: fMethod, {"request", "tool"}: fTool,
	{"identity", "subject"}: fSubject, {"identity", "client_id"}: fClientID, {"identity", "issuer"}: fIssuer,
	{"event", "kind"}: fEventKind, {"event", "tool"}: fEventTool,
	{"identity", "groups"}: fGroups, {"identity", "scopes"}: fScopes,
}

func (f field) list() bool { return f == fGroups || f == fScopes }

// need is one necessary condition of a rule: the field equals (or, for a list, holds) one of
// values, or, with prefix set, the field starts with it.
type need struct {
	f      field
	values []string
	prefix string
	isPfx  bool
}

// needs is a conjunction: the condition is false (without error) unless every need holds.
type needs []need

// analyze returns the needs of a boolean condition; nil when none can be proven.
func analyze(e celast.Expr) needs {
	if e.Kind() != celast.CallKind {
		return nil
	}
	c := e.AsCall()
	args := c.Args()
	switch c.FunctionName() {
	case "_&&_":
		if len(args) != 2 {
			return nil
		}
		out := slices.Clone(analyze(args[0]))
		if !hasComprehension(args[0]) {
			out = append(out, analyze(args[1])...)
		}
		return out
	case "_||_":
		if len(args) != 2 {
			return nil
		}
		return either(analyze(args[0]), analyze(args[1]))
	case "_==_":
		if len(args) != 2 {
			return nil
		}
		a, b := args[0], args[1]
		if _, ok := stringLiteral(a); ok {
			a, b = b, a
		}
		f, ok := scalarField(a)
		lit, isLit := stringLiteral(b)
		if !ok || !isLit {
			return nil
		}
		return needs{{f: f, values: []string{lit}}}
	case "@in":
		if len(args) != 2 {
			return nil
		}
		// "lit" in identity.groups
		if lit, ok := stringLiteral(args[0]); ok {
			if f, isList := fieldOf(args[1]); isList && f.list() {
				return needs{{f: f, values: []string{lit}}}
			}
			return nil
		}
		// request.tool in ["a", "b"]
		f, ok := scalarField(args[0])
		if !ok || args[1].Kind() != celast.ListKind {
			return nil
		}
		l := args[1].AsList()
		if len(l.OptionalIndices()) > 0 {
			return nil
		}
		vals := make([]string, 0, len(l.Elements()))
		for _, el := range l.Elements() {
			lit, isLit := stringLiteral(el)
			if !isLit {
				return nil
			}
			vals = append(vals, lit)
		}
		return needs{{f: f, values: vals}}
	case "startsWith":
		if !c.IsMemberFunction() || len(args) != 1 {
			return nil
		}
		f, ok := scalarField(c.Target())
		lit, isLit := stringLiteral(args[0])
		if !ok || !isLit || lit == "" {
			return nil
		}
		return needs{{f: f, prefix: lit, isPfx: true}}
	case "matches":
		if !c.IsMemberFunction() || len(args) != 1 {
			return nil
		}
		f, ok := scalarField(c.Target())
		lit, isLit := stringLiteral(args[0])
		if !ok || !isLit {
			return nil
		}
		if p := anchoredPrefix(lit); p != "" {
			return needs{{f: f, prefix: p, isPfx: true}}
		}
	case "glob":
		if len(args) != 2 {
			return nil
		}
		pat, isLit := stringLiteral(args[0])
		f, ok := scalarField(args[1])
		if !isLit || !ok {
			return nil
		}
		if _, err := path.Match(pat, ""); err != nil {
			return nil // a malformed pattern errors on every message: never skip it
		}
		if i := strings.IndexAny(pat, `*?[\`); i < 0 {
			return needs{{f: f, values: []string{pat}}}
		} else if i > 0 {
			return needs{{f: f, prefix: pat[:i], isPfx: true}}
		}
	}
	return nil
}

// either is the needs of a || b: for each field both sides need, the union of what they
// accept (for prefixes, their common prefix).
func either(a, b needs) needs {
	var out needs
	for f := range numFields {
		va, pa, okA := merged(a, f)
		vb, pb, okB := merged(b, f)
		if !okA || !okB {
			continue
		}
		switch {
		case va != nil && vb != nil:
			u := slices.Clone(va)
			for _, v := range vb {
				if !slices.Contains(u, v) {
					u = append(u, v)
				}
			}
			out = append(out, need{f: f, values: u})
		case va == nil && vb == nil:
			if p := commonPrefix(pa, pb); p != "" {
				out = append(out, need{f: f, prefix: p, isPfx: true})
			}
		}
	}
	return out
}

// merged is the one need on f that ns implies, if any: for a scalar field, the values every
// set need admits (or the longest prefix need); for a list field, the first set need.
func merged(ns needs, f field) (values []string, prefix string, ok bool) {
	for _, n := range ns {
		if n.f != f {
			continue
		}
		switch {
		case n.isPfx && values == nil:
			if len(n.prefix) > len(prefix) {
				prefix, ok = n.prefix, true
			}
		case n.isPfx:
		case values == nil:
			values, ok = n.values, true
			if f.list() {
				return values, "", true
			}
		default:
			values = slices.DeleteFunc(slices.Clone(values), func(v string) bool { return !slices.Contains(n.values, v) })
			if values == nil {
				values = []string{}
			}
		}
	}
	if values != nil {
		return values, "", ok
	}
	return nil, prefix, ok
}

func commonPrefix(a, b string) string {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return a[:n]
}

// anchoredPrefix is the literal every match of a regular expression (RE2 syntax, as CEL's
// matches uses) must start the string with: ^ then case-sensitive literal characters.
func anchoredPrefix(re string) string {
	r, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return ""
	}
	if r.Op != syntax.OpConcat || len(r.Sub) < 2 || r.Sub[0].Op != syntax.OpBeginText {
		return ""
	}
	lit := r.Sub[1]
	if lit.Op != syntax.OpLiteral || lit.Flags&syntax.FoldCase != 0 {
		return ""
	}
	return string(lit.Rune)
}

// scalarField reports whether e is a string field the index knows (not a list).
func scalarField(e celast.Expr) (field, bool) {
	f, ok := fieldOf(e)
	return f, ok && !f.list()
}

// fieldOf reports whether e is variable.field for a field the index knows.
func fieldOf(e celast.Expr) (field, bool) {
	if e.Kind() != celast.SelectKind || e.AsSelect().IsTestOnly() {
		return 0, false
	}
	op := e.AsSelect().Operand()
	if op.Kind() != celast.IdentKind {
		return 0, false
	}
	f, ok := fieldNames[[2]string{op.AsIdent(), e.AsSelect().FieldName()}]
	return f, ok
}

func hasComprehension(e celast.Expr) bool {
	found := false
	celast.PreOrderVisit(e, celast.NewExprVisitor(func(x celast.Expr) {
		if x.Kind() == celast.ComprehensionKind {
			found = true
		}
	}))
	return found
}

// index finds the rules a message can match: one bitset per field and value.
type index struct {
	words int
	// fields[f].constrained has a bit per rule with a value need on f; fields[f].admit[v]
	// the bits of those rules that accept v.
	fields [numFields]struct {
		constrained []uint64
		admit       map[string][]uint64
	}
	// prefixes are each rule's prefix needs, checked on the rules the bitsets leave.
	prefixes [][]need
	// indexed counts the rules with at least one need (for the metric and docs).
	indexed int
}

func newIndex(rules []needs) *index {
	x := &index{words: (len(rules) + 63) / 64, prefixes: make([][]need, len(rules))}
	for i, ns := range rules {
		if len(ns) > 0 {
			x.indexed++
		}
		for f := range numFields {
			vals, _, ok := merged(ns, f)
			if !ok || vals == nil {
				continue
			}
			fi := &x.fields[f]
			if fi.constrained == nil {
				fi.constrained = make([]uint64, x.words)
				fi.admit = map[string][]uint64{}
			}
			fi.constrained[i/64] |= 1 << (i % 64)
			for _, v := range vals {
				bs := fi.admit[v]
				if bs == nil {
					bs = make([]uint64, x.words)
					fi.admit[v] = bs
				}
				bs[i/64] |= 1 << (i % 64)
			}
		}
		for _, n := range ns {
			if n.isPfx {
				x.prefixes[i] = append(x.prefixes[i], n)
			}
		}
	}
	return x
}

// view is what the index reads of an input.
type view struct {
	scalar [numFields]string
	lists  [numFields][]string
}

func viewOf(in Input) *view {
	v := &view{}
	if m := in.Msg; m != nil {
		v.scalar[fMethod], v.scalar[fTool] = m.Method, m.Tool
	}
	v.scalar[fSubject], v.scalar[fClientID], v.scalar[fIssuer] = in.Identity.Subject, in.Identity.ClientID, in.Identity.Issuer
	if e := in.Event; e != nil {
		v.scalar[fEventKind], v.scalar[fEventTool] = e.Kind, e.Tool
	}
	v.lists[fGroups], v.lists[fScopes] = in.Identity.Groups, in.Identity.Scopes
	return v
}

// candidates sets in dst the bits of the rules the message may match.
func (x *index) candidates(v *view, dst []uint64) {
	for i := range dst {
		dst[i] = ^uint64(0)
	}
	for f := range numFields {
		fi := &x.fields[f]
		if fi.constrained == nil {
			continue
		}
		var one []uint64
		if !f.list() {
			one = fi.admit[v.scalar[f]]
		}
		for w := range dst {
			mask := ^fi.constrained[w]
			if f.list() {
				for _, val := range v.lists[f] {
					if bs := fi.admit[val]; bs != nil {
						mask |= bs[w]
					}
				}
			} else if one != nil {
				mask |= one[w]
			}
			dst[w] &= mask
		}
	}
}

// admits reports whether rule i may match: its bit is set and its prefix needs hold.
func (x *index) admits(v *view, cand []uint64, i int) bool {
	if cand[i/64]&(1<<(i%64)) == 0 {
		return false
	}
	for _, n := range x.prefixes[i] {
		if !strings.HasPrefix(v.scalar[n.f], n.prefix) {
			return false
		}
	}
	return true
}
