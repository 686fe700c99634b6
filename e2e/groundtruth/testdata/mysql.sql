# MySQL/MariaDB ground-truth corpus: expect<TAB>sql[<TAB>note]; see corpus_test.go.
# @DIR@ is a server-side directory, @SECRET@ a file in it no statement may read, @VICTIM@ another session's id.
read	SELECT 1
read	SELECT id, email FROM users WHERE id = 1
read	SELECT * FROM users ORDER BY id LIMIT 3
read	SELECT COUNT(*) FROM orders
read	SELECT u.id, u.name, COUNT(o.id) FROM users u LEFT JOIN orders o ON o.user_id = u.id GROUP BY u.id, u.name ORDER BY 3 DESC
read	SELECT user_id, SUM(total) AS spent FROM orders GROUP BY user_id HAVING SUM(total) > 50
read	SELECT DISTINCT user_id FROM orders
read	WITH big AS (SELECT * FROM orders WHERE total > 100) SELECT COUNT(*) FROM big
read	WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT SUM(i) FROM n
read	SELECT id, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY total DESC) FROM orders
read	SELECT id, RANK() OVER (ORDER BY total), DENSE_RANK() OVER (ORDER BY total) FROM orders
read	SELECT id, LAG(total) OVER (ORDER BY id), LEAD(total) OVER (ORDER BY id) FROM orders
read	SELECT id, SUM(total) OVER (ORDER BY id ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM orders
read	SELECT NOW()
read	SELECT NOW(), CURDATE(), CURRENT_TIMESTAMP, CURTIME()
read	SELECT LOWER(email), UPPER(name) FROM users
read	SELECT COALESCE(mood, 'none') FROM users
read	SELECT IFNULL(name, ''), IF(admin, 'yes', 'no') FROM users
read	SELECT CAST(total AS SIGNED), CAST(id AS CHAR) FROM orders
read	SELECT CONVERT(total, CHAR) FROM orders
read	SELECT DATE(created_at), COUNT(*) FROM orders GROUP BY 1
read	SELECT EXTRACT(YEAR FROM created_at) FROM orders
read	SELECT DATE_FORMAT(created_at, '%Y-%m-%d') FROM orders
read	SELECT DATE_ADD(created_at, INTERVAL 1 DAY) FROM orders
read	SELECT created_at + INTERVAL 1 DAY FROM orders
read	SELECT DATEDIFF(NOW(), created_at) FROM orders LIMIT 1
read	SELECT TIMESTAMPDIFF(DAY, created_at, NOW()) FROM orders LIMIT 1
read	SELECT UNIX_TIMESTAMP(created_at) FROM orders LIMIT 1
read	SELECT CASE WHEN total > 100 THEN 'big' ELSE 'small' END FROM orders
read	SELECT SUM(CASE WHEN total > 100 THEN 1 ELSE 0 END) FROM orders
read	SELECT user_id, GROUP_CONCAT(id ORDER BY id) FROM orders GROUP BY user_id
read	SELECT JSON_OBJECT('id', id, 'email', email) FROM users
read	SELECT JSON_ARRAYAGG(id) FROM users
read	SELECT JSON_EXTRACT('{"a": 1}', '$.a')
read	SELECT JSON_UNQUOTE(JSON_EXTRACT('{"a": "x"}', '$.a'))
read	SELECT * FROM users WHERE email LIKE '%@example.com'
read	SELECT * FROM users WHERE email REGEXP '^b'
read	SELECT * FROM orders WHERE total BETWEEN 50 AND 150
read	SELECT * FROM orders WHERE user_id IN (1, 2, 3)
read	SELECT * FROM users WHERE mood IS NULL
read	SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id AND o.total > 200)
read	SELECT * FROM users WHERE id NOT IN (SELECT user_id FROM orders WHERE total > 200)
read	SELECT (SELECT MAX(total) FROM orders) AS top
read	SELECT * FROM users u JOIN orders o ON o.user_id = u.id WHERE o.total > 100
read	SELECT * FROM users u RIGHT JOIN orders o ON o.user_id = u.id
read	SELECT * FROM users u STRAIGHT_JOIN orders o ON o.user_id = u.id
read	SELECT id FROM users UNION SELECT user_id FROM orders
read	SELECT id FROM users UNION ALL SELECT user_id FROM orders
read	SELECT GREATEST(1, 2, 3), LEAST(4, 5), NULLIF(1, 1)
read	SELECT ROUND(AVG(total), 2), MIN(total), MAX(total), STDDEV(total) FROM orders
read	SELECT SUBSTRING_INDEX(email, '@', -1), COUNT(*) FROM users GROUP BY 1
read	SELECT REPLACE(email, '@', ' at ') FROM users
read	SELECT LEFT(name, 1), RIGHT(name, 1), LENGTH(name), CHAR_LENGTH(name) FROM users
read	SELECT SUBSTRING(email, 1, 3), LOCATE('@', email), INSTR(email, '@') FROM users
read	SELECT TRIM('  x  '), LTRIM(' x'), RTRIM('x ')
read	SELECT CONCAT(name, ' <', email, '>'), CONCAT_WS(',', id, name) FROM users
read	SELECT MD5(email), SHA2(email, 256) FROM users
read	SELECT UUID() IS NOT NULL
read	SELECT RAND() < 2
read	SELECT ABS(-1), CEIL(1.2), FLOOR(1.8), SQRT(4), POW(2, 10), MOD(7, 3)
read	SELECT HEX(id), LPAD(id, 5, '0') FROM users
read	SELECT id FROM users ORDER BY id DESC LIMIT 2 OFFSET 1
read	SELECT id FROM users LIMIT 1, 2
read	SELECT SQL_CALC_FOUND_ROWS id FROM users LIMIT 1
read	SELECT * FROM big_orders
read	SELECT table_name FROM information_schema.tables WHERE table_schema = 'gt' ORDER BY 1
read	SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'users' ORDER BY ordinal_position
read	SELECT table_name, table_rows FROM information_schema.tables WHERE table_schema = DATABASE()
read	SELECT VERSION(), DATABASE(), CURRENT_USER()
read	SELECT @@version, @@sql_mode
read	SELECT @@session.time_zone
read	SELECT `id`, `email` FROM `users` WHERE `id` = 1
read	SELECT id FROM gt.users WHERE id = 1
read	SELECT 1; SELECT 2
read	SELECT 'DROP TABLE users; DELETE FROM audit' AS s
read	/* DROP TABLE users */ SELECT 1
read	-- a comment\nSELECT 1
read	# hash comment\nSELECT 1
read	SELECT e.id FROM users e WHERE e.id = 3
read	SELECT id FROM users WHERE admin = FALSE AND email IS NOT NULL
read	SELECT COUNT(DISTINCT user_id) FROM orders
read	SELECT user_id, MAX(total) FROM orders GROUP BY user_id WITH ROLLUP
read	SELECT * FROM users FORCE INDEX (PRIMARY) WHERE id = 1
read	SELECT * FROM users LOCK IN SHARE MODE
read	SHOW TABLES
read	SHOW FULL TABLES
read	SHOW DATABASES
read	SHOW COLUMNS FROM users
read	SHOW INDEX FROM orders
read	SHOW CREATE TABLE users
read	SHOW VARIABLES LIKE 'version%'
read	SHOW STATUS LIKE 'Uptime'
read	SHOW PROCESSLIST
read	SHOW GRANTS
read	SHOW WARNINGS
read	SHOW TABLE STATUS
read	DESCRIBE users
read	DESC orders
read	EXPLAIN SELECT * FROM users WHERE id = 1
read	EXPLAIN DELETE FROM audit
read	EXPLAIN FORMAT=JSON SELECT * FROM orders WHERE user_id = 2
read	SELECT 1 FROM DUAL
read	SELECT id FROM users WHERE id = ?
read	SELECT $$x$$
allow	INSERT INTO users (email, name) VALUES ('new@example.com', 'New')
allow	INSERT INTO audit (msg) SELECT CONCAT('copy of ', msg) FROM audit
allow	INSERT INTO orders (user_id, total) VALUES (1, 9.99), (2, 19.99)
allow	INSERT INTO users (id, email) VALUES (1, 'ann@example.com') ON DUPLICATE KEY UPDATE email = VALUES(email)
allow	INSERT IGNORE INTO users (id, email) VALUES (1, 'x')
allow	INSERT INTO audit SET msg = 'set form'
allow	REPLACE INTO audit (id, msg) VALUES (1, 'replaced')
allow	UPDATE users SET name = 'Annie' WHERE id = 1
allow	UPDATE users SET email = LOWER(email) WHERE id = 2
allow	UPDATE orders SET total = total * 1.1 WHERE user_id = 2
allow	UPDATE orders SET note = 'late' WHERE created_at < NOW() AND user_id = 3
allow	UPDATE users SET admin = NOT admin WHERE email = 'bob@example.com'
allow	UPDATE users SET mood = 'sad' WHERE id IN (1, 2)
allow	UPDATE users SET name = UPPER(name) WHERE name LIKE 'A%'
allow	UPDATE orders SET total = 0 WHERE id = 1 LIMIT 1
allow	DELETE FROM audit WHERE id = 1
allow	DELETE FROM orders WHERE id IN (1, 2)
allow	DELETE FROM audit WHERE msg = 'a'
allow	DELETE FROM orders WHERE user_id = 2 ORDER BY id LIMIT 1
allow	DELETE FROM orders WHERE total > 200
allow	SELECT * FROM users WHERE id = 1 FOR UPDATE
allow	LOCK TABLES audit READ
allow	UNLOCK TABLES
allow	CREATE TABLE notes (id INT AUTO_INCREMENT PRIMARY KEY, body TEXT NOT NULL, created_at DATETIME DEFAULT CURRENT_TIMESTAMP)
allow	CREATE TABLE IF NOT EXISTS tags (name VARCHAR(50) PRIMARY KEY)
allow	CREATE TEMPORARY TABLE scratch AS SELECT * FROM users
allow	CREATE TABLE user_copy AS SELECT id, email FROM users
allow	CREATE TABLE users_like LIKE users
allow	CREATE INDEX orders_user ON orders (user_id)
allow	CREATE UNIQUE INDEX users_email ON users (email)
allow	CREATE VIEW active_users AS SELECT * FROM users WHERE NOT admin
allow	CREATE OR REPLACE VIEW big_orders AS SELECT * FROM orders WHERE total > 200
allow	ALTER TABLE users ADD COLUMN phone VARCHAR(20)
allow	ALTER TABLE users ALTER COLUMN name SET DEFAULT 'anon'
allow	ALTER TABLE users ADD INDEX (name)
allow	ALTER TABLE users RENAME COLUMN name TO full_name
allow	ALTER TABLE audit RENAME TO audit_log
allow	RENAME TABLE audit TO audit_old
allow	ALTER TABLE users COMMENT = 'people'
allow	CREATE DATABASE staging
allow	SET SESSION sql_select_limit = 100
allow	SET time_zone = '+00:00'
allow	SET NAMES utf8mb4
allow	SET @x = 1
allow	SET autocommit = 1
allow	SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED
allow	BEGIN
allow	START TRANSACTION
allow	COMMIT
allow	ROLLBACK
allow	SAVEPOINT a
allow	USE gt
allow	ANALYZE TABLE orders
destroy	DELETE FROM audit WHERE 2 > 1
destroy	DELETE FROM audit WHERE NOT false
destroy	DELETE FROM audit WHERE 1 IN (1)
destroy	DELETE FROM audit WHERE (SELECT 1)
destroy	DELETE FROM audit WHERE true
destroy	DELETE FROM audit WHERE 1 = 1
destroy	DELETE FROM audit WHERE 'a' = 'a'
destroy	DELETE FROM audit WHERE (SELECT COUNT(*) FROM orders) > 0
destroy	DELETE FROM audit WHERE NOW() > '2000-01-01'
destroy	DELETE FROM audit WHERE EXISTS (SELECT 1 FROM orders)
destroy	DELETE FROM audit WHERE id = id
destroy	DELETE FROM audit WHERE id > 0 OR 1 = 1
destroy	DELETE FROM audit WHERE msg IS NOT NULL OR true
destroy	DELETE FROM audit WHERE 2 > 1 AND 3 > 2
destroy	DELETE FROM audit WHERE NOT (1 = 2)
destroy	DELETE FROM audit WHERE 1 BETWEEN 0 AND 2
destroy	DELETE FROM audit WHERE 'x' LIKE '%'
destroy	DELETE FROM audit WHERE COALESCE(NULL, 1)
destroy	DELETE FROM audit WHERE CURRENT_USER() = CURRENT_USER()
destroy	DELETE FROM audit WHERE 1 <> 2
destroy	DELETE FROM audit WHERE true IS TRUE
destroy	DELETE FROM audit WHERE LENGTH('a') = 1
destroy	DELETE FROM audit WHERE (SELECT 1) = 1
destroy	DELETE FROM audit WHERE NULL IS NULL
destroy	DELETE FROM audit WHERE id = id OR false
destroy	DELETE FROM audit WHERE '1' = 1
destroy	DELETE FROM audit WHERE RAND() >= 0
destroy	DELETE FROM audit WHERE PI() > 3
destroy	DELETE FROM audit WHERE id >= id
destroy	DELETE FROM audit WHERE 1
destroy	DELETE FROM audit WHERE 'a'	by-kind: 'a' is false in MySQL, so nothing is deleted
destroy	DELETE FROM audit WHERE 1 IN (SELECT 1)
destroy	DELETE FROM audit WHERE NOT NOT true
destroy	DELETE FROM audit WHERE audit.id = audit.id
destroy	DELETE FROM audit WHERE id <=> id
destroy	DELETE FROM audit WHERE 1 XOR 0
destroy	DELETE FROM audit WHERE id = 1 XOR 1
destroy	UPDATE users SET name = 'x' WHERE 2 > 1
destroy	UPDATE users SET name = 'x' WHERE NOT false
destroy	UPDATE users SET name = 'x' WHERE 1 IN (1)
destroy	UPDATE users SET name = 'x' WHERE (SELECT 1)
destroy	UPDATE users SET name = 'x' WHERE true
destroy	UPDATE users SET name = 'x' WHERE 1 = 1
destroy	UPDATE users SET name = 'x' WHERE 'a' = 'a'
destroy	UPDATE users SET name = 'x' WHERE (SELECT COUNT(*) FROM orders) > 0
destroy	UPDATE users SET name = 'x' WHERE NOW() > '2000-01-01'
destroy	UPDATE users SET name = 'x' WHERE EXISTS (SELECT 1 FROM orders)
destroy	UPDATE users SET name = 'x' WHERE id = id
destroy	UPDATE users SET name = 'x' WHERE id > 0 OR 1 = 1
destroy	UPDATE users SET name = 'x' WHERE name IS NOT NULL OR true
destroy	UPDATE users SET name = 'x' WHERE 2 > 1 AND 3 > 2
destroy	UPDATE users SET name = 'x' WHERE NOT (1 = 2)
destroy	UPDATE users SET name = 'x' WHERE 1 BETWEEN 0 AND 2
destroy	UPDATE users SET name = 'x' WHERE 'x' LIKE '%'
destroy	UPDATE users SET name = 'x' WHERE COALESCE(NULL, 1)
destroy	UPDATE users SET name = 'x' WHERE CURRENT_USER() = CURRENT_USER()
destroy	UPDATE users SET name = 'x' WHERE 1 <> 2
destroy	UPDATE users SET name = 'x' WHERE true IS TRUE
destroy	UPDATE users SET name = 'x' WHERE LENGTH('a') = 1
destroy	UPDATE users SET name = 'x' WHERE (SELECT 1) = 1
destroy	UPDATE users SET name = 'x' WHERE NULL IS NULL
destroy	DELETE FROM audit
destroy	UPDATE users SET admin = 1
destroy	DELETE FROM `audit`
destroy	dElEtE fRoM audit
destroy	DELETE FROM gt.audit WHERE 1=1
destroy	DELETE a FROM audit a JOIN orders o ON o.id = a.id
destroy	DELETE FROM audit LIMIT 2
destroy	DELETE audit FROM audit, orders WHERE orders.id > 0
destroy	UPDATE users u JOIN orders o ON o.user_id = u.id SET u.admin = 1 WHERE o.total > 0
destroy	UPDATE users SET admin = 1 WHERE id = 5 OR true
destroy	SELECT 1; DELETE FROM audit
destroy	SELECT * FROM users WHERE id = '1'; DELETE FROM audit; -- '
destroy	/*!50000 DELETE FROM audit */
destroy	/*!DELETE FROM audit*/
destroy	EXPLAIN ANALYZE DELETE FROM audit
destroy	WITH x AS (SELECT 1) DELETE FROM audit
destroy	DROP TABLE audit
destroy	DROP TABLE IF EXISTS no_such_table	by-kind: no such object
destroy	DROP/**/TABLE audit
destroy	DROP TABLE audit, orders
destroy	DROP TEMPORARY TABLE IF EXISTS no_such_table	by-kind: no such object
destroy	DROP VIEW big_orders
destroy	DROP DATABASE scratch
destroy	DROP DATABASE IF EXISTS no_such_db	by-kind: no such object
destroy	DROP SCHEMA scratch
destroy	DROP PROCEDURE clear_audit
deny	DROP FUNCTION wipe
destroy	DROP INDEX `PRIMARY` ON audit
destroy	TRUNCATE audit
destroy	TRUNCATE TABLE audit
destroy	ALTER TABLE users DROP COLUMN name
destroy	ALTER TABLE users DROP name
destroy	ALTER TABLE orders MODIFY total INT
destroy	ALTER TABLE users MODIFY name VARCHAR(1)
destroy	ALTER TABLE users CHANGE name name2 VARCHAR(2)
destroy	ALTER TABLE orders DROP FOREIGN KEY orders_ibfk_1
destroy	ALTER TABLE audit DROP PRIMARY KEY, ADD KEY (id)
destroy	SELECT 1; DROP TABLE audit
deny	CALL clear_audit()
deny	PREPARE s FROM 'DELETE FROM audit'; EXECUTE s
deny	SET @q = 'DROP TABLE audit'; PREPARE s FROM @q; EXECUTE s
deny	SELECT wipe()
deny	SELECT gt.wipe()
deny	SELECT add2(1, 2)
deny	SELECT id FROM users WHERE wipe() = 1
deny	SELECT NEXTVAL(counter)
deny	SELECT NEXT VALUE FOR counter
deny	SELECT SETVAL(counter, 100)
deny	SELECT LASTVAL(counter)
deny	SELECT LOAD_FILE('@SECRET@')
deny	SELECT * FROM users INTO OUTFILE '@DIR@/users.csv'
deny	SELECT email FROM users LIMIT 1 INTO DUMPFILE '@DIR@/dump.bin'
deny	SELECT 'x' INTO OUTFILE '@DIR@/x.txt'
deny	SELECT id INTO @v FROM users LIMIT 1
deny	SELECT @v := 1
deny	SELECT GET_LOCK('x', 0)
deny	SELECT RELEASE_LOCK('x')
deny	SELECT IS_FREE_LOCK('x')
deny	SELECT SLEEP(0)
deny	SELECT BENCHMARK(10, MD5('x'))
deny	SELECT LAST_INSERT_ID(42)
deny	SELECT MASTER_POS_WAIT('x', 1)
deny	SELECT sys_exec('id')
deny	LOAD DATA INFILE '@SECRET@' INTO TABLE audit (msg)
deny	LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE audit
deny	KILL @VICTIM@
deny	KILL QUERY @VICTIM@
deny	GRANT ALL ON *.* TO 'app'@'localhost'
deny	GRANT SELECT ON gt.* TO 'reader'@'localhost'
deny	REVOKE SELECT ON gt.users FROM 'reader'@'localhost'
deny	CREATE USER 'mallory'@'%' IDENTIFIED BY 'x'
deny	DROP USER 'reader'@'localhost'
deny	ALTER USER 'app'@'localhost' IDENTIFIED BY 'x'
deny	RENAME USER 'app'@'localhost' TO 'app2'@'localhost'
deny	SET PASSWORD FOR 'app'@'localhost' = PASSWORD('x')
deny	CREATE ROLE analyst
deny	GRANT analyst TO 'app'@'localhost'
deny	SET GLOBAL max_connections = 5
deny	SET @@global.max_connections = 5
deny	SET GLOBAL read_only = 1
deny	SET foreign_key_checks = 0
deny	SET sql_log_bin = 0
deny	SET sql_mode = ''
deny	SET sql_safe_updates = 0
deny	CREATE PROCEDURE p() DELETE FROM audit
deny	CREATE FUNCTION f() RETURNS INT RETURN 1
deny	CREATE TRIGGER t BEFORE DELETE ON users FOR EACH ROW SET @x = 1
deny	CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM audit
deny	ALTER EVENT e DISABLE
deny	CREATE DEFINER = 'root'@'localhost' VIEW v2 AS SELECT wipe()
deny	CREATE SEQUENCE s2
deny	ALTER SEQUENCE counter RESTART WITH 5
deny	DO SLEEP(0)
deny	DO wipe()
deny	HANDLER audit OPEN
deny	FLUSH PRIVILEGES
deny	FLUSH TABLES
deny	OPTIMIZE TABLE audit
deny	REPAIR TABLE audit
deny	CHECK TABLE audit
deny	CHECKSUM TABLE audit
deny	INSTALL SONAME 'ha_blackhole'
deny	UNINSTALL SONAME 'ha_blackhole'
deny	RESET MASTER
deny	PURGE BINARY LOGS BEFORE NOW()
deny	XA START 'x'
deny	SELECT * FROM users WHERE name ILIKE 'a%'
deny	SELECT 'unterminated
deny	DR/**/OP TABLE audit
deny	DELETE FROM
