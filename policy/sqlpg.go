package policy

import (
	"slices"
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

// pgStatement classifies one statement by an allow-list: a statement kind with no case
// below is Unknown, and so is any node of its tree pgNested has no rule for. Read is
// only ever the result of a read kind with nothing else found in its tree.
func pgStatement(n *pg.Node) (Statement, error) {
	var (
		st       Statement
		readKind bool
	)
	switch s := n.GetNode().(type) {
	case *pg.Node_SelectStmt:
		st.Kind, readKind = "select", true
	case *pg.Node_InsertStmt:
		st.Kind = "insert"
	case *pg.Node_UpdateStmt:
		st.Kind = "update"
	case *pg.Node_DeleteStmt:
		st.Kind = "delete"
	case *pg.Node_MergeStmt:
		st.Kind = "merge"
	case *pg.Node_ExplainStmt:
		st.Kind, readKind = "explain", true
		if !pgExplainAnalyze(s.ExplainStmt) {
			// Nothing runs but the planner, which may fold calls of immutable functions:
			// only unknown calls and nodes of the explained statement matter.
			inner, err := pgStatement(s.ExplainStmt.GetQuery())
			if err != nil {
				return st, err
			}
			st.Unknown, st.UnknownFunctions, st.Functions = inner.Unknown, inner.UnknownFunctions, inner.Functions
			st.Read = !st.Unknown && len(st.Functions) == 0
			return st, nil
		}
	case *pg.Node_VariableShowStmt:
		st.Kind, readKind = "show", true
	case *pg.Node_FetchStmt:
		st.Kind, readKind = "fetch", true
	case *pg.Node_DeclareCursorStmt:
		st.Kind = "declare_cursor" // session state: the cursor outlives the statement
	case *pg.Node_CopyStmt:
		st.Kind = "copy"
		c := s.CopyStmt
		st.Program = c.GetIsProgram() || c.GetFilename() != ""
		if c.GetIsFrom() {
			st.Write = true
		} else {
			readKind = !st.Program
		}
	case *pg.Node_DropStmt:
		obj := strings.ToLower(strings.TrimPrefix(s.DropStmt.GetRemoveType().String(), "OBJECT_"))
		st.Kind, st.DDL, st.Destructive = "drop_"+obj, true, true
	case *pg.Node_DropdbStmt:
		st.Kind, st.DDL, st.Destructive = "drop_database", true, true
	case *pg.Node_DropTableSpaceStmt:
		st.Kind, st.DDL, st.Destructive = "drop_tablespace", true, true
	case *pg.Node_DropSubscriptionStmt:
		st.Kind, st.DDL, st.Destructive = "drop_subscription", true, true
	case *pg.Node_DropOwnedStmt:
		st.Kind, st.DDL, st.DCL, st.Destructive, st.Privilege = "drop_owned", true, true, true, true
	case *pg.Node_TruncateStmt:
		st.Kind, st.DDL, st.Destructive = "truncate", true, true
	case *pg.Node_AlterTableStmt:
		st.Kind, st.DDL = "alter_"+strings.ToLower(strings.TrimPrefix(s.AlterTableStmt.GetObjtype().String(), "OBJECT_")), true
		for _, c := range s.AlterTableStmt.GetCmds() {
			switch c.GetAlterTableCmd().GetSubtype() {
			case pg.AlterTableType_AT_DropColumn, pg.AlterTableType_AT_AlterColumnType:
				st.Destructive = true // the column's data is gone or rewritten
			case pg.AlterTableType_AT_ChangeOwner, pg.AlterTableType_AT_DisableRowSecurity,
				pg.AlterTableType_AT_NoForceRowSecurity, pg.AlterTableType_AT_DisableTrig,
				pg.AlterTableType_AT_DisableTrigAll, pg.AlterTableType_AT_DisableTrigUser,
				pg.AlterTableType_AT_DisableRule:
				st.Privilege = true // ownership, or turning off enforcement the owner set up
			default:
			}
		}
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
	case *pg.Node_AlterOwnerStmt:
		st.Kind, st.DCL, st.Privilege = "alter_owner", true, true
	case *pg.Node_ReassignOwnedStmt:
		st.Kind, st.DCL, st.Privilege = "reassign_owned", true, true
	case *pg.Node_CreatePolicyStmt:
		st.Kind, st.DCL, st.Privilege = "create_policy", true, true
	case *pg.Node_AlterPolicyStmt:
		st.Kind, st.DCL, st.Privilege = "alter_policy", true, true
	case *pg.Node_SecLabelStmt:
		st.Kind, st.DCL, st.Privilege = "security_label", true, true
	case *pg.Node_AlterDatabaseSetStmt:
		st.Kind, st.DDL, st.Privilege = "alter_database_set", true, true // every later session's settings
	case *pg.Node_AlterSystemStmt:
		st.Kind, st.DDL, st.Privilege = "alter_system", true, true
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
	case *pg.Node_CreateTrigStmt:
		st.Kind, st.DDL, st.Dynamic = "create_trigger", true, true
	case *pg.Node_CreateEventTrigStmt:
		st.Kind, st.DDL, st.Dynamic = "create_event_trigger", true, true
	case *pg.Node_RuleStmt:
		st.Kind, st.DDL, st.Dynamic = "create_rule", true, true
	case *pg.Node_CreateExtensionStmt:
		st.Kind, st.DDL, st.Dynamic = "create_extension", true, true // runs the extension's script
	case *pg.Node_AlterExtensionStmt:
		st.Kind, st.DDL, st.Dynamic = "alter_extension", true, true
	case *pg.Node_LoadStmt:
		st.Kind, st.Program = "load", true // loads a shared library into the server
	case *pg.Node_VariableSetStmt:
		st.Kind = "set"
		if pgGuardSettings[s.VariableSetStmt.GetName()] {
			st.Privilege = true
		}
	case *pg.Node_TransactionStmt:
		st.Kind = "transaction"
		switch s.TransactionStmt.GetKind() {
		case pg.TransactionStmtKind_TRANS_STMT_PREPARE, pg.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED,
			pg.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED:
			st.Unknown = true // two-phase commit outlives the session
		default:
		}
	case *pg.Node_LockStmt:
		st.Kind, st.Write = "lock", true // locks as a write does
	case *pg.Node_NotifyStmt:
		st.Kind, st.Write = "notify", true // reaches other sessions
	case *pg.Node_ListenStmt, *pg.Node_UnlistenStmt, *pg.Node_DiscardStmt, *pg.Node_DeallocateStmt,
		*pg.Node_ClosePortalStmt, *pg.Node_ConstraintsSetStmt, *pg.Node_VacuumStmt, *pg.Node_ClusterStmt,
		*pg.Node_ReindexStmt, *pg.Node_CheckPointStmt:
		// Session state and maintenance: no data, object or privilege changes.
		st.Kind = pgKind(n)
	case *pg.Node_RefreshMatViewStmt:
		st.Kind, st.Write = "refresh_materialized_view", true
	case *pg.Node_CreateSchemaStmt:
		st.Kind, st.DDL = "create_schema", true
		// Elements (CREATE SCHEMA s CREATE TABLE … GRANT …) are statements of their own.
		st.Unknown = len(s.CreateSchemaStmt.GetSchemaElts()) > 0
	case *pg.Node_CreateStmt, *pg.Node_CreateTableAsStmt, *pg.Node_ViewStmt, *pg.Node_IndexStmt,
		*pg.Node_CreateSeqStmt, *pg.Node_AlterSeqStmt, *pg.Node_CompositeTypeStmt, *pg.Node_CreateEnumStmt,
		*pg.Node_CreateRangeStmt, *pg.Node_AlterEnumStmt, *pg.Node_CreateDomainStmt, *pg.Node_AlterDomainStmt,
		*pg.Node_CommentStmt, *pg.Node_RenameStmt, *pg.Node_AlterObjectSchemaStmt, *pg.Node_CreatedbStmt,
		*pg.Node_AlterDatabaseStmt, *pg.Node_CreateStatsStmt:
		st.Kind, st.DDL = pgKind(n), true
		if _, ok := n.GetNode().(*pg.Node_RenameStmt); ok {
			st.Kind = "rename"
		}
	default:
		st.Kind, st.Unknown = pgKind(n), true
	}
	err := pgNested(n, &st)
	st.Read = readKind && !st.effect()
	return st, err
}

// effect reports any finding that makes a statement more than a read.
func (st *Statement) effect() bool {
	return st.Write || st.DDL || st.DCL || st.Destructive || st.Unbounded || st.Privilege || st.Program ||
		st.ModifyingCTE || st.Dynamic || st.Unknown || len(st.Functions) > 0 || len(st.UnknownFunctions) > 0
}

// pgGuardSettings are settings whose change lifts a guard: another identity, triggers and
// foreign keys off (session_replication_role), or read-only transactions off.
var pgGuardSettings = map[string]bool{
	"role": true, "session_authorization": true, "session_replication_role": true,
	"default_transaction_read_only": true, "transaction_read_only": true, "row_security": true,
}

func pgExplainAnalyze(e *pg.ExplainStmt) bool {
	for _, o := range e.GetOptions() {
		d := o.GetDefElem()
		if d.GetDefname() != "analyze" {
			continue
		}
		arg := d.GetArg()
		if arg == nil {
			return true
		}
		// ANALYZE false/off/0 turns it off; anything else (true, on, 1, a typo) counts as on.
		switch v := arg.GetNode().(type) {
		case *pg.Node_Boolean:
			return v.Boolean.GetBoolval()
		case *pg.Node_String_:
			switch strings.ToLower(v.String_.GetSval()) {
			case "false", "off", "no", "0":
				return false
			}
		case *pg.Node_Integer:
			return v.Integer.GetIval() != 0
		}
		return true
	}
	return false
}

// pgKnownNodes are the node types whose only effect is what pgNested makes of them:
// expressions, clauses, names and definitions. Any other node in a tree (a statement
// nested where it was not expected, a construct added in a later Postgres) is Unknown.
var pgKnownNodes = map[protoreflect.FullName]bool{}

func init() {
	for _, n := range []proto.Message{
		&pg.Node{}, &pg.List{}, &pg.String{}, &pg.Integer{}, &pg.Float{}, &pg.Boolean{}, &pg.BitString{},
		&pg.A_Const{}, &pg.Alias{}, &pg.RangeVar{}, &pg.ColumnRef{}, &pg.ParamRef{}, &pg.A_Expr{},
		&pg.TypeCast{}, &pg.CollateClause{}, &pg.FuncCall{}, &pg.A_Star{}, &pg.A_Indices{},
		&pg.A_Indirection{}, &pg.A_ArrayExpr{}, &pg.ResTarget{}, &pg.MultiAssignRef{}, &pg.SortBy{},
		&pg.WindowDef{}, &pg.RangeSubselect{}, &pg.RangeFunction{}, &pg.JoinExpr{}, &pg.BoolExpr{},
		&pg.SubLink{}, &pg.CaseExpr{}, &pg.CaseWhen{}, &pg.CoalesceExpr{}, &pg.MinMaxExpr{},
		&pg.SQLValueFunction{}, &pg.NullTest{}, &pg.BooleanTest{}, &pg.RowExpr{}, &pg.TypeName{},
		&pg.GroupingSet{}, &pg.WithClause{}, &pg.CommonTableExpr{}, &pg.CTESearchClause{},
		&pg.CTECycleClause{}, &pg.SelectStmt{}, &pg.InsertStmt{}, &pg.UpdateStmt{}, &pg.DeleteStmt{},
		&pg.MergeStmt{}, &pg.MergeWhenClause{}, &pg.OnConflictClause{}, &pg.InferClause{},
		&pg.IndexElem{}, &pg.LockingClause{}, &pg.IntoClause{}, &pg.SetToDefault{}, &pg.CurrentOfExpr{},
		&pg.NamedArgExpr{}, &pg.RangeTableSample{}, &pg.RangeTableFunc{}, &pg.RangeTableFuncCol{},
		&pg.XmlSerialize{}, &pg.JsonFuncExpr{}, &pg.JsonValueExpr{}, &pg.JsonFormat{}, &pg.JsonOutput{},
		&pg.JsonReturning{}, &pg.JsonArgument{}, &pg.JsonBehavior{}, &pg.JsonIsPredicate{},
		&pg.JsonParseExpr{}, &pg.JsonScalarExpr{}, &pg.JsonSerializeExpr{}, &pg.JsonObjectConstructor{},
		&pg.JsonArrayConstructor{}, &pg.JsonArrayQueryConstructor{}, &pg.JsonAggConstructor{},
		&pg.JsonObjectAgg{}, &pg.JsonArrayAgg{}, &pg.JsonKeyValue{}, &pg.JsonTable{},
		&pg.JsonTableColumn{}, &pg.JsonTablePathSpec{}, &pg.DefElem{}, &pg.RoleSpec{},
		// Definitions of the DDL kinds pgStatement knows.
		&pg.ColumnDef{}, &pg.Constraint{}, &pg.PartitionSpec{}, &pg.PartitionElem{},
		&pg.PartitionBoundSpec{}, &pg.PartitionRangeDatum{}, &pg.PartitionCmd{}, &pg.TableLikeClause{},
		&pg.ObjectWithArgs{}, &pg.AccessPriv{}, &pg.FunctionParameter{}, &pg.AlterTableCmd{},
		&pg.VacuumRelation{}, &pg.StatsElem{}, &pg.TriggerTransition{}, &pg.VariableSetStmt{}, // in ALTER SYSTEM
	} {
		pgKnownNodes[n.ProtoReflect().Descriptor().FullName()] = true
	}
}

// pgNested walks the whole statement: data changes inside CTEs and subqueries, SELECT
// INTO and locking, function calls anywhere, and nodes it has no rule for.
func pgNested(n *pg.Node, st *Statement) error {
	root := n.ProtoReflect().WhichOneof(n.ProtoReflect().Descriptor().Oneofs().Get(0))
	var rootMsg proto.Message
	if root != nil {
		rootMsg = n.ProtoReflect().Get(root).Message().Interface()
	}
	return pgWalk(n.ProtoReflect(), 0, func(m proto.Message) bool {
		if m != rootMsg && !pgKnownNodes[m.ProtoReflect().Descriptor().FullName()] {
			st.Unknown = true
		}
		switch v := m.(type) {
		case *pg.CommonTableExpr:
			switch v.GetCtequery().GetNode().(type) {
			case *pg.Node_DeleteStmt, *pg.Node_UpdateStmt, *pg.Node_InsertStmt, *pg.Node_MergeStmt:
				st.ModifyingCTE = true
			}
		case *pg.DeleteStmt:
			st.Write = true
			st.Unbounded = st.Unbounded || !pgTarget(v.GetRelation(), len(v.GetUsingClause()) > 0).restricts(v.GetWhereClause(), 0)
		case *pg.UpdateStmt:
			st.Write = true
			st.Unbounded = st.Unbounded || !pgTarget(v.GetRelation(), len(v.GetFromClause()) > 0).restricts(v.GetWhereClause(), 0)
		case *pg.InsertStmt:
			st.Write = true
		case *pg.MergeStmt:
			st.Write = true
			for _, w := range v.GetMergeWhenClauses() {
				switch w.GetMergeWhenClause().GetCommandType() {
				case pg.CmdType_CMD_DELETE:
					// Which rows a join matches cannot be told from the text.
					st.Destructive = true
				case pg.CmdType_CMD_UPDATE:
					st.Unbounded = st.Unbounded || !pgTarget(v.GetRelation(), true).restricts(v.GetJoinCondition(), 0)
				default:
				}
			}
		case *pg.SelectStmt:
			if v.GetIntoClause() != nil {
				st.Write, st.DDL = true, true
			}
			if len(v.GetLockingClause()) > 0 {
				st.Write = true // FOR UPDATE/SHARE takes row locks as a write does
			}
		case *pg.FuncCall:
			pgFunc(v.GetFuncname(), st)
		case *pg.A_Expr:
			// OPERATOR(schema.op) outside pg_catalog is a user-defined function.
			if names := v.GetName(); len(names) > 1 && names[0].GetString_().GetSval() != "pg_catalog" {
				st.Unknown = true
			}
		}
		return true
	})
}

// pgFunc records a call: known side effects in Functions, anything not known to be pure
// in UnknownFunctions. A name qualified with a schema other than pg_catalog is a
// user-defined function, whatever it is called.
func pgFunc(names []*pg.Node, st *Statement) {
	if len(names) == 0 {
		st.Unknown = true
		return
	}
	parts := make([]string, len(names))
	for i, p := range names {
		parts[i] = p.GetString_().GetSval()
	}
	name := parts[len(parts)-1]
	qualified := strings.Join(parts, ".")
	if len(parts) == 1 || (len(parts) == 2 && parts[0] == "pg_catalog") {
		if sideEffectFuncs[name] {
			if !slices.Contains(st.Functions, name) {
				st.Functions = append(st.Functions, name)
			}
			return
		}
		if pureFuncs[name] {
			return
		}
	}
	st.Unknown = true
	if !slices.Contains(st.UnknownFunctions, qualified) {
		st.UnknownFunctions = append(st.UnknownFunctions, qualified)
	}
}

// pgWalk visits m and, while visit returns true, every message below it, in every
// field, down to maxTreeDepth.
func pgWalk(m protoreflect.Message, depth int, visit func(proto.Message) bool) error {
	w := &pgWalker{visit: visit, depth: depth}
	w.field = w.visitField // bound once: a closure per node would be an allocation per node
	w.walk(m)
	return w.err
}

// pgWalker is one walk of pgWalk: depth is that of the message being walked.
type pgWalker struct {
	visit func(proto.Message) bool
	field func(protoreflect.FieldDescriptor, protoreflect.Value) bool
	depth int
	err   error
}

func (w *pgWalker) walk(m protoreflect.Message) {
	if !m.IsValid() {
		return
	}
	if w.depth >= maxTreeDepth {
		w.err = errTreeDepth
		return
	}
	if !w.visit(m.Interface()) {
		return
	}
	w.depth++
	m.Range(w.field)
	w.depth--
}

func (w *pgWalker) visitField(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
	if fd.Message() == nil || fd.IsMap() {
		return true
	}
	if fd.IsList() {
		l := v.List()
		for i := 0; i < l.Len() && w.err == nil; i++ {
			w.walk(l.Get(i).Message())
		}
		return w.err == nil
	}
	w.walk(v.Message())
	return w.err == nil
}

// dmlTarget is the table a DELETE, UPDATE or MERGE changes: the names its columns can be
// qualified with, and whether other tables are in scope (USING, FROM, a MERGE source),
// in which case an unqualified column may belong to them and does not count.
type dmlTarget struct {
	names  []string
	others bool
}

func pgTarget(r *pg.RangeVar, others bool) dmlTarget {
	t := dmlTarget{others: others}
	if a := r.GetAlias().GetAliasname(); a != "" {
		t.names = append(t.names, a) // an alias hides the table's name
	} else if r.GetRelname() != "" {
		t.names = append(t.names, r.GetRelname())
	}
	return t
}

// restricts reports a WHERE (or MERGE join condition) that limits the statement to rows
// chosen by their own values: every OR branch, or some AND operand, references a column
// of the target and is not a tautology. A WHERE that references no column of the target
// (2 > 1, NOT false, 1 IN (1), (SELECT true), now() > '2000-01-01') restricts nothing:
// its value is the same for every row. Nothing below maxTreeDepth restricts.
func (t dmlTarget) restricts(w *pg.Node, depth int) bool {
	if w == nil || depth >= maxTreeDepth {
		return false
	}
	switch v := w.GetNode().(type) {
	case *pg.Node_BoolExpr:
		args := v.BoolExpr.GetArgs()
		switch v.BoolExpr.GetBoolop() {
		case pg.BoolExprType_AND_EXPR:
			return slices.ContainsFunc(args, func(a *pg.Node) bool { return t.restricts(a, depth+1) })
		case pg.BoolExprType_OR_EXPR:
			return len(args) > 0 && !slices.ContainsFunc(args, func(a *pg.Node) bool { return !t.restricts(a, depth+1) })
		default: // NOT
			return len(args) == 1 && t.refs(args[0]) && !pgTautology(args[0], 0)
		}
	case *pg.Node_CurrentOfExpr:
		return true // WHERE CURRENT OF: the cursor's one row
	}
	return t.refs(w) && !pgTautology(w, 0)
}

// refs reports a column of the target in e: qualified with its name or alias anywhere
// (a correlated subquery), or unqualified outside subqueries when no other table is in
// scope.
func (t dmlTarget) refs(e *pg.Node) bool {
	found := false
	var walk func(m protoreflect.Message, depth int, inSub bool)
	walk = func(m protoreflect.Message, depth int, inSub bool) {
		if found || !m.IsValid() || depth >= maxTreeDepth {
			return
		}
		switch v := m.Interface().(type) {
		case *pg.ColumnRef:
			f := v.GetFields()
			if len(f) == 1 && !inSub && !t.others && f[0].GetString_() != nil {
				found = true
			}
			if len(f) >= 2 && slices.Contains(t.names, f[len(f)-2].GetString_().GetSval()) {
				found = true
			}
			return
		case *pg.SubLink, *pg.RangeSubselect:
			inSub = true
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			if fd.Message() == nil || fd.IsMap() {
				return true
			}
			if fd.IsList() {
				l := v.List()
				for i := 0; i < l.Len(); i++ {
					walk(l.Get(i).Message(), depth+1, inSub)
				}
				return !found
			}
			walk(v.Message(), depth+1, inSub)
			return !found
		})
	}
	walk(e.ProtoReflect(), 0, false)
	return found
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
