package policy

import (
	"strings"
	"testing"

	pg "github.com/pganalyze/pg_query_go/v6"
	"github.com/stretchr/testify/require"
	"mvdan.cc/sh/v3/syntax"
	"vitess.io/vitess/go/vt/sqlparser"
)

// TestDepthEstimate pins the model: brackets weigh bracketWeight, operators stack within an
// operand, commas and connectives start a new operand, quoted text counts for nothing.
func TestDepthEstimate(t *testing.T) {
	for _, c := range []struct {
		name    string
		dialect Dialect
		q       string
		want    int
	}{
		{"plain", Postgres, "SELECT 1", 4},
		{"bracket", Postgres, "SELECT (1)", 8},
		{"operators stack", Postgres, "SELECT 1+2*3", 6},
		{"list elements do not stack", Postgres, "SELECT 1+1, 2+2, 3+3", 5},
		{"connectives stack, operands restart", Postgres, "SELECT 1 WHERE a=1 AND b=2 AND c=3", 7},
		{"set operations stack across lists", Postgres, "SELECT 1, 2 UNION SELECT 3, 4 UNION SELECT 5", 6},
		{"each operator byte counts", Postgres, "SELECT 1 <> 2", 6},
		{"case is a bracket", Postgres, "SELECT CASE WHEN a THEN 1 ELSE 2 END", 8},
		{"statements restart", Postgres, "SELECT 1+1; SELECT 2", 5},
		{"string", Postgres, "SELECT '(((' ", 4},
		{"e-string escape", Postgres, `SELECT E'\'((('`, 4},
		{"dollar quote", Postgres, "SELECT $f$ ((( $f$", 4},
		{"mysql hash comment", MySQL, "SELECT 1 # (((", 4},
		{"postgres hash operator", Postgres, "SELECT 1 # 2", 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, sqlDepth(c.dialect, c.q))
		})
	}
	for _, c := range []struct {
		name, cmd string
		want      int
	}{
		{"plain", "ls -la", 4},
		{"substitution", "echo $(date)", 8},
		{"pipeline stacks", "a | b | c", 6},
		{"statements restart", "a | b; c | d\ne | f", 5},
		{"continued chain", "a &&\nb &&\nc", 6},
		{"a double-quoted string is one level", `echo '$(' "(" \(`, 8},
		{"double quotes nest", `echo "$(echo "x")"`, 16},
		{"compound", "if a; then b; fi", 8},
		{"case", "case x in a) b;; esac", 8},
		{"heredoc body", "cat <<E\n$(x)\nE\n", 12},
		{"quoted heredoc body", "cat <<'E'\n$(x)\nE\n", 4},
	} {
		t.Run("shell "+c.name, func(t *testing.T) {
			m := newMeter()
			require.False(t, shellScan(c.cmd, m))
			require.Equal(t, c.want, m.max)
		})
	}
}

// TestWalksStopAtTreeDepth: a tree deeper than maxTreeDepth (one the pre-scan misjudged) is
// refused by every walker instead of being recursed to the end.
func TestWalksStopAtTreeDepth(t *testing.T) {
	const n = maxTreeDepth + 10
	t.Run("postgres", func(t *testing.T) {
		leaf := &pg.Node{Node: &pg.Node_AConst{AConst: &pg.A_Const{Val: &pg.A_Const_Ival{Ival: &pg.Integer{Ival: 1}}}}}
		expr := leaf
		for range n {
			expr = &pg.Node{Node: &pg.Node_BoolExpr{BoolExpr: &pg.BoolExpr{Boolop: pg.BoolExprType_OR_EXPR, Args: []*pg.Node{expr}}}}
		}
		stmt := &pg.Node{Node: &pg.Node_DeleteStmt{DeleteStmt: &pg.DeleteStmt{WhereClause: expr}}}
		_, err := pgStatement(stmt)
		require.ErrorIs(t, err, errTreeDepth)
		require.False(t, pgTautology(expr, 0), "a tree too deep to judge is not a tautology")
		require.False(t, pgSame(expr, expr), "operands too deep to compare are not the same")
		require.ErrorIs(t, clearLocations(expr.ProtoReflect()), errTreeDepth)
	})
	t.Run("mysql", func(t *testing.T) {
		var expr sqlparser.Expr = sqlparser.BoolVal(true)
		for range n {
			expr = &sqlparser.OrExpr{Left: expr, Right: sqlparser.BoolVal(false)}
		}
		_, err := myStatement(&sqlparser.Delete{Where: &sqlparser.Where{Type: sqlparser.WhereClause, Expr: expr}})
		require.ErrorIs(t, err, errTreeDepth)
		require.False(t, myTrue(expr, 0))
	})
	t.Run("shell", func(t *testing.T) {
		stmt := &syntax.Stmt{Cmd: &syntax.CallExpr{Args: []*syntax.Word{{Parts: []syntax.WordPart{&syntax.Lit{Value: "true"}}}}}}
		for range n {
			stmt = &syntax.Stmt{Cmd: &syntax.Subshell{Stmts: []*syntax.Stmt{stmt}}}
		}
		visited := 0
		err := shWalk(&syntax.File{Stmts: []*syntax.Stmt{stmt}}, func(syntax.Node) bool { visited++; return true })
		require.ErrorIs(t, err, errTreeDepth)
		require.LessOrEqual(t, visited, maxTreeDepth)
		// A shallow tree is walked whole.
		f, err := syntax.NewParser().Parse(strings.NewReader("(a; (b))"), "")
		require.NoError(t, err)
		require.NoError(t, shWalk(f, func(syntax.Node) bool { return true }))
	})
}
