package policy

import (
	"reflect"
	"slices"
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

// myStatement classifies one statement by an allow-list, as pgStatement does: kinds with
// no case below, and expressions myNested has no rule for, are Unknown.
func myStatement(s sqlparser.Statement) (Statement, error) {
	var (
		st       Statement
		readKind bool
	)
	switch v := s.(type) {
	case *sqlparser.Select, *sqlparser.Union:
		st.Kind, readKind = "select", true
	case *sqlparser.Insert:
		st.Kind = "insert"
		if v.Action == sqlparser.ReplaceAct {
			st.Kind = "replace"
		}
	case *sqlparser.Update:
		st.Kind = "update"
	case *sqlparser.Delete:
		st.Kind = "delete"
	case *sqlparser.DropTable:
		st.Kind, st.DDL, st.Destructive = "drop_table", true, true
		if v.Temp {
			st.Kind = "drop_temporary_table"
		}
	case *sqlparser.DropView:
		st.Kind, st.DDL, st.Destructive = "drop_view", true, true
	case *sqlparser.DropDatabase:
		st.Kind, st.DDL, st.Destructive = "drop_database", true, true
	case *sqlparser.TruncateTable:
		st.Kind, st.DDL, st.Destructive = "truncate", true, true
	case *sqlparser.DropProcedure:
		st.Kind, st.DDL, st.Destructive = "drop_procedure", true, true
	case *sqlparser.AlterTable:
		st.Kind, st.DDL = "alter_table", true
		for _, o := range v.AlterOptions {
			switch o.(type) {
			case *sqlparser.DropColumn, *sqlparser.ModifyColumn, *sqlparser.ChangeColumn, *sqlparser.DropKey:
				st.Destructive = true // data gone or rewritten to a new type; an index or key dropped
			}
		}
		if ps := v.PartitionSpec; ps != nil {
			switch ps.Action {
			case sqlparser.DropAction, sqlparser.TruncateAction, sqlparser.DiscardAction, sqlparser.RemoveAction:
				st.Destructive = true
			default:
			}
		}
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
		// The body runs when called, not now: its statements are not this one's effects.
		st.Kind, st.DDL, st.Dynamic = "create_procedure", true, true
		return st, nil
	case *sqlparser.Kill:
		st.Kind, st.Dynamic = "kill", true
	case *sqlparser.Set:
		st.Kind = "set"
		for _, e := range v.Exprs {
			if e.Var == nil {
				continue
			}
			switch e.Var.Scope {
			case sqlparser.GlobalScope, sqlparser.PersistSysScope, sqlparser.PersistOnlySysScope:
				st.Privilege = true // the whole server's configuration
			default:
			}
			if myGuardSettings[e.Var.Name.Lowered()] {
				st.Privilege = true
			}
		}
	case *sqlparser.Show, *sqlparser.ExplainTab:
		st.Kind, readKind = "show", true
	case *sqlparser.ExplainStmt:
		st.Kind, readKind = "explain", true
		if v.Type != sqlparser.AnalyzeType {
			inner, err := myStatement(v.Statement)
			if err != nil {
				return st, err
			}
			st.Unknown, st.UnknownFunctions, st.Functions = inner.Unknown, inner.UnknownFunctions, inner.Functions
			st.Read = !st.Unknown && len(st.Functions) == 0
			return st, nil
		}
	case *sqlparser.Begin, *sqlparser.Commit, *sqlparser.Rollback, *sqlparser.Savepoint, *sqlparser.SRollback, *sqlparser.Release:
		st.Kind = "transaction"
	case *sqlparser.Use:
		st.Kind = "use"
	case *sqlparser.DeallocateStmt:
		st.Kind = "deallocate"
	case *sqlparser.UnlockTables:
		st.Kind = "unlock_tables"
	case *sqlparser.LockTables:
		st.Kind, st.Write = "lock_tables", true
	case *sqlparser.Analyze:
		st.Kind = "analyze"
	default:
		st.Kind, st.Unknown = strings.ToLower(reflect.TypeOf(s).Elem().Name()), true
	}
	err := myNested(s, &st)
	st.Read = readKind && !st.effect()
	return st, err
}

// myGuardSettings are session settings whose change lifts a guard.
var myGuardSettings = map[string]bool{
	"foreign_key_checks": true, "sql_log_bin": true, "sql_safe_updates": true, "unique_checks": true,
	"transaction_read_only": true, "tx_read_only": true, "sql_mode": true,
}

// myKnownExprs are the expression, select-expression and table-expression nodes whose only effect is what
// myNested makes of them. Any other expression (NEXTVAL, GET_LOCK and the other locking
// functions, performance-schema and GTID functions, `@v :=` assignments, NEXT VALUE FOR (a
// select expression), one added in a later
// Vitess) is Unknown. Names, lists and options that are not expressions carry no effect.
var myKnownExprs = map[reflect.Type]bool{}

func init() {
	for _, n := range []sqlparser.SQLNode{
		&sqlparser.AndExpr{}, &sqlparser.OrExpr{}, &sqlparser.XorExpr{}, &sqlparser.NotExpr{},
		&sqlparser.ComparisonExpr{}, &sqlparser.BetweenExpr{}, &sqlparser.IsExpr{}, &sqlparser.ExistsExpr{},
		&sqlparser.Literal{}, &sqlparser.Argument{}, &sqlparser.NullVal{}, &sqlparser.ColName{},
		&sqlparser.Variable{}, &sqlparser.BinaryExpr{}, &sqlparser.UnaryExpr{}, &sqlparser.IntroducerExpr{},
		&sqlparser.TimestampDiffExpr{}, &sqlparser.ExtractFuncExpr{}, &sqlparser.CollateExpr{},
		&sqlparser.WeightStringFuncExpr{}, &sqlparser.FuncExpr{}, &sqlparser.ValuesFuncExpr{},
		&sqlparser.SubstrExpr{}, &sqlparser.CastExpr{}, &sqlparser.ConvertExpr{}, &sqlparser.ConvertUsingExpr{},
		&sqlparser.MatchExpr{}, &sqlparser.CaseExpr{}, &sqlparser.InsertExpr{}, &sqlparser.IntervalFuncExpr{},
		&sqlparser.LocateExpr{}, &sqlparser.CharExpr{}, &sqlparser.Default{}, &sqlparser.CurTimeFuncExpr{},
		&sqlparser.TrimFuncExpr{}, &sqlparser.Subquery{}, &sqlparser.Offset{},
		&sqlparser.JSONPrettyExpr{}, &sqlparser.JSONStorageFreeExpr{}, &sqlparser.JSONStorageSizeExpr{},
		&sqlparser.JSONArrayExpr{}, &sqlparser.JSONObjectExpr{}, &sqlparser.JSONQuoteExpr{},
		&sqlparser.JSONArrayAgg{}, &sqlparser.JSONObjectAgg{}, &sqlparser.JSONContainsExpr{},
		&sqlparser.JSONContainsPathExpr{}, &sqlparser.JSONExtractExpr{}, &sqlparser.JSONKeysExpr{},
		&sqlparser.JSONOverlapsExpr{}, &sqlparser.JSONSearchExpr{}, &sqlparser.JSONValueExpr{},
		&sqlparser.MemberOfExpr{}, &sqlparser.JSONSchemaValidFuncExpr{}, &sqlparser.JSONSchemaValidationReportFuncExpr{},
		&sqlparser.JSONAttributesExpr{}, &sqlparser.JSONValueModifierExpr{}, &sqlparser.JSONValueMergeExpr{},
		&sqlparser.JSONRemoveExpr{}, &sqlparser.JSONUnquoteExpr{}, &sqlparser.Count{}, &sqlparser.CountStar{},
		&sqlparser.Avg{}, &sqlparser.Max{}, &sqlparser.Min{}, &sqlparser.Sum{}, &sqlparser.BitAnd{},
		&sqlparser.BitOr{}, &sqlparser.BitXor{}, &sqlparser.Std{}, &sqlparser.StdDev{}, &sqlparser.StdPop{},
		&sqlparser.StdSamp{}, &sqlparser.VarPop{}, &sqlparser.VarSamp{}, &sqlparser.Variance{},
		&sqlparser.GroupConcatExpr{}, &sqlparser.AnyValue{}, &sqlparser.RegexpInstrExpr{},
		&sqlparser.RegexpLikeExpr{}, &sqlparser.RegexpReplaceExpr{}, &sqlparser.RegexpSubstrExpr{},
		&sqlparser.IntervalDateExpr{}, &sqlparser.ArgumentLessWindowExpr{}, &sqlparser.FirstOrLastValueExpr{},
		&sqlparser.NtileExpr{}, &sqlparser.NTHValueExpr{}, &sqlparser.LagLeadExpr{},
		&sqlparser.ExtractValueExpr{}, &sqlparser.UpdateXMLExpr{}, sqlparser.BoolVal(false),
		sqlparser.ValTuple{},
		sqlparser.ListArg(""), &sqlparser.AliasedTableExpr{},
		&sqlparser.JoinTableExpr{}, &sqlparser.ParenTableExpr{}, &sqlparser.JSONTableExpr{},
		&sqlparser.DerivedTable{},
		sqlparser.TableName{},
		&sqlparser.Select{}, &sqlparser.Union{},
		&sqlparser.Insert{}, &sqlparser.Update{}, &sqlparser.Delete{}, &sqlparser.StarExpr{},
		&sqlparser.AliasedExpr{},
	} {
		myKnownExprs[reflect.TypeOf(n)] = true
	}
}

// myNested walks the whole statement: data changes in subqueries and CTEs, INTO OUTFILE,
// locking reads, calls and unknown expressions. It gives up below maxTreeDepth: Rewrite
// (which changes nothing here) calls post after a node's children, where the depth goes
// back down.
func myNested(s sqlparser.Statement, st *Statement) error {
	depth, over := 0, false
	sqlparser.Rewrite(s, func(c *sqlparser.Cursor) bool {
		if over || depth >= maxTreeDepth {
			over = true
			return false
		}
		depth++
		n := c.Node()
		switch n.(type) {
		case sqlparser.Expr, sqlparser.SelectExpr, sqlparser.TableExpr, sqlparser.Statement:
			if n != s && !myKnownExprs[reflect.TypeOf(n)] {
				st.Unknown = true
			}
		}
		switch v := n.(type) {
		case *sqlparser.CommonTableExpr:
			switch v.Subquery.(type) {
			case *sqlparser.Select, *sqlparser.Union:
			default:
				st.ModifyingCTE = true
			}
		case *sqlparser.Delete:
			st.Write = true
			st.Unbounded = st.Unbounded || !myTarget(v.TableExprs, v.Targets).myWhere(v.Where)
		case *sqlparser.Update:
			st.Write = true
			st.Unbounded = st.Unbounded || !myTarget(v.TableExprs, nil).myWhere(v.Where)
		case *sqlparser.Insert:
			st.Write = true
		case *sqlparser.Select:
			if v.Lock != sqlparser.NoLock && v.Lock != sqlparser.ShareModeLock {
				st.Write = true // FOR UPDATE takes row locks as a write does
			}
		case *sqlparser.SelectInto:
			switch v.Type {
			case sqlparser.IntoOutfile, sqlparser.IntoDumpfile, sqlparser.IntoOutfileS3:
				st.Program = true
			default:
				st.Unknown = true // INTO @variables: session state
			}
		case *sqlparser.FuncExpr:
			myFunc(v, st)
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

// myFunc records a call as pgFunc does. MySQL function names are case-insensitive; a
// name qualified with a database is a stored function.
func myFunc(f *sqlparser.FuncExpr, st *Statement) {
	name := f.Name.Lowered()
	if f.Qualifier.IsEmpty() {
		if sideEffectFuncs[name] {
			if !slices.Contains(st.Functions, name) {
				st.Functions = append(st.Functions, name)
			}
			return
		}
		if pureFuncs[name] {
			return
		}
	} else {
		name = f.Qualifier.String() + "." + name
	}
	st.Unknown = true
	if !slices.Contains(st.UnknownFunctions, name) {
		st.UnknownFunctions = append(st.UnknownFunctions, name)
	}
}

// myTarget names the table a DELETE or UPDATE changes (see dmlTarget): one table
// (aliased or not) or, for multi-table forms, the DELETE targets with other tables in
// scope.
func myTarget(from []sqlparser.TableExpr, targets sqlparser.TableNames) dmlTarget {
	t := dmlTarget{others: len(from) != 1 || len(targets) > 0}
	if len(from) == 1 {
		if a, ok := from[0].(*sqlparser.AliasedTableExpr); ok {
			if !a.As.IsEmpty() {
				t.names = append(t.names, a.As.String())
			} else if tn, ok := a.Expr.(sqlparser.TableName); ok {
				t.names = append(t.names, tn.Name.String())
			}
		} else {
			t.others = true
		}
	}
	for _, tn := range targets {
		t.names = append(t.names, tn.Name.String())
	}
	return t
}

// myRestricts is dmlTarget.restricts for MySQL's tree.
func (t dmlTarget) myRestricts(e sqlparser.Expr, depth int) bool {
	if e == nil || depth >= maxTreeDepth {
		return false
	}
	switch v := e.(type) {
	case *sqlparser.AndExpr:
		return t.myRestricts(v.Left, depth+1) || t.myRestricts(v.Right, depth+1)
	case *sqlparser.OrExpr:
		return t.myRestricts(v.Left, depth+1) && t.myRestricts(v.Right, depth+1)
	case *sqlparser.XorExpr:
		return false // true for every row where one side is constant
	case *sqlparser.NotExpr:
		return t.myRefs(v.Expr) && !myTrue(v.Expr, 0)
	}
	return t.myRefs(e) && !myTrue(e, 0)
}

func (t dmlTarget) myWhere(w *sqlparser.Where) bool {
	if w == nil || w.Expr == nil {
		return false
	}
	return t.myRestricts(w.Expr, 0)
}

// myRefs reports a column of the target in e (see dmlTarget.refs).
func (t dmlTarget) myRefs(e sqlparser.Expr) bool {
	found := false
	var walk func(n sqlparser.SQLNode, inSub bool)
	walk = func(n sqlparser.SQLNode, inSub bool) {
		_ = sqlparser.Walk(func(n sqlparser.SQLNode) (bool, error) {
			if found {
				return false, nil
			}
			switch v := n.(type) {
			case *sqlparser.ColName:
				q := v.Qualifier.Name.String()
				if (q == "" && !inSub && !t.others) || (q != "" && slices.Contains(t.names, q)) {
					found = true
				}
				return false, nil
			case *sqlparser.Subquery:
				if !inSub {
					walk(v.Select, true)
					return false, nil
				}
			}
			return true, nil
		}, n)
	}
	walk(e, false)
	return found
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
