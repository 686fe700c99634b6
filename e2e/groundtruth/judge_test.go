package groundtruth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/mcp"
	"github.com/mcpguard/mcpguard/policy"
)

// secretMarker is the content of a server-side file no statement may read.
const secretMarker = "GT-SECRET-7f3a9c"

// snapshot is what a database looks like, as key → value. The key's prefix up to the first
// colon is its category: rows (a table's content), schema (objects, columns, types,
// functions, databases), acl (roles, grants, ownership, policies), seq (sequence state),
// set and session (settings, prepared statements, cursors, listeners), locks (advisory
// locks, prepared transactions), files (the server-side file directory).
type snapshot map[string]string

func category(key string) string {
	c, _, _ := strings.Cut(key, ":")
	return c
}

// engine runs statements against one real server.
type engine interface {
	// run executes sql in a transaction where the server allows it, snapshots the database
	// before rolling back, and reports the in-transaction snapshot (nil when the statement
	// failed), extra effects seen (a secret read, a killed session), and the error.
	run(ctx context.Context, sql string) (snapshot, []string, error)
	// snapshot is taken outside any transaction.
	snapshot(ctx context.Context) (snapshot, error)
	// inTx is the snapshot inside an empty transaction.
	inTx(ctx context.Context) (snapshot, error)
	// reseed restores the seeded database, roles, settings and files.
	reseed(ctx context.Context) error
	// expand replaces the corpus placeholders (@DIR@, @SECRET@, @VICTIM@).
	expand(sql string) string
}

// diff lists every key whose value differs between a and b (added, removed, changed).
func diff(a, b snapshot) []string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// declared is the set of effect categories a classification admits. A read admits none; a
// statement with an unknown, dynamic, program or side-effecting part admits everything.
func declared(c policy.SQL) map[string]bool {
	d := map[string]bool{}
	if !c.Parsed {
		for _, k := range []string{"rows", "schema", "acl", "seq", "set", "session", "locks", "files", "secret", "killed"} {
			d[k] = true
		}
		return d
	}
	for _, st := range c.Statements {
		if st.Unknown || st.Dynamic || st.Program || len(st.Functions) > 0 {
			for _, k := range []string{"rows", "schema", "acl", "seq", "set", "session", "locks", "files", "secret", "killed"} {
				d[k] = true
			}
		}
		if st.Write || st.DDL {
			d["rows"], d["seq"] = true, true
		}
		if st.DDL {
			d["schema"] = true
		}
		if st.DCL || st.Privilege {
			d["acl"], d["set"] = true, true
		}
		if !st.Read {
			d["set"], d["session"] = true, true
		}
	}
	return d
}

// destroyed reports effects that removed or changed what existed: a table's content, an
// object, a column, a grant.
func destroyed(base snapshot, keys []string) bool {
	for _, k := range keys {
		switch category(k) {
		case "rows", "schema", "acl", "seq":
			if _, existed := base[k]; existed {
				return true
			}
		}
	}
	return false
}

// corpusPolicy is the embedded default policy with a MySQL tool added, as policy's tests do.
func corpusPolicy(t *testing.T) *policy.Set {
	t.Helper()
	src := strings.Replace(string(policy.DefaultPolicy()), "tools:\n",
		"tools:\n  execute_mysql:\n    sql: {argument: query, dialect: mysql}\n", 1)
	set, err := policy.Compile([]byte(src))
	require.NoError(t, err)
	return set
}

func decide(t *testing.T, set *policy.Set, d policy.Dialect, q string) policy.Decision {
	t.Helper()
	tool := "execute_sql"
	if d == policy.MySQL {
		tool = "execute_mysql"
	}
	args, err := json.Marshal(map[string]string{"query": q})
	require.NoError(t, err)
	p, err := json.Marshal(map[string]any{"name": tool, "arguments": json.RawMessage(args)})
	require.NoError(t, err)
	body, err := mcp.Parse([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":` + string(p) + `}`))
	require.NoError(t, err)
	return set.Decide(policy.Input{Identity: policy.Identity{Subject: "agent-1"}, Msg: &body.Messages[0]})
}

// stats are the numbers a run reports.
type stats struct {
	total, allowed, reads, denied, destroyRefused, destroyedSeen, byKind, errored int
	allowedAgree                                                                  int
	falseRefusals, errors                                                         []string
}

// judge runs every corpus entry against e and checks it against the classification and
// the default policy's decision.
func judge(t *testing.T, e engine, d policy.Dialect, corpus string) {
	ctx := t.Context()
	entries, err := loadCorpus(corpus)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(entries), 300, "the corpus keeps at least 300 statements")
	set := corpusPolicy(t)
	base, err := e.snapshot(ctx)
	require.NoError(t, err)
	again, err := e.snapshot(ctx)
	require.NoError(t, err)
	require.Empty(t, diff(base, again), "the snapshot of an idle database must be stable")
	baseTx, err := e.inTx(ctx)
	require.NoError(t, err)
	var s stats
	for _, en := range entries {
		q := e.expand(en.sql)
		s.total++
		t.Run(fmt.Sprintf("line%d", en.line), func(t *testing.T) {
			cls := policy.ClassifySQL(d, q)
			dec := decide(t, set, d, q)
			inTx, extra, execErr := e.run(ctx, q)
			after, err := e.snapshot(ctx)
			require.NoError(t, err, "snapshot after %q", en.sql)
			var effects []string
			if inTx != nil {
				effects = diff(baseTx, inTx)
			}
			lasting := diff(base, after)
			effects = append(effects, lasting...)
			effects = append(effects, extra...)
			cats := map[string]string{}
			for _, k := range effects {
				cats[k] = effectCategory(k, base, baseTx, inTx, after)
			}
			slices.Sort(effects)
			effects = slices.Compact(effects)
			if len(lasting) > 0 {
				require.NoError(t, e.reseed(ctx), "reseed after %q", en.sql)
				base, err = e.snapshot(ctx)
				require.NoError(t, err)
				baseTx, err = e.inTx(ctx)
				require.NoError(t, err)
			}
			if execErr != nil {
				s.errored++
				s.errors = append(s.errors, fmt.Sprintf("line %d: %s", en.line, firstLine(execErr.Error())))
			}
			allowed := dec.Action == policy.Allow
			read := cls.Parsed && cls.Value()["read"] == true
			why := fmt.Sprintf("%q: action=%s rule=%s reasons=%v effects=%v err=%v", en.sql, dec.Action, dec.Rule, cls.Reasons(), effects, execErr)

			// Expectations written in the corpus.
			switch en.expect {
			case "read":
				if !allowed || !read {
					s.falseRefusals = append(s.falseRefusals, fmt.Sprintf("line %d: %s", en.line, en.sql))
				}
				require.True(t, read, "want read: %s", why)
				require.True(t, allowed, "want allowed: %s", why)
			case "allow":
				if !allowed {
					s.falseRefusals = append(s.falseRefusals, fmt.Sprintf("line %d: %s", en.line, en.sql))
				}
				require.True(t, allowed, "want allowed: %s", why)
			case "deny", "destroy":
				require.False(t, allowed, "want refused: %s", why)
			}

			// Execution against the classification.
			if allowed {
				s.allowed++
				if read {
					s.reads++
					require.Empty(t, effects, "classified read-only but changed something: %s", why)
				}
				decl := declared(cls)
				for _, k := range effects {
					require.True(t, decl[cats[k]], "allowed, but changed %s beyond its classification: %s", k, why)
				}
				s.allowedAgree++
				return
			}
			s.denied++
			destructive := cls.Parsed && (cls.Value()["destructive"] == true || cls.Value()["unbounded"] == true)
			if en.expect == "destroy" {
				require.True(t, destructive, "want refused as destructive: %s", why)
			}
			if !destructive {
				return
			}
			s.destroyRefused++
			switch {
			case destroyed(base0(base, baseTx, inTx), effects):
				s.destroyedSeen++
			case execErr != nil:
				// Noted in the error list: it did not run, so it is what the classifier says.
			case strings.HasPrefix(en.note, "by-kind:"):
				s.byKind++
			default:
				t.Fatalf("refused as destructive, but destroyed nothing and has no by-kind note: %s", why)
			}
		})
	}
	t.Logf("%s: %d statements; allowed %d (read-only %d), allowed and within their classification %d/%d; refused %d, of them destructive/unbounded %d: destroyed on execution %d, by kind %d (noted), errored %d",
		d, s.total, s.allowed, s.reads, s.allowedAgree, s.allowed, s.denied, s.destroyRefused, s.destroyedSeen, s.byKind, s.destroyRefused-s.destroyedSeen-s.byKind)
	t.Logf("%s: false refusals of everyday statements: %d %v", d, len(s.falseRefusals), s.falseRefusals)
	t.Logf("%s: %d statements failed on execution (judged by their classification):\n%s", d, s.errored, strings.Join(s.errors, "\n"))
}

// effectCategory is the category of a changed key. An access-control entry that appears
// or disappears empty (the ACL of a table being created, renamed or dropped) is part of
// that schema change, not a change of privileges.
func effectCategory(k string, base, baseTx, inTx, after snapshot) string {
	c := category(k)
	if c != "acl" || strings.HasPrefix(k, "acl:role:") || strings.HasPrefix(k, "acl:member:") {
		return c
	}
	// Every value the key had on either side of the statement is empty, and it is
	// missing on one side: an object came or went with no grants on it.
	present, empty := 0, true
	for _, s := range []snapshot{base, baseTx, inTx, after} {
		if v, ok := s[k]; ok {
			present++
			empty = empty && v == ""
		}
	}
	if empty && present < 4 {
		return "schema"
	}
	return c
}

// base0 is the snapshot destruction is measured against: keys of either baseline.
func base0(base, baseTx, _ snapshot) snapshot {
	out := maps.Clone(base)
	maps.Copy(out, baseTx)
	return out
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// fileSnapshot adds every file under dir (name → size and SHA-256) to s.
func fileSnapshot(dir string, s snapshot) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h := sha256.Sum256(b)
		rel, _ := filepath.Rel(dir, p)
		s["files:"+rel] = fmt.Sprintf("%d:%s", len(b), hex.EncodeToString(h[:8]))
		return nil
	})
}

// cleanFiles removes every file under dir but the secret.
func cleanFiles(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Name() == "secret.txt" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func slicesSort(s []string) { slices.Sort(s) }
