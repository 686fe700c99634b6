package approvals

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketReqs  = []byte("requests")
	bucketKeys  = []byte("keys")
	bucketOrder = []byte("order")
	// bucketPending indexes requests stored as [Pending], keyed like bucketOrder.
	bucketPending = []byte("pending")
)

// FileStore is the embedded store: one bbolt file, one process at a time. It is the
// default for a single mcpguard; replicas share a [RedisStore] instead.
type FileStore struct {
	db  *bolt.DB
	hub *hub
}

var _ Store = (*FileStore)(nil)

// OpenFile opens (creating if needed) the store file at path. Another process holding the
// file makes it fail after a second rather than wait. A file written before the pending
// index existed is indexed once, in the transaction that creates the index.
func OpenFile(path string) (*FileStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("open approvals file %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketReqs, bucketKeys, bucketOrder} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if tx.Bucket(bucketPending) != nil {
			return nil
		}
		pending, err := tx.CreateBucket(bucketPending)
		if err != nil {
			return err
		}
		return indexPending(tx.Bucket(bucketReqs), pending)
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("init approvals file %s: %w", path, err)
	}
	return &FileStore{db: db, hub: newHub()}, nil
}

// orderKey sorts by creation time, then id. The pending index uses the same keys.
func orderKey(r Request) []byte {
	k := binary.BigEndian.AppendUint64(nil, uint64(r.CreatedAt.UnixNano()))
	return append(k, r.ID...)
}

// indexPending adds every pending request in reqs to pending. A request that cannot be
// decoded fails the whole open: whether it waits for an approver cannot be told.
func indexPending(reqs, pending *bolt.Bucket) error {
	return reqs.ForEach(func(id, data []byte) error {
		var r struct {
			State     State     `json:"state"`
			CreatedAt time.Time `json:"created_at"`
		}
		if err := json.Unmarshal(data, &r); err != nil {
			return fmt.Errorf("index pending request %s: %w", id, err)
		}
		if r.State != Pending {
			return nil
		}
		return pending.Put(orderKey(Request{ID: string(id), CreatedAt: r.CreatedAt}), bytes.Clone(id))
	})
}

// Create implements [Store].
func (s *FileStore) Create(_ context.Context, r Request) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		reqs := tx.Bucket(bucketReqs)
		if reqs.Get([]byte(r.ID)) != nil {
			return ErrExists
		}
		if err := reqs.Put([]byte(r.ID), data); err != nil {
			return err
		}
		for _, k := range r.Keys {
			if err := tx.Bucket(bucketKeys).Put([]byte(k), []byte(r.ID)); err != nil {
				return err
			}
		}
		if r.State == Pending {
			if err := tx.Bucket(bucketPending).Put(orderKey(r), []byte(r.ID)); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketOrder).Put(orderKey(r), []byte(r.ID))
	})
	if err != nil {
		return fmt.Errorf("create request: %w", err)
	}
	s.hub.notify(r.ID)
	return nil
}

// Get implements [Store].
func (s *FileStore) Get(_ context.Context, id string) (Request, error) {
	var r Request
	err := s.db.View(func(tx *bolt.Tx) error { return get(tx, id, &r) })
	return r, err
}

func get(tx *bolt.Tx, id string, r *Request) error {
	data := tx.Bucket(bucketReqs).Get([]byte(id))
	if data == nil {
		return ErrNotFound
	}
	if err := json.Unmarshal(data, r); err != nil {
		return fmt.Errorf("decode request %s: %w", id, err)
	}
	return nil
}

// Update implements [Store].
func (s *FileStore) Update(_ context.Context, id string, fn func(*Request) error) (Request, error) {
	var r Request
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := get(tx, id, &r); err != nil {
			return err
		}
		prev, wasPending, prevOrder := append([]string(nil), r.Keys...), r.State == Pending, orderKey(r)
		if err := fn(&r); err != nil {
			return err
		}
		r.ID = id
		data, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		if err := tx.Bucket(bucketReqs).Put([]byte(id), data); err != nil {
			return err
		}
		for _, k := range newKeys(prev, r.Keys) {
			if err := tx.Bucket(bucketKeys).Put([]byte(k), []byte(id)); err != nil {
				return err
			}
		}
		return reindexPending(tx.Bucket(bucketPending), wasPending, prevOrder, r)
	})
	if err != nil {
		return Request{}, err
	}
	s.hub.notify(id)
	return r, nil
}

// reindexPending makes the pending index follow an update from a request that was (or was
// not) pending under key prev to r.
func reindexPending(pending *bolt.Bucket, wasPending bool, prev []byte, r Request) error {
	next := orderKey(r)
	if wasPending && (r.State != Pending || !bytes.Equal(prev, next)) {
		if err := pending.Delete(prev); err != nil {
			return err
		}
	}
	if r.State == Pending && (!wasPending || !bytes.Equal(prev, next)) {
		return pending.Put(next, []byte(r.ID))
	}
	return nil
}

// Lookup implements [Store].
func (s *FileStore) Lookup(_ context.Context, key string) (Request, error) {
	var r Request
	err := s.db.View(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketKeys).Get([]byte(key))
		if id == nil {
			return ErrNotFound
		}
		return get(tx, string(id), &r)
	})
	return r, err
}

// List implements [Store].
func (s *FileStore) List(_ context.Context, limit int) ([]Request, error) {
	var out []Request
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOrder).Cursor()
		for k, id := c.Last(); k != nil && len(out) < limit; k, id = c.Prev() {
			var r Request
			if err := get(tx, string(id), &r); err != nil {
				if errors.Is(err, ErrNotFound) {
					continue
				}
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// Pending implements [Store].
func (s *FileStore) Pending(_ context.Context) ([]Request, error) {
	var out []Request
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketPending).Cursor()
		for k, id := c.Last(); k != nil; k, id = c.Prev() {
			var r Request
			if err := get(tx, string(id), &r); err != nil {
				if errors.Is(err, ErrNotFound) {
					continue
				}
				return err
			}
			if r.State == Pending {
				out = append(out, r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list pending requests: %w", err)
	}
	return out, nil
}

// Prune deletes requests created before before, with their index entries, and returns how
// many went. Redis expires entries by itself; the file store is pruned by [Service.Run].
func (s *FileStore) Prune(_ context.Context, before time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		order, keys, reqs := tx.Bucket(bucketOrder).Cursor(), tx.Bucket(bucketKeys), tx.Bucket(bucketReqs)
		pending := tx.Bucket(bucketPending)
		limit := binary.BigEndian.AppendUint64(nil, uint64(before.UnixNano()))
		for k, id := order.First(); k != nil && bytes.Compare(k[:8], limit) < 0; k, id = order.Next() {
			var r Request
			if err := get(tx, string(id), &r); err == nil {
				for _, key := range r.Keys {
					if string(keys.Get([]byte(key))) == r.ID {
						if err := keys.Delete([]byte(key)); err != nil {
							return err
						}
					}
				}
				if err := pending.Delete(orderKey(r)); err != nil {
					return err
				}
			}
			if err := pending.Delete(k); err != nil {
				return err
			}
			if err := reqs.Delete(id); err != nil {
				return err
			}
			if err := order.Delete(); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune approvals: %w", err)
	}
	return n, nil
}

// Watch implements [Store]; only this process writes the file, so local signals suffice.
func (s *FileStore) Watch(ctx context.Context, id string) (<-chan struct{}, error) {
	return s.hub.watch(ctx, id), nil
}

// Close implements [Store].
func (s *FileStore) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close approvals file: %w", err)
	}
	return nil
}
