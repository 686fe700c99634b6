package recordings

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// ReindexResult counts what [Archive.Reindex] did.
type ReindexResult struct {
	Days, Indexed, Parts int
	// Skipped names manifests left out: unreadable or not signed by the key.
	Skipped []string
}

// Reindex adds to the index every closed chain of the days in q's range that no index
// part lists, from its manifest (which must verify with key's public half), and writes
// them as signed parts of a new epoch marked rebuilt. Parts already stored are kept: a
// gap they leave in their replica's chain stays visible to verify.
func (a *Archive) Reindex(ctx context.Context, key ed25519.PrivateKey, q Query, now time.Time) (*ReindexResult, error) {
	pub, _ := key.Public().(ed25519.PublicKey)
	days, err := a.days(ctx, a.base())
	if err != nil {
		return nil, err
	}
	res := &ReindexResult{}
	epoch := "rebuilt-" + epochName(now)
	seqs := map[string]uint64{} // replica → last part written
	prevs := map[string]string{}
	for _, day := range days {
		if !q.inDays(day) {
			continue
		}
		objs, err := a.dayParts(ctx, day)
		if err != nil {
			return nil, err
		}
		listed := map[[2]string]bool{}
		for _, o := range objs {
			p := o.get()
			if p == nil {
				continue
			}
			for _, e := range p.Entries {
				listed[[2]string{e.Session, e.Chain}] = true
			}
		}
		keys, err := a.sink.List(ctx, a.base()+splitDay(day)+"/")
		if err != nil {
			return nil, err
		}
		var todo []string
		for _, k := range keys {
			if ok, valid := ParseKey(a.prefix, k); valid && ok.Manifest && !listed[[2]string{ok.Session, ok.Chain}] {
				todo = append(todo, k)
			}
		}
		if len(todo) == 0 {
			continue
		}
		res.Days++
		entries := make([]*IndexEntry, len(todo))
		skipped := make([]string, len(todo))
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(readers)
		for i, k := range todo {
			g.Go(func() error {
				data, err := a.sink.Get(gctx, k)
				if errors.Is(err, ErrNotFound) {
					return nil
				}
				if err != nil {
					return err
				}
				m, err := ParseManifest(data, pub)
				if err != nil {
					skipped[i] = fmt.Sprintf("%s: %v", k, err)
					return nil
				}
				if ok, _ := ParseKey(a.prefix, k); m.Session != ok.Session || m.Chain != ok.Chain {
					skipped[i] = k + ": manifest names another session or chain"
					return nil
				}
				entries[i] = &IndexEntry{
					Session: m.Session, MCPSessionID: m.MCPSessionID, Chain: m.Chain, Started: m.Started, Ended: m.Ended,
					Events: m.Events, Segments: len(m.Segments), Recovered: m.Recovered, Identity: m.Identity, Facets: m.Facets,
					Manifest: hashHex(data), ManifestSeq: m.ReplicaSeq,
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		for _, s := range skipped {
			if s != "" {
				res.Skipped = append(res.Skipped, s)
			}
		}
		byReplica := map[string][]IndexEntry{}
		for _, e := range entries {
			if e != nil {
				r, _, _ := strings.Cut(e.Chain, "~")
				byReplica[r] = append(byReplica[r], *e)
			}
		}
		replicas := make([]string, 0, len(byReplica))
		for r := range byReplica {
			replicas = append(replicas, r)
		}
		slices.Sort(replicas)
		for _, r := range replicas {
			list := byReplica[r]
			for len(list) > 0 {
				n := min(len(list), indexPartEntries)
				p := &IndexPart{
					Version: indexPartVersion, Replica: r, Epoch: epoch, Seq: seqs[r] + 1, Prev: prevs[r],
					Day: day, Written: now.UTC(), Rebuilt: true, Entries: list[:n],
				}
				obj, sum, err := SignIndexPart(p, key)
				if err != nil {
					return nil, err
				}
				if err := a.sink.Put(ctx, indexPartKey(a.prefix, p), obj); err != nil {
					return nil, err
				}
				seqs[r], prevs[r] = p.Seq, sum
				res.Parts++
				res.Indexed += n
				list = list[n:]
			}
		}
		a.mu.Lock()
		delete(a.parts, day) // read again with the new parts
		a.mu.Unlock()
	}
	return res, nil
}
