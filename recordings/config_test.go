package recordings_test

import (
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/recordings"
)

func TestConfigValidate(t *testing.T) {
	x25519, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	hybrid, err := age.GenerateHybridIdentity()
	require.NoError(t, err)
	cases := []struct {
		name string
		edit func(c *recordings.Config)
		want []string
	}{
		{"defaults are valid", func(*recordings.Config) {}, nil},
		{"every problem at once", func(c *recordings.Config) {
			c.ReplicaID = "a/b"
			c.Spool.MaxBytes = 1
			c.Spool.OnFull = "ignore"
			c.Segment.MaxAge = 0
			c.Sink.Type = "ftp"
			c.PublicKey = "nope"
			c.Spool.Sync = "sometimes"
			c.Spool.SyncInterval = time.Minute
		}, []string{"replica_id:", "public_key:", "spool.max_bytes:", "spool.on_full:", "spool.sync:", "spool.sync_interval:", "segment.max_age:", "sink.type:"}},
		{"web replay needs readers", func(c *recordings.Config) { c.Web.Enabled = true }, []string{"web.readers: required"}},
		{"web replay reader names", func(c *recordings.Config) {
			c.Web = recordings.WebConfig{Enabled: true, Readers: []string{"security-team", "", " sec", "a\x00b"}}
		}, []string{"web.readers[1]:", "web.readers[2]:", "web.readers[3]:"}},
		{"s3 fields", func(c *recordings.Config) {
			c.Sink.Type = "s3"
			c.Sink.S3 = recordings.S3Config{Endpoint: "http://x/", AccessKey: "a", ObjectLock: recordings.ObjectLock{Mode: "FOREVER"}, SSE: "kms"}
		}, []string{"sink.s3.endpoint:", "sink.s3.bucket: required", "sink.s3: access_key and secret_key", "sink.s3.object_lock.mode:", "sink.s3.kms_key_id:"}},
		{"object lock needs days", func(c *recordings.Config) {
			c.Sink.Type = "s3"
			c.Sink.S3 = recordings.S3Config{Endpoint: "s3.example:443", Bucket: "b", ObjectLock: recordings.ObjectLock{Mode: "GOVERNANCE"}}
		}, []string{"sink.s3.object_lock.days: must be positive"}},
		{"prefix escaping", func(c *recordings.Config) { c.Sink.Prefix = "../x" }, []string{"sink.prefix:"}},
		{"seal_to recipients", func(c *recordings.Config) {
			c.Arguments.SealTo = []string{"age1notakey", x25519.String(), "ssh-ed25519 AAAA"}
		}, []string{"arguments.seal_to[0]: not a valid age1 X25519", "arguments.seal_to[1]: not an age recipient", "arguments.seal_to[2]: not an age recipient"}},
		{"sealing needs masking", func(c *recordings.Config) {
			c.Arguments = recordings.ArgumentsConfig{Mask: false, SealTo: []string{x25519.Recipient().String()}}
		}, []string{"arguments.seal_to: requires arguments.mask"}},
		{"recipient kinds not mixed", func(c *recordings.Config) {
			c.Arguments.SealTo = []string{x25519.Recipient().String(), hybrid.Recipient().String()}
		}, []string{"arguments.seal_to: age1pq1 and age1 recipients cannot be mixed"}},
		{"hybrid recipients", func(c *recordings.Config) {
			c.Arguments.SealTo = []string{hybrid.Recipient().String()}
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := recordings.DefaultConfig()
			c.edit(&cfg)
			err := cfg.Validate()
			if c.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			lines := strings.Split(err.Error(), "\n")
			require.Len(t, lines, len(c.want), err.Error())
			for i, w := range c.want {
				require.True(t, strings.HasPrefix(lines[i], w), "line %q should start with %q", lines[i], w)
			}
		})
	}
}

// A private key pasted where a recipient goes never reaches the error (and so the log).
func TestConfigSealToSecretNotEchoed(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	cfg := recordings.DefaultConfig()
	cfg.Arguments.SealTo = []string{id.String()}
	err = cfg.Validate()
	require.Error(t, err)
	require.NotContains(t, err.Error(), id.String()[16:])
}

func TestSessionKey(t *testing.T) {
	cases := []struct {
		name, mcp string
		id        *recordings.Identity
		want      string
	}{
		{"safe session id kept", "abc-123_X.y", alice, "abc-123_X.y"},
		{"unsafe session id hashed", "../../etc", alice, "h-"},
		{"dot-dot hashed", "..", alice, "h-"},
		{"stateless grouped by identity", "", alice, "anon-"},
		{"no identity", "", nil, "anon-unverified"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := recordings.SessionKey(c.mcp, c.id, "")
			require.True(t, strings.HasPrefix(got, c.want), got)
			require.NotContains(t, got, "/")
		})
	}
	same := *alice
	require.Equal(t, recordings.SessionKey("", alice, ""), recordings.SessionKey("", &same, ""), "the key depends on the identity, not the pointer")
	require.NotEqual(t, recordings.SessionKey("", alice, ""), recordings.SessionKey("", &recordings.Identity{Subject: "other", Issuer: alice.Issuer}, ""))
	require.NotEqual(t, recordings.SessionKey("", alice, "claude-code"), recordings.SessionKey("", alice, "cursor"), "one identity's clients are recorded apart")
	require.Equal(t, recordings.SessionKey("s-1", alice, "claude-code"), recordings.SessionKey("s-1", alice, "cursor"), "a session is one recording whatever the client says")
}
