import { FrameError } from "./errors.ts"

/**
 * One wire message, as the bytes it arrived in. `type` is the message type byte,
 * or 0 for a startup-phase packet (which has none). Untouched frames are forwarded
 * as `bytes` with no copy and no re-encode.
 */
export interface Frame {
  readonly type: number
  readonly bytes: Uint8Array
}

/** Where a frame's body starts: after the type byte (if any) and the int32 length. */
export const bodyOffset = (frame: Frame): number => (frame.type === 0 ? 4 : 5)

/** PostgreSQL itself refuses startup packets above this size (MAX_STARTUP_PACKET_LENGTH). */
export const MAX_STARTUP_PACKET = 10_000

const readInt32 = (b: Uint8Array, at: number): number =>
  ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) | 0

/**
 * Cuts a byte stream into frames. Chunks are kept as a list and joined only when a
 * frame straddles them, so a large message split over many reads costs one copy,
 * and a read batch of whole frames costs none.
 *
 * Mutable on purpose (the design's per-copy budget); callers own one per direction.
 */
export class Framer {
  private chunks: Array<Uint8Array> = []
  private buffered = 0
  private typed: boolean
  private readonly maxFrameBytes: number

  constructor(maxFrameBytes: number, options: { readonly startup: boolean }) {
    this.maxFrameBytes = maxFrameBytes
    this.typed = !options.startup
  }

  /** After the startup packet, every frame carries a type byte. */
  expectTyped(): void {
    this.typed = true
  }

  get isTyped(): boolean {
    return this.typed
  }

  get hasBuffered(): boolean {
    return this.buffered > 0
  }

  /** Appends a chunk and returns every frame now complete, or the first framing error. */
  push(chunk: Uint8Array): Array<Frame> | FrameError {
    if (this.buffered === 0) return this.scan(chunk, [])
    this.chunks.push(chunk)
    this.buffered += chunk.length
    const need = this.neededLength()
    if (need === undefined || this.buffered < need) return []
    const before = this.buffered - chunk.length
    // Bytes queued behind a startup packet and not drained yet: rare, join them all.
    if (before >= need) return this.scan(this.join(), [])
    // Copy only the frame that straddles the chunks; the frames after it in `chunk`
    // stay views of it, like those of a chunk that arrives with nothing buffered.
    const head = new Uint8Array(need)
    let at = 0
    for (let i = 0; i < this.chunks.length - 1; i++) {
      head.set(this.chunks[i]!, at)
      at += this.chunks[i]!.length
    }
    head.set(chunk.subarray(0, need - before), before)
    const frames = this.scan(head, [])
    if (frames instanceof FrameError) return frames
    const rest = chunk.subarray(need - before)
    if (this.typed) return this.scan(rest, frames)
    // After a startup packet the caller switches modes: keep the rest for drain().
    this.chunks = rest.length > 0 ? [rest] : []
    this.buffered = rest.length
    return frames
  }

  /** Cuts whole frames off the front of `data` (as views) and keeps the remainder buffered. */
  private scan(data: Uint8Array, frames: Array<Frame>): Array<Frame> | FrameError {
    let at = 0
    const header = this.typed ? 5 : 4
    while (data.length - at >= header) {
      const type = this.typed ? data[at]! : 0
      const length = readInt32(data, this.typed ? at + 1 : at)
      const invalid = this.check(type, length)
      if (invalid) return invalid
      const total = this.typed ? length + 1 : length
      if (data.length - at < total) break
      frames.push({ type, bytes: data.subarray(at, at + total) })
      at += total
      // A startup packet is followed by typed frames unless the caller says otherwise;
      // the caller switches modes, so stop here and keep the rest buffered.
      if (!this.typed) break
    }
    this.chunks = at < data.length ? [data.subarray(at)] : []
    this.buffered = data.length - at
    return frames
  }

  /** Frames left in the buffer after a mode switch (the bytes after a startup packet). */
  drain(): Array<Frame> | FrameError {
    if (this.buffered === 0) return []
    const data = this.join()
    this.chunks = []
    this.buffered = 0
    return this.push(data)
  }

  private check(type: number, length: number): FrameError | undefined {
    const limit = this.typed ? this.maxFrameBytes : MAX_STARTUP_PACKET
    const min = this.typed ? 4 : 8
    if (length < min) return new FrameError({ reason: "length-too-small", type, length, limit })
    if (length > limit) return new FrameError({ reason: "length-too-large", type, length, limit })
    return undefined
  }

  /** The full size of the frame at the head of the buffer, once its header is in. */
  private neededLength(): number | undefined {
    const header = this.typed ? 5 : 4
    if (this.buffered < header) return undefined
    const head = this.peek(header)
    const length = readInt32(head, this.typed ? 1 : 0)
    // An invalid length must surface now, not after buffering up to it.
    if (this.check(this.typed ? head[0]! : 0, length)) return header
    return this.typed ? length + 1 : length
  }

  /** The first `n` buffered bytes, copied only if they straddle chunks (the buffer is left as it is). */
  private peek(n: number): Uint8Array {
    const first = this.chunks[0]!
    if (first.length >= n) return first
    const out = new Uint8Array(n)
    let at = 0
    for (const c of this.chunks) {
      const take = Math.min(c.length, n - at)
      out.set(c.subarray(0, take), at)
      at += take
      if (at === n) break
    }
    return out
  }

  private join(): Uint8Array {
    if (this.chunks.length === 1) return this.chunks[0]!
    const out = new Uint8Array(this.buffered)
    let at = 0
    for (const c of this.chunks) {
      out.set(c, at)
      at += c.length
    }
    this.chunks = [out]
    return out
  }
}
