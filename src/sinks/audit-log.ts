/**
 * Where every stage reports what happened. Each session gets a recorder that numbers its
 * events; events are encoded at once and handed to the spool in batches, one write per
 * tick, so the data path never waits on the disk unless the disk falls behind.
 *
 * Fails closed: when the spool is full (and configured to refuse) or broken, recording
 * fails, and the caller refuses the statement rather than let it run unaudited. An event
 * reaches the spool within one tick of being recorded; if the disk fails in that window,
 * the failure is logged as an error and every later recording is refused.
 */
import { randomUUID } from "node:crypto"
import { hostname } from "node:os"
import { Context, Data, Deferred, Effect, Queue } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import type { AuditEvent, Payload } from "./events.ts"

export class AuditRefused extends Data.TaggedError("AuditRefused")<{ readonly reason: string }> {
  override get message(): string {
    return `the audit trail cannot record this (${this.reason}), so it is refused`
  }
}

export interface SessionAudit {
  readonly sessionId: string
  readonly record: (payload: Payload) => Effect.Effect<void, AuditRefused>
  /** Several events at once, in order: one check and one hand-off for all of them. */
  readonly recordAll: (payloads: ReadonlyArray<Payload>) => Effect.Effect<void, AuditRefused>
  /** Why recording would be refused right now, if it would: checked before a statement runs. */
  readonly refusal: () => string | undefined
}

export class AuditLog extends Context.Service<
  AuditLog,
  {
    readonly session: (sessionId: string) => SessionAudit
  }
>()("sluice/AuditLog") {}

/** What the audit log needs of a spool: the real one, or a test's. */
export interface AuditSpool {
  readonly append: (records: NonEmptyReadonlyArray<Uint8Array>) => Effect.Effect<void, { readonly message: string; readonly _tag: string }>
  readonly stats: () => { readonly full: boolean }
}

const nowMicros = (): number => Date.now() * 1000

/**
 * Batches encoded events and appends each batch to the spool. Recording waits only when
 * more than `highWaterBytes` are waiting for the disk, which bounds memory.
 */
export const makeAuditLog = (options: {
  readonly encode: (event: AuditEvent) => Uint8Array
  readonly spool: AuditSpool
  readonly highWaterBytes: number
  /** `drop`: the spool drops what it cannot hold (and counts it); recording goes on. */
  readonly onFull: "refuse" | "drop"
  readonly gateway?: string
}) =>
  Effect.gen(function* () {
    const gateway = options.gateway ?? hostname()
    let pending: Array<Uint8Array> = []
    let pendingBytes = 0
    let flushed = yield* Deferred.make<void, AuditRefused>()
    let scheduled = false
    /** The spool's last failure: once it refuses, every recording fails until a flush succeeds. */
    let broken: string | undefined

    const flush = Effect.suspend(() => {
      scheduled = false
      const batch = pending
      const done = flushed
      pending = []
      pendingBytes = 0
      flushed = Deferred.makeUnsafe<void, AuditRefused>()
      if (batch.length === 0) return Deferred.succeed(done, undefined)
      return options.spool.append(batch as unknown as NonEmptyReadonlyArray<Uint8Array>).pipe(
        Effect.matchEffect({
          onSuccess: () => {
            broken = undefined
            return Deferred.succeed(done, undefined)
          },
          onFailure: (e) => {
            broken = e.message
            return Effect.logError("audit spool refused a batch", { reason: e.message, events: batch.length }).pipe(
              Effect.andThen(Deferred.fail(done, new AuditRefused({ reason: e.message })))
            )
          }
        })
      )
    })

    // One writer fiber: each wake-up appends everything recorded since the last one.
    const wake = yield* Queue.sliding<void>(1)
    yield* Effect.forever(Queue.take(wake).pipe(Effect.andThen(flush))).pipe(Effect.forkScoped)
    yield* Effect.addFinalizer(() => flush)
    const schedule = () => {
      if (scheduled) return
      scheduled = true
      Queue.offerUnsafe(wake, undefined)
    }

    return AuditLog.of({
      session: (sessionId) => {
        let sequence = 0
        const refusal = (): string | undefined =>
          broken ?? (options.onFull === "refuse" && options.spool.stats().full ? "the audit spool is full" : undefined)
        const recordAll = (payloads: ReadonlyArray<Payload>) =>
          Effect.suspend(() => {
            if (payloads.length === 0) return Effect.void
            const refused = refusal()
            if (refused !== undefined) return Effect.fail(new AuditRefused({ reason: refused }))
            const time = nowMicros()
            for (const payload of payloads) {
              const bytes = options.encode({ eventId: randomUUID(), sessionId, sequence: sequence++, time, gateway, payload })
              pending.push(bytes)
              pendingBytes += bytes.length
            }
            schedule()
            return pendingBytes > options.highWaterBytes ? Deferred.await(flushed) : Effect.void
          })
        return { sessionId, refusal, recordAll, record: (payload) => recordAll([payload]) }
      }
    })
  })

/** Audit switched off by configuration: nothing is recorded, nothing is refused. For benchmarks and tests. */
export const auditOff = AuditLog.of({
  session: (sessionId) => ({ sessionId, refusal: () => undefined, record: () => Effect.void, recordAll: () => Effect.void })
})
