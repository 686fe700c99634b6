package groundtruth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/policy"
)

// TestPostgres runs testdata/postgres.sql against a real PostgreSQL server.
func TestPostgres(t *testing.T) {
	e := startPostgres(t)
	judge(t, e, policy.Postgres, "testdata/postgres.sql")
}

const pgSeed = `
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE TYPE mood AS ENUM ('ok', 'sad');
CREATE TABLE users (id serial PRIMARY KEY, email text, name text, admin boolean NOT NULL DEFAULT false, mood mood);
CREATE TABLE orders (id serial PRIMARY KEY, user_id int REFERENCES users(id) ON DELETE CASCADE, total numeric(10,2), note text, created_at timestamptz NOT NULL DEFAULT '2026-01-01');
CREATE TABLE audit (id serial PRIMARY KEY, msg text);
CREATE SEQUENCE counter;
CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100;
CREATE FUNCTION wipe() RETURNS int LANGUAGE sql AS 'DELETE FROM audit; SELECT 1';
CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT a + b';
CREATE PROCEDURE clear_audit() LANGUAGE sql AS 'DELETE FROM audit';
CREATE SCHEMA reports;
CREATE TABLE reports.daily (day date PRIMARY KEY, total numeric);
GRANT SELECT ON users, orders TO reader;
GRANT reader TO app;
INSERT INTO users (email, name, mood) VALUES ('ann@example.com', 'Ann', 'ok'), ('bob@example.com', 'Bob', 'sad'),
  ('cy@example.com', 'Cy', 'ok'), ('di@example.com', 'Di', NULL), ('ed@example.com', 'Ed', 'ok');
INSERT INTO orders (user_id, total, note) SELECT 1 + i % 5, i * 25, 'order ' || i FROM generate_series(1, 10) i;
INSERT INTO audit (msg) VALUES ('a'), ('b'), ('c');
INSERT INTO reports.daily VALUES ('2026-01-01', 10), ('2026-01-02', 20);
`

const pgCatalog = `
WITH c AS (SELECT c.oid AS oid, n.nspname || '.' || c.relname AS name, c.relkind, c.relowner, c.relrowsecurity, c.relforcerowsecurity, c.relacl FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg_toast_temp%')
SELECT 'schema:class:' || name, relkind::text || ':' || pg_get_userbyid(relowner) || ':' || relrowsecurity || relforcerowsecurity || ':' ||
  coalesce((SELECT string_agg(t.tgname || t.tgenabled::text, ',' ORDER BY t.tgname) FROM pg_trigger t WHERE t.tgrelid = c.oid), '') || ':' ||
  coalesce((SELECT string_agg(r.rulename || r.ev_enabled::text, ',' ORDER BY r.rulename) FROM pg_rewrite r WHERE r.ev_class = c.oid), '') || ':' ||
  coalesce((SELECT string_agg(k.conname, ',' ORDER BY k.conname) FROM pg_constraint k WHERE k.conrelid = c.oid), '') FROM c
UNION ALL SELECT 'acl:class:' || name, coalesce(relacl::text, '') FROM c
UNION ALL SELECT 'schema:attr:' || c.name || '.' || a.attname, format_type(a.atttypid, a.atttypmod) || ':' || a.attnotnull || ':' ||
  coalesce(pg_get_expr(d.adbin, d.adrelid), '') FROM pg_attribute a JOIN c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE a.attnum > 0 AND NOT a.attisdropped
UNION ALL SELECT 'schema:ns:' || nspname, pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname NOT LIKE 'pg_toast_temp%'
UNION ALL SELECT 'acl:ns:' || nspname, coalesce(nspacl::text, '') FROM pg_namespace WHERE nspname NOT LIKE 'pg_toast_temp%'
UNION ALL SELECT 'schema:proc:' || n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
  md5(coalesce(p.prosrc, '')) || ':' || p.prosecdef || ':' || pg_get_userbyid(p.proowner) || ':' || coalesce(array_to_string(p.proconfig, ','), '')
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
UNION ALL SELECT 'acl:proc:' || n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', coalesce(p.proacl::text, '')
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
UNION ALL SELECT 'schema:type:' || n.nspname || '.' || t.typname, t.typtype::text || ':' ||
  coalesce((SELECT string_agg(enumlabel::text, ',' ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = t.oid), '')
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
UNION ALL SELECT 'schema:ext:' || extname, extversion FROM pg_extension
UNION ALL SELECT 'schema:db:' || datname, pg_get_userbyid(datdba) || ':' || datallowconn FROM pg_database
UNION ALL SELECT 'acl:db:' || datname, coalesce(datacl::text, '') FROM pg_database
UNION ALL SELECT 'acl:dbrole_setting:' || setdatabase || ':' || setrole, array_to_string(setconfig, ',') FROM pg_db_role_setting
UNION ALL SELECT 'acl:role:' || rolname, rolsuper::text || rolinherit || rolcreaterole || rolcreatedb || rolcanlogin || rolreplication ||
  rolbypassrls || coalesce(rolpassword, '') || coalesce(rolvaliduntil::text, '') || rolconnlimit FROM pg_authid
UNION ALL SELECT 'acl:member:' || roleid::regrole || ':' || member::regrole, admin_option::text FROM pg_auth_members
UNION ALL SELECT 'acl:default:' || defaclrole || ':' || defaclnamespace || ':' || defaclobjtype::text, defaclacl::text FROM pg_default_acl
UNION ALL SELECT 'acl:policy:' || polrelid::regclass || ':' || polname, polcmd::text || coalesce(pg_get_expr(polqual, polrelid), '') FROM pg_policy
UNION ALL SELECT 'schema:largeobject:' || oid, pg_get_userbyid(lomowner) FROM pg_largeobject_metadata
UNION ALL SELECT 'seq:' || schemaname || '.' || sequencename, coalesce(last_value::text, '') FROM pg_sequences
UNION ALL SELECT 'set:' || name, coalesce(setting, '') FROM pg_settings
UNION ALL SELECT 'session:prepared:' || name, statement FROM pg_prepared_statements
UNION ALL SELECT 'session:listen:' || c, '' FROM pg_listening_channels() c
UNION ALL SELECT 'session:cursor:' || name, statement FROM pg_cursors
UNION ALL SELECT 'locks:prepared_xact:' || gid, '' FROM pg_prepared_xacts
UNION ALL SELECT 'locks:advisory:' || objid, mode FROM pg_locks WHERE locktype = 'advisory'
UNION ALL SELECT 'files:postgresql.auto.conf', md5(pg_read_file('postgresql.auto.conf'))
`

type pgEngine struct {
	bin, dir, files, sock string
	conn, victim          *pgx.Conn
	victimPID             uint32
}

// pgBinDir finds the newest installed PostgreSQL server binaries.
func pgBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

// asPostgres runs cmd as the postgres system user when the test runs as root: the server
// refuses to run as root.
func asPostgres(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	u, err := user.Lookup("postgres")
	require.NoError(t, err, "running as root needs the postgres system user (created by the Debian package postgresql)")
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
}

func chownPostgres(t *testing.T, paths ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	u, err := user.Lookup("postgres")
	require.NoError(t, err)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, p := range paths {
		require.NoError(t, os.Chown(p, uid, gid))
	}
}

func startPostgres(t *testing.T) *pgEngine {
	t.Helper()
	bin := pgBinDir()
	if bin == "" {
		t.Fatal("PostgreSQL server binaries (initdb, postgres) not found: install the Debian package postgresql (make test runs scripts/test-deps.sh, which does)")
	}
	dir, err := os.MkdirTemp("", "gtpg")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	e := &pgEngine{bin: bin, dir: dir, files: filepath.Join(dir, "files"), sock: dir}
	require.NoError(t, os.Mkdir(e.files, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(e.files, "secret.txt"), []byte(secretMarker+"\n"), 0o644))
	chownPostgres(t, dir, e.files, filepath.Join(e.files, "secret.txt"))

	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"), "-U", "postgres",
		"--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions")
	asPostgres(t, initdb)
	out, err := initdb.CombinedOutput()
	require.NoError(t, err, "initdb: %s", out)

	logf, err := os.Create(filepath.Join(dir, "server.log"))
	require.NoError(t, err)
	srv := exec.Command(filepath.Join(bin, "postgres"), "-D", filepath.Join(dir, "data"), "-k", dir,
		"-c", "listen_addresses=", "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off",
		"-c", "max_prepared_transactions=5", "-c", "log_min_messages=fatal")
	srv.Stdout, srv.Stderr = logf, logf
	asPostgres(t, srv)
	require.NoError(t, srv.Start())
	t.Cleanup(func() {
		_ = srv.Process.Signal(syscall.SIGINT) // fast shutdown
		_ = srv.Wait()
		_ = logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("postgres log:\n%s", b)
		}
	})
	ctx := t.Context()
	var admin *pgx.Conn
	for i := 0; ; i++ {
		admin, err = pgx.Connect(ctx, e.dsn("postgres"))
		if err == nil {
			break
		}
		require.Less(t, i, 300, "postgres did not start: %v", err)
		time.Sleep(100 * time.Millisecond)
	}
	require.NoError(t, admin.Close(ctx))
	require.NoError(t, e.reseed(ctx))
	t.Cleanup(func() {
		_ = e.conn.Close(context.Background())
		_ = e.victim.Close(context.Background())
	})
	return e
}

func (e *pgEngine) dsn(db string) string {
	// The simple protocol keeps the driver from preparing statements, which would show
	// in pg_prepared_statements as if the corpus had prepared them.
	return fmt.Sprintf("host=%s user=postgres dbname=%s sslmode=disable default_query_exec_mode=simple_protocol", e.sock, db)
}

func (e *pgEngine) expand(q string) string {
	return strings.NewReplacer("@DIR@", e.files, "@SECRET@", filepath.Join(e.files, "secret.txt"),
		"@VICTIM@", strconv.FormatUint(uint64(e.victimPID), 10)).Replace(q)
}

func (e *pgEngine) connect(ctx context.Context) error {
	var err error
	if e.conn != nil {
		_ = e.conn.Close(ctx)
	}
	if e.victim != nil {
		_ = e.victim.Close(ctx)
	}
	if e.conn, err = pgx.Connect(ctx, e.dsn("gt")); err != nil {
		return err
	}
	if _, err = e.conn.Exec(ctx, "SET statement_timeout = '5s'"); err != nil {
		return err
	}
	if e.victim, err = pgx.Connect(ctx, e.dsn("gt")); err != nil {
		return err
	}
	e.victimPID = e.victim.PgConn().PID()
	return nil
}

func (e *pgEngine) reseed(ctx context.Context) error {
	admin, err := pgx.Connect(ctx, e.dsn("postgres"))
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	if e.conn != nil {
		_ = e.conn.Close(ctx)
		_ = e.victim.Close(ctx)
		e.conn, e.victim = nil, nil
	}
	var stmts []string
	rows, err := admin.Query(ctx, `SELECT 'ROLLBACK PREPARED ' || quote_literal(gid) || '', database FROM pg_prepared_xacts`)
	if err != nil {
		return err
	}
	type px struct{ stmt, db string }
	var pxs []px
	for rows.Next() {
		var p px
		if err := rows.Scan(&p.stmt, &p.db); err != nil {
			return err
		}
		pxs = append(pxs, p)
	}
	rows.Close()
	for _, p := range pxs {
		c, err := pgx.Connect(ctx, e.dsn(p.db))
		if err != nil {
			return err
		}
		_, err = c.Exec(ctx, p.stmt)
		_ = c.Close(ctx)
		if err != nil {
			return err
		}
	}
	for _, q := range []string{
		`SELECT 'DROP DATABASE ' || quote_ident(datname) || ' WITH (FORCE)' FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1')`,
		`SELECT 'DROP OWNED BY ' || quote_ident(rolname) || ' CASCADE' FROM pg_roles WHERE rolname <> 'postgres' AND rolname NOT LIKE 'pg\_%'`,
		`SELECT 'DROP ROLE ' || quote_ident(rolname) FROM pg_roles WHERE rolname <> 'postgres' AND rolname NOT LIKE 'pg\_%'`,
	} {
		stmts = stmts[:0]
		rows, err := admin.Query(ctx, q)
		if err != nil {
			return err
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				return err
			}
			stmts = append(stmts, s)
		}
		rows.Close()
		for _, s := range stmts {
			if _, err := admin.Exec(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
	}
	for _, s := range []string{
		"ALTER SYSTEM RESET ALL", "SELECT pg_reload_conf()", "CREATE ROLE app LOGIN", "CREATE ROLE reader",
		"ALTER ROLE postgres SUPERUSER CREATEDB CREATEROLE REPLICATION BYPASSRLS", "ALTER ROLE postgres RESET ALL",
		"SELECT lo_unlink(oid) FROM pg_largeobject_metadata", "CREATE DATABASE gt", "CREATE DATABASE scratch",
	} {
		if _, err := admin.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	if err := cleanFiles(e.files); err != nil {
		return err
	}
	seed, err := pgx.Connect(ctx, e.dsn("gt"))
	if err != nil {
		return err
	}
	defer seed.Close(ctx)
	if _, err := seed.Exec(ctx, pgSeed); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	return e.connect(ctx)
}

func (e *pgEngine) snapshotOn(ctx context.Context, c *pgx.Conn) (snapshot, error) {
	s := snapshot{}
	rows, err := c.Query(ctx, pgCatalog)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		s[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	rows, err = c.Query(ctx, `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), n.nspname || '.' || c.relname
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'm', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')`)
	if err != nil {
		return nil, err
	}
	var tables [][2]string
	for rows.Next() {
		var q, n string
		if err := rows.Scan(&q, &n); err != nil {
			return nil, err
		}
		tables = append(tables, [2]string{q, n})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, tb := range tables {
		var v string
		err := c.QueryRow(ctx, `SELECT count(*)::text || ':' || md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM `+tb[0]+` t`).Scan(&v)
		if err != nil {
			return nil, fmt.Errorf("rows of %s: %w", tb[1], err)
		}
		s["rows:"+tb[1]] = v
	}
	return s, fileSnapshot(e.files, s)
}

func (e *pgEngine) snapshot(ctx context.Context) (snapshot, error) { return e.snapshotOn(ctx, e.conn) }

func (e *pgEngine) inTx(ctx context.Context) (snapshot, error) {
	if _, err := e.conn.Exec(ctx, "BEGIN"); err != nil {
		return nil, err
	}
	s, err := e.snapshot(ctx)
	if _, rerr := e.conn.Exec(ctx, "ROLLBACK"); err == nil {
		err = rerr
	}
	return s, err
}

func (e *pgEngine) run(ctx context.Context, q string) (snapshot, []string, error) {
	var extra []string
	if _, err := e.conn.Exec(ctx, "BEGIN"); err != nil {
		return nil, nil, err
	}
	res, execErr := e.conn.PgConn().Exec(ctx, q).ReadAll()
	var pgErr *pgconn.PgError
	if errors.As(execErr, &pgErr) && pgErr.Code == "25001" { // cannot run inside a transaction block
		_, _ = e.conn.Exec(ctx, "ROLLBACK")
		res, execErr = e.conn.PgConn().Exec(ctx, q).ReadAll()
		if _, err := e.conn.Exec(ctx, "BEGIN"); err != nil {
			execErr = errors.Join(execErr, err)
		}
	}
	for _, r := range res {
		for _, row := range r.Rows {
			for _, v := range row {
				if strings.Contains(string(v), secretMarker) {
					extra = append(extra, "secret:read")
				}
			}
		}
	}
	var in snapshot
	if execErr == nil {
		in, _ = e.snapshot(ctx)
	}
	if _, err := e.conn.Exec(ctx, "ROLLBACK"); err != nil && (e.conn.IsClosed() || e.conn.Ping(ctx) != nil) {
		extra = append(extra, "killed:own session")
		_ = e.connect(ctx)
	}
	if err := e.victim.Ping(ctx); err != nil {
		extra = append(extra, "killed:other session")
		_ = e.connect(ctx)
	}
	return in, extra, execErr
}
