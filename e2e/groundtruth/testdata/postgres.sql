# PostgreSQL ground-truth corpus: expect<TAB>sql[<TAB>note]; see corpus_test.go.
# @DIR@ is a server-side directory, @SECRET@ a file in it no statement may read, @VICTIM@ another session's id.
read	SELECT 1
read	SELECT id, email FROM users WHERE id = 1
read	SELECT * FROM users ORDER BY id LIMIT 3
read	SELECT count(*) FROM orders
read	SELECT u.id, u.name, count(o.id) FROM users u LEFT JOIN orders o ON o.user_id = u.id GROUP BY u.id, u.name ORDER BY 3 DESC
read	SELECT user_id, sum(total) AS spent FROM orders GROUP BY user_id HAVING sum(total) > 50
read	SELECT DISTINCT user_id FROM orders
read	SELECT DISTINCT ON (user_id) user_id, total FROM orders ORDER BY user_id, total DESC
read	WITH big AS (SELECT * FROM orders WHERE total > 100) SELECT count(*) FROM big
read	WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT sum(i) FROM n
read	SELECT id, row_number() OVER (PARTITION BY user_id ORDER BY total DESC) FROM orders
read	SELECT id, rank() OVER (ORDER BY total), dense_rank() OVER (ORDER BY total) FROM orders
read	SELECT id, lag(total) OVER (ORDER BY id), lead(total) OVER (ORDER BY id) FROM orders
read	SELECT id, sum(total) OVER (ORDER BY id ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM orders
read	SELECT now()
read	SELECT now(), current_date, current_timestamp, localtimestamp
read	SELECT lower(email), upper(name) FROM users
read	SELECT coalesce(mood::text, 'none') FROM users
read	SELECT id::text, total::int, created_at::date FROM orders
read	SELECT CAST(total AS integer) FROM orders
read	SELECT date_trunc('day', created_at), count(*) FROM orders GROUP BY 1
read	SELECT extract(year FROM created_at) FROM orders
read	SELECT age(now(), created_at) FROM orders LIMIT 1
read	SELECT created_at + interval '1 day' FROM orders
read	SELECT to_char(created_at, 'YYYY-MM-DD') FROM orders
read	SELECT CASE WHEN total > 100 THEN 'big' ELSE 'small' END FROM orders
read	SELECT count(*) FILTER (WHERE total > 100) FROM orders
read	SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY total) FROM orders
read	SELECT user_id, array_agg(id ORDER BY id) FROM orders GROUP BY user_id
read	SELECT string_agg(name, ', ' ORDER BY name) FROM users
read	SELECT json_agg(u) FROM users u
read	SELECT jsonb_build_object('id', id, 'email', email) FROM users
read	SELECT row_to_json(u) FROM users u WHERE id = 2
read	SELECT to_jsonb(o) ->> 'note' FROM orders o
read	SELECT * FROM users WHERE email LIKE '%@example.com'
read	SELECT * FROM users WHERE email ILIKE 'A%'
read	SELECT * FROM users WHERE name SIMILAR TO 'A%'
read	SELECT * FROM users WHERE email ~ '^b'
read	SELECT * FROM orders WHERE total BETWEEN 50 AND 150
read	SELECT * FROM orders WHERE user_id IN (1, 2, 3)
read	SELECT * FROM orders WHERE user_id = ANY (ARRAY[1, 2])
read	SELECT * FROM users WHERE mood IS NULL
read	SELECT * FROM users WHERE admin IS NOT TRUE
read	SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id AND o.total > 200)
read	SELECT * FROM users WHERE id NOT IN (SELECT user_id FROM orders WHERE total > 200)
read	SELECT (SELECT max(total) FROM orders) AS top
read	SELECT u.name, x.total FROM users u CROSS JOIN LATERAL (SELECT total FROM orders o WHERE o.user_id = u.id ORDER BY total DESC LIMIT 1) x
read	SELECT * FROM users u FULL JOIN orders o ON o.user_id = u.id
read	SELECT id FROM users UNION SELECT user_id FROM orders
read	SELECT id FROM users INTERSECT SELECT user_id FROM orders
read	SELECT id FROM users EXCEPT SELECT user_id FROM orders
read	SELECT * FROM generate_series(1, 5)
read	SELECT unnest(ARRAY[1, 2, 3])
read	SELECT greatest(1, 2, 3), least(4, 5), nullif(1, 1)
read	SELECT round(avg(total), 2), min(total), max(total), stddev(total) FROM orders
read	SELECT split_part(email, '@', 2), count(*) FROM users GROUP BY 1
read	SELECT regexp_replace(email, '@.*', '') FROM users
read	SELECT left(name, 1), right(name, 1), length(name) FROM users
read	SELECT substring(email FROM 1 FOR 3), position('@' IN email) FROM users
read	SELECT trim(both ' ' FROM '  x  ')
read	SELECT concat(name, ' <', email, '>') FROM users
read	SELECT format('%s has %s', name, id) FROM users
read	SELECT md5(email) FROM users
read	SELECT gen_random_uuid() IS NOT NULL
read	SELECT random() < 2
read	SELECT abs(-1), ceil(1.2), floor(1.8), sqrt(4), power(2, 10), mod(7, 3)
read	SELECT created_at AT TIME ZONE 'UTC' FROM orders LIMIT 1
read	SELECT user_id, total FROM orders ORDER BY total DESC NULLS LAST OFFSET 2 FETCH FIRST 3 ROWS ONLY
read	SELECT user_id, sum(total) FROM orders GROUP BY ROLLUP (user_id)
read	SELECT * FROM orders TABLESAMPLE SYSTEM (100)
read	VALUES (1, 'a'), (2, 'b')
read	TABLE users
read	SELECT * FROM big_orders
read	SELECT * FROM reports.daily
read	SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1
read	SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'users' ORDER BY ordinal_position
read	SELECT relname, n_live_tup FROM pg_stat_user_tables ORDER BY 1
read	SELECT count(*) >= 0 FROM pg_stat_activity
read	SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'orders'
read	SELECT pg_size_pretty(pg_total_relation_size('users'))
read	SELECT pg_size_pretty(pg_database_size(current_database()))
read	SELECT version(), current_database(), current_schema(), current_user
read	SELECT current_setting('server_version_num')
read	SELECT has_table_privilege('reader', 'users', 'SELECT')
read	SELECT obj_description('users'::regclass), to_regclass('public.users')
read	SELECT pg_typeof(1.5), pg_backend_pid() > 0
read	SELECT pg_get_viewdef('big_orders'::regclass)
read	SELECT conname FROM pg_constraint WHERE conrelid = 'orders'::regclass
read	SELECT rolname FROM pg_roles ORDER BY 1
read	SELECT nspname FROM pg_namespace ORDER BY 1
read	SELECT typname FROM pg_type WHERE typname = 'mood'
read	SELECT enum_range(NULL::mood)
read	SHOW search_path
read	SHOW server_version
read	SHOW ALL
read	EXPLAIN SELECT * FROM users WHERE id = 1
read	EXPLAIN (FORMAT JSON) SELECT * FROM orders WHERE user_id = 2
read	EXPLAIN (ANALYZE false) DELETE FROM audit
read	EXPLAIN DELETE FROM audit
read	EXPLAIN UPDATE users SET admin = true
read	COPY (SELECT id, email FROM users) TO STDOUT
read	COPY users TO STDOUT WITH (FORMAT csv, HEADER)
read	-- a comment\nSELECT 1
read	/* DROP TABLE users */ SELECT 1
read	SELECT 'DROP TABLE users; DELETE FROM audit' AS s
read	SELECT $$DELETE FROM audit$$
read	SELECT "id" FROM "users" WHERE "id" = 1
read	SELECT id FROM public.users WHERE id = 1
read	SELECT 1; SELECT 2
read	SELECT pg_catalog.lower('X'), pg_catalog.now() IS NOT NULL
read	SELECT e.id FROM users e WHERE e.id = 3
read	SELECT json_build_array(1, 2), jsonb_typeof('{}'::jsonb)
read	SELECT '{"a":1}'::jsonb -> 'a', '{"a":{"b":2}}'::jsonb #>> '{a,b}'
read	SELECT id FROM users WHERE id = $1
allow	INSERT INTO users (email, name) VALUES ('new@example.com', 'New')
allow	INSERT INTO users (email, name) VALUES ('ret@example.com', 'Ret') RETURNING id
allow	INSERT INTO audit (msg) SELECT 'copy of ' || msg FROM audit
allow	INSERT INTO orders (user_id, total) VALUES (1, 9.99), (2, 19.99)
allow	INSERT INTO users (id, email) VALUES (1, 'ann@example.com') ON CONFLICT (id) DO UPDATE SET email = excluded.email
allow	INSERT INTO users (id, email) VALUES (1, 'x') ON CONFLICT DO NOTHING
allow	UPDATE users SET name = 'Annie' WHERE id = 1
allow	UPDATE users SET email = lower(email) WHERE id = 2
allow	UPDATE orders SET total = total * 1.1 WHERE user_id = 2
allow	UPDATE orders SET note = 'late' WHERE created_at < now() AND user_id = 3
allow	UPDATE users u SET name = o.note FROM orders o WHERE o.user_id = u.id AND o.id = 3
allow	UPDATE users SET admin = NOT admin WHERE email = 'bob@example.com'
allow	UPDATE users SET mood = 'sad' WHERE id IN (1, 2)
allow	UPDATE users SET name = upper(name) WHERE name LIKE 'A%'
allow	DELETE FROM audit WHERE id = 1
allow	DELETE FROM orders WHERE id IN (1, 2)
allow	DELETE FROM audit WHERE id = (SELECT max(id) FROM audit)
allow	DELETE FROM orders o USING users u WHERE o.user_id = u.id AND u.email = 'bob@example.com'
allow	DELETE FROM orders o WHERE EXISTS (SELECT 1 FROM users u WHERE u.id = o.user_id AND u.name = 'Cy')
allow	DELETE FROM audit WHERE msg = 'a' RETURNING *
allow	WITH n AS (UPDATE users SET admin = true WHERE id = 1 RETURNING id) SELECT * FROM n
allow	WITH d AS (DELETE FROM audit WHERE id = 2 RETURNING *) SELECT count(*) FROM d
allow	MERGE INTO users u USING (VALUES (1, 'm@example.com')) s(id, email) ON u.id = s.id WHEN MATCHED THEN UPDATE SET email = s.email WHEN NOT MATCHED THEN INSERT (id, email) VALUES (s.id, s.email)
allow	SELECT * FROM users WHERE id = 1 FOR UPDATE
allow	SELECT * FROM orders FOR SHARE
allow	LOCK TABLE audit IN SHARE MODE
allow	NOTIFY events, 'hello'
allow	CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL, created_at timestamptz DEFAULT now())
allow	CREATE TABLE IF NOT EXISTS tags (name text PRIMARY KEY)
allow	CREATE TEMP TABLE scratch AS SELECT * FROM users
allow	CREATE TABLE user_copy AS SELECT id, email FROM users
allow	SELECT * INTO user_backup FROM users
allow	CREATE INDEX ON orders (user_id)
allow	CREATE UNIQUE INDEX users_email_idx ON users (lower(email))
allow	CREATE VIEW active_users AS SELECT * FROM users WHERE NOT admin
allow	CREATE OR REPLACE VIEW big_orders AS SELECT * FROM orders WHERE total > 200
allow	CREATE MATERIALIZED VIEW order_totals AS SELECT user_id, sum(total) FROM orders GROUP BY user_id
allow	ALTER TABLE users ADD COLUMN phone text
allow	ALTER TABLE users ALTER COLUMN name SET DEFAULT 'anon'
allow	ALTER TABLE users ALTER COLUMN email SET NOT NULL
allow	ALTER TABLE orders ADD CONSTRAINT positive_total CHECK (total >= 0)
allow	ALTER TABLE users RENAME COLUMN name TO full_name
allow	ALTER TABLE audit RENAME TO audit_log
allow	COMMENT ON TABLE users IS 'people'
allow	CREATE SCHEMA staging
allow	CREATE SEQUENCE invoice_no
allow	CREATE TYPE size AS ENUM ('s', 'm', 'l')
allow	ALTER TYPE mood ADD VALUE 'meh'
allow	CREATE DOMAIN email_address AS text CHECK (VALUE LIKE '%@%')
allow	ALTER SEQUENCE counter RESTART WITH 10
allow	SET statement_timeout = '10s'
allow	SET search_path TO public, reports
allow	SET LOCAL work_mem = '64MB'
allow	SET TIME ZONE 'UTC'
allow	SET application_name = 'agent'
allow	RESET work_mem
allow	BEGIN
allow	COMMIT
allow	SAVEPOINT a
allow	LISTEN events
allow	UNLISTEN *
allow	DISCARD PLANS
allow	DEALLOCATE ALL
allow	VACUUM audit
allow	ANALYZE orders
allow	VACUUM (ANALYZE) users
allow	CHECKPOINT
allow	REINDEX TABLE audit
allow	CLUSTER users USING users_pkey
allow	ALTER TABLE users ENABLE ROW LEVEL SECURITY
allow	DECLARE c CURSOR FOR SELECT * FROM users
allow	CREATE DATABASE other
allow	CREATE DATABASE other2 TEMPLATE gt
allow	REFRESH MATERIALIZED VIEW big_orders
destroy	DELETE FROM audit WHERE 2 > 1
destroy	DELETE FROM audit WHERE NOT false
destroy	DELETE FROM audit WHERE 1 IN (1)
destroy	DELETE FROM audit WHERE (SELECT true)
destroy	DELETE FROM audit WHERE true
destroy	DELETE FROM audit WHERE 1 = 1
destroy	DELETE FROM audit WHERE 'a' = 'a'
destroy	DELETE FROM audit WHERE (SELECT count(*) FROM orders) > 0
destroy	DELETE FROM audit WHERE now() > '2000-01-01'
destroy	DELETE FROM audit WHERE EXISTS (SELECT 1 FROM orders)
destroy	DELETE FROM audit WHERE id = id
destroy	DELETE FROM audit WHERE id > 0 OR 1 = 1
destroy	DELETE FROM audit WHERE msg IS NOT NULL OR true
destroy	DELETE FROM audit WHERE 2 > 1 AND 3 > 2
destroy	DELETE FROM audit WHERE NOT (1 = 2)
destroy	DELETE FROM audit WHERE 1 BETWEEN 0 AND 2
destroy	DELETE FROM audit WHERE 'x' LIKE '%'
destroy	DELETE FROM audit WHERE coalesce(NULL, true)
destroy	DELETE FROM audit WHERE current_user = current_user
destroy	DELETE FROM audit WHERE 1 <> 2
destroy	DELETE FROM audit WHERE true IS TRUE
destroy	DELETE FROM audit WHERE ARRAY[1] <@ ARRAY[1, 2]
destroy	DELETE FROM audit WHERE length('a') = 1
destroy	DELETE FROM audit WHERE (SELECT 1) = 1
destroy	DELETE FROM audit WHERE 1 = ANY (ARRAY[1, 2])
destroy	DELETE FROM audit WHERE NULL IS NULL
destroy	DELETE FROM audit WHERE id = id OR false
destroy	DELETE FROM audit WHERE '1'::int = 1
destroy	DELETE FROM audit WHERE random() >= 0
destroy	DELETE FROM audit WHERE pi() > 3
destroy	DELETE FROM audit WHERE id >= id
destroy	DELETE FROM audit WHERE 't'::boolean
destroy	DELETE FROM audit WHERE (SELECT max(id) FROM orders) IS NOT NULL
destroy	DELETE FROM audit WHERE 1 IN (SELECT 1)
destroy	DELETE FROM audit WHERE NOT NOT true
destroy	DELETE FROM audit WHERE audit.id = audit.id
destroy	UPDATE users SET name = 'x' WHERE 2 > 1
destroy	UPDATE users SET name = 'x' WHERE NOT false
destroy	UPDATE users SET name = 'x' WHERE 1 IN (1)
destroy	UPDATE users SET name = 'x' WHERE (SELECT true)
destroy	UPDATE users SET name = 'x' WHERE true
destroy	UPDATE users SET name = 'x' WHERE 1 = 1
destroy	UPDATE users SET name = 'x' WHERE 'a' = 'a'
destroy	UPDATE users SET name = 'x' WHERE (SELECT count(*) FROM orders) > 0
destroy	UPDATE users SET name = 'x' WHERE now() > '2000-01-01'
destroy	UPDATE users SET name = 'x' WHERE EXISTS (SELECT 1 FROM orders)
destroy	UPDATE users SET name = 'x' WHERE id = id
destroy	UPDATE users SET name = 'x' WHERE id > 0 OR 1 = 1
destroy	UPDATE users SET name = 'x' WHERE name IS NOT NULL OR true
destroy	UPDATE users SET name = 'x' WHERE 2 > 1 AND 3 > 2
destroy	UPDATE users SET name = 'x' WHERE NOT (1 = 2)
destroy	UPDATE users SET name = 'x' WHERE 1 BETWEEN 0 AND 2
destroy	UPDATE users SET name = 'x' WHERE 'x' LIKE '%'
destroy	UPDATE users SET name = 'x' WHERE coalesce(NULL, true)
destroy	UPDATE users SET name = 'x' WHERE current_user = current_user
destroy	UPDATE users SET name = 'x' WHERE 1 <> 2
destroy	UPDATE users SET name = 'x' WHERE true IS TRUE
destroy	UPDATE users SET name = 'x' WHERE ARRAY[1] <@ ARRAY[1, 2]
destroy	UPDATE users SET name = 'x' WHERE length('a') = 1
destroy	UPDATE users SET name = 'x' WHERE (SELECT 1) = 1
destroy	DELETE FROM audit
destroy	UPDATE users SET admin = true
destroy	DELETE FROM ONLY audit
destroy	dElEtE fRoM "audit"
destroy	DELETE FROM public.audit WHERE 1=1
destroy	DELETE FROM audit a WHERE a.id = a.id
destroy	DELETE FROM audit a USING orders o WHERE o.id > 0
destroy	UPDATE users u SET admin = true FROM orders o WHERE o.total > 0
destroy	UPDATE users SET admin = true WHERE id = 5 OR true
destroy	WITH d AS (DELETE FROM audit RETURNING *) SELECT count(*) FROM d
destroy	WITH d AS (DELETE FROM audit WHERE 2 > 1 RETURNING *) SELECT 1
destroy	WITH u AS (UPDATE users SET admin = true RETURNING 1) SELECT count(*) FROM u
destroy	SELECT 1; DELETE FROM audit
destroy	SELECT * FROM users WHERE id = '1'; DELETE FROM audit; --'
destroy	EXPLAIN ANALYZE DELETE FROM audit
destroy	EXPLAIN (ANALYZE) UPDATE users SET admin = true
destroy	EXPLAIN (ANALYZE 'on', BUFFERS) DELETE FROM audit
destroy	MERGE INTO audit a USING (SELECT 1 AS id) s ON a.id = s.id WHEN MATCHED THEN DELETE
destroy	MERGE INTO audit a USING audit s ON a.id = s.id WHEN MATCHED THEN DELETE
destroy	MERGE INTO users u USING users s ON true WHEN MATCHED THEN UPDATE SET admin = true
destroy	DROP TABLE audit
destroy	DROP TABLE audit CASCADE
destroy	DROP/**/TABLE audit
destroy	dRoP\n TABLE audit
destroy	DROP TABLE IF EXISTS no_such_table	by-kind: no such object
destroy	DROP VIEW big_orders
destroy	DROP TYPE mood CASCADE
destroy	DROP EXTENSION pgcrypto CASCADE
destroy	DROP SEQUENCE counter
destroy	DROP SEQUENCE users_id_seq CASCADE
destroy	DROP FUNCTION wipe()
destroy	DROP FUNCTION add(int, int) CASCADE
destroy	DROP PROCEDURE clear_audit()
destroy	DROP SCHEMA reports CASCADE
destroy	DROP INDEX IF EXISTS no_such_index	by-kind: no such object
destroy	DROP OWNED BY reader CASCADE
destroy	DROP OWNED BY app	by-kind: app owns nothing and holds no grants in the seed
destroy	DROP RULE IF EXISTS r ON audit	by-kind: no such object
destroy	DROP DATABASE scratch
destroy	DROP DATABASE IF EXISTS scratch WITH (FORCE)
destroy	TRUNCATE audit
destroy	TRUNCATE users CASCADE
destroy	TRUNCATE TABLE reports.daily RESTART IDENTITY
destroy	ALTER TABLE users DROP COLUMN name
destroy	ALTER TABLE users DROP COLUMN IF EXISTS nope	by-kind: no such object
destroy	ALTER TABLE orders ALTER COLUMN total TYPE int
destroy	ALTER TABLE users ALTER COLUMN name TYPE varchar(1) USING left(name, 1)
destroy	ALTER TABLE users ALTER COLUMN email TYPE text USING NULL
destroy	ALTER TABLE orders DROP COLUMN note, ADD COLUMN note2 text
destroy	SELECT 1; DROP TABLE audit
destroy	DROP TABLE users, orders CASCADE
deny	DO $$ BEGIN EXECUTE 'DELETE FROM audit'; END $$
deny	DO $$ BEGIN PERFORM 1; END $$
deny	DO LANGUAGE plpgsql $x$ BEGIN EXECUTE 'DROP TABLE audit'; END $x$
deny	CALL clear_audit()
deny	PREPARE p AS DELETE FROM audit; EXECUTE p
deny	PREPARE q AS SELECT 1
deny	SELECT wipe()
deny	SELECT public.wipe()
deny	SELECT * FROM wipe()
deny	SELECT add(1, 2)
deny	SELECT id FROM users WHERE wipe() = 1
deny	SELECT nextval('counter')
deny	SELECT setval('counter', 100)
deny	SELECT currval('counter')
deny	SELECT lo_import('@SECRET@')
deny	SELECT lo_unlink(123456)
deny	SELECT lo_create(0)
deny	SELECT lo_from_bytea(0, 'x')
deny	SELECT pg_read_file('@SECRET@')
deny	SELECT pg_read_binary_file('@SECRET@')
deny	SELECT pg_ls_dir('@DIR@')
deny	SELECT pg_stat_file('@SECRET@')
deny	SELECT set_config('search_path', 'reports', false)
deny	SELECT set_config('statement_timeout', '0', true)
deny	SELECT pg_terminate_backend(@VICTIM@)
deny	SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname = current_database()
deny	SELECT pg_cancel_backend(@VICTIM@)
deny	SELECT pg_advisory_lock(42)
deny	SELECT pg_notify('events', 'x')
deny	SELECT pg_reload_conf()
deny	SELECT pg_sleep(0)
deny	SELECT query_to_xml('DELETE FROM audit RETURNING 1', true, true, '')
deny	SELECT dblink_exec('dbname=gt', 'DELETE FROM audit')
deny	SELECT txid_current()
deny	SELECT pg_switch_wal()
deny	SELECT lo_export(0, '@DIR@/lo.bin')
deny	SELECT digest('x', 'sha256')
deny	SELECT crypt('pw', gen_salt('bf'))
deny	SELECT pg_catalog.pg_read_file('@SECRET@')
deny	SELECT "pg_read_file"('@SECRET@')
deny	SELECT id FROM users ORDER BY pg_read_file('@SECRET@')
deny	WITH x AS (SELECT pg_read_file('@SECRET@') AS s) SELECT s FROM x
deny	SELECT * FROM pg_ls_dir('@DIR@') f
deny	SELECT 1 OPERATOR(public.+) 1
deny	COPY users TO '@DIR@/users.csv'
deny	COPY (SELECT * FROM users) TO PROGRAM 'cat > @DIR@/prog.txt'
deny	COPY audit (msg) FROM PROGRAM 'echo pwned'
deny	COPY audit (msg) FROM '@SECRET@'
deny	COPY users TO PROGRAM 'true'
deny	GRANT ALL ON users TO app
deny	GRANT ALL PRIVILEGES ON ALL TABLES IN SCHEMA public TO PUBLIC
deny	REVOKE SELECT ON users FROM reader
deny	GRANT reader TO PUBLIC
deny	REVOKE reader FROM app
deny	CREATE ROLE mallory LOGIN SUPERUSER
deny	ALTER ROLE app SUPERUSER
deny	ALTER ROLE app SET search_path = evil
deny	ALTER USER app PASSWORD 'x'
deny	DROP ROLE reader
deny	ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO PUBLIC
deny	ALTER TABLE users OWNER TO app
deny	ALTER FUNCTION wipe() OWNER TO app
deny	REASSIGN OWNED BY postgres TO app
deny	CREATE POLICY p ON users USING (true)
deny	ALTER TABLE users DISABLE ROW LEVEL SECURITY
deny	ALTER TABLE users DISABLE TRIGGER ALL
deny	SET ROLE app
deny	SET SESSION AUTHORIZATION app
deny	SET session_replication_role = replica
deny	SET default_transaction_read_only = off
deny	ALTER SYSTEM SET work_mem = '1GB'
deny	ALTER SYSTEM RESET ALL
deny	LOAD 'auto_explain'
deny	CREATE EXTENSION pg_trgm
deny	CREATE EXTENSION IF NOT EXISTS pgcrypto
deny	ALTER EXTENSION pgcrypto UPDATE
deny	CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'
deny	CREATE OR REPLACE FUNCTION wipe() RETURNS int LANGUAGE sql AS 'SELECT 2'
deny	CREATE TRIGGER t BEFORE DELETE ON users FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()
deny	CREATE RULE r AS ON DELETE TO audit DO INSTEAD NOTHING
deny	CREATE OR REPLACE RULE "_RETURN" AS ON SELECT TO big_orders DO INSTEAD SELECT * FROM orders
deny	CREATE TABLE t2 (id int DEFAULT nextval('counter'))
deny	CREATE TABLE t3 AS SELECT wipe()
deny	CREATE SCHEMA s2 CREATE TABLE x (id int) CREATE VIEW y AS SELECT 1
deny	CREATE CAST (text AS mood) WITH INOUT
deny	CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = int4eq)
deny	CREATE AGGREGATE my_sum(int) (SFUNC = int4pl, STYPE = int)
deny	CREATE TABLESPACE ts LOCATION '@DIR@'
deny	CREATE SERVER s FOREIGN DATA WRAPPER dblink_fdw
deny	ALTER FUNCTION wipe() SECURITY DEFINER
deny	CREATE PUBLICATION pub FOR ALL TABLES
deny	ALTER DATABASE gt SET search_path = evil
deny	PREPARE TRANSACTION 'held'
deny	COMMIT PREPARED 'nothing'
deny	SECURITY LABEL ON TABLE users IS 'x'
deny	IMPORT FOREIGN SCHEMA public FROM SERVER s INTO public
deny	CREATE EVENT TRIGGER et ON ddl_command_start EXECUTE FUNCTION suppress_redundant_updates_trigger()
deny	SELECT xmlelement(name x, 'y')
deny	SELECT `id` FROM users LIMIT 1, 2
deny	DELETE FROM
deny	SELECT 'unterminated
deny	DR/**/OP TABLE audit
