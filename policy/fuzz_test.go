package policy_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mcpguard/mcpguard/mcp"
	"github.com/mcpguard/mcpguard/policy"
)

// FuzzClassifySQL: any payload, in either dialect, is classified or refused as unparsed;
// never a panic, and an unparsed payload always reads as a reason to refuse.
func FuzzClassifySQL(f *testing.F) {
	for _, s := range []string{
		"SELECT 1", "DROP/**/TABLE x", "/*!50000 DROP TABLE t */", "WITH d AS (DELETE FROM t) SELECT 1",
		"DO $$ BEGIN EXECUTE 'x'; END $$", "SELECT 1; DELETE FROM t WHERE 1=1", "COPY t TO PROGRAM 'x'",
		"UPDATE t SET a=1 WHERE a=a OR NOT true", "'", "",
		// The restriction check, MERGE actions, calls and the unknown-node allow-lists.
		"DELETE FROM t a USING o WHERE o.x > 0 OR (SELECT a.id) = 1", "DELETE t FROM t, o WHERE t.id = o.id XOR 1",
		"MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE WHEN MATCHED THEN UPDATE SET a = 1",
		"SELECT pg_catalog.lower(x), public.f(), \"Lower\"(y), 1 OPERATOR(s.+) 2 FROM t FOR UPDATE",
		"SELECT NEXT VALUE FOR s, GET_LOCK('x', 1), db.f() FROM t", "EXPLAIN (ANALYZE off) DELETE FROM t WHERE f()",
		"ALTER TABLE t DROP COLUMN a, ALTER COLUMN b TYPE int, OWNER TO u", "CREATE SCHEMA s CREATE TABLE x (a int)",
		// Shapes that overflow the parsers without the bounds (see bounds.go), near the bound.
		"SELECT " + strings.Repeat("(", 300) + "1" + strings.Repeat(")", 300), "SELECT 1" + strings.Repeat("+1", 1200),
		"SELECT 1" + strings.Repeat(" UNION ALL SELECT 1", 1100), "SELECT " + strings.Repeat("NOT ", 1100) + "true",
		"SELECT 'a\\', " + strings.Repeat("(", 300), "SELECT $$ ((( $$ " + strings.Repeat("-", 1100), "SELECT /*!50000 ( */ 1",
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
		// Shapes that exhaust the parser without the bounds (see bounds.go), near the bound.
		"echo " + strings.Repeat("$(echo ", 260) + strings.Repeat(")", 260), strings.Repeat("(", 300) + ":" + strings.Repeat(")", 300),
		"echo " + strings.Repeat("`echo \\", 300) + "`", "true" + strings.Repeat(" | cat", 1100),
		"cat <<E\n" + strings.Repeat("$(", 300) + "\nE\n" + strings.Repeat(")", 300), "echo $'\\'' $( '",
		// Resolution through quoting, wrappers, nested code and SQL clients.
		`$'\x72\x6d' -rf /`, `$'\162\155\'' -rf`, "rm --recu x", `X='rm -rf /' bash -c "$X"`, "bash <<< 'rm -rf /'",
		"sh <<'E'\nrm -rf /\nE", "perl -e 'x'", `awk 'BEGIN{system("x")}'`, `sed 's/a/b/e;w /x' f`, "su -c 'rm -rf /'",
		"env -S 'rm -rf /'", "busybox rm -rf /", "exec -a x rm", `find . -exec rm {} \; -execdir sh -c 'x' \;`,
		"timeout --sig=KILL 5 nice -5 stdbuf -o0 setsid flock /l -c 'rm -rf /'", "psql -c 'SELECT 1' -c '\\dt' --comm='DROP TABLE x'",
		"echo 'DROP TABLE x' | psql", "cat <<E | mysql -e 'system x'\nDROP TABLE t;\nE", "printf 'x' | xargs -I{} sh -c '{}'",
		"git -C /r push -f origin +main", "kubectl -n x delete pod p", "curl -sX DELETE -o /etc/x http://h", "tar xzf a.tgz --to-command=sh",
		strings.Repeat("sudo ", 2000) + "rm -rf /", strings.Repeat("eval ", 2000) + "ls", strings.Repeat("xargs ", 2000) + "ls",
		strings.Repeat("find . -exec ", 200) + "ls {} ;" + strings.Repeat(" ;", 199), "f() { f | f & }; f", "x='a[$(rm)]'; (( x ))",
		"echo x > ~/.bashrc; PATH=. ls > >(sh)", "{rm,-rf,/}", "/usr/bin/../../tmp/rm -rf /",
		// Lines that run nothing: they still get a class.
		"sh -c ''", "<00", "bash -c ' '", "< /etc/passwd",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cmd string) {
		got := policy.ClassifyShell(cmd)
		if !got.Parsed && !got.Dangerous() {
			t.Fatalf("unparsed command not dangerous: %+v", got)
		}
		if got.Class >= policy.ClassDestructive && !got.Dangerous() {
			t.Fatalf("class %s not dangerous", got.Class)
		}
		if got.Parsed && got.Class == policy.ClassNone && len(got.Commands) > 0 {
			t.Fatalf("commands %v without a class", got.Commands)
		}
		v := got.Value()
		if v["class"] == "" {
			t.Fatal("present command without a class")
		}
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

// FuzzDecideArguments: tool arguments of any shape are decided without a crash, and
// arguments that cannot be decoded never let the SQL argument go unchecked.
func FuzzDecideArguments(f *testing.F) {
	for _, s := range []string{
		`{"query":"SELECT 1"}`, `{"query":"DROP TABLE t"}`, `{"query":1}`, `{"query":"SELECT 1",}`,
		`{"query":"SELECT 1","x":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`,
		`{"query":"SELECT 1","x":"` + strings.Repeat("[", 200) + `"}`, `{"query":"SELECT 1","x":"\"[["}`,
	} {
		f.Add(s)
	}
	set, err := policy.Compile(policy.DefaultPolicy())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, args string) {
		m := &mcp.Message{Method: "tools/call", Tool: "execute_sql", Arguments: json.RawMessage(args)}
		d := set.Decide(policy.Input{Msg: m})
		if args != "" && !json.Valid([]byte(args)) && d.Action != policy.Deny {
			t.Fatalf("undecodable arguments %s", d.Action)
		}
	})
}
