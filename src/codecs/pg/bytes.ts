import { Result } from "effect"
import { DecodeError } from "./errors.ts"

/**
 * Cursor-based reading and growable writing of PostgreSQL wire primitives.
 * Plain mutable code on purpose: these run once per decoded message on the hot path.
 */
// ignoreBOM: a leading U+FEFF is part of the string, not a byte-order mark to strip.
const utf8Decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true })
const utf8Encoder = new TextEncoder()

/** Thrown by readers and caught by `decodeWith`, so it never crosses a codec's boundary. */
export class OutOfBounds extends Error {}

/** Runs a decoder over a frame; out-of-bounds reads become a typed error, never a throw. */
export const decodeWith = <A>(type: number, decode: () => A): Result.Result<A, DecodeError> => {
  try {
    return Result.succeed(decode())
  } catch (e) {
    if (e instanceof OutOfBounds) return Result.fail(new DecodeError({ type, detail: e.message }))
    throw e
  }
}

export class ByteReader {
  private offset: number
  private readonly bytes: Uint8Array
  private readonly view: DataView
  constructor(bytes: Uint8Array, start: number) {
    this.bytes = bytes
    this.offset = start
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }

  get remaining(): number {
    return this.bytes.length - this.offset
  }

  private need(n: number): void {
    if (n < 0 || this.offset + n > this.bytes.length) throw new OutOfBounds(`needs ${n} more bytes, has ${this.remaining}`)
  }

  int8(): number {
    this.need(1)
    return this.bytes[this.offset++]!
  }

  int16(): number {
    this.need(2)
    const v = this.view.getInt16(this.offset)
    this.offset += 2
    return v
  }

  uint16(): number {
    this.need(2)
    const v = this.view.getUint16(this.offset)
    this.offset += 2
    return v
  }

  int32(): number {
    this.need(4)
    const v = this.view.getInt32(this.offset)
    this.offset += 4
    return v
  }

  uint32(): number {
    this.need(4)
    const v = this.view.getUint32(this.offset)
    this.offset += 4
    return v
  }

  /** A NUL-terminated string. */
  cstring(): string {
    const end = this.bytes.indexOf(0, this.offset)
    if (end < 0) throw new OutOfBounds("unterminated string")
    const s = utf8Decoder.decode(this.bytes.subarray(this.offset, end))
    this.offset = end + 1
    return s
  }

  /** A view into the frame, not a copy. */
  bytesView(n: number): Uint8Array {
    this.need(n)
    const b = this.bytes.subarray(this.offset, this.offset + n)
    this.offset += n
    return b
  }

  rest(): Uint8Array {
    return this.bytesView(this.remaining)
  }

  /** Rejects trailing garbage, so that decode(encode(m)) is exact and sloppy peers are caught. */
  end(): void {
    if (this.remaining !== 0) throw new OutOfBounds(`${this.remaining} unexpected trailing bytes`)
  }
}

export class ByteWriter {
  private buf: Uint8Array
  private view: DataView
  private offset = 0
  constructor(initial = 64) {
    this.buf = new Uint8Array(initial)
    this.view = new DataView(this.buf.buffer)
  }

  private ensure(n: number): void {
    if (this.offset + n <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.offset + n) size *= 2
    const next = new Uint8Array(size)
    next.set(this.buf.subarray(0, this.offset))
    this.buf = next
    this.view = new DataView(next.buffer)
  }

  int8(v: number): this {
    this.ensure(1)
    this.buf[this.offset++] = v & 0xff
    return this
  }

  int16(v: number): this {
    this.ensure(2)
    this.view.setInt16(this.offset, v)
    this.offset += 2
    return this
  }

  int32(v: number): this {
    this.ensure(4)
    this.view.setInt32(this.offset, v)
    this.offset += 4
    return this
  }

  uint32(v: number): this {
    this.ensure(4)
    this.view.setUint32(this.offset, v)
    this.offset += 4
    return this
  }

  cstring(s: string): this {
    return this.bytes(utf8Encoder.encode(s)).int8(0)
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length)
    this.buf.set(b, this.offset)
    this.offset += b.length
    return this
  }

  /** A typed message: type byte, then the int32 length that counts itself and the body. */
  static message(type: number, body: (w: ByteWriter) => unknown): Uint8Array {
    const w = new ByteWriter()
    w.int8(type).int32(0)
    body(w)
    w.view.setInt32(1, w.offset - 1)
    return w.buf.slice(0, w.offset)
  }

  /** A startup-phase packet: no type byte, the length counts itself. */
  static untyped(body: (w: ByteWriter) => unknown): Uint8Array {
    const w = new ByteWriter()
    w.int32(0)
    body(w)
    w.view.setInt32(0, w.offset)
    return w.buf.slice(0, w.offset)
  }
}
