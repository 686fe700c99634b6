package recordings

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// ErrNotFound reports a key the sink does not hold.
var ErrNotFound = errors.New("object not found")

// Sink stores recording objects. Put is idempotent: writing the same key with the same
// bytes again (an upload retried after a crash) leaves one object. Safe for concurrent use.
type Sink interface {
	Put(ctx context.Context, key string, data []byte) error
	// Get returns the object or an error wrapping [ErrNotFound].
	Get(ctx context.Context, key string) ([]byte, error)
	// List returns every key starting with prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
	// Dirs returns the names of the key levels directly below dir ("a/b/" holding "a/b/c/d"
	// gives "c"), sorted: readers find the days that hold recordings without listing them.
	Dirs(ctx context.Context, dir string) ([]string, error)
}

// Dir is a [Sink] that keeps objects as files under a root directory; writes are fsynced.
type Dir struct{ root string }

var _ Sink = (*Dir)(nil)

// NewDir returns a directory sink rooted at root, creating it.
func NewDir(root string) (*Dir, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("create recordings dir: %w", err)
	}
	return &Dir{root: root}, nil
}

// OpenDir returns a directory sink rooted at root without creating anything, for readers
// (mcpguard recordings ls): a root that does not exist lists no objects.
func OpenDir(root string) *Dir { return &Dir{root: root} }

func (d *Dir) file(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || path.Clean(key) != key || strings.HasPrefix(key, "../") || key == ".." {
		return "", fmt.Errorf("invalid key %q", key)
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// Put writes the object atomically.
func (d *Dir) Put(_ context.Context, key string, data []byte) error {
	p, err := d.file(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := writeFileSync(p, data, 0o600); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// Get reads the object.
func (d *Dir) Get(_ context.Context, key string) ([]byte, error) {
	p, err := d.file(key)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("get %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return b, nil
}

// List walks the tree below the prefix's directory.
func (d *Dir) List(_ context.Context, prefix string) ([]string, error) {
	start := d.root
	if dir := path.Dir(prefix); prefix != "" && dir != "." {
		start = filepath.Join(d.root, filepath.FromSlash(dir))
	}
	var keys []string
	err := filepath.WalkDir(start, func(p string, e fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if e.IsDir() || strings.HasPrefix(e.Name(), ".tmp-") {
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		if k := filepath.ToSlash(rel); strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	sort.Strings(keys)
	return keys, nil
}

// Dirs reads the directory.
func (d *Dir) Dirs(_ context.Context, dir string) ([]string, error) {
	start := d.root
	if dir = strings.TrimSuffix(dir, "/"); dir != "" {
		p, err := d.file(dir)
		if err != nil {
			return nil, err
		}
		start = p
	}
	ents, err := os.ReadDir(start)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}
