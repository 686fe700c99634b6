package policy

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"
)

// Store keeps session-scoped state: call counters and the tool fingerprints pinned at the
// first tools/list. The in-process [Memory] serves one replica; a shared implementation lets
// several replicas agree. Implementations are safe for concurrent use.
type Store interface {
	// Incr adds one to the counter key and returns the new value.
	Incr(ctx context.Context, key string) (int64, error)
	// Pin stores fingerprint for key unless one is stored already, and returns the stored one.
	Pin(ctx context.Context, key, fingerprint string) (string, error)
}

// ErrStoreFull refuses a new session key: the store holds its maximum of live entries. The
// request it belongs to fails closed; sessions already held keep working.
var ErrStoreFull = errors.New("session store full: too many live sessions (policy.session_max_entries)")

// DefaultMemoryMaxEntries bounds a [Memory] store unless configured otherwise: about 250
// bytes an entry, a session holding a few (its binding, call counters per tool, pins).
const DefaultMemoryMaxEntries = 500_000

// Memory is an in-process [Store]. Entries idle longer than its TTL are dropped, so
// abandoned sessions do not accumulate, and it holds at most its maximum of entries, so a
// caller opening sessions faster than they expire cannot exhaust memory.
type Memory struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu        sync.Mutex
	entries   map[memKey]*memEntry
	ops       int
	lastPurge time.Time
	refused   uint64
}

// memKey is the SHA-256 of a key: keys carry what callers send (session ids, tool names),
// and an entry must cost the same whatever their length.
type memKey [sha256.Size]byte

type memEntry struct {
	n    int64
	pin  string
	seen time.Time
}

var _ Store = (*Memory)(nil)

// MemoryOption configures [NewMemory].
type MemoryOption func(*Memory)

// MemoryMaxEntries bounds the live entries (default [DefaultMemoryMaxEntries]).
func MemoryMaxEntries(n int) MemoryOption { return func(m *Memory) { m.max = n } }

// MemoryClock replaces time.Now (tests).
func MemoryClock(now func() time.Time) MemoryOption { return func(m *Memory) { m.now = now } }

// NewMemory returns an empty store whose entries expire after ttl without use.
func NewMemory(ttl time.Duration, opts ...MemoryOption) *Memory {
	m := &Memory{ttl: ttl, max: DefaultMemoryMaxEntries, now: time.Now, entries: map[memKey]*memEntry{}}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Incr implements [Store].
func (m *Memory) Incr(_ context.Context, key string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.entry(key)
	if err != nil {
		return 0, err
	}
	e.n++
	return e.n, nil
}

// Pin implements [Store].
func (m *Memory) Pin(_ context.Context, key, fingerprint string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.entry(key)
	if err != nil {
		return "", err
	}
	if e.pin == "" {
		e.pin = fingerprint
	}
	return e.pin, nil
}

// Len is the number of live entries.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

// Refused is how many new keys were refused because the store was full.
func (m *Memory) Refused() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.refused
}

// entry returns the entry for key, creating it. Expired entries go in a full scan, every
// 1024 operations or when a new key finds the store full, but at most once a second: with
// hundreds of thousands of entries a scan takes milliseconds under the lock. A new key that
// finds no room is refused with [ErrStoreFull].
func (m *Memory) entry(key string) (*memEntry, error) {
	now := m.now()
	m.ops++
	k := memKey(sha256.Sum256([]byte(key)))
	e := m.entries[k]
	if (m.ops%1024 == 0 || (e == nil && len(m.entries) >= m.max)) && now.Sub(m.lastPurge) >= time.Second {
		m.purge(now)
		e = m.entries[k]
	}
	if e == nil {
		if len(m.entries) >= m.max {
			m.refused++
			return nil, ErrStoreFull
		}
		e = &memEntry{}
		m.entries[k] = e
	} else if now.Sub(e.seen) > m.ttl {
		*e = memEntry{}
	}
	e.seen = now
	return e, nil
}

func (m *Memory) purge(now time.Time) {
	m.lastPurge = now
	for k, e := range m.entries {
		if now.Sub(e.seen) > m.ttl {
			delete(m.entries, k)
		}
	}
}
