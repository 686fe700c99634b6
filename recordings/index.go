package recordings

import (
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"
)

// The index: each replica writes signed index parts next to the recordings, at
// PREFIX/index/YYYY/MM/DD/REPLICA/EPOCH-NNNNNNNNNN.json.gz, where the date is the start
// day (UTC) of the chains the part lists. A replica's parts form a chain of their own
// (Seq, Prev) across days, so a part deleted from storage, and with it a period of time,
// is a visible gap; each entry names its manifest by hash and position, so a chain or a
// whole session deleted from storage is named by the index.

// indexDir is the key element under the prefix that holds the index.
const indexDir = "index"

// maxIndexPart bounds a decompressed index part read back from storage.
const maxIndexPart = 64 << 20

// indexPartVersion is the version of the index part format.
const indexPartVersion = 1

// IndexEntry lists one closed chain.
type IndexEntry struct {
	Session      string    `json:"session"`
	MCPSessionID string    `json:"mcp_session_id,omitempty"`
	Chain        string    `json:"chain"`
	Started      time.Time `json:"started"`
	Ended        time.Time `json:"ended"`
	Events       int       `json:"events"`
	Segments     int       `json:"segments"`
	Recovered    bool      `json:"recovered,omitempty"`
	Identity     *Identity `json:"identity,omitempty"`
	Facets
	// Manifest is the hex SHA-256 of the chain's manifest object.
	Manifest string `json:"manifest"`
	// ManifestSeq is the manifest's position in its replica's epoch (0 for version 1 manifests).
	ManifestSeq uint64 `json:"manifest_seq,omitempty"`
}

// IndexPart is one signed object of a replica's index.
type IndexPart struct {
	Version int    `json:"version"`
	Replica string `json:"replica"`
	// Epoch names the replica's run of parts (see [Manifest.Epoch]); a rebuilt index has its own.
	Epoch string `json:"epoch"`
	// Seq is the part's position in the replica's epoch, from 1; Prev is the hex SHA-256
	// of the previous part object ("" for the first).
	Seq     uint64    `json:"seq"`
	Prev    string    `json:"prev"`
	Day     string    `json:"day"` // YYYY-MM-DD, the start day of the chains listed
	Written time.Time `json:"written"`
	// Rebuilt marks a part written by `mcpguard recordings reindex` from the manifests.
	Rebuilt bool         `json:"rebuilt,omitempty"`
	Entries []IndexEntry `json:"entries"`
}

// signedPart is the stored index part before compression.
type signedPart struct {
	Part      json.RawMessage `json:"part"`
	KeyID     string          `json:"key_id"`
	Signature string          `json:"signature"`
}

// SignIndexPart encodes, signs and compresses p; it returns the object and its hex SHA-256.
func SignIndexPart(p *IndexPart, key ed25519.PrivateKey) ([]byte, string, error) {
	body, err := json.Marshal(p)
	if err != nil {
		return nil, "", fmt.Errorf("encode index part: %w", err)
	}
	pub, _ := key.Public().(ed25519.PublicKey)
	raw, err := json.Marshal(signedPart{Part: body, KeyID: KeyID(pub), Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(key, body))})
	if err != nil {
		return nil, "", fmt.Errorf("encode index part: %w", err)
	}
	obj, sum, err := seal(raw)
	if err != nil {
		return nil, "", fmt.Errorf("compress index part: %w", err)
	}
	return obj, sum, nil
}

// ParseIndexPart decodes a stored index part. With a non-nil pub the signature must verify
// ([ErrSignature] otherwise); with nil it is only decoded.
func ParseIndexPart(data []byte, pub ed25519.PublicKey) (*IndexPart, error) {
	plain, err := inflateIndexPart(data)
	if err != nil {
		return nil, err
	}
	return decodeIndexPart(plain, pub)
}

// inflateIndexPart decompresses a stored part, bounded.
func inflateIndexPart(data []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("open index part: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, maxIndexPart+1))
	if err != nil {
		return nil, fmt.Errorf("decompress index part: %w", err)
	}
	if len(raw) > maxIndexPart {
		return nil, errors.New("index part too large")
	}
	return raw, nil
}

func decodeIndexPart(raw []byte, pub ed25519.PublicKey) (*IndexPart, error) {
	var s signedPart
	if err := strictJSON(raw, &s); err != nil {
		return nil, fmt.Errorf("decode index part: %w", err)
	}
	if pub != nil {
		sig, err := base64.StdEncoding.DecodeString(s.Signature)
		if err != nil || !ed25519.Verify(pub, s.Part, sig) {
			return nil, ErrSignature
		}
	}
	var p IndexPart
	if err := strictJSON(s.Part, &p); err != nil {
		return nil, fmt.Errorf("decode index part body: %w", err)
	}
	if p.Version != indexPartVersion {
		return nil, fmt.Errorf("index part version %d not supported", p.Version)
	}
	if _, err := time.Parse(time.DateOnly, p.Day); err != nil {
		return nil, fmt.Errorf("index part day %q: not YYYY-MM-DD", p.Day)
	}
	if !safeID.MatchString(p.Replica) || p.Seq == 0 {
		return nil, errors.New("index part names no replica or position")
	}
	for _, e := range p.Entries {
		if !safeID.MatchString(e.Session) || e.Session == "." || e.Session == ".." || !strings.Contains(e.Chain, "~") || strings.Contains(e.Chain, "/") {
			return nil, fmt.Errorf("index entry %q/%q: not a session and chain name", e.Session, e.Chain)
		}
	}
	return &p, nil
}

// epochName is the compact form of an epoch used in keys.
func epochName(t time.Time) string { return t.UTC().Format("20060102T150405.000000000Z") }

// indexPartKey is where a part is stored.
func indexPartKey(prefix string, p *IndexPart) string {
	day := strings.ReplaceAll(p.Day, "-", "/")
	return path.Join(prefix, indexDir, day, p.Replica, fmt.Sprintf("%s-%010d.json.gz", p.Epoch, p.Seq))
}

// parseIndexKey reports whether key is an index part key under prefix, and its day.
func parseIndexKey(prefix, key string) (day string, ok bool) {
	p := path.Join(prefix, indexDir) + "/"
	if !strings.HasPrefix(key, p) {
		return "", false
	}
	parts := strings.Split(key[len(p):], "/")
	if len(parts) != 5 || !strings.HasSuffix(parts[4], ".json.gz") {
		return "", false
	}
	for _, d := range parts[:3] {
		if _, err := strconv.Atoi(d); err != nil {
			return "", false
		}
	}
	return strings.Join(parts[:3], "-"), true
}

// entryDir is the key prefix of the chain an entry lists.
func entryDir(prefix string, e *IndexEntry) string {
	return chainPrefix(prefix, e.Started, e.Session, e.Chain)
}
