/**
 * The relay once both sides are logged in: two streams, one per direction, each over
 * whole read batches. A slow reader on either side stops the other side's reads (the
 * sockets are never resumed, and each write waits for drain), so memory stays bounded.
 */
import { Array as Arr, Effect, Stream } from "effect"
import type * as Socket from "effect/socket/Socket"
import type { FrameError } from "../../codecs/pg/errors.ts"
import { FrontendType } from "../../codecs/pg/frontend.ts"
import type { Payload } from "../../sinks/events.ts"
import { redactLiterals } from "../../sinks/redact.ts"
import { recordsResults } from "../../rules/policy/evaluate.ts"
import { statementEvents } from "./audit-events.ts"
import { AuditUnavailable, ClientGone, ClientProtocolViolation, TargetGone, TargetProtocolViolation } from "./errors.ts"
import { batchUntilClosed, type FramedReader } from "./framed-reader.ts"
import type { SessionState } from "./session-state.ts"
import { type ResultMasking, resolveMasking, unresolvedMasking } from "./masking.ts"
import type { Allowed } from "./enforce.ts"
import { allowedIn, classify, type Decided, decide, observeBackend, route } from "./stages.ts"

export interface Peer {
  readonly reader: FramedReader
  readonly writer: Socket.Writer
}

const isLast = (d: Decided): boolean => d._tag === "Malformed" || (d._tag === "Forward" && d.frame.type === FrontendType.Terminate)

/**
 * Records the events of statements about to be sent: they are in the spool before the
 * server sees them. If the spool fails now (after `refusal()` allowed them), nothing is
 * sent and the session ends with a FATAL rather than run them unaudited. The events of a
 * batch that sends nothing (every statement blocked) are of what is done: a failure to
 * record them is an alarm, not a refusal.
 */
const recordBeforeSending = (state: SessionState, payloads: ReadonlyArray<Payload>, sends: boolean) =>
  sends
    ? state.audit.recordNow(payloads)?.pipe(Effect.mapError((e) => new AuditUnavailable({ reason: e.reason })))
    : state.audit.recordDoneNow(payloads)

const NOTHING_MASKED: ReadonlyMap<Allowed, ResultMasking> = new Map()

/**
 * The catalog's answer for each masked statement of a decision, asked before the
 * statement is sent. A catalog that cannot answer masks every column of the statement.
 */
const maskingsOf = (d: Decided, state: SessionState) => {
  const masked = allowedIn(d).filter((a) => a.masking !== undefined)
  if (masked.length === 0) return Effect.succeed(NOTHING_MASKED)
  return Effect.forEach(masked, (a) => {
    const need = a.masking!
    return state.catalog.relations(need.relations).pipe(
      Effect.map((relations) => [a, resolveMasking(need, relations)] as const),
      Effect.catch((e) =>
        Effect.logError("masking without the catalog: every column of the statement is masked", { session: state.id, reason: e.message }).pipe(
          Effect.as([a, unresolvedMasking(need)] as const)
        )
      )
    )
  }).pipe(Effect.map((entries) => new Map(entries)))
}

/** Client → server: classify, decide, route; a block goes to the server as the error it must raise. */
const clientToServer = (client: Peer, server: Peer, state: SessionState) => {
  const toServer = (bytes: ReadonlyArray<Uint8Array>) =>
    Arr.isReadonlyArrayNonEmpty(bytes)
      ? server.writer.writeAll(bytes).pipe(Effect.mapError(() => new TargetGone({ target: state.target.config.name })))
      : Effect.void

  return Stream.fromPull(Effect.succeed(batchUntilClosed(client.reader))).pipe(
    Stream.mapError((e: FrameError | Socket.SocketError) =>
      e._tag === "FrameError" ? new ClientProtocolViolation({ detail: e.message }) : new ClientGone()
    ),
    Stream.mapArray((frames) =>
      Arr.map(frames, (f) => {
        state.bytesFromClient += f.bytes.length
        return classify(f, state)
      })
    ),
    Stream.mapArray((cs) => Arr.map(cs, (c) => decide(c, state))),
    Stream.takeUntil(isLast),
    Stream.runForEachArray((decisions) =>
      Effect.gen(function* () {
        const bytes: Array<Uint8Array> = []
        const events: Array<Payload> = []
        const policy = state.enforcer.policy()
        state.responses.recording = recordsResults(policy.policy)
        for (const d of decisions) {
          if (d._tag === "Malformed") {
            yield* toServer(bytes)
            return yield* new ClientProtocolViolation({ detail: d.detail })
          }
          if (d._tag === "Block") {
            const text = d.blocked.statement.text
            const shown = policy.policy.auditLiterals === "redact" ? redactLiterals(text) : text
            yield* Effect.logInfo("statement blocked", { session: state.id, rule: d.blocked.ruleId, statement: shown.slice(0, 200) })
          }
          const r = route(d, state, yield* maskingsOf(d, state))
          // What a statement creates, renames or drops is learnt afresh by the next masked statement.
          if (r.audited.some((a) => a.statement.class === "ddl")) state.catalog.invalidate()
          for (const b of r.bytes) bytes.push(b)
          for (const a of r.audited) events.push(...statementEvents(a, policy))
        }
        const recording = recordBeforeSending(state, events, decisions.some((d) => d._tag === "Forward" && d.allowed.length > 0))
        if (recording !== undefined) yield* recording
        yield* toServer(bytes)
      })
    )
  )
}

/** Server → client: observe what the session needs, forward bytes as they arrived, audit results. */
const serverToClient = (client: Peer, server: Peer, state: SessionState) =>
  Stream.fromPull(Effect.succeed(batchUntilClosed(server.reader))).pipe(
    Stream.mapError((e: FrameError | Socket.SocketError) =>
      e._tag === "FrameError"
        ? new TargetProtocolViolation({ target: state.target.config.name, detail: e.message })
        : new TargetGone({ target: state.target.config.name })
    ),
    Stream.mapArray((frames) => Arr.map(frames, (f) => observeBackend(f, state))),
    Stream.runForEachArray((out) =>
      Effect.gen(function* () {
        const bytes = out.filter((b): b is Uint8Array => b !== undefined)
        for (const b of bytes) state.bytesToClient += b.length
        // in the spool before the client can see the answer, so a kill never loses the
        // record of what the client got; a result is not something to refuse
        const recording = state.audit.recordDoneNow(state.responses.takeResults())
        if (recording !== undefined) yield* recording
        if (Arr.isReadonlyArrayNonEmpty(bytes)) yield* client.writer.writeAll(bytes).pipe(Effect.mapError(() => new ClientGone()))
      })
    )
  )

/**
 * Runs both directions until one ends. The client ending (Terminate or close) ends the
 * session quietly, as does the server after its own FATAL; the server ending first
 * otherwise is an error the client must hear about.
 */
export const relay = (client: Peer, server: Peer, state: SessionState) =>
  Effect.raceFirst(
    clientToServer(client, server, state),
    serverToClient(client, server, state).pipe(
      Effect.andThen(() =>
        state.terminating || state.serverEnded ? Effect.void : Effect.fail(new TargetGone({ target: state.target.config.name }))
      )
    )
  )
