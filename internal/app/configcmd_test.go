package app

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestConfigValidateEveryProblemOnce: one run reports decoding and validation problems and
// every file the config names that would not open, each with its path and line.
func TestConfigValidateEveryProblemOnce(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(pol, []byte("version: 1\ndefault: allow\nrules:\n  - name: x\n    when: request.sql.destructiv\n    action: deny\n"), 0o600))
	badKey := filepath.Join(dir, "signing.pem")
	require.NoError(t, os.WriteFile(badKey, []byte("not a key"), 0o600))
	emptyPw := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(emptyPw, nil, 0o600))
	notDir := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(notDir, []byte("x"), 0o600))

	var def bytes.Buffer
	require.NoError(t, Run(t.Context(), []string{"config", "default"}, &def, &bytes.Buffer{}))
	cfg := def.String()
	for _, r := range [][2]string{
		{"data_dir: ./data", "data_dir: " + notDir},
		{`  file: ""`, "  file: " + pol},
		{"  reload_interval: 5s", "  reload_interval: 5 seconds"},
		{"  strategy: redact", "  strategy: redact\n  hash_key_file: " + filepath.Join(dir, "missing-hash-key")},
		{"  enabled: true\n  spool:", "  enabled: true\n  signing_key_file: " + badKey + "\n  spool:"},
		{"    kind: file", "    kind: redis\n    redis:\n      addr: 127.0.0.1:6379\n      password_file: " + emptyPw},
		{"  level: info", "  level: loud"},
	} {
		require.Contains(t, cfg, r[0])
		cfg = strings.Replace(cfg, r[0], r[1], 1)
	}
	path := filepath.Join(dir, "mcpguard.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	lineOf := func(s string) int {
		for i, l := range strings.Split(cfg, "\n") {
			if strings.Contains(l, s) {
				return i + 1
			}
		}
		t.Fatalf("%q not in config", s)
		return 0
	}

	var out, errb bytes.Buffer
	require.Error(t, Run(t.Context(), []string{"config", "validate", path}, &out, &errb))
	got := errb.String()
	for _, want := range []string{
		`policy.reload_interval: invalid duration "5 seconds"`,
		`log.level: "loud" is not one of debug, info, warn, error (line ` + itoa(lineOf("level: loud")) + ")",
		"policy.file: " + pol + ":5: rules[0] (x).when: request.sql has no field 'destructiv'; did you mean 'destructive'? (line " + itoa(lineOf("file: "+pol)) + ")",
		"masking.hash_key_file: open " + filepath.Join(dir, "missing-hash-key") + ": no such file or directory (line " + itoa(lineOf("hash_key_file: ")) + ")",
		"recordings.signing_key_file: ",
		"(line " + itoa(lineOf("signing_key_file: ")) + ")",
		"approvals.store.redis.password_file: " + emptyPw + " is empty (line " + itoa(lineOf("password_file: ")) + ")",
		"data_dir: " + notDir + " is not a directory (line 5)",
	} {
		require.Contains(t, got, want)
	}
	require.NotContains(t, got, "\n\n", "one problem per line")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 5, "validate created nothing")
}

func itoa(i int) string { return strconv.Itoa(i) }
