/**
 * The shipper between a real spool (in a temp dir) and a destination that notes what it
 * got and when: everything arrives once and in order, a backlog goes in full batches back
 * to back, and after a batch that was not full the shipper lingers before the next.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Fiber } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import { afterAll, describe, expect, it } from "vitest"
import { BATCH, ship } from "../../src/sinks/shipper.ts"
import { openSpool } from "../../src/sinks/spool/spool.ts"
import { fromSpoolRecord } from "../../src/sinks/spool-record.ts"

const roots: Array<string> = []
afterAll(() => {
  for (const d of roots) fs.rmSync(d, { recursive: true, force: true })
})

/** A spool record as the audit log writes it (session, kind, event bytes): see spool-record.ts. */
const record = (n: number, padding: number): Uint8Array => {
  const event = Buffer.concat([Buffer.from(`event-${n}`), Buffer.alloc(padding)])
  return Buffer.concat([Buffer.from([1]), Buffer.from("s"), Buffer.from([6]), Buffer.from("Result"), event])
}

interface Delivery {
  readonly at: number
  readonly events: ReadonlyArray<string>
}

const shipping = (lingerMs: number, scenario: (append: (from: number, count: number, padding?: number) => Effect.Effect<void, unknown>, deliveries: Array<Delivery>) => Effect.Effect<void, unknown>) =>
  Effect.gen(function* () {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), "sluice-shipper-"))
    roots.push(directory)
    const spool = yield* openSpool({ directory, maxBytes: 64 * 1024 * 1024, segmentBytes: 1024 * 1024, fsyncIntervalMs: 5, onFull: "refuse" })
    const deliveries: Array<Delivery> = []
    const deliver = (records: NonEmptyReadonlyArray<Uint8Array>) =>
      Effect.sync(() => {
        deliveries.push({ at: performance.now(), events: records.map((r) => fromSpoolRecord(r).event.toString()) })
      })
    const append = (from: number, count: number, padding = 0) =>
      spool.append(Array.from({ length: count }, (_, i) => record(from + i, padding)) as unknown as NonEmptyReadonlyArray<Uint8Array>)
    const fiber = yield* ship(spool, { name: "test", deliver }, lingerMs).pipe(Effect.forkScoped)
    yield* scenario(append, deliveries)
    yield* Fiber.interrupt(fiber)
    return deliveries
  }).pipe(Effect.scoped)

const until = (deliveries: Array<Delivery>, events: number) =>
  Effect.gen(function* () {
    const deadline = performance.now() + 10_000
    while (deliveries.flatMap((d) => d.events).length < events) {
      if (performance.now() > deadline) throw new Error(`only ${deliveries.flatMap((d) => d.events).length} of ${events} events delivered`)
      yield* Effect.sleep("5 millis")
    }
  })

describe("audit shipper", () => {
  it("ships a backlog in full batches back to back, everything once and in order", async () => {
    const backlog = 2 * BATCH.maxRecords + 200
    const deliveries = await Effect.runPromise(
      shipping(1_000, (append, deliveries) =>
        Effect.gen(function* () {
          yield* append(0, backlog)
          yield* until(deliveries, backlog)
        })
      )
    )
    expect(deliveries.flatMap((d) => d.events)).toEqual(Array.from({ length: backlog }, (_, i) => `event-${i}`))
    expect(deliveries.map((d) => d.events.length)).toEqual([BATCH.maxRecords, BATCH.maxRecords, 200])
    // full batches do not linger
    expect(deliveries[1]!.at - deliveries[0]!.at).toBeLessThan(500)
    expect(deliveries[2]!.at - deliveries[1]!.at).toBeLessThan(500)
  })

  it("lingers after a batch that was not full, so that events gather into the next", async () => {
    const lingerMs = 1_000
    const deliveries = await Effect.runPromise(
      shipping(lingerMs, (append, deliveries) =>
        Effect.gen(function* () {
          yield* append(0, 3)
          yield* until(deliveries, 3)
          // arriving one by one while the shipper lingers: they go out together
          for (let i = 3; i < 8; i++) {
            yield* append(i, 1)
            yield* Effect.sleep("20 millis")
          }
          yield* until(deliveries, 8)
        })
      )
    )
    expect(deliveries.map((d) => d.events.length)).toEqual([3, 5])
    expect(deliveries[1]!.at - deliveries[0]!.at).toBeGreaterThanOrEqual(lingerMs - 5)
  })

  it("does not linger after a batch that stopped at its byte limit: big events keep flowing", async () => {
    const deliveries = await Effect.runPromise(
      shipping(5_000, (append, deliveries) =>
        Effect.gen(function* () {
          yield* append(0, 6, 200 * 1024)
          yield* until(deliveries, 6)
        })
      )
    )
    // about two and a half per delivery (512 KiB): three deliveries, none of them lingering 5 s
    expect(deliveries.length).toBeGreaterThan(1)
    expect(deliveries.at(-1)!.at - deliveries[0]!.at).toBeLessThan(2_000)
  })

  it("with no linger, ships as soon as events are there", async () => {
    const deliveries = await Effect.runPromise(
      shipping(0, (append, deliveries) =>
        Effect.gen(function* () {
          for (let i = 0; i < 4; i++) {
            yield* append(i, 1)
            yield* until(deliveries, i + 1)
          }
        })
      )
    )
    expect(deliveries.map((d) => d.events.length)).toEqual([1, 1, 1, 1])
  })
})
