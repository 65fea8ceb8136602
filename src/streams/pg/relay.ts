/**
 * The relay once both sides are logged in: two streams, one per direction, each over
 * whole read batches. A slow reader on either side stops the other side's reads (the
 * sockets are never resumed, and each write waits for drain), so memory stays bounded.
 */
import { Array as Arr, Effect, Stream } from "effect"
import type * as Socket from "effect/socket/Socket"
import type { FrameError } from "../../codecs/pg/errors.ts"
import { FrontendType } from "../../codecs/pg/frontend.ts"
import { ClientGone, ClientProtocolViolation, TargetGone, TargetProtocolViolation } from "./errors.ts"
import { batchUntilClosed, type FramedReader } from "./framed-reader.ts"
import type { SessionState } from "./session-state.ts"
import { classify, type Decided, decide, observeBackend, route } from "./stages.ts"

export interface Peer {
  readonly reader: FramedReader
  readonly writer: Socket.Writer
}

const isLast = (d: Decided): boolean => d._tag === "Malformed" || (d._tag === "Forward" && d.frame.type === FrontendType.Terminate)

const logBlock = (d: Decided, state: SessionState) =>
  d._tag === "Block"
    ? Effect.logInfo("statement blocked", { session: state.id, rule: d.blocked.ruleId, statement: d.blocked.text.slice(0, 200) })
    : Effect.void

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
    Stream.mapArray((frames) => Arr.map(frames, (f) => classify(f, state))),
    Stream.mapArray((cs) => Arr.map(cs, (c) => decide(c, state))),
    Stream.takeUntil(isLast),
    Stream.runForEachArray((decisions) =>
      Effect.gen(function* () {
        const bytes: Array<Uint8Array> = []
        for (const d of decisions) {
          if (d._tag === "Malformed") {
            yield* toServer(bytes)
            return yield* new ClientProtocolViolation({ detail: d.detail })
          }
          yield* logBlock(d, state)
          for (const b of route(d, state)) bytes.push(b)
        }
        yield* toServer(bytes)
      })
    )
  )
}

/** Server → client: observe what the session needs, forward bytes as they arrived. */
const serverToClient = (client: Peer, server: Peer, state: SessionState) =>
  Stream.fromPull(Effect.succeed(batchUntilClosed(server.reader))).pipe(
    Stream.mapError((e: FrameError | Socket.SocketError) =>
      e._tag === "FrameError"
        ? new TargetProtocolViolation({ target: state.target.config.name, detail: e.message })
        : new TargetGone({ target: state.target.config.name })
    ),
    Stream.mapArray((frames) => Arr.map(frames, (f) => observeBackend(f, state))),
    Stream.runForEachArray((out) => {
      const bytes = out.filter((b): b is Uint8Array => b !== undefined)
      return Arr.isArrayNonEmpty(bytes) ? client.writer.writeAll(bytes).pipe(Effect.mapError(() => new ClientGone())) : Effect.void
    })
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
