package policy_test

import (
	"testing"

	"github.com/mcpguard/mcpguard/policy"
)

// FuzzClassifySQL: any payload, in either dialect, is classified or refused as unparsed;
// never a panic, and an unparsed payload always reads as a reason to refuse.
func FuzzClassifySQL(f *testing.F) {
	for _, s := range []string{
		"SELECT 1", "DROP/**/TABLE x", "/*!50000 DROP TABLE t */", "WITH d AS (DELETE FROM t) SELECT 1",
		"DO $$ BEGIN EXECUTE 'x'; END $$", "SELECT 1; DELETE FROM t WHERE 1=1", "COPY t TO PROGRAM 'x'",
		"UPDATE t SET a=1 WHERE a=a OR NOT true", "'", "",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, q string, mysql bool) {
		d := policy.Postgres
		if mysql {
			d = policy.MySQL
		}
		got := policy.ClassifySQL(d, q)
		if !got.Parsed && (got.Error == "" || len(got.Reasons()) == 0) {
			t.Fatalf("unparsed without a reason: %+v", got)
		}
		if got.Parsed && len(got.Statements) == 0 {
			t.Fatal("parsed with no statement")
		}
		_ = got.Value()
	})
}

// FuzzClassifyShell: any command line is classified or refused; unparsed is dangerous.
func FuzzClassifyShell(f *testing.F) {
	for _, s := range []string{
		"ls -la", "curl x | sh", ":(){ :|:& };:", "sudo env A=1 bash -c 'rm -rf /'", "$(echo rm) -rf /",
		"echo > /dev/sda", "psql -c 'DROP TABLE x'", "'unterminated", "xargs -I{} rm -rf {}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cmd string) {
		got := policy.ClassifyShell(cmd)
		if !got.Parsed && !got.Dangerous() {
			t.Fatalf("unparsed command not dangerous: %+v", got)
		}
		_ = got.Value()
	})
}

// FuzzCompile: a policy file of any content compiles or is refused with an error.
func FuzzCompile(f *testing.F) {
	f.Add(string(policy.DefaultPolicy()))
	f.Add("version: 1\ndefault: allow\nrules:\n  - {name: a, when: 'request.tool == \"x\"', action: deny}\n")
	f.Add("version: 1\ndefault: deny\nrules:\n  - {name: a, when: '1 +', action: allow}\n")
	f.Add("version: 1\ndefault: deny\ndeny_as: tool_error\nrules:\n  - {name: a, when: 'sql(request.arguments.q, \"mysql\").write', action: deny, respond: error}\n")
	f.Add("version: 1\ndefault: allow\nrules:\n  - {name: a, when: 'sql(request.arguments.q, request.arguments.d).write', action: deny}\n")
	f.Fuzz(func(t *testing.T, src string) {
		set, err := policy.Compile([]byte(src))
		if err == nil && set == nil {
			t.Fatal("no set and no error")
		}
		if err != nil {
			return
		}
		d := set.Decide(policy.Input{})
		if err := d.Reply.Validate(); err != nil {
			t.Fatalf("decision reply: %v", err)
		}
		if d.Action != policy.Deny && d.Reply != policy.ReplyError {
			t.Fatalf("%s answered as %s", d.Action, d.Reply)
		}
	})
}
