package policy

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// memoTexts are statements and command lines of every shape the memos remember: several
// statements, functions, CTEs, nested SQL in shell.
func memoTexts(i int) (sql, shell string) {
	switch i % 4 {
	case 0:
		return fmt.Sprintf("SELECT id, email FROM users WHERE id = %d", i), fmt.Sprintf("ls -la /tmp/d%d", i)
	case 1:
		return fmt.Sprintf("WITH d AS (DELETE FROM t WHERE id = %d RETURNING *) SELECT count(*) FROM d; SELECT pg_sleep(%d)", i, i),
			fmt.Sprintf("psql -c 'DELETE FROM t WHERE id = %d' | tee /tmp/o%d", i, i)
	case 2:
		return fmt.Sprintf("UPDATE t SET a = f(%d), b = nextval('s') WHERE a = a OR %d = %d", i, i, i),
			fmt.Sprintf("sudo env A=%d bash -c 'rm -rf /x/%d' && curl -d @f http://h/%d", i, i, i)
	default:
		return fmt.Sprintf("SELECT a FROM t%d; INSERT INTO u VALUES (%d); DROP TABLE v%d", i, i, i),
			fmt.Sprintf("git -C /r%d status; kubectl delete pod p%d; f() { f | f & }; f", i, i)
	}
}

// TestMemoSameAsClassifier: a remembered classification, at its first use and at the next,
// is the classification (and CEL value) of the classifier itself.
func TestMemoSameAsClassifier(t *testing.T) {
	c := classifier{sql: newMemo[SQL](64, 1<<20), shell: newMemo[Shell](64, 1<<20)}
	for i := range 40 {
		q, cmd := memoTexts(i)
		for _, d := range []Dialect{Postgres, MySQL} {
			want := ClassifySQL(d, q)
			for range 2 {
				got := c.classifySQL(d, q)
				require.Equal(t, want, got.v, q)
				require.Equal(t, want.Value(), got.val, q)
			}
		}
		want := ClassifyShell(cmd)
		for range 2 {
			got := c.classifyShell(cmd)
			require.Equal(t, want, got.v, cmd)
			require.Equal(t, want.Value(), got.val, cmd)
		}
	}
	n, _ := c.sql.size()
	require.Positive(t, n)
}

// TestMemoKeepsNoFailure: what did not parse, or was refused by a bound, or holds SQL that did
// not parse, is classified again at each use.
func TestMemoKeepsNoFailure(t *testing.T) {
	c := classifier{sql: newMemo[SQL](64, 1<<20), shell: newMemo[Shell](64, 1<<20)}
	for _, q := range []string{"SELEC 1", "", "SELECT " + strings.Repeat("(", 5000) + "1" + strings.Repeat(")", 5000)} {
		for range 2 {
			got := c.classifySQL(Postgres, q)
			require.False(t, got.v.Parsed)
			require.Equal(t, ClassifySQL(Postgres, q), got.v)
		}
	}
	require.False(t, c.classifySQL("oracle", "SELECT 1").v.Parsed)
	for _, cmd := range []string{"'unterminated", "psql -c 'SELEC 1'", strings.Repeat("(", 5000)} {
		for range 2 {
			require.Equal(t, ClassifyShell(cmd), c.classifyShell(cmd).v)
		}
	}
	sqlN, _ := c.sql.size()
	shN, _ := c.shell.size()
	require.Zero(t, sqlN)
	require.Zero(t, shN)
}

// TestMemoBounds: however many texts go through, the memo holds no more entries and no more
// estimated bytes than its bounds, and what is used keeps being found.
func TestMemoBounds(t *testing.T) {
	for _, b := range []struct{ entries, bytes int }{{10, 1 << 20}, {1000, 512 << 10}} {
		c := classifier{sql: newMemo[SQL](b.entries, b.bytes)}
		hot := "SELECT 1"
		for i := range 300 {
			q, _ := memoTexts(i)
			c.classifySQL(Postgres, q)
			c.classifySQL(Postgres, hot)
			n, bytes := c.sql.size()
			require.LessOrEqual(t, n, b.entries)
			require.LessOrEqual(t, bytes, b.bytes)
		}
		_, ok := c.sql.get(memoKey{dialect: Postgres, text: hot})
		require.True(t, ok, "a text used at every step was dropped")
	}
	// An entry larger than a 64th of the bytes is not kept.
	c := classifier{sql: newMemo[SQL](10, 1<<20)}
	long := "SELECT " + strings.Repeat("a, ", 6000) + "b FROM t"
	require.True(t, c.classifySQL(Postgres, long).v.Parsed)
	n, _ := c.sql.size()
	require.Zero(t, n)
}

// TestMemoConcurrent: decisions share the memo (run with -race).
func TestMemoConcurrent(t *testing.T) {
	c := classifier{sql: newMemo[SQL](16, 1<<20), shell: newMemo[Shell](16, 1<<20)}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 60 {
				q, cmd := memoTexts((i + g) % 24)
				if got := c.classifySQL(Postgres, q); !got.v.Parsed {
					t.Errorf("%q did not parse", q)
				}
				c.classifyShell(cmd)
			}
		})
	}
	wg.Wait()
	n, _ := c.sql.size()
	require.LessOrEqual(t, n, 16)
}

// TestMemoBytesBound: the bytes the memo accounts for are at least what its entries hold on
// the heap, so the byte bound bounds memory.
func TestMemoBytesBound(t *testing.T) {
	const n = 400
	texts := make([][2]string, n)
	for i := range texts {
		texts[i][0], texts[i][1] = memoTexts(i)
	}
	c := classifier{sql: newMemo[SQL](4*n, 1<<30), shell: newMemo[Shell](4*n, 1<<30)}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, tx := range texts {
		c.classifySQL(Postgres, tx[0])
		c.classifyShell(tx[1])
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	sqlN, sqlBytes := c.sql.size()
	shN, shBytes := c.shell.size()
	require.Equal(t, n, sqlN)
	require.Equal(t, n, shN)
	held := int(after.HeapAlloc) - int(before.HeapAlloc)
	t.Logf("held %d bytes on the heap, accounted %d", held, sqlBytes+shBytes)
	require.LessOrEqual(t, held, sqlBytes+shBytes)
	runtime.KeepAlive(c)
	runtime.KeepAlive(texts)
}
