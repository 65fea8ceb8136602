/**
 * The audit log in front of a spool that notes what it was given: every event of a
 * session numbered 0, 1, 2, … in the order recorded, whether one at a time or several at
 * once, a nearly full spool refusing new statements but not the events of those let
 * through, and a failing spool refusing every statement until an append succeeds again;
 * and the spool record's own framing of an event (session id and kind in front).
 */
import { Effect, Result } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { makeAuditLog } from "../../src/sinks/audit-log.ts"
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
      append: (records: NonEmptyReadonlyArray<Uint8Array>) =>
        failing === undefined
          ? Effect.sync(() => void appended.push(records))
          : Effect.fail({ _tag: "SpoolFailure", message: failing }),
      stats: () => ({ bytes })
    }
  }
}

const events = (appended: ReadonlyArray<ReadonlyArray<Uint8Array>>): Array<AuditEvent> =>
  appended.flat().map((r) => Result.getOrThrow(decodeSingleObject(fromSpoolRecord(r).event)))

describe("audit log", () => {
  it("numbers each session's events in the order recorded, singly or in groups", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.constantFrom("a", "b"), fc.integer({ min: 0, max: 4 })), { maxLength: 30 }), async (steps) => {
        const { appended, spool } = spoolOf()
        const ids = { a: 0, b: 0 }
        await Effect.runPromise(
          Effect.scoped(
            Effect.gen(function* () {
              const log = makeAuditLog({ encode: toSpoolRecord, spool, onFull: "refuse", refuseAboveBytes: 1000, gateway: "g" })
              const sessions = { a: log.session("a"), b: log.session("b") }
              for (const [who, n] of steps) {
                const payloads = Array.from({ length: n }, () => result(ids[who]++))
                yield* n === 1 ? sessions[who].record(payloads[0]!) : sessions[who].recordAll(payloads)
              }
            })
          )
        )
        const got = events(appended)
        for (const who of ["a", "b"] as const) {
          const mine = got.filter((e) => e.sessionId === who)
          expect(mine.map((e) => e.sequence)).toEqual(mine.map((_, i) => i))
          expect(mine.map((e) => (e.payload as { statementId: number }).statementId)).toEqual(mine.map((_, i) => i))
          expect(new Set(mine.map((e) => e.eventId)).size).toBe(mine.length)
        }
        expect(got.length).toBe(ids.a + ids.b)
      }),
      { numRuns: 50 }
    )
  })

  it("past refuseAboveBytes (onFull refuse) new statements are refused, while events of what was let through still go to the spool", async () => {
    const { appended, spool, fill } = spoolOf()
    const log = makeAuditLog({ encode: toSpoolRecord, spool, onFull: "refuse", refuseAboveBytes: 1000, gateway: "g" })
    const s = log.session("s")
    await Effect.runPromise(s.recordAll([result(0), result(1)]))
    expect(s.refusal()).toBeUndefined()
    fill()
    expect(s.refusal()).toBe("the audit spool is full: 2000 bytes wait for delivery, and new statements are refused above 1000")
    await Effect.runPromise(s.recordAll([result(2), result(3)]))
    expect(events(appended).map((e) => e.sequence)).toEqual([0, 1, 2, 3])
    // with onFull drop nothing is refused: the spool drops and alarms
    const dropping = makeAuditLog({ encode: toSpoolRecord, spool, onFull: "drop", refuseAboveBytes: 1000, gateway: "g" })
    expect(dropping.session("t").refusal()).toBeUndefined()
  })

  it("a failed append refuses that recording and, by refusal(), the next statements, until an append succeeds again", async () => {
    const { appended, spool, failWith } = spoolOf()
    const log = makeAuditLog({ encode: toSpoolRecord, spool, onFull: "refuse", refuseAboveBytes: 1000, gateway: "g" })
    const s = log.session("s")
    failWith("write failed: ENOSPC")
    const failed = await Effect.runPromise(Effect.result(s.record(result(0))))
    expect(Result.isFailure(failed) && failed.failure.reason).toBe("write failed: ENOSPC")
    expect(s.refusal()).toBe("write failed: ENOSPC")
    // a session retries (a new statement records), and the spool works again
    failWith(undefined)
    expect(s.refusal()).toBe("write failed: ENOSPC")
    await Effect.runPromise(s.record(result(1)))
    expect(s.refusal()).toBeUndefined()
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
