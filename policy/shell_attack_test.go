package policy_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/policy"
)

// TestShellAttacksRefused: commands that destroy, or run code the classifier cannot see,
// through quoting, wrappers, other interpreters and SQL clients are refused by the
// embedded default policy.
func TestShellAttacksRefused(t *testing.T) {
	set := corpusPolicy(t)
	for _, c := range []struct{ name, cmd string }{
		{"ansi-c quoting", `$'\x72\x6d' -rf /`},
		{"ansi-c octal", `$'\162\155' -rf /`},
		{"ansi-c option", `rm $'-r\x66' /`},
		{"abbreviated long option", "rm --recu /srv"},
		{"abbreviated long options", "rm --recur --forc /srv"},
		{"non-literal -c", `X='rm -rf /' bash -c "$X"`},
		{"here-string into bash", "bash <<< 'rm -rf /'"},
		{"heredoc into sh", "sh <<'EOF'\nrm -rf /\nEOF"},
		{"redirect into sh", "sh < script"},
		{"perl -e", `perl -e 'unlink "x"'`},
		{"python -c", `python -c 'import os; os.remove("x")'`},
		{"python3 -c", `python3 -c 'import shutil; shutil.rmtree("/")'`},
		{"ruby -e", `ruby -e 'File.delete("x")'`},
		{"node -e", `node -e 'require("fs").rmSync("/",{recursive:true})'`},
		{"php -r", `php -r 'unlink("x");'`},
		{"lua -e", `lua -e 'os.remove("x")'`},
		{"awk system", `awk 'BEGIN{system("rm -rf /")}'`},
		{"awk pipe", `awk 'BEGIN{print "rm -rf /" | "sh"}'`},
		{"sed e", `sed 's/.*/rm -rf \//e' f`},
		{"su -c", "su -c 'rm -rf /'"},
		{"env -S", "env -S 'rm -rf /'"},
		{"busybox", "busybox rm -rf /"},
		{"exec -a", "exec -a ls rm -rf /"},
		{"find -exec rm", `find . -exec rm {} \;`},
		{"find -execdir rm", "find . -execdir rm -rf {} +"},
		{"find -delete", "find / -delete"},
		{"xargs rm", "ls | xargs rm"},
		{"nice", "nice -n 5 rm -rf /"},
		{"nohup", "nohup rm -rf /"},
		{"timeout", "timeout 5 rm -rf /"},
		{"timeout long option", "timeout --signal=KILL 5 rm -rf /"},
		{"sudo long option", "sudo --user=root rm -rf /"},
		{"command", "command rm -rf /"},
		{"builtin eval", "builtin eval 'rm -rf /'"},
		{"eval literal", "eval 'rm -rf /'"},
		{"time", "time rm -rf /"},
		{"stdbuf", "stdbuf -o0 rm -rf /"},
		{"setsid", "setsid rm -rf /"},
		{"chroot", "chroot / rm -rf /"},
		{"flock", "flock /tmp/l rm -rf /"},
		{"second psql -c", "psql -c 'SELECT 1' -c 'DROP TABLE users'"},
		{"echo into psql", "echo 'DROP TABLE x' | psql"},
		{"printf into psql", "printf 'DROP TABLE x;' | psql -h db"},
		{"cat heredoc into psql", "cat <<EOF | psql\nDROP TABLE x;\nEOF"},
		{"here-string into psql", "psql <<< 'DROP TABLE x'"},
		{"psql DO EXECUTE", `psql -c 'DO $$ BEGIN EXECUTE $q$DROP TABLE users$q$; END $$'`},
		{"psql --command=", "psql --command='DROP TABLE x'"},
		{"psql file", "psql -f dump.sql"},
		{"mysql piped", "echo 'DROP TABLE t' | mysql db"},
		{"mysql system", "mysql -e 'system rm -rf /'"},
		{"rm of one file", "rm notes.txt"},
		{"mv", "mv a b"},
		{"git push --force", "git push --force origin main"},
		{"git reset --hard", "git reset --hard HEAD~3"},
		{"kubectl delete", "kubectl delete ns prod"},
		{"program by relative path", "./script.sh"},
		{"glob as program", "/bin/r? -rf /"},
		{"PATH prefix", "PATH=/tmp ls"},
		{"git -c alias", "git -c alias.x='!rm -rf /' x"},
		{"arithmetic injection", `x='a[$(rm -rf /)]'; echo $((x))`},
		{"config planted", `echo 'rm -rf ~' >> ~/.bashrc`},
		{"unknown program", "frobnicate --all"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := set.Decide(corpusInput(t, corpusCase{Shell: true, Input: c.cmd}))
			require.Equal(t, policy.Deny, d.Action, "%q: %+v", c.cmd, policy.ClassifyShell(c.cmd).Reasons())
		})
	}
}

// TestShellEverydayAllowed: commands agents send all day are not refused.
func TestShellEverydayAllowed(t *testing.T) {
	set := corpusPolicy(t)
	for _, cmd := range []string{
		"ls -la /var/log", "grep -rn foo src/", "cat file | head", "git log --oneline -5", "ps aux | grep x",
		"df -h", "find . -name '*.go'", "wc -l main.go", "echo hi", "kubectl get pods -n x",
		"curl -s http://example.com/", "git status", "git diff HEAD~1", "du -sh .", "tail -n 50 app.log",
		"awk '$3 > 100 {print $1}' f", "sed -n '1,5p' f", "psql -c 'SELECT 1'", "echo hi > out.txt",
		"bash -c 'ls -la'", "[ -d src ] || echo missing", "for f in *.go; do wc -l \"$f\"; done",
	} {
		d := set.Decide(corpusInput(t, corpusCase{Shell: true, Input: cmd}))
		require.Equal(t, policy.Allow, d.Action, "%q: %s", cmd, d.Reason)
	}
}

// TestShellResolutionBounded: wrapper chains and nested code are refused past their limits,
// never followed until the stack or the clock runs out.
func TestShellResolutionBounded(t *testing.T) {
	wrapped := policy.ClassifyShell(strings.Repeat("sudo ", 10000) + "ls")
	require.True(t, wrapped.Parsed)
	require.Equal(t, policy.ClassUnknown, wrapped.Class)
	require.True(t, wrapped.Dangerous())

	nested := "ls"
	for range 10 { // past maxShellDepth, within the size bound
		nested = "bash -c " + shellQuote(nested)
	}
	require.Less(t, len(nested), 128<<10)
	got := policy.ClassifyShell(nested)
	require.False(t, got.Parsed)
	require.Equal(t, "unknown", got.Value()["class"])
	require.True(t, got.Dangerous())

	evals := policy.ClassifyShell(strings.Repeat("eval ", 5000) + "ls")
	require.True(t, evals.Dangerous())

	finds := strings.Repeat("find . -exec ", 2000) + "ls {} ;" + strings.Repeat(" ;", 1999)
	require.True(t, policy.ClassifyShell(finds).Dangerous())

	xargs := policy.ClassifyShell(strings.Repeat("xargs ", 10000) + "ls")
	require.Equal(t, policy.ClassUnknown, xargs.Class)
}

// TestShellSQLRefusedAsThroughSQLTool: SQL the default policy refuses through execute_sql
// (or a MySQL tool) is refused when the shell hands it to psql or mysql, however it is
// handed over.
func TestShellSQLRefusedAsThroughSQLTool(t *testing.T) {
	set := corpusPolicy(t)
	for _, c := range loadCorpus(t) {
		if c.Shell {
			continue
		}
		direct := set.Decide(corpusInput(t, c)).Action
		client := "psql"
		if c.Dialect == policy.MySQL {
			client = "mysql"
		}
		for _, cmd := range []string{
			client + " -c " + shellQuote(c.Input), client + " -e " + shellQuote(c.Input),
			"echo " + shellQuote(c.Input) + " | " + client, client + " <<< " + shellQuote(c.Input),
			"cat <<'EOF' | " + client + "\n" + c.Input + "\nEOF",
		} {
			if client == "psql" && strings.Contains(cmd, " -e ") || client == "mysql" && strings.Contains(cmd, " -c ") {
				continue
			}
			got := set.Decide(corpusInput(t, corpusCase{Shell: true, Input: cmd})).Action
			if direct == policy.Deny {
				require.Equal(t, policy.Deny, got, "%s: %q", c.Name, cmd)
			}
		}
	}
}

// TestShellNothingRunIsRead: a line that runs no program and writes nothing (an input
// redirect alone, an empty script handed to a shell) is classed read, never left without a
// class that rules comparing shell(...).class would not expect.
func TestShellNothingRunIsRead(t *testing.T) {
	for _, cmd := range []string{"<00", "< /etc/hostname", "sh -c ''", "bash -c ' '", ""} {
		got := policy.ClassifyShell(cmd)
		require.True(t, got.Parsed, cmd)
		require.Equal(t, policy.ClassRead, got.Class, cmd)
		require.Equal(t, "read", got.Value()["class"], cmd)
	}
	for _, cmd := range []string{"> /etc/passwd", "sh -c '> /etc/passwd'"} {
		require.Equal(t, policy.ClassDestructive, policy.ClassifyShell(cmd).Class, cmd)
	}
}
