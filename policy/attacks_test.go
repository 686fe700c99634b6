package policy_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/policy"
)

// TestDefaultPolicyRefusesSQLAttacks lists statements that change or reach something while
// looking harmless to a deny-list: always-true WHEREs without a column, MERGE deletes,
// drops of non-table objects, column drops, dynamic SQL, calls of functions with effects.
func TestDefaultPolicyRefusesSQLAttacks(t *testing.T) {
	set := corpusPolicy(t)
	for _, c := range []struct {
		dialect policy.Dialect
		q       string
	}{
		{policy.Postgres, "DELETE FROM users WHERE 2 > 1"},
		{policy.Postgres, "DELETE FROM users WHERE NOT false"},
		{policy.Postgres, "DELETE FROM users WHERE 1 IN (1)"},
		{policy.Postgres, "DELETE FROM users WHERE (SELECT true)"},
		{policy.Postgres, "DELETE FROM users WHERE (SELECT count(*) FROM orders) > 0"},
		{policy.Postgres, "UPDATE users SET admin = true WHERE now() > '2000-01-01'"},
		{policy.Postgres, "UPDATE users SET admin = true WHERE id = 1 OR 2 > 1"},
		{policy.Postgres, "DELETE FROM users u USING orders o WHERE o.id > 0"},
		{policy.Postgres, "MERGE INTO users u USING orders o ON u.id = o.user_id WHEN MATCHED THEN DELETE"},
		{policy.Postgres, "MERGE INTO users u USING users s ON true WHEN MATCHED THEN UPDATE SET admin = true"},
		{policy.Postgres, "DROP OWNED BY app CASCADE"},
		{policy.Postgres, "ALTER TABLE users DROP COLUMN email"},
		{policy.Postgres, "ALTER TABLE users ALTER COLUMN email TYPE int USING 0"},
		{policy.Postgres, "DROP TYPE mood CASCADE"},
		{policy.Postgres, "DROP EXTENSION pgcrypto CASCADE"},
		{policy.Postgres, "DROP SEQUENCE users_id_seq CASCADE"},
		{policy.Postgres, "DROP FUNCTION f() CASCADE"},
		{policy.Postgres, "DO $$ BEGIN EXECUTE 'DROP TABLE users'; END $$"},
		{policy.Postgres, "SELECT lo_import('/etc/passwd')"},
		{policy.Postgres, "SELECT lo_unlink(16400)"},
		{policy.Postgres, "SELECT set_config('search_path', 'evil', false)"},
		{policy.Postgres, "SELECT nextval('users_id_seq')"},
		{policy.Postgres, "SELECT dblink_exec('host=x', 'DROP TABLE users')"},
		{policy.Postgres, "SELECT public.wipe()"},
		{policy.Postgres, "SELECT * FROM wipe()"},
		{policy.Postgres, "SELECT query_to_xml('DELETE FROM users RETURNING 1', true, true, '')"},
		{policy.Postgres, "SET ROLE postgres"},
		{policy.Postgres, "SET session_replication_role = replica"},
		{policy.Postgres, "LOAD 'plpgsql'"},
		{policy.Postgres, "CREATE RULE r AS ON SELECT TO users DO INSTEAD NOTHING"},
		{policy.Postgres, "ALTER TABLE users DISABLE ROW LEVEL SECURITY"},
		{policy.Postgres, "PREPARE TRANSACTION 'x'"},
		{policy.Postgres, "CREATE SCHEMA s GRANT ALL ON users TO PUBLIC"},
		{policy.MySQL, "DELETE FROM users WHERE 2 > 1"},
		{policy.MySQL, "DELETE FROM users WHERE NOT false"},
		{policy.MySQL, "DELETE FROM users WHERE 1 IN (1)"},
		{policy.MySQL, "DELETE FROM users WHERE (SELECT 1)"},
		{policy.MySQL, "UPDATE users SET admin = 1 WHERE id = 1 OR 2 > 1"},
		{policy.MySQL, "ALTER TABLE users DROP COLUMN email"},
		{policy.MySQL, "ALTER TABLE users MODIFY email int"},
		{policy.MySQL, "DROP PROCEDURE p"},
		{policy.MySQL, "DROP INDEX i ON users"},
		{policy.MySQL, "SELECT GET_LOCK('x', 10)"},
		{policy.MySQL, "SELECT wipe()"},
		{policy.MySQL, "SET GLOBAL read_only = 0"},
		{policy.MySQL, "SELECT * FROM users FOR UPDATE; DELETE FROM users WHERE 'a'"},
	} {
		t.Run(string(c.dialect)+"/"+c.q, func(t *testing.T) {
			d := set.Decide(corpusInput(t, corpusCase{Dialect: c.dialect, Input: c.q}))
			require.Equal(t, policy.Deny, d.Action, "decision %+v, classification %+v", d, policy.ClassifySQL(c.dialect, c.q))
			require.NotEmpty(t, d.Reason)
			require.False(t, policy.ClassifySQL(c.dialect, c.q).Value()["read"].(bool))
			// The same statement handed to the database client by a shell command is refused too.
			client := "psql -c "
			if c.dialect == policy.MySQL {
				client = "mysql -e "
			}
			viaShell := set.Decide(corpusInput(t, corpusCase{Shell: true, Input: client + shellQuote(c.q)}))
			require.Equal(t, policy.Deny, viaShell.Action, "through the shell: %+v", viaShell)
		})
	}
}

// TestDefaultPolicyAllowsEverydaySQL: what agents send every day is not refused.
func TestDefaultPolicyAllowsEverydaySQL(t *testing.T) {
	set := corpusPolicy(t)
	for _, c := range []struct {
		dialect policy.Dialect
		q       string
		read    bool
	}{
		{policy.Postgres, "SELECT u.id, count(*) FROM users u JOIN orders o ON o.user_id = u.id GROUP BY u.id HAVING count(*) > 1", true},
		{policy.Postgres, "WITH recent AS (SELECT * FROM orders WHERE created_at > now() - interval '7 days') SELECT lower(u.email), coalesce(sum(r.total), 0)::numeric(10,2) FROM users u LEFT JOIN recent r ON r.user_id = u.id GROUP BY 1", true},
		{policy.Postgres, "SELECT id, row_number() OVER (PARTITION BY user_id ORDER BY created_at DESC) FROM orders", true},
		{policy.Postgres, "SELECT pg_catalog.lower(name), CURRENT_DATE, date_trunc('day', now()) FROM users", true},
		{policy.Postgres, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'", true},
		{policy.Postgres, "EXPLAIN SELECT * FROM users WHERE id = 1", true},
		{policy.Postgres, "EXPLAIN DELETE FROM users", true},
		{policy.Postgres, "SHOW search_path", true},
		{policy.Postgres, "INSERT INTO users (email) VALUES ('a@b.c') RETURNING id", false},
		{policy.Postgres, "UPDATE users SET email = lower(email) WHERE id = 42", false},
		{policy.Postgres, "UPDATE users u SET email = o.note FROM orders o WHERE o.user_id = u.id AND o.id = 3", false},
		{policy.Postgres, "DELETE FROM orders WHERE id = 3", false},
		{policy.Postgres, "DELETE FROM orders o WHERE EXISTS (SELECT 1 FROM users u WHERE u.id = o.user_id AND u.email IS NULL)", false},
		{policy.Postgres, "CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL, created_at timestamptz DEFAULT now())", false},
		{policy.Postgres, "CREATE INDEX ON orders (user_id)", false},
		{policy.Postgres, "SET statement_timeout = '5s'", false},
		{policy.MySQL, "SELECT u.id, COUNT(*) FROM users u JOIN orders o ON o.user_id = u.id GROUP BY u.id", true},
		{policy.MySQL, "SELECT IFNULL(email, ''), DATE_FORMAT(NOW(), '%Y'), CAST(id AS CHAR) FROM users LIMIT 10", true},
		{policy.MySQL, "SHOW TABLES", true},
		{policy.MySQL, "DESCRIBE users", true},
		{policy.MySQL, "INSERT INTO users (email) VALUES ('a@b.c')", false},
		{policy.MySQL, "UPDATE users SET email = LOWER(email) WHERE id = 42", false},
		{policy.MySQL, "DELETE FROM orders WHERE id = 3", false},
	} {
		t.Run(string(c.dialect)+"/"+c.q, func(t *testing.T) {
			got := policy.ClassifySQL(c.dialect, c.q)
			d := set.Decide(corpusInput(t, corpusCase{Dialect: c.dialect, Input: c.q}))
			require.Equal(t, policy.Allow, d.Action, "decision %+v, classification %+v", d, got)
			require.Equal(t, c.read, got.Value()["read"], "classification %+v", got)
		})
	}
}
