package masking

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
		want []string // substrings of the joined error, none when empty
	}{
		{name: "defaults", mod: func(*Config) {}},
		{name: "unknown strategy and detector", mod: func(c *Config) {
			c.Strategy = "shred"
			c.Detectors = []string{"EMAIL", "DNA"}
		}, want: []string{`strategy: "shred" is not redact, partial or hash`, `detectors[1]: unknown detector "DNA"`}},
		{
			name: "hash without key", mod: func(c *Config) { c.Strategies = map[string]Strategy{"EMAIL": Hash} },
			want: []string{"hash_key: required (or hash_key_file) when a strategy is hash"},
		},
		{name: "short key", mod: func(c *Config) { c.HashKey = "short" }, want: []string{"hash_key: must be at least 16 bytes"}},
		{
			name: "key and file", mod: func(c *Config) { c.HashKey, c.HashKeyFile = "0123456789abcdef", "/k" },
			want: []string{"hash_key: set hash_key or hash_key_file, not both"},
		},
		{name: "bad custom", mod: func(c *Config) {
			c.Custom = []Custom{{Name: "lower", Pattern: "("}, {Name: "EMAIL", Pattern: "a*", Validator: "crc", MaxLen: -1, Keywords: []string{" "}}}
		}, want: []string{
			"custom[0].name: must match", "custom[0].pattern: error parsing regexp", `custom[1].name: "EMAIL" is a built-in detector`,
			"custom[1].pattern: must not match the empty string", `custom[1].validator: "crc" is not luhn, mod97 or entropy`,
			"custom[1].max_len: must be between", "custom[1].keywords[0]: must not be empty",
		}},
		{name: "bad fields", mod: func(c *Config) {
			c.Fields = []Field{{Path: ""}, {Path: "a..b"}, {Path: "a|b", Name: "x", Strategy: "nope"}}
		}, want: []string{
			"fields[0].path: required", "fields[1].path: empty segment", "fields[2].path: segment", "fields[2].name: must match",
			`fields[2].strategy: "nope" is not`,
		}},
		{
			name: "strategy for unknown detector", mod: func(c *Config) { c.Strategies = map[string]Strategy{"NOPE": Redact} },
			want: []string{"strategies.NOPE: unknown detector"},
		},
		{name: "tool arguments with masking on", mod: func(c *Config) { c.Requests.ToolArguments = true }},
		{
			name: "tool arguments with masking off", mod: func(c *Config) { c.Enabled, c.Requests.ToolArguments = false, true },
			want: []string{"requests.tool_arguments: requires enabled: true"},
		},
		{name: "strategy for custom detector", mod: func(c *Config) {
			c.Custom = []Custom{{Name: "EMP", Pattern: "EMP-[0-9]+"}}
			c.Strategies = map[string]Strategy{"EMP": Partial}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				require.NoError(t, err)
				_, err = New(c)
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
			_, err = New(c)
			require.Error(t, err, "New must refuse what Validate refuses")
		})
	}
}

func TestNewNeedsLoadedKey(t *testing.T) {
	c := DefaultConfig()
	c.Strategy, c.HashKeyFile = Hash, "/run/secrets/mask-key"
	require.NoError(t, c.Validate())
	_, err := New(c)
	require.ErrorContains(t, err, "hash_key: not loaded")
	c.HashKey, c.HashKeyFile = "0123456789abcdef0123", ""
	m, err := New(c)
	require.NoError(t, err)
	a, _ := m.Text([]byte("mail ann@example.com"))
	b, _ := m.Text([]byte("again ann@example.com"))
	require.Equal(t, string(a[5:]), string(b[6:]), "equal values, equal tokens")
	require.Regexp(t, `^mail tok_[0-9a-f]{16}$`, string(a))
}

func TestDisabledDetectors(t *testing.T) {
	c := DefaultConfig()
	c.Detectors = []string{"EMAIL"}
	m, err := New(c)
	require.NoError(t, err)
	out, counts := m.Text([]byte("ann@example.com 4111 1111 1111 1111 AKIAZ3MHQX7RBN2KLD4P"))
	require.Equal(t, "[REDACTED:EMAIL] 4111 1111 1111 1111 AKIAZ3MHQX7RBN2KLD4P", string(out))
	require.Equal(t, Counts{"EMAIL": 1}, counts)
}
