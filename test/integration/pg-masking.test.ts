/**
 * Result masking end to end: the real gateway CLI between real clients (psql, node-postgres,
 * a raw-protocol client) and the harness PostgreSQL. Every test asserts the exact values
 * the client received, and checks over a direct connection that the data itself is intact:
 *
 * - plain columns masked by method (email, partial, redact, null; non-text types NULL),
 *   computed columns over masked ones redacted, unmasked tables and aggregates left alone;
 * - the extended protocol: parameters, named statements run many times, binary results,
 *   a client that never describes (Sluice describes the portal itself), row-limited Executes;
 * - exempt principals; blocks where masking cannot follow (COPY out, cursors, writes that
 *   store masked values, and while any mask is in force: all DDL, and statements Sluice
 *   cannot see into, such as user-defined functions, DO, and a FETCH from a cursor a DO
 *   opened); writes that only filter on masked columns; withheld error texts;
 * - the audit trail (Decision verdict `mask`, MaskingSummary, recorded rows masked, no clear
 *   value anywhere), and a policy reload that adds a mask to live sessions.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import pg from "pg"
import Cursor from "pg-cursor"
import postgres from "postgres"
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest"
import type { BackendMessage } from "../../src/codecs/pg/backend.ts"
import { encodeFrontend, type FrontendMessage } from "../../src/codecs/pg/frontend.ts"
import type { AuditEvent } from "../../src/sinks/events.ts"
import { readContainerFiles } from "../../src/sinks/file-sink.ts"
import { ofKind, summarize } from "./support/audit-trail.ts"
import { defaultConfig, type Gateway, OTHER_TOKEN, startGateway, TOKEN } from "./support/gateway.ts"
import { closeClient, directQuery, gatewayClient, rejection, runCommand, waitForLog } from "./support/policy-clients.ts"
import { RawClient } from "./support/raw-client.ts"

const C = "sluice_mask_customers"
const O = "sluice_mask_orders"
const OC = "sluice_mask_orders_copy"
/** A view over the masked table, which a mask names on its own (masks name relations, not what a view reads). */
const VIEW = "sluice_mask_contacts"
/** A user-defined function over the masked table: what it reads, Sluice cannot see. */
const FN = "sluice_mask_fn"
/** Altered behind the gateway's back (see the catalog test). */
const STALE = "sluice_mask_stale"
/** What blocked statements would have created: none may exist afterwards. */
const CREATED = ["sluice_mask_ctas", "sluice_mask_into", "sluice_mask_view", "sluice_mask_plain"]

const CLEAR = [
  { id: 1, name: "Ann", email: "ann@example.com", phone: "+1 555 0101 4321", ssn: "123-45-6789", birth: "1980-01-02", score: 10, profile: { tier: "gold" }, notes: "vip-customer" },
  { id: 2, name: "Bob", email: "bob@corp.test", phone: "555-0102", ssn: "987-65-4321", birth: "1990-03-04", score: 20, profile: { tier: "silver" }, notes: null },
  { id: 3, name: "Cy", email: "cy@mail.org", phone: "0044 20 7946 0958", ssn: "111-22-3333", birth: "2000-05-06", score: 30, profile: { tier: "bronze" }, notes: "callback-after-5pm" }
] as const

/** Every clear value of a masked column: none may reach a masked client or the audit trail. */
const SECRETS = CLEAR.flatMap((r) => [r.email, r.phone, r.ssn, r.birth, r.notes, JSON.stringify(r.profile).slice(1, -1)]).filter((s): s is string => s !== null)

/** What a non-exempt client reads of the text-like columns (email: `email`, phone: `partial` keep 4, ssn and profile: `redact`). */
const MASKED = [
  { id: 1, name: "Ann", email: "****@example.com", phone: "****4321", ssn: "****", birth: null, score: null, profile: "****", notes: null },
  // '555-0102' is 8 characters, at most keep * 2: `partial` keeps nothing of it
  { id: 2, name: "Bob", email: "****@corp.test", phone: "****", ssn: "****", birth: null, score: null, profile: "****", notes: null },
  { id: 3, name: "Cy", email: "****@mail.org", phone: "****0958", ssn: "****", birth: null, score: null, profile: "****", notes: null }
]

const EXEMPT_OTHER = { subjects: ["other"] }

const MASKS = [
  { id: "customer-email", columns: [`public.${C}.email`], method: "email", exempt: EXEMPT_OTHER },
  { id: "customer-phone", columns: [`${C}.phone`], method: "partial", keep: 4, exempt: EXEMPT_OTHER },
  { id: "customer-ids", columns: [`public.${C}.ssn`, `public.${C}.prof*`], exempt: EXEMPT_OTHER },
  // No exemption: `other` reads these masked too. Dates and ints become NULL under any method.
  { id: "customer-private", columns: [`${C}.birth`, `${C}.score`, `${C}.notes`], method: "null" },
  { id: "stale-email", columns: [`${STALE}.email`], method: "email" },
  { id: "contacts-view", columns: [`${VIEW}.email`] }
]

const ALLOW = { version: 1, defaults: { "*": { action: "allow" } }, rules: [] }
const POLICY = { ...ALLOW, masks: MASKS }

const WITHHELD = (code: string) => `message withheld: the statement reads masked columns (SQLSTATE ${code})`
/** What a blocked statement reads, by mask: Sluice's reason, then the mask. */
const COPY_BLOCK = "COPY would send masked columns out; SELECT them instead, where masking cannot follow them (mask customer-email)"
const CURSOR_BLOCK = "a cursor would return masked columns; SELECT them instead, or use the extended protocol's row limit, where masking cannot follow them (mask customer-email)"
const STORE_BLOCK = (mask: string) => `the statement would store values of masked columns unmasked, where masking cannot follow them (mask ${mask})`
/** While any mask is in force for the principal, whatever the statement names: the first such mask is named. */
const DDL_BLOCK = (mask: string) =>
  `schema changes could move masked values out from under the masks' names; run them as a principal the masks exempt, where masking cannot follow them (mask ${mask})`
const UNKNOWN_BLOCK = (mask: string) => `Sluice cannot see what a statement of unknown effect reads or where its values go, where masking cannot follow them (mask ${mask})`
const UNSEEN_BLOCK = (mask: string) =>
  `Sluice did not see what runs under this name (a cursor it did not see declared, a protocol portal, a statement it did not see prepared), so it cannot tell what it reads, where masking cannot follow them (mask ${mask})`

const COLUMNS = "id, name, email, phone, ssn, birth, score, profile, notes"

/** The table as it is on the server, past the gateway. */
const serverRows = () =>
  directQuery("superuser", `SELECT ${COLUMNS.replace("birth", "to_char(birth, 'YYYY-MM-DD') AS birth")} FROM ${C} ORDER BY id`)

const createTables = async () => {
  await dropTables()
  await directQuery(
    "backend",
    `CREATE TABLE ${C} (id int PRIMARY KEY, name text NOT NULL, email text UNIQUE, phone varchar(32), ssn text, birth date, score int, profile jsonb, notes text);
     CREATE TABLE ${O} (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES ${C}, total int NOT NULL);
     CREATE TABLE ${OC} (v text);
     CREATE TABLE ${STALE} (id int PRIMARY KEY, email text);
     INSERT INTO ${STALE} VALUES (1, 'stale@example.com');
     CREATE VIEW ${VIEW} AS SELECT id, name, email FROM ${C};
     CREATE FUNCTION ${FN}() RETURNS SETOF ${C} LANGUAGE sql STABLE AS 'SELECT * FROM ${C}'`
  )
  await resetRows()
}

const resetRows = async () => {
  await directQuery("backend", `DELETE FROM ${O}; DELETE FROM ${OC}; DELETE FROM ${C}`)
  for (const r of CLEAR) {
    await directQuery("backend", `INSERT INTO ${C} (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, [
      r.id, r.name, r.email, r.phone, r.ssn, r.birth, r.score, JSON.stringify(r.profile), r.notes
    ])
  }
  await directQuery("backend", `INSERT INTO ${O} VALUES (1, 1, 100), (2, 1, 250), (3, 3, 75)`)
}

const dropTables = () => directQuery("superuser", `DROP VIEW IF EXISTS sluice_mask_view, ${VIEW}; DROP FUNCTION IF EXISTS ${FN}(); DROP TABLE IF EXISTS ${[OC, O, C, STALE, ...CREATED.filter((t) => t !== "sluice_mask_view")].join(", ")}`)

/** psql through a gateway: unaligned, tuples only, NULL shown as NULL, verbose errors (SQLSTATE and field names). */
const psqlVia = (gw: Gateway, args: ReadonlyArray<string>, opts: { token?: string; input?: string } = {}) =>
  runCommand("psql", ["-X", "-At", "-P", "null=NULL", "-v", "VERBOSITY=verbose", "-d", `host=127.0.0.1 port=${gw.port} user=ci dbname=app sslmode=disable`, ...args], {
    env: { PGPASSWORD: opts.token ?? TOKEN },
    ...(opts.input === undefined ? {} : { input: opts.input })
  })

const lines = (s: string) => s.split("\n").filter((l) => l !== "")

/** Every field of a node-postgres error, for checking that none quotes a value. */
const errorFields = (e: unknown) => {
  const x = e as Record<string, unknown>
  const out: Record<string, unknown> = {}
  for (const k of ["message", "severity", "code", "detail", "hint", "position", "internalPosition", "internalQuery", "where", "schema", "table", "column", "dataType", "constraint"]) {
    if (x[k] !== undefined) out[k] = x[k]
  }
  return out
}

const caught = async (p: Promise<unknown>): Promise<unknown> => {
  try {
    await p
  } catch (e) {
    return e
  }
  throw new Error("expected the query to fail")
}

// ---------------------------------------------------------------------------------------------
// the raw protocol: exactly the messages a test wants, no Describe unless asked

const send = (rc: RawClient, ...ms: ReadonlyArray<FrontendMessage>) => rc.send(Buffer.concat(ms.map((m) => encodeFrontend(m))))

/** Messages up to and including ReadyForQuery. */
const untilReady = async (rc: RawClient): Promise<Array<BackendMessage>> => {
  const out: Array<BackendMessage> = []
  for (;;) {
    const m = await rc.next()
    if (m === undefined) throw new Error(`connection closed; got ${JSON.stringify(out.map((x) => x._tag))}`)
    out.push(m)
    if (m._tag === "ReadyForQuery") return out
  }
}

/** DataRows as strings ("\x01" kept for jsonb binary), NULL as null; and the other messages by tag. */
const rowsOf = (ms: ReadonlyArray<BackendMessage>) =>
  ms.flatMap((m) => (m._tag === "DataRow" ? [m.values.map((v) => (v === null ? null : Buffer.from(v).toString("utf8")))] : []))
const tagsOf = (ms: ReadonlyArray<BackendMessage>) => ms.map((m) => (m._tag === "CommandComplete" ? `CommandComplete ${m.tag}` : m._tag))

const audited = async (files: string, sessions: number, timeoutMs = 15_000): Promise<ReadonlyArray<AuditEvent>> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const events = await Effect.runPromise(readContainerFiles(files))
    if (events.filter((e) => e.payload._tag === "SessionEnd").length >= sessions) return events
    if (Date.now() > deadline) throw new Error(`fewer than ${sessions} sessions ended in the audit files within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

describe("result masking", () => {
  beforeAll(createTables)
  afterAll(dropTables)

  describe("under a policy with masks", () => {
    let gw: Gateway
    beforeAll(async () => {
      gw = await startGateway(undefined, POLICY)
    })
    afterAll(async () => {
      await gw?.stop()
    })
    beforeEach(resetRows)

    const psql = (sql: string, token?: string) => psqlVia(gw, ["-c", sql], token === undefined ? {} : { token })
    /** One statement through psql: its rows, split on `|`; stderr must be empty. */
    const psqlRows = async (sql: string, token?: string) => {
      const r = await psql(sql, token)
      expect(r.stderr).toBe("")
      expect(r.code).toBe(0)
      return lines(r.stdout).map((l) => l.split("|"))
    }

    describe("psql (simple protocol)", () => {
      it("SELECT *: each masked column by its mask's method, id and name clear; the server's rows unchanged", async () => {
        expect(await psqlRows(`SELECT * FROM ${C} ORDER BY id`)).toEqual([
          ["1", "Ann", "****@example.com", "****4321", "****", "NULL", "NULL", `"****"`, "NULL"],
          ["2", "Bob", "****@corp.test", "****", "****", "NULL", "NULL", `"****"`, "NULL"],
          ["3", "Cy", "****@mail.org", "****0958", "****", "NULL", "NULL", `"****"`, "NULL"]
        ])
        expect(await serverRows()).toEqual(CLEAR.map((r) => ({ ...r })))
      })

      it("a join: the customer's email masked, the unmasked table's column clear", async () => {
        expect(await psqlRows(`SELECT c.email, o.total, c.name FROM ${C} c JOIN ${O} o ON o.customer_id = c.id ORDER BY o.id`)).toEqual([
          ["****@example.com", "100", "Ann"],
          ["****@example.com", "250", "Ann"],
          ["****@mail.org", "75", "Cy"]
        ])
        // A table no mask names, read alone: untouched.
        expect(await psqlRows(`SELECT * FROM ${O} ORDER BY id`)).toEqual([
          ["1", "1", "100"],
          ["2", "1", "250"],
          ["3", "3", "75"]
        ])
      })

      it("computed columns over masked ones are redacted: functions, concatenation, row_to_json, scalar subqueries, UNION", async () => {
        expect(await psqlRows(`SELECT upper(email) FROM ${C} ORDER BY id`)).toEqual([["****"], ["****"], ["****"]])
        expect(await psqlRows(`SELECT email || '' FROM ${C} ORDER BY id`)).toEqual([["****"], ["****"], ["****"]])
        // json: the JSON string "****"
        expect(await psqlRows(`SELECT row_to_json(c) FROM ${C} c ORDER BY id`)).toEqual([[`"****"`], [`"****"`], [`"****"`]])
        expect(await psqlRows(`SELECT (SELECT email FROM ${C} ORDER BY id LIMIT 1) AS first, 42 AS n`)).toEqual([["****", "NULL"]])
        // A UNION's columns are computed: Bob's name travels in the masked column and is redacted too.
        expect(await psqlRows(`SELECT email FROM ${C} WHERE id = 1 UNION ALL SELECT name FROM ${C} WHERE id = 2`)).toEqual([["****"], ["****"]])
        // A computed int over a masked int: NULL
        expect(await psqlRows(`SELECT score + 1, id FROM ${C} WHERE id = 1`)).toEqual([["NULL", "1"]])
      })

      it("a whole row as a column (the server names the table, attribute 0): redacted when the table has masked columns", async () => {
        expect(await psqlRows(`SELECT c FROM ${C} c ORDER BY id`)).toEqual([["****"], ["****"], ["****"]])
        expect(await psqlRows(`SELECT ${C}, id FROM ${C} WHERE id = 2`)).toEqual([["****", "2"]])
        expect(await psqlRows(`SELECT c.*, c FROM ${C} c WHERE id = 1`)).toEqual([["1", "Ann", "****@example.com", "****4321", "****", "NULL", "NULL", `"****"`, "NULL", "****"]])
        // a table without masked columns, beside one with: its whole row stays clear
        expect(await psqlRows(`SELECT o, c.id FROM ${O} o JOIN ${C} c ON c.id = o.customer_id WHERE o.id = 3`)).toEqual([["(3,3,75)", "3"]])
        // system columns (negative attribute numbers) hold no user data: clear
        const [[ctid, id]] = (await psqlRows(`SELECT ctid, id FROM ${C} WHERE id = 3`)) as [[string, string]]
        expect([/^\(\d+,\d+\)$/.test(ctid), id]).toEqual([true, "3"])
      })

      // Known to fail (24977af): the classifier (src/rules/classify/walker.ts) ignores a FROM
      // item's column alias list, so `e` is taken for a column "e" of the table, which no mask
      // names: the expression is not counted as projecting email.
      it("columns renamed by an alias list are still the table's columns: in expressions too", async () => {
        expect(await psqlRows(`SELECT e FROM ${C} AS t(i, n, e) ORDER BY i`)).toEqual([["****@example.com"], ["****@corp.test"], ["****@mail.org"]])
        expect(await psqlRows(`SELECT upper(e) FROM ${C} AS t(i, n, e) ORDER BY i`)).toEqual([["****"], ["****"], ["****"]])
        expect(await psqlRows(`SELECT upper(t.e) FROM ${C} AS t(i, n, e) WHERE i = 1`)).toEqual([["****"]])
      })

      // Known to fail (24977af), for the same reason: the INSERT runs and stores clear emails.
      it("storing a masked column renamed by an alias list is blocked like storing it by name", async () => {
        const r = await psql(`INSERT INTO ${OC} SELECT e FROM ${C} AS t(i, n, e)`)
        expect(lines(r.stderr)[0]).toBe(`ERROR:  42501: ${STORE_BLOCK("customer-email")}`)
        expect(await directQuery("superuser", `SELECT count(*)::int AS n FROM ${OC}`)).toEqual([{ n: 0 }])
      })

      it("what projects no masked column stays clear: an aggregate filtered on email, a UNION of clear columns", async () => {
        expect(await psqlRows(`SELECT count(*) FROM ${C} WHERE email LIKE '%@%'`)).toEqual([["3"]])
        expect(await psqlRows(`SELECT name FROM ${C} WHERE id = 2 UNION ALL SELECT 'x'`)).toEqual([["Bob"], ["x"]])
        expect(await psqlRows(`SELECT id, name FROM ${C} WHERE email = 'cy@mail.org'`)).toEqual([["3", "Cy"]])
      })

      it("a CTE's columns keep their origin and mask", async () => {
        expect(await psqlRows(`WITH x AS (SELECT id, email FROM ${C}) SELECT email FROM x ORDER BY id`)).toEqual([["****@example.com"], ["****@corp.test"], ["****@mail.org"]])
      })

      it("a view whose column a mask names: masked by that mask (the server names the view as the origin)", async () => {
        expect(await psqlRows(`SELECT * FROM ${VIEW} ORDER BY id`)).toEqual([
          ["1", "Ann", "****"],
          ["2", "Bob", "****"],
          ["3", "Cy", "****"]
        ])
        expect(await psqlRows(`SELECT lower(email) FROM ${VIEW} WHERE id = 1`)).toEqual([["****"]])
      })

      it("several statements in one Query: each masked by its own results", async () => {
        expect(await psqlRows(`SELECT email FROM ${C} WHERE id = 1; SELECT total FROM ${O} WHERE id = 1; SELECT phone FROM ${C} WHERE id = 3`)).toEqual([
          ["****@example.com"],
          ["100"],
          ["****0958"]
        ])
      })
    })

    describe("node-postgres (extended protocol)", () => {
      let client: pg.Client
      beforeEach(async () => {
        client = await gatewayClient(gw)
      })
      afterEach(() => closeClient(client))

      it("a parameterised query: text masked by method, jsonb as the JSON string, int, date and the null method NULL", async () => {
        const r = await client.query(`SELECT ${COLUMNS} FROM ${C} WHERE id = $1`, [1])
        expect(r.rows).toEqual([MASKED[0]])
        const all = await client.query(`SELECT ${COLUMNS} FROM ${C} WHERE id > $1 ORDER BY id`, [0])
        expect(all.rows).toEqual(MASKED)
      })

      it("a named prepared statement executed many times: every execution masked", async () => {
        const got: Array<unknown> = []
        for (const id of [1, 2, 3, 1, 2, 3, 1]) {
          const r = await client.query({ name: "q1", text: `SELECT email, phone, score FROM ${C} WHERE id = $1`, values: [id] })
          got.push(r.rows[0])
        }
        const want = (id: number) => ({ email: MASKED[id - 1]!.email, phone: MASKED[id - 1]!.phone, score: null })
        expect(got).toEqual([1, 2, 3, 1, 2, 3, 1].map(want))
      })

      it("binary results: text bytes masked, jsonb as version 1 and the JSON string, int NULL", async () => {
        // `binary` is a node-postgres query option @types/pg does not declare
        const query = { text: `SELECT id, email, phone, ssn, score, profile FROM ${C} WHERE id = $1`, values: [3], binary: true }
        const r = await client.query(query)
        expect(r.fields.every((f) => f.format === "binary")).toBe(true)
        expect(r.rows).toEqual([{ id: 3, email: "****@mail.org", phone: "****0958", ssn: "****", score: null, profile: `\u0001"****"` }])
      })

      it("pg-cursor: one portal read a row at a time (Execute with a row limit, Flush), every batch masked", async () => {
        const cursor = client.query(new Cursor(`SELECT id, email, ssn FROM ${C} WHERE id >= $1 ORDER BY id`, [1]))
        const batches: Array<Array<unknown>> = []
        for (;;) {
          const rows = await cursor.read(1)
          if (rows.length === 0) break
          batches.push(rows)
        }
        await cursor.close()
        expect(batches).toEqual(MASKED.map((r) => [{ id: r.id, email: r.email, ssn: "****" }]))
      })

      it("rows in a transaction, through a write's RETURNING and a SQL-level PREPARE/EXECUTE", async () => {
        await client.query("BEGIN")
        expect((await client.query(`SELECT email FROM ${C} WHERE id = $1`, [2])).rows).toEqual([{ email: "****@corp.test" }])
        await client.query("ROLLBACK")
        await client.query(`PREPARE p1 (int) AS SELECT email, ssn FROM ${C} WHERE id = $1`)
        expect((await client.query("EXECUTE p1 (1)")).rows).toEqual([{ email: "****@example.com", ssn: "****" }])
        expect((await client.query("EXECUTE p1 (2)")).rows).toEqual([{ email: "****@corp.test", ssn: "****" }])
      })
    })

    describe("postgres.js pipelining (one connection, queries in flight together)", () => {
      let sql: postgres.Sql
      beforeEach(async () => {
        sql = postgres({ ...gw.connection(), username: "ci", max: 1, onnotice: () => {} })
        await sql`SELECT 1`
      })
      afterEach(async () => {
        await sql.end({ timeout: 2 })
      })

      it("masked and unmasked queries, a blocked one and a failing one in one pipeline, twice (prepared the second time): each answer right", async () => {
        const round = () =>
          Promise.allSettled([
            sql`SELECT email FROM ${sql(C)} WHERE id = ${1}`,
            sql`SELECT total FROM ${sql(O)} WHERE id = ${2}`,
            sql`COPY ${sql(C)} TO STDOUT`,
            sql`SELECT phone, name FROM ${sql(C)} WHERE id = ${3}`,
            sql`SELECT ssn::int FROM ${sql(C)} WHERE id = ${2}`,
            sql`SELECT id, notes FROM ${sql(C)} WHERE id = ${1}`,
            sql`SELECT total FROM ${sql(O)} WHERE id = ${3}`
          ])
        const outcome = (s: PromiseSettledResult<ReadonlyArray<Record<string, unknown>>>) =>
          s.status === "fulfilled" ? [...s.value] : { code: (s.reason as { code?: string }).code, message: (s.reason as Error).message }
        const want = [
          [{ email: "****@example.com" }],
          [{ total: 250 }],
          { code: "42501", message: COPY_BLOCK },
          [{ phone: "****0958", name: "Cy" }],
          { code: "22P02", message: WITHHELD("22P02") },
          [{ id: 1, notes: null }],
          [{ total: 75 }]
        ]
        expect((await round()).map(outcome)).toEqual(want)
        expect((await round()).map(outcome)).toEqual(want)
      })
    })

    describe("a raw-protocol client that never describes", () => {
      let rc: RawClient
      beforeEach(async () => {
        rc = await RawClient.connect(gw.port)
        const greeting = await rc.login("app", TOKEN)
        expect(greeting.at(-1)?._tag).toBe("ReadyForQuery")
      })
      afterEach(async () => rc.close())

      it("Parse, Bind, Execute, Sync: rows masked although nobody asked for a description, and no extra message reaches the client", async () => {
        send(
          rc,
          { _tag: "Parse", name: "", sql: `SELECT id, email, phone, score, profile FROM ${C} ORDER BY id`, paramTypes: [] },
          { _tag: "Bind", portal: "", statement: "", paramFormats: [], params: [], resultFormats: [] },
          { _tag: "Execute", portal: "", maxRows: 0 },
          { _tag: "Sync" }
        )
        const ms = await untilReady(rc)
        expect(tagsOf(ms)).toEqual(["ParseComplete", "BindComplete", "DataRow", "DataRow", "DataRow", "CommandComplete SELECT 3", "ReadyForQuery"])
        expect(rowsOf(ms)).toEqual([
          ["1", "****@example.com", "****4321", null, `"****"`],
          ["2", "****@corp.test", "****", null, `"****"`],
          ["3", "****@mail.org", "****0958", null, `"****"`]
        ])
        for (const s of SECRETS) expect(rc.received.includes(Buffer.from(s))).toBe(false)
      })

      it("a named statement parsed once, then bound and executed many times in binary, with row limits (PortalSuspended)", async () => {
        send(rc, { _tag: "Parse", name: "rq", sql: `SELECT id, email, ssn, score, profile FROM ${C} WHERE id >= $1 ORDER BY id`, paramTypes: [23] }, { _tag: "Sync" })
        expect(tagsOf(await untilReady(rc))).toEqual(["ParseComplete", "ReadyForQuery"])
        for (let round = 0; round < 3; round++) {
          send(
            rc,
            { _tag: "Bind", portal: "p", statement: "rq", paramFormats: [0], params: [Buffer.from("1")], resultFormats: [1] },
            { _tag: "Execute", portal: "p", maxRows: 1 },
            { _tag: "Execute", portal: "p", maxRows: 1 },
            { _tag: "Execute", portal: "p", maxRows: 0 },
            { _tag: "Sync" }
          )
          const ms = await untilReady(rc)
          expect(tagsOf(ms)).toEqual(["BindComplete", "DataRow", "PortalSuspended", "DataRow", "PortalSuspended", "DataRow", "CommandComplete SELECT 1", "ReadyForQuery"])
          const rows = ms.flatMap((m) => (m._tag === "DataRow" ? [m.values] : []))
          // binary: id is int4 (4 bytes, clear), text columns are their bytes, jsonb is version 1 + the JSON text
          expect(rows.map((v) => [Buffer.from(v[0]!).readInt32BE(0), ...v.slice(1).map((x) => (x === null ? null : Buffer.from(x).toString("utf8")))])).toEqual([
            [1, "****@example.com", "****", null, `\u0001"****"`],
            [2, "****@corp.test", "****", null, `\u0001"****"`],
            [3, "****@mail.org", "****", null, `\u0001"****"`]
          ])
        }
        for (const s of SECRETS) expect(rc.received.includes(Buffer.from(s))).toBe(false)
      })

      it("a client that describes the portal itself gets exactly one RowDescription", async () => {
        send(
          rc,
          { _tag: "Parse", name: "", sql: `SELECT email FROM ${C} WHERE id = 2`, paramTypes: [] },
          { _tag: "Bind", portal: "", statement: "", paramFormats: [], params: [], resultFormats: [] },
          { _tag: "Describe", kind: "P", name: "" },
          { _tag: "Execute", portal: "", maxRows: 0 },
          { _tag: "Sync" }
        )
        const ms = await untilReady(rc)
        expect(tagsOf(ms)).toEqual(["ParseComplete", "BindComplete", "RowDescription", "DataRow", "CommandComplete SELECT 1", "ReadyForQuery"])
        expect(rowsOf(ms)).toEqual([["****@corp.test"]])
      })
    })

    it("an exempt principal reads clear values, except the columns of a mask that does not exempt it", async () => {
      const other = await gatewayClient(gw, OTHER_TOKEN)
      try {
        const r = await other.query(`SELECT id, name, email, phone, ssn, profile, birth, score, notes FROM ${C} ORDER BY id`)
        expect(r.rows).toEqual(CLEAR.map((c) => ({ id: c.id, name: c.name, email: c.email, phone: c.phone, ssn: c.ssn, profile: c.profile, birth: null, score: null, notes: null })))
        // Computed columns are masked when the statement projects a column masked for this
        // principal: email is not, score is, and then every computed column goes.
        expect((await other.query(`SELECT upper(email) AS u FROM ${C} WHERE id = $1`, [1])).rows).toEqual([{ u: "ANN@EXAMPLE.COM" }])
        expect((await other.query(`SELECT upper(email) AS u, score + 1 AS s FROM ${C} WHERE id = $1`, [1])).rows).toEqual([{ u: "****", s: null }])
      } finally {
        await closeClient(other)
      }
      // and psql, simple protocol
      expect(await psqlRows(`SELECT email, phone FROM ${C} WHERE id = 2`, OTHER_TOKEN)).toEqual([["bob@corp.test", "555-0102"]])
    })

    describe("blocked where masking cannot follow; the session goes on", () => {
      it("COPY TO STDOUT of a masked table, or of a query reading one: 42501 naming the mask; an unmasked table's COPY runs", async () => {
        const script = [
          `COPY ${C} TO STDOUT;`,
          `COPY (SELECT email FROM ${C}) TO STDOUT;`,
          `COPY (SELECT id FROM ${C}) TO STDOUT;`,
          `COPY ${O} TO STDOUT;`,
          `SELECT email FROM ${C} WHERE id = 1;`
        ].join("\n")
        const r = await psqlVia(gw, ["-f", "-"], { input: script })
        expect(lines(r.stderr).filter((l) => l.startsWith("psql:"))).toEqual([
          `psql:<stdin>:1: ERROR:  42501: ${COPY_BLOCK}`,
          `psql:<stdin>:2: ERROR:  42501: ${COPY_BLOCK}`,
          `psql:<stdin>:3: ERROR:  42501: ${COPY_BLOCK}`
        ])
        expect(lines(r.stdout)).toEqual(["1\t1\t100", "2\t1\t250", "3\t3\t75", "****@example.com"])
        for (const s of SECRETS) expect(r.stdout + r.stderr).not.toContain(s)
      })

      it("DECLARE CURSOR inside a transaction: blocked; after ROLLBACK the session works", async () => {
        const c = await gatewayClient(gw)
        try {
          await c.query("BEGIN")
          const e = await rejection(c.query(`DECLARE cur CURSOR FOR SELECT email FROM ${C}`))
          expect([e.code, e.message]).toEqual(["42501", CURSOR_BLOCK])
          // the block was raised inside the transaction, which is now aborted, as after any error
          expect((await rejection(c.query("SELECT 1"))).code).toBe("25P02")
          await c.query("ROLLBACK")
          expect((await c.query(`SELECT email FROM ${C} WHERE id = 3`)).rows).toEqual([{ email: "****@mail.org" }])
          // a cursor over an unmasked table is fine
          await c.query("BEGIN")
          await c.query(`DECLARE cur2 CURSOR FOR SELECT total FROM ${O} ORDER BY id`)
          expect((await c.query("FETCH 2 FROM cur2")).rows).toEqual([{ total: 100 }, { total: 250 }])
          await c.query("COMMIT")
        } finally {
          await closeClient(c)
        }
      })

      it("writes that would store masked values, and any DDL while a mask is in force: blocked, nothing stored or created", async () => {
        const c = await gatewayClient(gw)
        const other = await gatewayClient(gw, OTHER_TOKEN)
        try {
          const blocked: Array<[pg.Client, string, string]> = [
            [c, `INSERT INTO ${OC} SELECT email FROM ${C}`, STORE_BLOCK("customer-email")],
            [c, `INSERT INTO ${OC} (v) SELECT upper(phone) FROM ${C} WHERE id = 1`, STORE_BLOCK("customer-phone")],
            [c, `SELECT email INTO sluice_mask_into FROM ${C}`, STORE_BLOCK("customer-email")],
            [c, `UPDATE ${OC} SET v = c.ssn FROM ${C} c`, STORE_BLOCK("customer-ids")],
            // the whole row carries the masked values too
            [c, `INSERT INTO ${OC} SELECT c::text FROM ${C} c`, STORE_BLOCK("customer-email")],
            // DDL is refused as DDL, naming the first mask in force, whatever it reads or stores
            [c, `CREATE TABLE sluice_mask_ctas AS SELECT email FROM ${C}`, DDL_BLOCK("customer-email")],
            [c, `CREATE VIEW sluice_mask_view AS SELECT email FROM ${C}`, DDL_BLOCK("customer-email")],
            [c, `ALTER TABLE ${C} RENAME COLUMN email TO sluice_mask_e`, DDL_BLOCK("customer-email")],
            [c, "CREATE TABLE sluice_mask_plain (x int)", DDL_BLOCK("customer-email")],
            [c, `DROP TABLE ${OC}`, DDL_BLOCK("customer-email")],
            // `other` is exempt from the first masks, not from customer-private: that one is named
            [other, "CREATE TABLE sluice_mask_plain (x int)", DDL_BLOCK("customer-private")],
            [other, `ALTER TABLE ${C} RENAME COLUMN notes TO sluice_mask_n`, DDL_BLOCK("customer-private")]
          ]
          const got: Array<[string, string | undefined, string]> = []
          for (const [client, sql] of blocked) {
            const e = await rejection(client.query(sql))
            got.push([sql, e.code, e.message])
            // the session still answers after each
            expect((await client.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }])
          }
          expect(got).toEqual(blocked.map(([, sql, message]) => [sql, "42501", message]))
        } finally {
          await closeClient(c)
          await closeClient(other)
        }
        // nothing renamed or dropped
        expect(await directQuery("superuser", `SELECT string_agg(attname, ',' ORDER BY attnum) AS cols FROM pg_attribute WHERE attrelid = '${C}'::regclass AND attnum > 0`)).toEqual([
          { cols: COLUMNS.replaceAll(" ", "") }
        ])
        expect(await directQuery("superuser", `SELECT count(*)::int AS n FROM ${OC}`)).toEqual([{ n: 0 }])
        expect(await directQuery("superuser", `SELECT ${CREATED.map((t) => `to_regclass('public.${t}')::text AS ${t}`).join(", ")}`)).toEqual([
          Object.fromEntries(CREATED.map((t) => [t, null]))
        ])
      })
    })

    it("a column the catalog does not know yet (added behind the gateway's back, within the cache's lifetime) is masked, never passed clear", async () => {
      const c = await gatewayClient(gw)
      try {
        // The first read asks the catalog, which remembers the table's columns for a while.
        expect((await c.query(`SELECT id, email FROM ${STALE}`)).rows).toEqual([{ id: 1, email: "****@example.com" }])
        // Directly on the server: the masked column's name moves to a new column (a new attnum).
        await directQuery(
          "backend",
          `ALTER TABLE ${STALE} RENAME COLUMN email TO email_old; ALTER TABLE ${STALE} ADD COLUMN email text; UPDATE ${STALE} SET email = email_old`
        )
        expect(await directQuery("superuser", `SELECT email FROM ${STALE}`)).toEqual([{ email: "stale@example.com" }])
        // The cached answer knows nothing of the new column: masked as unresolved (redact), not sent clear.
        expect((await c.query(`SELECT id, email FROM ${STALE}`)).rows).toEqual([{ id: 1, email: "****" }])
        expect((await c.query(`SELECT id, email FROM ${STALE} WHERE id = $1`, [1])).rows).toEqual([{ id: 1, email: "****" }])
      } finally {
        await closeClient(c)
      }
    })

    describe("writes that only filter on masked columns", () => {
      it("UPDATE ... WHERE email and DELETE ... WHERE email run; RETURNING a masked column is masked", async () => {
        const c = await gatewayClient(gw)
        try {
          expect((await c.query(`UPDATE ${C} SET name = 'Ann B' WHERE email = 'ann@example.com'`)).rowCount).toBe(1)
          expect((await c.query(`DELETE FROM ${O} WHERE customer_id IN (SELECT id FROM ${C} WHERE email = 'cy@mail.org')`)).rowCount).toBe(1)
          expect((await c.query(`DELETE FROM ${C} WHERE email = $1`, ["cy@mail.org"])).rowCount).toBe(1)
          expect((await c.query(`UPDATE ${C} SET name = name WHERE id = 1 RETURNING email, name`)).rows).toEqual([{ email: "****@example.com", name: "Ann B" }])
          expect((await c.query(`UPDATE ${C} SET phone = $1 WHERE id = $2 RETURNING id, phone`, ["+44 1234 5678", 2])).rows).toEqual([{ id: 2, phone: "****5678" }])
          expect((await c.query(`INSERT INTO ${C} (id, name, email, ssn) VALUES (4, 'Dee', 'dee@example.net', '999') RETURNING id, email, ssn`)).rows).toEqual([
            { id: 4, email: "****@example.net", ssn: "****" }
          ])
          expect((await c.query(`DELETE FROM ${C} WHERE id = 4 RETURNING email`)).rows).toEqual([{ email: "****@example.net" }])
        } finally {
          await closeClient(c)
        }
        expect(await directQuery("superuser", `SELECT id, name, email, phone FROM ${C} ORDER BY id`)).toEqual([
          { id: 1, name: "Ann B", email: "ann@example.com", phone: "+1 555 0101 4321" },
          { id: 2, name: "Bob", email: "bob@corp.test", phone: "+44 1234 5678" }
        ])
      })
    })

    describe("error texts of masked statements are withheld", () => {
      it("a unique violation through INSERT ... RETURNING: 23505, the withheld message, names kept, no value anywhere", async () => {
        const c = await gatewayClient(gw)
        try {
          const e = errorFields(await caught(c.query(`INSERT INTO ${C} (id, name, email) VALUES (9, 'Dup', 'ann@example.com') RETURNING id`)))
          expect(e).toMatchObject({ code: "23505", message: WITHHELD("23505"), schema: "public", table: C, constraint: `${C}_email_key` })
          expect(e).not.toHaveProperty("detail")
          for (const s of SECRETS) expect(JSON.stringify(e)).not.toContain(s)
          // the same through the extended protocol, the value a parameter
          const p = errorFields(await caught(c.query(`INSERT INTO ${C} (id, name, email) VALUES ($1, 'Dup', $2) RETURNING id`, [9, "bob@corp.test"])))
          expect(p).toMatchObject({ code: "23505", message: WITHHELD("23505"), constraint: `${C}_email_key` })
          for (const s of SECRETS) expect(JSON.stringify(p)).not.toContain(s)
          expect((await c.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }])
        } finally {
          await closeClient(c)
        }
        expect(await directQuery("superuser", `SELECT count(*)::int AS n FROM ${C}`)).toEqual([{ n: 3 }])
      })

      it("a failed cast of a masked value: 22P02 withheld, through psql and node-postgres", async () => {
        const r = await psql(`SELECT email::int FROM ${C} ORDER BY id`)
        expect(r.code).toBe(1)
        expect(lines(r.stderr)[0]).toBe(`ERROR:  22P02: ${WITHHELD("22P02")}`)
        for (const s of SECRETS) expect(r.stderr).not.toContain(s)
        const c = await gatewayClient(gw)
        try {
          const e = errorFields(await caught(c.query(`SELECT ssn::int FROM ${C} WHERE id = $1`, [1])))
          expect(e).toMatchObject({ code: "22P02", message: WITHHELD("22P02") })
          for (const s of SECRETS) expect(JSON.stringify(e)).not.toContain(s)
          expect((await c.query("SELECT 2 AS two")).rows).toEqual([{ two: 2 }])
        } finally {
          await closeClient(c)
        }
      })

      it("an error of an unmasked statement keeps its text", async () => {
        const r = await psql(`SELECT 'abc'::int`)
        expect(lines(r.stderr)[0]).toBe(`ERROR:  22P02: invalid input syntax for type integer: "abc"`)
      })
    })
  })

  describe("the audit trail", () => {
    const dir = mkdtempSync(join(tmpdir(), "sluice-mask-audit-"))
    const files = join(dir, "files")
    let gw: Gateway

    beforeAll(async () => {
      await resetRows()
      gw = await startGateway(
        (port) => ({ ...defaultConfig(port), audit: { spool: { directory: join(dir, "spool") }, files: { directory: files, maxFileAgeMs: 500 } } }),
        { ...POLICY, recording: { rows: 10 }, auditLiterals: "redact" }
      )
    })
    afterAll(async () => {
      await gw?.stop()
      rmSync(dir, { recursive: true, force: true })
    })

    it("Decision verdict mask, a MaskingSummary before the recorded rows and Result, masked values recorded, no clear value anywhere", async () => {
      const c = await gatewayClient(gw)
      const texts = {
        plain: `SELECT id, email, phone FROM ${C} ORDER BY id`,
        dup: `INSERT INTO ${C} (id, name, email) VALUES (9, 'Dup', 'ann@example.com') RETURNING id`,
        extended: `SELECT email, score FROM ${C} WHERE id = $1`,
        copy: `COPY ${C} TO STDOUT`,
        computed: `SELECT upper(email) AS u FROM ${C} ORDER BY id`,
        orders: `SELECT total FROM ${O} WHERE id = 1`
      }
      expect((await c.query(texts.plain)).rows).toEqual(MASKED.map((r) => ({ id: r.id, email: r.email, phone: r.phone })))
      expect((await rejection(c.query(texts.dup))).code).toBe("23505")
      expect((await c.query(texts.extended, [2])).rows).toEqual([{ email: "****@corp.test", score: null }])
      expect((await rejection(c.query(texts.copy))).code).toBe("42501")
      expect((await c.query(texts.computed)).rows).toEqual([{ u: "****" }, { u: "****" }, { u: "****" }])
      expect((await c.query(texts.orders)).rows).toEqual([{ total: 100 }])
      await c.end()

      const events = await audited(files, 1)
      const summary = summarize(events, { complete: true })
      expect(summary.problems).toEqual([])
      expect(summary.sessions.size).toBe(1)
      const session = [...summary.sessions.values()][0]!.events
      // No clear value of a masked column anywhere in the trail (the statements' literals are redacted).
      const json = JSON.stringify(session)
      for (const s of SECRETS) expect(json).not.toContain(s)
      expect(gw.logs()).not.toContain("ann@example.com")

      const statements = ofKind(session, "Statement")
      const idOf = (text: string) => {
        const s = statements.filter((e) => e.payload.text.replace(/\$\d+|'[^']*'|\b\d+\b/g, "?") === text.replace(/\$\d+|'[^']*'|\b\d+\b/g, "?"))
        expect(s.length, `one Statement for ${text}; got ${JSON.stringify(statements.map((e) => e.payload.text))}`).toBe(1)
        return s[0]!.payload.statementId
      }
      const id = Object.fromEntries(Object.entries(texts).map(([k, t]) => [k, idOf(t)])) as Record<keyof typeof texts, number>
      const of = (statementId: number) => session.filter((e) => "statementId" in e.payload && e.payload.statementId === statementId).map((e) => e.payload)

      const decision = (statementId: number) => ofKind(session, "Decision").find((e) => e.payload.statementId === statementId)!.payload
      expect([id.plain, id.dup, id.extended, id.computed, id.orders].map((s) => [decision(s).verdict, decision(s).ruleId])).toEqual([
        ["mask", "default:*"],
        ["mask", "default:*"],
        ["mask", "default:*"],
        ["mask", "default:*"],
        ["allow", "default:*"]
      ])
      expect([decision(id.copy).verdict, decision(id.copy).ruleId, decision(id.copy).reason]).toEqual(["block", "mask:customer-email", COPY_BLOCK])

      const plain = of(id.plain)
      expect(plain.map((p) => p._tag)).toEqual(["Statement", "Decision", "MaskingSummary", "RecordedRows", "Result"])
      expect(plain[2]).toEqual({
        _tag: "MaskingSummary",
        statementId: id.plain,
        columns: [
          { name: "email", source: `public.${C}.email`, maskId: "customer-email", method: "email", values: 3 },
          { name: "phone", source: `public.${C}.phone`, maskId: "customer-phone", method: "partial", values: 3 }
        ],
        rows: 3,
        messagesWithheld: 0
      })
      expect(plain[3]).toMatchObject({
        _tag: "RecordedRows",
        rows: [
          ["1", "****@example.com", "****4321"],
          ["2", "****@corp.test", "****"],
          ["3", "****@mail.org", "****0958"]
        ],
        truncated: false
      })
      expect(plain[4]).toMatchObject({ _tag: "Result", rows: 3, sqlstate: "00000", commandTag: "SELECT 3" })

      const dup = of(id.dup)
      expect(dup.map((p) => p._tag)).toEqual(["Statement", "Decision", "MaskingSummary", "Result"])
      expect(dup[2]).toEqual({ _tag: "MaskingSummary", statementId: id.dup, columns: [], rows: 0, messagesWithheld: 1 })
      expect(dup[3]).toMatchObject({ _tag: "Result", sqlstate: "23505" })

      const extended = of(id.extended)
      expect(extended.map((p) => p._tag)).toEqual(["Statement", "Decision", "MaskingSummary", "RecordedRows", "Result"])
      expect(extended[2]).toEqual({
        _tag: "MaskingSummary",
        statementId: id.extended,
        columns: [
          { name: "email", source: `public.${C}.email`, maskId: "customer-email", method: "email", values: 1 },
          { name: "score", source: `public.${C}.score`, maskId: "customer-private", method: "null", values: 1 }
        ],
        rows: 1,
        messagesWithheld: 0
      })
      expect(extended[3]).toMatchObject({ _tag: "RecordedRows", rows: [["****@corp.test", null]] })

      const computed = of(id.computed)
      expect(computed[2]).toEqual({
        _tag: "MaskingSummary",
        statementId: id.computed,
        columns: [{ name: "u", source: null, maskId: "computed", method: "redact", values: 3 }],
        rows: 3,
        messagesWithheld: 0
      })
      expect(computed[3]).toMatchObject({ _tag: "RecordedRows", rows: [["****"], ["****"], ["****"]] })

      // the unmasked statement: no summary
      expect(of(id.orders).map((p) => p._tag)).toEqual(["Statement", "Decision", "RecordedRows", "Result"])
    })

    it("a watched statement: a pipeline that outwits the name bookkeeping gets the real statement's columns masked (unresolved), verdict allow, a summary of maskId unresolved; its error text is kept", async () => {
      const rc = await RawClient.connect(gw.port)
      try {
        await rc.login("app", TOKEN)
        // In one write: the harmless Parse of s is skipped (the error before it), the masked one after the Sync is made,
        // and the Bind is judged by the harmless text before the server's answer frees the name.
        send(
          rc,
          { _tag: "Parse", name: "w_err", sql: `SELECT 1 FROM ${C}_nosuch`, paramTypes: [] },
          { _tag: "Parse", name: "w_s", sql: "SELECT 'a' AS email, 'b' AS ssn", paramTypes: [] },
          { _tag: "Sync" },
          { _tag: "Parse", name: "w_s", sql: `SELECT email, ssn FROM ${C} ORDER BY id`, paramTypes: [] },
          { _tag: "Sync" },
          { _tag: "Bind", portal: "", statement: "w_s", paramFormats: [], params: [], resultFormats: [] },
          { _tag: "Execute", portal: "", maxRows: 0 },
          { _tag: "Sync" }
        )
        const first = await untilReady(rc)
        // an unmasked statement's error is not withheld
        const err = first.find((m) => m._tag === "ErrorResponse")
        expect(JSON.stringify(err)).toContain(`relation \\"${C}_nosuch\\" does not exist`)
        const ms = [...(await untilReady(rc)), ...(await untilReady(rc))]
        expect(tagsOf(ms)).toEqual(["ParseComplete", "ReadyForQuery", "BindComplete", "DataRow", "DataRow", "DataRow", "CommandComplete SELECT 3", "ReadyForQuery"])
        // redact (unresolved), not the email mask's method: the statement Sluice judged names no table
        expect(rowsOf(ms)).toEqual([["****", "****"], ["****", "****"], ["****", "****"]])
        for (const s of SECRETS) expect(rc.received.includes(Buffer.from(s))).toBe(false)
      } finally {
        rc.close()
      }

      const events = await audited(files, 2)
      const session = [...summarize(events, { complete: true }).sessions.values()].map((s) => s.events).find((es) => ofKind(es, "Statement").some((e) => e.payload.text.includes("_nosuch")))!
      expect(JSON.stringify(session)).not.toContain("ann@example.com")
      const summaries = ofKind(session, "MaskingSummary")
      expect(summaries.length, "only the statement masking stepped in for has a summary").toBe(1)
      const summary = summaries[0]!.payload
      expect(summary.rows).toBe(3)
      expect(summary.columns.map((c) => [c.name, c.maskId, c.method, c.values])).toEqual([
        ["email", "unresolved", "redact", 3],
        ["ssn", "unresolved", "redact", 3]
      ])
      const decision = ofKind(session, "Decision").find((e) => e.payload.statementId === summary.statementId)!.payload
      expect(decision.verdict).toBe("allow")
      // The summary belongs to the harmless statement Sluice judged the Bind by; the masked Parse (made by the server,
      // taken by Sluice for one of a name in use) has the verdict mask but ran no portal of its own.
      const texts = new Map(ofKind(session, "Statement").map((e) => [e.payload.statementId, e.payload.text]))
      expect(ofKind(session, "Decision").map((e) => [texts.get(e.payload.statementId), e.payload.verdict, e.payload.statementId === summary.statementId])).toEqual([
        [`SELECT $1 FROM ${C}_nosuch`, "allow", false],
        ["SELECT $1 AS email, $2 AS ssn", "allow", true],
        [`SELECT email, ssn FROM ${C} ORDER BY id`, "mask", false]
      ])
    })
  })

  describe("statements Sluice cannot see into (the policy allows statements of unknown effect): refused while a mask is in force", () => {
    let gw: Gateway
    beforeAll(async () => {
      await resetRows()
      gw = await startGateway(undefined, { ...POLICY, rules: [{ id: "allow-unknown", match: { classes: ["unknown"] }, action: "allow" }] })
    })
    afterAll(async () => {
      await gw?.stop()
    })

    /** psql lines of a script's errors (verbose: SQLSTATE included), without LOCATION lines. */
    const scriptErrors = (stderr: string) => lines(stderr).filter((l) => l.startsWith("psql:"))

    it("a user-defined function's rows: 42501 naming the first mask in force, the session goes on, nothing clear", async () => {
      const script = [
        `SELECT * FROM ${FN}() ORDER BY id;`,
        // functional notation reads as a call of a user function too
        `SELECT email(c) FROM ${C} c;`,
        `SELECT email FROM ${C} WHERE id = 1;`,
        ""
      ].join("\n")
      const r = await psqlVia(gw, ["-f", "-"], { input: script })
      expect(scriptErrors(r.stderr)).toEqual([`psql:<stdin>:1: ERROR:  42501: ${UNKNOWN_BLOCK("customer-email")}`, `psql:<stdin>:2: ERROR:  42501: ${UNKNOWN_BLOCK("customer-email")}`])
      expect(lines(r.stdout)).toEqual(["****@example.com"])
      for (const s of SECRETS) expect(r.stdout + r.stderr).not.toContain(s)
      // `other` is bound by customer-private only: refused all the same, naming that mask
      const o = await psqlVia(gw, ["-c", `SELECT * FROM ${FN}() ORDER BY id`], { token: OTHER_TOKEN })
      expect(lines(o.stderr).filter((l) => l.startsWith("ERROR:"))).toEqual([`ERROR:  42501: ${UNKNOWN_BLOCK("customer-private")}`])
      expect(o.stdout).toBe("")
    })

    it("a DO block (one that would raise a notice quoting a masked value, or a harmless one): refused, no notice, the session goes on", async () => {
      const script = [`DO $$BEGIN RAISE NOTICE 'first: %', (SELECT email FROM ${C} ORDER BY id LIMIT 1); END$$;`, `DO $$BEGIN NULL; END$$;`, `SELECT 1 AS one;`, ""].join("\n")
      const r = await psqlVia(gw, ["-f", "-"], { input: script })
      expect(scriptErrors(r.stderr)).toEqual([`psql:<stdin>:1: ERROR:  42501: ${UNKNOWN_BLOCK("customer-email")}`, `psql:<stdin>:2: ERROR:  42501: ${UNKNOWN_BLOCK("customer-email")}`])
      expect(r.stderr).not.toContain("NOTICE")
      expect(lines(r.stdout)).toEqual(["1"])
      for (const s of SECRETS) expect(r.stderr).not.toContain(s)
    })

    it("FETCH from a cursor a DO block would open over the masked table: the DO is refused, and a FETCH of a cursor Sluice did not see declared too", async () => {
      const script = [
        `BEGIN;`,
        `DO $$DECLARE cur CURSOR FOR SELECT id, email FROM ${C} ORDER BY id; BEGIN OPEN cur; END$$;`,
        `FETCH ALL FROM cur;`,
        `ROLLBACK;`,
        `BEGIN;`,
        `FETCH ALL FROM cur;`,
        `ROLLBACK;`,
        `SELECT email FROM ${C} WHERE id = 3;`,
        ""
      ].join("\n")
      const r = await psqlVia(gw, ["-f", "-"], { input: script })
      expect(scriptErrors(r.stderr)).toEqual([
        `psql:<stdin>:2: ERROR:  42501: ${UNKNOWN_BLOCK("customer-email")}`,
        // the block was raised inside the transaction, which is now aborted
        `psql:<stdin>:3: ERROR:  25P02: current transaction is aborted, commands ignored until end of transaction block`,
        `psql:<stdin>:6: ERROR:  42501: ${UNSEEN_BLOCK("customer-email")}`
      ])
      // psql echoes the transaction commands' tags; no row came from a FETCH
      expect(lines(r.stdout)).toEqual(["BEGIN", "ROLLBACK", "BEGIN", "ROLLBACK", "****@mail.org"])
      for (const s of SECRETS) expect(r.stdout + r.stderr).not.toContain(s)
    })
  })

  describe("a policy reload adding a mask reaches live sessions", () => {
    let gw: Gateway
    beforeAll(async () => {
      await resetRows()
      gw = await startGateway(undefined, ALLOW)
    })
    afterAll(async () => {
      await gw?.stop()
    })

    const reloadTo = async (policy: object) => {
      const from = gw.logs().length
      gw.writePolicy(policy)
      await waitForLog(gw, /policy reloaded/, from)
    }

    it("the next statement is masked, a statement prepared before the reload too (its Bind is judged again), and clear again after the mask goes", async () => {
      const c = await gatewayClient(gw)
      const rc = await RawClient.connect(gw.port)
      try {
        await rc.login("app", TOKEN)
        const q1 = (id: number) => c.query({ name: "r1", text: `SELECT email, phone FROM ${C} WHERE id = $1`, values: [id] })
        expect((await q1(1)).rows).toEqual([{ email: "ann@example.com", phone: "+1 555 0101 4321" }])
        expect((await c.query(`SELECT email FROM ${C} WHERE id = 2`)).rows).toEqual([{ email: "bob@corp.test" }])
        // the raw client parses a named statement before the reload and never describes
        send(rc, { _tag: "Parse", name: "raw", sql: `SELECT email FROM ${C} WHERE id = 3`, paramTypes: [] }, { _tag: "Sync" })
        expect(tagsOf(await untilReady(rc))).toEqual(["ParseComplete", "ReadyForQuery"])
        const runRaw = async () => {
          send(
            rc,
            { _tag: "Bind", portal: "", statement: "raw", paramFormats: [], params: [], resultFormats: [] },
            { _tag: "Execute", portal: "", maxRows: 0 },
            { _tag: "Sync" }
          )
          const ms = await untilReady(rc)
          expect(tagsOf(ms)).toEqual(["BindComplete", "DataRow", "CommandComplete SELECT 1", "ReadyForQuery"])
          return rowsOf(ms)
        }
        expect(await runRaw()).toEqual([["cy@mail.org"]])

        await reloadTo(POLICY)
        expect((await c.query(`SELECT email FROM ${C} WHERE id = 2`)).rows).toEqual([{ email: "****@corp.test" }])
        // r1 was parsed under the old policy: node-postgres now sends only Bind, Describe, Execute
        expect((await q1(1)).rows).toEqual([{ email: "****@example.com", phone: "****4321" }])
        expect((await q1(3)).rows).toEqual([{ email: "****@mail.org", phone: "****0958" }])
        expect(await runRaw()).toEqual([["****@mail.org"]])

        await reloadTo(ALLOW)
        expect((await q1(2)).rows).toEqual([{ email: "bob@corp.test", phone: "555-0102" }])
        expect(await runRaw()).toEqual([["cy@mail.org"]])
        expect((await c.query(`SELECT email FROM ${C} WHERE id = 1`)).rows).toEqual([{ email: "ann@example.com" }])
      } finally {
        rc.close()
        await closeClient(c)
      }
    })

    // Known to fail (24977af): as above, FETCH is not re-judged against the cursor's query.
    it("FETCH from a cursor declared before the mask existed: blocked after the reload, as its DECLARE would be now", async () => {
      const c = await gatewayClient(gw)
      try {
        await c.query(`DECLARE held CURSOR WITH HOLD FOR SELECT id, email FROM ${C} ORDER BY id`)
        expect((await c.query("FETCH 1 FROM held")).rows).toEqual([{ id: 1, email: "ann@example.com" }])
        await reloadTo(POLICY)
        const refused = await rejection(c.query("FETCH ALL FROM held"))
        expect(refused.code).toBe("42501")
        expect(refused.message).toContain("a cursor would return masked columns")
        for (const s of SECRETS) expect(JSON.stringify(refused)).not.toContain(s)
        expect((await c.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }])
      } finally {
        await closeClient(c)
        await reloadTo(ALLOW)
      }
    })

    it("FETCH from a cursor a DO block opened before the mask existed: refused after the reload (Sluice never saw it declared)", async () => {
      const unknownAllowed = { id: "allow-unknown", match: { classes: ["unknown"] }, action: "allow" }
      await reloadTo({ ...ALLOW, rules: [unknownAllowed] })
      const c = await gatewayClient(gw)
      try {
        await c.query("BEGIN")
        // no mask yet: the DO runs, and opens a cursor Sluice cannot see
        await c.query(`DO $$DECLARE cur CURSOR FOR SELECT id, email FROM ${C} ORDER BY id; BEGIN OPEN cur; END$$`)
        expect((await c.query("FETCH 1 FROM cur")).rows).toEqual([{ id: 1, email: "ann@example.com" }])
        await reloadTo({ ...POLICY, rules: [unknownAllowed] })
        const refused = await rejection(c.query("FETCH ALL FROM cur"))
        expect([refused.code, refused.message]).toEqual(["42501", UNSEEN_BLOCK("customer-email")])
        for (const s of SECRETS) expect(JSON.stringify(refused)).not.toContain(s)
        await c.query("ROLLBACK")
        expect((await c.query(`SELECT email FROM ${C} WHERE id = 2`)).rows).toEqual([{ email: "****@corp.test" }])
      } finally {
        await closeClient(c)
        await reloadTo(ALLOW)
      }
    })
  })
})
