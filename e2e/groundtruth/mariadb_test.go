package groundtruth

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/policy"
)

// TestMariaDB runs testdata/mysql.sql against a real MariaDB server.
func TestMariaDB(t *testing.T) {
	e := startMariaDB(t)
	judge(t, e, policy.MySQL, "testdata/mysql.sql")
}

var mySeed = []string{
	"CREATE DATABASE gt", "CREATE DATABASE scratch", "USE gt",
	"CREATE TABLE users (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(100), name VARCHAR(100), admin TINYINT NOT NULL DEFAULT 0, mood ENUM('ok','sad')) ENGINE=InnoDB",
	"CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, user_id INT, total DECIMAL(10,2), note VARCHAR(100), created_at DATETIME NOT NULL DEFAULT '2026-01-01', FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE) ENGINE=InnoDB",
	"CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, msg VARCHAR(100)) ENGINE=InnoDB",
	"CREATE SEQUENCE counter",
	"CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100",
	"CREATE FUNCTION wipe() RETURNS INT MODIFIES SQL DATA BEGIN DELETE FROM audit; RETURN 1; END",
	"CREATE FUNCTION add2(a INT, b INT) RETURNS INT DETERMINISTIC RETURN a + b",
	"CREATE PROCEDURE clear_audit() MODIFIES SQL DATA DELETE FROM audit",
	"CREATE USER app@localhost", "CREATE USER reader@localhost",
	"GRANT SELECT ON gt.users TO reader@localhost", "GRANT SELECT, INSERT ON gt.* TO app@localhost",
	"INSERT INTO users (email, name, mood) VALUES ('ann@example.com', 'Ann', 'ok'), ('bob@example.com', 'Bob', 'sad'), ('cy@example.com', 'Cy', 'ok'), ('di@example.com', 'Di', NULL), ('ed@example.com', 'Ed', 'ok')",
	"INSERT INTO orders (user_id, total, note) SELECT 1 + seq % 5, seq * 25, CONCAT('order ', seq) FROM seq_1_to_10",
	"INSERT INTO audit (msg) VALUES ('a'), ('b'), ('c')",
}

// myVolatile are variables that change by themselves between statements.
var myVolatile = map[string]bool{
	"TIMESTAMP": true, "LAST_INSERT_ID": true, "INSERT_ID": true, "IDENTITY": true, "RAND_SEED1": true,
	"RAND_SEED2": true, "WARNING_COUNT": true, "ERROR_COUNT": true, "IN_TRANSACTION": true, "LAST_GTID": true,
	"GTID_SEQ_NO": true, "GTID_BINLOG_POS": true, "GTID_CURRENT_POS": true, "GTID_BINLOG_STATE": true,
	"GTID_SLAVE_POS": true, "PSEUDO_THREAD_ID": true, "THREAD_ID": true, "SERVER_UID": true,
}

const myCatalog = `
SELECT CONCAT('schema:table:', table_schema, '.', table_name), CONCAT(table_type, ':', IFNULL(engine, '')) FROM information_schema.tables
  WHERE table_schema NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
UNION ALL SELECT CONCAT('schema:col:', table_schema, '.', table_name, '.', column_name), CONCAT(column_type, ':', is_nullable, ':', IFNULL(column_default, ''), ':', column_key)
  FROM information_schema.columns WHERE table_schema NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
UNION ALL SELECT CONCAT('schema:index:', table_schema, '.', table_name, '.', index_name, '.', seq_in_index), column_name
  FROM information_schema.statistics WHERE table_schema NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
UNION ALL SELECT CONCAT('schema:routine:', routine_schema, '.', routine_name), CONCAT(routine_type, ':', MD5(IFNULL(routine_definition, '')), ':', security_type, ':', definer)
  FROM information_schema.routines WHERE routine_schema NOT IN ('mysql', 'sys')
UNION ALL SELECT CONCAT('schema:constraint:', table_schema, '.', table_name, '.', constraint_name), constraint_type
  FROM information_schema.table_constraints WHERE table_schema NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
UNION ALL SELECT CONCAT('schema:trigger:', trigger_schema, '.', trigger_name), MD5(action_statement) FROM information_schema.triggers
UNION ALL SELECT CONCAT('schema:event:', event_schema, '.', event_name), status FROM information_schema.events
UNION ALL SELECT CONCAT('schema:db:', schema_name), default_character_set_name FROM information_schema.schemata
UNION ALL SELECT CONCAT('acl:user:', user, '@', host), MD5(priv) FROM mysql.global_priv
UNION ALL SELECT CONCAT('acl:schema:', grantee, ':', table_schema, ':', privilege_type), is_grantable FROM information_schema.schema_privileges
UNION ALL SELECT CONCAT('acl:table:', grantee, ':', table_schema, '.', table_name, ':', privilege_type), is_grantable FROM information_schema.table_privileges
UNION ALL SELECT CONCAT('acl:global:', grantee, ':', privilege_type), is_grantable FROM information_schema.user_privileges
UNION ALL SELECT CONCAT('acl:role:', user, '@', host, ':', role), admin_option FROM mysql.roles_mapping
UNION ALL SELECT CONCAT('set:global:', variable_name), variable_value FROM information_schema.global_variables
UNION ALL SELECT CONCAT('set:session:', variable_name), variable_value FROM information_schema.session_variables
`

type myEngine struct {
	dir, files, sock string
	db               *sql.DB
	conn, victim     *sql.Conn
	victimID         int64
	globals          snapshot
}

func startMariaDB(t *testing.T) *myEngine {
	t.Helper()
	server, err := exec.LookPath("mariadbd")
	if err != nil {
		server, err = exec.LookPath("/usr/sbin/mariadbd")
	}
	install, ierr := exec.LookPath("mariadb-install-db")
	if err != nil || ierr != nil {
		t.Fatal("MariaDB server binaries (mariadbd, mariadb-install-db) not found: install the Debian package mariadb-server (make test runs scripts/test-deps.sh, which does)")
	}
	dir, err := os.MkdirTemp("", "gtmy")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	e := &myEngine{dir: dir, files: filepath.Join(dir, "files"), sock: filepath.Join(dir, "sock")}
	require.NoError(t, os.Mkdir(e.files, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(e.files, "secret.txt"), []byte(secretMarker+"\n"), 0o644))
	data := filepath.Join(dir, "data")
	user := []string{}
	if os.Geteuid() == 0 {
		user = []string{"--user=root"}
	}
	args := append([]string{"--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal", "--skip-test-db"}, user...)
	out, err := exec.Command(install, args...).CombinedOutput()
	require.NoError(t, err, "mariadb-install-db: %s", out)
	logf := filepath.Join(dir, "server.log")
	args = append([]string{
		"--no-defaults", "--datadir=" + data, "--socket=" + e.sock, "--skip-networking",
		"--pid-file=" + filepath.Join(dir, "pid"), "--log-error=" + logf, "--secure-file-priv=" + e.files,
		"--innodb-buffer-pool-size=32M", "--innodb-flush-log-at-trx-commit=0", "--skip-log-bin", "--event-scheduler=OFF",
	}, user...)
	srv := exec.Command(server, args...)
	require.NoError(t, srv.Start())
	t.Cleanup(func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		_ = srv.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf)
			t.Logf("mariadb log:\n%s", b)
		}
	})
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.MultiStatements = "root", "unix", e.sock, true
	db, err := sql.Open("mysql", cfg.FormatDSN())
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	db.SetMaxIdleConns(4)
	e.db = db
	ctx := t.Context()
	for i := 0; ; i++ {
		if err = db.PingContext(ctx); err == nil {
			break
		}
		require.Less(t, i, 300, "mariadb did not start: %v", err)
		time.Sleep(100 * time.Millisecond)
	}
	g, err := e.globalVars(ctx)
	require.NoError(t, err)
	e.globals = g
	require.NoError(t, e.reseed(ctx))
	return e
}

func (e *myEngine) globalVars(ctx context.Context) (snapshot, error) {
	rows, err := e.db.QueryContext(ctx, "SELECT variable_name, variable_value FROM information_schema.global_variables")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	s := snapshot{}
	for rows.Next() {
		var k string
		var v sql.NullString
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		s[k] = v.String
	}
	return s, rows.Err()
}

func (e *myEngine) expand(q string) string {
	return strings.NewReplacer("@DIR@", e.files, "@SECRET@", filepath.Join(e.files, "secret.txt"),
		"@VICTIM@", strconv.FormatInt(e.victimID, 10)).Replace(q)
}

func (e *myEngine) connect(ctx context.Context) error {
	if e.conn != nil {
		_ = e.conn.Close()
		_ = e.victim.Close()
	}
	var err error
	if e.conn, err = e.db.Conn(ctx); err != nil {
		return err
	}
	if _, err = e.conn.ExecContext(ctx, "USE gt"); err != nil {
		return err
	}
	if _, err = e.conn.ExecContext(ctx, "SET SESSION max_statement_time = 5"); err != nil {
		return err
	}
	if e.victim, err = e.db.Conn(ctx); err != nil {
		return err
	}
	return e.victim.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&e.victimID)
}

func (e *myEngine) reseed(ctx context.Context) error {
	if e.conn != nil {
		_ = e.conn.Close()
		_ = e.victim.Close()
		e.conn, e.victim = nil, nil
	}
	c, err := e.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	var stmts []string
	for _, q := range []string{
		`SELECT CONCAT('DROP DATABASE ', QUOTE(schema_name)) FROM information_schema.schemata WHERE schema_name NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')`,
		`SELECT IF(host = '', CONCAT('DROP ROLE ', QUOTE(user)), CONCAT('DROP USER ', QUOTE(user), '@', QUOTE(host))) FROM mysql.global_priv WHERE user NOT IN ('root', 'mariadb.sys', 'mysql', '')`,
	} {
		rows, err := c.QueryContext(ctx, q)
		if err != nil {
			return err
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				return err
			}
			stmts = append(stmts, strings.Replace(strings.Replace(s, "DROP DATABASE '", "DROP DATABASE `", 1), "' ", "` ", 1))
		}
		rows.Close()
	}
	for i, s := range stmts {
		if strings.HasPrefix(s, "DROP DATABASE `") && strings.HasSuffix(s, "'") {
			stmts[i] = strings.TrimSuffix(s, "'") + "`"
		}
	}
	g, err := e.globalVars(ctx)
	if err != nil {
		return err
	}
	for k, v := range g {
		if e.globals[k] != v {
			stmts = append(stmts, fmt.Sprintf("SET GLOBAL %s = %s", k, quoteMy(e.globals[k])))
		}
	}
	for _, s := range append(stmts, "FLUSH PRIVILEGES", "SELECT RELEASE_ALL_LOCKS()") {
		if _, err := c.ExecContext(ctx, s); err != nil && !strings.HasPrefix(s, "SET GLOBAL") {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	for _, s := range mySeed {
		if _, err := c.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("seed %s: %w", s, err)
		}
	}
	if err := cleanFiles(e.files); err != nil {
		return err
	}
	return e.connect(ctx)
}

func quoteMy(v string) string {
	if _, err := strconv.ParseFloat(v, 64); err == nil || v == "ON" || v == "OFF" {
		return v
	}
	return "'" + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), "'", `\'`) + "'"
}

func (e *myEngine) snapshot(ctx context.Context) (snapshot, error) {
	s := snapshot{}
	// An explicit LIMIT keeps the agent's sql_select_limit from trimming the snapshot.
	rows, err := e.conn.QueryContext(ctx, myCatalog+" LIMIT 10000000")
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	for rows.Next() {
		var k, v sql.NullString
		if err := rows.Scan(&k, &v); err != nil {
			rows.Close()
			return nil, err
		}
		name := k.String
		if i := strings.LastIndexByte(name, ':'); strings.HasPrefix(name, "set:") && myVolatile[name[i+1:]] {
			continue
		}
		s[name] = v.String
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = e.conn.QueryContext(ctx, `SELECT table_schema, table_name, table_type FROM information_schema.tables
		WHERE table_schema NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') AND table_type <> 'VIEW' LIMIT 10000000`)
	if err != nil {
		return nil, err
	}
	var tables [][3]string
	for rows.Next() {
		var a, b, c string
		if err := rows.Scan(&a, &b, &c); err != nil {
			rows.Close()
			return nil, err
		}
		tables = append(tables, [3]string{a, b, c})
	}
	rows.Close()
	for _, tb := range tables {
		v, err := e.tableHash(ctx, "`"+tb[0]+"`.`"+tb[1]+"`")
		if err != nil {
			return nil, fmt.Errorf("rows of %s.%s: %w", tb[0], tb[1], err)
		}
		prefix := "rows:"
		if tb[2] == "SEQUENCE" {
			prefix = "seq:"
		}
		s[prefix+tb[0]+"."+tb[1]] = v
	}
	var locks int
	if err := e.conn.QueryRowContext(ctx, "SELECT RELEASE_ALL_LOCKS()").Scan(&locks); err != nil {
		return nil, err
	}
	if locks > 0 {
		s["locks:user"] = strconv.Itoa(locks)
	}
	return s, fileSnapshot(e.files, s)
}

func (e *myEngine) tableHash(ctx context.Context, table string) (string, error) {
	rows, err := e.conn.QueryContext(ctx, "SELECT * FROM "+table+" LIMIT 10000000")
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", err
	}
	var lines []string
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return "", err
		}
		var b strings.Builder
		for _, v := range vals {
			b.WriteString(strconv.Quote(string(v)))
			b.WriteByte(',')
		}
		lines = append(lines, b.String())
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	slicesSort(lines)
	h := sha256.Sum256([]byte(strings.Join(lines, "|") + strings.Join(cols, ",")))
	return fmt.Sprintf("%d:%s", len(lines), hex.EncodeToString(h[:8])), nil
}

func (e *myEngine) inTx(ctx context.Context) (snapshot, error) {
	if _, err := e.conn.ExecContext(ctx, "BEGIN"); err != nil {
		return nil, err
	}
	s, err := e.snapshot(ctx)
	if _, rerr := e.conn.ExecContext(ctx, "ROLLBACK"); err == nil {
		err = rerr
	}
	return s, err
}

func (e *myEngine) run(ctx context.Context, q string) (snapshot, []string, error) {
	var extra []string
	if _, err := e.conn.ExecContext(ctx, "BEGIN"); err != nil {
		return nil, nil, err
	}
	execErr := e.query(ctx, q, &extra)
	// LOCK TABLES (which also commits) keeps the snapshot from reading other tables.
	_, _ = e.conn.ExecContext(ctx, "UNLOCK TABLES")
	var in snapshot
	if execErr == nil {
		in, _ = e.snapshot(ctx)
	}
	if _, err := e.conn.ExecContext(ctx, "ROLLBACK"); err != nil && e.conn.PingContext(ctx) != nil {
		extra = append(extra, "killed:own session")
		_ = e.connect(ctx)
	}
	if err := e.victim.PingContext(ctx); err != nil {
		extra = append(extra, "killed:other session")
		_ = e.connect(ctx)
	}
	return in, extra, execErr
}

// query runs q and reads every result set, noting a secret in any value.
func (e *myEngine) query(ctx context.Context, q string, extra *[]string) error {
	rows, err := e.conn.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for {
		cols, _ := rows.Columns()
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				return err
			}
			for _, v := range vals {
				if strings.Contains(string(v), secretMarker) {
					*extra = append(*extra, "secret:read")
				}
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if !rows.NextResultSet() {
			return rows.Err()
		}
	}
}
