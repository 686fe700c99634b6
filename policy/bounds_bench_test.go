package policy

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkBound measures the pre-scan every payload pays before parsing.
func BenchmarkBound(b *testing.B) {
	typical := "SELECT o.id, o.total, c.email FROM orders o JOIN customers c ON c.id = o.customer_id " +
		"WHERE o.created_at > now() - interval '7 days' AND o.status IN ('paid', 'shipped') ORDER BY o.total DESC LIMIT 50"
	var big strings.Builder
	big.WriteString("SELECT ")
	for i := 0; big.Len() < 64<<10; i++ {
		fmt.Fprintf(&big, "CASE WHEN x.c%d = 'a' AND (x.d > %d OR x.e IS NULL) THEN coalesce(x.e, 0) + 1 ELSE 0 END AS c%d, ", i, i, i)
	}
	big.WriteString("1 FROM t x")
	cmd := `find . -name '*.go' -newer go.mod | xargs grep -l "TODO" | sort | head -20 && git status --short 2>/dev/null`
	script := "cat > gen.py <<'EOF'\n" + strings.Repeat("print(f'{(lambda x: (x, [x]))(1)}')\n", 1800) + "EOF\npython3 gen.py\n"
	for _, c := range []struct {
		name string
		f    func() error
		n    int
	}{
		{"sql-typical", func() error { return sqlBound(Postgres, typical) }, len(typical)},
		{"sql-64KiB", func() error { return sqlBound(Postgres, big.String()) }, big.Len()},
		{"mysql-64KiB", func() error { return sqlBound(MySQL, big.String()) }, big.Len()},
		{"shell-typical", func() error { return shellBound(cmd) }, len(cmd)},
		{"shell-64KiB-heredoc", func() error { return shellBound(script) }, len(script)},
	} {
		b.Run(c.name, func(b *testing.B) {
			if err := c.f(); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(c.n))
			b.ReportAllocs()
			for b.Loop() {
				_ = c.f()
			}
		})
	}
}
