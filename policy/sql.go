package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Dialect is the SQL grammar a tool's queries are parsed with. It comes from the policy
// file, never from the agent's arguments.
type Dialect string

// Dialects the classifier parses.
const (
	Postgres Dialect = "postgres"
	MySQL    Dialect = "mysql"
)

// Validate reports an unknown dialect.
func (d Dialect) Validate() error {
	switch d {
	case Postgres, MySQL:
		return nil
	}
	return fmt.Errorf("%q is not postgres or mysql", string(d))
}

// Statement is one classified SQL statement. Kind is the statement type in lower case
// (select, insert, update, delete, drop_table, truncate, grant, copy, do, …); the flags
// describe its effect, taking every nested query and CTE into account.
type Statement struct {
	Kind string
	// Read is set for statements that only read (SELECT, SHOW, EXPLAIN without ANALYZE).
	Read bool
	// Write is set for statements that change data (INSERT, UPDATE, DELETE, MERGE, COPY FROM).
	Write bool
	// DDL is set for schema changes (CREATE, ALTER, DROP, TRUNCATE, RENAME).
	DDL bool
	// DCL is set for access control (GRANT, REVOKE, roles and users).
	DCL bool
	// Destructive is set for DROP DATABASE/SCHEMA/TABLE/VIEW and TRUNCATE.
	Destructive bool
	// Unbounded is set for a DELETE or UPDATE without WHERE or with an always-true WHERE.
	Unbounded bool
	// Privilege is set for privilege changes (GRANT, REVOKE, ALTER/CREATE ROLE or USER, ALTER SYSTEM).
	Privilege bool
	// Program is set for statements that reach the server's files or programs
	// (COPY … PROGRAM, COPY to or from a file, INTO OUTFILE, LOAD DATA).
	Program bool
	// ModifyingCTE is set when a WITH clause holds an INSERT, UPDATE or DELETE.
	ModifyingCTE bool
	// Dynamic is set for statements whose effect cannot be known from the text
	// (DO, CALL, EXECUTE, PREPARE, CREATE FUNCTION or PROCEDURE).
	Dynamic bool
	// Functions lists calls of functions with side effects on the server
	// (pg_terminate_backend, pg_read_file, lo_export, sleep, …).
	Functions []string
}

// SQL is the classification of one SQL payload: every statement, or why it did not parse.
type SQL struct {
	// Present is false when the tool carried no SQL argument; all else is then empty.
	Present bool
	Dialect Dialect
	// Error is why the payload did not parse; Parsed is false then and Statements empty.
	Error      string
	Parsed     bool
	Statements []Statement
	// Unchecked is set when the payload was refused before parsing because it exceeds a
	// bound (size or nesting): Parsed is false and Error says which bound, as a reason.
	Unchecked bool
}

// Multi reports a payload of more than one statement.
func (s SQL) Multi() bool { return len(s.Statements) > 1 }

// any reports whether f holds for some statement.
func (s SQL) any(f func(Statement) bool) bool { return slices.ContainsFunc(s.Statements, f) }

// Reasons are short, human-readable findings for denial messages; no query text.
func (s SQL) Reasons() []string {
	if !s.Present {
		return nil
	}
	if s.Unchecked {
		return []string{s.Error}
	}
	if !s.Parsed {
		return []string{"sql did not parse as " + string(s.Dialect) + ": " + s.Error}
	}
	var out []string
	add := func(r string) {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	for _, st := range s.Statements {
		k := strings.ToUpper(strings.ReplaceAll(st.Kind, "_", " "))
		switch {
		case st.Destructive:
			add(k + " is destructive")
		case st.Unbounded:
			add(k + " without a restricting WHERE")
		}
		if st.Privilege {
			add(k + " changes privileges")
		}
		if st.Program {
			add(k + " reaches server files or programs")
		}
		if st.ModifyingCTE {
			add("a WITH clause modifies data")
		}
		if st.Dynamic {
			add(k + " has an effect that cannot be checked")
		}
		for _, f := range st.Functions {
			add("calls " + f)
		}
	}
	if s.Multi() {
		add(fmt.Sprintf("%d statements in one payload", len(s.Statements)))
	}
	return out
}

// Value is the classification as the CEL value `request.sql` / `sql(s)` (a map).
func (s SQL) Value() map[string]any {
	kinds := make([]string, 0, len(s.Statements))
	stmts := make([]any, 0, len(s.Statements))
	for _, st := range s.Statements {
		kinds = append(kinds, st.Kind)
		fns := st.Functions
		if fns == nil {
			fns = []string{}
		}
		stmts = append(stmts, map[string]any{
			"kind": st.Kind, "read": st.Read, "write": st.Write, "ddl": st.DDL, "dcl": st.DCL,
			"destructive": st.Destructive, "unbounded": st.Unbounded, "privilege": st.Privilege,
			"program": st.Program, "modifying_cte": st.ModifyingCTE, "dynamic": st.Dynamic, "functions": fns,
		})
	}
	var fns []string
	for _, st := range s.Statements {
		fns = append(fns, st.Functions...)
	}
	if fns == nil {
		fns = []string{}
	}
	reasons := s.Reasons()
	if reasons == nil {
		reasons = []string{}
	}
	return map[string]any{
		"present":       s.Present,
		"parsed":        s.Parsed,
		"error":         s.Error,
		"unchecked":     s.Unchecked,
		"dialect":       string(s.Dialect),
		"statements":    stmts,
		"kinds":         kinds,
		"multi":         s.Multi(),
		"read":          s.Parsed && len(s.Statements) > 0 && !s.any(func(st Statement) bool { return !st.Read }),
		"write":         s.any(func(st Statement) bool { return st.Write }),
		"ddl":           s.any(func(st Statement) bool { return st.DDL }),
		"dcl":           s.any(func(st Statement) bool { return st.DCL }),
		"destructive":   s.any(func(st Statement) bool { return st.Destructive }),
		"unbounded":     s.any(func(st Statement) bool { return st.Unbounded }),
		"privilege":     s.any(func(st Statement) bool { return st.Privilege }),
		"program":       s.any(func(st Statement) bool { return st.Program }),
		"modifying_cte": s.any(func(st Statement) bool { return st.ModifyingCTE }),
		"dynamic":       s.any(func(st Statement) bool { return st.Dynamic }),
		"functions":     fns,
		"reasons":       reasons,
	}
}

// ClassifySQL parses q in dialect d and classifies every statement. A payload that does not
// parse (or is empty) is returned with Parsed false and the parser's error: callers must
// treat it as unknown, never as harmless. A payload beyond the bounds the parsers are safe
// with (see sqlBound) is not parsed at all and is returned Unchecked.
func ClassifySQL(d Dialect, q string) SQL {
	out := SQL{Present: true, Dialect: d}
	if d.Validate() == nil {
		if err := sqlBound(d, q); err != nil {
			out.Error, out.Unchecked = "sql statement "+err.Error(), true
			return out
		}
	}
	var (
		stmts []Statement
		err   error
	)
	switch d {
	case Postgres:
		stmts, err = contain(func() ([]Statement, error) { return classifyPostgres(q) })
	case MySQL:
		stmts, err = contain(func() ([]Statement, error) { return classifyMySQL(q) })
	default:
		err = fmt.Errorf("unknown dialect %q", string(d))
	}
	switch {
	case err != nil:
		out.Error = err.Error()
		if errors.As(err, new(*limitError)) {
			out.Error, out.Unchecked = "sql statement "+err.Error(), true
		}
	case len(stmts) == 0:
		out.Error = "no statement"
	default:
		out.Parsed, out.Statements = true, stmts
	}
	return out
}

// sideEffectFuncs are server functions that act outside the query's result: files,
// processes, sessions, configuration, large objects, sleeping.
var sideEffectFuncs = map[string]bool{
	"pg_terminate_backend": true, "pg_cancel_backend": true, "pg_read_file": true,
	"pg_read_binary_file": true, "pg_ls_dir": true, "pg_stat_file": true, "lo_import": true,
	"lo_export": true, "pg_reload_conf": true, "pg_rotate_logfile": true, "set_config": true,
	"pg_sleep": true, "pg_sleep_for": true, "pg_sleep_until": true, "dblink": true, "dblink_exec": true,
	"pg_promote": true, "pg_switch_wal": true, "pg_create_restore_point": true,
	"load_file": true, "sleep": true, "benchmark": true, "sys_exec": true, "sys_eval": true,
	"get_lock": true, "release_lock": true,
}

// sideEffect returns the lower-cased function name when it is a side-effecting function.
func sideEffect(name string) (string, bool) {
	n := strings.ToLower(name)
	return n, sideEffectFuncs[n]
}
