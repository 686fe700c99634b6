package recordings

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrSpoolFull is returned by [Recorder.Admit] while the spool is over its bound and the
// policy is fail_closed: the caller refuses the request.
var ErrSpoolFull = errors.New("recording spool full")

// errClosed reports use after Close.
var errClosed = errors.New("recorder closed")

// Recorder appends events to the spool, seals segments, closes chains with signed
// manifests and uploads everything to the sink. Methods are safe for concurrent use.
type Recorder struct {
	cfg  Config
	sink Sink
	key  ed25519.PrivateKey
	log  *slog.Logger
	m    *metrics

	// mu guards the chain table; each chain's events are encoded under its own lock, so
	// exchanges of different sessions encode concurrently. Lock order: mu, then chain.mu.
	mu      sync.Mutex
	chains  map[string]*chain // open chains by session
	closing []*chain          // ended, waiting for the next flush to be sealed and signed
	closed  bool
	seq     atomic.Uint64 // events recorded by this replica (durability watermark)

	ioMu    sync.Mutex    // file I/O: flush, seal, close; one group commit at a time
	durable atomic.Uint64 // last event sequence number fsynced
	written atomic.Uint64 // last event sequence number written to the operating system
	// unsynced are the chains written since their last fsync; unsyncedMeta and unsyncedDirs
	// the chain metadata files and directories created since (spool.sync interval), all
	// guarded by ioMu.
	unsynced     map[*chain]bool
	unsyncedMeta []string
	unsyncedDirs []string
	out          atomic.Uint64 // last outbox number
	bytes        atomic.Int64  // spool size
	dropMu       sync.Mutex

	// sealer: segments rotated out of the commit path wait in jobs (guarded by sealMu) to be
	// compressed, hashed and put in the outbox by one goroutine, in order, and chains to be
	// closed. Each job names a file in the spool, so the queue is bounded by the spool.
	sealMu   sync.Mutex
	jobs     []*sealJob
	sealWake chan struct{}
	sealStop chan struct{}
	sealWG   sync.WaitGroup

	// owned by the sealer: the replica's manifest and index chains, and the index entries
	// not yet sealed into a part
	rs       replicaState
	idx      []IndexEntry
	idxBytes int
	idxSince time.Time

	wake     chan struct{}
	dirty    chan struct{} // spool.sync interval: something was written since the last fsync pass
	stop     chan struct{}
	upStop   chan struct{}
	wg       sync.WaitGroup
	upWG     sync.WaitGroup
	stopOnce sync.Once
}

type chain struct {
	session, mcpID, id string
	started            time.Time
	identity           *Identity
	dir                string

	// mu guards the fields up to ending; taken after Recorder.mu when both are held.
	mu         sync.Mutex
	pending    []byte
	spare      []byte // the buffer of the last batch written, reused for the next
	pendingN   int
	lastActive time.Time
	facets     Facets
	merged     int    // request ids of facets already folded into tooling by a flush
	events     uint64 // events recorded in this chain: the last Seq handed out
	// ending is set under Recorder.mu when the session closes and read by the flush,
	// which holds only Recorder.ioMu.
	ending atomic.Bool

	// guarded by Recorder.ioMu
	onDisk  bool
	f       *os.File
	size    int64
	opened  time.Time
	segN    int    // events in the open segment
	seq     int    // number of the open (or next) segment
	tooling Facets // of the events written so far

	// owned by the sealer
	prev   string // hash of the last sealed segment
	sealed []SegmentRef
}

// sealJob is a segment rotated out of current.jsonl, to be sealed (seg), or an ended chain
// to be closed once its segments are (close).
type sealJob struct {
	c      *chain
	close  bool
	path   string // seg: the rotated file
	seq    int    // seg: the segment's number
	events int    // seg: events in it
	opened time.Time
	facets Facets // the chain's facets up to the segment (seg) or in all (close)
	onDisk bool   // close: the chain has a directory to remove
	done   bool   // seg: sealed, only the file is left to remove
}

// chainMeta is chain.json in a chain's spool directory.
type chainMeta struct {
	Session  string    `json:"session"`
	MCPID    string    `json:"mcp_session_id,omitempty"`
	Chain    string    `json:"chain"`
	Started  time.Time `json:"started"`
	Identity *Identity `json:"identity,omitempty"`
}

// sealedRef is a line of sealed.log: a segment and the chain's facets up to it.
type sealedRef struct {
	SegmentRef
	Tools  []string `json:"tools,omitempty"` // written before facets existed
	Facets *Facets  `json:"facets,omitempty"`
}

// Open recovers whatever a previous process left in the spool (open chains are sealed
// and closed with a manifest marked recovered) and starts uploading to sink.
func Open(cfg Config, sink Sink, key ed25519.PrivateKey, log *slog.Logger, reg prometheus.Registerer) (*Recorder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("recordings config: %w", err)
	}
	if cfg.Spool.Dir == "" {
		return nil, errors.New("recordings: spool dir required")
	}
	if sink == nil || key == nil || reg == nil {
		return nil, errors.New("recordings: sink, key and registerer are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Recorder{
		cfg: cfg, sink: sink, key: key, log: log,
		chains: map[string]*chain{}, unsynced: map[*chain]bool{},
		wake: make(chan struct{}, 1), dirty: make(chan struct{}, 1), stop: make(chan struct{}), upStop: make(chan struct{}),
		sealWake: make(chan struct{}, 1), sealStop: make(chan struct{}),
	}
	m, err := newMetrics(reg, func() float64 { return float64(r.bytes.Load()) })
	if err != nil {
		return nil, err
	}
	r.m = m
	for _, d := range []string{r.outbox(), r.chainsDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create spool: %w", err)
		}
	}
	if err := r.loadReplica(); err != nil {
		return nil, err
	}
	if err := r.recover(); err != nil {
		return nil, err
	}
	r.sealWG.Add(1)
	go r.sealer()
	r.wg.Add(1)
	go r.housekeep()
	if cfg.Spool.Sync == SyncInterval {
		r.wg.Add(1)
		go r.syncEvery(cfg.Spool.SyncInterval)
	}
	r.upWG.Add(1)
	go r.upload()
	return r, nil
}

func (r *Recorder) outbox() string    { return filepath.Join(r.cfg.Spool.Dir, "outbox") }
func (r *Recorder) chainsDir() string { return filepath.Join(r.cfg.Spool.Dir, "chains") }

// PublicKey returns the key that verifies this recorder's manifests.
func (r *Recorder) PublicKey() ed25519.PublicKey {
	pub, _ := r.key.Public().(ed25519.PublicKey)
	return pub
}

// Admit tells whether a new request may start: under fail_closed it returns
// [ErrSpoolFull] while the spool is over its bound; under drop_oldest it makes room.
func (r *Recorder) Admit() error {
	if r.bytes.Load() <= r.cfg.Spool.MaxBytes {
		return nil
	}
	if r.cfg.Spool.OnFull == DropOldest {
		r.dropOldest()
		return nil
	}
	r.m.refused.Inc()
	return ErrSpoolFull
}

// Record appends ev to its session's chain (in memory until the next [Recorder.Sync]).
// The first event of a chain is preceded by a session_start carrying ev's identity; an
// event of kind session_end closes the chain. Seq is set here, and Time when ev has none
// (an event recorded after it happened, such as a request held for approval, carries its
// own).
func (r *Recorder) Record(ev Event) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return errClosed
	}
	c := r.chains[ev.Session]
	created := c == nil
	if created {
		if ev.Kind == KindSessionEnd {
			r.mu.Unlock()
			return nil // nothing recorded on this replica for the session
		}
		now := time.Now().UTC()
		c = &chain{
			session: ev.Session, mcpID: ev.MCPSessionID, id: chainID(r.cfg.ReplicaID, now), started: now,
			identity: ev.Identity,
		}
		c.dir = filepath.Join(r.chainsDir(), c.session, c.id)
		r.chains[ev.Session] = c
	}
	if ev.Kind == KindSessionEnd {
		r.endLocked(c)
	}
	// The chain's lock is taken before the table's is released: a flush that finds the
	// chain (or the ended chain) waits for this event, and events of one session keep
	// their order.
	c.mu.Lock()
	r.mu.Unlock()
	defer c.mu.Unlock()
	now := time.Now().UTC()
	if created {
		// The session starts when its first event happened: a request held before it was
		// recorded carries its earlier time of receipt.
		at := c.started
		if !ev.Time.IsZero() && ev.Time.Before(at) {
			at = ev.Time
		}
		if err := r.appendLocked(c, Event{Time: at, Kind: KindSessionStart, Session: ev.Session, MCPSessionID: ev.MCPSessionID, Identity: ev.Identity, RequestID: ev.RequestID}, now); err != nil {
			return err
		}
	}
	return r.appendLocked(c, ev, now)
}

// appendLocked encodes ev into the chain's pending batch. Requires c.mu.
func (r *Recorder) appendLocked(c *chain, ev Event, now time.Time) error {
	ev.Seq = c.events + 1
	if ev.Time.IsZero() {
		ev.Time = now
	}
	ev.Session = c.session
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	c.events++
	c.pending = append(append(c.pending, b...), '\n')
	c.pendingN++
	c.lastActive = now
	c.facets.add(&ev)
	// Counted after the bytes are pending, under the chain's lock: a flush that reads the
	// count first and then takes the lock finds them.
	r.seq.Add(1)
	r.m.events.Inc()
	return nil
}

// endLocked retires the chain from the table. Requires Recorder.mu.
func (r *Recorder) endLocked(c *chain) {
	c.ending.Store(true)
	delete(r.chains, c.session)
	r.closing = append(r.closing, c)
}

// Sync returns once every event recorded before the call is written and fsynced (spool.sync
// always) or written to the operating system (spool.sync interval; fsynced by the next tick).
// Callers arriving while a commit is running are served together by the next one (group
// commit: one write per chain and one fsync pass for all of them). They wait on ioMu: on a
// loaded machine that measured better at the 99th percentile (BenchmarkCommitLatencyPaced)
// than a round that wakes every waiter at once, each wakeup being one more wait for a core.
func (r *Recorder) Sync(ctx context.Context) error {
	want := r.seq.Load()
	mark, fsync := &r.durable, true
	if r.cfg.Spool.Sync == SyncInterval {
		mark, fsync = &r.written, false
	}
	if mark.Load() >= want {
		return nil
	}
	r.ioMu.Lock()
	defer r.ioMu.Unlock()
	if mark.Load() >= want {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sync recordings: %w", err)
	}
	return r.flushLocked(false, fsync)
}

// syncEvery fsyncs what was written since the last pass (spool.sync interval): a pass runs
// one interval after the first write it covers, and an idle recorder sleeps instead of
// ticking. The files are fsynced through descriptors of their own, outside ioMu, so writers
// never wait for the disk.
func (r *Recorder) syncEvery(every time.Duration) {
	defer r.wg.Done()
	t := time.NewTimer(every)
	t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-r.dirty:
		}
		t.Reset(every)
		select {
		case <-r.stop:
			t.Stop()
			return // Close fsyncs everything
		case <-t.C:
		}
		if err := r.syncWritten(); err != nil {
			r.log.Error("recordings fsync failed", "err", err.Error())
			r.markDirty() // try again on the next pass
		}
	}
}

func (r *Recorder) markDirty() {
	select {
	case r.dirty <- struct{}{}:
	default:
	}
}

func (r *Recorder) syncWritten() error {
	r.ioMu.Lock()
	upto := r.written.Load()
	if r.durable.Load() >= upto && len(r.unsyncedDirs) == 0 {
		r.ioMu.Unlock()
		return nil
	}
	names := make([]string, 0, len(r.unsynced))
	for c := range r.unsynced {
		if c.f != nil {
			names = append(names, c.f.Name())
		}
	}
	clear(r.unsynced)
	names = append(names, r.unsyncedMeta...)
	dirs := r.unsyncedDirs
	r.unsyncedMeta, r.unsyncedDirs = nil, nil
	r.ioMu.Unlock()
	start := time.Now()
	err := concurrently(len(names), func(i int) error { return fsyncPath(names[i]) })
	// Directories after their files: a file's entry is durable once both are.
	err = errors.Join(err, concurrently(len(dirs), func(i int) error {
		if err := syncDir(dirs[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("fsync spool dir: %w", err)
		}
		return nil
	}))
	if err != nil {
		return err
	}
	r.durable.Store(upto)
	r.m.commit.Observe(time.Since(start).Seconds())
	return nil
}

// syncFiles fsyncs files concurrently, so the filesystem folds them into one journal commit
// instead of one per file. A single file, the usual case at a low rate where each commit
// carries one exchange, is fsynced on the calling goroutine: a goroutine per fsync would add
// a thread hand-off and a wake-up to every exchange for nothing to overlap.
func syncFiles(files []*os.File) error {
	return concurrently(len(files), func(i int) error {
		if err := files[i].Sync(); err != nil {
			return fmt.Errorf("fsync segment: %w", err)
		}
		return nil
	})
}

// concurrently runs fn(0) … fn(n-1) on goroutines of their own and joins their errors; a
// single call runs on the calling goroutine.
func concurrently(n int, fn func(i int) error) error {
	if n == 1 {
		return fn(0)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = fn(i) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// fsyncPath fsyncs a spool file by name. A file sealed meanwhile is gone: its content was
// fsynced into the outbox when it was sealed.
func fsyncPath(name string) error {
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open segment for fsync: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync segment: %w", err)
	}
	return nil
}

// flushLocked writes all pending events and, with fsync, fsyncs every chain written since its
// last fsync; then it seals full or old segments and closes ended chains (all chains with
// final). Requires ioMu.
func (r *Recorder) flushLocked(final, fsync bool) error {
	start := time.Now()
	type batch struct {
		c    *chain
		data []byte
		n    int
	}
	r.mu.Lock()
	if final {
		// Ended in the order the sessions started, so their manifests are numbered so.
		open := slices.SortedFunc(maps.Values(r.chains), func(a, b *chain) int {
			return cmp.Or(a.started.Compare(b.started), cmp.Compare(a.session, b.session))
		})
		for _, c := range open {
			c.mu.Lock()
			r.appendLocked(c, Event{Kind: KindSessionEnd, Note: &Note{Stage: "recordings", Kind: "session_end", Attrs: map[string]any{"reason": "shutdown"}}}, start.UTC()) //nolint:errcheck // encoding a fixed event cannot fail
			c.mu.Unlock()
			r.endLocked(c)
		}
		r.closed = true // a later event would start a chain no flush writes
	}
	// Read before the chains are collected: an event counted here has its chain in the
	// table or in closing, and its bytes pending under the chain's lock.
	upto := r.seq.Load()
	all := make([]*chain, 0, len(r.chains)+len(r.closing))
	for _, c := range r.chains {
		all = append(all, c)
	}
	ending := r.closing
	r.closing = nil
	all = append(all, ending...)
	r.mu.Unlock()

	work := make([]batch, 0, len(all))
	for _, c := range all {
		c.mu.Lock()
		if len(c.pending) > 0 {
			work = append(work, batch{c, c.pending, c.pendingN})
			c.pending, c.pendingN, c.spare = c.spare[:0], 0, nil
			// facets only grow; the request ids folded in by earlier flushes are skipped.
			fresh := c.facets
			fresh.RequestIDs = c.facets.RequestIDs[c.merged:]
			c.tooling.merge(fresh)
			c.merged = len(c.facets.RequestIDs)
		}
		c.mu.Unlock()
	}

	var errs []error
	for _, w := range work {
		if err := r.write(w.c, w.data, w.n); err != nil {
			errs = append(errs, err)
		} else {
			r.unsynced[w.c] = true
		}
		if cap(w.data) <= maxSpare {
			w.c.mu.Lock()
			w.c.spare = w.data[:0]
			w.c.mu.Unlock()
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	r.written.Store(upto)
	if !fsync && (len(work) > 0 || len(r.unsyncedDirs) > 0) {
		r.markDirty()
	}
	if fsync {
		// The chains' files are fsynced concurrently: the filesystem folds them into one
		// journal commit instead of one per file.
		var files []*os.File
		for c := range r.unsynced {
			if c.f != nil {
				files = append(files, c.f)
			}
		}
		clear(r.unsynced)
		if err := syncFiles(files); err != nil {
			return err
		}
		r.durable.Store(upto)
	}
	r.m.commit.Observe(time.Since(start).Seconds())

	// Segments to seal are only rotated here (a rename); the sealer compresses, hashes and
	// spools them, and closes ended chains, without holding ioMu.
	now := time.Now()
	for _, w := range work {
		if c := w.c; !c.ending.Load() && c.f != nil && c.size >= r.cfg.Segment.MaxBytes {
			if err := r.rotateLocked(c); err != nil {
				errs = append(errs, err)
			}
		}
	}
	r.mu.Lock()
	var aged []*chain
	for _, c := range r.chains {
		aged = append(aged, c)
	}
	r.mu.Unlock()
	for _, c := range aged {
		if c.f != nil && now.Sub(c.opened) >= r.cfg.Segment.MaxAge {
			if err := r.rotateLocked(c); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, c := range ending {
		if err := r.rotateLocked(c); err != nil {
			errs = append(errs, err)
			continue // closed by the next start's recovery
		}
		r.queue(&sealJob{c: c, close: true, facets: c.tooling.sorted(), onDisk: c.onDisk})
	}
	return errors.Join(errs...)
}

// maxSpare bounds the batch buffer a chain keeps for its next batch.
const maxSpare = 64 << 10

// write appends lines to the chain's open segment, creating the chain on disk and the
// segment as needed.
func (r *Recorder) write(c *chain, data []byte, n int) error {
	if !c.onDisk {
		if err := os.MkdirAll(c.dir, 0o700); err != nil {
			return fmt.Errorf("create chain dir: %w", err)
		}
		meta, _ := json.Marshal(chainMeta{Session: c.session, MCPID: c.mcpID, Chain: c.id, Started: c.started, Identity: c.identity})
		name := filepath.Join(c.dir, "chain.json")
		if r.cfg.Spool.Sync == SyncInterval {
			// Written now, fsynced by the next pass with the events: a new session costs the
			// exchange no fsync either.
			if err := os.WriteFile(name, meta, 0o600); err != nil {
				return fmt.Errorf("write chain meta: %w", err)
			}
			r.unsyncedMeta = append(r.unsyncedMeta, name)
			r.unsyncedDirs = append(r.unsyncedDirs, filepath.Dir(c.dir), c.dir)
		} else {
			if err := writeFileSync(name, meta, 0o600); err != nil {
				return fmt.Errorf("write chain meta: %w", err)
			}
			if err := syncDir(filepath.Dir(c.dir)); err != nil {
				return fmt.Errorf("sync chain dir: %w", err)
			}
		}
		c.onDisk, c.seq = true, 1
	}
	if c.f == nil {
		// The open segment holds events only: its header names the previous segment's hash,
		// known once the sealer has sealed it, so the header is made when it is sealed.
		f, err := os.OpenFile(filepath.Join(c.dir, currentName), os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("open segment: %w", err)
		}
		if r.cfg.Spool.Sync == SyncInterval {
			r.unsyncedDirs = append(r.unsyncedDirs, c.dir)
		} else if err := syncDir(c.dir); err != nil {
			f.Close()
			return fmt.Errorf("sync chain dir: %w", err)
		}
		c.f, c.size, c.opened, c.segN = f, 0, time.Now(), 0
	}
	if _, err := c.f.Write(data); err != nil {
		return fmt.Errorf("append segment: %w", err)
	}
	c.size += int64(len(data))
	c.segN += n
	r.bytes.Add(int64(len(data)))
	return nil
}

// currentName is the open segment of a chain in the spool: its events, one JSON line each.
const currentName = "current.jsonl"

// rotatedName is a segment rotated out of current.jsonl, waiting for the sealer.
func rotatedName(seq int) string { return fmt.Sprintf("sealing-%06d.jsonl", seq) }

// rotateLocked moves the open segment aside for the sealer; the next event opens the next
// segment. A rename only: the commit waits for no compression, hashing or fsync of a seal.
// Requires ioMu.
func (r *Recorder) rotateLocked(c *chain) error {
	if c.f == nil {
		return nil
	}
	name := filepath.Join(c.dir, rotatedName(c.seq))
	if err := os.Rename(filepath.Join(c.dir, currentName), name); err != nil {
		return fmt.Errorf("rotate segment: %w", err) // still open: its events stay in it
	}
	cerr := c.f.Close()
	c.f = nil
	delete(r.unsynced, c)
	if r.cfg.Spool.Sync == SyncInterval {
		// Written but perhaps not fsynced: the next pass fsyncs it unless sealed (and so
		// fsynced in the outbox) first.
		r.unsyncedMeta = append(r.unsyncedMeta, name)
		r.unsyncedDirs = append(r.unsyncedDirs, c.dir)
	}
	r.queue(&sealJob{c: c, path: name, seq: c.seq, events: c.segN, opened: c.opened, facets: c.tooling.clone()})
	c.seq++
	if cerr != nil {
		return fmt.Errorf("close segment: %w", cerr)
	}
	return nil
}

// queue hands a job to the sealer.
func (r *Recorder) queue(j *sealJob) {
	r.sealMu.Lock()
	r.jobs = append(r.jobs, j)
	r.sealMu.Unlock()
	select {
	case r.sealWake <- struct{}{}:
	default:
	}
}

// sealer seals rotated segments and closes ended chains in the order they were queued, and
// seals the index when its part is due.
func (r *Recorder) sealer() {
	defer r.sealWG.Done()
	t := time.NewTicker(r.tick())
	defer t.Stop()
	for {
		select {
		case <-r.sealStop:
			return // Close runs what is left
		case <-r.sealWake:
		case <-t.C:
		}
		if err := r.runSeals(); err != nil {
			r.m.sealErr.Inc()
			r.log.Error("recordings seal failed", "err", err.Error()) // retried on the next tick
		}
		if err := r.sealIndex(false); err != nil {
			r.m.sealErr.Inc()
			r.log.Error("recordings index seal failed", "err", err.Error())
		}
	}
}

// runSeals runs the queued jobs in order; a job that fails stays first, to be run again.
func (r *Recorder) runSeals() error {
	for {
		r.sealMu.Lock()
		if len(r.jobs) == 0 {
			r.sealMu.Unlock()
			return nil
		}
		j := r.jobs[0]
		r.sealMu.Unlock()
		if err := r.runJob(j); err != nil {
			return err
		}
		r.sealMu.Lock()
		r.jobs[0] = nil
		r.jobs = r.jobs[1:]
		r.sealMu.Unlock()
	}
}

func (r *Recorder) runJob(j *sealJob) error {
	if j.close {
		return r.closeChain(j.c, false, j.facets, j.onDisk)
	}
	if !j.done {
		body, err := os.ReadFile(j.path)
		if err != nil {
			return fmt.Errorf("read segment: %w", err)
		}
		if err := r.sealSegment(j.c, body, j.seq, j.events, j.opened, j.facets); err != nil {
			return err
		}
		j.done = true
		r.bytes.Add(-int64(len(body)))
	}
	if err := os.Remove(j.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove sealed segment: %w", err)
	}
	return nil
}

// sealSegment seals the events of segment seq behind its header, which binds it to the
// chain's previous segment, and records its hash in sealed.log. Sealer only.
func (r *Recorder) sealSegment(c *chain, body []byte, seq, events int, opened time.Time, facets Facets) error {
	h, _ := json.Marshal(Header{Type: "segment", Session: c.session, Chain: c.id, Seq: seq, Prev: c.prev, Created: opened.UTC()})
	lines := make([]byte, 0, len(h)+1+len(body))
	lines = append(append(append(lines, h...), '\n'), body...)
	ref, err := r.sealBytes(c, lines, seq, events, facets)
	if err != nil {
		return err
	}
	c.prev = ref.SHA256
	c.sealed = append(c.sealed, ref)
	return nil
}

func (r *Recorder) sealBytes(c *chain, lines []byte, seq, events int, facets Facets) (SegmentRef, error) {
	obj, sum, err := seal(lines)
	if err != nil {
		return SegmentRef{}, fmt.Errorf("compress segment: %w", err)
	}
	key := chainPrefix(r.cfg.Sink.Prefix, c.started, c.session, c.id) + "/" + segmentName(seq)
	if err := r.enqueue(key, obj, "seg"); err != nil {
		return SegmentRef{}, err
	}
	ref := SegmentRef{Seq: seq, SHA256: sum, Size: int64(len(obj)), Events: events}
	line, _ := json.Marshal(sealedRef{SegmentRef: ref, Facets: &facets})
	f, err := os.OpenFile(filepath.Join(c.dir, "sealed.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return SegmentRef{}, fmt.Errorf("open sealed log: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		return SegmentRef{}, fmt.Errorf("append sealed log: %w", err)
	}
	if err := f.Sync(); err != nil {
		return SegmentRef{}, fmt.Errorf("fsync sealed log: %w", err)
	}
	return ref, nil
}

// closeChain signs the manifest of a chain whose segments are all sealed and retires the
// chain. Sealer only.
func (r *Recorder) closeChain(c *chain, recovered bool, facets Facets, onDisk bool) error {
	if len(c.sealed) > 0 {
		m := &Manifest{
			Session: c.session, MCPSessionID: c.mcpID, Chain: c.id, Replica: r.cfg.ReplicaID,
			Started: c.started, Ended: time.Now().UTC(), Recovered: recovered, Identity: c.identity,
			Facets: facets, Segments: c.sealed,
		}
		for _, s := range c.sealed {
			m.Events += s.Events
		}
		data, err := r.signChained(m)
		if err != nil {
			return err
		}
		if err := r.enqueue(chainPrefix(r.cfg.Sink.Prefix, c.started, c.session, c.id)+"/"+manifestName, data, "man"); err != nil {
			return err
		}
		if err := r.indexManifest(m, data); err != nil {
			return err
		}
	}
	if onDisk {
		if err := os.RemoveAll(c.dir); err != nil {
			return fmt.Errorf("remove closed chain: %w", err)
		}
		_ = os.Remove(filepath.Dir(c.dir)) // the session dir, when empty
	}
	return nil
}

// enqueue puts an object into the outbox for upload: "key\n" then the bytes.
func (r *Recorder) enqueue(key string, data []byte, kind string) error {
	n := r.out.Add(1)
	name := filepath.Join(r.outbox(), fmt.Sprintf("%020d.%s", n, kind))
	buf := make([]byte, 0, len(key)+1+len(data))
	buf = append(append(append(buf, key...), '\n'), data...)
	if err := writeFileSync(name, buf, 0o600); err != nil {
		return fmt.Errorf("spool object: %w", err)
	}
	r.bytes.Add(int64(len(buf)))
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return nil
}

// tick is how often housekeeping runs: a quarter of the shorter of segment.max_age and the
// idle timeout, within 20 ms–5 s.
func (r *Recorder) tick() time.Duration {
	every := min(r.cfg.Segment.MaxAge, r.cfg.IdleTimeout) / 4
	return max(min(every, 5*time.Second), 20*time.Millisecond)
}

// housekeep periodically commits, seals old segments and ends idle sessions.
func (r *Recorder) housekeep() {
	defer r.wg.Done()
	t := time.NewTicker(r.tick())
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		now := time.Now().UTC()
		r.mu.Lock()
		for _, c := range r.chains {
			c.mu.Lock()
			if now.Sub(c.lastActive) >= r.cfg.IdleTimeout {
				r.appendLocked(c, Event{Kind: KindSessionEnd, Note: &Note{Stage: "recordings", Kind: "session_end", Attrs: map[string]any{"reason": "idle"}}}, now) //nolint:errcheck // fixed event
				r.endLocked(c)
			}
			c.mu.Unlock()
		}
		r.mu.Unlock()
		r.ioMu.Lock()
		if err := r.flushLocked(false, r.cfg.Spool.Sync == SyncAlways); err != nil {
			r.log.Error("recordings commit failed", "err", err.Error())
		}
		r.ioMu.Unlock()
	}
}

// Close ends every session (flushing and signing), then uploads what the spool holds
// until ctx ends; what is left is uploaded by the next start.
func (r *Recorder) Close(ctx context.Context) error {
	var err error
	r.stopOnce.Do(func() {
		close(r.stop)
		r.wg.Wait()
		r.ioMu.Lock()
		err = r.flushLocked(true, true)
		r.ioMu.Unlock()
		close(r.sealStop)
		r.sealWG.Wait()
		err = errors.Join(err, r.runSeals(), r.sealIndex(true))
		close(r.upStop)
		r.upWG.Wait()
		if uerr := r.drain(ctx); uerr != nil {
			err = errors.Join(err, uerr)
		}
	})
	return err
}

// recover closes the chains a previous process left open and counts the outbox.
func (r *Recorder) recover() error {
	ents, err := os.ReadDir(r.outbox())
	if err != nil {
		return fmt.Errorf("read outbox: %w", err)
	}
	for _, e := range ents {
		var n uint64
		if _, err := fmt.Sscanf(e.Name(), "%020d.", &n); err == nil && n > r.out.Load() {
			r.out.Store(n)
		}
		if info, err := e.Info(); err == nil {
			r.bytes.Add(info.Size())
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(r.chainsDir(), "*", "*"))
	for _, d := range dirs {
		if err := r.recoverChain(d); err != nil {
			return fmt.Errorf("recover chain %s: %w", d, err)
		}
	}
	return nil
}

func (r *Recorder) recoverChain(dir string) error {
	meta, err := os.ReadFile(filepath.Join(dir, "chain.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return os.RemoveAll(dir) // crashed before anything was committed
		}
		return err
	}
	var cm chainMeta
	if err := json.Unmarshal(meta, &cm); err != nil {
		return fmt.Errorf("chain meta: %w", err)
	}
	c := &chain{session: cm.Session, mcpID: cm.MCPID, id: cm.Chain, started: cm.Started, identity: cm.Identity, dir: dir, onDisk: true, seq: 1}
	if log, err := os.ReadFile(filepath.Join(dir, "sealed.log")); err == nil {
		for _, line := range bytes.Split(log, []byte("\n")) {
			var s sealedRef
			if json.Unmarshal(line, &s) != nil || s.Seq != len(c.sealed)+1 {
				continue // a torn last line, or a duplicate from a crash mid-seal
			}
			c.sealed = append(c.sealed, s.SegmentRef)
			c.prev, c.seq = s.SHA256, s.Seq+1
			c.tooling.merge(Facets{Tools: s.Tools})
			if s.Facets != nil {
				c.tooling.merge(*s.Facets)
			}
		}
	}
	// Rotated segments, in order, then the open one. A rotated segment sealed before the
	// crash (in sealed.log) only had its file left.
	rotated, _ := filepath.Glob(filepath.Join(dir, "sealing-*.jsonl"))
	slices.Sort(rotated)
	for _, name := range append(rotated, filepath.Join(dir, currentName)) {
		var seq int
		if _, err := fmt.Sscanf(filepath.Base(name), "sealing-%06d.jsonl", &seq); err == nil && seq < c.seq {
			if err := os.Remove(name); err != nil {
				return fmt.Errorf("remove sealed segment: %w", err)
			}
			continue
		}
		if err := r.recoverSegment(c, name); err != nil {
			return err
		}
	}
	r.log.Warn("recording chain recovered from the spool after an unclean stop", "session", c.session, "chain", c.id, "segments", len(c.sealed))
	return r.closeChain(c, true, c.tooling.sorted(), true)
}

// recoverSegment seals what a segment file left by a crash holds, as the chain's next
// segment: its complete lines, after a header the file has (written before headers were
// made at seal time) or one made now.
func (r *Recorder) recoverSegment(c *chain, name string) error {
	lines, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read segment: %w", err)
	}
	orig := int64(len(lines))
	r.bytes.Add(orig)
	defer r.bytes.Add(-orig)
	if i := bytes.LastIndexByte(lines, '\n'); i >= 0 {
		lines = lines[:i+1] // drop a torn last line
	} else {
		lines = nil
	}
	sc := bufio.NewScanner(bytes.NewReader(lines))
	sc.Buffer(nil, maxSegment)
	n, withHeader := 0, false
	var facets Facets
	for first := true; sc.Scan(); first = false {
		if first {
			var h Header
			if json.Unmarshal(sc.Bytes(), &h) == nil && h.Type == "segment" {
				if h.Seq != c.seq {
					return os.Remove(name) // sealed before the crash
				}
				withHeader = true
				continue
			}
		}
		var ev Event
		if json.Unmarshal(sc.Bytes(), &ev) == nil {
			facets.add(&ev)
		}
		n++
	}
	if n > 0 {
		c.tooling.merge(facets)
		if withHeader {
			ref, err := r.sealBytes(c, lines, c.seq, n, c.tooling)
			if err != nil {
				return err
			}
			c.prev = ref.SHA256
			c.sealed = append(c.sealed, ref)
		} else {
			opened := time.Now()
			if info, err := os.Stat(name); err == nil {
				opened = info.ModTime()
			}
			if err := r.sealSegment(c, lines, c.seq, n, opened, c.tooling.clone()); err != nil {
				return err
			}
		}
		c.seq++
	}
	return os.Remove(name)
}
