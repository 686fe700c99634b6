package recordings

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// FullPolicy is what happens when the spool reaches its size bound.
type FullPolicy string

// Spool full policies.
const (
	// FailClosed refuses new requests until uploads make room.
	FailClosed FullPolicy = "fail_closed"
	// DropOldest deletes the oldest sealed segments not yet uploaded, with a metric and an error log.
	DropOldest FullPolicy = "drop_oldest"
)

// Validate reports an unknown policy.
func (p FullPolicy) Validate() error {
	switch p {
	case FailClosed, DropOldest:
		return nil
	}
	return fmt.Errorf("%q is not fail_closed or drop_oldest", string(p))
}

// Config configures recording.
type Config struct {
	Enabled bool `yaml:"enabled"`
	// ReplicaID names this replica's chains; defaults to the hostname.
	ReplicaID string `yaml:"replica_id"`
	// SigningKeyFile is a PEM (PKCS#8) Ed25519 private key that signs manifests. The
	// service creates it on first use when missing; production configures and backs it up.
	SigningKeyFile string `yaml:"signing_key_file"`
	// PublicKey (base64, 32 bytes) verifies manifests; empty uses the signing key's.
	PublicKey   string        `yaml:"public_key"`
	IdleTimeout time.Duration `yaml:"session_idle_timeout"`
	Spool       SpoolConfig   `yaml:"spool"`
	Segment     SegmentConfig `yaml:"segment"`
	Upload      UploadConfig  `yaml:"upload"`
	Sink        SinkConfig    `yaml:"sink"`
	// Arguments is how request arguments are recorded: masked, and optionally sealed.
	Arguments ArgumentsConfig `yaml:"arguments"`
	// Web is the web replay on the admin port.
	Web WebConfig `yaml:"web"`
}

// SpoolConfig is the local durable spool.
type SpoolConfig struct {
	Dir string `yaml:"dir"` // empty: DATA_DIR/spool, filled in by the service

	MaxBytes int64      `yaml:"max_bytes"`
	OnFull   FullPolicy `yaml:"on_full"`
	// Sync is when an exchange counts as recorded: always (fsynced before the final answer) or
	// interval (written to the operating system before the final answer, fsynced every
	// SyncInterval: a crash of mcpguard loses nothing, a crash of the machine at most the
	// last SyncInterval).
	Sync         SyncMode      `yaml:"sync"`
	SyncInterval time.Duration `yaml:"sync_interval"`
}

// SyncMode is when the spool is fsynced.
type SyncMode string

// Sync modes.
const (
	SyncAlways   SyncMode = "always"
	SyncInterval SyncMode = "interval"
)

// Validate reports an unknown mode.
func (m SyncMode) Validate() error {
	switch m {
	case SyncAlways, SyncInterval:
		return nil
	}
	return fmt.Errorf("%q is not always or interval", string(m))
}

// SegmentConfig is when a segment is sealed.
type SegmentConfig struct {
	MaxBytes int64         `yaml:"max_bytes"` // uncompressed
	MaxAge   time.Duration `yaml:"max_age"`
}

// UploadConfig is the retry backoff while storage is unavailable.
type UploadConfig struct {
	MinBackoff time.Duration `yaml:"min_backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// SinkConfig selects and configures where segments are stored.
type SinkConfig struct {
	Type   string    `yaml:"type"` // dir or s3
	Prefix string    `yaml:"prefix"`
	Dir    DirConfig `yaml:"dir"`
	S3     S3Config  `yaml:"s3"`
}

// DirConfig is the directory sink.
type DirConfig struct {
	Path string `yaml:"path"` // empty: DATA_DIR/recordings, filled in by the service
}

// S3Config is an S3-compatible bucket. Credentials left empty come from the standard
// environment (AWS_ACCESS_KEY_ID…, shared credentials file, instance role).
type S3Config struct {
	Endpoint     string     `yaml:"endpoint"` // host[:port]
	Region       string     `yaml:"region"`
	Bucket       string     `yaml:"bucket"`
	PathStyle    bool       `yaml:"path_style"`
	Insecure     bool       `yaml:"insecure"` // plain HTTP (tests, local gateways)
	AccessKey    string     `yaml:"access_key"`
	SecretKey    string     `yaml:"secret_key"`
	SessionToken string     `yaml:"session_token"`
	ObjectLock   ObjectLock `yaml:"object_lock"`
	// SSE is server-side encryption: "" (bucket default), "s3" (SSE-S3) or "kms".
	SSE      string `yaml:"sse"`
	KMSKeyID string `yaml:"kms_key_id"`
}

// ObjectLock is the retention applied to every object; empty Mode disables it.
type ObjectLock struct {
	Mode string `yaml:"mode"` // GOVERNANCE or COMPLIANCE
	Days int    `yaml:"days"`
}

// DefaultConfig returns recording on, to a local directory, with this host's replica id.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		Enabled:     true,
		ReplicaID:   sanitize(host),
		IdleTimeout: 5 * time.Minute,
		Spool:       SpoolConfig{MaxBytes: 1 << 30, OnFull: FailClosed, Sync: SyncAlways, SyncInterval: 50 * time.Millisecond},
		Segment:     SegmentConfig{MaxBytes: 4 << 20, MaxAge: time.Minute},
		Upload:      UploadConfig{MinBackoff: 200 * time.Millisecond, MaxBackoff: 30 * time.Second},
		Sink:        SinkConfig{Type: "dir"},
		Arguments:   ArgumentsConfig{Mask: true},
	}
}

// isKeySafe reports whether c may appear unchanged in an object key segment.
func isKeySafe(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !isKeySafe(c) {
			b[i] = '-'
		}
	}
	if len(b) == 0 {
		return "replica"
	}
	return string(b)
}

// Validate reports every problem, each prefixed with its field path.
func (c Config) Validate() error {
	var errs []error
	add := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	if !safeID.MatchString(c.ReplicaID) || strings.Contains(c.ReplicaID, "~") {
		add("replica_id: %q must be 1-128 of A-Z a-z 0-9 . _ -", c.ReplicaID)
	}
	if c.PublicKey != "" {
		if _, err := ParsePublicKey(c.PublicKey); err != nil {
			add("public_key: %w", err)
		}
	}
	if c.IdleTimeout <= 0 {
		add("session_idle_timeout: must be positive")
	}
	if c.Spool.MaxBytes < 1<<20 {
		add("spool.max_bytes: must be at least 1MiB")
	}
	if err := c.Spool.OnFull.Validate(); err != nil {
		add("spool.on_full: %w", err)
	}
	if err := c.Spool.Sync.Validate(); err != nil {
		add("spool.sync: %w", err)
	}
	if c.Spool.SyncInterval < time.Millisecond || c.Spool.SyncInterval > 10*time.Second {
		add("spool.sync_interval: must be between 1ms and 10s")
	}
	if c.Segment.MaxBytes < 1<<10 {
		add("segment.max_bytes: must be at least 1KiB")
	}
	if c.Segment.MaxAge <= 0 {
		add("segment.max_age: must be positive")
	}
	if c.Upload.MinBackoff <= 0 || c.Upload.MaxBackoff < c.Upload.MinBackoff {
		add("upload: min_backoff must be positive and max_backoff at least min_backoff")
	}
	if strings.HasPrefix(c.Sink.Prefix, "/") || strings.Contains(c.Sink.Prefix, "..") {
		add("sink.prefix: %q must be relative without ..", c.Sink.Prefix)
	}
	errs = append(errs, c.Arguments.validate()...)
	errs = append(errs, c.Web.validate()...)
	switch c.Sink.Type {
	case "dir":
	case "s3":
		errs = append(errs, c.Sink.S3.validate()...)
	default:
		add("sink.type: %q is not dir or s3", c.Sink.Type)
	}
	return errors.Join(errs...)
}

func (s S3Config) validate() []error {
	var errs []error
	if s.Endpoint == "" || strings.Contains(s.Endpoint, "/") {
		errs = append(errs, fmt.Errorf("sink.s3.endpoint: %q must be host[:port]", s.Endpoint))
	}
	if s.Bucket == "" {
		errs = append(errs, errors.New("sink.s3.bucket: required"))
	}
	if (s.AccessKey == "") != (s.SecretKey == "") {
		errs = append(errs, errors.New("sink.s3: access_key and secret_key go together"))
	}
	switch s.ObjectLock.Mode {
	case "":
	case "GOVERNANCE", "COMPLIANCE":
		if s.ObjectLock.Days <= 0 {
			errs = append(errs, errors.New("sink.s3.object_lock.days: must be positive"))
		}
	default:
		errs = append(errs, fmt.Errorf("sink.s3.object_lock.mode: %q is not GOVERNANCE or COMPLIANCE", s.ObjectLock.Mode))
	}
	switch s.SSE {
	case "", "s3":
	case "kms":
		if s.KMSKeyID == "" {
			errs = append(errs, errors.New("sink.s3.kms_key_id: required with sse kms"))
		}
	default:
		errs = append(errs, fmt.Errorf("sink.s3.sse: %q is not s3 or kms", s.SSE))
	}
	return errs
}

// ParsePublicKey decodes a base64 Ed25519 public key.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("not a base64 Ed25519 public key (32 bytes)")
	}
	return ed25519.PublicKey(b), nil
}
