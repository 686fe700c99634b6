// Package groundtruth judges the SQL classifier against real execution: every statement of
// testdata/postgres.sql and testdata/mysql.sql runs against a real PostgreSQL and a real
// MariaDB (started by the tests), and what it changed is compared with what the classifier
// and the embedded default policy said about it.
package groundtruth
