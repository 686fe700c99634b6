package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore keeps requests in Redis so that replicas share them: a decision made through
// one replica is published and wakes the call held on another. Entries expire after the
// retention period.
type RedisStore struct {
	c         redis.UniversalClient
	prefix    string
	retention time.Duration
	hub       *hub
	ps        *redis.PubSub
	wg        sync.WaitGroup
	once      sync.Once
}

var _ Store = (*RedisStore)(nil)

// maxTxRetries bounds optimistic-transaction retries under contention.
const maxTxRetries = 20

// NewRedisStore subscribes to change notifications under prefix and returns the store; its
// receive loop runs until Close. The client is owned by the caller.
func NewRedisStore(ctx context.Context, c redis.UniversalClient, prefix string, retention time.Duration) (*RedisStore, error) {
	s := &RedisStore{c: c, prefix: prefix, retention: retention, hub: newHub()}
	s.ps = c.Subscribe(ctx, s.channel())
	if _, err := s.ps.Receive(ctx); err != nil {
		_ = s.ps.Close()
		return nil, fmt.Errorf("subscribe to approval changes: %w", err)
	}
	ch := s.ps.Channel()
	s.wg.Go(func() {
		for m := range ch {
			s.hub.notify(m.Payload)
		}
	})
	return s, nil
}

func (s *RedisStore) channel() string         { return s.prefix + "changed" }
func (s *RedisStore) reqKey(id string) string { return s.prefix + "req:" + id }
func (s *RedisStore) idxKey(k string) string  { return s.prefix + "key:" + k }
func (s *RedisStore) orderKey() string        { return s.prefix + "order" }

// Create implements [Store].
func (s *RedisStore) Create(ctx context.Context, r Request) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	ok, err := s.c.SetNX(ctx, s.reqKey(r.ID), data, s.retention).Result()
	if err != nil {
		return fmt.Errorf("create request: %w", err)
	}
	if !ok {
		return ErrExists
	}
	_, err = s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range r.Keys {
			p.Set(ctx, s.idxKey(k), r.ID, s.retention)
		}
		p.ZAdd(ctx, s.orderKey(), redis.Z{Score: float64(r.CreatedAt.UnixMilli()), Member: r.ID})
		p.ZRemRangeByScore(ctx, s.orderKey(), "-inf", "("+strconv.FormatInt(r.CreatedAt.Add(-s.retention).UnixMilli(), 10))
		p.Publish(ctx, s.channel(), r.ID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("index request: %w", err)
	}
	return nil
}

// Get implements [Store].
func (s *RedisStore) Get(ctx context.Context, id string) (Request, error) {
	return s.get(ctx, s.c, id)
}

func (s *RedisStore) get(ctx context.Context, c redis.Cmdable, id string) (Request, error) {
	data, err := c.Get(ctx, s.reqKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Request{}, ErrNotFound
	}
	if err != nil {
		return Request{}, fmt.Errorf("get request: %w", err)
	}
	var r Request
	if err := json.Unmarshal(data, &r); err != nil {
		return Request{}, fmt.Errorf("decode request %s: %w", id, err)
	}
	return r, nil
}

// Update implements [Store] with an optimistic transaction (WATCH/MULTI/EXEC), retried
// when another writer got there first.
func (s *RedisStore) Update(ctx context.Context, id string, fn func(*Request) error) (Request, error) {
	key := s.reqKey(id)
	var out Request
	txf := func(tx *redis.Tx) error {
		r, err := s.get(ctx, tx, id)
		if err != nil {
			return err
		}
		prev := append([]string(nil), r.Keys...)
		if err := fn(&r); err != nil {
			return err
		}
		r.ID = id
		data, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, data, redis.KeepTTL)
			for _, k := range newKeys(prev, r.Keys) {
				p.Set(ctx, s.idxKey(k), id, s.retention)
			}
			p.Publish(ctx, s.channel(), id)
			return nil
		})
		out = r
		return err
	}
	for range maxTxRetries {
		err := s.c.Watch(ctx, txf, key)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if err != nil {
			return Request{}, err
		}
		return out, nil
	}
	return Request{}, errors.New("update request: too much contention")
}

// Lookup implements [Store].
func (s *RedisStore) Lookup(ctx context.Context, key string) (Request, error) {
	id, err := s.c.Get(ctx, s.idxKey(key)).Result()
	if errors.Is(err, redis.Nil) {
		return Request{}, ErrNotFound
	}
	if err != nil {
		return Request{}, fmt.Errorf("lookup request: %w", err)
	}
	return s.Get(ctx, id)
}

// List implements [Store].
func (s *RedisStore) List(ctx context.Context, limit int) ([]Request, error) {
	ids, err := s.c.ZRevRange(ctx, s.orderKey(), 0, int64(limit)-1).Result()
	if err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	out := make([]Request, 0, len(ids))
	for _, id := range ids {
		r, err := s.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Watch implements [Store].
func (s *RedisStore) Watch(ctx context.Context, id string) (<-chan struct{}, error) {
	return s.hub.watch(ctx, id), nil
}

// Close stops the notification loop; the client stays open.
func (s *RedisStore) Close() error {
	var err error
	s.once.Do(func() {
		err = s.ps.Close()
		s.wg.Wait()
	})
	if err != nil {
		return fmt.Errorf("close approval subscription: %w", err)
	}
	return nil
}
