package recordings_test

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/recordings"
)

// archiveOf records sessions with two replicas into one directory sink: replica r1 runs
// three times on the same spool (so its index has three parts), r2 once. Sessions:
// s1 (r1 run 1), s2 (r1 run 2), shared (r1 run 2 and r2), s3 (r1 run 3).
func archiveOf(t *testing.T) (root string, sink *recordings.Dir, pub ed25519.PublicKey, key ed25519.PrivateKey) {
	t.Helper()
	root = t.TempDir()
	sink, err := recordings.NewDir(root)
	require.NoError(t, err)
	key = testKey(t)
	spool := t.TempDir()
	run := func(replica, spool string, sessions ...string) {
		cfg := testConfig(t)
		cfg.ReplicaID = replica
		cfg.Spool.Dir = spool
		r := openRecorder(t, cfg, sink, key)
		for _, s := range sessions {
			exchange(t, r, s, 1)
		}
		require.NoError(t, r.Close(t.Context()))
	}
	run("r1", spool, "s1")
	run("r1", spool, "s2", "shared")
	run("r2", t.TempDir(), "shared")
	run("r1", spool, "s3")
	return root, sink, key.Public().(ed25519.PublicKey), key
}

func verifyAll(t *testing.T, sink recordings.Sink, pub ed25519.PublicKey) (*recordings.Report, string) {
	t.Helper()
	rep, err := recordings.NewArchive(sink, "").WithIndexGrace(0).VerifyAll(t.Context(), pub, nil)
	require.NoError(t, err)
	var b strings.Builder
	for _, v := range rep.Sessions {
		b.WriteString(v.String() + "\n")
	}
	for _, v := range rep.Replicas {
		b.WriteString(v.String() + "\n")
	}
	for _, d := range rep.Days {
		b.WriteString("FAIL " + d + "\n")
	}
	return rep, b.String()
}

func chainDirs(t *testing.T, root, session string) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(root, "*", "*", "*", session, "*"))
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	return dirs
}

func TestVerifyAllDetectsDeletion(t *testing.T) {
	today := time.Now().UTC().Format("2006/01/02")
	cases := []struct {
		name   string
		delete func(t *testing.T, root string)
		want   []string
	}{
		{"nothing deleted", func(*testing.T, string) {}, nil},
		{"a whole chain", func(t *testing.T, root string) {
			for _, d := range chainDirs(t, root, "shared") {
				if strings.Contains(filepath.Base(d), "r2~") {
					require.NoError(t, os.RemoveAll(d))
				}
			}
		}, []string{
			"FAIL shared: chain r2~",
			"listed in the index (closed ",
			"but missing from storage: deleted",
			"FAIL replica r2 epoch ",
			"manifest(s) missing: 1 (session shared chain r2~",
		}},
		{"a whole session", func(t *testing.T, root string) {
			dirs := chainDirs(t, root, "s2")
			require.NoError(t, os.RemoveAll(filepath.Dir(dirs[0])))
		}, []string{
			"FAIL s2: chain r1~",
			"but missing from storage: deleted",
			"FAIL replica r1 epoch ",
			// s2's position among r1's manifests depends on the order chains closed in.
			`re:manifest\(s\) missing: \d \(session s2 chain r1~`,
		}},
		{"a whole day's index", func(t *testing.T, root string) {
			require.NoError(t, os.RemoveAll(filepath.Join(root, "index", filepath.FromSlash(today))))
		}, []string{
			"FAIL day " + strings.ReplaceAll(today, "/", "-") + " replica r1: 4 closed chain(s) in storage but no index part (index deleted?)",
			"FAIL day " + strings.ReplaceAll(today, "/", "-") + " replica r2: 1 closed chain(s)",
		}},
		{"one index part: a gap in time", func(t *testing.T, root string) {
			parts, err := filepath.Glob(filepath.Join(root, "index", filepath.FromSlash(today), "r1", "*-0000000002.json.gz"))
			require.NoError(t, err)
			require.Len(t, parts, 1)
			require.NoError(t, os.Remove(parts[0]))
		}, []string{
			"FAIL s2: chain r1~",
			"not in the index of its day (entry removed, or copied in)",
			"index part(s) 2 missing: what was indexed between ",
			"is unaccounted for (a gap in time)",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root, sink, pub, _ := archiveOf(t)
			c.delete(t, root)
			rep, out := verifyAll(t, sink, pub)
			if c.want == nil {
				require.True(t, rep.OK(), out)
				require.Len(t, rep.Sessions, 4, out)
				require.Contains(t, out, "OK   replica r1 epoch ")
				require.Contains(t, out, ": 4 manifest(s) and 3 index part(s) chained without gaps")
				return
			}
			require.False(t, rep.OK(), out)
			t.Log(out)
			for _, w := range c.want {
				if re, ok := strings.CutPrefix(w, "re:"); ok {
					require.Regexp(t, re, out)
					continue
				}
				require.Contains(t, out, w)
			}
		})
	}
}

// A chain closed moments ago whose index part is not uploaded yet is not reported:
// the grace covers the recorder's sealing and upload delay.
func TestVerifyAllWaitsForFreshIndexEntries(t *testing.T) {
	root, sink, pub, _ := archiveOf(t)
	require.NoError(t, os.RemoveAll(filepath.Join(root, "index")))
	rep, err := recordings.NewArchive(sink, "").VerifyAll(t.Context(), pub, nil)
	require.NoError(t, err)
	require.True(t, rep.OK())
	_, out := verifyAll(t, sink, pub) // no grace: the same storage fails
	require.Contains(t, out, "no index part (index deleted?)")
}

// A manifest replaced by another validly signed one (the key holder rewriting history)
// no longer matches the digest the index and the next manifest name.
func TestVerifyAllDetectsReplacedManifest(t *testing.T) {
	root, sink, pub, _ := archiveOf(t)
	s1 := filepath.Join(chainDirs(t, root, "s1")[0], "manifest.json")
	s3 := filepath.Join(chainDirs(t, root, "s3")[0], "manifest.json")
	b, err := os.ReadFile(s3)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(s1, b, 0o600))
	_, out := verifyAll(t, sink, pub)
	require.Contains(t, out, "FAIL s1: chain r1~")
	require.Contains(t, out, "manifest names session s3")
}

func TestSearchFilters(t *testing.T) {
	_, sink, _, _ := archiveOf(t)
	a := recordings.NewArchive(sink, "")
	names := func(q recordings.Query) []string {
		found, err := a.Search(t.Context(), q)
		require.NoError(t, err)
		require.Empty(t, found.Notes)
		var out []string
		for _, s := range found.Sessions {
			out = append(out, s.Name)
		}
		return out
	}
	now := time.Now()
	require.ElementsMatch(t, []string{"s1", "s2", "s3", "shared"}, names(recordings.Query{}))
	require.ElementsMatch(t, []string{"s1", "s2", "s3", "shared"}, names(recordings.Query{Since: now.Add(-time.Hour), Identity: "agent-1", Tool: "echo", Rule: "allow-echo", Decision: "allow"}))
	require.ElementsMatch(t, []string{"s1", "s2", "s3", "shared"}, names(recordings.Query{Identity: "client-1"}))
	require.Empty(t, names(recordings.Query{Identity: "agent"}), "identity is exact, not a substring")
	require.Empty(t, names(recordings.Query{Since: now.Add(time.Hour)}))
	require.Empty(t, names(recordings.Query{Until: now.Add(-time.Hour)}))
	require.Empty(t, names(recordings.Query{Decision: "deny"}))
	require.Empty(t, names(recordings.Query{Tool: "execute_sql"}))
	require.Equal(t, []string{"s2"}, names(recordings.Query{RequestID: "req-s2-1"}))
	require.Equal(t, []string{"shared"}, names(recordings.Query{Prefix: "sh"}))
}

func TestResolvePrefixes(t *testing.T) {
	_, sink, _, _ := archiveOf(t)
	a := recordings.NewArchive(sink, "")
	s, err := a.Resolve(t.Context(), "sha", recordings.Query{})
	require.NoError(t, err)
	require.Equal(t, "shared", s.Name)
	require.Len(t, s.Chains, 2)

	_, err = a.Resolve(t.Context(), "s", recordings.Query{})
	var amb *recordings.AmbiguousError
	require.ErrorAs(t, err, &amb)
	require.Equal(t, []string{"s1", "s2", "s3", "shared"}, amb.Candidates)
	require.Contains(t, err.Error(), `session "s" is ambiguous: it starts 4 sessions: s1, s2, s3, shared`)

	s, err = a.Resolve(t.Context(), "s", recordings.Query{RequestID: "req-s3-1"})
	require.NoError(t, err, "a filter narrows a prefix")
	require.Equal(t, "s3", s.Name)

	_, err = a.Resolve(t.Context(), "zz", recordings.Query{})
	require.ErrorIs(t, err, recordings.ErrNotFound)
}

// Without its index a day is still listed (from storage) and says so; reindex rebuilds it.
func TestReindexRebuildsLostIndex(t *testing.T) {
	root, sink, _, key := archiveOf(t)
	require.NoError(t, os.RemoveAll(filepath.Join(root, "index")))
	a := recordings.NewArchive(sink, "")
	found, err := a.Search(t.Context(), recordings.Query{Tool: "echo"})
	require.NoError(t, err)
	require.Len(t, found.Sessions, 4)
	require.Len(t, found.Notes, 1)
	require.Contains(t, found.Notes[0], "has no index: listed from storage")

	// A key other than the one that signed the manifests indexes nothing.
	res, err := a.Reindex(t.Context(), testKey(t), recordings.Query{}, time.Now())
	require.NoError(t, err)
	require.Len(t, res.Skipped, 5)
	require.Zero(t, res.Indexed)
	require.NoError(t, os.RemoveAll(filepath.Join(root, "index")))

	res, err = recordings.NewArchive(sink, "").Reindex(t.Context(), key, recordings.Query{}, time.Now())
	require.NoError(t, err)
	require.Equal(t, 5, res.Indexed)
	require.Equal(t, 2, res.Parts, "one part per replica")
	found, err = recordings.NewArchive(sink, "").Search(t.Context(), recordings.Query{Tool: "echo"})
	require.NoError(t, err)
	require.Len(t, found.Sessions, 4)
	require.Empty(t, found.Notes)
}

// Each chain's events are numbered from 1: seq is per session, not per replica.
func TestSeqPerSession(t *testing.T) {
	cfg := testConfig(t)
	sink, err := recordings.NewDir(cfg.Sink.Dir.Path)
	require.NoError(t, err)
	r := openRecorder(t, cfg, sink, testKey(t))
	for i := range 3 {
		exchange(t, r, "a", i)
		exchange(t, r, "b", i)
	}
	require.NoError(t, r.Close(context.Background()))
	a := recordings.NewArchive(sink, "")
	for _, name := range []string{"a", "b"} {
		s, err := a.Resolve(t.Context(), name, recordings.Query{})
		require.NoError(t, err)
		evs, err := a.Events(t.Context(), s)
		require.NoError(t, err)
		for i, e := range evs {
			require.Equal(t, uint64(i+1), e.Seq, "session %s event %d", name, i)
		}
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Time
		err  bool
	}{
		{"7d", now.Add(-7 * 24 * time.Hour), false},
		{"36h", now.Add(-36 * time.Hour), false},
		{"1d12h30m", now.Add(-36*time.Hour - 30*time.Minute), false},
		{"45s", now.Add(-45 * time.Second), false},
		{"2026-03-01", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), false},
		{"2026-03-01T10:00:00+02:00", time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC), false},
		{"", time.Time{}, true},
		{"0d", time.Time{}, true},
		{"-7d", time.Time{}, true},
		{"7", time.Time{}, true},
		{"7w", time.Time{}, true},
		{"999999999d", time.Time{}, true},
		{"yesterday", time.Time{}, true},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := recordings.ParseTime(c.in, now)
			if c.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.True(t, c.want.Equal(got), "got %s", got)
		})
	}
}
