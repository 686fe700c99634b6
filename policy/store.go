package policy

import (
	"context"
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

// Memory is an in-process [Store]. Entries idle longer than its TTL are dropped, so
// abandoned sessions do not accumulate.
type Memory struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*memEntry
	ops     int
}

type memEntry struct {
	n    int64
	pin  string
	seen time.Time
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty store whose entries expire after ttl without use.
func NewMemory(ttl time.Duration) *Memory {
	return &Memory{ttl: ttl, now: time.Now, entries: map[string]*memEntry{}}
}

// Incr implements [Store].
func (m *Memory) Incr(_ context.Context, key string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entry(key)
	e.n++
	return e.n, nil
}

// Pin implements [Store].
func (m *Memory) Pin(_ context.Context, key, fingerprint string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entry(key)
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

// entry returns the entry for key, creating it; every 1024 operations expired entries go.
func (m *Memory) entry(key string) *memEntry {
	now := m.now()
	if m.ops++; m.ops%1024 == 0 {
		for k, e := range m.entries {
			if now.Sub(e.seen) > m.ttl {
				delete(m.entries, k)
			}
		}
	}
	e := m.entries[key]
	if e == nil || now.Sub(e.seen) > m.ttl {
		e = &memEntry{}
		m.entries[key] = e
	}
	e.seen = now
	return e
}
