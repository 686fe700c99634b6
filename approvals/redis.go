package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore keeps requests in Redis so that replicas share them: a decision made through
// one replica is published and wakes the call held on another. Entries expire after the
// retention period. A request and its index entries (keys, order, pending) change together
// in one MULTI/EXEC, so no replica sees one without the other.
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

// fetchBatch is how many requests one MGET reads; a listing sends all its MGETs in one
// pipeline, so it costs one round trip however long it is.
const fetchBatch = 500

// NewRedisStore subscribes to change notifications under prefix and returns the store; its
// receive loop runs until Close. The client is owned by the caller.
func NewRedisStore(ctx context.Context, c redis.UniversalClient, prefix string, retention time.Duration) (*RedisStore, error) {
	s := &RedisStore{c: c, prefix: prefix, retention: retention, hub: newHub()}
	if err := s.indexPending(ctx); err != nil {
		return nil, err
	}
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
func (s *RedisStore) pendingKey() string      { return s.prefix + "pending" }

// indexedKey marks a prefix whose pending index was built from the requests stored before
// the index existed.
func (s *RedisStore) indexedKey() string { return s.prefix + "pending-indexed" }

// score orders requests by creation time in the order and pending sets.
func score(r Request) float64 { return float64(r.CreatedAt.UnixMilli()) }

// Create implements [Store]. The request, its keys and its order and pending entries are
// written in one MULTI/EXEC, guarded by WATCH on the request key so that an id is created once.
func (s *RedisStore) Create(ctx context.Context, r Request) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	key := s.reqKey(r.ID)
	cutoff := "(" + strconv.FormatInt(r.CreatedAt.Add(-s.retention).UnixMilli(), 10)
	txf := func(tx *redis.Tx) error {
		n, err := tx.Exists(ctx, key).Result()
		if err != nil {
			return fmt.Errorf("create request: %w", err)
		}
		if n > 0 {
			return ErrExists
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, data, s.retention)
			for _, k := range r.Keys {
				p.Set(ctx, s.idxKey(k), r.ID, s.retention)
			}
			z := redis.Z{Score: score(r), Member: r.ID}
			p.ZAdd(ctx, s.orderKey(), z)
			p.ZRemRangeByScore(ctx, s.orderKey(), "-inf", cutoff)
			if r.State == Pending {
				p.ZAdd(ctx, s.pendingKey(), z)
			}
			// Pending entries older than the retention point at requests Redis has expired.
			p.ZRemRangeByScore(ctx, s.pendingKey(), "-inf", cutoff)
			p.Publish(ctx, s.channel(), r.ID)
			return nil
		})
		if err != nil {
			return fmt.Errorf("create request: %w", err)
		}
		return nil
	}
	return s.watch(ctx, "create request", txf, key)
}

// watch runs txf under WATCH keys, again while another writer changed them first.
func (s *RedisStore) watch(ctx context.Context, what string, txf func(*redis.Tx) error, keys ...string) error {
	for range maxTxRetries {
		err := s.c.Watch(ctx, txf, keys...)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		return err
	}
	return fmt.Errorf("%s: too much contention", what)
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
			if r.State == Pending {
				p.ZAdd(ctx, s.pendingKey(), redis.Z{Score: score(r), Member: id})
			} else {
				p.ZRem(ctx, s.pendingKey(), id)
			}
			p.Publish(ctx, s.channel(), id)
			return nil
		})
		out = r
		return err
	}
	if err := s.watch(ctx, "update request", txf, key); err != nil {
		return Request{}, err
	}
	return out, nil
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
	if limit <= 0 {
		return nil, nil
	}
	ids, err := s.c.ZRevRange(ctx, s.orderKey(), 0, int64(limit)-1).Result()
	if err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	out, err := s.fetch(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	return out, nil
}

// Pending implements [Store]. The index and the requests are read in two round trips; a
// request decided in between is left out because its stored state is no longer pending.
func (s *RedisStore) Pending(ctx context.Context) ([]Request, error) {
	ids, err := s.c.ZRevRange(ctx, s.pendingKey(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("list pending requests: %w", err)
	}
	all, err := s.fetch(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("list pending requests: %w", err)
	}
	out := all[:0]
	for _, r := range all {
		if r.State == Pending {
			out = append(out, r)
		}
	}
	return out, nil
}

// fetch reads the requests ids in one round trip (MGETs of fetchBatch in a pipeline), in the
// order given, leaving out those Redis has expired.
func (s *RedisStore) fetch(ctx context.Context, ids []string) ([]Request, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.SliceCmd, 0, (len(ids)+fetchBatch-1)/fetchBatch)
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for chunk := range slices.Chunk(ids, fetchBatch) {
			keys := make([]string, len(chunk))
			for i, id := range chunk {
				keys[i] = s.reqKey(id)
			}
			cmds = append(cmds, p.MGet(ctx, keys...))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read requests: %w", err)
	}
	out := make([]Request, 0, len(ids))
	i := 0
	for _, cmd := range cmds {
		for _, v := range cmd.Val() {
			id := ids[i]
			i++
			data, ok := v.(string)
			if !ok {
				continue // expired since the index was read
			}
			var r Request
			if err := json.Unmarshal([]byte(data), &r); err != nil {
				return nil, fmt.Errorf("decode request %s: %w", id, err)
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// indexPending builds the pending index from the requests already in the order set, once per
// prefix: a deployment that stored requests before the index existed keeps seeing them.
// Each batch is read and indexed under WATCH, so a request decided meanwhile is not added.
func (s *RedisStore) indexPending(ctx context.Context) error {
	done, err := s.c.Exists(ctx, s.indexedKey()).Result()
	if err != nil {
		return fmt.Errorf("index pending requests: %w", err)
	}
	if done > 0 {
		return nil
	}
	ids, err := s.c.ZRange(ctx, s.orderKey(), 0, -1).Result()
	if err != nil {
		return fmt.Errorf("index pending requests: %w", err)
	}
	for chunk := range slices.Chunk(ids, fetchBatch) {
		keys := make([]string, len(chunk))
		for i, id := range chunk {
			keys[i] = s.reqKey(id)
		}
		txf := func(tx *redis.Tx) error {
			vals, err := tx.MGet(ctx, keys...).Result()
			if err != nil {
				return fmt.Errorf("index pending requests: %w", err)
			}
			var zs []redis.Z
			for i, v := range vals {
				data, ok := v.(string)
				if !ok {
					continue
				}
				var r Request
				if err := json.Unmarshal([]byte(data), &r); err != nil {
					return fmt.Errorf("index pending request %s: %w", chunk[i], err)
				}
				if r.State == Pending {
					zs = append(zs, redis.Z{Score: score(r), Member: chunk[i]})
				}
			}
			if len(zs) == 0 {
				return nil
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.ZAdd(ctx, s.pendingKey(), zs...)
				return nil
			})
			if err != nil {
				return fmt.Errorf("index pending requests: %w", err)
			}
			return nil
		}
		if err := s.watch(ctx, "index pending requests", txf, keys...); err != nil {
			return err
		}
	}
	if err := s.c.Set(ctx, s.indexedKey(), "1", 0).Err(); err != nil {
		return fmt.Errorf("index pending requests: %w", err)
	}
	return nil
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
