package authz

import (
	"sync"
	"time"
)

// cache maps the SHA-256 of a token to its verified claims. An entry is never served at or after
// the token's exp, and the map never holds more than max entries.
type cache struct {
	mu  sync.RWMutex
	max int
	m   map[[32]byte]*verified
}

func newCache(max int) *cache {
	return &cache{max: max, m: make(map[[32]byte]*verified)}
}

func (c *cache) get(k [32]byte, now time.Time) *verified {
	if c.max == 0 {
		return nil
	}
	c.mu.RLock()
	v := c.m[k]
	c.mu.RUnlock()
	if v == nil || !now.Before(v.id.ExpiresAt) {
		return nil
	}
	return v
}

// evictScan is how many entries a full cache looks at to make room: expired ones go first,
// otherwise the first one seen (map order is unspecified, so this is close to random).
const evictScan = 16

func (c *cache) put(k [32]byte, v *verified, now time.Time) {
	if c.max == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		var victim *[32]byte
		n := 0
		for key, e := range c.m {
			if !now.Before(e.id.ExpiresAt) {
				delete(c.m, key)
			} else if victim == nil {
				victim = &key
			}
			if n++; n >= evictScan {
				break
			}
		}
		if len(c.m) >= c.max && victim != nil {
			delete(c.m, *victim)
		}
	}
	c.m[k] = v
}

func (c *cache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
