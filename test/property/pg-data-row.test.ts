/**
 * Properties of `maskDataRow`, checked against the message codec: decoding the rewritten
 * frame gives the masked values exactly where masks apply and the original values
 * elsewhere, and a frame the codec rejects (or whose column count differs from the
 * masks) is a DataRowMismatch, never a throw and never the input.
 */
import { Result } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { decodeBackend, encodeBackend, type BackendMessage } from "../../src/codecs/pg/backend.ts"
import { DataRowMismatch, maskDataRow, type ValueRewrite } from "../../src/codecs/pg/data-row.ts"
import { valueMask, type MaskSpec } from "../../src/rules/masking/methods.ts"
import { bytes, nullableBytes } from "./pg-arbitraries.ts"

const RUNS = 1000

type Row = ReadonlyArray<Uint8Array | null>

const encodeRow = (values: Row): Uint8Array => encodeBackend({ _tag: "DataRow", values })

/** The same bytes at a non-zero offset in a larger buffer, as the Framer hands them out. */
const asView = (b: Uint8Array): Uint8Array => {
  const big = new Uint8Array(b.length + 13).fill(0x44)
  big.set(b, 9)
  return big.subarray(9, 9 + b.length)
}

/**
 * The values of a DataRow frame per the codec, or undefined if the codec rejects it or
 * its length field is not the frame's size (which the Framer, not the codec, checks).
 */
const decodeRow = (frame: Uint8Array): Row | undefined => {
  if (frame.length < 5 || new DataView(frame.buffer, frame.byteOffset).getInt32(1) !== frame.length - 1) return undefined
  const m = decodeBackend({ type: frame[0] ?? 0, bytes: frame })
  if (Result.isFailure(m)) return undefined
  const msg: BackendMessage = m.success
  return msg._tag === "DataRow" ? msg.values : undefined
}

const spec: fc.Arbitrary<MaskSpec> = fc.oneof(
  fc.constant({ method: "redact" } as const),
  fc.constant({ method: "null" } as const),
  fc.constant({ method: "email" } as const),
  fc.nat(6).map((keep) => ({ method: "partial", keep }) as const)
)

/** Masks: the real methods over assorted types and formats, and test rewrites of every size. */
const mask: fc.Arbitrary<ValueRewrite> = fc.oneof(
  fc.tuple(spec, fc.constantFrom(25, 1043, 18, 114, 3802, 23, 17, 16384, 70_000), fc.boolean()).map(([s, oid, binary]) => valueMask(s, oid, binary)),
  fc.constant<ValueRewrite>(() => null),
  fc.constant<ValueRewrite>(() => new Uint8Array(0)),
  bytes(40).map((b): ValueRewrite => () => b),
  fc.constant<ValueRewrite>((v) => v.slice().reverse()),
  fc.constant<ValueRewrite>((v) => Uint8Array.from([...v, ...v, 1]))
)

const maskOrNot: fc.Arbitrary<ValueRewrite | undefined> = fc.oneof({ weight: 1, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: mask })

/** A row and one mask slot per column. */
const rowAndMasks = fc
  .array(fc.tuple(nullableBytes(40), maskOrNot), { maxLength: 24 })
  .map((cols) => ({ values: cols.map(([v]) => v), masks: cols.map(([, m]) => m) }))

const isMismatch = (r: unknown): r is DataRowMismatch => r instanceof DataRowMismatch

describe("maskDataRow", () => {
  it("rewrites exactly the non-NULL values of masked columns, and counts them", () => {
    fc.assert(
      fc.property(rowAndMasks, fc.boolean(), fc.array(fc.nat(1000), { minLength: 24, maxLength: 24 }), ({ values, masks }, view, initial) => {
        const frame = view ? asView(encodeRow(values)) : encodeRow(values)
        const before = frame.slice()
        const counts = initial.slice(0, values.length)
        const out = maskDataRow(frame, masks, counts)
        if (isMismatch(out)) throw new Error(`unexpected mismatch: ${out.message}`)
        expect(frame).toEqual(before)
        // A plain Uint8Array, not a Buffer (whose slice would share memory).
        expect(Buffer.isBuffer(out)).toBe(false)

        const expected = values.map((v, i) => (v === null || masks[i] === undefined ? v : masks[i](v)))
        const decoded = decodeRow(out)
        expect(decoded).toBeDefined()
        expect(decoded!.length).toBe(values.length)
        decoded!.forEach((v, i) => {
          if (expected[i] === null) expect(v).toBeNull()
          else expect(v).toEqual(expected[i])
        })
        // The whole frame is what the codec would encode for those values.
        expect(out).toEqual(encodeRow(expected))
        values.forEach((v, i) => {
          expect(counts[i]).toBe(initial[i]! + (v !== null && masks[i] !== undefined ? 1 : 0))
        })
        const rewritten = values.some((v, i) => v !== null && masks[i] !== undefined)
        if (!rewritten) expect(out).toBe(frame)
      }),
      { numRuns: RUNS }
    )
  })

  it("a column count that differs from the masks is a mismatch, and counts are untouched", () => {
    fc.assert(
      fc.property(rowAndMasks, fc.array(maskOrNot, { maxLength: 3 }), fc.boolean(), ({ values, masks }, extra, drop) => {
        fc.pre(drop ? masks.length > 0 : extra.length > 0)
        const other = drop ? masks.slice(1) : [...masks, ...extra]
        const counts = other.map(() => 0)
        expect(isMismatch(maskDataRow(encodeRow(values), other, counts))).toBe(true)
        expect(counts.every((c) => c === 0)).toBe(true)
      }),
      { numRuns: RUNS }
    )
  })

  it("agrees with the codec on damaged frames: a mismatch exactly when the codec rejects them, never a throw", () => {
    const damage = fc.oneof(
      // flip bytes
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 3 }).map(
        (flips) => (f: Uint8Array) => {
          const g = f.slice()
          for (const [at, x] of flips) g[at % g.length] = g[at % g.length]! ^ x
          return g
        }
      ),
      // truncate, keeping or fixing the length field
      fc.tuple(fc.nat(), fc.boolean()).map(([cut, fix]) => (f: Uint8Array) => {
        const g = f.slice(0, cut % (f.length + 1))
        if (fix && g.length >= 5) new DataView(g.buffer).setInt32(1, g.length - 1)
        return g
      }),
      // append bytes, keeping or fixing the length field
      fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 6 }), fc.boolean()).map(([tail, fix]) => (f: Uint8Array) => {
        const g = Uint8Array.from([...f, ...tail])
        if (fix) new DataView(g.buffer).setInt32(1, g.length - 1)
        return g
      })
    )
    fc.assert(
      fc.property(rowAndMasks, damage, ({ values, masks }, hurt) => {
        const frame = hurt(encodeRow(values))
        const counts = masks.map(() => 0)
        const out = maskDataRow(frame, masks, counts)
        const decoded = frame[0] === 0x44 ? decodeRow(frame) : undefined
        if (decoded === undefined || decoded.length !== masks.length) {
          expect(isMismatch(out)).toBe(true)
          expect(counts.every((c) => c === 0)).toBe(true)
        } else {
          // Still a valid DataRow of the right width (e.g. a flipped value byte).
          if (isMismatch(out)) throw new Error(`unexpected mismatch: ${out.message}`)
          expect(decodeRow(out)!.length).toBe(masks.length)
        }
      }),
      { numRuns: RUNS * 2 }
    )
  })

  it("random bytes are a mismatch unless they happen to be a valid DataRow, never a throw", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 40 }),
          // 'D' with a consistent length and a random body: gets past the header checks
          fc.uint8Array({ maxLength: 40 }).map((body) => {
            const g = new Uint8Array(5 + body.length)
            g[0] = 0x44
            new DataView(g.buffer).setInt32(1, 4 + body.length)
            g.set(body, 5)
            return g
          })
        ),
        fc.array(maskOrNot, { maxLength: 4 }),
        (frame, masks) => {
          const out = maskDataRow(frame, masks, masks.map(() => 0))
          const decoded = frame[0] === 0x44 ? decodeRow(frame) : undefined
          expect(isMismatch(out)).toBe(decoded === undefined || decoded.length !== masks.length)
        }
      ),
      { numRuns: RUNS * 2 }
    )
  })

  it("examples: header, negative lengths, trailing bytes, a mismatch is never the input", () => {
    const counts = [0, 0]
    const redact = valueMask({ method: "redact" }, 25, false)
    const good = encodeRow([new TextEncoder().encode("secret"), null])
    const out = maskDataRow(good, [redact, redact], counts)
    expect(decodeRow(out as Uint8Array)).toEqual([new TextEncoder().encode("****"), null])
    expect(counts).toEqual([1, 0])

    const neg = good.slice()
    new DataView(neg.buffer).setInt32(7, -2)
    const bad: Array<Uint8Array> = [
      new Uint8Array(0),
      Uint8Array.of(0x44, 0, 0, 0, 6, 0),
      Uint8Array.of(0x54, ...good.subarray(1)), // 'T', not 'D'
      neg,
      Uint8Array.of(...good.subarray(0, 4), good[4]! + 1, ...good.subarray(5), 0), // one trailing byte
      Uint8Array.of(0x44, 0, 0, 0, 6, 0xff, 0xff) // column count -1
    ]
    for (const f of bad) {
      const r = maskDataRow(f, [redact, redact], counts)
      expect(isMismatch(r)).toBe(true)
      expect(r).not.toBe(f)
    }
    expect(counts).toEqual([1, 0])
    expect(isMismatch(maskDataRow(Uint8Array.of(0x44, 0, 0, 0, 6, 0xff, 0xff), [], []))).toBe(true)
    expect(maskDataRow(Uint8Array.of(0x44, 0, 0, 0, 6, 0, 0), [], [])).toEqual(Uint8Array.of(0x44, 0, 0, 0, 6, 0, 0))
  })
})
