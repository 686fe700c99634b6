package netx

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTLSConfigValidate(t *testing.T) {
	ca := newCA(t, "ca")
	good := ca.issue(t, true)
	other := ca.issue(t, true)
	f := newFiles(t)
	f.writeLeaf(t, good)
	writeFile(t, f.ca, ca.pem)
	d := t.TempDir()
	garbage := filepath.Join(d, "garbage.pem")
	writeFile(t, garbage, []byte("not pem"))
	otherKey := filepath.Join(d, "other.key")
	writeFile(t, otherKey, other.keyPEM)
	keyInCA := filepath.Join(d, "key-in-ca.pem")
	writeFile(t, keyInCA, append(append([]byte{}, ca.pem...), good.keyPEM...))
	missing := filepath.Join(d, "missing.pem")

	tests := []struct {
		name string
		cfg  TLSConfig
		want []string // each must appear; nil means valid
	}{
		{name: "zero value is plaintext", cfg: TLSConfig{}},
		{name: "defaults", cfg: DefaultTLSConfig()},
		{name: "tls", cfg: TLSConfig{CertFile: f.cert, KeyFile: f.key, MinVersion: TLS13}},
		{name: "mtls", cfg: TLSConfig{CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.ca}},
		{name: "key without cert", cfg: TLSConfig{KeyFile: f.key}, want: []string{"cert_file: required with key_file"}},
		{name: "cert without key", cfg: TLSConfig{CertFile: f.cert}, want: []string{"key_file: required with cert_file"}},
		{
			name: "client ca alone", cfg: TLSConfig{ClientCAFile: f.ca},
			want: []string{"cert_file: required with client_ca_file", "key_file: required with client_ca_file"},
		},
		{name: "bad min version", cfg: TLSConfig{MinVersion: "1.1"}, want: []string{`min_version: must be "1.2" or "1.3", got "1.1"`}},
		{name: "negative interval", cfg: TLSConfig{ReloadInterval: -time.Second}, want: []string{"reload_interval: must not be negative"}},
		{name: "cert missing", cfg: TLSConfig{CertFile: missing, KeyFile: f.key}, want: []string{"cert_file: open " + missing}},
		{name: "key missing", cfg: TLSConfig{CertFile: f.cert, KeyFile: missing}, want: []string{"key_file: open " + missing}},
		{name: "pair mismatch", cfg: TLSConfig{CertFile: f.cert, KeyFile: otherKey}, want: []string{"cert_file: load key pair: "}},
		{name: "cert not pem", cfg: TLSConfig{CertFile: garbage, KeyFile: f.key}, want: []string{"cert_file: load key pair: "}},
		{
			name: "ca not pem", cfg: TLSConfig{CertFile: f.cert, KeyFile: f.key, ClientCAFile: garbage},
			want: []string{"client_ca_file: no PEM certificates found"},
		},
		{
			name: "ca holds a key", cfg: TLSConfig{CertFile: f.cert, KeyFile: f.key, ClientCAFile: keyInCA},
			want: []string{`client_ca_file: block 2: unexpected PEM type "PRIVATE KEY"`},
		},
		{
			name: "ca missing", cfg: TLSConfig{CertFile: f.cert, KeyFile: f.key, ClientCAFile: missing},
			want: []string{"client_ca_file: open " + missing},
		},
		{
			name: "every problem at once",
			cfg:  TLSConfig{KeyFile: f.key, MinVersion: "tls1.3", ReloadInterval: -1},
			want: []string{"min_version: ", "reload_interval: ", "cert_file: required with key_file"},
		},
	}
	fields := []string{"cert_file: ", "key_file: ", "client_ca_file: ", "min_version: ", "reload_interval: "}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
			lines := strings.Split(err.Error(), "\n")
			require.Len(t, lines, len(tt.want))
			for _, line := range lines {
				require.True(t, hasAnyPrefix(line, fields), "message %q must start with a field path", line)
				require.NotContains(t, line, "PRIVATE KEY-----")
			}
		})
	}
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func TestTLSConfigEnabled(t *testing.T) {
	tests := []struct {
		name string
		cfg  TLSConfig
		want bool
	}{
		{name: "zero", cfg: TLSConfig{}, want: false},
		{name: "defaults", cfg: DefaultTLSConfig(), want: false},
		{name: "cert", cfg: TLSConfig{CertFile: "c"}, want: true},
		{name: "key", cfg: TLSConfig{KeyFile: "k"}, want: true},
		{name: "client ca only", cfg: TLSConfig{ClientCAFile: "ca"}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.cfg.Enabled())
		})
	}
}

func TestNewReloaderRefuses(t *testing.T) {
	tests := []struct {
		name string
		cfg  TLSConfig
		want string
	}{
		{name: "disabled", cfg: TLSConfig{}, want: "tls is not enabled"},
		{name: "invalid", cfg: TLSConfig{CertFile: filepath.Join(os.TempDir(), "does-not-exist")}, want: "key_file: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReloader(tt.cfg, newLogger(&logBuf{}))
			require.ErrorContains(t, err, tt.want)
			require.Nil(t, r)
		})
	}
}
