/**
 * The audit log in front of a spool that notes what it was given: every event of a
 * session numbered 0, 1, 2, … in the order recorded, whether one at a time or several at
 * once, as statements or as results; the recordings of one turn written in one append
 * before any returns (turn writing), a failed one refusing them all and a bad event only
 * its own; results joining the turn like statements; results' events
 * lost loudly when the spool refuses them; a nearly full
 * spool refusing new statements but not the events of those let through, and a failing
 * spool refusing every statement until an append succeeds again;
 * and the spool record's own framing of an event (session id and kind in front).
 */
import { Cause, Effect, Exit, Fiber, Logger, Result } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { makeAuditLog, type SessionAudit } from "../../src/sinks/audit-log.ts"
import { AvroEncodeError, decodeSingleObject } from "../../src/sinks/avro.ts"
import type { AuditEvent, Payload } from "../../src/sinks/events.ts"
import { fromSpoolRecord, toSpoolRecord } from "../../src/sinks/spool-record.ts"
import { auditArbitraries } from "./audit-arbitraries.ts"

const result = (statementId: number): Payload => ({ _tag: "Result", statementId, rows: 1, bytes: 10, durationMicros: 5, sqlstate: "00000", commandTag: "SELECT 1" })

const spoolOf = () => {
  const appended: Array<ReadonlyArray<Uint8Array>> = []
  let bytes = 0
  let failing: string | undefined
  return {
    appended,
    fill: () => void (bytes = 2000),
    /** Appends fail with this reason (as a disk error would), or succeed again with `undefined`. */
    failWith: (reason: string | undefined) => void (failing = reason),
    spool: {
      appendNow: (records: NonEmptyReadonlyArray<Uint8Array>) =>
        failing === undefined ? void appended.push(records) : Effect.fail({ _tag: "SpoolFailure", message: failing }),
      stats: () => ({ bytes })
    }
  }
}

/** Lets the turn in progress end, and with it the spool append of the recordings nobody waits for. */
const endOfTurn = () => new Promise<void>((resolve) => setImmediate(resolve))

const events = (appended: ReadonlyArray<ReadonlyArray<Uint8Array>>): Array<AuditEvent> =>
  appended.flat().map((r) => Result.getOrThrow(decodeSingleObject(fromSpoolRecord(r).event)))

const log = (spool: ReturnType<typeof spoolOf>["spool"], encode = toSpoolRecord) =>
  makeAuditLog({ encode, spool, onFull: "refuse", refuseAboveBytes: 1000, gateway: "g" })

/** Runs `body` with the recorders of `ids` open, in one scope. */
const withSessions = <A, E>(l: ReturnType<typeof log>, ids: ReadonlyArray<string>, body: (s: ReadonlyArray<SessionAudit>) => Effect.Effect<A, E>) =>
  Effect.runPromise(Effect.scoped(Effect.flatMap(Effect.forEach(ids, (id) => l.session(id)), body)))

describe("audit log", () => {
  it("numbers each session's events in the order recorded, singly or several at once, as statements or as results, one at a time or all in one turn", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.constantFrom(0, 1), fc.integer({ min: 0, max: 4 }), fc.boolean()), { maxLength: 30 }),
        fc.boolean(),
        fc.boolean(),
        async (steps, concurrent, alone) => {
          const { appended, spool } = spoolOf()
          const ids = [0, 0]
          const step = (sessions: ReadonlyArray<SessionAudit>, [who, n, asResults]: readonly [number, number, boolean]) =>
            Effect.suspend(() => {
              const s = sessions[alone ? 0 : who]!
              const payloads = Array.from({ length: n }, () => result(ids[alone ? 0 : who]!++))
              if (asResults) return s.recordDone(payloads)
              return n === 1 ? s.record(payloads[0]!) : s.recordAll(payloads)
            })
          await withSessions(log(spool), alone ? ["a"] : ["a", "b"], (sessions) =>
            Effect.forEach(steps, (st) => step(sessions, st), { concurrency: concurrent ? "unbounded" : 1, discard: true })
          )
          await endOfTurn()
          const got = events(appended)
          for (const who of ["a", "b"]) {
            const mine = got.filter((e) => e.sessionId === who)
            expect(mine.map((e) => e.sequence)).toEqual(mine.map((_, i) => i))
            expect(mine.map((e) => (e.payload as { statementId: number }).statementId)).toEqual(mine.map((_, i) => i))
            expect(new Set(mine.map((e) => e.eventId)).size).toBe(mine.length)
          }
          expect(got.length).toBe(ids[0]! + ids[1]!)
        }
      ),
      { numRuns: 60 }
    )
  })

  it("a session alone appends at once; with others open, the recordings of one turn go to the spool in one append, before any of them returns", async () => {
    const { appended, spool } = spoolOf()
    const l = log(spool)
    await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const a = yield* l.session("a")
      Effect.runSync(a.record(result(0))) // synchronous: no turn to wait for
      expect(appended.length).toBe(1)
      const b = yield* l.session("b")
      const c = yield* l.session("c")
      const returned: Array<number> = []
      yield* Effect.forEach([a, b, c], (s) => s.recordAll([result(1), result(2)]).pipe(Effect.tap(() => Effect.sync(() => void returned.push(appended.length)))), { concurrency: "unbounded" })
      expect(appended.length).toBe(2)
      expect(appended[1]!.length).toBe(6)
      expect(returned).toEqual([2, 2, 2])
    })))
    // once the others closed, a session is alone again
    const alone = Effect.scoped(Effect.flatMap(l.session("d"), (d) => d.record(result(0))))
    Effect.runSync(alone)
    expect(appended.length).toBe(3)
  })

  it("a failed turn append refuses every recording in it; an event that cannot be encoded fails only its own recording", async () => {
    const { appended, spool, failWith } = spoolOf()
    failWith("write failed: EIO")
    const refused = await withSessions(log(spool), ["a", "b"], (sessions) =>
      Effect.forEach(sessions, (s) => Effect.result(s.record(result(0))), { concurrency: "unbounded" })
    )
    expect(refused.map((r) => Result.isFailure(r) && r.failure.reason)).toEqual(["write failed: EIO", "write failed: EIO"])
    failWith(undefined)
    const encode = (e: AuditEvent) => {
      if (e.sessionId === "bad") throw new Error("not encodable")
      return toSpoolRecord(e)
    }
    const exits = await withSessions(log(spool, encode), ["a", "bad", "b"], (sessions) =>
      Effect.forEach(sessions, (s) => Effect.exit(s.record(result(1))), { concurrency: "unbounded" })
    )
    expect(exits.map((e) => (Exit.isSuccess(e) ? "ok" : Cause.hasDies(e.cause) ? "died" : "failed"))).toEqual(["ok", "died", "ok"])
    expect(events(appended).map((e) => e.sessionId)).toEqual(["a", "b"])
  })

  it("the recordings of a turn get their answer even when the first of them is interrupted", async () => {
    const { appended, spool } = spoolOf()
    await withSessions(log(spool), ["a", "b"], ([a, b]) =>
      Effect.gen(function* () {
        const leader = yield* Effect.forkChild(a!.record(result(0)))
        yield* Effect.yieldNow
        const member = yield* Effect.forkChild(b!.record(result(0)))
        yield* Fiber.interrupt(leader)
        yield* Fiber.join(member)
      })
    )
    expect(events(appended).map((e) => e.sessionId)).toEqual(["a", "b"])
  })

  it("recordDone: alone, appends at once; with others open, joins the turn and returns once the turn's append wrote it", async () => {
    const { appended, spool } = spoolOf()
    const l = log(spool)
    await withSessions(l, ["a"], ([a]) =>
      Effect.sync(() => {
        Effect.runSync(a!.recordDone([result(0)])) // synchronous: no turn to wait for
        expect(appended.map((records) => records.length)).toEqual([1])
      })
    )
    appended.length = 0
    await withSessions(l, ["a", "b", "c"], ([a, b, c]) =>
      Effect.gen(function* () {
        const waiting = yield* Effect.forkChild(Effect.all([b!.record(result(0)), c!.recordAll([result(0), result(1)])], { concurrency: "unbounded" }))
        yield* Effect.yieldNow
        expect(appended.length).toBe(0)
        // a's result joins the turn b's and c's statements wait for: one append for all five
        yield* a!.recordDone([result(0), result(1)])
        expect(appended.map((records) => records.length)).toEqual([5])
        yield* Fiber.join(waiting)
      })
    )
    expect(events(appended).map((e) => [e.sessionId, e.sequence])).toEqual([["b", 0], ["c", 0], ["c", 1], ["a", 0], ["a", 1]])
  })

  it("results' events that the spool refuses, or that cannot be encoded, are lost loudly: an error log says how many and why; an interrupted caller loses nothing", async () => {
    const { appended, spool, failWith } = spoolOf()
    const lines: Array<string> = []
    const logger = Logger.make((o) => void lines.push(`${o.logLevel} ${(o.message as ReadonlyArray<unknown>).map((m) => (typeof m === "string" ? m : JSON.stringify(m))).join(" ")}`))
    const logging = Logger.layer([logger])
    const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runFork(effect.pipe(Effect.provide(logging)))
    const encode = (e: AuditEvent) => {
      if (e.sessionId === "bad") throw new Error("not encodable")
      return toSpoolRecord(e)
    }
    const l = makeAuditLog({ encode, spool, onFull: "refuse", refuseAboveBytes: 1000, gateway: "g", run })
    const nowIn = (ids: ReadonlyArray<string>, payloads: ReadonlyArray<Payload>) =>
      withSessions(l, ids, ([first]) => first!.recordDone(payloads).pipe(Effect.provide(logging)))
    const expected = [
      'Error audit events lost {"session":"a","lost":"2 the spool refused (write failed: ENOSPC)"}',
      'Error audit events lost {"session":"bad","lost":"1 that could not be encoded (Error: not encodable)"}'
    ]
    // alone and with another session open
    for (const others of [[], ["a2"]]) {
      failWith("write failed: ENOSPC")
      await nowIn(["a", ...others], [result(0), result(1)])
      expect(lines).toEqual([expected[0]])
      failWith(undefined)
      lines.length = 0
      await nowIn(["bad", ...others], [result(0)])
      expect(lines).toEqual([expected[1]])
      lines.length = 0
    }
    // interrupted while its results wait for the turn: they are written with it, and nothing is called lost
    appended.length = 0
    await withSessions(l, ["a", "b"], ([a]) =>
      Effect.gen(function* () {
        const waiting = yield* Effect.forkChild(a!.recordDone([result(0)]).pipe(Effect.provide(logging)))
        yield* Effect.yieldNow
        yield* Fiber.interrupt(waiting)
        yield* l.flush
      })
    )
    expect(lines).toEqual([])
    expect(events(appended).map((e) => e.sessionId)).toEqual(["a"])
  })

  it("past refuseAboveBytes (onFull refuse) new statements are refused, while events of what was let through still go to the spool", async () => {
    const { appended, spool, fill } = spoolOf()
    await withSessions(log(spool), ["s"], ([s]) =>
      Effect.gen(function* () {
        yield* s!.recordAll([result(0), result(1)])
        expect(s!.refusal()).toBeUndefined()
        fill()
        expect(s!.refusal()).toBe("the audit spool is full: 2000 bytes wait for delivery, and new statements are refused above 1000")
        yield* s!.recordAll([result(2), result(3)])
      })
    )
    expect(events(appended).map((e) => e.sequence)).toEqual([0, 1, 2, 3])
    // with onFull drop nothing is refused: the spool drops and alarms
    const dropping = makeAuditLog({ encode: toSpoolRecord, spool, onFull: "drop", refuseAboveBytes: 1000, gateway: "g" })
    expect(await withSessions(dropping, ["t"], ([t]) => Effect.sync(() => t!.refusal()))).toBeUndefined()
  })

  it("a failed append refuses that recording and, by refusal(), the next statements, until an append succeeds again", async () => {
    const { appended, spool, failWith } = spoolOf()
    await withSessions(log(spool), ["s"], ([s]) =>
      Effect.gen(function* () {
        failWith("write failed: ENOSPC")
        const failed = yield* Effect.result(s!.record(result(0)))
        expect(Result.isFailure(failed) && failed.failure.reason).toBe("write failed: ENOSPC")
        expect(s!.refusal()).toBe("write failed: ENOSPC")
        // a session retries (a new statement records), and the spool works again
        failWith(undefined)
        expect(s!.refusal()).toBe("write failed: ENOSPC")
        yield* s!.record(result(1))
        expect(s!.refusal()).toBeUndefined()
      })
    )
    expect(events(appended).map((e) => e.sequence)).toEqual([1])
  })
})

describe("spool records", () => {
  const text = fc.string({ unit: "grapheme", maxLength: 12 })
  const { anyEvent } = auditArbitraries({ text, long: fc.integer({ min: 0, max: 2 ** 40 }), time: fc.integer({ min: 0, max: 2 ** 52 }) })

  it("carry the session id and the kind in front of the event, as bytes a shipper passes on unchanged", () => {
    fc.assert(
      fc.property(anyEvent, (e) => {
        const spooled = fromSpoolRecord(toSpoolRecord(e))
        expect(spooled.sessionKey.toString("utf8")).toBe(e.sessionId)
        expect(spooled.kind.toString("utf8")).toBe(e.payload._tag)
        expect(Result.getOrThrow(decodeSingleObject(spooled.event))).toStrictEqual(e)
      }),
      { numRuns: 300 }
    )
  })

  it("refuse a session id longer than its one-byte length can say", () => {
    fc.assert(
      fc.property(anyEvent, fc.integer({ min: 256, max: 600 }), (e, length) => {
        expect(() => toSpoolRecord({ ...e, sessionId: "é".repeat(Math.ceil(length / 2)) })).toThrow(AvroEncodeError)
      }),
      { numRuns: 20 }
    )
  })
})
