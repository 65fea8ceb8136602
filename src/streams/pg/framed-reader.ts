/**
 * A socket reader cut into PG frames: one frame at a time for the login phases, whole
 * read batches for the relay, so the hot path works per batch and never per byte.
 */
import { Cause, Effect } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import type * as Socket from "effect/socket/Socket"
import type { FrameError } from "../../codecs/pg/errors.ts"
import { type Frame, Framer } from "../../codecs/pg/framing.ts"

/** The peer closed its side, cleanly or not: no more frames will come. */
export const isClosed = (e: Socket.SocketError): boolean => e.reason._tag === "SocketCloseError" || e.reason._tag === "SocketReadError"

export class FramedReader {
  readonly framer: Framer
  private readonly reader: Socket.Reader<Uint8Array>
  private queue: Array<Frame> = []
  /**
   * Chunks read past a startup packet before the caller said how to frame them (typed
   * after a StartupMessage, untyped after SSLRequest or GSSENCRequest).
   */
  private unframed: Array<Uint8Array> = []
  private typed: boolean

  constructor(reader: Socket.Reader<Uint8Array>, framer: Framer) {
    this.reader = reader
    this.framer = framer
    this.typed = framer.isTyped
  }

  /** TLS in place: the handshake must start on a clean stream, or bytes were smuggled before it. */
  get isDrained(): boolean {
    return this.queue.length === 0 && this.unframed.length === 0 && !this.framer.hasBuffered
  }

  upgrade(options: Socket.TlsUpgradeOptions): Effect.Effect<void, Socket.SocketError> {
    return this.reader.upgrade(options)
  }

  /** Frames already read past the startup packet, once the framer knows they are typed. */
  expectTyped(): FrameError | undefined {
    this.framer.expectTyped()
    this.typed = true
    const rest = this.framer.drain()
    if (!Array.isArray(rest)) return rest
    this.queue.push(...rest)
    const chunks = this.unframed
    this.unframed = []
    return this.frame(chunks)
  }

  /** Frames chunks; before the startup packet is settled, stops at the first frame and keeps the rest. */
  private frame(chunks: ReadonlyArray<Uint8Array>): FrameError | undefined {
    for (let i = 0; i < chunks.length; i++) {
      if (!this.typed && this.queue.length > 0) {
        this.unframed.push(...chunks.slice(i))
        return undefined
      }
      const frames = this.framer.push(chunks[i]!)
      if (!Array.isArray(frames)) return frames
      for (const f of frames) this.queue.push(f)
    }
    return undefined
  }

  /** The next whole frame. */
  readonly next: Effect.Effect<Frame, FrameError | Socket.SocketError> = Effect.suspend(() => {
    const head = this.queue.shift()
    return head !== undefined ? Effect.succeed(head) : Effect.flatMap(this.fill, () => this.next)
  })

  /** Every whole frame available, at least one; fails with `Cause.Done` once the peer closed. */
  readonly batch: Effect.Effect<NonEmptyReadonlyArray<Frame>, FrameError | Socket.SocketError | Cause.Done> = Effect.suspend(() => {
    if (this.queue.length > 0) {
      const frames = this.queue as unknown as NonEmptyReadonlyArray<Frame>
      this.queue = []
      return Effect.succeed(frames)
    }
    return Effect.flatMap(this.fill, () => this.batch)
  })

  private readonly fill: Effect.Effect<void, FrameError | Socket.SocketError> = Effect.suspend(() => {
    if (this.unframed.length > 0) {
      const chunks = this.unframed
      this.unframed = []
      const error = this.frame(chunks)
      return error === undefined ? Effect.void : Effect.fail(error)
    }
    return Effect.flatMap(this.reader.pull, (chunks) => {
      const error = this.frame(chunks)
      return error === undefined ? Effect.void : Effect.fail(error)
    })
  })
}

/** A batch pull that ends the stream, rather than failing it, when the peer closes. */
export const batchUntilClosed = (r: FramedReader): Effect.Effect<NonEmptyReadonlyArray<Frame>, FrameError | Socket.SocketError | Cause.Done> =>
  Effect.catchIf(r.batch, (e): e is Socket.SocketError => e._tag === "SocketError" && isClosed(e), () => Cause.done())
