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
)

// FileStore is the embedded store: one bbolt file, one process at a time. It is the
// default for a single mcpguard; replicas share a [RedisStore] instead.
type FileStore struct {
	db  *bolt.DB
	hub *hub
}

var _ Store = (*FileStore)(nil)

// OpenFile opens (creating if needed) the store file at path. Another process holding the
// file makes it fail after a second rather than wait.
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
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("init approvals file %s: %w", path, err)
	}
	return &FileStore{db: db, hub: newHub()}, nil
}

// orderKey sorts by creation time, then id.
func orderKey(r Request) []byte {
	k := binary.BigEndian.AppendUint64(nil, uint64(r.CreatedAt.UnixNano()))
	return append(k, r.ID...)
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
		prev := append([]string(nil), r.Keys...)
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
		return nil
	})
	if err != nil {
		return Request{}, err
	}
	s.hub.notify(id)
	return r, nil
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

// Prune deletes requests created before before, with their index entries, and returns how
// many went. Redis expires entries by itself; the file store is pruned by [Service.Run].
func (s *FileStore) Prune(_ context.Context, before time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		order, keys, reqs := tx.Bucket(bucketOrder).Cursor(), tx.Bucket(bucketKeys), tx.Bucket(bucketReqs)
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
