/**
 * Where every stage reports what happened. Each session gets a recorder that numbers its
 * events; a recording encodes them and appends them to the spool, which hands the bytes to
 * the OS before it returns (spool.ts): once `record` succeeded, a gateway crash no longer
 * loses the events, and the caller may go on to run the statement.
 *
 * Turn writing: the recordings made in one turn of the event loop go to the spool in one
 * append at the end of the turn (setImmediate), once the turn's I/O callbacks have run, and
 * their events are encoded in one batch. A recording the caller waits for (a statement about
 * to be sent, or a result about to be answered) goes on only when that append succeeded.
 * Only a session alone, with no turn open, appends at once: nobody could join it. A result
 * that ended the turn early instead (written at once with the turn so far, so that its
 * answer waited for nobody) took 15-35% more CPU a transaction with 16 clients: many more,
 * smaller writes.
 *
 * Measured under pgbench -S -M simple with 16 clients, the gateway on one core (CPU µs a
 * transaction, all threads; about 195 with audit off): one append a recording (2 appends a
 * transaction) 390; group writing with a lone-group heuristic (0.86) 300; a group every
 * turn (0.64) 275. More than half the turns that record anything record only once. At one
 * client, holding results back to share the next statement's append (one append a
 * transaction instead of two, at the price of losing them to a kill in between) made no
 * measurable difference, so they are appended at once.
 *
 * Fails closed: when the spool is full (and configured to refuse) or broken, recording
 * fails, and the caller refuses the statement rather than let it run unaudited.
 */
import { randomUUID } from "node:crypto"
import { hostname } from "node:os"
import { Array as Arr, Context, Data, Effect, Exit, type Fiber, type Scope } from "effect"
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
  /**
   * Events of what is already done (a statement blocked, a result about to be answered, a
   * session ended): recorded as `recordAll` records them (in the spool when it returns), but
   * never refused or failing. Events the spool does not take are lost, and an error log
   * says how many and why.
   */
  readonly recordDone: (payloads: ReadonlyArray<Payload>) => Effect.Effect<void>
  /**
   * `recordAll` and `recordDone` begun at once: `undefined` when the events are already in
   * the spool (a session alone, the spool with room: no Effect to build and run on the data
   * path), else the Effect that finishes the recording.
   */
  readonly recordNow: (payloads: ReadonlyArray<Payload>) => Effect.Effect<void, AuditRefused> | undefined
  readonly recordDoneNow: (payloads: ReadonlyArray<Payload>) => Effect.Effect<void> | undefined
  /** Why recording would be refused right now, if it would: checked before a statement runs. */
  readonly refusal: () => string | undefined
}

export class AuditLog extends Context.Service<
  AuditLog,
  {
    /** The recorder of a session, for as long as the scope (the session) lasts. */
    readonly session: (sessionId: string) => Effect.Effect<SessionAudit, never, Scope.Scope>
    /** Writes the turn in progress now, and waits for it: for closing, before the spool closes. */
    readonly flush: Effect.Effect<void>
  }
>()("sluice/AuditLog") {}

/** What the audit log needs of a spool: the real one, or a test's. */
export interface AuditSpool {
  /** `undefined` once written, else the Effect that writes them (spool.ts). */
  readonly appendNow: (records: NonEmptyReadonlyArray<Uint8Array>) => Effect.Effect<void, { readonly message: string; readonly _tag: string }> | undefined
  /** Unacknowledged bytes. */
  readonly stats: () => { readonly bytes: number }
}

/** One recording waiting for the end of its turn. */
interface Recording {
  readonly events: ReadonlyArray<AuditEvent>
  /** How to wake the caller. */
  readonly resume: (outcome: Effect.Effect<void, AuditRefused>) => void
}

const nowMicros = (): number => Date.now() * 1000

const unencodable = (events: number, defect: unknown): string => `${events} that could not be encoded (${String(defect)})`
const refused = (events: number, reason: string): string => `${events} the spool refused (${reason})`

const lostEvents = (session: string, lost: string): Effect.Effect<void> => Effect.logError("audit events lost", { session, lost })


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
  /**
   * Runs a turn's append, which starts outside any session's fiber: the gateway passes
   * `Effect.runForkWith` of its own services (its logger); by default `Effect.runFork`.
   */
  readonly run?: <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>
}) => {
  const gateway = options.gateway ?? hostname()
  const run = options.run ?? Effect.runFork
  /** The spool's last failure: every recording is refused until an append succeeds again. */
  let broken: string | undefined
  const appended = Effect.sync(() => void (broken = undefined))
  const refusedBy = (e: { readonly message: string }) =>
    Effect.suspend(() => {
      broken = e.message
      return Effect.fail(new AuditRefused({ reason: e.message }))
    })
  const appendNow = (records: NonEmptyReadonlyArray<Uint8Array>): Effect.Effect<void, AuditRefused> | undefined => {
    const pending = options.spool.appendNow(records)
    if (pending === undefined) {
      broken = undefined
      return undefined
    }
    return pending.pipe(Effect.matchEffect({ onSuccess: () => (broken === undefined ? Effect.void : appended), onFailure: refusedBy }))
  }

  let open = 0
  /** This turn's recordings, in the order made, until the end of the turn writes them. */
  let turn: Array<Recording> | undefined

  /**
   * Takes this turn's recordings and gives their append, which wakes their callers.
   * Uninterruptible: once taken, the recordings get their answer whatever happens to the
   * fiber that runs it.
   */
  const takeTurn = (): Effect.Effect<void> => {
    const recordings = turn
    if (recordings === undefined) return Effect.void // flushed already
    turn = undefined
    const records: Array<Uint8Array> = []
    // a bug in an event: its recording fails (as it would alone), the rest go on
    const defects = new Map<Recording, unknown>()
    for (const r of recordings) {
      const start = records.length
      try {
        for (const e of r.events) records.push(options.encode(e))
      } catch (defect) {
        records.length = start
        defects.set(r, defect)
      }
    }
    const settle = (exit: Exit.Exit<void, AuditRefused>): void => {
      for (const r of recordings) r.resume(defects.has(r) ? Effect.die(defects.get(r)) : exit)
    }
    if (!Arr.isArrayNonEmpty(records)) return Effect.sync(() => settle(Exit.void))
    return Effect.uninterruptible(Effect.flatMap(Effect.exit(Effect.suspend(() => appendNow(records) ?? Effect.void)), (exit) => Effect.sync(() => settle(exit))))
  }

  const join = (recording: Recording): void => {
    if (turn !== undefined) return void turn.push(recording)
    turn = [recording]
    setImmediate(() => void run(takeTurn()))
  }

  const recorder = (sessionId: string): SessionAudit => {
    let sequence = 0
    const refusal = (): string | undefined => {
      if (broken !== undefined) return broken
      if (options.onFull === "drop") return undefined
      const waiting = options.spool.stats().bytes
      return waiting > options.refuseAboveBytes
        ? `the audit spool is full: ${waiting} bytes wait for delivery, and new statements are refused above ${options.refuseAboveBytes}`
        : undefined
    }
    const numbered = (payloads: ReadonlyArray<Payload>): Array<AuditEvent> => {
      const time = nowMicros()
      const events: Array<AuditEvent> = []
      for (const payload of payloads) events.push({ eventId: randomUUID(), sessionId, sequence: sequence++, time, gateway, payload })
      return events
    }
    // Not checked against refusal(): what is recorded here already ran, is about to, or
    // was blocked, and the spool's own bound decides. Tried even while the spool is
    // broken: the events of the statements refused meanwhile find out that it works again.
    // Throws what the encoder throws: the caller decides whether that is a defect or a loss.
    const recordNow = (payloads: ReadonlyArray<Payload>): Effect.Effect<void, AuditRefused> | undefined => {
      if (payloads.length === 0) return undefined
      const events = numbered(payloads)
      // joining the turn keeps each session's events in the spool in the order recorded
      if (turn !== undefined || open > 1) return Effect.callback<void, AuditRefused>((resume) => join({ events, resume }))
      return appendNow(events.map(options.encode) as unknown as NonEmptyReadonlyArray<Uint8Array>)
    }
    const recordAll = (payloads: ReadonlyArray<Payload>) => Effect.suspend(() => recordNow(payloads) ?? Effect.void)
    // An interrupted caller is not a loss: its events stay in the turn and are written.
    const recordDoneNow = (payloads: ReadonlyArray<Payload>): Effect.Effect<void> | undefined => {
      let pending: Effect.Effect<void, AuditRefused> | undefined
      try {
        pending = recordNow(payloads)
      } catch (defect) {
        return lostEvents(sessionId, unencodable(payloads.length, defect))
      }
      return pending?.pipe(
        Effect.catch((e) => lostEvents(sessionId, refused(payloads.length, e.reason))),
        Effect.catchDefect((defect) => lostEvents(sessionId, unencodable(payloads.length, defect)))
      )
    }
    const recordDone = (payloads: ReadonlyArray<Payload>) => Effect.suspend(() => recordDoneNow(payloads) ?? Effect.void)
    return { sessionId, refusal, recordAll, recordDone, recordNow, recordDoneNow, record: (payload) => recordAll([payload]) }
  }

  return AuditLog.of({
    flush: Effect.suspend(takeTurn),
    session: (sessionId) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          open++
          return recorder(sessionId)
        }),
        () => Effect.sync(() => void open--)
      )
  })
}

/** A session's recorder that records nothing and refuses nothing. */
export const unaudited = (sessionId: string): SessionAudit => ({
  sessionId,
  refusal: () => undefined,
  record: () => Effect.void,
  recordAll: () => Effect.void,
  recordDone: () => Effect.void,
  recordNow: () => undefined,
  recordDoneNow: () => undefined
})

/** Audit switched off by configuration: nothing is recorded, nothing is refused. For benchmarks and tests. */
export const auditOff = AuditLog.of({ session: (sessionId) => Effect.succeed(unaudited(sessionId)), flush: Effect.void })
