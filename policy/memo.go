package policy

import (
	"slices"
	"strings"
	"sync"
	"unsafe"
)

// Agents repeat their statements (the same SELECT with the same literals, the same `git
// status`), and parsing is most of a decision's cost: classifications are remembered, keyed
// by the exact text (and dialect), in a memo bounded in entries and in bytes.
//
// Only complete classifications are remembered: SQL that parsed, shell that parsed with every
// SQL text inside it parsed. A failure of any kind (syntax, a bound, a parser that panicked)
// is computed again at each decision, so that the memo can never be the reason a payload is
// refused, nor the reason one is not. A remembered classification is the value the classifier
// returns for that text, shared read-only between decisions.

// Bounds of the shared memos. A generation holds at most half of them (see memo).
const (
	memoEntries = 4096
	memoBytes   = 8 << 20
)

// memoKey is a classified text: dialect is empty for shell.
type memoKey struct {
	dialect Dialect
	text    string
}

// memoEntry is a classification and its CEL value, built once.
type memoEntry[V any] struct {
	v     V
	val   map[string]any
	bytes int
}

// memo is a bounded, concurrency-safe map from text to classification, in two generations:
// entries are added to cur; when cur reaches half of a bound it becomes old and the previous
// old is dropped; a hit in old moves the entry to cur. What is used stays, and at no time do
// both generations together exceed the bounds.
type memo[V any] struct {
	mu       sync.RWMutex
	cur, old map[memoKey]*memoEntry[V]
	curBytes int
	// genEntries and genBytes bound one generation; maxEntry bounds one entry's size.
	genEntries, genBytes, maxEntry int
}

func newMemo[V any](entries, bytes int) *memo[V] {
	return &memo[V]{
		cur:        map[memoKey]*memoEntry[V]{},
		genEntries: max(1, entries/2), genBytes: bytes / 2, maxEntry: bytes / 64,
	}
}

// get returns the remembered classification of k. A hit in the old generation moves the
// entry to the current one.
func (m *memo[V]) get(k memoKey) (*memoEntry[V], bool) {
	m.mu.RLock()
	e, ok := m.cur[k]
	inOld := false
	if !ok {
		e, inOld = m.old[k]
	}
	m.mu.RUnlock()
	if ok || !inOld {
		return e, ok
	}
	m.mu.Lock()
	if _, inCur := m.cur[k]; !inCur {
		delete(m.old, k)
		m.insert(k, e)
	}
	m.mu.Unlock()
	return e, true
}

// put remembers e under k, unless e alone is larger than an entry may be. The text of the
// key is copied, so that the memo never holds on to a larger string it was cut from.
func (m *memo[V]) put(k memoKey, e *memoEntry[V]) {
	e.bytes += int(unsafe.Sizeof(*e)) + int(unsafe.Sizeof(k)) + len(k.text) + len(k.dialect)
	if e.bytes > m.maxEntry {
		return
	}
	k.text = strings.Clone(k.text)
	m.mu.Lock()
	if _, ok := m.cur[k]; !ok {
		delete(m.old, k)
		m.insert(k, e)
	}
	m.mu.Unlock()
}

// insert adds e to cur, first turning cur into old when e would take it past a bound.
// Callers hold mu.
func (m *memo[V]) insert(k memoKey, e *memoEntry[V]) {
	if len(m.cur) >= m.genEntries || m.curBytes+e.bytes > m.genBytes {
		m.old, m.cur, m.curBytes = m.cur, make(map[memoKey]*memoEntry[V], len(m.cur)), 0
	}
	m.cur[k] = e
	m.curBytes += e.bytes
}

// size reports the entries and estimated bytes held.
func (m *memo[V]) size() (entries, bytes int) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	bytes = m.curBytes
	for _, e := range m.old {
		bytes += e.bytes
	}
	return len(m.cur) + len(m.old), bytes
}

// classifier classifies SQL and shell text, through memos when it has them. The zero value
// classifies every text afresh.
type classifier struct {
	sql   *memo[SQL]
	shell *memo[Shell]
}

// shared is the classifier of compiled policies: the memos outlive a policy reload, as a
// classification depends on the text alone.
var shared = classifier{sql: newMemo[SQL](memoEntries, memoBytes), shell: newMemo[Shell](memoEntries, memoBytes)}

// The classifications of a tool call that carries no SQL or shell argument, and their values.
var (
	noSQL   = &memoEntry[SQL]{val: SQL{}.Value()}
	noShell = &memoEntry[Shell]{val: Shell{}.Value()}
)

// classifySQL is [ClassifySQL] with its CEL value. The entry must not be modified.
func (c classifier) classifySQL(d Dialect, q string) *memoEntry[SQL] {
	k := memoKey{dialect: d, text: q}
	if c.sql != nil {
		if e, ok := c.sql.get(k); ok {
			return e
		}
	}
	s := ClassifySQL(d, q)
	e := sqlEntry(s)
	if c.sql != nil && s.Parsed {
		e.bytes = sqlBytes(s)
		c.sql.put(k, e)
	}
	return e
}

// classifyShell is [ClassifyShell] with its CEL value. The entry must not be modified.
func (c classifier) classifyShell(cmd string) *memoEntry[Shell] {
	k := memoKey{text: cmd}
	if c.shell != nil {
		if e, ok := c.shell.get(k); ok {
			return e
		}
	}
	s := ClassifyShell(cmd)
	e := shellEntry(s)
	if c.shell != nil && s.Parsed && !slices.ContainsFunc(s.SQL, unparsed) {
		e.bytes = shellBytes(s)
		c.shell.put(k, e)
	}
	return e
}

func unparsed(q SQL) bool { return !q.Parsed }

// Sizes used to account for a classification: its struct, the strings it holds, and its
// CEL value (a map of some twenty entries, one more per statement). They are estimates on
// the high side; TestMemoBytesBound checks them against the heap.
const (
	valueMapBytes     = 2048
	statementMapBytes = 1536
)

func sqlBytes(s SQL) int {
	n := int(unsafe.Sizeof(s)) + len(s.Error) + valueMapBytes
	for _, st := range s.Statements {
		n += int(unsafe.Sizeof(st)) + len(st.Kind) + statementMapBytes
		for _, f := range st.Functions {
			n += len(f) + 2*int(unsafe.Sizeof(f))
		}
		for _, f := range st.UnknownFunctions {
			n += len(f) + 2*int(unsafe.Sizeof(f))
		}
	}
	return n
}

func shellBytes(s Shell) int {
	n := int(unsafe.Sizeof(s)) + len(s.Error) + valueMapBytes
	for _, l := range [][]string{s.Commands, s.Wrappers, s.reasons} {
		for _, c := range l {
			n += len(c) + 2*int(unsafe.Sizeof(c))
		}
	}
	for k := range s.funcs {
		n += len(k) + 64
	}
	for _, q := range s.SQL {
		n += sqlBytes(q) + valueMapBytes
	}
	return n
}

func sqlEntry(s SQL) *memoEntry[SQL]       { return &memoEntry[SQL]{v: s, val: s.Value()} }
func shellEntry(s Shell) *memoEntry[Shell] { return &memoEntry[Shell]{v: s, val: s.Value()} }
