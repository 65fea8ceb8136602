/**
 * The bypass corpus, as data: each case is one session through Sluice (optionally with
 * startup parameters, and superuser setup before it), a list of simple-protocol Query
 * messages with what each must get back, and the change to the server's state the case
 * is allowed to make — by default none. The runner (pg-bypass-corpus.test.ts) checks the
 * server's state directly as the superuser before and after, checks that no secret row
 * ever reached the client, and that the session is still usable afterwards.
 *
 * Cases that need frames other than Query (extended protocol, portals, function calls,
 * pipelining, other client encodings) are written out in the test file itself.
 *
 * Placeholders filled in at run time: {victim} (the pid of a live backend of the same
 * role), {file:program}, {file:copyTo}, {file:loExport} (paths that must never exist).
 */
import { ROLE, S, SECRET, type ServerState, VICTIM } from "./fixture.ts"
import { MAX_STATEMENT_BYTES } from "./policies.ts"

export type Area =
  | "comments"
  | "case"
  | "quoted identifiers"
  | "search_path"
  | "multi-statement"
  | "data-modifying CTE"
  | "functions"
  | "DO / dynamic SQL"
  | "SQL prepared statements"
  | "COPY"
  | "EXPLAIN ANALYZE"
  | "unicode escapes"
  | "dollar quoting"
  | "long statements"
  | "dcl / admin"
  | "row locks"
  | "transactions"
  | "vacuous relations"

export interface Step {
  readonly sql: string
  /** `blocked`: Sluice's 42501. `ok`: no error. Otherwise the SQLSTATE the server must raise. */
  readonly expect: "blocked" | "ok" | (string & {})
  /** For `blocked`: the rule that must have decided (the message ends with `(rule <id>)`). */
  readonly rule?: string
  /** For `blocked`: the message must match (instead of naming a rule). */
  readonly message?: RegExp
  readonly rows?: ReadonlyArray<ReadonlyArray<string | null>>
  /** ReadyForQuery's transaction status after this step; `I` unless said. */
  readonly status?: "I" | "T" | "E"
  /** COPY data rows sent right behind the Query, in the same write, then CopyDone. */
  readonly copyData?: ReadonlyArray<string>
}

export type Mutable<T> = { -readonly [K in keyof T]: T[K] extends ReadonlyArray<infer U> ? Array<U> : T[K] }

export interface Case {
  readonly id: string
  readonly area: Area
  readonly title: string
  readonly startup?: Readonly<Record<string, string>>
  /** Superuser statements before the session opens, and after it closes (always run). */
  readonly setup?: ReadonlyArray<string>
  readonly teardown?: ReadonlyArray<string>
  readonly steps: ReadonlyArray<Step>
  /** The change the case may make (applied to a copy of the state before); none if absent. */
  readonly change?: (s: Mutable<ServerState>) => void
}

const DEFAULT_RULE = "default:*"

const blocked = (sql: string, rule: string = DEFAULT_RULE, extra: Partial<Step> = {}): Step => ({ sql, expect: "blocked", rule, ...extra })
const ok = (sql: string, rows?: Step["rows"], extra: Partial<Step> = {}): Step => ({ sql, expect: "ok", ...(rows === undefined ? {} : { rows }), ...extra })
const fails = (sql: string, code: string, extra: Partial<Step> = {}): Step => ({ sql, expect: code, ...extra })

const DEL = `DELETE FROM ${S}.accounts`
const addLog =
  (...vs: Array<string>) =>
  (s: Mutable<ServerState>) => {
    s.log = [...s.log, ...vs].sort()
  }

const SIZE_MESSAGE = new RegExp(`^statement of \\d+ bytes exceeds the policy's limit of ${MAX_STATEMENT_BYTES} bytes$`)

export const CORPUS: ReadonlyArray<Case> = [
  // ---- comments -----------------------------------------------------------------------
  { id: "comment-split-keyword", area: "comments", title: "DEL/**/ETE (a syntax error for the server too, and unparseable: blocked)", steps: [blocked(`DEL/**/ETE FROM ${S}.accounts`)] },
  { id: "comment-nested-prefix", area: "comments", title: "/* /* nested */ */ before DELETE", steps: [blocked(`/* /* nested */ */ ${DEL}`)] },
  { id: "comment-line-prefix", area: "comments", title: "-- line comment, newline, DELETE", steps: [blocked(`-- just a comment\n${DEL}`)] },
  {
    id: "comment-nested-hides-select",
    area: "comments",
    title: "a nested comment a non-nesting lexer would end early: the DELETE after it is real",
    steps: [blocked(`/* /* */ SELECT 1; */ ${DEL}`)]
  },
  {
    id: "comment-nested-hides-delete",
    area: "comments",
    title: "a DELETE inside a nested comment is not a statement: the SELECT after it runs",
    steps: [ok(`/* /* */ ${DEL}; */ SELECT 'only this' AS s`, [["only this"]])]
  },
  { id: "comment-line-then-statement", area: "comments", title: "a line comment ending before a second statement", steps: [blocked(`SELECT 1 -- ; harmless\n; ${DEL}`, DEFAULT_RULE, { rows: [["1"]] })] },
  {
    id: "comment-between-literals",
    area: "comments",
    title: "'a' -- comment, newline 'b' (one literal to the server; unparseable to libpg-query): blocked",
    steps: [blocked(`SELECT 'a' -- c\n'b'; ${DEL}`)]
  },
  { id: "comment-inside-statement", area: "comments", title: "comments between every token", steps: [blocked(`SELECT 1; /* ; */ DELETE /* x */ FROM /* y */ ${S}.accounts -- z`, DEFAULT_RULE, { rows: [["1"]] })] },

  // ---- case ---------------------------------------------------------------------------
  { id: "case-mixed-keyword", area: "case", title: "dElEtE", steps: [blocked(`dElEtE fRoM ${S}.accounts`)] },
  { id: "case-upper-names", area: "case", title: "unquoted upper-case names fold to lower case", steps: [blocked(`DeLeTe FrOm SLUICE_BYPASS.ACCOUNTS`)] },
  { id: "case-truncate", area: "case", title: "TrUnCaTe", steps: [blocked(`TrUnCaTe ${S}.accounts`)] },
  { id: "case-secret-upper", area: "case", title: "an upper-case secret schema name", steps: [blocked(`sElEcT * FrOm SLUICE_BYPASS_SECRET.DATA`, "bp-no-secret")] },

  // ---- quoted identifiers -------------------------------------------------------------
  { id: "quoted-lowercase", area: "quoted identifiers", title: `"schema"."accounts" is accounts`, steps: [blocked(`DELETE FROM "${S}"."accounts"`)] },
  { id: "quoted-unquoted-mixed-case", area: "quoted identifiers", title: "unquoted Accounts is accounts, not the writable \"Accounts\"", steps: [blocked(`DELETE FROM ${S}.Accounts`)] },
  { id: "quoted-unquoted-upper", area: "quoted identifiers", title: "unquoted ACCOUNTS is accounts", steps: [blocked(`DELETE FROM ${S}.ACCOUNTS`)] },
  {
    id: "quoted-uppercase-allowed",
    area: "quoted identifiers",
    title: `the quoted "Accounts" is the writable table, and only it changes`,
    steps: [ok(`DELETE FROM ${S}."Accounts" WHERE id = 1 RETURNING id`, [["1"]])],
    change: (s) => {
      s.Accounts = s.Accounts.filter((r) => r.id !== 1)
    }
  },
  { id: "quoted-secret", area: "quoted identifiers", title: "a quoted secret schema and table", steps: [blocked(`SELECT * FROM "${SECRET}"."data"`, "bp-no-secret")] },
  { id: "quoted-upper-schema", area: "quoted identifiers", title: `"SLUICE_BYPASS" is not sluice_bypass: not covered by the allow rule`, steps: [blocked(`DELETE FROM "SLUICE_BYPASS"."Accounts"`)] },

  // ---- search_path --------------------------------------------------------------------
  {
    id: "search-path-set-then-read",
    area: "search_path",
    title: "SET search_path = secret, public; then SELECT * FROM data",
    steps: [ok(`SET search_path = ${SECRET}, public`), blocked(`SELECT * FROM data`, "bp-no-secret")]
  },
  {
    id: "search-path-set-same-query",
    area: "search_path",
    title: "SET search_path and the read in one Query",
    steps: [blocked(`SET search_path = ${SECRET}, public; SELECT * FROM data`, "bp-no-secret")]
  },
  {
    id: "search-path-set-config",
    area: "search_path",
    title: "set_config('search_path', ...) is blocked, and the server's search_path is unchanged",
    steps: [blocked(`SELECT set_config('search_path', '${SECRET}', false)`, "bp-no-admin-functions"), ok(`SHOW search_path`, [[`"$user", public`]])]
  },
  {
    id: "search-path-startup",
    area: "search_path",
    title: "startup parameter search_path=secret",
    startup: { search_path: SECRET },
    steps: [blocked(`SELECT * FROM data`, "bp-no-secret")]
  },
  {
    id: "search-path-startup-quoted",
    area: "search_path",
    title: `startup parameter search_path="secret" (quoted)`,
    startup: { search_path: `"${SECRET}"` },
    steps: [blocked(`SELECT * FROM data`, "bp-no-secret")]
  },
  {
    id: "search-path-startup-upper",
    area: "search_path",
    title: "startup parameter search_path=SECRET (folds to lower case)",
    startup: { search_path: SECRET.toUpperCase() },
    steps: [blocked(`SELECT * FROM data`, "bp-no-secret")]
  },
  {
    id: "search-path-startup-second",
    area: "search_path",
    title: "startup search_path with the secret schema second",
    startup: { search_path: `${S}, ${SECRET}` },
    steps: [blocked(`SELECT * FROM log`, "bp-no-secret")]
  },
  {
    id: "search-path-set-schema",
    area: "search_path",
    title: "SET SCHEMA 'secret' (the SQL-standard spelling of SET search_path), then SELECT * FROM data",
    steps: [ok(`SET SCHEMA '${SECRET}'`), blocked(`SELECT * FROM data`, "bp-no-secret")]
  },
  {
    id: "search-path-unicode-name",
    area: "search_path",
    title: `SET U&"search\\005fpath" = secret, then SELECT * FROM data`,
    steps: [ok(String.raw`SET U&"search\005fpath" = ${SECRET}`), blocked(`SELECT * FROM data`, "bp-no-secret")]
  },
  {
    id: "search-path-set-local-schema",
    area: "search_path",
    title: "SET LOCAL SCHEMA inside a transaction, then SELECT * FROM data",
    steps: [
      ok(`BEGIN`, undefined, { status: "T" }),
      ok(`SET LOCAL SCHEMA '${SECRET}'`, undefined, { status: "T" }),
      blocked(`SELECT * FROM data`, "bp-no-secret", { status: "E" }),
      ok(`ROLLBACK`)
    ]
  },
  {
    id: "search-path-role-default",
    area: "search_path",
    title: "a search_path the server applies at login (ALTER ROLE ... IN DATABASE ... SET), not sent by the client",
    setup: [`ALTER ROLE sluice_backend IN DATABASE app SET search_path = ${SECRET}, public`],
    teardown: [`ALTER ROLE sluice_backend IN DATABASE app RESET search_path`],
    steps: [blocked(`SELECT * FROM data`, "bp-no-secret")]
  },
  {
    id: "search-path-temp-shadow",
    area: "search_path",
    title: "a temp table shadowing a name: Sluice must not treat the unqualified name as the temp one",
    startup: { search_path: S },
    steps: [
      blocked(`CREATE TEMP TABLE accounts (id int, owner text, balance int)`),
      ok(`CREATE TABLE pg_temp.accounts (id int, owner text, balance int)`),
      ok(`INSERT INTO pg_temp.accounts VALUES (9, 'temp', 0)`),
      // The server would resolve these to the temp table; Sluice cannot know that, and treats them as sluice_bypass.accounts.
      blocked(`DELETE FROM accounts`),
      blocked(`DROP TABLE accounts`),
      ok(`SELECT owner FROM accounts`, [["temp"]]),
      blocked(`CREATE TABLE pg_temp.leak AS SELECT * FROM ${SECRET}.data`, "bp-no-secret"),
      ok(`DELETE FROM pg_temp.accounts`)
    ],
    change: (s) => {
      s.tempTables = ["accounts"]
    }
  },

  // ---- multi-statement ----------------------------------------------------------------
  {
    id: "multi-allowed-blocked-allowed",
    area: "multi-statement",
    title: "allowed INSERT; blocked DELETE; allowed INSERT: the implicit transaction rolls the first back, the third never runs",
    steps: [blocked(`INSERT INTO ${S}.log VALUES ('multi-1'); ${DEL}; INSERT INTO ${S}.log VALUES ('multi-3')`)]
  },
  {
    id: "multi-commit-in-between",
    area: "multi-statement",
    title: "INSERT; COMMIT; blocked DELETE; INSERT: the committed first statement stays, the last never runs",
    steps: [blocked(`INSERT INTO ${S}.log VALUES ('multi-commit-1'); COMMIT; ${DEL}; INSERT INTO ${S}.log VALUES ('multi-commit-3')`)],
    change: addLog("multi-commit-1")
  },
  {
    id: "multi-reads-then-blocked",
    area: "multi-statement",
    title: "the reads before the block return their rows",
    steps: [blocked(`SELECT 1; SELECT 2; ${DEL}; SELECT 3`, DEFAULT_RULE, { rows: [["1"], ["2"]] })]
  },
  {
    id: "multi-begin-inside",
    area: "multi-statement",
    title: "BEGIN; INSERT; blocked DELETE in one Query leaves a failed transaction block",
    steps: [blocked(`BEGIN; INSERT INTO ${S}.log VALUES ('multi-begin'); ${DEL}`, DEFAULT_RULE, { status: "E" }), fails(`SELECT 1`, "25P02", { status: "E" }), ok(`ROLLBACK`)]
  },
  {
    id: "multi-blocked-first",
    area: "multi-statement",
    title: "a blocked first statement: nothing after it runs",
    steps: [blocked(`${DEL}; INSERT INTO ${S}.log VALUES ('multi-after')`)]
  },

  // ---- data-modifying CTEs ------------------------------------------------------------
  { id: "cte-delete", area: "data-modifying CTE", title: "WITH d AS (DELETE ... RETURNING *) SELECT", steps: [blocked(`WITH d AS (${DEL} RETURNING *) SELECT count(*) FROM d`)] },
  {
    id: "cte-update-second",
    area: "data-modifying CTE",
    title: "a data-modifying CTE after a harmless one",
    steps: [blocked(`WITH a AS (SELECT 1), d AS (UPDATE ${S}.accounts SET balance = 0 RETURNING *) SELECT * FROM d`)]
  },
  {
    id: "cte-nested-subquery",
    area: "data-modifying CTE",
    title: "nested in subqueries (the server refuses it too, but Sluice must block first)",
    steps: [blocked(`SELECT * FROM (SELECT * FROM (WITH d AS (${DEL} RETURNING *) SELECT * FROM d) x) y`)]
  },
  {
    id: "cte-into-allowed-table",
    area: "data-modifying CTE",
    title: "a DELETE feeding an INSERT into the writable table",
    steps: [blocked(`WITH d AS (${DEL} RETURNING owner) INSERT INTO ${S}.log SELECT owner FROM d`)]
  },
  {
    id: "cte-recursive",
    area: "data-modifying CTE",
    title: "WITH RECURSIVE and a DELETE",
    steps: [blocked(`WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3), d AS (${DEL} WHERE id IN (SELECT n FROM r) RETURNING 1) SELECT count(*) FROM d`)]
  },
  { id: "cte-merge", area: "data-modifying CTE", title: "MERGE ... WHEN MATCHED THEN DELETE", steps: [blocked(`MERGE INTO ${S}.accounts a USING (SELECT 1 AS id) s ON a.id = s.id WHEN MATCHED THEN DELETE`)] },
  { id: "secret-into-allowed-table", area: "data-modifying CTE", title: "copying secret rows into the writable table", steps: [blocked(`INSERT INTO ${S}.log SELECT secret FROM ${SECRET}.data`, "bp-no-secret")] },
  {
    id: "cte-insert-allowed",
    area: "data-modifying CTE",
    title: "a data-modifying CTE on the writable table is allowed (control)",
    steps: [ok(`WITH d AS (INSERT INTO ${S}.log VALUES ('cte-ok') RETURNING v) SELECT * FROM d`, [["cte-ok"]])],
    change: addLog("cte-ok")
  },

  // ---- writes hidden in functions -----------------------------------------------------
  { id: "fn-sql-select-list", area: "functions", title: "SELECT f() where f is a SQL function that DELETEs", steps: [blocked(`SELECT ${S}.wipe()`)] },
  { id: "fn-sql-from", area: "functions", title: "SELECT * FROM f()", steps: [blocked(`SELECT * FROM ${S}.wipe()`)] },
  { id: "fn-sql-where", area: "functions", title: "f() in a WHERE clause", steps: [blocked(`SELECT 1 FROM ${S}.data WHERE ${S}.wipe() > 0`)] },
  { id: "fn-plpgsql-execute-format", area: "functions", title: "a plpgsql function running EXECUTE format('DELETE ...')", steps: [blocked(`SELECT ${S}.purge('accounts')`)] },
  { id: "fn-call-procedure", area: "functions", title: "CALL of a procedure that DELETEs", steps: [blocked(`CALL ${S}.wipe_proc()`)] },
  { id: "fn-nextval", area: "functions", title: "nextval('seq') advances a sequence not covered by the write rule", steps: [blocked(`SELECT nextval('${S}.seq')`)] },
  { id: "fn-setval", area: "functions", title: "setval", steps: [blocked(`SELECT setval('${S}.seq', 1000)`)] },
  { id: "fn-nextval-qualified", area: "functions", title: "pg_catalog.nextval", steps: [blocked(`SELECT pg_catalog.nextval('${S}.seq')`)] },
  {
    id: "fn-nextval-catalog-oid",
    area: "functions",
    title: "nextval of a sequence found in pg_class",
    steps: [blocked(`SELECT nextval(c.oid) FROM pg_class c WHERE c.relname = 'seq' AND c.relnamespace = '${S}'::regnamespace`)]
  },
  {
    id: "fn-overloaded-builtin",
    area: "functions",
    title: "upper(1) resolving to a user function upper(integer) on the search path (classify/README: 'Not seen by a parser')",
    startup: { search_path: `${S}, public` },
    steps: [blocked(`SELECT upper(1)`)]
  },

  // ---- DO / dynamic SQL ---------------------------------------------------------------
  { id: "do-execute", area: "DO / dynamic SQL", title: "DO $$ BEGIN EXECUTE 'DELETE ...'; END $$", steps: [blocked(`DO $$ BEGIN EXECUTE 'DELETE FROM ${S}.accounts'; END $$`)] },
  {
    id: "do-execute-format",
    area: "DO / dynamic SQL",
    title: "DO with EXECUTE format(...)",
    steps: [blocked(`DO $$ BEGIN EXECUTE format('DELETE FROM %I.%I', '${S}', 'accounts'); END $$`)]
  },
  { id: "do-language-tagged", area: "DO / dynamic SQL", title: "DO LANGUAGE plpgsql with a tagged body", steps: [blocked(`DO LANGUAGE plpgsql $x$ BEGIN DELETE FROM ${S}.accounts; END $x$`)] },
  { id: "do-after-select", area: "DO / dynamic SQL", title: "SELECT 1; DO ... PERFORM f()", steps: [blocked(`SELECT 1; DO $$ BEGIN PERFORM ${S}.wipe(); END $$`, DEFAULT_RULE, { rows: [["1"]] })] },

  // ---- SQL-level PREPARE / EXECUTE ----------------------------------------------------
  {
    id: "prepare-delete",
    area: "SQL prepared statements",
    title: "PREPARE p AS DELETE, then EXECUTE p",
    steps: [blocked(`PREPARE bp_del AS ${DEL}`), blocked(`EXECUTE bp_del`), ok(`SELECT count(*) FROM pg_prepared_statements WHERE name = 'bp_del'`, [["0"]])]
  },
  {
    id: "prepare-deallocate-reprepare",
    area: "SQL prepared statements",
    title: "PREPARE an allowed body, DEALLOCATE, re-PREPARE the name with a DELETE, EXECUTE",
    steps: [
      ok(`PREPARE bp_sel AS SELECT count(*) FROM ${S}.accounts`),
      ok(`EXECUTE bp_sel`, [["3"]]),
      ok(`DEALLOCATE bp_sel`),
      blocked(`PREPARE bp_sel AS ${DEL}`),
      blocked(`EXECUTE bp_sel`)
    ]
  },
  {
    id: "prepare-deallocate-all",
    area: "SQL prepared statements",
    title: "DEALLOCATE ALL then EXECUTE a name Sluice saw before",
    steps: [ok(`PREPARE bp_all AS SELECT 1`), ok(`DEALLOCATE ALL`), blocked(`EXECUTE bp_all`)]
  },
  {
    id: "prepare-allowed-write",
    area: "SQL prepared statements",
    title: "PREPARE/EXECUTE of an allowed write (control)",
    steps: [ok(`PREPARE bp_ins AS INSERT INTO ${S}.log VALUES ('prepared-ok')`), ok(`EXECUTE bp_ins`)],
    change: addLog("prepared-ok")
  },
  {
    id: "prepare-then-search-path",
    area: "SQL prepared statements",
    title: "PREPARE p AS SELECT * FROM data, SET search_path = secret, EXECUTE p (the server re-parses under the new path)",
    startup: { search_path: S },
    steps: [ok(`PREPARE bp_data AS SELECT * FROM data`), ok(`SET search_path = ${SECRET}`), blocked(`EXECUTE bp_data`, "bp-no-secret")]
  },
  {
    id: "prepare-then-set-schema",
    area: "SQL prepared statements",
    title: "PREPARE p AS SELECT * FROM data, SET SCHEMA 'secret', EXECUTE p",
    startup: { search_path: S },
    steps: [ok(`PREPARE bp_data2 AS SELECT * FROM data`), ok(`SET SCHEMA '${SECRET}'`), blocked(`EXECUTE bp_data2`, "bp-no-secret")]
  },

  // ---- COPY ---------------------------------------------------------------------------
  {
    id: "copy-from-stdin",
    area: "COPY",
    title: "COPY accounts FROM STDIN with the data sent eagerly in the same write",
    steps: [blocked(`COPY ${S}.accounts FROM STDIN`, DEFAULT_RULE, { copyData: ["99\tmallory\t1000000\n"] })]
  },
  {
    id: "copy-from-stdin-allowed",
    area: "COPY",
    title: "COPY log FROM STDIN is allowed (control)",
    steps: [ok(`COPY ${S}.log FROM STDIN`, undefined, { copyData: ["copy-ok\n"] })],
    change: addLog("copy-ok")
  },
  { id: "copy-to-program", area: "COPY", title: "COPY ... TO PROGRAM", steps: [blocked(`COPY ${S}.accounts TO PROGRAM 'touch {file:program}'`, "bp-no-admin")] },
  { id: "copy-query-to-program", area: "COPY", title: "COPY (SELECT ...) TO PROGRAM", steps: [blocked(`COPY (SELECT 1) TO PROGRAM 'touch {file:program}'`, "bp-no-admin")] },
  { id: "copy-to-file", area: "COPY", title: "COPY ... TO a server file", steps: [blocked(`COPY ${S}.accounts TO '{file:copyTo}'`, "bp-no-admin")] },
  { id: "copy-from-program", area: "COPY", title: "COPY ... FROM PROGRAM", steps: [blocked(`COPY ${S}.accounts FROM PROGRAM 'echo 77,x,0' WITH (FORMAT csv)`, "bp-no-admin")] },
  { id: "copy-delete-returning", area: "COPY", title: "COPY (DELETE ... RETURNING *) TO STDOUT", steps: [blocked(`COPY (${DEL} RETURNING *) TO STDOUT`)] },
  { id: "copy-secret-out", area: "COPY", title: "COPY (SELECT secret) TO STDOUT", steps: [blocked(`COPY (SELECT * FROM ${SECRET}.data) TO STDOUT`, "bp-no-secret")] },

  // ---- EXPLAIN ANALYZE ----------------------------------------------------------------
  { id: "explain-analyze", area: "EXPLAIN ANALYZE", title: "EXPLAIN ANALYZE DELETE", steps: [blocked(`EXPLAIN ANALYZE ${DEL}`)] },
  { id: "explain-analyse", area: "EXPLAIN ANALYZE", title: "explain analyse (British spelling)", steps: [blocked(`explain analyse delete from ${S}.accounts`)] },
  { id: "explain-analyze-option", area: "EXPLAIN ANALYZE", title: "EXPLAIN (ANALYZE 'yes', FORMAT json) UPDATE", steps: [blocked(`EXPLAIN (ANALYZE 'yes', FORMAT json) UPDATE ${S}.accounts SET balance = 0`)] },
  { id: "explain-analyze-1", area: "EXPLAIN ANALYZE", title: "EXPLAIN (ANALYZE 1) DELETE", steps: [blocked(`EXPLAIN (ANALYZE 1) ${DEL}`)] },
  { id: "explain-analyze-function", area: "EXPLAIN ANALYZE", title: "EXPLAIN ANALYZE SELECT f()", steps: [blocked(`EXPLAIN ANALYZE SELECT ${S}.wipe()`)] },
  { id: "explain-plain-function", area: "EXPLAIN ANALYZE", title: "plain EXPLAIN of a user function (the planner may run it)", steps: [blocked(`EXPLAIN SELECT ${S}.wipe()`)] },
  { id: "explain-plain-delete", area: "EXPLAIN ANALYZE", title: "plain EXPLAIN DELETE only plans (control)", steps: [ok(`EXPLAIN ${DEL}`)] },

  // ---- Unicode escapes ----------------------------------------------------------------
  { id: "unicode-identifier", area: "unicode escapes", title: `U&"\\0061ccounts"`, steps: [blocked(String.raw`DELETE FROM ${S}.U&"\0061ccounts"`)] },
  { id: "unicode-uescape", area: "unicode escapes", title: `U&"!0061ccounts" UESCAPE '!'`, steps: [blocked(`DELETE FROM ${S}.U&"!0061ccounts" UESCAPE '!'`)] },
  { id: "unicode-secret", area: "unicode escapes", title: `U&"\\0073luice_bypass_secret".U&"d\\0061ta"`, steps: [blocked(String.raw`SELECT * FROM U&"\0073luice_bypass_secret".U&"d\0061ta"`, "bp-no-secret")] },
  {
    id: "unicode-string-quote",
    area: "unicode escapes",
    title: `U&'\\0027; DELETE ...' is one string literal`,
    steps: [ok(String.raw`SELECT U&'\0027; DELETE FROM sluice_bypass.accounts; --' AS s`, [["'; DELETE FROM sluice_bypass.accounts; --"]])]
  },
  {
    id: "unicode-startup-path",
    area: "unicode escapes",
    title: `U&"d\\0061ta" under search_path=secret`,
    startup: { search_path: SECRET },
    steps: [blocked(String.raw`SELECT * FROM U&"d\0061ta"`, "bp-no-secret")]
  },
  {
    id: "unicode-uppercase-allowed",
    area: "unicode escapes",
    title: `U&"\\0041ccounts" is "Accounts", the writable table (control)`,
    steps: [ok(String.raw`DELETE FROM ${S}.U&"\0041ccounts" WHERE id = 2`)],
    change: (s) => {
      s.Accounts = s.Accounts.filter((r) => r.id !== 2)
    }
  },

  // ---- dollar quoting -----------------------------------------------------------------
  {
    id: "dollar-tag-string",
    area: "dollar quoting",
    title: "$tag$'; DELETE ...$tag$ is one string",
    steps: [ok(`SELECT $tag$'; ${DEL}; --$tag$ AS s`, [[`'; ${DEL}; --`]])]
  },
  { id: "dollar-in-identifier", area: "dollar quoting", title: "x$a$ is an identifier, not a dollar quote: the DELETE is real", steps: [blocked(`SELECT 1 AS x$a$; ${DEL}; SELECT 2 AS y$a$`, DEFAULT_RULE, { rows: [["1"]] })] },
  { id: "dollar-two-tags", area: "dollar quoting", title: "$a$ ... $a$; DELETE; $b$ ... $b$", steps: [blocked(`SELECT $a$ $b$ $a$; ${DEL}; SELECT $b$ x $b$`, DEFAULT_RULE, { rows: [[" $b$ "]] })] },
  {
    id: "dollar-tag-case",
    area: "dollar quoting",
    title: "$TAG$ is not closed by $tag$",
    steps: [ok(`SELECT $TAG$ $tag$; ${DEL}; $TAG$ AS s`, [[` $tag$; ${DEL}; `]])]
  },
  { id: "dollar-backslash", area: "dollar quoting", title: "a backslash inside $$ is literal: the DELETE after it is real", steps: [blocked(`SELECT $$\\$$; ${DEL}; --`, DEFAULT_RULE, { rows: [["\\"]] })] },
  { id: "estring-escaped-quote", area: "dollar quoting", title: "E'\\'' then a real DELETE", steps: [blocked(`SELECT E'\\''; ${DEL}`, DEFAULT_RULE, { rows: [["'"]] })] },
  { id: "plain-string-backslash", area: "dollar quoting", title: "'\\' is a whole string under standard_conforming_strings: the DELETE is real", steps: [blocked(`SELECT '\\'; ${DEL}; --'`, DEFAULT_RULE, { rows: [["\\"]] })] },

  // ---- very long statements -----------------------------------------------------------
  {
    id: "long-allowed-900k",
    area: "long statements",
    title: "a ~900 KB read is allowed",
    steps: [ok(`SELECT length('${"x".repeat(900_000)}') AS n`, [["900000"]])]
  },
  {
    id: "long-over-limit-allowed-write",
    area: "long statements",
    title: "an otherwise allowed write over maxStatementBytes is blocked with a clear message",
    steps: [{ sql: `INSERT INTO ${S}.log VALUES ('long-${"y".repeat(MAX_STATEMENT_BYTES)}')`, expect: "blocked", message: SIZE_MESSAGE }]
  },
  {
    id: "long-over-limit-in-bytes",
    area: "long statements",
    title: "under the limit in characters, over it in UTF-8 bytes",
    steps: [{ sql: `INSERT INTO ${S}.log VALUES ('${"é".repeat(MAX_STATEMENT_BYTES / 2)}')`, expect: "blocked", message: SIZE_MESSAGE }]
  },
  {
    id: "long-multi-over-limit",
    area: "long statements",
    title: "an allowed INSERT then a long SELECT, together over the limit: neither runs",
    steps: [{ sql: `INSERT INTO ${S}.log VALUES ('long-multi'); SELECT '${"z".repeat(MAX_STATEMENT_BYTES)}'`, expect: "blocked", message: SIZE_MESSAGE }]
  },
  { id: "long-comment-then-delete", area: "long statements", title: "a 900 KB comment before a DELETE", steps: [blocked(`/* ${"c".repeat(900_000)} */ ${DEL}`)] },

  // ---- dcl / admin --------------------------------------------------------------------
  { id: "dcl-set-role", area: "dcl / admin", title: "SET ROLE", steps: [blocked(`SET ROLE ${ROLE}`, "bp-no-admin"), ok(`SELECT current_user`, [["sluice_backend"]])] },
  { id: "dcl-set-role-guc", area: "dcl / admin", title: "SET role = '...'", steps: [blocked(`SET role = '${ROLE}'`, "bp-no-admin"), ok(`SELECT current_user`, [["sluice_backend"]])] },
  { id: "dcl-set-role-config", area: "dcl / admin", title: "set_config('role', ...)", steps: [blocked(`SELECT set_config('role', '${ROLE}', false)`, "bp-no-admin-functions"), ok(`SELECT current_user`, [["sluice_backend"]])] },
  { id: "dcl-session-authorization", area: "dcl / admin", title: "SET SESSION AUTHORIZATION (blocked by Sluice, not by the server)", steps: [blocked(`SET SESSION AUTHORIZATION ${ROLE}`, "bp-no-admin"), ok(`SELECT session_user`, [["sluice_backend"]])] },
  { id: "dcl-grant-secret", area: "dcl / admin", title: "GRANT SELECT on the secret table TO PUBLIC (the secret rule comes first)", steps: [blocked(`GRANT SELECT ON ${SECRET}.data TO PUBLIC`, "bp-no-secret")] },
  { id: "dcl-grant-table", area: "dcl / admin", title: "GRANT ALL on a table TO PUBLIC", steps: [blocked(`GRANT ALL ON ${S}.accounts TO PUBLIC`, "bp-no-admin")] },
  { id: "dcl-grant-role", area: "dcl / admin", title: "GRANT a role the backend administers", steps: [blocked(`GRANT ${ROLE} TO sluice_plain`, "bp-no-admin")] },
  { id: "dcl-alter-role-setting", area: "dcl / admin", title: "ALTER ROLE CURRENT_USER SET search_path", steps: [blocked(`ALTER ROLE CURRENT_USER SET search_path = ${SECRET}`, "bp-no-admin")] },
  { id: "admin-terminate", area: "dcl / admin", title: "SELECT pg_terminate_backend(pid)", steps: [blocked(`SELECT pg_terminate_backend({victim})`, "bp-no-admin-functions")] },
  { id: "admin-cancel", area: "dcl / admin", title: "SELECT pg_cancel_backend(pid)", steps: [blocked(`SELECT pg_cancel_backend({victim})`, "bp-no-admin-functions")] },
  { id: "admin-terminate-from", area: "dcl / admin", title: "pg_terminate_backend in FROM over pg_stat_activity", steps: [blocked(`SELECT * FROM pg_stat_activity a, pg_terminate_backend(a.pid) t WHERE a.pid = {victim}`, "bp-no-admin-functions")] },
  { id: "admin-read-file", area: "dcl / admin", title: "pg_read_file", steps: [blocked(`SELECT pg_read_file('PG_VERSION')`, "bp-no-admin-functions")] },
  { id: "admin-lo-export", area: "dcl / admin", title: "lo_export to a server file", steps: [blocked(`SELECT lo_export(lo_from_bytea(0, 'x'), '{file:loExport}')`, "bp-no-admin")] },
  { id: "admin-lo-import", area: "dcl / admin", title: "lo_import of a server file", steps: [blocked(`SELECT lo_import('/etc/hostname')`, "bp-no-admin")] },
  { id: "admin-client-encoding", area: "dcl / admin", title: "SET client_encoding = 'SJIS'", steps: [blocked(`SET client_encoding = 'SJIS'`, "bp-no-admin"), ok(`SHOW client_encoding`, [["UTF8"]])] },
  { id: "admin-standard-strings", area: "dcl / admin", title: "SET standard_conforming_strings = off", steps: [blocked(`SET standard_conforming_strings = off`, "bp-no-admin"), ok(`SHOW standard_conforming_strings`, [["on"]])] },
  { id: "ddl-drop-table", area: "dcl / admin", title: "DROP TABLE outside the scratch schemas", steps: [blocked(`DROP TABLE ${S}.accounts`)] },
  { id: "ddl-alter-owner", area: "dcl / admin", title: "ALTER TABLE ... OWNER TO", steps: [blocked(`ALTER TABLE ${S}.accounts OWNER TO ${ROLE}`)] },

  // ---- row locks ----------------------------------------------------------------------
  { id: "lock-for-update", area: "row locks", title: "SELECT ... FOR UPDATE", steps: [blocked(`SELECT * FROM ${S}.locked FOR UPDATE`)] },
  { id: "lock-for-share", area: "row locks", title: "FOR SHARE", steps: [blocked(`SELECT * FROM ${S}.locked FOR SHARE`)] },
  { id: "lock-for-no-key-update", area: "row locks", title: "FOR NO KEY UPDATE NOWAIT", steps: [blocked(`SELECT * FROM ${S}.locked FOR NO KEY UPDATE NOWAIT`)] },
  { id: "lock-for-key-share-subquery", area: "row locks", title: "FOR KEY SHARE in a subquery", steps: [blocked(`SELECT * FROM (SELECT * FROM ${S}.locked FOR KEY SHARE) s`)] },
  { id: "lock-in-cte", area: "row locks", title: "FOR UPDATE in a CTE", steps: [blocked(`WITH l AS (SELECT * FROM ${S}.locked FOR UPDATE) SELECT count(*) FROM l`)] },
  {
    id: "lock-in-transaction",
    area: "row locks",
    title: "FOR UPDATE inside a transaction, then LOCK TABLE",
    steps: [
      ok(`BEGIN`, undefined, { status: "T" }),
      blocked(`SELECT * FROM ${S}.locked FOR UPDATE`, DEFAULT_RULE, { status: "E" }),
      // Blocked, but the block is raised through the server, which answers any statement in a failed transaction with 25P02 — as it would have.
      fails(`LOCK TABLE ${S}.locked IN EXCLUSIVE MODE`, "25P02", { status: "E" }),
      ok(`ROLLBACK`)
    ]
  },

  // ---- explicit transactions ----------------------------------------------------------
  {
    id: "tx-block-fails-transaction",
    area: "transactions",
    title: "a block inside BEGIN fails the server's transaction: the next statement gets 25P02, ROLLBACK keeps nothing",
    steps: [
      ok(`BEGIN`, undefined, { status: "T" }),
      ok(`INSERT INTO ${S}.log VALUES ('tx-1')`, undefined, { status: "T" }),
      blocked(DEL, DEFAULT_RULE, { status: "E" }),
      fails(`SELECT 1`, "25P02", { status: "E" }),
      fails(`INSERT INTO ${S}.log VALUES ('tx-2')`, "25P02", { status: "E" }),
      ok(`ROLLBACK`)
    ]
  },
  {
    id: "tx-commit-after-block",
    area: "transactions",
    title: "COMMIT after a block rolls back, as after a server error",
    steps: [
      ok(`BEGIN`, undefined, { status: "T" }),
      ok(`INSERT INTO ${S}.log VALUES ('tx-commit')`, undefined, { status: "T" }),
      blocked(DEL, DEFAULT_RULE, { status: "E" }),
      ok(`COMMIT`)
    ]
  },
  {
    id: "tx-savepoint",
    area: "transactions",
    title: "ROLLBACK TO SAVEPOINT recovers from a block; work after it commits",
    steps: [
      ok(`BEGIN`, undefined, { status: "T" }),
      ok(`SAVEPOINT s`, undefined, { status: "T" }),
      blocked(DEL, DEFAULT_RULE, { status: "E" }),
      ok(`ROLLBACK TO SAVEPOINT s`, undefined, { status: "T" }),
      ok(`INSERT INTO ${S}.log VALUES ('tx-savepoint')`, undefined, { status: "T" }),
      ok(`COMMIT`)
    ],
    change: addLog("tx-savepoint")
  },

  // ---- allow rules whose relations do not cover what the statement really touches ------
  {
    id: "vacuous-nextval-regclass",
    area: "vacuous relations",
    title: "nextval('seq'::text::regclass): a write whose target the classifier cannot name",
    steps: [blocked(`SELECT nextval('${S}.seq'::text::regclass)`)]
  },
  { id: "vacuous-lo-create", area: "vacuous relations", title: "lo_create(0): a write to no relation", steps: [blocked(`SELECT lo_create(0)`)] },
  { id: "vacuous-drop-schema", area: "vacuous relations", title: "DROP SCHEMA ... CASCADE outside the scratch schemas", steps: [blocked(`DROP SCHEMA ${VICTIM} CASCADE`)] },
  { id: "vacuous-drop-function", area: "vacuous relations", title: "DROP FUNCTION outside the scratch schemas", steps: [blocked(`DROP FUNCTION ${S}.purge(text)`)] },
  {
    id: "vacuous-create-function",
    area: "vacuous relations",
    title: "CREATE FUNCTION outside the scratch schemas",
    steps: [blocked(`CREATE FUNCTION ${S}.evil() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$`)]
  },
  { id: "ddl-scratch-allowed", area: "vacuous relations", title: "CREATE TABLE in the scratch schema is allowed (control)", steps: [ok(`CREATE TABLE sluice_bypass_scratch.t (id int)`), ok(`DROP TABLE sluice_bypass_scratch.t`)] }
]
