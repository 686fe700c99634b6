package policy

import (
	"reflect"
	"strconv"
	"strings"
	"sync"

	"vitess.io/vitess/go/vt/sqlparser"
)

// myParser is built once: it is safe for concurrent use. MySQL 8.0 semantics decide which
// versioned comments (/*!50000 … */) count as code, as they would on the server.
var myParser = sync.OnceValues(func() (*sqlparser.Parser, error) {
	return sqlparser.New(sqlparser.Options{MySQLServerVersion: "8.0.40"})
})

// classifyMySQL parses q with Vitess' MySQL grammar and classifies each statement.
func classifyMySQL(q string) ([]Statement, error) {
	p, err := myParser()
	if err != nil {
		return nil, err //nolint:wrapcheck // build-time configuration, cannot fail at run time
	}
	stmts, err := p.ParseMultipleIgnoreEmpty(q)
	if err != nil {
		return nil, err //nolint:wrapcheck // the parser's message is the reason shown
	}
	out := make([]Statement, 0, len(stmts))
	for _, s := range stmts {
		st, err := myStatement(s)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func myStatement(s sqlparser.Statement) (Statement, error) {
	var st Statement
	switch v := s.(type) {
	case *sqlparser.Select, *sqlparser.Union:
		st.Kind, st.Read = "select", true
	case *sqlparser.Insert:
		st.Kind, st.Write = "insert", true
		if v.Action == sqlparser.ReplaceAct {
			st.Kind = "replace"
		}
	case *sqlparser.Update:
		st.Kind, st.Write = "update", true
		st.Unbounded = myTautology(v.Where)
	case *sqlparser.Delete:
		st.Kind, st.Write = "delete", true
		st.Unbounded = myTautology(v.Where)
	case *sqlparser.DropTable:
		st.Kind, st.DDL, st.Destructive = "drop_table", true, true
	case *sqlparser.DropView:
		st.Kind, st.DDL, st.Destructive = "drop_view", true, true
	case *sqlparser.DropDatabase:
		st.Kind, st.DDL, st.Destructive = "drop_database", true, true
	case *sqlparser.TruncateTable:
		st.Kind, st.DDL, st.Destructive = "truncate", true, true
	case *sqlparser.DropProcedure:
		st.Kind, st.DDL = "drop_procedure", true
	case *sqlparser.AlterTable:
		st.Kind, st.DDL = "alter_table", true
	case *sqlparser.CreateTable:
		st.Kind, st.DDL = "create_table", true
	case *sqlparser.CreateView:
		st.Kind, st.DDL = "create_view", true
	case *sqlparser.AlterView:
		st.Kind, st.DDL = "alter_view", true
	case *sqlparser.RenameTable:
		st.Kind, st.DDL = "rename", true
	case *sqlparser.CreateDatabase:
		st.Kind, st.DDL = "create_database", true
	case *sqlparser.AlterDatabase:
		st.Kind, st.DDL = "alter_database", true
	case *sqlparser.Load:
		st.Kind, st.Write, st.Program = "load_data", true, true
	case *sqlparser.PrepareStmt:
		st.Kind, st.Dynamic = "prepare", true
	case *sqlparser.ExecuteStmt:
		st.Kind, st.Dynamic = "execute", true
	case *sqlparser.CallProc:
		st.Kind, st.Dynamic = "call", true
	case *sqlparser.CreateProcedure:
		st.Kind, st.DDL, st.Dynamic = "create_procedure", true, true
	case *sqlparser.Kill:
		st.Kind, st.Dynamic = "kill", true
	case *sqlparser.Set:
		st.Kind = "set"
	case *sqlparser.Show, *sqlparser.ExplainTab:
		st.Kind, st.Read = "show", true
	case *sqlparser.ExplainStmt:
		st.Kind, st.Read = "explain", true
	case *sqlparser.Begin, *sqlparser.Commit, *sqlparser.Rollback, *sqlparser.Savepoint, *sqlparser.SRollback, *sqlparser.Release:
		st.Kind = "transaction"
	case *sqlparser.Use:
		st.Kind = "use"
	case *sqlparser.OtherAdmin:
		st.Kind, st.Dynamic = "admin", true
	default:
		st.Kind = strings.ToLower(reflect.TypeOf(s).Elem().Name())
	}
	err := myNested(s, &st)
	return st, err
}

// myNested walks the whole statement: data changes in subqueries and CTEs, INTO OUTFILE,
// and side-effecting function calls. It gives up below maxTreeDepth: Rewrite (which changes
// nothing here) calls post after a node's children, where the depth goes back down.
func myNested(s sqlparser.Statement, st *Statement) error {
	depth, over := 0, false
	sqlparser.Rewrite(s, func(c *sqlparser.Cursor) bool {
		if over || depth >= maxTreeDepth {
			over = true
			return false
		}
		depth++
		switch v := c.Node().(type) {
		case *sqlparser.CommonTableExpr:
			switch v.Subquery.(type) {
			case *sqlparser.Select, *sqlparser.Union:
			default:
				st.ModifyingCTE, st.Write, st.Read = true, true, false
			}
		case *sqlparser.Delete:
			st.Write, st.Read = true, false
			st.Unbounded = st.Unbounded || myTautology(v.Where)
		case *sqlparser.Update:
			st.Write, st.Read = true, false
			st.Unbounded = st.Unbounded || myTautology(v.Where)
		case *sqlparser.Insert:
			st.Write, st.Read = true, false
		case *sqlparser.SelectInto:
			if v.Type == sqlparser.IntoOutfile || v.Type == sqlparser.IntoDumpfile || v.Type == sqlparser.IntoOutfileS3 {
				st.Program, st.Read = true, false
			}
		case *sqlparser.FuncExpr:
			if f, ok := sideEffect(v.Name.String()); ok && !containsStr(st.Functions, f) {
				st.Functions = append(st.Functions, f)
				st.Read = false
			}
		}
		return true
	}, func(*sqlparser.Cursor) bool {
		depth--
		return !over
	})
	if over {
		return errTreeDepth
	}
	return nil
}

// myTautology reports a WHERE that restricts nothing (see pgTautology).
func myTautology(w *sqlparser.Where) bool {
	if w == nil || w.Expr == nil {
		return true
	}
	return myTrue(w.Expr, 0)
}

// myTrue judges nothing below maxTreeDepth a truth (the walk of the same tree refuses it).
func myTrue(e sqlparser.Expr, depth int) bool {
	if depth >= maxTreeDepth {
		return false
	}
	switch v := e.(type) {
	case sqlparser.BoolVal:
		return bool(v)
	case *sqlparser.Literal:
		switch v.Type {
		case sqlparser.IntVal, sqlparser.FloatVal, sqlparser.DecimalVal:
			f, err := strconv.ParseFloat(v.Val, 64)
			return err == nil && f != 0
		default:
			return false // strings, hex and dates are not counted as constant truths
		}
	case *sqlparser.OrExpr:
		return myTrue(v.Left, depth+1) || myTrue(v.Right, depth+1)
	case *sqlparser.AndExpr:
		return myTrue(v.Left, depth+1) && myTrue(v.Right, depth+1)
	case *sqlparser.ComparisonExpr:
		same := sqlparser.String(v.Left) == sqlparser.String(v.Right)
		_, lc := v.Left.(*sqlparser.Literal)
		_, rc := v.Right.(*sqlparser.Literal)
		switch v.Operator {
		case sqlparser.EqualOp, sqlparser.GreaterEqualOp, sqlparser.LessEqualOp, sqlparser.NullSafeEqualOp:
			return same
		case sqlparser.NotEqualOp:
			return lc && rc && !same
		default:
			return false
		}
	}
	return false
}
