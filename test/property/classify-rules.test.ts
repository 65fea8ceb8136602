/**
 * The classification rules of issue 3, one table row per rule, including
 * bypass-style inputs: a statement is classified by what it does, not by its
 * first keyword.
 */
import { describe, expect, it, beforeAll } from "vitest"
import {
  ADMIN_FUNCTIONS,
  WRITE_FUNCTIONS,
  classifySql,
  classifyUncached,
  loadClassifier,
  makeClassifier,
  type ColumnRef,
  type PreparedRef,
  type RelationRef,
  type StatementClass,
  type StatementInfo,
} from "../../src/rules/classify/index.ts"
import { PG_FUNCTIONS } from "../../src/rules/classify/pg-functions.ts"
import { classifyStatement } from "../../src/rules/classify/statement.ts"
import { Walker } from "../../src/rules/classify/walker.ts"

const rel = (r: RelationRef): string => (r.schema === undefined ? r.name : `${r.schema}.${r.name}`)
const col = (c: ColumnRef): string => `${c.relation === undefined ? "?" : rel(c.relation)}.${c.column}`

interface Expect {
  readonly class: StatementClass
  readonly reads?: ReadonlyArray<string>
  readonly writes?: ReadonlyArray<string>
  readonly functions?: ReadonlyArray<string>
  readonly columnsRead?: ReadonlyArray<string>
  readonly columnsWritten?: ReadonlyArray<string>
  /** Each must be a substring of some reason. */
  readonly reasons?: ReadonlyArray<string>
  readonly locks?: boolean
  readonly prepared?: PreparedRef
  readonly text?: string
}

const statements = (sql: string): ReadonlyArray<StatementInfo> => {
  const r = classifySql(sql)
  if (r._tag !== "Classified") throw new Error(`${JSON.stringify(sql)} did not parse: ${r.message}`)
  return r.statements
}

const check = (s: StatementInfo, e: Expect): void => {
  expect(s.class).toBe(e.class)
  if (e.reads) expect(s.reads.map(rel)).toEqual(e.reads)
  if (e.writes) expect(s.writes.map(rel)).toEqual(e.writes)
  if (e.functions) expect(s.functions.map(rel)).toEqual(e.functions)
  if (e.columnsRead) expect(s.columnsRead.map(col)).toEqual(e.columnsRead)
  if (e.columnsWritten) expect(s.columnsWritten.map(col)).toEqual(e.columnsWritten)
  for (const r of e.reasons ?? []) expect(s.reasons.some((x) => x.includes(r)), `reason "${r}" in ${JSON.stringify(s.reasons)}`).toBe(true)
  if (e.locks !== undefined) expect(s.locks).toBe(e.locks)
  if (e.prepared !== undefined) expect(s.prepared).toEqual(e.prepared)
  if (e.text !== undefined) expect(s.text).toBe(e.text)
}

/** [sql, expected for each statement] */
type Row = readonly [string, ...ReadonlyArray<Expect>]

const table: Record<string, ReadonlyArray<Row>> = {
  "reads: SELECT, VALUES, TABLE, SHOW": [
    ["SELECT 1", { class: "read", reads: [], writes: [], functions: [] }],
    ["VALUES (1), (2)", { class: "read" }],
    ["TABLE t", { class: "read", reads: ["t"], columnsRead: ["t.*"] }],
    ["SHOW search_path", { class: "read" }],
    ["SHOW ALL", { class: "read" }],
    ["SELECT a, t.b FROM s.t", { class: "read", reads: ["s.t"], columnsRead: ["s.t.a", "s.t.b"] }],
    ["SELECT * FROM t WHERE id IN (SELECT id FROM u)", { class: "read", reads: ["t", "u"] }],
    ["SELECT x FROM (SELECT a AS x FROM t) sub", { class: "read", reads: ["t"], columnsRead: ["t.a", "?.x"] }],
    [
      "SELECT u.name, o.total FROM users u JOIN orders o ON o.user_id = u.id",
      { class: "read", reads: ["users", "orders"], columnsRead: ["orders.user_id", "users.id", "users.name", "orders.total"] },
    ],
    ["SELECT a FROM t, u", { class: "read", reads: ["t", "u"], columnsRead: ["?.a"] }],
    ["SELECT t.* FROM t", { class: "read", columnsRead: ["t.*"] }],
    ["SELECT lower('X'), now(), random(), count(*) FROM t", { class: "read", functions: ["lower", "now", "random", "count"] }],
    ["SELECT pg_catalog.lower('x')", { class: "read", functions: ["pg_catalog.lower"] }],
    ["SELECT * FROM t TABLESAMPLE system (10)", { class: "read", reads: ["t"] }],
    ["SELECT * FROM t WHERE a = ANY (SELECT b FROM u)", { class: "read", reads: ["t", "u"] }],
    ["SELECT 1 OPERATOR(pg_catalog.+) 2", { class: "read" }],
  ],
  "CTEs are not relations": [
    ["WITH c AS (SELECT * FROM t) SELECT * FROM c", { class: "read", reads: ["t"] }],
    ["WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a", { class: "read", reads: ["b"] }],
    ["WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT * FROM r", { class: "read", reads: [] }],
    ["WITH t AS (SELECT 1) SELECT * FROM public.t", { class: "read", reads: ["public.t"] }],
    ["WITH t AS (SELECT 1) SELECT * FROM (SELECT * FROM t) x", { class: "read", reads: [] }],
  ],
  "writes: INSERT, UPDATE, DELETE, MERGE": [
    ["INSERT INTO t (a, b) VALUES (1, 2)", { class: "write", writes: ["t"], reads: [], columnsWritten: ["t.a", "t.b"] }],
    ["INSERT INTO t SELECT * FROM s", { class: "write", writes: ["t"], reads: ["s"], columnsWritten: ["t.*"] }],
    ["INSERT INTO t (a) VALUES (1) RETURNING id", { class: "write", writes: ["t"], reads: ["t"], columnsRead: ["t.id"], reasons: ["RETURNING"] }],
    [
      "INSERT INTO t AS x (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET b = excluded.b WHERE x.c > 0",
      { class: "write", writes: ["t"], columnsWritten: ["t.a", "t.b"], columnsRead: ["?.b", "t.c"] },
    ],
    [
      "UPDATE t SET a = u.a FROM u WHERE t.id = u.id",
      { class: "write", writes: ["t"], reads: ["u"], columnsWritten: ["t.a"], columnsRead: ["u.a", "t.id", "u.id"] },
    ],
    ["UPDATE t SET (a, b) = (SELECT x, y FROM s)", { class: "write", writes: ["t"], reads: ["s"], columnsWritten: ["t.a", "t.b"] }],
    ["DELETE FROM t USING u WHERE t.id = u.id RETURNING t.*", { class: "write", writes: ["t"], reads: ["u", "t"] }],
    ["DELETE FROM ONLY s.t", { class: "write", writes: ["s.t"], reads: [] }],
    [
      "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a WHEN NOT MATCHED THEN INSERT (id, a) VALUES (s.id, s.a)",
      { class: "write", writes: ["t"], reads: ["s"], columnsWritten: ["t.a", "t.id"] },
    ],
    ["MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", { class: "write", writes: ["t"], reads: ["s"] }],
  ],
  "data-modifying CTEs are writes, nested too": [
    [
      "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
      { class: "write", writes: ["t"], reads: ["t"], reasons: ["data-modifying CTE (DELETE)"] },
    ],
    ["WITH i AS (INSERT INTO log VALUES (1) RETURNING id) SELECT * FROM t", { class: "write", writes: ["log"], reads: ["log", "t"] }],
    [
      "WITH a AS (WITH b AS (UPDATE t SET x = 1 RETURNING *) SELECT * FROM b) SELECT * FROM a",
      { class: "write", writes: ["t"], reasons: ["data-modifying CTE (UPDATE)"] },
    ],
    ["SELECT * FROM (WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d) x", { class: "write", writes: ["t"] }],
    ["SELECT * FROM u WHERE EXISTS (WITH d AS (DELETE FROM t RETURNING 1) SELECT 1 FROM d)", { class: "write", writes: ["t"] }],
    ["WITH m AS (MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE RETURNING t.*) SELECT 1", { class: "write", writes: ["t"] }],
  ],
  "SELECT INTO creates a table: write": [
    ["SELECT * INTO t2 FROM t", { class: "write", writes: ["t2"], reads: ["t"], reasons: ["SELECT INTO"] }],
    ["SELECT 1 INTO TEMP x", { class: "write", writes: ["x"] }],
  ],
  "row locks: write with locks": [
    ["SELECT * FROM t FOR UPDATE", { class: "write", locks: true, reads: ["t"], writes: [], reasons: ["FOR UPDATE"] }],
    ["SELECT * FROM t FOR NO KEY UPDATE", { class: "write", locks: true, reasons: ["FOR NO KEY UPDATE"] }],
    ["SELECT * FROM t FOR SHARE", { class: "write", locks: true, reasons: ["FOR SHARE"] }],
    ["SELECT * FROM t FOR KEY SHARE SKIP LOCKED", { class: "write", locks: true, reasons: ["FOR KEY SHARE"] }],
    ["SELECT * FROM t FOR UPDATE OF t NOWAIT", { class: "write", locks: true }],
    ["SELECT * FROM (SELECT * FROM t FOR UPDATE) x", { class: "write", locks: true }],
    ["SELECT * FROM t", { class: "read", locks: false }],
    ["LOCK t", { class: "write", locks: true, writes: ["t"], reasons: ["ACCESS EXCLUSIVE"] }],
    ["LOCK TABLE t IN ACCESS SHARE MODE", { class: "read", locks: true, reads: ["t"] }],
    ["LOCK t, s.u IN ROW EXCLUSIVE MODE", { class: "write", locks: true, writes: ["t", "s.u"] }],
    ["SELECT pg_advisory_lock(1)", { class: "read", locks: true, reasons: ["advisory lock"] }],
    ["SELECT pg_try_advisory_xact_lock(1), * FROM t", { class: "read", locks: true }],
  ],
  "TRUNCATE: write (it deletes every row)": [
    ["TRUNCATE t", { class: "write", writes: ["t"], reasons: ["TRUNCATE deletes every row"] }],
    ["TRUNCATE TABLE a, s.b CASCADE", { class: "write", writes: ["a", "s.b"], reasons: ["CASCADE"] }],
  ],
  "DDL": [
    ["CREATE TABLE t (id int PRIMARY KEY, x text DEFAULT 'a')", { class: "ddl", writes: ["t"] }],
    ["CREATE TABLE t (id int REFERENCES u (id))", { class: "ddl", writes: ["t"], reads: ["u"] }],
    ["ALTER TABLE t ADD COLUMN x int", { class: "ddl", writes: ["t"] }],
    ["ALTER TABLE s.t RENAME TO u", { class: "ddl", writes: ["s.t"] }],
    ["DROP TABLE s.t, u CASCADE", { class: "ddl", writes: ["s.t", "u"], reasons: ["CASCADE"] }],
    ["DROP FUNCTION f(int)", { class: "ddl", writes: [] }],
    ["CREATE INDEX i ON t (a)", { class: "ddl", writes: ["t"] }],
    ["CREATE VIEW v AS SELECT * FROM t", { class: "ddl", writes: ["v"], reads: ["t"] }],
    ["CREATE VIEW v AS SELECT my_udf() FROM t", { class: "ddl", functions: ["my_udf"] }],
    ["CREATE TABLE t2 AS SELECT * FROM t", { class: "ddl", writes: ["t2"], reads: ["t"] }],
    ["CREATE MATERIALIZED VIEW m AS SELECT * FROM t", { class: "ddl", writes: ["m"], reads: ["t"] }],
    ["CREATE TABLE t2 AS SELECT pg_terminate_backend(1)", { class: "admin" }],
    ["CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'DELETE FROM t RETURNING 1'", { class: "ddl" }],
    ["CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT my_udf(); END", { class: "ddl" }],
    ["CREATE SEQUENCE s", { class: "ddl", writes: ["s"] }],
    ["CREATE SCHEMA s CREATE TABLE t (id int)", { class: "ddl" }],
    ["COMMENT ON TABLE t IS 'x'", { class: "ddl" }],
    ["REINDEX TABLE t", { class: "ddl", writes: ["t"] }],
    ["CLUSTER t USING i", { class: "ddl", writes: ["t"] }],
    ["CREATE EXTENSION dblink", { class: "ddl" }],
    ["CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()", { class: "ddl", writes: ["t"] }],
    ["CREATE RULE r AS ON INSERT TO t DO INSTEAD DELETE FROM u", { class: "ddl", writes: ["t", "u"] }],
    ["CREATE TYPE mood AS ENUM ('a', 'b')", { class: "ddl" }],
    ["CREATE DATABASE d", { class: "ddl" }],
    ["REFRESH MATERIALIZED VIEW m", { class: "write", writes: ["m"], reasons: ["REFRESH"] }],
  ],
  "DCL, and who the session is": [
    ["GRANT SELECT ON t TO bob", { class: "dcl", writes: ["t"] }],
    ["REVOKE ALL ON s.t FROM bob", { class: "dcl", writes: ["s.t"] }],
    ["GRANT admin TO bob", { class: "dcl" }],
    ["CREATE ROLE r LOGIN", { class: "dcl" }],
    ["CREATE USER u", { class: "dcl" }],
    ["ALTER ROLE r SUPERUSER", { class: "dcl" }],
    ["ALTER ROLE r SET search_path = x", { class: "dcl" }],
    ["DROP ROLE r", { class: "dcl" }],
    ["ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO bob", { class: "dcl" }],
    ["ALTER TABLE t OWNER TO bob", { class: "ddl" }],
    ["ALTER FUNCTION f() OWNER TO bob", { class: "dcl" }],
    ["CREATE POLICY p ON t USING (owner = current_user)", { class: "dcl", writes: ["t"] }],
    ["SET ROLE admin", { class: "dcl", reasons: ["identity"] }],
    ["SET LOCAL ROLE admin", { class: "dcl" }],
    ["SET ROLE NONE", { class: "dcl" }],
    ["RESET ROLE", { class: "dcl" }],
    ["SET SESSION AUTHORIZATION bob", { class: "dcl" }],
    ["SET SESSION AUTHORIZATION DEFAULT", { class: "dcl" }],
    ["RESET SESSION AUTHORIZATION", { class: "dcl" }],
    ["SET role = 'admin'", { class: "dcl" }],
    ["SET role TO admin", { class: "dcl" }],
    ["set Role to admin", { class: "dcl" }],
    ["SET \"role\" = admin", { class: "dcl" }],
    ["SET session_authorization = 'bob'", { class: "dcl" }],
    ["RESET ALL", { class: "dcl", reasons: ["role"] }],
    ["DISCARD ALL", { class: "dcl", prepared: { kind: "deallocate", name: "" } }],
    ["CREATE USER MAPPING FOR bob SERVER s OPTIONS (password 'x')", { class: "dcl" }],
  ],
  "transaction control": [
    ["BEGIN", { class: "transaction" }],
    ["BEGIN ISOLATION LEVEL SERIALIZABLE", { class: "transaction" }],
    ["START TRANSACTION READ ONLY", { class: "transaction" }],
    ["COMMIT", { class: "transaction" }],
    ["END", { class: "transaction" }],
    ["COMMIT AND CHAIN", { class: "transaction" }],
    ["ROLLBACK", { class: "transaction" }],
    ["ABORT", { class: "transaction" }],
    ["SAVEPOINT a", { class: "transaction" }],
    ["RELEASE SAVEPOINT a", { class: "transaction" }],
    ["ROLLBACK TO SAVEPOINT a", { class: "transaction" }],
    ["PREPARE TRANSACTION 'x'", { class: "transaction" }],
    ["COMMIT PREPARED 'x'", { class: "transaction" }],
    ["ROLLBACK PREPARED 'x'", { class: "transaction" }],
    ["SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", { class: "transaction" }],
    ["SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", { class: "transaction" }],
    ["SET CONSTRAINTS ALL DEFERRED", { class: "transaction" }],
  ],
  "COPY": [
    ["COPY t FROM STDIN", { class: "copy-in", writes: ["t"], columnsWritten: ["t.*"] }],
    ["COPY t (a, b) FROM STDIN WITH (FORMAT csv)", { class: "copy-in", writes: ["t"], columnsWritten: ["t.a", "t.b"] }],
    ["COPY t FROM STDIN WHERE a > 0", { class: "copy-in", writes: ["t"] }],
    ["COPY t FROM STDIN WHERE my_udf(a)", { class: "unknown" }],
    ["COPY t TO STDOUT", { class: "copy-out", reads: ["t"], columnsRead: ["t.*"] }],
    ["COPY s.t (a) TO STDOUT (FORMAT binary)", { class: "copy-out", reads: ["s.t"], columnsRead: ["s.t.a"] }],
    ["COPY (SELECT a FROM t JOIN u USING (id)) TO STDOUT", { class: "copy-out", reads: ["t", "u"] }],
    ["COPY (DELETE FROM t RETURNING *) TO STDOUT", { class: "write", writes: ["t"], reasons: ["COPY (query) TO STDOUT runs a query that writes"] }],
    ["COPY (SELECT nextval('s')) TO STDOUT", { class: "write", writes: ["s"] }],
    ["COPY (SELECT * FROM t FOR UPDATE) TO STDOUT", { class: "write" }],
    ["COPY (SELECT pg_read_file('/etc/passwd')) TO STDOUT", { class: "admin" }],
    ["COPY (SELECT my_udf()) TO STDOUT", { class: "unknown" }],
    ["COPY t TO '/tmp/x'", { class: "admin", reads: ["t"], reasons: ["file on the server"] }],
    ["COPY t FROM '/etc/passwd'", { class: "admin", writes: ["t"] }],
    ["COPY t TO PROGRAM 'x'", { class: "admin", reasons: ["PROGRAM"] }],
    ["COPY t FROM PROGRAM 'curl http://x'", { class: "admin", reasons: ["PROGRAM"] }],
    ["COPY (SELECT 1) TO PROGRAM 'x'", { class: "admin" }],
  ],
  "functions": [
    ["SELECT pg_terminate_backend(1)", { class: "admin", functions: ["pg_terminate_backend"], reasons: ["calls pg_terminate_backend"] }],
    ["SELECT pg_catalog.pg_terminate_backend(1)", { class: "admin", functions: ["pg_catalog.pg_terminate_backend"] }],
    ["SELECT \"pg_terminate_backend\"(1)", { class: "admin" }],
    ["SELECT PG_TERMINATE_BACKEND(pid) FROM pg_stat_activity", { class: "admin", reads: ["pg_stat_activity"] }],
    ["SELECT * FROM t WHERE pg_cancel_backend(1)", { class: "admin" }],
    ["SELECT x.pg_terminate_backend(1)", { class: "admin" }],
    ["SELECT * FROM dblink('host=x', 'DELETE FROM t') AS r(x int)", { class: "admin", functions: ["dblink"] }],
    ["SELECT dblink_exec('DROP TABLE t')", { class: "admin" }],
    ["SELECT my_func(1)", { class: "unknown", functions: ["my_func"], reasons: ["calls user-defined function my_func"] }],
    ["SELECT * FROM t WHERE a = s.f(b)", { class: "unknown", reasons: ["calls user-defined function s.f"] }],
    ["SELECT public.lower('x')", { class: "unknown", reasons: ["calls user-defined function public.lower"] }],
    ["SELECT * FROM my_srf()", { class: "unknown" }],
    ["SELECT my_func(1), pg_terminate_backend(1)", { class: "admin" }],
    ["SELECT nextval('s')", { class: "write", writes: ["s"], reasons: ["nextval"] }],
    ["SELECT nextval('public.\"Seq\"')", { class: "write", writes: ["public.Seq"] }],
    ["SELECT nextval('S'::regclass)", { class: "write", writes: ["s"] }],
    ["SELECT setval('s', 1)", { class: "write", writes: ["s"] }],
    ["SELECT lo_unlink(1)", { class: "write" }],
    ["SELECT pg_notify('c', 'x')", { class: "write" }],
    ["SELECT query_to_xml('DELETE FROM t', true, true, '')", { class: "unknown", reasons: ["runs SQL given as text"] }],
    ["SELECT database_to_xml(true, true, '')", { class: "unknown" }],
    ["SELECT 1 ### 2", { class: "unknown", reasons: ["user-defined operator ###"] }],
    ["SELECT 1 OPERATOR(s.+) 2", { class: "unknown", reasons: ["user-defined operator s.+"] }],
    ["SELECT * FROM t ORDER BY a USING ~<~", { class: "read" }],
    ["SELECT * FROM t ORDER BY a USING ###", { class: "unknown" }],
    ["SELECT * FROM t TABLESAMPLE my_method (10)", { class: "unknown" }],
    ["INSERT INTO t VALUES (my_func())", { class: "unknown", writes: ["t"] }],
    ["UPDATE t SET a = pg_read_file('x')", { class: "admin" }],
  ],
  "DO, CALL, PREPARE, EXECUTE, DEALLOCATE": [
    ["DO $$ BEGIN EXECUTE 'DROP TABLE t'; END $$", { class: "unknown", reasons: ["DO runs procedural code"] }],
    ["DO LANGUAGE plpgsql $x$ BEGIN NULL; END $x$", { class: "unknown" }],
    ["CALL p(1)", { class: "unknown", functions: ["p"], reasons: ["CALL runs a procedure"] }],
    ["CALL p(pg_terminate_backend(1))", { class: "admin" }],
    ["PREPARE p AS DELETE FROM t", { class: "write", writes: ["t"], prepared: { kind: "prepare", name: "p" } }],
    ["PREPARE q (int) AS SELECT * FROM t WHERE id = $1", { class: "read", reads: ["t"], prepared: { kind: "prepare", name: "q" } }],
    ["PREPARE a AS SELECT pg_terminate_backend($1)", { class: "admin", prepared: { kind: "prepare", name: "a" } }],
    ["EXECUTE p", { class: "unknown", prepared: { kind: "execute", name: "p" }, reasons: ["EXECUTE p"] }],
    ["EXECUTE p(1, 'x')", { class: "unknown", prepared: { kind: "execute", name: "p" } }],
    ["EXECUTE p(pg_terminate_backend(1))", { class: "admin" }],
    ["DEALLOCATE p", { class: "utility", prepared: { kind: "deallocate", name: "p" } }],
    ["DEALLOCATE PREPARE p", { class: "utility", prepared: { kind: "deallocate", name: "p" } }],
    ["DEALLOCATE ALL", { class: "utility", prepared: { kind: "deallocate", name: "" } }],
  ],
  "EXPLAIN reads; EXPLAIN ANALYZE runs": [
    ["EXPLAIN SELECT * FROM t", { class: "read", reads: ["t"] }],
    ["EXPLAIN DELETE FROM t", { class: "read", writes: ["t"] }],
    ["EXPLAIN SELECT pg_terminate_backend(1)", { class: "read", functions: ["pg_terminate_backend"] }],
    ["EXPLAIN SELECT my_udf()", { class: "unknown" }],
    ["EXPLAIN ANALYZE DELETE FROM t", { class: "write", writes: ["t"], reasons: ["EXPLAIN ANALYZE runs the statement"] }],
    ["EXPLAIN ANALYZE SELECT pg_terminate_backend(1)", { class: "admin" }],
    ["EXPLAIN ANALYZE SELECT * FROM t", { class: "read" }],
    ["EXPLAIN (ANALYZE) DELETE FROM t", { class: "write" }],
    ["EXPLAIN (ANALYZE true, BUFFERS) DELETE FROM t", { class: "write" }],
    ["EXPLAIN (ANALYZE on) DELETE FROM t", { class: "write" }],
    ["EXPLAIN (ANALYZE 1) DELETE FROM t", { class: "write" }],
    ["EXPLAIN (ANALYZE 'yes') DELETE FROM t", { class: "write" }],
    ["EXPLAIN (ANALYZE false) DELETE FROM t", { class: "read" }],
    ["EXPLAIN (ANALYZE off) DELETE FROM t", { class: "read" }],
    ["EXPLAIN (ANALYZE 0) DELETE FROM t", { class: "read" }],
    ["EXPLAIN (ANALYZE 'no') DELETE FROM t", { class: "read" }],
    ["EXPLAIN ANALYZE EXECUTE p", { class: "unknown", prepared: { kind: "execute", name: "p" } }],
    ["EXPLAIN ANALYZE CREATE TABLE x AS SELECT 1", { class: "ddl" }],
    ["EXPLAIN ANALYZE WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", { class: "write" }],
  ],
  "cursors": [
    ["DECLARE c CURSOR FOR SELECT * FROM t", { class: "read", reads: ["t"] }],
    ["DECLARE c CURSOR WITH HOLD FOR SELECT * FROM t FOR UPDATE", { class: "write", locks: true }],
    ["DECLARE c CURSOR FOR SELECT pg_terminate_backend(1)", { class: "admin" }],
    ["FETCH 5 FROM c", { class: "read", reasons: ["cursor c"] }],
    ["MOVE NEXT IN c", { class: "read" }],
    ["CLOSE c", { class: "utility" }],
  ],
  "utility and admin": [
    ["LISTEN c", { class: "utility" }],
    ["NOTIFY c, 'x'", { class: "utility" }],
    ["UNLISTEN *", { class: "utility" }],
    ["DISCARD PLANS", { class: "utility" }],
    ["DISCARD TEMP", { class: "utility" }],
    ["SET work_mem = '64MB'", { class: "utility" }],
    ["SET statement_timeout TO 0", { class: "utility" }],
    ["SET LOCAL lock_timeout = '1s'", { class: "utility" }],
    ["SET search_path = evil, public", { class: "utility", reasons: ["search_path"] }],
    ["RESET search_path", { class: "utility" }],
    ["SET TIME ZONE 'UTC'", { class: "utility" }],
    ["SET standard_conforming_strings = on", { class: "utility" }],
    ["SET standard_conforming_strings = off", { class: "admin", reasons: ["reads SQL text"] }],
    ["SET standard_conforming_strings TO 0", { class: "admin" }],
    ["RESET standard_conforming_strings", { class: "admin" }],
    ["SET client_encoding = 'UTF8'", { class: "utility" }],
    ["SET client_encoding TO 'utf-8'", { class: "utility" }],
    ["SET client_encoding = 'SJIS'", { class: "admin" }],
    ["SET NAMES 'LATIN1'", { class: "admin" }],
    ["SET session_replication_role = replica", { class: "admin", reasons: ["privileged"] }],
    ["SET log_statement = 'none'", { class: "admin" }],
    ["VACUUM t", { class: "utility", reads: ["t"] }],
    ["VACUUM (FULL, ANALYZE) t (a)", { class: "utility", reads: ["t"], columnsRead: ["t.a"] }],
    ["ANALYZE t", { class: "utility" }],
    ["LOAD 'auto_explain'", { class: "admin", reasons: ["shared library"] }],
    ["CHECKPOINT", { class: "admin" }],
    ["ALTER SYSTEM SET work_mem = '1GB'", { class: "admin", reasons: ["ALTER SYSTEM"] }],
    ["ALTER SYSTEM RESET ALL", { class: "admin" }],
    ["CREATE TABLESPACE ts LOCATION '/tmp/ts'", { class: "admin" }],
    ["CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p", { class: "admin" }],
  ],
  "bypass-style inputs": [
    ["SeLeCt * FrOm PUBLIC.T", { class: "read", reads: ["public.t"] }],
    ["SELECT * FROM \"Users\"", { class: "read", reads: ["Users"] }],
    ["SELECT * FROM users", { class: "read", reads: ["users"] }],
    ["SELECT * FROM \"s\".\"T\"", { class: "read", reads: ["s.T"] }],
    ["SELECT U&\"d\\0061t\\+000061\" FROM U&\"d\\0061t\"", { class: "read", reads: ["dat"], columnsRead: ["dat.data"] }],
    ["SELECT * FROM U&\"d!0061t\" UESCAPE '!'", { class: "read", reads: ["dat"] }],
    ["DELETE FROM U&\"\\0074\"", { class: "write", writes: ["t"] }],
    ["/* DELETE FROM t */ SELECT 1", { class: "read", writes: [] }],
    ["SELECT 1 -- ; DELETE FROM t", { class: "read", writes: [] }],
    ["SELECT /* nested /* ; DELETE FROM t; */ still a comment */ 1", { class: "read", writes: [] }],
    ["SELECT 'x; DELETE FROM t'", { class: "read" }],
    ["SELECT E'\\'; DELETE FROM t; --'", { class: "read" }],
    ["SELECT $tag$ ; DELETE FROM t; $tag$", { class: "read" }],
    ["SELECT $a$ $b$ ; DELETE FROM t; $b$ $a$", { class: "read" }],
    ["SELECT $$ $a$ ; $$", { class: "read" }],
    ["SELECT 1; DELETE FROM t", { class: "read", text: "SELECT 1" }, { class: "write", writes: ["t"], text: "DELETE FROM t" }],
    ["SELECT 1;;; DeLeTe FrOm t;", { class: "read" }, { class: "write", writes: ["t"] }],
    ["select 1; copy t to program 'x'", { class: "read" }, { class: "admin" }],
    ["SELECT 1; SET ROLE admin; SELECT 2", { class: "read" }, { class: "dcl" }, { class: "read" }],
    // standard_conforming_strings is on: the backslash is ordinary, so the DELETE is real (as on the server)
    ["SELECT 'a\\'; DELETE FROM t; --'", { class: "read" }, { class: "write", writes: ["t"] }],
    ["SELECT 'é'; DELETE FROM t", { class: "read", text: "SELECT 'é'" }, { class: "write", text: "DELETE FROM t" }],
    ["SELECT '𝄞' AS x;DELETE FROM \"𝄞\"", { class: "read", text: "SELECT '𝄞' AS x" }, { class: "write", writes: ["𝄞"] }],
    ["  /* lead */ SELECT 1 ; -- mid\n DELETE FROM t -- tail", { class: "read", text: "SELECT 1 " }, { class: "write", text: "DELETE FROM t -- tail" }],
  ],
}

describe("before loadClassifier", () => {
  it("classify throws a clear error", () => {
    expect(() => makeClassifier({ cacheSize: 1 }).classify("SELECT 1")).toThrow(/loadClassifier/)
  })
})

describe("classification rules", () => {
  beforeAll(async () => {
    await loadClassifier()
  })

  for (const [group, rows] of Object.entries(table)) {
    describe(group, () => {
      for (const [sql, ...expected] of rows) {
        it(sql, () => {
          const got = statements(sql)
          expect(got.length).toBe(expected.length)
          expected.forEach((e, i) => {
            const s = got[i]
            if (s === undefined) throw new Error("missing statement")
            check(s, e)
          })
          // the cache never changes the answer
          expect(classifyUncached(sql)).toEqual(classifySql(sql))
        })
      }
    })
  }

  it("every listed admin function makes a statement admin, in any schema", () => {
    for (const name of ADMIN_FUNCTIONS) {
      expect(statements(`SELECT "${name}"()`)[0]?.class, name).toBe("admin")
      expect(statements(`SELECT pg_catalog."${name}"(1)`)[0]?.class, name).toBe("admin")
      expect(statements(`SELECT public."${name}"(1)`)[0]?.class, name).toBe("admin")
    }
  })

  it("every listed writing built-in makes a read a write", () => {
    for (const name of WRITE_FUNCTIONS.keys()) {
      const expected = PG_FUNCTIONS.has(name) ? "write" : "unknown" // newer than the table's server: fail closed
      expect(statements(`SELECT "${name}"(1) FROM t`)[0]?.class, name).toBe(expected)
    }
  })

  it("a pg_catalog function missing from the built-in table is unknown", () => {
    const s = statements("SELECT pg_catalog.no_such_function()")[0]
    expect(s?.class).toBe("unknown")
    expect(s?.reasons.join()).toMatch(/not in the built-in function table/)
  })

  it("a statement the walker does not know is unknown (fail closed)", () => {
    const w = new Walker()
    expect(classifyStatement({ SomeFutureStmt: {} }, w).cls).toBe("unknown")
    expect(classifyStatement({ ReturnStmt: { returnval: {} } }, new Walker()).cls).toBe("unknown")
    expect(classifyStatement("garbage", new Walker()).cls).toBe("unknown")
  })

  it("comments inside keywords do not parse (no keyword is glued back together)", () => {
    for (const sql of ["SEL/**/ECT 1", "DEL/**/ETE FROM t", "DELETE/**/FROM t WHERE 1=1", "SELECT 1 UNI/**/ON SELECT 2"]) {
      const r = classifySql(sql)
      if (sql.startsWith("DELETE/**/")) {
        // a comment is whitespace: this one is a real DELETE
        expect(r._tag === "Classified" && r.statements[0]?.class).toBe("write")
      } else expect(r._tag, sql).toBe("Unparseable")
    }
  })

  it("empty, whitespace-only and comment-only text is zero statements", () => {
    for (const sql of ["", "   ", "\n\t\v\f\r", "-- nothing", "/* nothing */", ";", " ; ; "]) {
      expect(classifySql(sql), JSON.stringify(sql)).toEqual({ _tag: "Classified", statements: [] })
    }
  })

  it("syntax errors are Unparseable with a cursor in characters", () => {
    for (const prefix of ["SELECT 'e' FROM ", "SELECT 'é' FROM ", "SELECT '𝄞' FROM "]) {
      const r = classifySql(`${prefix}WHERE`)
      expect(r._tag).toBe("Unparseable")
      if (r._tag === "Unparseable") {
        expect(r.message).toMatch(/syntax error/)
        expect(r.cursor).toBe(prefix.length)
      }
    }
  })

  it("NUL characters and lone surrogates are Unparseable", () => {
    expect(classifySql("SELECT 1\u0000; DELETE FROM t")._tag).toBe("Unparseable")
    expect(classifySql("SELECT '\ud800'")._tag).toBe("Unparseable")
  })

  it("a comment inside a string continuation: the server joins the literals, libpg-query does not (fails closed)", () => {
    // PostgreSQL reads 'a' -- c<newline>'b' as 'ab'; libpg-query's scanner reports a syntax error.
    expect(classifySql("SELECT 'a' -- c\n'b'")._tag).toBe("Unparseable")
    expect(classifySql("SELECT 'a'\n'b'")._tag).toBe("Classified")
  })

  it("statement fingerprints ignore literals, case, comments and whitespace", () => {
    const a = statements("SELECT * FROM t WHERE a = 1 AND b = 'x'")[0]
    const b = statements("select *   from T /* c */ where A = 42 and B = $$y$$")[0]
    const c = statements("SELECT * FROM t WHERE a = 1 AND b = 2")[0]
    expect(a?.fingerprint).toBe(b?.fingerprint)
    expect(a?.fingerprint).not.toBe(c?.fingerprint)
    expect(a?.fingerprint).toMatch(/^[0-9a-f]{16}$/)
  })
})
