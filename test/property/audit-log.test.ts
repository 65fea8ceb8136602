/**
 * The audit log in front of a spool that notes what it was given: every event of a
 * session numbered 0, 1, 2, … in the order recorded, whether one at a time or several at
 * once, and a full spool refusing the recording, with nothing half-recorded.
 */
import { Effect, Result } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { AuditRefused, makeAuditLog } from "../../src/sinks/audit-log.ts"
import { decodeSingleObject } from "../../src/sinks/avro.ts"
import type { AuditEvent, Payload } from "../../src/sinks/events.ts"
import { fromSpoolRecord, toSpoolRecord } from "../../src/sinks/spool-record.ts"

const result = (statementId: number): Payload => ({ _tag: "Result", statementId, rows: 1, bytes: 10, durationMicros: 5, sqlstate: "00000", commandTag: "SELECT 1" })

const spoolOf = () => {
  const appended: Array<ReadonlyArray<Uint8Array>> = []
  let full = false
  return {
    appended,
    fill: () => void (full = true),
    spool: {
      append: (records: NonEmptyReadonlyArray<Uint8Array>) => Effect.sync(() => void appended.push(records)),
      stats: () => ({ full })
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
              const log = yield* makeAuditLog({ encode: toSpoolRecord, spool, highWaterBytes: 1 << 20, onFull: "refuse", gateway: "g" })
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

  it("refuses to record while the spool is full (onFull refuse), and records nothing of a refused group", async () => {
    const { appended, spool, fill } = spoolOf()
    const outcome = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const log = yield* makeAuditLog({ encode: toSpoolRecord, spool, highWaterBytes: 1 << 20, onFull: "refuse", gateway: "g" })
          const s = log.session("s")
          yield* s.recordAll([result(0), result(1)])
          fill()
          expect(s.refusal()).toBe("the audit spool is full")
          return yield* Effect.result(s.recordAll([result(2), result(3)]))
        })
      )
    )
    expect(Result.isFailure(outcome) && outcome.failure).toBeInstanceOf(AuditRefused)
    expect(events(appended).map((e) => e.sequence)).toEqual([0, 1])
  })
})
