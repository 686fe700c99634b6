package policy

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// classifyPostgres parses q with the Postgres parser itself (libpg_query) and classifies
// each top-level statement, walking its whole tree.
func classifyPostgres(q string) ([]Statement, error) {
	tree, err := pg.Parse(q)
	if err != nil {
		return nil, err //nolint:wrapcheck // the parser's message is the reason shown
	}
	out := make([]Statement, 0, len(tree.GetStmts()))
	for _, raw := range tree.GetStmts() {
		st, err := pgStatement(raw.GetStmt())
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func pgStatement(n *pg.Node) (Statement, error) {
	var st Statement
	switch s := n.GetNode().(type) {
	case *pg.Node_SelectStmt:
		st.Kind, st.Read = "select", true
	case *pg.Node_InsertStmt:
		st.Kind, st.Write = "insert", true
	case *pg.Node_UpdateStmt:
		st.Kind, st.Write = "update", true
		st.Unbounded = pgTautology(s.UpdateStmt.GetWhereClause(), 0)
	case *pg.Node_DeleteStmt:
		st.Kind, st.Write = "delete", true
		st.Unbounded = pgTautology(s.DeleteStmt.GetWhereClause(), 0)
	case *pg.Node_MergeStmt:
		st.Kind, st.Write = "merge", true
	case *pg.Node_DropStmt:
		obj := strings.ToLower(strings.TrimPrefix(s.DropStmt.GetRemoveType().String(), "OBJECT_"))
		st.Kind, st.DDL = "drop_"+obj, true
		switch s.DropStmt.GetRemoveType() {
		case pg.ObjectType_OBJECT_TABLE, pg.ObjectType_OBJECT_SCHEMA, pg.ObjectType_OBJECT_VIEW,
			pg.ObjectType_OBJECT_MATVIEW, pg.ObjectType_OBJECT_DATABASE, pg.ObjectType_OBJECT_FOREIGN_TABLE:
			st.Destructive = true
		default:
			// Other DROPs (index, function, role, ...) are DDL, which rules see as request.sql.ddl.
		}
	case *pg.Node_DropdbStmt:
		st.Kind, st.DDL, st.Destructive = "drop_database", true, true
	case *pg.Node_TruncateStmt:
		st.Kind, st.DDL, st.Destructive = "truncate", true, true
	case *pg.Node_GrantStmt:
		st.Kind, st.DCL, st.Privilege = "grant", true, true
		if !s.GrantStmt.GetIsGrant() {
			st.Kind = "revoke"
		}
	case *pg.Node_GrantRoleStmt:
		st.Kind, st.DCL, st.Privilege = "grant_role", true, true
		if !s.GrantRoleStmt.GetIsGrant() {
			st.Kind = "revoke_role"
		}
	case *pg.Node_CreateRoleStmt:
		st.Kind, st.DCL, st.Privilege = "create_role", true, true
	case *pg.Node_AlterRoleStmt, *pg.Node_AlterRoleSetStmt:
		st.Kind, st.DCL, st.Privilege = "alter_role", true, true
	case *pg.Node_DropRoleStmt:
		st.Kind, st.DCL, st.Privilege = "drop_role", true, true
	case *pg.Node_AlterDefaultPrivilegesStmt:
		st.Kind, st.DCL, st.Privilege = "alter_default_privileges", true, true
	case *pg.Node_AlterSystemStmt:
		st.Kind, st.DDL, st.Privilege = "alter_system", true, true
	case *pg.Node_CopyStmt:
		st.Kind = "copy"
		c := s.CopyStmt
		st.Program = c.GetIsProgram() || c.GetFilename() != ""
		if c.GetIsFrom() {
			st.Write = true
		} else {
			st.Read = !st.Program
		}
	case *pg.Node_DoStmt:
		st.Kind, st.Dynamic = "do", true
	case *pg.Node_CallStmt:
		st.Kind, st.Dynamic = "call", true
	case *pg.Node_ExecuteStmt:
		st.Kind, st.Dynamic = "execute", true
	case *pg.Node_PrepareStmt:
		st.Kind, st.Dynamic = "prepare", true
	case *pg.Node_CreateFunctionStmt:
		st.Kind, st.DDL, st.Dynamic = "create_function", true, true
	case *pg.Node_ExplainStmt:
		st.Kind, st.Read = "explain", true
	case *pg.Node_VariableShowStmt:
		st.Kind, st.Read = "show", true
	case *pg.Node_VariableSetStmt:
		st.Kind = "set"
	case *pg.Node_TransactionStmt:
		st.Kind = "transaction"
	case *pg.Node_RenameStmt:
		st.Kind, st.DDL = "rename", true
	default:
		st.Kind = pgKind(n)
		st.DDL = strings.HasPrefix(st.Kind, "create_") || strings.HasPrefix(st.Kind, "alter_") ||
			strings.HasPrefix(st.Kind, "drop_") || strings.HasPrefix(st.Kind, "comment")
	}
	err := pgNested(n, &st)
	return st, err
}

// pgNested walks the whole statement: data changes inside CTEs, subqueries and EXPLAIN
// ANALYZE, SELECT INTO, and side-effecting function calls anywhere.
func pgNested(n *pg.Node, st *Statement) error {
	return pgWalk(n.ProtoReflect(), 0, func(m proto.Message) {
		switch v := m.(type) {
		case *pg.CommonTableExpr:
			switch q := v.GetCtequery().GetNode().(type) {
			case *pg.Node_DeleteStmt:
				st.ModifyingCTE, st.Write, st.Read = true, true, false
				st.Unbounded = st.Unbounded || pgTautology(q.DeleteStmt.GetWhereClause(), 0)
			case *pg.Node_UpdateStmt:
				st.ModifyingCTE, st.Write, st.Read = true, true, false
				st.Unbounded = st.Unbounded || pgTautology(q.UpdateStmt.GetWhereClause(), 0)
			case *pg.Node_InsertStmt, *pg.Node_MergeStmt:
				st.ModifyingCTE, st.Write, st.Read = true, true, false
			}
		case *pg.DeleteStmt:
			st.Write, st.Read = true, false
			st.Unbounded = st.Unbounded || pgTautology(v.GetWhereClause(), 0)
		case *pg.UpdateStmt:
			st.Write, st.Read = true, false
			st.Unbounded = st.Unbounded || pgTautology(v.GetWhereClause(), 0)
		case *pg.InsertStmt, *pg.MergeStmt:
			st.Write, st.Read = true, false
		case *pg.SelectStmt:
			if v.GetIntoClause() != nil {
				st.Write, st.DDL, st.Read = true, true, false
			}
		case *pg.FuncCall:
			names := v.GetFuncname()
			if len(names) > 0 {
				if f, ok := sideEffect(names[len(names)-1].GetString_().GetSval()); ok && !containsStr(st.Functions, f) {
					st.Functions = append(st.Functions, f)
					st.Read = false
				}
			}
		}
	})
}

// pgWalk visits m and every message below it, in every field, down to maxTreeDepth.
func pgWalk(m protoreflect.Message, depth int, visit func(proto.Message)) error {
	if !m.IsValid() {
		return nil
	}
	if depth >= maxTreeDepth {
		return errTreeDepth
	}
	visit(m.Interface())
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len() && err == nil; i++ {
				err = pgWalk(l.Get(i).Message(), depth+1, visit)
			}
			return err == nil
		}
		err = pgWalk(v.Message(), depth+1, visit)
		return err == nil
	})
	return err
}

// pgTautology reports a WHERE that restricts nothing: absent, a true constant, a
// comparison of equal constants or the same column, or an OR with such a branch. Below
// maxTreeDepth nothing is judged a tautology (the walk of the same tree refuses it).
func pgTautology(w *pg.Node, depth int) bool {
	if w == nil {
		return true
	}
	if depth >= maxTreeDepth {
		return false
	}
	switch v := w.GetNode().(type) {
	case *pg.Node_AConst:
		return pgTrueConst(v.AConst)
	case *pg.Node_TypeCast:
		if c := v.TypeCast.GetArg().GetAConst(); c != nil {
			return pgTrueConst(c)
		}
	case *pg.Node_BoolExpr:
		switch v.BoolExpr.GetBoolop() {
		case pg.BoolExprType_OR_EXPR:
			for _, a := range v.BoolExpr.GetArgs() {
				if pgTautology(a, depth+1) {
					return true
				}
			}
		case pg.BoolExprType_AND_EXPR:
			for _, a := range v.BoolExpr.GetArgs() {
				if !pgTautology(a, depth+1) {
					return false
				}
			}
			return true
		default:
			return false // NOT and unknown operators are not judged
		}
	case *pg.Node_AExpr:
		e := v.AExpr
		if e.GetKind() != pg.A_Expr_Kind_AEXPR_OP || len(e.GetName()) != 1 {
			return false
		}
		op := e.GetName()[0].GetString_().GetSval()
		l, r := e.GetLexpr(), e.GetRexpr()
		if l == nil || r == nil {
			return false
		}
		same := pgSame(l, r)
		constants := l.GetAConst() != nil && r.GetAConst() != nil
		switch op {
		case "=", ">=", "<=":
			return same
		case "<>", "!=":
			return constants && !same
		}
	}
	return false
}

func pgTrueConst(c *pg.A_Const) bool {
	switch v := c.GetVal().(type) {
	case *pg.A_Const_Boolval:
		return v.Boolval.GetBoolval()
	case *pg.A_Const_Ival:
		return v.Ival.GetIval() != 0
	case *pg.A_Const_Sval:
		switch strings.ToLower(v.Sval.GetSval()) {
		case "t", "true", "y", "yes", "on", "1":
			return true
		}
	}
	return false
}

// pgSame compares two expressions ignoring their source locations.
// Operands too deep to compare within maxTreeDepth are not the same.
func pgSame(a, b *pg.Node) bool {
	ca, cb := proto.Clone(a), proto.Clone(b)
	if clearLocations(ca.ProtoReflect()) != nil || clearLocations(cb.ProtoReflect()) != nil {
		return false
	}
	return proto.Equal(ca, cb)
}

func clearLocations(m protoreflect.Message) error {
	return pgWalkMut(m, 0, func(m protoreflect.Message) {
		if fd := m.Descriptor().Fields().ByName("location"); fd != nil {
			m.Clear(fd)
		}
	})
}

func pgWalkMut(m protoreflect.Message, depth int, f func(protoreflect.Message)) error {
	if depth >= maxTreeDepth {
		return errTreeDepth
	}
	f(m)
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len() && err == nil; i++ {
				err = pgWalkMut(l.Get(i).Message(), depth+1, f)
			}
			return err == nil
		}
		err = pgWalkMut(v.Message(), depth+1, f)
		return err == nil
	})
	return err
}

// pgKind names an unlisted statement after its node type: AlterTableStmt → alter_table.
func pgKind(n *pg.Node) string {
	var name string
	n.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		name = string(fd.Name())
		return false
	})
	name = strings.TrimSuffix(name, "_stmt")
	if name == "" {
		return "unknown"
	}
	return name
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
