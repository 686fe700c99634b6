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
)

// Archive reads recordings back from a sink: listing, replay and verification.
type Archive struct {
	sink   Sink
	prefix string
}

// NewArchive reads the recordings stored under prefix in sink.
func NewArchive(sink Sink, prefix string) *Archive { return &Archive{sink: sink, prefix: prefix} }

// Session is one recorded session: the chains its replicas wrote.
type Session struct {
	Name   string
	Chains []*Chain
}

// Chain is one replica's chain of a session as found in storage.
type Chain struct {
	ID       string
	Dir      string // key prefix of the chain's objects
	Segments map[int]string
	// Manifest is decoded without checking the signature (listing); nil when absent or unreadable.
	Manifest    *Manifest
	manifestKey string
}

// Sessions lists every session in storage, sorted by name.
func (a *Archive) Sessions(ctx context.Context) ([]*Session, error) {
	keys, err := a.sink.List(ctx, a.prefix)
	if err != nil {
		return nil, err
	}
	byName := map[string]*Session{}
	chains := map[string]*Chain{}
	for _, k := range keys {
		ok, valid := ParseKey(a.prefix, k)
		if !valid {
			continue
		}
		dir := k[:strings.LastIndexByte(k, '/')]
		c := chains[dir]
		if c == nil {
			c = &Chain{ID: ok.Chain, Dir: dir, Segments: map[int]string{}}
			chains[dir] = c
			s := byName[ok.Session]
			if s == nil {
				s = &Session{Name: ok.Session}
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
		for _, c := range s.Chains {
			if c.manifestKey != "" {
				if data, err := a.sink.Get(ctx, c.manifestKey); err == nil {
					c.Manifest, _ = ParseManifest(data, nil)
				} else if !errors.Is(err, ErrNotFound) {
					return nil, err
				}
			}
		}
		slices.SortFunc(s.Chains, func(x, y *Chain) int { return cmp.Compare(x.ID, y.ID) })
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y *Session) int { return cmp.Compare(x.Name, y.Name) })
	return out, nil
}

// Find returns one session, or an error wrapping [ErrNotFound].
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

// Verdict is the outcome of verifying one session.
type Verdict struct {
	Session  string
	Chains   int
	Segments int
	Events   int
	Problems []string // empty when the session verifies
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
// hash), and that storage holds no segment the manifest does not list.
func (a *Archive) Verify(ctx context.Context, s *Session, pub ed25519.PublicKey) (Verdict, error) {
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
	if m.Session != session || m.Chain != c.ID {
		probs = append(probs, "manifest names another session or chain")
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
