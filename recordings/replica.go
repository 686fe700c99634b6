package recordings

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Index parts are sealed at this many entries, this many encoded bytes, or when the
// oldest pending entry is older than segment.max_age.
const (
	indexPartEntries = 1000
	indexPartBytes   = 1 << 20
)

// replicaState is replica.json in the spool: where this replica's chains of manifests
// and of index parts stand. It is written after every manifest and part (fsynced).
type replicaState struct {
	Epoch        string `json:"epoch"`
	ManifestSeq  uint64 `json:"manifest_seq"`
	ManifestPrev string `json:"manifest_prev"`
	PartSeq      uint64 `json:"part_seq"`
	PartPrev     string `json:"part_prev"`
}

func (r *Recorder) replicaFile() string { return filepath.Join(r.cfg.Spool.Dir, "replica.json") }
func (r *Recorder) indexFile() string   { return filepath.Join(r.cfg.Spool.Dir, "index.jsonl") }

// loadReplica reads the replica state and the index entries not yet sealed into a part;
// a spool without state starts a new epoch.
func (r *Recorder) loadReplica() error {
	data, err := os.ReadFile(r.replicaFile())
	switch {
	case errors.Is(err, os.ErrNotExist):
		r.rs = replicaState{Epoch: epochName(time.Now())}
		if err := r.saveReplica(); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("read replica state: %w", err)
	default:
		if err := json.Unmarshal(data, &r.rs); err != nil || r.rs.Epoch == "" {
			return fmt.Errorf("replica state %s unreadable; move it away to start a new epoch", r.replicaFile())
		}
	}
	pending, err := os.ReadFile(r.indexFile())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read pending index: %w", err)
	}
	for _, line := range bytes.Split(pending, []byte("\n")) {
		var e IndexEntry
		if len(line) == 0 || json.Unmarshal(line, &e) != nil {
			continue // a torn last line: its manifest is re-created by recovery
		}
		r.addIndexEntry(e, len(line))
	}
	return nil
}

func (r *Recorder) saveReplica() error {
	b, _ := json.Marshal(r.rs)
	if err := writeFileSync(r.replicaFile(), b, 0o600); err != nil {
		return fmt.Errorf("write replica state: %w", err)
	}
	return nil
}

// addIndexEntry adds e to the pending part, replacing an entry for the same chain (a
// manifest written again after a crash between writing it and recording the state).
func (r *Recorder) addIndexEntry(e IndexEntry, size int) {
	if i := slices.IndexFunc(r.idx, func(x IndexEntry) bool { return x.Session == e.Session && x.Chain == e.Chain }); i >= 0 {
		r.idx[i] = e
		return
	}
	if len(r.idx) == 0 {
		r.idxSince = time.Now()
	}
	r.idx = append(r.idx, e)
	r.idxBytes += size
}

// signChained links m to the replica's previous manifest and signs it. Sealer only.
func (r *Recorder) signChained(m *Manifest) ([]byte, error) {
	m.Version = manifestVersion
	m.Epoch = r.rs.Epoch
	m.ReplicaSeq = r.rs.ManifestSeq + 1
	m.PrevManifest = r.rs.ManifestPrev
	return signManifest(m, r.key)
}

// indexManifest records a manifest just put in the outbox: its index entry goes to the
// pending part and the replica state advances. Sealer only.
func (r *Recorder) indexManifest(m *Manifest, data []byte) error {
	sum := hashHex(data)
	e := IndexEntry{
		Session: m.Session, MCPSessionID: m.MCPSessionID, Chain: m.Chain, Started: m.Started, Ended: m.Ended,
		Events: m.Events, Segments: len(m.Segments), Recovered: m.Recovered, Identity: m.Identity, Facets: m.Facets,
		Manifest: sum, ManifestSeq: m.ReplicaSeq,
	}
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode index entry: %w", err)
	}
	f, err := os.OpenFile(r.indexFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open pending index: %w", err)
	}
	_, werr := f.Write(append(line, '\n'))
	serr := f.Sync()
	if cerr := f.Close(); werr == nil && serr == nil {
		serr = cerr
	}
	if err := errors.Join(werr, serr); err != nil {
		return fmt.Errorf("append pending index: %w", err)
	}
	r.addIndexEntry(e, len(line))
	r.rs.ManifestSeq, r.rs.ManifestPrev = m.ReplicaSeq, sum
	return r.saveReplica()
}

// sealIndex writes the pending entries as signed index parts (one per start day)
// when the part is full or old enough, or always with force. Sealer only.
func (r *Recorder) sealIndex(force bool) error {
	if len(r.idx) == 0 {
		return nil
	}
	if !force && len(r.idx) < indexPartEntries && r.idxBytes < indexPartBytes && time.Since(r.idxSince) < r.cfg.Segment.MaxAge {
		return nil
	}
	byDay := map[string][]IndexEntry{}
	for _, e := range r.idx {
		d := e.Started.UTC().Format(time.DateOnly)
		byDay[d] = append(byDay[d], e)
	}
	days := make([]string, 0, len(byDay))
	for d := range byDay {
		days = append(days, d)
	}
	slices.Sort(days)
	for _, d := range days {
		p := &IndexPart{
			Version: indexPartVersion, Replica: r.cfg.ReplicaID, Epoch: r.rs.Epoch,
			Seq: r.rs.PartSeq + 1, Prev: r.rs.PartPrev, Day: d, Written: time.Now().UTC(), Entries: byDay[d],
		}
		obj, sum, err := SignIndexPart(p, r.key)
		if err != nil {
			return err
		}
		if err := r.enqueue(indexPartKey(r.cfg.Sink.Prefix, p), obj, "idx"); err != nil {
			return err
		}
		r.rs.PartSeq, r.rs.PartPrev = p.Seq, sum
		if err := r.saveReplica(); err != nil {
			return err
		}
	}
	r.idx, r.idxBytes = nil, 0
	if err := os.Remove(r.indexFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove pending index: %w", err)
	}
	return nil
}
