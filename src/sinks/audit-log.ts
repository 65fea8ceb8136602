/**
 * Where every stage reports what happened. Each session gets a recorder that numbers its
 * events; a recording encodes them and appends them to the spool at once, which hands the
 * bytes to the OS before it returns (spool.ts): once `record` succeeded, a gateway crash
 * no longer loses the events, and the caller may go on to run the statement.
 *
 * Fails closed: when the spool is full (and configured to refuse) or broken, recording
 * fails, and the caller refuses the statement rather than let it run unaudited.
 */
import { randomUUID } from "node:crypto"
import { hostname } from "node:os"
import { Context, Data, Effect } from "effect"
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
  /** Unacknowledged bytes. */
  readonly stats: () => { readonly bytes: number }
}

const nowMicros = (): number => Date.now() * 1000

export const makeAuditLog = (options: {
  readonly encode: (event: AuditEvent) => Uint8Array
  readonly spool: AuditSpool
  /** `drop`: the spool drops what it cannot hold (and counts it); recording goes on. */
  readonly onFull: "refuse" | "drop"
  /**
   * With `refuse`: past this many unacknowledged bytes, new statements and sessions are
   * refused, while the room above it up to the spool's bound still takes the events of
   * statements already let through (they must be recorded before they are sent).
   */
  readonly refuseAboveBytes: number
  readonly gateway?: string
}) => {
  const gateway = options.gateway ?? hostname()
  /** The spool's last failure: every recording is refused until an append succeeds again. */
  let broken: string | undefined
  const appended = Effect.sync(() => void (broken = undefined))
  const refusedBy = (e: { readonly message: string }) =>
    Effect.suspend(() => {
      broken = e.message
      return Effect.fail(new AuditRefused({ reason: e.message }))
    })

  return AuditLog.of({
    session: (sessionId) => {
      let sequence = 0
      const refusal = (): string | undefined => {
        if (broken !== undefined) return broken
        if (options.onFull === "drop") return undefined
        const waiting = options.spool.stats().bytes
        return waiting > options.refuseAboveBytes
          ? `the audit spool is full: ${waiting} bytes wait for delivery, and new statements are refused above ${options.refuseAboveBytes}`
          : undefined
      }
      // Not checked against refusal(): what is recorded here already ran, is about to, or
      // was blocked, and the spool's own bound decides. Tried even while the spool is
      // broken: the events of the statements refused meanwhile find out that it works again.
      const recordAll = (payloads: ReadonlyArray<Payload>) =>
        Effect.suspend(() => {
          if (payloads.length === 0) return Effect.void
          const time = nowMicros()
          const records: Array<Uint8Array> = []
          for (const payload of payloads) records.push(options.encode({ eventId: randomUUID(), sessionId, sequence: sequence++, time, gateway, payload }))
          return options.spool.append(records as unknown as NonEmptyReadonlyArray<Uint8Array>).pipe(
            Effect.matchEffect({ onSuccess: () => (broken === undefined ? Effect.void : appended), onFailure: refusedBy })
          )
        })
      return { sessionId, refusal, recordAll, record: (payload) => recordAll([payload]) }
    }
  })
}

/** Audit switched off by configuration: nothing is recorded, nothing is refused. For benchmarks and tests. */
export const auditOff = AuditLog.of({
  session: (sessionId) => ({ sessionId, refusal: () => undefined, record: () => Effect.void, recordAll: () => Effect.void })
})
