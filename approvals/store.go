package approvals

import (
	"context"
	"sync"
)

// Store keeps approval requests. Implementations are safe for concurrent use and, for
// replicas, shared: a change made through one process wakes watchers in every process.
type Store interface {
	// Create stores a new request and indexes its keys; an existing id is [ErrExists].
	Create(ctx context.Context, r Request) error
	// Get returns a request or [ErrNotFound].
	Get(ctx context.Context, id string) (Request, error)
	// Update applies fn to the stored request atomically (fn may run more than once under
	// contention) and stores the result; keys fn adds are indexed. fn's error aborts and is returned.
	Update(ctx context.Context, id string, fn func(*Request) error) (Request, error)
	// Lookup returns the newest request indexed under key, or [ErrNotFound].
	Lookup(ctx context.Context, key string) (Request, error)
	// List returns stored requests, newest first, at most limit.
	List(ctx context.Context, limit int) ([]Request, error)
	// Pending returns every request whose stored state is [Pending], newest first, however
	// many newer requests exist. It reads an index kept in the same transaction as the
	// request, so it has no cap: the set stays small because [Service.Sweep] moves requests
	// past their expiry out of it. Expiry is time-based and not a stored change, so callers
	// still apply [Request.Effective].
	Pending(ctx context.Context) ([]Request, error)
	// Watch returns a channel that receives (coalesced) after every change to request id,
	// wherever it was made, until ctx ends.
	Watch(ctx context.Context, id string) (<-chan struct{}, error)
	// Close releases the store.
	Close() error
}

// hub fans change signals out to local watchers.
type hub struct {
	mu sync.Mutex
	w  map[string]map[chan struct{}]struct{}
}

func newHub() *hub { return &hub{w: map[string]map[chan struct{}]struct{}{}} }

// watch registers a watcher for id; it is removed when ctx ends.
func (h *hub) watch(ctx context.Context, id string) <-chan struct{} {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.w[id] == nil {
		h.w[id] = map[chan struct{}]struct{}{}
	}
	h.w[id][ch] = struct{}{}
	h.mu.Unlock()
	context.AfterFunc(ctx, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.w[id], ch)
		if len(h.w[id]) == 0 {
			delete(h.w, id)
		}
	})
	return ch
}

// notify signals every watcher of id without blocking.
func (h *hub) notify(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.w[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// newKeys returns the keys of next that prev did not have.
func newKeys(prev, next []string) []string {
	var out []string
	for _, k := range next {
		found := false
		for _, p := range prev {
			if p == k {
				found = true
				break
			}
		}
		if !found {
			out = append(out, k)
		}
	}
	return out
}
