package recordings

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// Verdict is the outcome of verifying one session.
type Verdict struct {
	Session  string
	Chains   int
	Segments int
	Events   int
	Problems []string // empty when the session verifies

	manifests []manifestLink
}

// manifestLink is what the replica checks need of a verified manifest.
type manifestLink struct {
	replica, epoch, session, chain string
	seq                            uint64
	prev, sum                      string
	ended                          time.Time
}

// OK reports a session whose every chain verified.
func (v Verdict) OK() bool { return len(v.Problems) == 0 }

// String is the one-line verdict.
func (v Verdict) String() string {
	if v.OK() {
		return fmt.Sprintf("OK   %s: %d chain(s), %d segment(s), %d event(s), signatures valid", v.Session, v.Chains, v.Segments, v.Events)
	}
	return fmt.Sprintf("FAIL %s: %s", v.Session, strings.Join(v.Problems, "; "))
}

// Verify checks every chain of s: the manifest signature (with pub), that every listed
// segment is present with the listed hash, in order (each header names its predecessor's
// hash), that storage holds no segment the manifest does not list, and that the chain
// and the index agree (a chain the index lists but storage lacks was deleted; a chain
// storage holds that its day's index does not list was removed from the index or
// copied in).
func (a *Archive) Verify(ctx context.Context, s *Session, pub ed25519.PublicKey) (Verdict, error) {
	if err := a.load(ctx, s); err != nil {
		return Verdict{}, err
	}
	v := Verdict{Session: s.Name, Chains: len(s.Chains)}
	for _, c := range s.Chains {
		probs, err := a.verifyChain(ctx, s.Name, c, pub, &v)
		if err != nil {
			return v, err
		}
		for _, p := range probs {
			v.Problems = append(v.Problems, "chain "+c.ID+": "+p)
		}
	}
	return v, nil
}

func (a *Archive) verifyChain(ctx context.Context, session string, c *Chain, pub ed25519.PublicKey, v *Verdict) ([]string, error) {
	var probs []string
	if c.manifestKey == "" && len(c.Segments) == 0 && c.Entry != nil {
		return []string{fmt.Sprintf("listed in the index (closed %s, manifest %d of its replica) but missing from storage: deleted",
			c.Entry.Ended.UTC().Format(time.RFC3339), c.Entry.ManifestSeq)}, nil
	}
	if c.manifestKey == "" {
		return []string{"manifest missing (chain not closed yet, or deleted)"}, nil
	}
	data, err := a.sink.Get(ctx, c.manifestKey)
	if errors.Is(err, ErrNotFound) {
		return []string{"manifest missing"}, nil
	}
	if err != nil {
		return nil, err
	}
	m, err := ParseManifest(data, pub)
	if errors.Is(err, ErrSignature) {
		return []string{"manifest signature invalid (altered, or signed with another key)"}, nil
	}
	if err != nil {
		return []string{"manifest unreadable: " + err.Error()}, nil
	}
	c.Manifest = m
	sum := hashHex(data)
	if m.Session != session || m.Chain != c.ID {
		probs = append(probs, fmt.Sprintf("manifest names session %s chain %s: copied or moved", m.Session, m.Chain))
	} else if m.Version >= 2 {
		v.manifests = append(v.manifests, manifestLink{
			replica: m.Replica, epoch: m.Epoch, session: m.Session, chain: m.Chain,
			seq: m.ReplicaSeq, prev: m.PrevManifest, sum: sum, ended: m.Ended,
		})
	}
	switch {
	case c.Entry != nil && c.Entry.Manifest != sum:
		probs = append(probs, "manifest differs from the one the index lists (replaced)")
	case c.Entry == nil && m.Version >= 2 && m.Session == session:
		day := dayOf(m.Started)
		if _, err := a.dayParts(ctx, day); err != nil {
			return nil, err
		}
		switch e := a.findEntry(day, session, c.ID); {
		case e != nil:
			c.Entry = e
			if e.Manifest != sum {
				probs = append(probs, "manifest differs from the one the index lists (replaced)")
			}
		case a.indexDue(day, m):
			probs = append(probs, "not in the index of its day (entry removed, or copied in)")
		}
	}
	listed := map[int]bool{}
	prev := ""
	for i, ref := range m.Segments {
		seq := i + 1
		listed[seq] = true
		v.Segments++
		if ref.Seq != seq {
			probs = append(probs, fmt.Sprintf("manifest lists segment %06d at position %d", ref.Seq, seq))
		}
		key, ok := c.Segments[seq]
		if !ok {
			probs = append(probs, fmt.Sprintf("segment %06d missing", seq))
			prev = ref.SHA256
			continue
		}
		seg, err := a.sink.Get(ctx, key)
		if errors.Is(err, ErrNotFound) {
			probs = append(probs, fmt.Sprintf("segment %06d missing", seq))
			prev = ref.SHA256
			continue
		}
		if err != nil {
			return nil, err
		}
		if hashHex(seg) != ref.SHA256 {
			probs = append(probs, fmt.Sprintf("segment %06d altered or reordered (hash differs from the manifest)", seq))
		} else if h, evs, err := ParseSegment(seg); err != nil {
			probs = append(probs, fmt.Sprintf("segment %06d unreadable: %v", seq, err))
		} else {
			if h.Seq != seq || h.Session != session || h.Chain != c.ID || h.Prev != prev {
				probs = append(probs, fmt.Sprintf("segment %06d out of place (header does not continue the chain)", seq))
			}
			if len(evs) != ref.Events {
				probs = append(probs, fmt.Sprintf("segment %06d holds %d events, manifest says %d", seq, len(evs), ref.Events))
			}
			v.Events += len(evs)
		}
		prev = ref.SHA256
	}
	extra := make([]int, 0)
	for n := range c.Segments {
		if !listed[n] {
			extra = append(extra, n)
		}
	}
	sort.Ints(extra)
	for _, n := range extra {
		probs = append(probs, fmt.Sprintf("segment %06d not listed in the manifest", n))
	}
	return probs, nil
}

// indexDue reports whether m's index entry must be in storage by now: a later index
// part of its replica omits it, or it closed longer than the grace ago (the recorder
// seals a part within segment.max_age of a close, then uploads it).
func (a *Archive) indexDue(day string, m *Manifest) bool {
	if time.Since(m.Ended) > a.grace {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, o := range a.parts[day] {
		if p := o.get(); p != nil && p.Replica == m.Replica && p.Epoch == m.Epoch && !p.Written.Before(m.Ended) {
			return true
		}
	}
	return false
}

// findEntry looks the chain up in the day's parts already read.
func (a *Archive) findEntry(day, session, chain string) *IndexEntry {
	a.mu.Lock()
	defer a.mu.Unlock()
	var found *IndexEntry
	for _, o := range a.parts[day] {
		p := o.get()
		if p == nil {
			continue
		}
		for i := range p.Entries {
			if e := &p.Entries[i]; e.Session == session && e.Chain == chain {
				found = e
			}
		}
	}
	return found
}

// ReplicaVerdict is the outcome of checking one replica's chains of manifests and of
// index parts in one epoch.
type ReplicaVerdict struct {
	Replica, Epoch   string
	Manifests, Parts int
	Problems         []string
}

// OK reports a replica whose chains are complete.
func (v ReplicaVerdict) OK() bool { return len(v.Problems) == 0 }

// String is the one-line verdict.
func (v ReplicaVerdict) String() string {
	name := fmt.Sprintf("replica %s epoch %s", v.Replica, v.Epoch)
	if v.OK() {
		return fmt.Sprintf("OK   %s: %d manifest(s) and %d index part(s) chained without gaps", name, v.Manifests, v.Parts)
	}
	return fmt.Sprintf("FAIL %s: %s", name, strings.Join(v.Problems, "; "))
}

// Report is the outcome of [Archive.VerifyAll].
type Report struct {
	Sessions []Verdict
	Replicas []ReplicaVerdict
	// Days names days whose recordings no index lists (an index deleted).
	Days []string
}

// OK reports a storage that verified completely.
func (r *Report) OK() bool {
	return !slices.ContainsFunc(r.Sessions, func(v Verdict) bool { return !v.OK() }) &&
		!slices.ContainsFunc(r.Replicas, func(v ReplicaVerdict) bool { return !v.OK() }) && len(r.Days) == 0
}

// VerifyAll verifies every session in storage, every session the index lists, and each
// replica's chains of manifests and of index parts: a missing session or chain is named
// by the index, a missing manifest by its replica's chain, a missing index part by the
// gap in time it leaves. progress, when set, receives each session verdict as it is made.
func (a *Archive) VerifyAll(ctx context.Context, pub ed25519.PublicKey, progress func(Verdict)) (*Report, error) {
	keys, err := a.sink.List(ctx, a.base())
	if err != nil {
		return nil, err
	}
	sessions := a.fromKeys(keys, "")
	byName := make(map[string]*Session, len(sessions))
	for _, s := range sessions {
		byName[s.Name] = s
	}
	// Every index part, its signature checked.
	var parts []*partObj
	recDays := map[string]map[string]int{} // day → replica → closed chains
	for _, k := range keys {
		if _, ok := parseIndexKey(a.prefix, k); ok {
			parts = append(parts, &partObj{key: k})
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(readers)
	for _, o := range parts {
		g.Go(func() error {
			data, err := a.sink.Get(gctx, o.key)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			o.data, o.sum = data, hashHex(data)
			o.part, _ = ParseIndexPart(data, pub)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	rep := &Report{}
	replicas := map[[2]string]*replicaCheck{}
	check := func(replica, epoch string) *replicaCheck {
		k := [2]string{replica, epoch}
		if replicas[k] == nil {
			replicas[k] = &replicaCheck{manifests: map[uint64]manifestLink{}, parts: map[uint64]*partObj{}, indexed: map[uint64]*IndexEntry{}}
		}
		return replicas[k]
	}
	indexedDays := map[string]map[string]bool{} // day → replica
	lastWritten := map[[2]string]time.Time{}    // replica, epoch → latest part
	a.mu.Lock()
	for _, o := range parts {
		if o.part == nil {
			rep.Replicas = append(rep.Replicas, ReplicaVerdict{Replica: "?", Epoch: "?", Problems: []string{fmt.Sprintf("index part %s unreadable or its signature invalid", o.key)}})
			continue
		}
		p := o.part
		a.parts[p.Day] = append(a.parts[p.Day], o)
		rc := check(p.Replica, p.Epoch)
		rc.parts[p.Seq] = o
		if k := [2]string{p.Replica, p.Epoch}; p.Written.After(lastWritten[k]) {
			lastWritten[k] = p.Written
		}
		if indexedDays[p.Day] == nil {
			indexedDays[p.Day] = map[string]bool{}
		}
		indexedDays[p.Day][p.Replica] = true
		for i := range p.Entries {
			e := &p.Entries[i]
			a.addEntry(byName, e)
			if e.ManifestSeq > 0 {
				check(p.Replica, p.Epoch).indexed[e.ManifestSeq] = e
			}
		}
	}
	// Every part is read: a day without any has no index, and Verify must not list it again.
	for _, s := range byName {
		for _, c := range s.Chains {
			day := strings.ReplaceAll(c.Dir[len(a.base()):len(a.base())+10], "/", "-")
			if _, ok := a.parts[day]; !ok {
				a.parts[day] = nil
			}
		}
	}
	a.mu.Unlock()

	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	slices.Sort(names)
	verdicts := make([]Verdict, len(names))
	var progMu sync.Mutex
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(readers)
	for i, n := range names {
		s := byName[n]
		s.listed = true
		g.Go(func() error {
			v, err := a.Verify(gctx, s, pub)
			if err != nil {
				return err
			}
			verdicts[i] = v
			if progress != nil {
				progMu.Lock()
				progress(v)
				progMu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	rep.Sessions = verdicts
	for _, v := range verdicts {
		for _, m := range v.manifests {
			check(m.replica, m.epoch).manifests[m.seq] = m
		}
	}
	for _, s := range byName {
		for _, c := range s.Chains {
			if m := c.Manifest; m != nil && m.Version >= 2 && c.manifestKey != "" && c.Entry == nil &&
				(time.Since(m.Ended) > a.grace || !lastWritten[[2]string{m.Replica, m.Epoch}].Before(m.Ended)) {
				day := dayOf(m.Started)
				if recDays[day] == nil {
					recDays[day] = map[string]int{}
				}
				recDays[day][m.Replica]++
			}
		}
	}
	for day, reps := range recDays {
		for r, n := range reps {
			if !indexedDays[day][r] {
				rep.Days = append(rep.Days, fmt.Sprintf("day %s replica %s: %d closed chain(s) in storage but no index part (index deleted?)", day, r, n))
			}
		}
	}
	slices.Sort(rep.Days)
	for k, rc := range replicas {
		rep.Replicas = append(rep.Replicas, rc.verdict(k[0], k[1]))
	}
	slices.SortFunc(rep.Replicas, func(x, y ReplicaVerdict) int {
		return cmp.Or(cmp.Compare(x.Replica, y.Replica), cmp.Compare(x.Epoch, y.Epoch))
	})
	return rep, nil
}

type replicaCheck struct {
	manifests map[uint64]manifestLink
	parts     map[uint64]*partObj
	indexed   map[uint64]*IndexEntry // manifest seq → entry
}

func (rc *replicaCheck) verdict(replica, epoch string) ReplicaVerdict {
	v := ReplicaVerdict{Replica: replica, Epoch: epoch, Manifests: len(rc.manifests), Parts: len(rc.parts)}
	// Manifests: 1..max, each naming its predecessor.
	var last uint64
	for n := range rc.manifests {
		last = max(last, n)
	}
	for n := range rc.indexed {
		last = max(last, n)
	}
	for n := uint64(1); n <= last; n++ {
		m, ok := rc.manifests[n]
		if !ok {
			from := n
			for n+1 <= last && !has(rc.manifests, n+1) {
				n++
			}
			v.Problems = append(v.Problems, rc.missingManifests(from, n))
			continue
		}
		if p, ok := rc.manifests[n-1]; ok && m.prev != p.sum {
			v.Problems = append(v.Problems, fmt.Sprintf("manifest %d (session %s) does not follow manifest %d (session %s): one was replaced", n, m.session, n-1, p.session))
		}
	}
	// Index parts: 1..max, each naming its predecessor; a gap is a period of time.
	var lastPart uint64
	for n := range rc.parts {
		lastPart = max(lastPart, n)
	}
	for n := uint64(1); n <= lastPart; n++ {
		o, ok := rc.parts[n]
		if !ok {
			from := n
			for n+1 <= lastPart && rc.parts[n+1] == nil {
				n++
			}
			after := rc.parts[n+1].part
			when := "before " + after.Written.UTC().Format(time.RFC3339)
			if before := rc.parts[from-1]; before != nil {
				when = "between " + before.part.Written.UTC().Format(time.RFC3339) + " and " + after.Written.UTC().Format(time.RFC3339)
			}
			v.Problems = append(v.Problems, fmt.Sprintf("index part(s) %s missing: what was indexed %s is unaccounted for (a gap in time)", span(from, n), when))
			continue
		}
		if p := rc.parts[n-1]; p != nil && o.part.Prev != p.sum {
			v.Problems = append(v.Problems, fmt.Sprintf("index part %d does not follow part %d: one was replaced", n, n-1))
		}
	}
	return v
}

func (rc *replicaCheck) missingManifests(from, to uint64) string {
	var named []string
	for n := from; n <= to; n++ {
		if e := rc.indexed[n]; e != nil {
			named = append(named, fmt.Sprintf("%d (session %s chain %s)", n, e.Session, e.Chain))
		}
	}
	if len(named) > 0 && uint64(len(named)) == to-from+1 {
		return "manifest(s) missing: " + strings.Join(named, ", ")
	}
	when := ""
	if p, ok := rc.manifests[from-1]; ok {
		when = " after the one closed " + p.ended.UTC().Format(time.RFC3339)
	}
	if n, ok := rc.manifests[to+1]; ok {
		when += " before the one closed " + n.ended.UTC().Format(time.RFC3339)
	}
	msg := fmt.Sprintf("manifest(s) %s missing%s", span(from, to), when)
	if len(named) > 0 {
		msg += ": " + strings.Join(named, ", ")
	}
	return msg
}

func has[V any](m map[uint64]V, k uint64) bool { _, ok := m[k]; return ok }

func span(from, to uint64) string {
	if from == to {
		return fmt.Sprint(from)
	}
	return fmt.Sprintf("%d-%d", from, to)
}
