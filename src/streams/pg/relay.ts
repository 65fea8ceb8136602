/**
 * The relay once both sides are logged in: two streams, one per direction, each over
 * whole read batches. A slow reader on either side stops the other side's reads (the
 * sockets are never resumed, and each write waits for drain), so memory stays bounded.
 */
import { Array as Arr, Effect, Stream } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import type * as Socket from "effect/socket/Socket"
import { FrontendType } from "../../codecs/pg/frontend.ts"
import type { FrameError } from "../../codecs/pg/errors.ts"
import { batchUntilClosed, type FramedReader } from "./framed-reader.ts"
import { ClientGone, ClientProtocolViolation, TargetGone, TargetProtocolViolation } from "./errors.ts"
import type { SessionState } from "./session-state.ts"
import { classify, type Decided, decide, type Malformed, observeBackend, route } from "./stages.ts"

export interface Peer {
  readonly reader: FramedReader
  readonly writer: Socket.Writer
}

type Step = Decided | Malformed

const isLast = (s: Step): boolean => s._tag === "Malformed" || s.frame.type === FrontendType.Terminate

/** Client → server: decode, classify, decide, then route each frame to the server or back to the client. */
const clientToServer = (client: Peer, server: Peer, state: SessionState) => {
  const toServer = (bytes: ReadonlyArray<Uint8Array>) =>
    bytes.length === 0 ? Effect.void : server.writer.writeAll(bytes as NonEmptyReadonlyArray<Uint8Array>).pipe(Effect.mapError(() => new TargetGone({ target: state.target.config.name })))
  const toClient = (bytes: ReadonlyArray<Uint8Array>) =>
    bytes.length === 0 ? Effect.void : client.writer.writeAll(bytes as NonEmptyReadonlyArray<Uint8Array>).pipe(Effect.mapError(() => new ClientGone()))

  return Stream.fromPull(Effect.succeed(batchUntilClosed(client.reader))).pipe(
    Stream.mapError((e: FrameError | Socket.SocketError) =>
      e._tag === "FrameError" ? new ClientProtocolViolation({ detail: e.message }) : new ClientGone()
    ),
    Stream.mapArray((frames) => Arr.map(frames, (f) => classify(f, state))),
    Stream.mapArray((cs) => Arr.map(cs, (c): Step => (c._tag === "Malformed" ? c : decide(c, state)))),
    Stream.takeUntil(isLast),
    Stream.runForEachArray((steps) =>
      Effect.gen(function* () {
        const forServer: Array<Uint8Array> = []
        const forClient: Array<Uint8Array> = []
        for (const step of steps) {
          if (step._tag === "Malformed") {
            yield* toServer(forServer)
            return yield* new ClientProtocolViolation({ detail: step.detail })
          }
          const r = route(step, state)
          ;(r._tag === "ToServer" ? forServer : forClient).push(r.bytes)
        }
        yield* toServer(forServer)
        yield* toClient(forClient)
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
    Stream.runForEachArray((bytes) => client.writer.writeAll(bytes).pipe(Effect.mapError(() => new ClientGone())))
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
