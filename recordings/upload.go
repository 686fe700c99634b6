package recordings

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// upload moves outbox objects to the sink in order, retrying with backoff while the sink
// fails, until Close stops it.
func (r *Recorder) upload() {
	defer r.upWG.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-r.upStop
		cancel()
	}()
	backoff := r.cfg.Upload.MinBackoff
	failing := false
	for {
		err := r.uploadAll(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if !failing {
				r.log.Warn("recordings upload failing; retrying with backoff (the spool keeps everything)", "err", err.Error())
				failing = true
			}
			wait := backoff/2 + rand.N(backoff/2+1) //nolint:gosec // G404: retry jitter, not a secret
			backoff = min(backoff*2, r.cfg.Upload.MaxBackoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			continue
		}
		if failing {
			r.log.Info("recordings upload recovered")
			failing = false
		}
		backoff = r.cfg.Upload.MinBackoff
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-time.After(time.Second):
		}
	}
}

// drain uploads until the outbox is empty or ctx ends (shutdown).
func (r *Recorder) drain(ctx context.Context) error {
	backoff := r.cfg.Upload.MinBackoff
	for {
		err := r.uploadAll(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("recordings left in the spool for the next start: %w", err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, r.cfg.Upload.MaxBackoff)
	}
}

// uploadAll uploads every outbox object in order; it stops at the first failure so
// segments reach storage before the manifest that lists them.
func (r *Recorder) uploadAll(ctx context.Context) error {
	names, err := r.pending()
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := r.uploadOne(ctx, name); err != nil {
			r.m.uploads.WithLabelValues("error").Inc()
			return err
		}
		r.m.uploads.WithLabelValues("ok").Inc()
	}
	return nil
}

func (r *Recorder) pending() ([]string, error) {
	ents, err := os.ReadDir(r.outbox())
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	var names []string
	for _, e := range ents {
		if n := e.Name(); strings.HasSuffix(n, ".seg") || strings.HasSuffix(n, ".man") || strings.HasSuffix(n, ".idx") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

func (r *Recorder) uploadOne(ctx context.Context, name string) error {
	p := filepath.Join(r.outbox(), name)
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil // dropped meanwhile
	}
	if err != nil {
		return fmt.Errorf("read spooled object: %w", err)
	}
	info, _ := os.Stat(p)
	i := bytes.IndexByte(data, '\n')
	if i <= 0 {
		r.log.Error("recordings spool object without key; removed", "file", name)
		_, err := r.remove(p)
		return err
	}
	key := string(data[:i])
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := r.sink.Put(pctx, key, data[i+1:]); err != nil {
		return err
	}
	if info != nil {
		r.m.lag.Observe(time.Since(info.ModTime()).Seconds())
	}
	_, err = r.remove(p)
	return err
}

// remove deletes a spooled object and accounts for its bytes once; gone reports that
// this call removed it.
func (r *Recorder) remove(p string) (gone bool, err error) {
	info, err := os.Stat(p)
	if err != nil {
		return false, nil
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("remove spooled object: %w", err)
	}
	r.bytes.Add(-info.Size())
	return true, nil
}

// dropOldest deletes the oldest spooled segments until the spool is under its bound.
func (r *Recorder) dropOldest() {
	r.dropMu.Lock()
	defer r.dropMu.Unlock()
	names, err := r.pending()
	if err != nil {
		r.log.Error("recordings spool full and unreadable", "err", err.Error())
		return
	}
	for _, n := range names {
		if r.bytes.Load() <= r.cfg.Spool.MaxBytes {
			return
		}
		if !strings.HasSuffix(n, ".seg") {
			continue
		}
		p := filepath.Join(r.outbox(), n)
		key := ""
		if data, err := os.ReadFile(p); err == nil {
			key, _, _ = strings.Cut(string(data[:min(len(data), 512)]), "\n")
		}
		if gone, _ := r.remove(p); gone {
			r.m.dropped.Inc()
			r.log.Error("ALERT recordings spool full: dropped the oldest segment not yet uploaded (on_full: drop_oldest); verify will report it missing", "key", key)
		}
	}
}
