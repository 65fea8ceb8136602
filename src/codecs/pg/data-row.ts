/**
 * Rewriting values inside a DataRow frame without decoding it into a message.
 *
 * A DataRow is 'D', an int32 length (counting itself and the body), an int16 column
 * count, then per column an int32 value length (-1 for NULL) and that many bytes.
 * `maskDataRow` walks the frame once to validate it and compute the replacements,
 * allocates the output once at its final size, and copies every run of untouched
 * columns in one go. Nothing is allocated per untouched value. The output is a
 * Uint8Array view into Node's buffer pool, like the frames the Framer hands out.
 */
import { Data } from "effect"

/**
 * Rewrites one non-NULL value; null sends SQL NULL. The shape of masking's `ValueMask`
 * (src/rules/masking/methods.ts), stated here so the codec does not depend on rules.
 */
export interface ValueRewrite {
  (value: Uint8Array): Uint8Array | null
  /** Present when the rewrite ignores its input: what every value becomes. Used instead of a call. */
  readonly constant?: Uint8Array | null
}

/**
 * A DataRow that cannot be rewritten: it is malformed (a length runs past the end,
 * bytes trail the last column, the header is wrong) or its column count differs from
 * the number of masks (the RowDescription it was matched with). Its values must not
 * reach the client as they are.
 */
export class DataRowMismatch extends Data.TaggedError("DataRowMismatch")<{
  readonly detail: string
}> {
  override get message(): string {
    return `DataRow cannot be masked: ${this.detail}`
  }
}

const DATA_ROW = 0x44 // 'D'
/** Type byte, int32 length, int16 column count. */
const HEADER = 7
const MAX_INT32 = 0x7fff_ffff

const int32At = (b: Uint8Array, at: number): number => (b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!

/** Below this many bytes a loop copies faster than `set` on a fresh `subarray` view. */
const SHORT_COPY = 64

const copy = (src: Uint8Array, from: number, end: number, dst: Uint8Array, at: number): void => {
  const n = end - from
  if (n < SHORT_COPY) for (let k = 0; k < n; k++) dst[at + k] = src[from + k]!
  else dst.set(src.subarray(from, end), at)
}

/**
 * `size` bytes from Node's buffer pool (allocating a small Uint8Array is many times
 * slower), as a plain Uint8Array view: a Buffer's `slice` shares memory, and views of
 * the output must behave like views of any other frame. The caller writes every byte.
 */
const pooled = (size: number): Uint8Array => {
  const b = Buffer.allocUnsafe(size)
  return new Uint8Array(b.buffer, b.byteOffset, size)
}

const writeInt32 = (b: Uint8Array, at: number, v: number): void => {
  b[at] = v >>> 24
  b[at + 1] = v >>> 16
  b[at + 2] = v >>> 8
  b[at + 3] = v
}

/**
 * The replacements of the row being rewritten, in column order, between the two passes.
 * Module-level scratch so a row costs no array: `maskDataRow` is synchronous and its
 * masks do not call back into it. Entries are cleared once used, so no value is retained.
 */
const replacements: Array<Uint8Array | null | undefined> = []

const fail = (pending: number, detail: string): DataRowMismatch => {
  for (let j = 0; j < pending; j++) replacements[j] = undefined
  return new DataRowMismatch({ detail })
}

/**
 * Rewrites the masked columns of one DataRow frame (whole frame bytes in, whole frame
 * bytes out). `masks[i]` undefined = column `i` passes untouched. A NULL value stays
 * NULL and is not counted; every other value of a masked column is replaced by what
 * its mask returns, and `counts[i]` is incremented (the caller owns `counts`, one entry
 * per column, reused across rows; it is only touched when the row is rewritten).
 *
 * Returns the input itself when no value needed masking, a new frame otherwise, or a
 * `DataRowMismatch` (never the input) when the frame is malformed or its column count
 * is not `masks.length`. Never throws on any frame bytes.
 */
export const maskDataRow = (
  frame: Uint8Array,
  masks: ReadonlyArray<ValueRewrite | undefined>,
  counts: Array<number>
): Uint8Array | DataRowMismatch => {
  const end = frame.length
  if (end < HEADER) return fail(0, `${end} bytes is shorter than a DataRow header`)
  if (frame[0] !== DATA_ROW) return fail(0, `message type ${frame[0]} is not DataRow`)
  const length = int32At(frame, 1)
  if (length !== end - 1) return fail(0, `length field ${length} does not match the ${end - 1} bytes of the frame`)
  const n = ((frame[5]! << 24) >> 16) | frame[6]!
  if (n !== masks.length) return fail(0, `${n} columns where the row description has ${masks.length}`)

  // Pass 1: validate every length, compute the replacements and the output size.
  let at = HEADER
  let masked = 0
  let size = end
  for (let i = 0; i < n; i++) {
    if (end - at < 4) return fail(masked, `column ${i} of ${n}: the frame ends inside its length`)
    const len = int32At(frame, at)
    at += 4
    if (len === -1) continue
    if (len < -1 || len > end - at) return fail(masked, `column ${i} of ${n}: invalid value length ${len}`)
    const mask = masks[i]
    if (mask !== undefined) {
      const fixed = mask.constant
      const out = fixed !== undefined ? fixed : mask(frame.subarray(at, at + len))
      replacements[masked++] = out
      size += (out === null ? 0 : out.length) - len
    }
    at += len
  }
  if (at !== end) return fail(masked, `${end - at} unexpected trailing bytes`)
  if (masked === 0) return frame
  if (size - 1 > MAX_INT32) return fail(masked, `the masked row would be ${size} bytes`)

  // Pass 2: copy runs of untouched columns, write the replacements in between.
  const output = pooled(size)
  let from = 0 // start of the run of input bytes not copied yet
  let to = 0
  let j = 0
  at = HEADER
  for (let i = 0; j < masked; i++) {
    const len = int32At(frame, at)
    if (len === -1 || masks[i] === undefined) {
      at += len === -1 ? 4 : 4 + len
      continue
    }
    copy(frame, from, at, output, to)
    to += at - from
    const out = replacements[j] as Uint8Array | null
    replacements[j++] = undefined
    if (out === null) {
      writeInt32(output, to, -1)
      to += 4
    } else {
      writeInt32(output, to, out.length)
      copy(out, 0, out.length, output, to + 4)
      to += 4 + out.length
    }
    counts[i] = (counts[i] ?? 0) + 1
    at += 4 + len
    from = at
  }
  copy(frame, from, end, output, to)
  writeInt32(output, 1, size - 1)
  return output
}
