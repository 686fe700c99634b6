package groundtruth

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/mcp"
	"github.com/mcpguard/mcpguard/policy"
)

// shellCase is one line of testdata/shell_corpus.txt.
type shellCase struct {
	line    int
	section string
	command string
	class   string // the class the corpus expects (policy's TestShellCorpusClasses pins it)
	kind    string // why a refused destructive command shows no destruction when run here
}

func loadShellCorpus(t *testing.T, path string) []shellCase {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []shellCase
	section := ""
	for i, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "## "):
			section = strings.TrimPrefix(line, "## ")
			continue
		case strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#"):
			continue
		}
		cmd, meta, ok := strings.Cut(line, " #> ")
		require.True(t, ok, "line %d has no #> class", i+1)
		class, kind, _ := strings.Cut(meta, "; kind: ")
		out = append(out, shellCase{line: i + 1, section: section, command: strings.ReplaceAll(cmd, "⏎", "\n"), class: class, kind: kind})
	}
	return out
}

// TestShellCorpusCopy: policy's benchmark and class test read a copy of the corpus.
func TestShellCorpusCopy(t *testing.T) {
	a, err := os.ReadFile("testdata/shell_corpus.txt")
	require.NoError(t, err)
	b, err := os.ReadFile("../../policy/testdata/shell_corpus.txt")
	require.NoError(t, err)
	require.Equal(t, string(a), string(b), "copy testdata/shell_corpus.txt to policy/testdata/")
}

// verdict is the classification and the default policy's decision for one command.
type verdict struct {
	shell   policy.Shell
	allowed bool
}

func decideShell(t *testing.T, set *policy.Set, tool, arg, value string) bool {
	t.Helper()
	args, err := json.Marshal(map[string]string{arg: value})
	require.NoError(t, err)
	p, err := json.Marshal(map[string]any{"name": tool, "arguments": json.RawMessage(args)})
	require.NoError(t, err)
	body, err := mcp.Parse([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":` + string(p) + `}`))
	require.NoError(t, err)
	d := set.Decide(policy.Input{Identity: policy.Identity{Subject: "agent"}, Msg: &body.Messages[0]})
	return d.Action != policy.Deny
}

// shimRecords splits the shim log: records start with 0x1e, fields are separated by 0x1f;
// the first field is argv, stdin or file.
func shimRecords(log string) [][]string {
	var out [][]string
	for _, r := range strings.Split(log, "\x1e") {
		if r != "" {
			out = append(out, strings.Split(r, "\x1f"))
		}
	}
	return out
}

// sqlReceived returns the SQL texts a recording shim got: -c/--command/-e/--execute values,
// standard input and -f files, by the dialect of the program.
func sqlReceived(log string) (pg, my []string) {
	var cur *[]string
	for _, r := range shimRecords(log) {
		switch r[0] {
		case "argv":
			cur = nil
			if len(r) < 2 {
				continue
			}
			switch r[1] {
			case "psql":
				cur = &pg
			case "mysql", "mariadb":
				cur = &my
			default:
				continue
			}
			words := r[2:]
			for i := 0; i < len(words); i++ {
				w := words[i]
				switch {
				case (w == "-c" || w == "--command" || w == "-e" || w == "--execute") && i+1 < len(words):
					*cur = append(*cur, words[i+1])
					i++
				case strings.HasPrefix(w, "--") && strings.Contains(w, "=") &&
					(strings.HasPrefix("--command", w[:strings.IndexByte(w, '=')]) || strings.HasPrefix("--execute", w[:strings.IndexByte(w, '=')])):
					*cur = append(*cur, w[strings.IndexByte(w, '=')+1:])
				case len(w) > 2 && (strings.HasPrefix(w, "-c") || strings.HasPrefix(w, "-e")):
					*cur = append(*cur, w[2:])
				}
			}
		case "stdin", "file":
			if cur != nil && len(r) == 2 {
				*cur = append(*cur, r[1])
			}
		}
	}
	return pg, my
}

// psqlServerText drops the lines psql runs itself (backslash meta-commands such as \dt):
// they never reach the server. The classifier refuses the other meta-commands.
func psqlServerText(q string) string {
	var keep []string
	for _, l := range strings.Split(q, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), `\`) {
			keep = append(keep, l)
		}
	}
	if strings.TrimSpace(strings.Join(keep, "")) == "" {
		return ""
	}
	return strings.Join(keep, "\n")
}

func quoteWords(ws []string) string {
	q := make([]string, len(ws))
	for i, w := range ws {
		q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// TestShellGroundTruth runs every corpus command in the sandbox and holds the classifier
// to what happened:
//   - a command the default policy allows must not delete anything, attempt writes outside
//     the tree, signal a process, start a program the classification does not name, or hand
//     psql/mysql SQL that the same policy refuses through a SQL tool; a read-only one must
//     not change the tree at all;
//   - a command refused as destructive must be seen destroying something (a path deleted,
//     content or mode changed, a refused write outside the tree, a signal, refused SQL or a
//     destructive request reaching a recording shim), or the corpus says why not (kind).
func TestShellGroundTruth(t *testing.T) {
	sb := newSandbox(t)
	cases := loadShellCorpus(t, "testdata/shell_corpus.txt")
	// The embedded default policy, plus a MySQL tool so mysql's SQL is judged in its dialect.
	src := strings.Replace(string(policy.DefaultPolicy()), "tools:\n",
		"tools:\n  execute_mysql:\n    sql: {argument: query, dialect: mysql}\n", 1)
	set, err := policy.Compile([]byte(src))
	require.NoError(t, err)

	work := openTempDir(t)
	results := make([]observed, len(cases))
	errs := make([]error, len(cases))
	jobs := make(chan int)
	var wg sync.WaitGroup
	// Each run mostly waits (namespace set-up, ptrace stops), so the pool is larger than
	// the CPU count.
	for range max(4, 4*runtime.NumCPU()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				dir := filepath.Join(work, strconv.Itoa(i))
				results[i], errs[i] = sb.run(t.Context(), dir, 200000+i, cases[i].command)
				_ = os.RemoveAll(dir)
			}
		}()
	}
	for i := range cases {
		jobs <- i
	}
	close(jobs)
	wg.Wait()

	var (
		allowed, allowedClean, destructive, destroyedSeen, byKind, refusedOther, refusedOtherEffect int
		falseRefusals                                                                               []string
	)
	for i, c := range cases {
		require.NoError(t, errs[i], "line %d", c.line)
		o := results[i]
		sh := policy.ClassifyShell(c.command)
		v := verdict{shell: sh, allowed: decideShell(t, set, "run_command", "command", c.command)}
		name := fmt.Sprintf("line %d: %q (%s)", c.line, c.command, sh.Class)
		execs := o.execs
		if len(execs) > 0 {
			execs = execs[1:] // the sandbox's own bash -c
		}
		pg, my := sqlReceived(o.shimLog)
		var refusedSQL []string
		for _, q := range pg {
			if q = psqlServerText(q); q != "" && !decideShell(t, set, "execute_sql", "query", q) {
				refusedSQL = append(refusedSQL, q)
			}
		}
		for _, q := range my {
			if !decideShell(t, set, "execute_mysql", "query", q) {
				refusedSQL = append(refusedSQL, q)
			}
		}
		if strings.HasPrefix(c.section, "Everyday") && !v.allowed {
			falseRefusals = append(falseRefusals, c.command)
		}
		if v.allowed {
			allowed++
			var bad []string
			if len(o.deleted) > 0 {
				bad = append(bad, fmt.Sprintf("deleted %v", o.deleted))
			}
			if len(o.outside) > 0 {
				bad = append(bad, fmt.Sprintf("tried to write outside the tree %v", o.outside))
			}
			if len(o.signals) > 0 {
				bad = append(bad, fmt.Sprintf("sent signals %v", o.signals))
			}
			if len(refusedSQL) > 0 {
				bad = append(bad, fmt.Sprintf("handed refused SQL to a client %q", refusedSQL))
			}
			named := append(slices.Clone(sh.Commands), sh.Wrappers...)
			for _, n := range named {
				named = append(named, helpers[n]...)
			}
			for _, e := range execs {
				if !slices.Contains(named, e) {
					bad = append(bad, fmt.Sprintf("started %s, which the classification does not name (%v)", e, named))
					break
				}
			}
			if sh.Class == policy.ClassRead {
				if changed := gitStatCache(o); changed {
					bad = append(bad, fmt.Sprintf("changed the tree: created %v modified %v modes %v", o.created, o.modified, o.chmoded))
				}
			}
			if len(bad) == 0 {
				allowedClean++
			} else {
				t.Errorf("%s was allowed but %s", name, strings.Join(bad, "; "))
			}
			continue
		}
		switch sh.Class {
		case policy.ClassDestructive:
			destructive++
			switch {
			case o.destroyed() || len(refusedSQL) > 0 || shimGotRequest(o.shimLog):
				destroyedSeen++
			case c.kind != "":
				byKind++
			default:
				t.Errorf("%s was refused as destructive, but running it destroyed nothing and the corpus gives no kind (output %q)", name, o.output)
			}
		default:
			refusedOther++
			if o.changed() || o.destroyed() || len(refusedSQL) > 0 {
				refusedOtherEffect++
			}
		}
	}
	t.Logf("corpus %d commands; allowed %d, of which %d ran without a forbidden effect (%.1f%%)",
		len(cases), allowed, allowedClean, 100*float64(allowedClean)/float64(max(1, allowed)))
	t.Logf("refused as destructive %d: destruction observed %d, refused by kind %d", destructive, destroyedSeen, byKind)
	t.Logf("refused as dynamic or unknown %d, of which %d changed or destroyed something when run", refusedOther, refusedOtherEffect)
	t.Logf("everyday commands refused: %d %q", len(falseRefusals), falseRefusals)
}

// helpers are programs that start others as part of their own job: egrep and zcat are
// scripts around grep and gzip, tar compresses through a shell, watch runs its command
// through sh -c (the classifier reads that code like any other).
var helpers = map[string][]string{
	"egrep": {"grep"}, "fgrep": {"grep"}, "zgrep": {"grep", "gzip", "zcat"}, "zcat": {"gzip"},
	"tar": {"sh", "gzip", "bzip2", "xz", "zstd"}, "watch": {"sh"},
}

// gitStatCache reports a tree change other than git refreshing its index's stat cache,
// which `git status` and `git diff` do on a copied repository (same content, new inodes).
func gitStatCache(o observed) bool {
	for _, m := range o.modified {
		if !strings.HasSuffix(m, ".git/index") {
			return true
		}
	}
	return len(o.created)+len(o.chmoded) > 0
}

// shimGotRequest reports a recording shim that received a destructive request
// (kubectl delete, docker rm, systemctl stop …): the stand-in for the real program's effect.
func shimGotRequest(log string) bool {
	for _, r := range shimRecords(log) {
		if r[0] != "argv" || len(r) < 3 {
			continue
		}
		switch r[1] {
		case "kubectl", "docker", "systemctl":
			if policy.ClassifyShell(quoteWords(r[1:])).Class >= policy.ClassDestructive {
				return true
			}
		}
	}
	return false
}
