package policy

// WithoutIndex returns a copy of s that evaluates every rule, for equivalence tests and the
// before/after benchmark.
func WithoutIndex(s *Set) *Set {
	c := *s
	c.idx = nil
	return &c
}

// IndexedRules is the number of rules the index can skip for some message.
func IndexedRules(s *Set) int { return s.idx.indexed }

// CompileUncached compiles a policy that classifies every SQL and shell text afresh, for the
// equivalence tests of the classification memos.
func CompileUncached(data []byte) (*Set, error) { return compile(data, classifier{}) }
