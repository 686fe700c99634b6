package policy_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/policy"
)

// TestUnknownFieldsDoNotCompile: a misspelt field is a compile error with the rule, its line
// and the closest name, never a run-time error that makes a deny rule match every message.
func TestUnknownFieldsDoNotCompile(t *testing.T) {
	cases := []struct {
		name, when string
		want       string
	}{
		{"sql field", "request.sql.destructiv", "request.sql has no field 'destructiv'; did you mean 'destructive'?"},
		{"identity field", `"dba" in identity.grups`, "identity has no field 'grups'; did you mean 'groups'?"},
		{"request field", `request.methd == "tools/call"`, "request has no field 'methd'; did you mean 'method'?"},
		{"session field", "session.toolcalls > 5", "session has no field 'toolcalls'; did you mean 'tool_calls'?"},
		{"event field", `event.knd == "tool_changed"`, "event has no field 'knd'; did you mean 'kind'?"},
		{"shell field", "request.shell.dangerus", "request.shell has no field 'dangerus'; did you mean 'dangerous'?"},
		{"no close name", "request.sql.zzzzzzzz", "request.sql has no field 'zzzzzzzz' (its fields: "},
		{"statement field", "request.sql.statements.exists(s, s.destructiv)", "undefined field 'destructiv'"},
		{"sql() result", `sql(request.uri).destructiv`, "undefined field 'destructiv'"},
		{"shell() result", `shell(request.uri).dangerus`, "undefined field 'dangerus'"},
		{"psql payload", `request.shell.sql.exists(q, q.destructiv)`, "undefined field 'destructiv'"},
		{"wrong type", `session.calls == "many"`, "no matching overload"},
		{"construction", `mcpguard.SQL{present: true}.present`, "mcpguard.SQL cannot be constructed in a condition"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := "version: 1\ndefault: allow\nrules:\n  - name: ok\n    when: request.sql.destructive\n    action: deny\n" +
				"  - name: misspelt\n    when: '" + c.when + "'\n    action: deny\n"
			_, err := policy.Compile([]byte(src))
			require.Error(t, err)
			require.ErrorContains(t, err, "line 8: rules[1] (misspelt).when: ")
			require.ErrorContains(t, err, c.want)
		})
	}
}

// TestDeclaredFieldsCompile: what the reference documents still compiles, maps stay maps.
func TestDeclaredFieldsCompile(t *testing.T) {
	for _, when := range []string{
		`request.arguments.env == "prod" && request.arguments["x"].y == 1`,
		`request.headers["x-tenant"].startsWith("a")`,
		`"dba" in identity.groups && identity.scopes.exists(s, s == "mcp:tools")`,
		`request.sql.statements.exists(s, s.kind == "drop_table" || "pg_sleep" in s.functions)`,
		`request.shell.sql.exists(q, q.destructive) || "sudo" in request.shell.commands`,
		`sql(request.uri, "mysql").write || shell(request.prompt).dangerous`,
		`session.tool_calls > 500 && now.getHours() < 7 && !request.listing && request.revision != ""`,
		`has(request.arguments.opts) && event.kind == "tool_changed" && event.tool == request.tool`,
	} {
		_, err := policy.Compile([]byte("version: 1\ndefault: allow\nrules:\n  - name: r\n    when: '" + when + "'\n    action: deny\n"))
		require.NoError(t, err, when)
	}
}

// TestReloadRefusesUnknownField: hot reload keeps the policy in force when the new file
// reads a field that does not exist.
func TestReloadRefusesUnknownField(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte("version: 1\ndefault: allow\n"), 0o600))
	src, err := policy.Open(policy.Config{File: path, ReloadInterval: time.Second, SessionTTL: time.Hour}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	first := src.Current()
	require.NoError(t, os.WriteFile(path, []byte("version: 1\ndefault: allow\nrules:\n  - {name: x, when: 'request.sql.destructiv', action: deny}\n"), 0o600))
	_, err = src.Reload()
	require.ErrorContains(t, err, "line 4: rules[0] (x).when: request.sql has no field 'destructiv'")
	require.Same(t, first, src.Current())
}

// TestReloadLogsBrokenPolicyOncePerChange: polling a broken file logs and counts it once;
// another broken version, or the same one after a good one, is logged again.
func TestReloadLogsBrokenPolicyOncePerChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	good := []byte("version: 1\ndefault: allow\n")
	require.NoError(t, os.WriteFile(path, good, 0o600))
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	src, err := policy.Open(policy.Config{File: path, ReloadInterval: time.Second, SessionTTL: time.Hour},
		slog.New(slog.NewTextHandler(&logs, nil)), reg)
	require.NoError(t, err)
	failures := func() int { return strings.Count(logs.String(), "policy reload failed") }

	bad1 := []byte("version: 1\ndefault: allow\nrules:\n  - {name: x, when: 'identity.grups', action: deny}\n")
	require.NoError(t, os.WriteFile(path, bad1, 0o600))
	for range 3 {
		_, err = src.Reload()
		require.ErrorContains(t, err, "identity has no field 'grups'")
	}
	require.Equal(t, 1, failures())
	require.InDelta(t, 1, reloads(t, reg, "error"), 0)

	require.NoError(t, os.WriteFile(path, []byte("version: 1\n"), 0o600))
	for range 2 {
		_, err = src.Reload()
		require.Error(t, err)
	}
	require.Equal(t, 2, failures())

	require.NoError(t, os.Remove(path))
	for range 2 {
		_, err = src.Reload()
		require.Error(t, err)
	}
	require.Equal(t, 3, failures())

	require.NoError(t, os.WriteFile(path, good, 0o600))
	_, err = src.Reload()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, bad1, 0o600))
	_, err = src.Reload()
	require.Error(t, err)
	require.Equal(t, 4, failures())
	require.InDelta(t, 4, reloads(t, reg, "error"), 0)
}

// TestToolDialectDefaultsToPolicy: a tool's sql without a dialect is parsed in the policy's
// sql_dialect (MySQL's backtick identifiers do not parse as Postgres).
func TestToolDialectDefaultsToPolicy(t *testing.T) {
	for _, c := range []struct {
		policyDialect, toolDialect string
		parsed                     bool
	}{
		{"mysql", "", true},
		{"", "", false}, // postgres
		{"postgres", "mysql", true},
		{"mysql", "postgres", false},
	} {
		src := "version: 1\ndefault: allow\n"
		if c.policyDialect != "" {
			src += "sql_dialect: " + c.policyDialect + "\n"
		}
		tool := "{argument: query}"
		if c.toolDialect != "" {
			tool = "{argument: query, dialect: " + c.toolDialect + "}"
		}
		src += "tools:\n  q: {sql: " + tool + "}\nrules:\n  - {name: unparsed, when: 'request.sql.present && !request.sql.parsed', action: deny}\n"
		set, err := policy.Compile([]byte(src))
		require.NoError(t, err, src)
		d := set.Decide(policy.Input{Msg: call(t, "q", map[string]any{"query": "SELECT `a` FROM `t`"})})
		want := policy.Deny
		if c.parsed {
			want = policy.Allow
		}
		require.Equal(t, want, d.Action, "%+v", c)
	}
}
