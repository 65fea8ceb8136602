/**
 * The PG pipeline stages, without a socket: what they forward, what a block turns into,
 * what they skip, and what reaches the client from the server.
 */
import { Result } from "effect"
import * as fc from "fast-check"
import { beforeAll, describe, expect, it } from "vitest"
import { decodeBackend, encodeBackend, field } from "../../src/codecs/pg/backend.ts"
import { decodeFrontend, encodeFrontend } from "../../src/codecs/pg/frontend.ts"
import { loadClassifier, makeClassifier } from "../../src/rules/classify/index.ts"
import type { Policy } from "../../src/rules/policy/schema.ts"
import type { SessionState } from "../../src/streams/pg/session-state.ts"
import { classify, decide, observeBackend, route } from "../../src/streams/pg/stages.ts"
import { backendMessage, cstring, frontendMessage, int32 } from "./pg-arbitraries.ts"
import { frameOf, send, sessionState } from "./pg-session-fixture.ts"

const ALLOW_ALL: Policy = {
  version: 1,
  defaults: { "*": { action: "allow" } },
  rules: [{ id: "unknown-ok", match: { classes: ["unknown"] }, action: "allow" }],
  masks: [],
  maxStatementBytes: 1 << 20,
  recording: { rows: 0, bytes: 65536 },
  auditTextBytes: 65536,
  auditLiterals: "keep"
}
const NO_WRITES: Policy = {
  version: 1,
  defaults: { "*": { action: "allow" } },
  rules: [{ id: "no-writes", match: { classes: ["write", "ddl"] }, action: "block", message: "writes are not allowed" }],
  masks: [],
  maxStatementBytes: 1 << 20,
  recording: { rows: 0, bytes: 65536 },
  auditTextBytes: 65536,
  auditLiterals: "keep"
}

let classifier: ReturnType<typeof makeClassifier>
beforeAll(async () => {
  await loadClassifier()
  classifier = makeClassifier({ cacheSize: 100 })
})

const state = (policy: Policy = ALLOW_ALL, serverProcessId?: number, clientProcessId?: number): SessionState =>
  sessionState(policy, (sql) => classifier.classify(sql), serverProcessId, clientProcessId)

const decoded = (bytes: Uint8Array) => Result.getOrThrow(decodeFrontend(frameOf(bytes)))

describe("client → server stages", () => {
  it("forward every well-formed frontend frame as its original bytes when the policy allows", () => {
    fc.assert(
      fc.property(frontendMessage, (m) => {
        const s = state()
        const frame = frameOf(encodeFrontend(m))
        const c = classify(frame, s)
        expect(c._tag).not.toBe("Malformed")
        const d = decide(c, s)
        expect(d._tag).toBe("Forward")
        if (d._tag !== "Forward") return
        expect(route(d, s).bytes).toEqual([frame.bytes])
        expect(s.terminating).toBe(m._tag === "Terminate")
      }),
      { numRuns: 300 }
    )
  })

  it("refuse a Query or Parse whose body does not decode, and only those", () => {
    const typed = (type: number, body: Uint8Array) => {
      const bytes = new Uint8Array(5 + body.length)
      bytes[0] = type
      new DataView(bytes.buffer).setInt32(1, 4 + body.length)
      bytes.set(body, 5)
      return frameOf(bytes)
    }
    expect(classify(typed(0x51, Buffer.from("SELECT 1")), state())._tag).toBe("Malformed")
    expect(classify(typed(0x50, Buffer.from("s\0SELECT 1\0")), state())._tag).toBe("Malformed")
    fc.assert(
      fc.property(fc.constantFrom(0x51, 0x50), fc.uint8Array({ maxLength: 30 }), (type, body) => {
        const c = classify(typed(type, body), state())
        expect(c._tag === "Malformed").toBe(Result.isFailure(decodeFrontend(typed(type, body))))
      })
    )
  })

  it("carry out a block in a multi-statement Query as the statements before it, then the raise", () => {
    const s = state(NO_WRITES)
    const out = send(s, { _tag: "Query", sql: "SELECT 1; DELETE FROM t; SELECT 2" })
    expect(out).toHaveLength(1)
    const q = decoded(out[0]!)
    expect(q._tag).toBe("Query")
    if (q._tag !== "Query") return
    expect(q.sql.startsWith("SELECT 1;\nDO $sluice$")).toBe(true)
    expect(q.sql).toContain("ERRCODE = '42501'")
    expect(q.sql).toContain("writes are not allowed (rule no-writes)")
    expect(q.sql).not.toContain("DELETE")
    expect(q.sql).not.toContain("SELECT 2")
  })

  it("never carries any part of a blocked statement to the server", () => {
    fc.assert(
      fc.property(cstring(30), (junk) => {
        const s = state(NO_WRITES)
        const sql = `DELETE FROM t WHERE note = '${junk.replace(/'/g, "''")}'`
        for (const bytes of send(s, { _tag: "Query", sql })) expect(Buffer.from(bytes).toString()).not.toContain("DELETE")
      })
    )
  })

  it("replace a blocked unnamed Parse by a raise on the unnamed statement, as a failed Parse replaces it", () => {
    const s = state(NO_WRITES)
    const out = send(s, { _tag: "Parse", name: "", sql: "INSERT INTO t VALUES (1)", paramTypes: [] })
    expect(out.map((b) => decoded(b))).toMatchObject([{ _tag: "Parse", name: "" }, { _tag: "Bind", statement: "" }, { _tag: "Execute" }])
  })

  it("skip to Sync within the very batch of the blocked Parse", () => {
    const s = state(NO_WRITES)
    const frames = [
      encodeFrontend({ _tag: "Parse", name: "", sql: "DELETE FROM t", paramTypes: [] }),
      encodeFrontend({ _tag: "Bind", portal: "", statement: "", paramFormats: [], params: [], resultFormats: [] }),
      encodeFrontend({ _tag: "Execute", portal: "", maxRows: 0 }),
      encodeFrontend({ _tag: "Sync" }),
      encodeFrontend({ _tag: "Query", sql: "SELECT 1" })
    ].map(frameOf)
    // As the relay does: every frame of the batch is decided before any is routed.
    const decisions = frames.map((f) => decide(classify(f, s), s))
    expect(decisions.map((d) => d._tag)).toEqual(["Block", "Discard", "Discard", "Forward", "Forward"])
    expect(s.discardingUntilSync).toBe(false)
  })

  it("judge again a prepared statement bound after the search path moved", () => {
    const s = state({ ...NO_WRITES, rules: [{ id: "no-secret", match: { relations: ["secret.*"] }, action: "block" }] })
    expect(send(s, { _tag: "Parse", name: "q", sql: "SELECT * FROM data", paramTypes: [] }).map((b) => decoded(b)._tag)).toEqual(["Parse"])
    send(s, { _tag: "Query", sql: "SET search_path = secret" })
    const bind = send(s, { _tag: "Bind", portal: "", statement: "q", paramFormats: [], params: [], resultFormats: [] })
    expect(bind.map((b) => decoded(b)._tag)).toEqual(["Close", "Parse", "Bind", "Execute"])
    expect(s.discardingUntilSync).toBe(true)
  })

  it("replace a blocked Parse by a raise, then skip the client's messages up to Sync", () => {
    const s = state(NO_WRITES)
    const out = send(s, { _tag: "Parse", name: "w", sql: "INSERT INTO t VALUES (1)", paramTypes: [] })
    expect(out.map((b) => decoded(b)._tag)).toEqual(["Close", "Parse", "Bind", "Execute"])
    expect(s.discardingUntilSync).toBe(true)
    expect(send(s, { _tag: "Bind", portal: "", statement: "w", paramFormats: [], params: [], resultFormats: [] })).toEqual([])
    expect(send(s, { _tag: "Execute", portal: "", maxRows: 0 })).toEqual([])
    expect(send(s, { _tag: "Flush" }).map((b) => decoded(b)._tag)).toEqual(["Flush"])
    expect(send(s, { _tag: "Sync" }).map((b) => decoded(b)._tag)).toEqual(["Sync"])
    expect(s.discardingUntilSync).toBe(false)
    expect(send(s, { _tag: "Parse", name: "r", sql: "SELECT 1", paramTypes: [] }).map((b) => decoded(b)._tag)).toEqual(["Parse"])
  })

  it("judges SQL-level EXECUTE by the PREPAREd body", () => {
    const s = state(NO_WRITES)
    expect(decoded(send(s, { _tag: "Query", sql: "PREPARE r AS SELECT 1" })[0]!)).toEqual({ _tag: "Query", sql: "PREPARE r AS SELECT 1" })
    expect(decoded(send(s, { _tag: "Query", sql: "EXECUTE r" })[0]!)).toEqual({ _tag: "Query", sql: "EXECUTE r" })
    const never = decoded(send(s, { _tag: "Query", sql: "EXECUTE never_prepared" })[0]!)
    expect(never._tag === "Query" && never.sql.startsWith("DO $sluice$")).toBe(true)
  })

  it("blocks statements over the policy's size limit before parsing them", () => {
    const s = state({ ...ALLOW_ALL, maxStatementBytes: 100 })
    const q = decoded(send(s, { _tag: "Query", sql: `SELECT '${"x".repeat(200)}'` })[0]!)
    expect(q._tag === "Query" && q.sql).toContain("exceeds the policy''s limit of 100 bytes")
  })
})

describe("statement ids for the audit", () => {
  it("tie every result to the statement it belongs to: simple, extended with portals, and blocked", () => {
    const s = state(NO_WRITES)
    const routed = [
      route(decide(classify(frameOf(encodeFrontend({ _tag: "Query", sql: "SELECT 1; SELECT 2" })), s), s) as never, s),
      route(decide(classify(frameOf(encodeFrontend({ _tag: "Parse", name: "p", sql: "SELECT $1::int", paramTypes: [] })), s), s) as never, s)
    ]
    expect(routed.flatMap((r) => r.audited.map((a) => [a.id, a.verdict, a.via]))).toEqual([
      [0, "allow", "simple"],
      [1, "allow", "simple"],
      [2, "allow", "extended"]
    ])
    send(s, { _tag: "Bind", portal: "c", statement: "p", paramFormats: [], params: [Buffer.from("7")], resultFormats: [] })
    send(s, { _tag: "Execute", portal: "c", maxRows: 0 })
    send(s, { _tag: "Sync" })
    const blocked = route(decide(classify(frameOf(encodeFrontend({ _tag: "Query", sql: "DELETE FROM t" })), s), s) as never, s)
    expect(blocked.audited.map((a) => [a.id, a.verdict, a.ruleId])).toEqual([[3, "block", "no-writes"]])
    const replies: Array<Parameters<typeof encodeBackend>[0]> = [
      { _tag: "RowDescription", fields: [] },
      { _tag: "DataRow", values: [Buffer.from("1")] },
      { _tag: "CommandComplete", tag: "SELECT 1" },
      { _tag: "RowDescription", fields: [] },
      { _tag: "DataRow", values: [Buffer.from("2")] },
      { _tag: "CommandComplete", tag: "SELECT 1" },
      { _tag: "ReadyForQuery", status: "I" },
      { _tag: "ParseComplete" },
      { _tag: "BindComplete" },
      { _tag: "DataRow", values: [Buffer.from("7")] },
      { _tag: "CommandComplete", tag: "SELECT 1" },
      { _tag: "ReadyForQuery", status: "I" },
      { _tag: "ErrorResponse", fields: [["S", "ERROR"], ["C", "42501"], ["M", "x"]] },
      { _tag: "ReadyForQuery", status: "I" }
    ]
    for (const m of replies) observeBackend(frameOf(encodeBackend(m)), s)
    expect(s.responses.takeResults().map((r) => (r._tag === "Result" ? [r.statementId, r.rows, r.sqlstate] : r))).toEqual([
      [0, 1, "00000"],
      [1, 1, "00000"],
      [2, 1, "00000"],
      [3, 0, "42501"]
    ])
    expect(s.responses.pending).toBe(0)
  })
})

describe("server → client stage", () => {
  it("forwards every backend frame untouched, except notifications from the session's own server process", () => {
    fc.assert(
      fc.property(backendMessage, (m) => {
        const s = state()
        const frame = frameOf(encodeBackend(m))
        const out = observeBackend(frame, s)
        if (m._tag === "NotificationResponse" && m.processId === s.serverProcessId) return
        expect(out).toBe(frame.bytes)
      }),
      { numRuns: 1000 }
    )
  })

  it("drops the answers to a block's injected Parse and Bind, and cleans the raised error", () => {
    const s = state(NO_WRITES)
    send(s, { _tag: "Parse", name: "", sql: "SELECT 1", paramTypes: [] })
    send(s, { _tag: "Parse", name: "w", sql: "DROP TABLE t", paramTypes: [] })
    send(s, { _tag: "Sync" })
    const message = "writes are not allowed (rule no-writes)"
    const replies = [
      encodeBackend({ _tag: "ParseComplete" }),
      encodeBackend({ _tag: "CloseComplete" }),
      encodeBackend({ _tag: "ParseComplete" }),
      encodeBackend({ _tag: "BindComplete" }),
      encodeBackend({ _tag: "ErrorResponse", fields: [["S", "ERROR"], ["V", "ERROR"], ["C", "42501"], ["M", message], ["W", "PL/pgSQL function inline_code_block line 1 at RAISE"]] }),
      encodeBackend({ _tag: "ReadyForQuery", status: "I" })
    ]
    const out = replies.map((r) => observeBackend(frameOf(r), s)).filter((b) => b !== undefined)
    const tags = out.map((b) => Result.getOrThrow(decodeBackend(frameOf(b)))._tag)
    expect(tags).toEqual(["ParseComplete", "ErrorResponse", "ReadyForQuery"])
    const error = Result.getOrThrow(decodeBackend(frameOf(out[1]!)))
    expect(error._tag === "ErrorResponse" && error.fields.map(([c]) => c)).toEqual(["S", "V", "C", "M"])
    expect(error._tag === "ErrorResponse" && field(error.fields, "M")).toBe(message)
    expect(s.responses.pending).toBe(0)
  })

  it("tracks the transaction status of every ReadyForQuery", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom("I", "T", "E") as fc.Arbitrary<"I" | "T" | "E">, { minLength: 1 }), (statuses) => {
        const s = state()
        for (const status of statuses) observeBackend(frameOf(encodeBackend({ _tag: "ReadyForQuery", status })), s)
        expect(s.transactionStatus).toBe(statuses.at(-1))
      })
    )
  })

  it("blocks every statement once the server reports settings Sluice's parser cannot follow", () => {
    for (const [name, value] of [
      ["standard_conforming_strings", "off"],
      ["client_encoding", "SJIS"]
    ] as const) {
      const s = state()
      observeBackend(frameOf(encodeBackend({ _tag: "ParameterStatus", name: "client_encoding", value: "UTF8" })), s)
      expect(decoded(send(s, { _tag: "Query", sql: "SELECT 1" })[0]!)).toEqual({ _tag: "Query", sql: "SELECT 1" })
      observeBackend(frameOf(encodeBackend({ _tag: "ParameterStatus", name, value })), s)
      const q = decoded(send(s, { _tag: "Query", sql: "SELECT 1" })[0]!)
      expect(q._tag === "Query" && q.sql).toContain(`the session''s ${name} is ${value}`)
    }
  })

  it("notes a server FATAL, so the session ends without a second one", () => {
    const s = state()
    observeBackend(frameOf(encodeBackend({ _tag: "ErrorResponse", fields: [["S", "ERROR"], ["V", "ERROR"], ["C", "22012"], ["M", "x"]] })), s)
    expect(s.serverEnded).toBe(false)
    observeBackend(frameOf(encodeBackend({ _tag: "ErrorResponse", fields: [["S", "FATAL"], ["V", "FATAL"], ["C", "57P01"], ["M", "x"]] })), s)
    expect(s.serverEnded).toBe(true)
  })

  it("gives the client its own process id in notifications its session sent", () => {
    fc.assert(
      fc.property(int32, cstring(), cstring(), (other, channel, payload) => {
        const s = state()
        const own = observeBackend(frameOf(encodeBackend({ _tag: "NotificationResponse", processId: s.serverProcessId, channel, payload })), s)
        expect([...own!]).toEqual([...encodeBackend({ _tag: "NotificationResponse", processId: s.clientProcessId, channel, payload })])
        fc.pre(other !== s.serverProcessId)
        const foreign = encodeBackend({ _tag: "NotificationResponse", processId: other, channel, payload })
        expect([...observeBackend(frameOf(foreign), s)!]).toEqual([...foreign])
      })
    )
  })
})
