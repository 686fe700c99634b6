package recordings

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"
)

// maxSegment bounds a decompressed segment read back from storage (gzip bombs).
const maxSegment = 64 << 20

// ErrSignature reports a manifest whose signature does not verify with the given key.
var ErrSignature = errors.New("manifest signature invalid")

// Header is the first line of every segment: it binds the segment to its session, chain
// and position, and to the previous segment by hash.
type Header struct {
	Type    string    `json:"type"` // always "segment"
	Session string    `json:"session"`
	Chain   string    `json:"chain"`
	Seq     int       `json:"seq"`
	Prev    string    `json:"prev"` // hex SHA-256 of the previous segment object, "" for the first
	Created time.Time `json:"created"`
}

// SegmentRef is a manifest's entry for one segment.
type SegmentRef struct {
	Seq    int    `json:"seq"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	Events int    `json:"events"`
}

// Manifest closes a chain: it lists every segment hash and is signed with Ed25519.
// From version 2 the manifests of a replica form a chain of their own (ReplicaSeq,
// PrevManifest), so a chain or session deleted from storage leaves a visible gap.
type Manifest struct {
	Version      int       `json:"version"`
	Session      string    `json:"session"`
	MCPSessionID string    `json:"mcp_session_id,omitempty"`
	Chain        string    `json:"chain"`
	Replica      string    `json:"replica"`
	Started      time.Time `json:"started"`
	Ended        time.Time `json:"ended"`
	Recovered    bool      `json:"recovered,omitempty"` // closed after a crash
	Events       int       `json:"events"`
	Identity     *Identity `json:"identity,omitempty"`
	Facets
	Segments []SegmentRef `json:"segments"`
	// Epoch names the replica's run of manifests: it starts when the replica's spool is
	// created (a lost spool starts a new epoch).
	Epoch string `json:"epoch,omitempty"`
	// ReplicaSeq is the manifest's position in its replica's epoch, from 1.
	ReplicaSeq uint64 `json:"replica_seq,omitempty"`
	// PrevManifest is the hex SHA-256 of the replica's previous manifest object ("" for the first).
	PrevManifest string `json:"prev_manifest,omitempty"`
}

// manifestVersion is the version written; version 1 (no replica chain) is still read.
const manifestVersion = 2

// signed is the stored manifest.json: the exact manifest bytes and their signature.
type signed struct {
	Manifest  json.RawMessage `json:"manifest"`
	KeyID     string          `json:"key_id"`
	Signature string          `json:"signature"`
}

func signManifest(m *Manifest, key ed25519.PrivateKey) ([]byte, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	pub, _ := key.Public().(ed25519.PublicKey)
	return json.Marshal(signed{
		Manifest:  body,
		KeyID:     KeyID(pub),
		Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(key, body)),
	})
}

// ParseManifest decodes a stored manifest. With a non-nil pub the signature must verify
// ([ErrSignature] otherwise); with nil it is only decoded (listing).
func ParseManifest(data []byte, pub ed25519.PublicKey) (*Manifest, error) {
	var s signed
	if err := strictJSON(data, &s); err != nil {
		return nil, fmt.Errorf("decode manifest: %w", err)
	}
	if pub != nil {
		sig, err := base64.StdEncoding.DecodeString(s.Signature)
		if err != nil || !ed25519.Verify(pub, s.Manifest, sig) {
			return nil, ErrSignature
		}
	}
	var m Manifest
	if err := strictJSON(s.Manifest, &m); err != nil {
		return nil, fmt.Errorf("decode manifest body: %w", err)
	}
	if m.Version != 1 && m.Version != manifestVersion {
		return nil, fmt.Errorf("manifest version %d not supported", m.Version)
	}
	return &m, nil
}

func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

// seal compresses the JSON Lines of a segment deterministically and returns the object
// and its hex SHA-256.
func seal(lines []byte) ([]byte, string, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return nil, "", err
	}
	if _, err := zw.Write(lines); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), hashHex(buf.Bytes()), nil
}

func hashHex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// ParseSegment decodes a stored segment (gzip JSON Lines: a [Header], then events).
func ParseSegment(data []byte) (Header, []Event, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return Header{}, nil, fmt.Errorf("open segment: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, maxSegment+1))
	if err != nil {
		return Header{}, nil, fmt.Errorf("decompress segment: %w", err)
	}
	if len(raw) > maxSegment {
		return Header{}, nil, errors.New("segment too large")
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, maxSegment)
	var h Header
	var evs []Event
	for n := 0; sc.Scan(); n++ {
		if n == 0 {
			if err := strictJSON(sc.Bytes(), &h); err != nil || h.Type != "segment" {
				return Header{}, nil, errors.New("segment header missing or malformed")
			}
			continue
		}
		var ev Event
		if err := strictJSON(sc.Bytes(), &ev); err != nil {
			return Header{}, nil, fmt.Errorf("segment line %d: %w", n+1, err)
		}
		evs = append(evs, ev)
	}
	if err := sc.Err(); err != nil {
		return Header{}, nil, fmt.Errorf("read segment: %w", err)
	}
	if h.Type == "" {
		return Header{}, nil, errors.New("segment empty")
	}
	return h, evs, nil
}

// Key layout: PREFIX/YYYY/MM/DD/SESSION/CHAIN/NNNNNN.jsonl.gz and .../CHAIN/manifest.json,
// where CHAIN is REPLICA~START and the date is the chain's start (UTC).

// chainID names a replica's chain of a session.
func chainID(replica string, started time.Time) string {
	return replica + "~" + started.UTC().Format("20060102T150405.000000000Z")
}

func chainPrefix(prefix string, started time.Time, session, chain string) string {
	return path.Join(prefix, started.UTC().Format("2006/01/02"), session, chain)
}

func segmentName(seq int) string { return fmt.Sprintf("%06d.jsonl.gz", seq) }

const manifestName = "manifest.json"

// ObjectKey is a parsed storage key.
type ObjectKey struct {
	Day      string // YYYY/MM/DD
	Session  string
	Chain    string
	Seq      int // 0 for the manifest
	Manifest bool
}

// ParseKey splits a key stored under prefix; ok is false for anything else.
func ParseKey(prefix, key string) (ObjectKey, bool) {
	if prefix != "" {
		p := strings.TrimSuffix(prefix, "/") + "/"
		if !strings.HasPrefix(key, p) {
			return ObjectKey{}, false
		}
		key = key[len(p):]
	}
	parts := strings.Split(key, "/")
	if len(parts) != 6 {
		return ObjectKey{}, false
	}
	for _, d := range parts[:3] {
		if _, err := strconv.Atoi(d); err != nil {
			return ObjectKey{}, false
		}
	}
	k := ObjectKey{Day: strings.Join(parts[:3], "/"), Session: parts[3], Chain: parts[4]}
	if !safeID.MatchString(k.Session) || k.Session == "." || k.Session == ".." || !strings.Contains(k.Chain, "~") {
		return ObjectKey{}, false
	}
	switch name := parts[5]; {
	case name == manifestName:
		k.Manifest = true
	case strings.HasSuffix(name, ".jsonl.gz") && len(name) == len("000000.jsonl.gz"):
		n, err := strconv.Atoi(strings.TrimSuffix(name, ".jsonl.gz"))
		if err != nil || n <= 0 {
			return ObjectKey{}, false
		}
		k.Seq = n
	default:
		return ObjectKey{}, false
	}
	return k, true
}
