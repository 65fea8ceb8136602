/**
 * The server side of the bypass corpus: the objects every case attacks, created directly
 * as the superuser and owned by the role Sluice logs in as (so that anything Sluice lets
 * through really takes effect), and one snapshot of everything a case could change.
 */
import pg from "pg"
import { inject } from "vitest"

export const S = "sluice_bypass"
export const SECRET = "sluice_bypass_secret"
/** Dropped by one attack (DROP SCHEMA ... CASCADE) if it gets through; nothing else uses it. */
export const VICTIM = "sluice_bypass_victim"
export const ROLE = "sluice_bypass_role"

/** Files the admin attacks would write on the server host; none may ever exist. */
export const sentinelFiles = (runId: string) => ({
  program: `/tmp/sluice_bypass_${runId}_program`,
  copyTo: `/tmp/sluice_bypass_${runId}_copyto`,
  loExport: `/tmp/sluice_bypass_${runId}_loexport`
})
export type SentinelFiles = ReturnType<typeof sentinelFiles>

export const superuserClient = async (): Promise<pg.Client> => {
  const { pg: info } = inject("servers")
  const c = new pg.Client({ host: info.host, port: info.port, user: info.superuser.user, password: info.superuser.password, database: info.databases.app })
  c.on("error", () => {})
  await c.connect()
  return c
}

/** A direct connection as the role Sluice logs in as, past the gateway. */
export const backendClient = async (): Promise<pg.Client> => {
  const { pg: info } = inject("servers")
  const c = new pg.Client({ host: info.host, port: info.port, user: info.backend.user, password: info.backend.password, database: info.databases.app })
  c.on("error", () => {})
  await c.connect()
  return c
}

const backendRole = () => inject("servers").pg.backend.user

/** Rights the backend role gets for the duration of the file, so that admin attacks would succeed if let through. */
const grants = (backend: string) => [
  `GRANT pg_execute_server_program, pg_read_server_files, pg_write_server_files TO ${backend}`,
  `GRANT EXECUTE ON FUNCTION pg_read_file(text) TO ${backend}`,
  `GRANT EXECUTE ON FUNCTION lo_export(oid, text) TO ${backend}`,
  `GRANT EXECUTE ON FUNCTION lo_import(text) TO ${backend}`,
  `GRANT ${ROLE} TO ${backend} WITH ADMIN OPTION`
]

export const teardownSql = (backend = backendRole()) => [
  `DROP SCHEMA IF EXISTS ${S}, ${SECRET}, ${VICTIM}, sluice_bypass_scratch CASCADE`,
  `ALTER ROLE ${backend} IN DATABASE app RESET search_path`,
  `DO $$ BEGIN
     IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${ROLE}') THEN
       EXECUTE 'REVOKE ${ROLE} FROM ${backend}';
       EXECUTE 'DROP ROLE ${ROLE}';
     END IF;
   END $$`,
  `REVOKE pg_execute_server_program, pg_read_server_files, pg_write_server_files FROM ${backend}`,
  `REVOKE EXECUTE ON FUNCTION pg_read_file(text) FROM ${backend}`,
  `REVOKE EXECUTE ON FUNCTION lo_export(oid, text) FROM ${backend}`,
  `REVOKE EXECUTE ON FUNCTION lo_import(text) FROM ${backend}`
]

export const setupSql = (backend = backendRole()) => [
  ...teardownSql(backend),
  `CREATE ROLE ${ROLE} NOLOGIN`,
  ...grants(backend),
  `CREATE SCHEMA ${S} AUTHORIZATION ${backend}`,
  `CREATE SCHEMA ${SECRET} AUTHORIZATION ${backend}`,
  `CREATE SCHEMA ${VICTIM} AUTHORIZATION ${backend}`,
  `CREATE SCHEMA sluice_bypass_scratch AUTHORIZATION ${backend}`,
  // Everything below is owned by the backend role: if Sluice forwards an attack, it works.
  `SET ROLE ${backend}`,
  `CREATE TABLE ${S}.accounts (id int PRIMARY KEY, owner text NOT NULL, balance int NOT NULL)`,
  `INSERT INTO ${S}.accounts VALUES (1, 'alice', 100), (2, 'bob', 200), (3, 'carol', 300)`,
  // Same name as accounts but for case: the policy lets writes reach this one only.
  `CREATE TABLE ${S}."Accounts" (id int PRIMARY KEY, note text NOT NULL)`,
  `INSERT INTO ${S}."Accounts" VALUES (1, 'scratch one'), (2, 'scratch two'), (3, 'scratch three')`,
  // The one table writes are allowed to: allowed parts of an attack leave traces here.
  `CREATE TABLE ${S}.log (v text NOT NULL)`,
  `CREATE TABLE ${S}.data (id int, v text)`,
  `INSERT INTO ${S}.data VALUES (1, 'public one'), (2, 'public two')`,
  // Rows only FOR UPDATE/SHARE attacks touch: their xmax stays 0 unless a lock was taken.
  `CREATE TABLE ${S}.locked (id int PRIMARY KEY)`,
  `INSERT INTO ${S}.locked VALUES (1), (2)`,
  `CREATE SEQUENCE ${S}.seq`,
  // The same columns as ${S}.data, so that a statement re-planned against it still runs.
  `CREATE TABLE ${SECRET}.data (id int, v text)`,
  `INSERT INTO ${SECRET}.data VALUES (1, 'TOP-SECRET-1'), (2, 'TOP-SECRET-2')`,
  `CREATE TABLE ${SECRET}.log (v text NOT NULL)`,
  `INSERT INTO ${SECRET}.log VALUES ('secret log row')`,
  `CREATE TABLE ${VICTIM}.t (id int)`,
  `INSERT INTO ${VICTIM}.t VALUES (1)`,
  // Writes hidden in functions.
  `CREATE FUNCTION ${S}.wipe() RETURNS bigint LANGUAGE sql AS $$ WITH d AS (DELETE FROM ${S}.accounts RETURNING 1) SELECT count(*) FROM d $$`,
  `CREATE FUNCTION ${S}.purge(t text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE format('DELETE FROM %I.%I', '${S}', t); END $$`,
  `CREATE PROCEDURE ${S}.wipe_proc() LANGUAGE sql AS $$ DELETE FROM ${S}.accounts $$`,
  // A function overloading a built-in name: with ${S} on the search path, upper(1) runs it.
  `CREATE FUNCTION ${S}.upper(integer) RETURNS bigint LANGUAGE sql AS $$ SELECT ${S}.wipe() $$`,
  `RESET ROLE`
]

/** Everything on the server a case could change, as plain JSON. */
export interface ServerState {
  readonly accounts: ReadonlyArray<{ id: number; owner: string; balance: number }>
  readonly Accounts: ReadonlyArray<{ id: number; note: string }>
  readonly log: ReadonlyArray<string>
  readonly data: ReadonlyArray<{ id: number; v: string }>
  readonly secretData: ReadonlyArray<{ id: number; v: string }>
  readonly secretLog: ReadonlyArray<string>
  readonly victim: ReadonlyArray<number>
  readonly seq: { last: number; called: boolean }
  readonly lockedXmax: ReadonlyArray<string>
  readonly largeObjects: ReadonlyArray<number>
  readonly acl: { secretData: string | null; accounts: string | null }
  readonly schemas: ReadonlyArray<string>
  readonly objects: ReadonlyArray<string>
  readonly functions: ReadonlyArray<string>
  readonly roleMembers: ReadonlyArray<string>
  readonly roleSettings: ReadonlyArray<string>
  readonly tempTables: ReadonlyArray<string>
  readonly files: { program: boolean; copyTo: boolean; loExport: boolean }
  readonly victimBackendAlive: boolean
}

const rowsOf = (table: string, cols: string, order = "1") =>
  `(SELECT coalesce(json_agg(json_build_object(${cols}) ORDER BY ${order}), '[]'::json) FROM ${table})`

const values = (table: string, col = "v") => `(SELECT coalesce(json_agg(${col} ORDER BY ${col}), '[]'::json) FROM ${table})`

/** The fixture's tables and how to read each; a dropped table reads as "gone". */
const TABLES: ReadonlyArray<readonly [key: string, table: string, expr: string]> = [
  ["accounts", `${S}.accounts`, rowsOf(`${S}.accounts`, `'id', id, 'owner', owner, 'balance', balance`, "id")],
  ["Accounts", `${S}."Accounts"`, rowsOf(`${S}."Accounts"`, `'id', id, 'note', note`, "id")],
  ["log", `${S}.log`, values(`${S}.log`)],
  ["data", `${S}.data`, rowsOf(`${S}.data`, `'id', id, 'v', v`, "id")],
  ["secretData", `${SECRET}.data`, rowsOf(`${SECRET}.data`, `'id', id, 'v', v`, "id")],
  ["secretLog", `${SECRET}.log`, values(`${SECRET}.log`)],
  ["victim", `${VICTIM}.t`, values(`${VICTIM}.t`, "id")],
  ["seq", `${S}.seq`, `(SELECT json_build_object('last', last_value, 'called', is_called) FROM ${S}.seq)`],
  ["lockedXmax", `${S}.locked`, `(SELECT json_agg(xmax::text ORDER BY id) FROM ${S}.locked)`]
]

/**
 * One query: every table of the fixture, large objects, privileges, role memberships
 * and settings, temp tables anywhere, the sentinel files, and whether the victim backend
 * is still there.
 */
const snapshotSql = (present: ReadonlySet<string>) => `
SELECT json_build_object(
  ${TABLES.map(([key, table, expr]) => `'${key}', ${present.has(table) ? expr : `'"gone"'::json`}`).join(",\n  ")},
  'largeObjects', (SELECT coalesce(json_agg(oid::bigint ORDER BY oid), '[]'::json) FROM pg_largeobject_metadata),
  'acl', json_build_object(
    'secretData', (SELECT relacl::text FROM pg_class WHERE oid = to_regclass('${SECRET}.data')),
    'accounts', (SELECT relacl::text FROM pg_class WHERE oid = to_regclass('${S}.accounts'))),
  'schemas', (SELECT coalesce(json_agg(nspname ORDER BY nspname), '[]'::json) FROM pg_namespace WHERE nspname LIKE 'sluice\\_bypass%'),
  'objects', (SELECT coalesce(json_agg(n.nspname || '.' || c.relname || ':' || c.relkind::text ORDER BY 1), '[]'::json)
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname LIKE 'sluice\\_bypass%'),
  'functions', (SELECT coalesce(json_agg(n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' ORDER BY 1), '[]'::json)
                FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname LIKE 'sluice\\_bypass%'),
  'roleMembers', (SELECT coalesce(json_agg(m.member::regrole::text ORDER BY 1), '[]'::json) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid WHERE r.rolname = '${ROLE}'),
  'roleSettings', (SELECT coalesce(json_agg(array_to_string(s.setconfig, ',') ORDER BY 1), '[]'::json)
                   FROM pg_db_role_setting s WHERE s.setrole = $5::regrole OR s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())),
  'tempTables', (SELECT coalesce(json_agg(relname ORDER BY relname), '[]'::json) FROM pg_class WHERE relpersistence = 't' AND relname IN ('accounts', 'data', 'leak')),
  'files', json_build_object('program', (pg_stat_file($1, true)).size IS NOT NULL, 'copyTo', (pg_stat_file($2, true)).size IS NOT NULL, 'loExport', (pg_stat_file($3, true)).size IS NOT NULL),
  'victimBackendAlive', EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $4)
) AS state`

export const snapshot = async (su: pg.Client, files: SentinelFiles, victimPid: number): Promise<ServerState> => {
  const tables = TABLES.map(([, table]) => table)
  const exists = await su.query<{ t: string; e: boolean }>("SELECT t, to_regclass(t) IS NOT NULL AS e FROM unnest($1::text[]) t", [tables])
  const present = new Set(exists.rows.filter((r) => r.e).map((r) => r.t))
  const r = await su.query<{ state: ServerState }>(snapshotSql(present), [files.program, files.copyTo, files.loExport, victimPid, backendRole()])
  return r.rows[0]!.state
}

export const fileExists = async (su: pg.Client, path: string): Promise<boolean> =>
  (await su.query<{ e: boolean }>("SELECT (pg_stat_file($1, true)).size IS NOT NULL AS e", [path])).rows[0]!.e
