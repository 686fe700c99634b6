package approvals

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisSessions is the policy's session state (call counters, pinned tool fingerprints)
// in Redis, so replicas count and pin alike. It satisfies policy.Store; entries expire
// after ttl without use, like the in-process store.
type RedisSessions struct {
	c      redis.UniversalClient
	prefix string
	ttl    time.Duration
}

// NewRedisSessions returns session state under prefix on c (owned by the caller).
func NewRedisSessions(c redis.UniversalClient, prefix string, ttl time.Duration) *RedisSessions {
	return &RedisSessions{c: c, prefix: prefix, ttl: ttl}
}

// Incr adds one to the counter key and returns the new value.
func (s *RedisSessions) Incr(ctx context.Context, key string) (int64, error) {
	k := s.prefix + "n:" + storedKey(key)
	var n *redis.IntCmd
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		n = p.Incr(ctx, k)
		p.Expire(ctx, k, s.ttl)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("incr session counter: %w", err)
	}
	return n.Val(), nil
}

// Pin stores fingerprint for key unless one is stored already, and returns the stored one.
func (s *RedisSessions) Pin(ctx context.Context, key, fingerprint string) (string, error) {
	k := s.prefix + "pin:" + storedKey(key)
	var got *redis.StringCmd
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SetNX(ctx, k, fingerprint, s.ttl)
		got = p.Get(ctx, k)
		p.Expire(ctx, k, s.ttl)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("pin tool fingerprint: %w", err)
	}
	return got.Val(), nil
}

// maxStoredKey is the longest key kept as it is; the policy's keys are a kind, a session id
// or an identity, and a tool name, which a caller chooses.
const maxStoredKey = 128

// storedKey is key, or for a longer one "#" and its SHA-256, so that a caller sending a huge
// session id or tool name costs Redis no more than anyone else. The policy's own keys start
// with a kind ("s\x00", "i\x00", "bind\x00"), never "#", so the two cannot meet; keys short
// enough to be kept as they are stay what they were before, across an upgrade.
func storedKey(key string) string {
	if len(key) <= maxStoredKey {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "#" + hex.EncodeToString(sum[:])
}
