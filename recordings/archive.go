package recordings

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// readers bounds the objects an Archive reads at once (S3 round trips dominate).
const readers = 16

// Archive reads recordings back from a sink: search through the index, replay and
// verification. It caches the index parts it read, so use one per command.
type Archive struct {
	sink   Sink
	prefix string

	grace time.Duration

	mu    sync.Mutex
	parts map[string][]*partObj // index parts read, by day (YYYY-MM-DD)
}

// DefaultIndexGrace is how long after a chain closed verify waits for its index entry
// before reporting it missing, unless a later index part of its replica omits it.
const DefaultIndexGrace = 15 * time.Minute

type partObj struct {
	key   string
	sum   string
	data  []byte
	plain []byte // decompressed, nil when unreadable

	once sync.Once
	part *IndexPart // decoded on first use; nil when unreadable
}

// get decodes the part (signature not checked) once.
func (o *partObj) get() *IndexPart {
	o.once.Do(func() {
		if o.plain != nil {
			o.part, _ = decodeIndexPart(o.plain, nil)
		}
	})
	return o.part
}

// mentions reports whether the part may list a session starting with prefix; it saves
// decoding the parts of other days' sessions when looking one up.
func (o *partObj) mentions(prefix string) bool {
	return o.plain == nil || prefix == "" || bytes.Contains(o.plain, []byte(`"session":"`+prefix))
}

// NewArchive reads the recordings stored under prefix in sink.
func NewArchive(sink Sink, prefix string) *Archive {
	return &Archive{sink: sink, prefix: prefix, grace: DefaultIndexGrace, parts: map[string][]*partObj{}}
}

// WithIndexGrace sets how long verify waits for a closed chain's index entry (see
// [DefaultIndexGrace]) and returns a.
func (a *Archive) WithIndexGrace(d time.Duration) *Archive {
	a.grace = d
	return a
}

// Session is one recorded session: the chains its replicas wrote.
type Session struct {
	Name   string
	Chains []*Chain
	// Unindexed is set when the session was found in storage but in no index.
	Unindexed bool
	listed    bool
	summary   *Summary
}

// Chain is one replica's chain of a session as found in storage and in the index.
type Chain struct {
	ID       string
	Dir      string // key prefix of the chain's objects
	Segments map[int]string
	// Manifest is decoded without checking the signature (listing); nil when absent,
	// unreadable or not read (a chain found through the index).
	Manifest *Manifest
	// Entry is the chain's index entry; nil when the chain is in no index read.
	Entry       *IndexEntry
	manifestKey string
}

// Summary is what a listing shows of a session.
type Summary struct {
	Started, Ended time.Time
	Identity       *Identity
	Events         int
	Facets         Facets
}

// Summary merges the chains' index entries (or manifests).
func (s *Session) Summary() Summary {
	if s.summary == nil {
		sum := s.summarize()
		s.summary = &sum
	}
	return *s.summary
}

func (s *Session) summarize() Summary {
	var sum Summary
	for _, c := range s.Chains {
		var started, ended time.Time
		var id *Identity
		var f Facets
		var n int
		switch {
		case c.Entry != nil:
			started, ended, id, f, n = c.Entry.Started, c.Entry.Ended, c.Entry.Identity, c.Entry.Facets, c.Entry.Events
		case c.Manifest != nil:
			started, ended, id, f, n = c.Manifest.Started, c.Manifest.Ended, c.Manifest.Identity, c.Manifest.Facets, c.Manifest.Events
		default:
			continue // open or damaged: verify says which
		}
		if sum.Started.IsZero() || started.Before(sum.Started) {
			sum.Started = started
		}
		if ended.After(sum.Ended) {
			sum.Ended = ended
		}
		if sum.Identity == nil {
			sum.Identity = id
		}
		sum.Events += n
		sum.Facets.merge(f)
	}
	sum.Facets = sum.Facets.sorted()
	return sum
}

// Query selects sessions. Empty fields match everything; the time bounds apply to the
// session's start ([Since, Until)).
type Query struct {
	Since, Until time.Time
	// Identity matches a subject or a client id exactly.
	Identity  string
	Tool      string
	Rule      string
	Decision  string
	RequestID string
	// Prefix matches the start of the session id.
	Prefix string
}

func (q Query) inDays(day string) bool {
	if !q.Since.IsZero() && day < dayOf(q.Since) {
		return false
	}
	if !q.Until.IsZero() && day > dayOf(q.Until) {
		return false
	}
	return true
}

// match reports whether s matches; readEvents is set when only its events can tell
// (a request id searched in a chain whose id list was truncated).
func (q Query) match(s *Session) (ok, readEvents bool) {
	if !strings.HasPrefix(s.Name, q.Prefix) {
		return false, false
	}
	sum := s.Summary()
	if !q.Since.IsZero() && (sum.Started.IsZero() || sum.Started.Before(q.Since)) {
		return false, false
	}
	if !q.Until.IsZero() && (sum.Started.IsZero() || !sum.Started.Before(q.Until)) {
		return false, false
	}
	if q.Identity != "" && (sum.Identity == nil || sum.Identity.Subject != q.Identity && sum.Identity.ClientID != q.Identity) {
		return false, false
	}
	f := sum.Facets
	if q.Tool != "" && !slices.Contains(f.Tools, q.Tool) ||
		q.Rule != "" && !slices.Contains(f.Rules, q.Rule) ||
		q.Decision != "" && !slices.Contains(f.Decisions, q.Decision) {
		return false, false
	}
	if q.RequestID != "" && !slices.Contains(f.RequestIDs, q.RequestID) {
		return false, f.RequestIDsTruncated
	}
	return true, false
}

// Found is the result of a search.
type Found struct {
	Sessions []*Session
	// Notes are things the reader should know: days read without an index.
	Notes []string
}

// base is the prefix as a directory ("" or "p/").
func (a *Archive) base() string {
	if a.prefix == "" {
		return ""
	}
	return strings.TrimSuffix(a.prefix, "/") + "/"
}

// days lists the days (YYYY-MM-DD) that hold anything below dir (YYYY/MM/DD levels).
func (a *Archive) days(ctx context.Context, dir string) ([]string, error) {
	var out []string
	years, err := a.sink.Dirs(ctx, dir)
	if err != nil {
		return nil, err
	}
	for _, y := range years {
		if !digits(y, 4) {
			continue
		}
		months, err := a.sink.Dirs(ctx, dir+y+"/")
		if err != nil {
			return nil, err
		}
		for _, m := range months {
			if !digits(m, 2) {
				continue
			}
			ds, err := a.sink.Dirs(ctx, dir+y+"/"+m+"/")
			if err != nil {
				return nil, err
			}
			for _, d := range ds {
				if digits(d, 2) {
					out = append(out, y+"-"+m+"-"+d)
				}
			}
		}
	}
	return out, nil
}

func digits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	_, err := strconv.Atoi(s)
	return err == nil
}

// dayParts reads (once) the index parts of a day, decoded without checking signatures.
func (a *Archive) dayParts(ctx context.Context, day string) ([]*partObj, error) {
	a.mu.Lock()
	got, ok := a.parts[day]
	a.mu.Unlock()
	if ok {
		return got, nil
	}
	keys, err := a.sink.List(ctx, a.base()+indexDir+"/"+splitDay(day)+"/")
	if err != nil {
		return nil, err
	}
	var objs []*partObj
	for _, k := range keys {
		if d, ok := parseIndexKey(a.prefix, k); ok && d == day {
			objs = append(objs, &partObj{key: k})
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(readers)
	for _, o := range objs {
		g.Go(func() error {
			data, err := a.sink.Get(gctx, o.key)
			if errors.Is(err, ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			o.data, o.sum = data, hashHex(data)
			o.plain, _ = inflateIndexPart(data)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.parts[day] = objs
	a.mu.Unlock()
	return objs, nil
}

// Search finds the sessions matching q through the index, reading only the days in q's
// range; a day that holds recordings but no index is listed from storage (and noted).
func (a *Archive) Search(ctx context.Context, q Query) (*Found, error) {
	recDays, err := a.days(ctx, a.base())
	if err != nil {
		return nil, err
	}
	idxDays, err := a.days(ctx, a.base()+indexDir+"/")
	if err != nil {
		return nil, err
	}
	found := &Found{}
	byName := map[string]*Session{}
	for _, d := range idxDays {
		if !q.inDays(d) {
			continue
		}
		objs, err := a.dayParts(ctx, d)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			if !o.mentions(q.Prefix) {
				continue
			}
			p := o.get()
			if p == nil {
				found.Notes = append(found.Notes, fmt.Sprintf("index part %s unreadable: run verify", o.key))
				continue
			}
			for i := range p.Entries {
				e := &p.Entries[i]
				if strings.HasPrefix(e.Session, q.Prefix) {
					a.addEntry(byName, e)
				}
			}
		}
	}
	for _, d := range recDays {
		if !q.inDays(d) || slices.Contains(idxDays, d) {
			continue
		}
		sessions, err := a.scan(ctx, a.base()+splitDay(d)+"/", q.Prefix)
		if err != nil {
			return nil, err
		}
		if len(sessions) > 0 {
			found.Notes = append(found.Notes, fmt.Sprintf("day %s has no index: listed from storage (mcpguard recordings reindex rebuilds it)", d))
		}
		for _, s := range sessions {
			s.Unindexed = true
			if prev := byName[s.Name]; prev != nil {
				prev.Chains = append(prev.Chains, s.Chains...)
				continue
			}
			byName[s.Name] = s
		}
	}
	var check []*Session
	for _, s := range byName {
		ok, read := q.match(s)
		switch {
		case ok:
			found.Sessions = append(found.Sessions, s)
		case read:
			check = append(check, s)
		}
	}
	for _, s := range check {
		evs, err := a.Events(ctx, s)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(evs, func(e Event) bool { return e.RequestID == q.RequestID }) {
			found.Sessions = append(found.Sessions, s)
		}
	}
	slices.SortFunc(found.Sessions, func(x, y *Session) int {
		if c := x.Summary().Started.Compare(y.Summary().Started); c != 0 {
			return c
		}
		return cmp.Compare(x.Name, y.Name)
	})
	return found, nil
}

func (a *Archive) addEntry(byName map[string]*Session, e *IndexEntry) {
	s := byName[e.Session]
	if s == nil {
		s = &Session{Name: e.Session}
		byName[e.Session] = s
	}
	s.summary = nil
	for _, c := range s.Chains {
		if c.ID == e.Chain {
			c.Entry = e // the same chain indexed again after a crash: the later entry wins
			return
		}
	}
	s.Chains = append(s.Chains, &Chain{ID: e.Chain, Dir: entryDir(a.prefix, e), Entry: e})
}

// AmbiguousError reports a session id prefix that matches several sessions.
type AmbiguousError struct {
	Ref        string
	Candidates []string
}

func (e *AmbiguousError) Error() string {
	more := ""
	c := e.Candidates
	if len(c) > 20 {
		c, more = c[:20], fmt.Sprintf(" (and %d more)", len(e.Candidates)-20)
	}
	return fmt.Sprintf("session %q is ambiguous: it starts %d sessions: %s%s", e.Ref, len(e.Candidates), strings.Join(c, ", "), more)
}

// Resolve finds the one session named ref, or starting with ref, among those matching q;
// an error wraps [ErrNotFound] or is an [*AmbiguousError]. A session in no index (a day
// whose index is lost, a chain still open, objects copied into storage) is found by
// listing the whole storage, and is marked Unindexed.
func (a *Archive) Resolve(ctx context.Context, ref string, q Query) (*Session, error) {
	if ref == "" {
		return nil, fmt.Errorf("empty session id: %w", ErrNotFound)
	}
	q.Prefix = ref
	found, err := a.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	pick := func(list []*Session) (*Session, error) {
		if i := slices.IndexFunc(list, func(s *Session) bool { return s.Name == ref }); i >= 0 {
			return list[i], nil
		}
		switch len(list) {
		case 0:
			return nil, fmt.Errorf("session %s: %w", ref, ErrNotFound)
		case 1:
			return list[0], nil
		}
		names := make([]string, len(list))
		for i, s := range list {
			names[i] = s.Name
		}
		slices.Sort(names)
		return nil, &AmbiguousError{Ref: ref, Candidates: names}
	}
	s, err := pick(found.Sessions)
	if !errors.Is(err, ErrNotFound) {
		if err == nil {
			err = a.load(ctx, s)
		}
		return s, err
	}
	all, err := a.scan(ctx, a.base(), ref)
	if err != nil {
		return nil, err
	}
	var match []*Session
	for _, s := range all {
		if ok, _ := q.match(s); ok {
			s.Unindexed = true
			match = append(match, s)
		}
	}
	s, err = pick(match)
	if err != nil {
		return nil, err
	}
	s.listed = true
	return s, nil
}

// load lists the objects of s's chains (and finds chains of s the index did not name).
func (a *Archive) load(ctx context.Context, s *Session) error {
	if s.listed {
		return nil
	}
	dirs := map[string]bool{}
	for _, c := range s.Chains {
		dirs[c.Dir[:strings.LastIndexByte(c.Dir, '/')+1]] = true
	}
	for d := range dirs {
		keys, err := a.sink.List(ctx, d)
		if err != nil {
			return err
		}
		for _, k := range keys {
			ok, valid := ParseKey(a.prefix, k)
			if !valid || ok.Session != s.Name {
				continue
			}
			dir := k[:strings.LastIndexByte(k, '/')]
			i := slices.IndexFunc(s.Chains, func(c *Chain) bool { return c.ID == ok.Chain })
			if i < 0 {
				s.Chains = append(s.Chains, &Chain{ID: ok.Chain, Dir: dir})
				i = len(s.Chains) - 1
			}
			c := s.Chains[i]
			if c.Segments == nil {
				c.Segments = map[int]string{}
			}
			if ok.Manifest {
				c.manifestKey = k
			} else {
				c.Segments[ok.Seq] = k
			}
		}
	}
	slices.SortFunc(s.Chains, func(x, y *Chain) int { return cmp.Compare(x.ID, y.ID) })
	s.listed, s.summary = true, nil
	return nil
}

// scan lists storage below dir and returns the sessions whose name starts with prefix,
// with their manifests decoded (not verified).
func (a *Archive) scan(ctx context.Context, dir, prefix string) ([]*Session, error) {
	keys, err := a.sink.List(ctx, dir)
	if err != nil {
		return nil, err
	}
	out := a.fromKeys(keys, prefix)
	var chains []*Chain
	for _, s := range out {
		chains = append(chains, s.Chains...)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(readers)
	for _, c := range chains {
		if c.manifestKey == "" {
			continue
		}
		g.Go(func() error {
			data, err := a.sink.Get(gctx, c.manifestKey)
			if err == nil {
				c.Manifest, _ = ParseManifest(data, nil)
			} else if !errors.Is(err, ErrNotFound) {
				return err
			}
			return nil
		})
	}
	return out, g.Wait()
}

// fromKeys groups storage keys into sessions (listed, manifests not read), sorted by name.
func (a *Archive) fromKeys(keys []string, prefix string) []*Session {
	byName := map[string]*Session{}
	chains := map[string]*Chain{}
	for _, k := range keys {
		ok, valid := ParseKey(a.prefix, k)
		if !valid || !strings.HasPrefix(ok.Session, prefix) {
			continue
		}
		dir := k[:strings.LastIndexByte(k, '/')]
		c := chains[dir]
		if c == nil {
			c = &Chain{ID: ok.Chain, Dir: dir, Segments: map[int]string{}}
			chains[dir] = c
			s := byName[ok.Session]
			if s == nil {
				s = &Session{Name: ok.Session, listed: true}
				byName[ok.Session] = s
			}
			s.Chains = append(s.Chains, c)
		}
		if ok.Manifest {
			c.manifestKey = k
		} else {
			c.Segments[ok.Seq] = k
		}
	}
	out := make([]*Session, 0, len(byName))
	for _, s := range byName {
		slices.SortFunc(s.Chains, func(x, y *Chain) int { return cmp.Compare(x.ID, y.ID) })
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y *Session) int { return cmp.Compare(x.Name, y.Name) })
	return out
}

// Sessions lists every session in storage (a full listing, manifests decoded), sorted by name.
func (a *Archive) Sessions(ctx context.Context) ([]*Session, error) {
	return a.scan(ctx, a.base(), "")
}

// Find returns one session by its exact name, listing the whole storage; an error wraps
// [ErrNotFound].
func (a *Archive) Find(ctx context.Context, name string) (*Session, error) {
	all, err := a.Sessions(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range all {
		if s.Name == name {
			return s, nil
		}
	}
	return nil, fmt.Errorf("session %s: %w", name, ErrNotFound)
}

// Events reads every segment of every chain of s and merges the events by time (replica
// and sequence break ties). Unreadable segments are errors: use [Archive.Verify] to see why.
func (a *Archive) Events(ctx context.Context, s *Session) ([]Event, error) {
	if err := a.load(ctx, s); err != nil {
		return nil, err
	}
	type ordered struct {
		ev    Event
		chain string
	}
	var all []ordered
	for _, c := range s.Chains {
		seqs := make([]int, 0, len(c.Segments))
		for n := range c.Segments {
			seqs = append(seqs, n)
		}
		sort.Ints(seqs)
		for _, n := range seqs {
			data, err := a.sink.Get(ctx, c.Segments[n])
			if err != nil {
				return nil, err
			}
			_, evs, err := ParseSegment(data)
			if err != nil {
				return nil, fmt.Errorf("chain %s segment %06d: %w", c.ID, n, err)
			}
			for _, e := range evs {
				all = append(all, ordered{e, c.ID})
			}
		}
	}
	slices.SortStableFunc(all, func(x, y ordered) int {
		if c := x.ev.Time.Compare(y.ev.Time); c != 0 {
			return c
		}
		if c := cmp.Compare(x.chain, y.chain); c != 0 {
			return c
		}
		return cmp.Compare(x.ev.Seq, y.ev.Seq)
	})
	out := make([]Event, len(all))
	for i, o := range all {
		out[i] = o.ev
	}
	return out, nil
}
