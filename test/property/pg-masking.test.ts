/**
 * Result masking without a socket: which statements are masked or refused, how each
 * result column is told (RowDescription origin, computed, unresolved), what the client
 * receives in the simple and the extended protocol, withheld error texts, and the
 * MaskingSummary the audit gets.
 */
import * as fc from "fast-check"
import { beforeAll, describe, expect, it } from "vitest"
import { type BackendMessage, decodeBackend, encodeBackend, type FieldDescription } from "../../src/codecs/pg/backend.ts"
import { encodeFrontend, type FrontendMessage } from "../../src/codecs/pg/frontend.ts"
import { loadClassifier, makeClassifier } from "../../src/rules/classify/index.ts"
import type { Mask, Policy } from "../../src/rules/policy/schema.ts"
import type { MaskingSummary } from "../../src/sinks/events.ts"
import type { CatalogRelation } from "../../src/streams/pg/catalog.ts"
import { resolveMasking } from "../../src/streams/pg/masking.ts"
import type { SessionState } from "../../src/streams/pg/session-state.ts"
import { allowedIn, classify, decide, observeBackend, route, type Routed } from "../../src/streams/pg/stages.ts"
import { frameOf, sessionState } from "./pg-session-fixture.ts"

let classifier: ReturnType<typeof makeClassifier>
beforeAll(async () => {
  await loadClassifier()
  classifier = makeClassifier({ cacheSize: 256 })
})

const CUSTOMERS = 16_500
const ORDERS = 16_600

/** What the catalog says: customers(id, name, email, phone), orders(id, total). */
const CATALOG: ReadonlyArray<CatalogRelation> = [
  { oid: CUSTOMERS, schema: "public", name: "customers", columns: new Map([[1, "id"], [2, "name"], [3, "email"], [4, "phone"]]) },
  { oid: ORDERS, schema: "public", name: "orders", columns: new Map([[1, "id"], [2, "total"]]) }
]

const MASKS: ReadonlyArray<Mask> = [
  { id: "contact", columns: ["public.customers.email"], method: "redact" },
  { id: "phone", columns: ["customers.phone"], method: "partial", keep: 2 }
]

const policy = (masks: ReadonlyArray<Mask> = MASKS, recordRows = 0): Policy => ({
  version: 1,
  defaults: { "*": { action: "allow" } },
  rules: [{ id: "anything", match: { classes: ["unknown"] }, action: "allow" }],
  masks,
  maxStatementBytes: 1 << 20,
  recording: { rows: recordRows, bytes: 65536 },
  auditTextBytes: 65536,
  auditLiterals: "keep"
})

const state = (p: Policy = policy()): SessionState => {
  const s = sessionState(p, (sql) => classifier.classify(sql))
  s.responses.recording = p.recording.rows > 0
  return s
}

/** One client message through the stages, with the catalog answering as CATALOG says (or not at all). */
const send = (s: SessionState, m: FrontendMessage, catalog: ReadonlyArray<CatalogRelation> | "unavailable" = CATALOG): Routed => {
  const d = decide(classify(frameOf(encodeFrontend(m)), s), s)
  if (d._tag === "Malformed") throw new Error(d.detail)
  const maskings =
    catalog === "unavailable"
      ? new Map()
      : new Map(
          allowedIn(d).flatMap((a) => {
            const need = a.masking
            // as the catalog answers: the relations the statement names
            return need === undefined ? [] : [[a, resolveMasking(need, catalog.filter((r) => need.relations.some((n) => n.name === r.name)))] as const]
          })
        )
  return route(d, s, maskings)
}

/** What the client receives for these server messages, decoded, and the events the tracker completed. */
const reply = (s: SessionState, messages: ReadonlyArray<BackendMessage>) => {
  const received: Array<BackendMessage> = []
  for (const m of messages) {
    const out = observeBackend(frameOf(encodeBackend(m)), s)
    if (out === undefined) continue
    const decoded = decodeBackend(frameOf(out))
    if (decoded._tag === "Failure") throw new Error("the client would get a frame that does not decode")
    received.push(decoded.success)
  }
  return { received, events: s.responses.takeResults() }
}

const field = (name: string, tableOid: number, columnAttr: number, typeOid = 25, format = 0): FieldDescription => ({
  name,
  tableOid,
  columnAttr,
  typeOid,
  typeSize: -1,
  typeModifier: -1,
  format
})
const text = (v: string) => Buffer.from(v, "utf8")
const rowsOf = (received: ReadonlyArray<BackendMessage>) =>
  received.flatMap((m) => (m._tag === "DataRow" ? [m.values.map((v) => (v === null ? null : Buffer.from(v).toString("utf8")))] : []))
const summaries = (events: ReadonlyArray<{ readonly _tag: string }>) => events.filter((e): e is MaskingSummary => e._tag === "MaskingSummary")

describe("which statements are masked", () => {
  const verdict = (sql: string, p: Policy = policy()) => {
    const s = state(p)
    const d = decide(classify(frameOf(encodeFrontend({ _tag: "Query", sql })), s), s)
    if (d._tag === "Block") return `block ${d.blocked.ruleId}`
    if (d._tag !== "Forward") return d._tag
    const masked = allowedIn(d).filter((a) => a.masking !== undefined)
    if (masked.length === 0) return "clear"
    return masked.map((a) => (a.masking!.masks.length === 0 ? "watched" : `mask ${a.masking!.masks.map((m) => m.id).join("+")}${a.masking!.computed ? " computed" : ""}`)).join("; ")
  }

  it.each([
    // while a mask is in force, a statement on other tables is watched: masked if the server runs something else
    ["SELECT id, name FROM orders", "watched"],
    ["SELECT id, email FROM customers", "mask contact+phone computed"],
    ["SELECT upper(email) FROM customers", "mask contact+phone computed"],
    ["SELECT count(*) FROM customers WHERE email LIKE '%x'", "mask contact+phone"],
    ["SELECT row_to_json(c) FROM customers c", "mask contact+phone computed"],
    ["SELECT length(name) FROM customers", "mask contact+phone"],
    ["UPDATE customers SET name = 'x' WHERE email = 'y' RETURNING email", "mask contact+phone computed"],
    ["UPDATE customers SET name = 'x' WHERE email = 'y'", "mask contact+phone"],
    ["DELETE FROM customers WHERE email = 'y'", "mask contact+phone"],
    ["COPY customers TO STDOUT", "block mask:contact"],
    ["COPY (SELECT name FROM customers) TO STDOUT", "block mask:contact"],
    ["DECLARE c CURSOR FOR SELECT name FROM customers", "block mask:contact"],
    ["INSERT INTO orders (id, total) SELECT id, email FROM customers", "block mask:contact"],
    ["CREATE TABLE leak AS SELECT phone FROM customers", "block mask:contact"],
    ["SELECT email INTO leak FROM customers", "block mask:contact"],
    ["CREATE VIEW v AS SELECT email FROM customers", "block mask:contact"],
    ["UPDATE orders o SET total = c.email FROM customers c WHERE c.id = o.id RETURNING c.email", "block mask:contact"],
    ["INSERT INTO orders (id, total) SELECT id, 0 FROM customers", "mask contact+phone"],
    ["SELECT email FROM customers FOR UPDATE", "mask contact+phone computed"],
    ["SELECT nextval('s'), email FROM customers", "block mask:contact"],
    ["SELECT set_config('a.b', email, false) FROM customers", "block mask:contact"],
    ["SELECT * FROM pg_stats WHERE tablename = 'customers'", "block mask:contact"],
    ["SELECT most_common_vals FROM pg_catalog.pg_stats", "block mask:contact"],
    ["DO $$ BEGIN RAISE NOTICE '%', (SELECT email FROM customers LIMIT 1); END $$", "block mask:contact"],
    ["SELECT public.lookup(id) FROM orders", "block mask:contact"],
    ["EXECUTE never_prepared", "block mask:contact"],
    ["SELECT 1 FROM customers WHERE pg_notify('c', email) IS NULL", "block mask:contact"],
    ["SELECT 1 FROM customers WHERE pg_advisory_lock(ascii(email)) IS NULL", "block mask:contact"],
    ["SELECT pg_read_binary_file('base/1/2')", "block mask:contact"],
    ["CREATE TABLE scratch (x text)", "block mask:contact"],
    ["ALTER TABLE customers RENAME COLUMN email TO e", "block mask:contact"],
    ["CREATE DOMAIN d AS text CHECK (set_config('a.b', VALUE, false) IS NOT NULL)", "block mask:contact"],
    ["SELECT nextval('s') FROM orders", "watched"],
    ["SELECT cursor_to_xml('c', 10, false, false, '')", "block mask:contact"]
  ])("%s → %s", (sql, expected) => {
    expect(verdict(sql)).toBe(expected)
  })

  it("a principal a mask exempts reads in clear; a mask on another schema does not apply", () => {
    expect(verdict("SELECT email FROM customers", policy([{ ...MASKS[0]!, exempt: { subjects: ["ci"] } }]))).toBe("clear")
    expect(verdict("SELECT email FROM customers", policy([{ id: "other", columns: ["crm.customers.email"], method: "redact" }]))).toBe("watched")
  })

  it("the function call protocol is blocked while a mask is in force: its answer is not rows", () => {
    const s = state()
    const d = decide(classify(frameOf(encodeFrontend({ _tag: "FunctionCall", functionOid: 1234, argFormats: [], args: [], resultFormat: 0 })), s), s)
    expect(d._tag === "Block" ? d.blocked.ruleId : d._tag).toBe("mask:contact")
    const open = state(policy([]))
    expect(decide(classify(frameOf(encodeFrontend({ _tag: "FunctionCall", functionOid: 1234, argFormats: [], args: [], resultFormat: 0 })), open), open)._tag).toBe("Forward")
  })

  it("a FETCH reads what its cursor's DECLARE reads; one from a cursor Sluice did not see declared is blocked", () => {
    let current: Policy = policy([])
    const s = sessionState(() => ({ policy: current, version: current.masks.length === 0 ? "open" : "masked" }), (sql) => classifier.classify(sql))
    const verdicts = (sql: string) => send(s, { _tag: "Query", sql }).audited.map((a) => `${a.verdict} ${a.ruleId}`)
    expect(verdicts("DECLARE early CURSOR WITH HOLD FOR SELECT email FROM customers")).toEqual(["allow default:*"])
    expect(verdicts("DECLARE plain CURSOR WITH HOLD FOR SELECT total FROM orders")).toEqual(["allow default:*"])
    current = policy()
    // declared before the mask: fetching it now would return clear values
    expect(verdicts("FETCH 10 FROM early")).toEqual(["block mask:contact"])
    expect(verdicts("FETCH 10 FROM plain")).toEqual(["allow default:*"])
    expect(verdicts("FETCH 10 FROM opened_elsewhere")).toEqual(["block mask:contact"])
    expect(verdicts("CLOSE plain")).toEqual(["allow default:*"])
    expect(verdicts("FETCH 10 FROM plain")).toEqual(["block mask:contact"])
    // code Sluice cannot see may open a cursor under any name: where it may run, no cursor is known after it
    current = policy([])
    expect(verdicts("DECLARE again CURSOR WITH HOLD FOR SELECT total FROM orders")).toEqual(["allow default:*"])
    expect(verdicts("DO $$ BEGIN PERFORM 1; END $$")).toEqual(["allow anything"])
    current = policy()
    expect(verdicts("FETCH 10 FROM again")).toEqual(["block mask:contact"])
  })

  it("prepared statements are known as the server knows them: a name in use is not replaced, a refused Parse frees its name, an unknown name is not bound", () => {
    const s = state()
    const executeBytes = (name: string) => {
      send(s, { _tag: "Bind", portal: "", statement: name, paramFormats: [], params: [], resultFormats: [] })
      return send(s, { _tag: "Execute", portal: "", maxRows: 0 }).bytes.map((b) => String.fromCharCode(b[0]!))
    }
    send(s, { _tag: "Parse", name: "s1", sql: "SELECT email FROM customers", paramTypes: [] })
    // the server refuses this one (42P05) and keeps the first
    send(s, { _tag: "Parse", name: "s1", sql: "SELECT total FROM orders", paramTypes: [] })
    expect(executeBytes("s1")).toEqual(["D", "E"])
    send(s, { _tag: "Sync" })
    reply(s, [
      { _tag: "ParseComplete" },
      { _tag: "ErrorResponse", fields: [["S", "ERROR"], ["C", "42P05"], ["M", 'prepared statement "s1" already exists']] },
      { _tag: "ReadyForQuery", status: "I" }
    ])
    // the refused Parse did not take the name from the first
    expect(executeBytes("s1")).toEqual(["D", "E"])
    send(s, { _tag: "Sync" })
    const rows = reply(s, [
      { _tag: "BindComplete" },
      { _tag: "RowDescription", fields: [field("email", CUSTOMERS, 3)] },
      { _tag: "DataRow", values: [text("ann@example.com")] },
      { _tag: "CommandComplete", tag: "SELECT 1" },
      { _tag: "ReadyForQuery", status: "I" }
    ])
    expect(rowsOf(rows.received)).toEqual([["****"]])

    // a Parse the server refuses frees its name: the next Parse of it is the statement
    send(s, { _tag: "Parse", name: "s2", sql: "SELECT nosuchcolumn FROM orders", paramTypes: [] })
    send(s, { _tag: "Sync" })
    reply(s, [{ _tag: "ErrorResponse", fields: [["S", "ERROR"], ["C", "42703"], ["M", "column does not exist"]] }, { _tag: "ReadyForQuery", status: "I" }])
    send(s, { _tag: "Parse", name: "s2", sql: "SELECT email FROM customers", paramTypes: [] })
    expect(executeBytes("s2")).toEqual(["D", "E"])

    // an empty statement (a driver's ping) is known as parsed
    send(s, { _tag: "Parse", name: "ping", sql: "", paramTypes: [] })
    expect(send(s, { _tag: "Bind", portal: "", statement: "ping", paramFormats: [], params: [], resultFormats: [] }).bytes.map((b) => String.fromCharCode(b[0]!))).toEqual(["B"])

    // a name Sluice never saw prepared, or one a DEALLOCATE may have removed, is not bound while a mask is in force
    const unknown = decide(classify(frameOf(encodeFrontend({ _tag: "Bind", portal: "", statement: "nosuch", paramFormats: [], params: [], resultFormats: [] })), s), s)
    expect(unknown._tag === "Block" ? unknown.blocked.ruleId : unknown._tag).toBe("mask:contact")
  })

  it("a Parse the server skips after an error frees its name, named or unnamed", () => {
    const s = state()
    send(s, { _tag: "Parse", name: "bad", sql: "SELECT nosuchcolumn FROM orders", paramTypes: [] })
    send(s, { _tag: "Parse", name: "s", sql: "SELECT total FROM orders", paramTypes: [] })
    send(s, { _tag: "Parse", name: "", sql: "SELECT total FROM orders", paramTypes: [] })
    send(s, { _tag: "Sync" })
    reply(s, [{ _tag: "ErrorResponse", fields: [["S", "ERROR"], ["C", "42703"], ["M", "column does not exist"]] }, { _tag: "ReadyForQuery", status: "I" }])
    // the server never made "s": this Parse is the statement the name runs
    send(s, { _tag: "Parse", name: "s", sql: "SELECT email FROM customers", paramTypes: [] })
    send(s, { _tag: "Bind", portal: "", statement: "s", paramFormats: [], params: [], resultFormats: [] })
    expect(send(s, { _tag: "Execute", portal: "", maxRows: 0 }).bytes.map((b) => String.fromCharCode(b[0]!))).toEqual(["D", "E"])
    // and the unnamed statement the server still has is not the skipped one: unknown, so not bound
    const unnamed = decide(classify(frameOf(encodeFrontend({ _tag: "Bind", portal: "", statement: "", paramFormats: [], params: [], resultFormats: [] })), s), s)
    expect(unnamed._tag === "Block" ? unnamed.blocked.ruleId : unnamed._tag).toBe("mask:contact")
  })

  it("SQL FETCH from a name a protocol Bind made a portal is blocked while a mask is in force, whatever was declared under it", () => {
    const s = state()
    send(s, { _tag: "Query", sql: "DECLARE c CURSOR WITH HOLD FOR SELECT total FROM orders" })
    send(s, { _tag: "Parse", name: "m", sql: "SELECT email FROM customers", paramTypes: [] })
    send(s, { _tag: "Bind", portal: "c", statement: "m", paramFormats: [], params: [], resultFormats: [] })
    const r = send(s, { _tag: "Query", sql: "FETCH ALL FROM c" })
    expect(r.audited.map((a) => `${a.verdict} ${a.ruleId}`)).toEqual(["block mask:contact"])
    send(s, { _tag: "Query", sql: "DECLARE c CURSOR WITH HOLD FOR SELECT total FROM orders" })
    expect(send(s, { _tag: "Query", sql: "FETCH ALL FROM c" }).audited.map((a) => a.verdict)).toEqual(["block"])
    // names count as PostgreSQL cuts them, at 63 bytes
    const long = `c${"x".repeat(69)}`
    send(s, { _tag: "Query", sql: `DECLARE ${long} CURSOR WITH HOLD FOR SELECT total FROM orders` })
    send(s, { _tag: "Bind", portal: long, statement: "m", paramFormats: [], params: [], resultFormats: [] })
    expect(send(s, { _tag: "Query", sql: `FETCH ALL FROM ${long}` }).audited.map((a) => a.verdict)).toEqual(["block"])
  })

  it("a SQL-level PREPARE of a name in use leaves the name unknown: its EXECUTE is blocked while a mask is in force", () => {
    const s = state()
    const verdicts = (sql: string) => send(s, { _tag: "Query", sql }).audited.map((a) => `${a.verdict} ${a.ruleId}`)
    verdicts("PREPARE p AS SELECT email FROM customers")
    verdicts("PREPARE p AS SELECT total FROM orders")
    expect(verdicts("EXECUTE p")).toEqual(["block mask:contact"])
  })

  it("EXECUTE of a SQL-level prepared statement is masked by its body", () => {
    const s = state()
    send(s, { _tag: "Query", sql: "PREPARE p AS SELECT email FROM customers" })
    const r = send(s, { _tag: "Query", sql: "EXECUTE p" })
    expect(r.audited.map((a) => a.verdict)).toEqual(["mask"])
  })
})

describe("masking results", () => {
  const CUSTOMER_FIELDS = [field("id", CUSTOMERS, 1, 23), field("email", CUSTOMERS, 3), field("phone", CUSTOMERS, 4), field("u", 0, 0)]

  it("simple query: origin columns by their mask, computed ones redacted, other columns untouched; a summary before the Result", () => {
    const s = state()
    const r = send(s, { _tag: "Query", sql: "SELECT id, email, phone, upper(email) AS u FROM customers" })
    expect(r.audited.map((a) => a.verdict)).toEqual(["mask"])
    const { received, events } = reply(s, [
      { _tag: "RowDescription", fields: CUSTOMER_FIELDS },
      { _tag: "DataRow", values: [text("1"), text("ann@example.com"), text("+44 20 7946 0001"), text("ANN@EXAMPLE.COM")] },
      { _tag: "DataRow", values: [text("2"), null, text("12"), null] },
      { _tag: "CommandComplete", tag: "SELECT 2" },
      { _tag: "ReadyForQuery", status: "I" }
    ])
    expect(rowsOf(received)).toEqual([
      ["1", "****", "****01", "****"],
      ["2", null, "****", null]
    ])
    expect(events.map((e) => e._tag)).toEqual(["MaskingSummary", "Result"])
    expect(summaries(events)[0]).toEqual({
      _tag: "MaskingSummary",
      statementId: 0,
      columns: [
        { name: "email", source: "public.customers.email", maskId: "contact", method: "redact", values: 1 },
        { name: "phone", source: "public.customers.phone", maskId: "phone", method: "partial", values: 2 },
        { name: "u", source: null, maskId: "computed", method: "redact", values: 1 }
      ],
      rows: 2,
      messagesWithheld: 0
    })
  })

  it("a column from a table the catalog did not name for the statement is masked; so is every column without a catalog", () => {
    const s = state()
    send(s, { _tag: "Query", sql: "SELECT c.name, o.total FROM customers c JOIN orders o ON o.id = c.id" })
    const fields = [field("name", CUSTOMERS, 2), field("total", 99_999, 2)]
    const { received } = reply(s, [
      { _tag: "RowDescription", fields },
      { _tag: "DataRow", values: [text("ann"), text("12.50")] },
      { _tag: "CommandComplete", tag: "SELECT 1" },
      { _tag: "ReadyForQuery", status: "I" }
    ])
    expect(rowsOf(received)).toEqual([["ann", "****"]])

    const blind = state()
    send(blind, { _tag: "Query", sql: "SELECT c.name FROM customers c" }, "unavailable")
    const out = reply(blind, [
      { _tag: "RowDescription", fields: [field("name", CUSTOMERS, 2)] },
      { _tag: "DataRow", values: [text("ann")] },
      { _tag: "CommandComplete", tag: "SELECT 1" },
      { _tag: "ReadyForQuery", status: "I" }
    ])
    expect(rowsOf(out.received)).toEqual([["****"]])
    expect(summaries(out.events)[0]!.columns.map((c) => c.maskId)).toEqual(["unresolved"])
  })

  it("extended protocol: a Describe of the portal goes before each Execute, its answer is the gateway's alone, and rows are masked by it", () => {
    const s = state()
    send(s, { _tag: "Parse", name: "q", sql: "SELECT id, email FROM customers WHERE id = $1", paramTypes: [] })
    send(s, { _tag: "Bind", portal: "", statement: "q", paramFormats: [], params: [text("1")], resultFormats: [] })
    const execute = send(s, { _tag: "Execute", portal: "", maxRows: 0 })
    expect(execute.bytes.map((b) => String.fromCharCode(b[0]!))).toEqual(["D", "E"])
    send(s, { _tag: "Sync" })
    const { received, events } = reply(s, [
      { _tag: "ParseComplete" },
      { _tag: "BindComplete" },
      { _tag: "RowDescription", fields: [field("id", CUSTOMERS, 1, 23), field("email", CUSTOMERS, 3)] },
      { _tag: "DataRow", values: [text("1"), text("ann@example.com")] },
      { _tag: "CommandComplete", tag: "SELECT 1" },
      { _tag: "ReadyForQuery", status: "I" }
    ])
    expect(received.map((m) => m._tag)).toEqual(["ParseComplete", "BindComplete", "DataRow", "CommandComplete", "ReadyForQuery"])
    expect(rowsOf(received)).toEqual([["1", "****"]])
    expect(summaries(events)[0]!.columns.map((c) => [c.name, c.values])).toEqual([["email", 1]])
  })

  it("without masks nothing is described again; while a mask is in force every portal is, and a column from a table its statement does not name is masked", () => {
    const open = state(policy([]))
    send(open, { _tag: "Parse", name: "", sql: "SELECT total FROM orders", paramTypes: [] })
    send(open, { _tag: "Bind", portal: "", statement: "", paramFormats: [], params: [], resultFormats: [] })
    expect(send(open, { _tag: "Execute", portal: "", maxRows: 0 }).bytes.map((b) => String.fromCharCode(b[0]!))).toEqual(["E"])

    const s = state()
    send(s, { _tag: "Parse", name: "", sql: "SELECT total FROM orders", paramTypes: [] })
    send(s, { _tag: "Bind", portal: "", statement: "", paramFormats: [], params: [], resultFormats: [] })
    expect(send(s, { _tag: "Execute", portal: "", maxRows: 0 }).bytes.map((b) => String.fromCharCode(b[0]!))).toEqual(["D", "E"])
    send(s, { _tag: "Sync" })
    // the server runs something else than Sluice took the statement for: its email column is masked, unresolved
    const { received, events } = reply(s, [
      { _tag: "ParseComplete" },
      { _tag: "BindComplete" },
      { _tag: "RowDescription", fields: [field("total", ORDERS, 2), field("email", CUSTOMERS, 3)] },
      { _tag: "DataRow", values: [text("12.50"), text("ann@example.com")] },
      { _tag: "CommandComplete", tag: "SELECT 1" },
      { _tag: "ReadyForQuery", status: "I" }
    ])
    expect(rowsOf(received)).toEqual([["12.50", "****"]])
    expect(summaries(events)[0]!.columns.map((c) => c.maskId)).toEqual(["unresolved"])
    // a watched statement that needed no masking is not summarised, and its error texts pass
    send(s, { _tag: "Query", sql: "SELECT total FROM orders" })
    const quiet = reply(s, [
      { _tag: "RowDescription", fields: [field("total", ORDERS, 2)] },
      { _tag: "DataRow", values: [text("12.50")] },
      { _tag: "ErrorResponse", fields: [["S", "ERROR"], ["C", "22012"], ["M", "division by zero"]] },
      { _tag: "ReadyForQuery", status: "I" }
    ])
    expect(quiet.events.map((e) => e._tag)).toEqual(["Result"])
    expect(quiet.received.find((m) => m._tag === "ErrorResponse")).toEqual({ _tag: "ErrorResponse", fields: [["S", "ERROR"], ["C", "22012"], ["M", "division by zero"]] })
  })

  it("error and notice texts of a masked statement are withheld; SQLSTATE and names remain", () => {
    const s = state()
    send(s, { _tag: "Query", sql: "UPDATE customers SET name = 'x' WHERE id = 1 RETURNING email" })
    const { received, events } = reply(s, [
      { _tag: "NoticeResponse", fields: [["S", "NOTICE"], ["C", "00000"], ["M", "saw ann@example.com"]] },
      {
        _tag: "ErrorResponse",
        fields: [["S", "ERROR"], ["C", "23505"], ["M", "duplicate key value violates unique constraint"], ["D", "Key (email)=(ann@example.com) already exists."], ["t", "customers"], ["n", "customers_email_key"]]
      },
      { _tag: "ReadyForQuery", status: "I" }
    ])
    const texts = JSON.stringify(received)
    expect(texts).not.toContain("ann@example.com")
    const error = received.find((m) => m._tag === "ErrorResponse")
    expect(error).toEqual({
      _tag: "ErrorResponse",
      fields: [["S", "ERROR"], ["C", "23505"], ["t", "customers"], ["n", "customers_email_key"], ["M", "message withheld: the statement reads masked columns (SQLSTATE 23505)"]]
    })
    expect(summaries(events)[0]!.messagesWithheld).toBe(2)
  })

  it("session recording holds the masked values", () => {
    const s = state(policy(MASKS, 10))
    send(s, { _tag: "Query", sql: "SELECT email FROM customers" })
    const { events } = reply(s, [
      { _tag: "RowDescription", fields: [field("email", CUSTOMERS, 3)] },
      { _tag: "DataRow", values: [text("ann@example.com")] },
      { _tag: "CommandComplete", tag: "SELECT 1" },
      { _tag: "ReadyForQuery", status: "I" }
    ])
    expect(events.map((e) => e._tag)).toEqual(["MaskingSummary", "RecordedRows", "Result"])
    expect(JSON.stringify(events)).not.toContain("ann@example.com")
    expect(events[1]).toMatchObject({ rows: [["****"]] })
  })

  it("property: whatever the rows, a masked column never reaches the client as it was, and other columns always do", () => {
    const value = fc.option(fc.string({ minLength: 0, maxLength: 40 }), { nil: null })
    fc.assert(
      fc.property(fc.array(fc.tuple(value, value, value), { maxLength: 20 }), (rows) => {
        const s = state()
        send(s, { _tag: "Query", sql: "SELECT name, email, upper(email) AS u FROM customers" })
        const { received, events } = reply(s, [
          { _tag: "RowDescription", fields: [field("name", CUSTOMERS, 2), field("email", CUSTOMERS, 3), field("u", 0, 0)] },
          ...rows.map((r): BackendMessage => ({ _tag: "DataRow", values: r.map((v) => (v === null ? null : text(v))) })),
          { _tag: "CommandComplete", tag: `SELECT ${rows.length}` },
          { _tag: "ReadyForQuery", status: "I" }
        ])
        const out = rowsOf(received)
        expect(out.map((r) => r[0])).toEqual(rows.map((r) => r[0]))
        out.forEach((r, i) => {
          for (const c of [1, 2]) expect(r[c]).toBe(rows[i]![c] === null ? null : "****")
        })
        const masked = summaries(events)[0]!
        expect(masked.columns.map((c) => c.values)).toEqual([1, 2].map((c) => rows.filter((r) => r[c] !== null).length))
      })
    )
  })
})
