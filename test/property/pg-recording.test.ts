/**
 * Session recording without a socket: which rows of a result are captured, under which
 * caps, with which column names and formats, in the simple and the extended protocol.
 */
import * as fc from "fast-check"
import { beforeAll, describe, expect, it } from "vitest"
import { type BackendMessage, encodeBackend, type FieldDescription } from "../../src/codecs/pg/backend.ts"
import { loadClassifier, makeClassifier } from "../../src/rules/classify/index.ts"
import { recordsResults } from "../../src/rules/policy/evaluate.ts"
import type { Policy, Recording } from "../../src/rules/policy/schema.ts"
import type { MaskingSummary, RecordedRows, Result } from "../../src/sinks/events.ts"
import type { SessionState } from "../../src/streams/pg/session-state.ts"
import { observeBackend } from "../../src/streams/pg/stages.ts"
import { frameOf, send, sessionState } from "./pg-session-fixture.ts"

let classifier: ReturnType<typeof makeClassifier>
beforeAll(async () => {
  await loadClassifier()
  classifier = makeClassifier({ cacheSize: 100 })
})

const OFF: Recording = { rows: 0, bytes: 65536 }

const policy = (recording: Recording, rules: Policy["rules"] = []): Policy => ({
  version: 1,
  defaults: { "*": { action: "allow" } },
  rules,
  masks: [],
  maxStatementBytes: 1 << 20,
  recording,
  auditTextBytes: 65536,
  auditLiterals: "keep"
})

const state = (p: Policy): SessionState => {
  const s = sessionState(p, (sql) => classifier.classify(sql))
  // as the relay does for every batch from the client
  s.responses.recording = recordsResults(p)
  return s
}

const column = (name: string, typeOid = 25, format = 0): FieldDescription => ({ name, tableOid: 0, columnAttr: 0, typeOid, typeSize: -1, typeModifier: -1, format })

const reply = (s: SessionState, messages: ReadonlyArray<BackendMessage>): ReadonlyArray<Result | RecordedRows | MaskingSummary> => {
  for (const m of messages) observeBackend(frameOf(encodeBackend(m)), s)
  return s.responses.takeResults()
}

const text = (v: string) => Buffer.from(v, "utf8")
const recorded = (events: ReadonlyArray<Result | RecordedRows | MaskingSummary>) => events.filter((e): e is RecordedRows => e._tag === "RecordedRows")

describe("session recording", () => {
  it("captures a simple query's rows, named by its RowDescription, before the statement's Result", () => {
    const s = state(policy({ rows: 10, bytes: 1000 }))
    send(s, { _tag: "Query", sql: "SELECT id, email FROM users; SELECT 1 AS one" })
    const events = reply(s, [
      { _tag: "RowDescription", fields: [column("id", 23), column("email")] },
      { _tag: "DataRow", values: [text("1"), text("a@example.com")] },
      { _tag: "DataRow", values: [text("2"), null] },
      { _tag: "CommandComplete", tag: "SELECT 2" },
      { _tag: "RowDescription", fields: [column("one", 23)] },
      { _tag: "DataRow", values: [text("1")] },
      { _tag: "CommandComplete", tag: "SELECT 1" },
      { _tag: "ReadyForQuery", status: "I" }
    ])
    expect(events.map((e) => [e._tag, e.statementId])).toEqual([
      ["RecordedRows", 0],
      ["Result", 0],
      ["RecordedRows", 1],
      ["Result", 1]
    ])
    expect(events[0]).toEqual({
      _tag: "RecordedRows",
      statementId: 0,
      columns: [
        { name: "id", typeOid: 23, binary: false },
        { name: "email", typeOid: 25, binary: false }
      ],
      rows: [
        ["1", "a@example.com"],
        ["2", null]
      ],
      truncated: false
    })
    expect(recorded(events)[1]!.rows).toEqual([["1"]])
  })

  it("records nothing when neither the policy nor the deciding rule asks, and a rule's caps override the policy's", () => {
    const quiet = state(policy(OFF))
    send(quiet, { _tag: "Query", sql: "SELECT 1" })
    const none = reply(quiet, [
      { _tag: "RowDescription", fields: [column("x")] },
      { _tag: "DataRow", values: [text("1")] },
      { _tag: "CommandComplete", tag: "SELECT 1" },
      { _tag: "ReadyForQuery", status: "I" }
    ])
    expect(none.map((e) => e._tag)).toEqual(["Result"])

    const rules: Policy["rules"] = [
      { id: "quiet-reads", match: { relations: ["audit_log"] }, action: "allow", record: OFF },
      { id: "one-row", match: { relations: ["users"] }, action: "allow", record: { rows: 1, bytes: 1000 } }
    ]
    const s = state(policy({ rows: 5, bytes: 1000 }, rules))
    send(s, { _tag: "Query", sql: "SELECT * FROM audit_log; SELECT * FROM users; SELECT * FROM orders" })
    const rowsOf = (n: number): Array<BackendMessage> => [
      { _tag: "RowDescription", fields: [column("v")] },
      ...Array.from({ length: n }, (_, i): BackendMessage => ({ _tag: "DataRow", values: [text(String(i))] })),
      { _tag: "CommandComplete", tag: `SELECT ${n}` }
    ]
    const events = reply(s, [...rowsOf(3), ...rowsOf(3), ...rowsOf(3), { _tag: "ReadyForQuery", status: "I" }])
    expect(recorded(events).map((r) => [r.statementId, r.rows.length, r.truncated])).toEqual([
      [1, 1, true],
      [2, 3, false]
    ])
    // the Result still counts every row
    expect(events.filter((e) => e._tag === "Result").map((e) => (e as Result).rows)).toEqual([3, 3, 3])
  })

  it("extended protocol: columns from Describe of the statement, formats from Bind; later executions record again", () => {
    const s = state(policy({ rows: 10, bytes: 1000 }))
    send(s, { _tag: "Parse", name: "q", sql: "SELECT id, photo FROM users WHERE id = $1", paramTypes: [] })
    send(s, { _tag: "Describe", kind: "S", name: "q" })
    send(s, { _tag: "Sync" })
    reply(s, [
      { _tag: "ParseComplete" },
      { _tag: "ParameterDescription", typeOids: [23] },
      { _tag: "RowDescription", fields: [column("id", 23), column("photo", 17)] },
      { _tag: "ReadyForQuery", status: "I" }
    ])
    for (const id of [7, 8]) {
      // text for id, binary for photo
      send(s, { _tag: "Bind", portal: "", statement: "q", paramFormats: [], params: [text(String(id))], resultFormats: [0, 1] })
      send(s, { _tag: "Execute", portal: "", maxRows: 0 })
      send(s, { _tag: "Sync" })
      const events = reply(s, [
        { _tag: "BindComplete" },
        { _tag: "DataRow", values: [text(String(id)), Buffer.from([0xff, 0x00, id])] },
        { _tag: "CommandComplete", tag: "SELECT 1" },
        { _tag: "ReadyForQuery", status: "I" }
      ])
      expect(events[0]).toEqual({
        _tag: "RecordedRows",
        statementId: 0,
        columns: [
          { name: "id", typeOid: 23, binary: false },
          { name: "photo", typeOid: 17, binary: true }
        ],
        rows: [[String(id), Buffer.from([0xff, 0x00, id])]],
        truncated: false
      })
      expect(events[1]).toMatchObject({ _tag: "Result", statementId: 0, rows: 1 })
    }
  })

  it("extended protocol: columns and formats from Describe of the portal (how libpq and node-postgres run a query)", () => {
    const s = state(policy({ rows: 10, bytes: 1000 }))
    send(s, { _tag: "Parse", name: "", sql: "SELECT n FROM generate_series(1, 2) n", paramTypes: [] })
    send(s, { _tag: "Bind", portal: "", statement: "", paramFormats: [], params: [], resultFormats: [1] })
    send(s, { _tag: "Describe", kind: "P", name: "" })
    send(s, { _tag: "Execute", portal: "", maxRows: 0 })
    send(s, { _tag: "Sync" })
    const events = reply(s, [
      { _tag: "ParseComplete" },
      { _tag: "BindComplete" },
      { _tag: "RowDescription", fields: [column("n", 23, 1)] },
      { _tag: "DataRow", values: [Buffer.from([0, 0, 0, 1])] },
      { _tag: "DataRow", values: [Buffer.from([0, 0, 0, 2])] },
      { _tag: "CommandComplete", tag: "SELECT 2" },
      { _tag: "ReadyForQuery", status: "I" }
    ])
    expect(recorded(events)).toEqual([
      {
        _tag: "RecordedRows",
        statementId: 0,
        columns: [{ name: "n", typeOid: 23, binary: true }],
        rows: [[Buffer.from([0, 0, 0, 1])], [Buffer.from([0, 0, 0, 2])]],
        truncated: false
      }
    ])
  })

  it("rows of a statement described before recording was on are kept as unnamed bytes, never mislabelled", () => {
    const p = policy({ rows: 10, bytes: 1000 })
    const s = state(p)
    s.responses.recording = false
    send(s, { _tag: "Parse", name: "q", sql: "SELECT 'x' AS a", paramTypes: [] })
    send(s, { _tag: "Describe", kind: "S", name: "q" })
    send(s, { _tag: "Sync" })
    reply(s, [{ _tag: "ParseComplete" }, { _tag: "ParameterDescription", typeOids: [] }, { _tag: "RowDescription", fields: [column("a")] }, { _tag: "ReadyForQuery", status: "I" }])
    s.responses.recording = true
    send(s, { _tag: "Bind", portal: "", statement: "q", paramFormats: [], params: [], resultFormats: [] })
    send(s, { _tag: "Execute", portal: "", maxRows: 0 })
    send(s, { _tag: "Sync" })
    const events = reply(s, [{ _tag: "BindComplete" }, { _tag: "DataRow", values: [text("x")] }, { _tag: "CommandComplete", tag: "SELECT 1" }, { _tag: "ReadyForQuery", status: "I" }])
    expect(recorded(events)).toEqual([{ _tag: "RecordedRows", statementId: 0, columns: [], rows: [[Buffer.from("x")]], truncated: false }])
  })

  it("a portal read in chunks (Execute with a row limit) shares one set of caps across its chunks", () => {
    const s = state(policy({ rows: 3, bytes: 1000 }))
    send(s, { _tag: "Parse", name: "", sql: "SELECT n FROM generate_series(1, 5) n", paramTypes: [] })
    send(s, { _tag: "Bind", portal: "c", statement: "", paramFormats: [], params: [], resultFormats: [] })
    send(s, { _tag: "Describe", kind: "P", name: "c" })
    send(s, { _tag: "Execute", portal: "c", maxRows: 2 })
    send(s, { _tag: "Execute", portal: "c", maxRows: 2 })
    send(s, { _tag: "Execute", portal: "c", maxRows: 2 })
    send(s, { _tag: "Sync" })
    const row = (n: number): BackendMessage => ({ _tag: "DataRow", values: [text(String(n))] })
    const events = reply(s, [
      { _tag: "ParseComplete" },
      { _tag: "BindComplete" },
      { _tag: "RowDescription", fields: [column("n", 23)] },
      row(1),
      row(2),
      { _tag: "PortalSuspended" },
      row(3),
      row(4),
      { _tag: "PortalSuspended" },
      row(5),
      { _tag: "CommandComplete", tag: "SELECT 1" },
      { _tag: "ReadyForQuery", status: "I" }
    ])
    // three rows in all, the cap, across the chunks; the third chunk records nothing
    expect(recorded(events).map((r) => [r.rows, r.truncated])).toEqual([
      [[["1"], ["2"]], false],
      [[["3"]], true]
    ])
    expect(events.filter((e) => e._tag === "Result").length).toBe(3)
  })

  it("after a server error the rest of the client's pipeline is skipped, even if it arrives later: the next round's rows go to the next statement", () => {
    const rules: Policy["rules"] = [{ id: "record-public", match: { relations: ["public_items"] }, action: "allow", record: { rows: 10, bytes: 1000 } }]
    const s = state(policy(OFF, rules))
    // the client's first message reaches the server, which fails it, before the rest was sent
    send(s, { _tag: "Parse", name: "", sql: "SELECT * FROM public_items WHERE no_such_column = 1", paramTypes: [] })
    reply(s, [{ _tag: "ErrorResponse", fields: [["S", "ERROR"], ["C", "42703"], ["M", "column \"no_such_column\" does not exist"]] }])
    send(s, { _tag: "Bind", portal: "", statement: "", paramFormats: [], params: [], resultFormats: [] })
    send(s, { _tag: "Describe", kind: "P", name: "" })
    send(s, { _tag: "Execute", portal: "", maxRows: 0 })
    send(s, { _tag: "Sync" })
    reply(s, [{ _tag: "ReadyForQuery", status: "I" }])
    expect(s.responses.pending).toBe(0)
    // the next round: a read that is not recorded
    send(s, { _tag: "Parse", name: "", sql: "SELECT secret FROM vault", paramTypes: [] })
    send(s, { _tag: "Bind", portal: "", statement: "", paramFormats: [], params: [], resultFormats: [] })
    send(s, { _tag: "Describe", kind: "P", name: "" })
    send(s, { _tag: "Execute", portal: "", maxRows: 0 })
    send(s, { _tag: "Sync" })
    const events = reply(s, [
      { _tag: "ParseComplete" },
      { _tag: "BindComplete" },
      { _tag: "RowDescription", fields: [column("secret")] },
      { _tag: "DataRow", values: [text("hunter2")] },
      { _tag: "CommandComplete", tag: "SELECT 1" },
      { _tag: "ReadyForQuery", status: "I" }
    ])
    expect(recorded(events)).toEqual([])
    expect(events).toMatchObject([{ _tag: "Result", statementId: 1, rows: 1 }])
    expect(s.responses.pending).toBe(0)
  })

  it("a statement closed or parsed again loses its description, and one deallocated through SQL its recording: rows never go under the old statement", () => {
    const s = state(policy({ rows: 10, bytes: 1000 }))
    const describeQ = (sql: string, name: string) => {
      send(s, { _tag: "Parse", name: "q", sql, paramTypes: [] })
      send(s, { _tag: "Describe", kind: "S", name: "q" })
      send(s, { _tag: "Sync" })
      reply(s, [{ _tag: "ParseComplete" }, { _tag: "ParameterDescription", typeOids: [] }, { _tag: "RowDescription", fields: [column(name)] }, { _tag: "ReadyForQuery", status: "I" }])
    }
    const executeQ = () => {
      send(s, { _tag: "Bind", portal: "", statement: "q", paramFormats: [], params: [], resultFormats: [] })
      send(s, { _tag: "Execute", portal: "", maxRows: 0 })
      send(s, { _tag: "Sync" })
      return recorded(reply(s, [{ _tag: "BindComplete" }, { _tag: "DataRow", values: [text("v")] }, { _tag: "CommandComplete", tag: "SELECT 1" }, { _tag: "ReadyForQuery", status: "I" }]))[0]
    }
    describeQ("SELECT 'v' AS old_name", "old_name")
    expect(executeQ()?.columns.map((c) => c.name)).toEqual(["old_name"])
    // closed, then parsed again without a Describe
    send(s, { _tag: "Close", kind: "S", name: "q" })
    send(s, { _tag: "Parse", name: "q", sql: "SELECT 'v' AS new_name", paramTypes: [] })
    send(s, { _tag: "Sync" })
    reply(s, [{ _tag: "CloseComplete" }, { _tag: "ParseComplete" }, { _tag: "ReadyForQuery", status: "I" }])
    expect(executeQ()).toMatchObject({ columns: [], rows: [[Buffer.from("v")]] })
    // described again, then replaced through SQL: Bind q now runs a statement Sluice did not audit as q
    describeQ("SELECT 'v' AS described", "described")
    send(s, { _tag: "Query", sql: "DEALLOCATE q; PREPARE q AS SELECT 'v' AS other" })
    reply(s, [{ _tag: "CommandComplete", tag: "DEALLOCATE" }, { _tag: "CommandComplete", tag: "PREPARE" }, { _tag: "ReadyForQuery", status: "I" }])
    expect(executeQ()).toBeUndefined()
  })

  it("a description that answers a Describe sent before recording was switched off and on again is not learnt", () => {
    const s = state(policy({ rows: 10, bytes: 1000 }))
    send(s, { _tag: "Parse", name: "q", sql: "SELECT 'v' AS a", paramTypes: [] })
    send(s, { _tag: "Describe", kind: "S", name: "q" })
    send(s, { _tag: "Sync" })
    // two policy reloads before the answer: off, then on
    s.responses.recording = false
    s.responses.recording = true
    reply(s, [{ _tag: "ParseComplete" }, { _tag: "ParameterDescription", typeOids: [] }, { _tag: "RowDescription", fields: [column("a")] }, { _tag: "ReadyForQuery", status: "I" }])
    send(s, { _tag: "Bind", portal: "", statement: "q", paramFormats: [], params: [], resultFormats: [] })
    send(s, { _tag: "Execute", portal: "", maxRows: 0 })
    send(s, { _tag: "Sync" })
    const events = reply(s, [{ _tag: "BindComplete" }, { _tag: "DataRow", values: [text("v")] }, { _tag: "CommandComplete", tag: "SELECT 1" }, { _tag: "ReadyForQuery", status: "I" }])
    expect(recorded(events)).toMatchObject([{ columns: [], rows: [[Buffer.from("v")]] }])
  })

  it("a prepared statement is judged again at Bind after a policy reload: recording stops when the new policy says so", () => {
    let current = { policy: policy({ rows: 10, bytes: 1000 }), version: "v1" }
    const s = sessionState(() => current, (sql) => classifier.classify(sql))
    const execute = () => {
      s.responses.recording = recordsResults(current.policy)
      send(s, { _tag: "Bind", portal: "", statement: "q", paramFormats: [], params: [], resultFormats: [] })
      send(s, { _tag: "Execute", portal: "", maxRows: 0 })
      send(s, { _tag: "Sync" })
      return reply(s, [{ _tag: "BindComplete" }, { _tag: "DataRow", values: [text("v")] }, { _tag: "CommandComplete", tag: "SELECT 1" }, { _tag: "ReadyForQuery", status: "I" }])
    }
    s.responses.recording = true
    send(s, { _tag: "Parse", name: "q", sql: "SELECT email FROM customers", paramTypes: [] })
    send(s, { _tag: "Sync" })
    reply(s, [{ _tag: "ParseComplete" }, { _tag: "ReadyForQuery", status: "I" }])
    expect(recorded(execute()).map((r) => r.rows)).toEqual([[[Buffer.from("v")]]])
    // a reload: customers' rows are not to be recorded any more (another rule still records)
    current = {
      policy: policy({ rows: 10, bytes: 1000 }, [{ id: "quiet-customers", match: { relations: ["customers"] }, action: "allow", record: OFF }]),
      version: "v2"
    }
    expect(recorded(execute())).toEqual([])
  })

  it("text that is not UTF-8 stays bytes, so nothing is lost to a conversion", () => {
    const s = state(policy({ rows: 10, bytes: 1000 }))
    send(s, { _tag: "Query", sql: "SELECT name FROM latin1_table" })
    const events = reply(s, [
      { _tag: "RowDescription", fields: [column("name")] },
      { _tag: "DataRow", values: [Buffer.from([0x63, 0x61, 0x66, 0xe9])] },
      { _tag: "CommandComplete", tag: "SELECT 1" },
      { _tag: "ReadyForQuery", status: "I" }
    ])
    expect(recorded(events)[0]!.rows).toEqual([[Buffer.from([0x63, 0x61, 0x66, 0xe9])]])
  })

  it("captures the longest prefix of the rows within both caps, and says when it stopped short", () => {
    const value = fc.option(fc.string({ maxLength: 30 }), { nil: null })
    fc.assert(
      fc.property(
        fc.array(fc.array(value, { minLength: 2, maxLength: 2 }), { maxLength: 30 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 200 }),
        (rows, maxRows, maxBytes) => {
          const s = state(policy({ rows: maxRows, bytes: maxBytes }))
          send(s, { _tag: "Query", sql: "SELECT a, b FROM t" })
          const events = reply(s, [
            { _tag: "RowDescription", fields: [column("a"), column("b")] },
            ...rows.map((r): BackendMessage => ({ _tag: "DataRow", values: r.map((v) => (v === null ? null : text(v))) })),
            { _tag: "CommandComplete", tag: `SELECT ${rows.length}` },
            { _tag: "ReadyForQuery", status: "I" }
          ])
          // as encoded: each value's bytes and 4 more (a null: 1), and 1 per row
          const size = (r: ReadonlyArray<string | null>) => r.reduce((n, v) => n + (v === null ? 1 : Buffer.byteLength(v) + 4), 1)
          let expected = 0
          let bytes = 0
          while (expected < rows.length && expected < maxRows && bytes + size(rows[expected]!) <= maxBytes) bytes += size(rows[expected++]!)
          // a result without rows has nothing to record
          expect(recorded(events).length).toBe(rows.length === 0 ? 0 : 1)
          const r = recorded(events)[0]
          if (r !== undefined) {
            expect(r.rows).toEqual(rows.slice(0, expected))
            expect(r.truncated).toBe(expected < rows.length)
          }
          expect(events.at(-1)).toMatchObject({ _tag: "Result", rows: rows.length })
        }
      ),
      { numRuns: 300 }
    )
  })
})
