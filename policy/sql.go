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
	// Read is set for statements proven to only read: SELECT (and EXPLAIN, SHOW, FETCH,
	// COPY … TO STDOUT) with no data change, locking, INTO, unknown node or call of a
	// function outside the known-pure list anywhere in its tree.
	Read bool
	// Write is set for statements that change data (INSERT, UPDATE, DELETE, MERGE, COPY FROM).
	Write bool
	// DDL is set for schema changes (CREATE, ALTER, DROP, TRUNCATE, RENAME).
	DDL bool
	// DCL is set for access control (GRANT, REVOKE, roles and users).
	DCL bool
	// Destructive is set for statements that destroy data or objects: every DROP (of any
	// object, DROP OWNED too), TRUNCATE, ALTER TABLE … DROP COLUMN or column type changes
	// (which rewrite the data), MERGE with a DELETE action.
	Destructive bool
	// Unbounded is set for a DELETE or UPDATE (or MERGE … UPDATE) whose WHERE does not
	// restrict it to rows of its own: no WHERE, one that references no column of the target
	// table (WHERE 2 > 1, NOT false, 1 IN (1), a scalar subquery), an always-true
	// comparison (id = id), or an OR with such a branch.
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
	// Unknown is set when the statement's effect is not known: a statement kind or a node
	// of its tree the classifier has no rule for, or a call of a function that is not on
	// the list of functions known to only compute a value (UnknownFunctions). Only what
	// is known to be harmless is Read; everything else has some effect, Unknown at worst.
	Unknown bool
	// UnknownFunctions lists called functions not known to be free of side effects
	// (user-defined functions, nextval, lo_unlink, …), lower case for MySQL.
	UnknownFunctions []string
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
		for _, f := range st.UnknownFunctions {
			add("calls " + f + ", which is not known to be free of side effects")
		}
		if st.Unknown && len(st.UnknownFunctions) == 0 {
			add(k + " has an effect that is not known")
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
		stmts = append(stmts, map[string]any{
			"kind": st.Kind, "read": st.Read, "write": st.Write, "ddl": st.DDL, "dcl": st.DCL,
			"destructive": st.Destructive, "unbounded": st.Unbounded, "privilege": st.Privilege,
			"program": st.Program, "modifying_cte": st.ModifyingCTE, "dynamic": st.Dynamic,
			"functions": nonNil(st.Functions), "unknown": st.Unknown, "unknown_functions": nonNil(st.UnknownFunctions),
		})
	}
	var fns, ufns []string
	for _, st := range s.Statements {
		fns = append(fns, st.Functions...)
		ufns = append(ufns, st.UnknownFunctions...)
	}
	reasons := s.Reasons()
	if reasons == nil {
		reasons = []string{}
	}
	return map[string]any{
		"present":           s.Present,
		"parsed":            s.Parsed,
		"error":             s.Error,
		"unchecked":         s.Unchecked,
		"dialect":           string(s.Dialect),
		"statements":        stmts,
		"kinds":             kinds,
		"multi":             s.Multi(),
		"read":              s.Parsed && len(s.Statements) > 0 && !s.any(func(st Statement) bool { return !st.Read }),
		"write":             s.any(func(st Statement) bool { return st.Write }),
		"ddl":               s.any(func(st Statement) bool { return st.DDL }),
		"dcl":               s.any(func(st Statement) bool { return st.DCL }),
		"destructive":       s.any(func(st Statement) bool { return st.Destructive }),
		"unbounded":         s.any(func(st Statement) bool { return st.Unbounded }),
		"privilege":         s.any(func(st Statement) bool { return st.Privilege }),
		"program":           s.any(func(st Statement) bool { return st.Program }),
		"modifying_cte":     s.any(func(st Statement) bool { return st.ModifyingCTE }),
		"dynamic":           s.any(func(st Statement) bool { return st.Dynamic }),
		"functions":         nonNil(fns),
		"unknown":           s.any(func(st Statement) bool { return st.Unknown }),
		"unknown_functions": nonNil(ufns),
		"reasons":           reasons,
	}
}

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
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
	"get_lock": true, "release_lock": true, "release_all_locks": true,
	"lo_unlink": true, "lo_create": true, "lo_creat": true, "lo_from_bytea": true, "lo_put": true,
	"lo_open": true, "nextval": true, "setval": true, "pg_notify": true, "dblink_connect": true,
	"pg_advisory_lock": true, "pg_advisory_xact_lock": true, "pg_try_advisory_lock": true,
	"pg_file_write": true, "pg_file_unlink": true, "pg_file_rename": true, "pg_ls_logdir": true,
	"pg_ls_waldir": true, "query_to_xml": true, "pg_logical_emit_message": true,
	"pg_reload_conf_file": true, "master_pos_wait": true, "sys_get": true, "sys_set": true,
}

// pureFuncs are built-in functions (both dialects, lower case) known to compute a value
// from their arguments, the clock, the session or the catalogs, and to change nothing. A
// call of any other function is an unknown effect: user-defined functions can do
// anything, and many built-ins write (nextval, lo_unlink) or reach the server's files.
var pureFuncs = map[string]bool{}

func init() {
	for _, f := range strings.Fields(`
		count sum avg min max array_agg string_agg json_agg jsonb_agg json_object_agg jsonb_object_agg
		bool_and bool_or every bit_and bit_or stddev stddev_pop stddev_samp variance var_pop var_samp
		percentile_cont percentile_disc mode corr covar_pop covar_samp regr_slope regr_intercept
		row_number rank dense_rank ntile lag lead first_value last_value nth_value cume_dist percent_rank
		now clock_timestamp statement_timestamp transaction_timestamp timeofday localtime localtimestamp
		date_trunc date_part date_bin extract age make_date make_time make_timestamp make_timestamptz
		make_interval justify_days justify_hours justify_interval isfinite to_char to_date to_timestamp
		to_number lower upper initcap length char_length character_length octet_length bit_length
		substr substring trim btrim ltrim rtrim lpad rpad replace translate concat concat_ws split_part
		position strpos starts_with left right reverse repeat ascii chr regexp_replace regexp_match
		regexp_matches regexp_split_to_array regexp_split_to_table regexp_like regexp_count regexp_substr
		regexp_instr format md5 sha224 sha256 sha384 sha512 encode decode quote_ident quote_literal
		quote_nullable abs ceil ceiling floor round trunc sqrt cbrt power pow exp ln log log10 mod sign
		pi degrees radians sin cos tan asin acos atan atan2 div width_bucket greatest least coalesce
		nullif random gen_random_uuid generate_series generate_subscripts unnest array_length
		array_lower array_upper array_dims array_to_string string_to_array string_to_table cardinality
		array_position array_positions array_append array_prepend array_cat array_remove array_replace
		json_array_elements jsonb_array_elements json_array_elements_text jsonb_array_elements_text
		json_each jsonb_each json_each_text jsonb_each_text json_object_keys jsonb_object_keys
		json_extract_path jsonb_extract_path json_extract_path_text jsonb_extract_path_text jsonb_set
		jsonb_insert jsonb_strip_nulls json_strip_nulls to_json to_jsonb row_to_json array_to_json
		json_build_object jsonb_build_object json_build_array jsonb_build_array json_object jsonb_object
		jsonb_pretty json_typeof jsonb_typeof json_array_length jsonb_array_length jsonb_path_query
		jsonb_path_exists jsonb_path_match jsonb_path_query_array jsonb_path_query_first
		pg_typeof version current_database current_schema current_schemas pg_backend_pid
		pg_size_pretty pg_size_bytes pg_total_relation_size pg_relation_size pg_table_size
		pg_indexes_size pg_database_size format_type obj_description col_description
		shobj_description pg_get_viewdef pg_get_indexdef pg_get_constraintdef pg_get_triggerdef
		pg_get_functiondef pg_get_function_arguments pg_get_function_result pg_get_expr
		pg_get_userbyid pg_get_serial_sequence has_table_privilege has_schema_privilege
		has_column_privilege has_database_privilege has_function_privilege pg_has_role
		pg_table_is_visible to_regclass to_regtype to_regproc pg_is_in_recovery
		pg_postmaster_start_time pg_encoding_to_char inet_client_addr num_nulls num_nonnulls
		date timezone isempty lower_inf upper_inf range_merge int4range int8range numrange
		tsrange tstzrange daterange to_tsvector to_tsquery plainto_tsquery websearch_to_tsquery
		phraseto_tsquery ts_rank ts_headline setweight similarity word_similarity
		ifnull if isnull date_format str_to_date curdate current_date curtime current_time sysdate
		utc_date utc_time utc_timestamp unix_timestamp from_unixtime datediff date_add date_sub
		adddate subdate addtime subtime timediff timestampdiff timestampadd dayofweek dayofmonth
		dayofyear weekday week weekofyear yearweek year month monthname day dayname hour minute
		second microsecond quarter last_day makedate maketime period_add period_diff to_days
		from_days to_seconds sec_to_time time_to_sec time_format convert_tz group_concat
		json_extract json_unquote json_arrayagg json_objectagg json_array json_contains
		json_contains_path json_keys json_length json_valid json_type json_search json_quote
		json_value json_overlaps json_depth json_pretty json_set json_insert json_replace
		json_remove json_merge_patch json_merge_preserve locate instr substring_index lcase ucase
		field find_in_set elt make_set export_set format_bytes space strcmp soundex hex unhex bin oct
		conv crc32 sha1 sha2 to_base64 from_base64 rand uuid uuid_short database schema
		found_rows row_count current_user session_user user system_user current_role
		truncate std weight_string inet_aton inet_ntoa is_ipv4 is_ipv6 char ord current_setting
		similar_to_escape overlay normalize enum_range enum_first enum_last
	`) {
		pureFuncs[f] = true
	}
}
