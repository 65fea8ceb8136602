/**
 * Properties of the Framer: chunking never changes the frames, length limits fire
 * as soon as a header is in, garbage never throws or hangs, and frames that arrive
 * inside one read are handed out as views of that read (no copy).
 */
import { Result } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { BackendType, decodeBackend, encodeBackend } from "../../src/codecs/pg/backend.ts"
import { DecodeError, FrameError } from "../../src/codecs/pg/errors.ts"
import { Framer, MAX_STARTUP_PACKET, type Frame } from "../../src/codecs/pg/framing.ts"
import { decodeFrontend, decodeStartup, encodeFrontend, encodeStartup, FrontendType } from "../../src/codecs/pg/frontend.ts"
import { backendMessage, concat, cutPoints, frontendMessage, split, startupByTag, startupPacket, type Chunk } from "./pg-arbitraries.ts"

const MAX = 1 << 20

interface Seen {
  readonly frame: Frame
  /** The chunk whose push returned it. */
  readonly chunk: number
}

/** Feeds typed chunks; fails the test on a FrameError. */
const feedTyped = (framer: Framer, chunks: ReadonlyArray<Chunk>): Array<Seen> => {
  const seen: Array<Seen> = []
  chunks.forEach((c, i) => {
    const r = framer.push(c.bytes)
    if (r instanceof FrameError) throw r
    for (const frame of r) seen.push({ frame, chunk: i })
  })
  return seen
}

const shape = (frames: ReadonlyArray<Frame>) => frames.map((f) => ({ type: f.type, bytes: Array.from(f.bytes) }))

/**
 * The stream offsets of each frame, given that frames come out in order and back to back.
 * Used to know which frames lay entirely inside a single chunk.
 */
const offsets = (frames: ReadonlyArray<Frame>): Array<number> => {
  let at = 0
  return frames.map((f) => {
    const start = at
    at += f.bytes.length
    return start
  })
}

const chunkHolding = (chunks: ReadonlyArray<Chunk>, start: number, end: number): Chunk | undefined =>
  chunks.find((c) => c.start <= start && end <= c.start + c.bytes.length && c.bytes.length > 0)

/** Every frame lying entirely inside one chunk must be a view of that chunk's memory, at the right place. */
const expectZeroCopy = (frames: ReadonlyArray<Frame>, chunks: ReadonlyArray<Chunk>, base = 0): number => {
  let views = 0
  offsets(frames).forEach((start, i) => {
    const f = frames[i]!
    const c = chunkHolding(chunks, base + start, base + start + f.bytes.length)
    if (c === undefined) return
    expect(f.bytes.buffer).toBe(c.bytes.buffer)
    expect(f.bytes.byteOffset).toBe(c.bytes.byteOffset + (base + start - c.start))
    views++
  })
  return views
}

describe("any split of the stream yields the same frames", () => {
  const typedStream = <M>(messages: fc.Arbitrary<M>, encode: (m: M) => Uint8Array) =>
    fc
      .array(messages, { minLength: 1, maxLength: 16 })
      .map((ms) => ms.map(encode))
      .chain((encoded) => {
        const whole = concat(encoded)
        return fc.tuple(fc.constant(encoded), fc.constant(whole), cutPoints(whole.length))
      })

  const check = (encoded: ReadonlyArray<Uint8Array>, whole: Uint8Array, cuts: ReadonlyArray<number>) => {
    const wholeFramer = new Framer(MAX, { startup: false })
    const once = feedTyped(wholeFramer, [{ start: 0, bytes: whole }]).map((s) => s.frame)
    expect(shape(once)).toEqual(encoded.map((b) => ({ type: b[0], bytes: Array.from(b) })))
    expect(wholeFramer.hasBuffered).toBe(false)

    const chunks = split(whole, cuts)
    const framer = new Framer(MAX, { startup: false })
    const seen = feedTyped(framer, chunks)
    expect(shape(seen.map((s) => s.frame))).toEqual(shape(once))
    expect(framer.hasBuffered).toBe(false)
    // A frame is returned by the push that completes it, not later.
    const starts = offsets(seen.map((s) => s.frame))
    seen.forEach((s, i) => {
      const end = starts[i]! + s.frame.bytes.length
      const c = chunks[s.chunk]!
      expect(c.start < end && end <= c.start + c.bytes.length).toBe(true)
    })
  }

  it("backend messages", () => {
    fc.assert(
      fc.property(typedStream(backendMessage, encodeBackend), ([encoded, whole, cuts]) => check(encoded, whole, cuts)),
      { numRuns: 400 }
    )
  })

  it("frontend messages", () => {
    fc.assert(
      fc.property(typedStream(frontendMessage, encodeFrontend), ([encoded, whole, cuts]) => check(encoded, whole, cuts)),
      { numRuns: 400 }
    )
  })

  it("startup packet(s), then typed frames: startup → expectTyped() → drain()", () => {
    // An SSLRequest or GSSENCRequest may precede the StartupMessage (both untyped).
    const untyped = fc.oneof(
      fc.tuple(startupPacket).map((ps) => ps),
      fc.tuple(fc.oneof(startupByTag.SSLRequest, startupByTag.GSSENCRequest), startupByTag.StartupMessage)
    )
    const scenario = fc
      .tuple(untyped, fc.array(frontendMessage, { maxLength: 10 }))
      .chain(([ps, ms]) => {
        const encoded = [...ps.map((p) => ({ type: 0, bytes: encodeStartup(p) })), ...ms.map((m) => ({ type: -1, bytes: encodeFrontend(m) }))]
        const whole = concat(encoded.map((e) => e.bytes))
        return fc.tuple(fc.constant(ps.length), fc.constant(encoded), fc.constant(whole), cutPoints(whole.length))
      })
    fc.assert(
      fc.property(scenario, ([untypedCount, encoded, whole, cuts]) => {
        const chunks = split(whole, cuts)
        const framer = new Framer(MAX, { startup: true })
        const out: Array<Frame> = []
        let untypedSeen = 0
        const take = (r: Array<Frame> | FrameError): void => {
          if (r instanceof FrameError) throw r
          for (const f of r) {
            out.push(f)
            if (f.type !== 0) continue
            untypedSeen++
            // The caller's protocol: after the last untyped packet switch to typed mode,
            // then take whatever was already buffered behind it.
            if (untypedSeen === untypedCount) framer.expectTyped()
            take(framer.drain())
          }
        }
        for (const c of chunks) take(framer.push(c.bytes))
        expect(untypedSeen).toBe(untypedCount)
        expect(shape(out)).toEqual(
          encoded.map((e) => ({ type: e.type === 0 ? 0 : e.bytes[0], bytes: Array.from(e.bytes) }))
        )
        expect(framer.hasBuffered).toBe(false)
        expectZeroCopy(out, chunks)
      }),
      { numRuns: 400 }
    )
  })
})

describe("zero copy", () => {
  it("a frame that arrives inside one chunk is a view of that chunk, wherever the chunk boundaries fall", () => {
    const scenario = fc
      .array(fc.oneof(backendMessage.map(encodeBackend), frontendMessage.map(encodeFrontend)), { minLength: 1, maxLength: 16 })
      .chain((encoded) => {
        const whole = concat(encoded)
        return fc.tuple(fc.constant(whole), cutPoints(whole.length))
      })
    let views = 0
    fc.assert(
      fc.property(scenario, ([whole, cuts]) => {
        const chunks = split(whole, cuts)
        views += expectZeroCopy(feedTyped(new Framer(MAX, { startup: false }), chunks).map((s) => s.frame), chunks)
      }),
      { numRuns: 400 }
    )
    expect(views).toBeGreaterThan(1000)
  })

  it("a batch of whole frames in one read costs no copy at all", () => {
    fc.assert(
      fc.property(fc.array(backendMessage.map(encodeBackend), { minLength: 1, maxLength: 20 }), (encoded) => {
        const whole = concat(encoded)
        const frames = feedTyped(new Framer(MAX, { startup: false }), [{ start: 0, bytes: whole }])
        for (const { frame } of frames) expect(frame.bytes.buffer).toBe(whole.buffer)
      }),
      { numRuns: 200 }
    )
  })

  it("a frame split over many chunks is copied once into a frame of its own", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 2000 }), fc.integer({ min: 1, max: 64 }), (data, step) => {
        const wire = encodeBackend({ _tag: "CopyData", data })
        const cuts = Array.from({ length: Math.floor(wire.length / step) }, (_, i) => (i + 1) * step).filter((c) => c < wire.length)
        const frames = feedTyped(new Framer(MAX, { startup: false }), split(wire, cuts)).map((s) => s.frame)
        expect(frames.length).toBe(1)
        const f = frames[0]!.bytes
        expect(Array.from(f)).toEqual(Array.from(wire))
        // Joined into a buffer of exactly its own size: no retained read buffers around it.
        if (cuts.length > 0) expect(f.byteLength).toBe(f.buffer.byteLength)
      }),
      { numRuns: 200 }
    )
  })
})

// ---- length limits ---------------------------------------------------------

const header = (type: number, length: number): Uint8Array => {
  const b = new Uint8Array(5)
  b[0] = type
  new DataView(b.buffer).setInt32(1, length)
  return b
}
const untypedHeader = (length: number): Uint8Array => {
  const b = new Uint8Array(4)
  new DataView(b.buffer).setInt32(0, length)
  return b
}

/**
 * Feeds `valid` frames and then `bad` (a header, maybe with some body bytes after it),
 * split at `cuts`. The FrameError must come from exactly the push that completes the
 * bad header, and earlier pushes may only return a prefix of the valid frames.
 */
const expectErrorAtHeader = (
  framer: Framer,
  valid: Uint8Array,
  bad: Uint8Array,
  headerLength: number,
  cuts: ReadonlyArray<number>
): FrameError => {
  const whole = concat([valid, bad])
  const headerEnd = valid.length + headerLength
  const chunks = split(whole, cuts)
  const before: Array<Frame> = []
  for (const c of chunks) {
    const r = framer.push(c.bytes)
    const completesHeader = c.start < headerEnd && headerEnd <= c.start + c.bytes.length
    if (r instanceof FrameError) {
      expect(completesHeader).toBe(true)
      expect(Array.from(concat(before.map((f) => f.bytes)))).toEqual(Array.from(valid.subarray(0, before.reduce((n, f) => n + f.bytes.length, 0))))
      return r
    }
    expect(completesHeader).toBe(false)
    before.push(...r)
  }
  throw new Error("no FrameError")
}

describe("length limits", () => {
  const prefix = fc.array(backendMessage.map(encodeBackend), { maxLength: 4 }).map(concat)
  const typeByte = fc.oneof(fc.constantFrom(...Object.values(BackendType), ...Object.values(FrontendType)), fc.integer({ min: 0, max: 255 }))

  const scenario = (lengths: fc.Arbitrary<number>) =>
    fc.tuple(prefix, typeByte, lengths, fc.uint8Array({ maxLength: 16 }), fc.integer({ min: 8, max: 4096 })).chain(([valid, type, length, tail, max]) =>
      fc.tuple(fc.constant({ valid, type, length, tail, max }), cutPoints(valid.length + 5 + tail.length))
    )

  it("a typed frame over the limit fails as soon as its header is in", () => {
    fc.assert(
      fc.property(
        fc.tuple(prefix, typeByte, fc.integer({ min: 1, max: 1 << 24 }), fc.uint8Array({ maxLength: 16 }), fc.integer({ min: 8, max: 4096 })).chain(
          ([valid, type, excess, tail, max]) =>
            fc.tuple(fc.constant({ valid, type, length: Math.max(max, valid.length) + excess, tail, max }), cutPoints(valid.length + 5 + tail.length))
        ),
        ([{ valid, type, length, tail, max: requested }, cuts]) => {
          // The limit must let the valid prefix through.
          const max = Math.max(requested, valid.length)
          const e = expectErrorAtHeader(new Framer(max, { startup: false }), valid, concat([header(type, length), tail]), 5, cuts)
          expect(e.reason).toBe("length-too-large")
          expect(e.type).toBe(type)
          expect(e.length).toBe(length)
          expect(e.limit).toBe(max)
        }
      ),
      { numRuns: 300 }
    )
  })

  it("a typed length below 4 (including negative) fails as soon as its header is in", () => {
    const tooSmall = fc.oneof(fc.integer({ min: -0x8000_0000, max: 3 }), fc.constantFrom(-1, 0, 1, 2, 3, -0x8000_0000))
    fc.assert(
      fc.property(scenario(tooSmall), ([{ valid, type, length, tail }, cuts]) => {
        const e = expectErrorAtHeader(new Framer(MAX, { startup: false }), valid, concat([header(type, length), tail]), 5, cuts)
        expect(e.reason).toBe("length-too-small")
        expect(e.type).toBe(type)
        expect(e.length).toBe(length)
      }),
      { numRuns: 300 }
    )
  })

  it("exactly at the limit is accepted, one past is not", () => {
    fc.assert(
      fc.property(fc.integer({ min: 4, max: 2048 }), fc.integer({ min: 0, max: 255 }), (max, type) => {
        const body = new Uint8Array(max - 4)
        const at = concat([header(type, max), body])
        const framesAt = new Framer(max, { startup: false }).push(at)
        expect(Array.isArray(framesAt) && framesAt.length === 1 && framesAt[0]!.bytes.length === max + 1).toBe(true)
        const past = new Framer(max, { startup: false }).push(header(type, max + 1))
        expect(past).toBeInstanceOf(FrameError)
      }),
      { numRuns: 100 }
    )
  })

  it("a startup packet over 10000 bytes or under 8 fails as soon as its length is in", () => {
    const bad = fc.oneof(
      fc.integer({ min: MAX_STARTUP_PACKET + 1, max: 0x7fff_ffff }),
      fc.integer({ min: -0x8000_0000, max: 7 }),
      fc.constantFrom(MAX_STARTUP_PACKET + 1, 7, 4, 0, -1)
    )
    fc.assert(
      fc.property(bad, fc.uint8Array({ maxLength: 16 }), (length, tail) =>
        fc.assert(
          fc.property(cutPoints(4 + tail.length), (cuts) => {
            const e = expectErrorAtHeader(new Framer(MAX, { startup: true }), new Uint8Array(0), concat([untypedHeader(length), tail]), 4, cuts)
            expect(e.reason).toBe(length > MAX_STARTUP_PACKET ? "length-too-large" : "length-too-small")
            expect(e.type).toBe(0)
            expect(e.length).toBe(length)
            expect(e.limit).toBe(MAX_STARTUP_PACKET)
          }),
          { numRuns: 5 }
        )
      ),
      { numRuns: 200 }
    )
  })

  it("startup packets of exactly 8 and 10000 bytes are accepted", () => {
    for (const n of [8, MAX_STARTUP_PACKET]) {
      const b = new Uint8Array(n)
      new DataView(b.buffer).setInt32(0, n)
      const r = new Framer(MAX, { startup: true }).push(b)
      expect(Array.isArray(r) && r.length === 1 && r[0]!.bytes.length === n).toBe(true)
    }
  })

  it("the typed limit does not apply to the startup packet, nor the startup limit to typed frames", () => {
    const framer = new Framer(16, { startup: true })
    const startup = encodeStartup({ _tag: "StartupMessage", protocolVersion: 196608, parameters: new Map([["user", "a-rather-long-user-name"]]) })
    const r = framer.push(startup)
    expect(Array.isArray(r) && r.length === 1).toBe(true)
    framer.expectTyped()
    expect(framer.push(encodeFrontend({ _tag: "Query", sql: "x".repeat(20) }))).toBeInstanceOf(FrameError)
    const big = new Framer(MAX, { startup: false }).push(encodeFrontend({ _tag: "Query", sql: "x".repeat(20_000) }))
    expect(Array.isArray(big) && big.length === 1).toBe(true)
  })
})

// ---- garbage ---------------------------------------------------------------

const knownTypes = [...new Set([...Object.values(BackendType), ...Object.values(FrontendType)])]

/** Bytes that look a bit like the protocol: small ints, NULs, -1s, type letters. */
const protocolish = fc.oneof(
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 255 }) },
  { weight: 2, arbitrary: fc.constantFrom(0, 0, 0, 1, 4, 5, 8, 0xff) },
  { weight: 1, arbitrary: fc.constantFrom(...knownTypes) }
)
const garbage = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  fc.array(protocolish, { maxLength: 300 }).map((a) => Uint8Array.from(a)),
  // Well-framed garbage: real headers around arbitrary bodies.
  fc
    .array(
      fc.tuple(fc.oneof(fc.constantFrom(...knownTypes), fc.integer({ min: 0, max: 255 })), fc.array(protocolish, { maxLength: 40 })),
      { maxLength: 10 }
    )
    .map((parts) => concat(parts.map(([t, body]) => concat([header(t, body.length + 4), Uint8Array.from(body)]))))
)

/** A decoder must answer with a Result; a failure must be a DecodeError for that frame's type. */
const expectResult = (r: Result.Result<unknown, DecodeError>, type: number): void => {
  expect(Result.isResult(r)).toBe(true)
  if (Result.isFailure(r)) {
    expect(r.failure).toBeInstanceOf(DecodeError)
    expect(r.failure.type).toBe(type)
  }
}

describe("garbage", () => {
  it("arbitrary bytes in arbitrary chunks: the Framer never throws, and every frame decodes to a Result", () => {
    const scenario = garbage.chain((whole) =>
      fc.tuple(fc.constant(whole), cutPoints(whole.length), fc.boolean(), fc.integer({ min: 4, max: 400 }))
    )
    fc.assert(
      fc.property(scenario, ([whole, cuts, startup, max]) => {
        const framer = new Framer(max, { startup })
        // Tracked here, not read off frame.type: a typed frame may carry type byte 0.
        let typed = !startup
        let consumed = 0
        let failed = false
        const check = (r: Array<Frame> | FrameError): void => {
          if (r instanceof FrameError) {
            failed = true
            return
          }
          for (const f of r) {
            // Frames are back to back in the stream and carry their own length.
            expect(Array.from(f.bytes)).toEqual(Array.from(whole.subarray(consumed, consumed + f.bytes.length)))
            consumed += f.bytes.length
            const declared = new DataView(f.bytes.buffer, f.bytes.byteOffset).getInt32(typed ? 1 : 0)
            expect(f.bytes.length).toBe(typed ? declared + 1 : declared)
            if (!typed) {
              expect(f.type).toBe(0)
              expectResult(decodeStartup(f), 0)
              typed = true
              framer.expectTyped()
              check(framer.drain())
            } else {
              expect(f.type).toBe(f.bytes[0])
              expectResult(decodeFrontend(f), f.type)
              expectResult(decodeBackend(f), f.type)
            }
            if (failed) return
          }
        }
        for (const c of split(whole, cuts)) {
          check(framer.push(c.bytes))
          if (failed) break
        }
        // Whatever was not framed is still buffered (or the stream was refused).
        if (!failed) expect(framer.hasBuffered).toBe(consumed < whole.length)
      }),
      { numRuns: 1000 }
    )
  })

  it("arbitrary bodies under every known type byte decode to a Result, never a throw", () => {
    const body = fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.array(protocolish, { maxLength: 64 }).map((a) => Uint8Array.from(a)))
    fc.assert(
      fc.property(fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...knownTypes) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) }), body, (type, b) => {
        const frame: Frame = { type, bytes: concat([header(type, b.length + 4), b]) }
        expectResult(decodeFrontend(frame), type)
        expectResult(decodeBackend(frame), type)
      }),
      { numRuns: 3000 }
    )
  })

  it("arbitrary startup bodies under every request code decode to a Result, never a throw", () => {
    const code = fc.oneof(fc.constantFrom(196608, 196610, 80877102, 80877103, 80877104, 0x00020000), fc.integer({ min: -0x8000_0000, max: 0x7fff_ffff }))
    const body = fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.array(protocolish, { maxLength: 64 }).map((a) => Uint8Array.from(a)))
    fc.assert(
      fc.property(code, body, (c, b) => {
        const bytes = concat([untypedHeader(8 + b.length), untypedHeader(c), b])
        expectResult(decodeStartup({ type: 0, bytes }), 0)
      }),
      { numRuns: 2000 }
    )
  })
})
