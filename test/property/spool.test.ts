/**
 * The local spool (src/sinks/spool/): round trips across segment rolls, replay of exactly
 * the unacknowledged records after reopen, deletion of acknowledged segments, torn tails
 * at every cut, damage in the middle, the bound (refuse and drop), concurrency, and the
 * interruptible wait. The SIGKILL test is in spool-crash.test.ts.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Fiber, Logger, Result } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import { MaxOpsBeforeYield } from "effect/Scheduler"
import fc from "fast-check"
import { afterAll, describe, expect, it } from "vitest"
import { crc32 } from "node:zlib"
import { encodeFrames, HEADER_BYTES, headerCheck, parseSegmentName, scanSegment, segmentName } from "../../src/sinks/spool/format.ts"
import { openSpool, type Spool, SpoolCorrupt, SpoolFailure, SpoolFull, type SpoolOptions, type SpoolRecord } from "../../src/sinks/spool/spool.ts"

const roots: Array<string> = []
const tempDir = (): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "sluice-spool-"))
  roots.push(d)
  return d
}
afterAll(() => {
  for (const d of roots) fs.rmSync(d, { recursive: true, force: true })
})

interface LogLine {
  readonly level: string
  readonly text: string
}

/** Runs a scoped program, capturing (and silencing) its logs. */
const run = async <A, E>(program: Effect.Effect<A, E, import("effect").Scope.Scope>, logs: Array<LogLine> = []): Promise<A> => {
  const logger = Logger.make((o) => {
    logs.push({ level: o.logLevel, text: (o.message as ReadonlyArray<unknown>).map((m) => (typeof m === "string" ? m : JSON.stringify(m))).join(" ") })
  })
  return Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(Logger.layer([logger]))))
}

const defaults = (directory: string, overrides: Partial<SpoolOptions> = {}): SpoolOptions => ({
  directory,
  maxBytes: 64 * 1024 * 1024,
  segmentBytes: 4096,
  fsyncIntervalMs: 5,
  onFull: "refuse",
  ...overrides
})

/** Reads exactly `count` records with the given limits, checking each batch obeys them. */
const take = (
  spool: Spool,
  count: number,
  limits: { maxRecords: number; maxBytes: number } = { maxRecords: 100, maxBytes: 1 << 20 }
): Effect.Effect<Array<SpoolRecord>, SpoolFailure> =>
  Effect.gen(function*() {
    const out: Array<SpoolRecord> = []
    while (out.length < count) {
      const batch = yield* spool.next(limits)
      expect(batch.length).toBeGreaterThan(0)
      expect(batch.length).toBeLessThanOrEqual(limits.maxRecords)
      if (batch.length > 1) expect(batch.reduce((n, r) => n + r.data.length, 0)).toBeLessThanOrEqual(limits.maxBytes)
      out.push(...batch)
    }
    expect(out.length).toBe(count)
    return out
  })

/** Everything not yet acknowledged (the count comes from stats). */
const takeAll = (spool: Spool) => Effect.suspend(() => take(spool, spool.stats().records))

const bytesOf = (records: ReadonlyArray<SpoolRecord>) => records.map((r) => Buffer.from(r.data).toString("hex"))
const hex = (records: ReadonlyArray<Uint8Array>) => records.map((r) => Buffer.from(r).toString("hex"))

/** `append`, or `appendNow` and then the Effect it returns, if any: the two must do the same. */
const appendVia = (now: boolean) => (spool: Spool, records: ReadonlyArray<Uint8Array>) =>
  now
    ? Effect.suspend(() => spool.appendNow(records as NonEmptyReadonlyArray<Uint8Array>) ?? Effect.void)
    : spool.append(records as NonEmptyReadonlyArray<Uint8Array>)

/** Every other batch through `appendNow`. */
const appendAll = (spool: Spool, batches: ReadonlyArray<ReadonlyArray<Uint8Array>>) =>
  Effect.forEach(batches, (b, i) => appendVia(i % 2 === 1)(spool, b), { discard: true })

/** Polls until `check` holds (the sync fiber's work is asynchronous), for up to 5 s. */
const eventually = (check: () => boolean): Effect.Effect<void> =>
  Effect.gen(function*() {
    const until = Date.now() + 5000
    while (!check() && Date.now() < until) yield* Effect.sleep(5)
  })

const segmentFiles = (dir: string): Array<string> => fs.readdirSync(dir).filter((n) => parseSegmentName(n) !== undefined).sort()

const copyDir = (from: string): string => {
  const to = tempDir()
  fs.cpSync(from, to, { recursive: true })
  return to
}

const record = fc.uint8Array({ maxLength: 700 })
const batches = fc.array(fc.array(record, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 25 })
const limits = fc.record({ maxRecords: fc.integer({ min: 1, max: 12 }), maxBytes: fc.integer({ min: 0, max: 3000 }) })

/** A spool written and closed, every record's position known, nothing acknowledged. */
const written = async (
  data: ReadonlyArray<ReadonlyArray<Uint8Array>>,
  segmentBytes: number
): Promise<{ dir: string; positions: Array<SpoolRecord["position"]> }> => {
  const dir = tempDir()
  const positions = await run(Effect.gen(function*() {
    const spool = yield* openSpool(defaults(dir, { segmentBytes }))
    yield* appendAll(spool, data)
    return (yield* takeAll(spool)).map((r) => r.position)
  }))
  return { dir, positions }
}

describe("spool: the frame format", () => {
  it("the header check is CRC-32 of the first 8 bytes; frames scan back exactly", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }), (records) => {
        const frames = encodeFrames(records, records.reduce((n, r) => n + HEADER_BYTES + r.length, 0))
        let at = 0
        for (const record of records) {
          expect(frames.readUInt32BE(at)).toBe(record.length)
          expect(frames.readUInt32BE(at + 4)).toBe(crc32(record))
          expect(frames.readUInt32BE(at + 8)).toBe(crc32(frames.subarray(at, at + 8)))
          expect(headerCheck(frames, at)).toBe(crc32(frames.subarray(at, at + 8)))
          expect(frames.subarray(at + HEADER_BYTES, at + HEADER_BYTES + record.length)).toEqual(Buffer.from(record))
          at += HEADER_BYTES + record.length
        }
        expect(at).toBe(frames.length)
        const scan = scanSegment(frames)
        expect(scan.damage).toEqual([])
        expect(scan.tail).toBeUndefined()
        expect(scan.frames.map((f) => f.length)).toEqual(records.map((r) => r.length + HEADER_BYTES))
      })
    )
  })

  it("zeros are never a frame (a zero-filled tail after a power loss is a torn tail)", () => {
    const scan = scanSegment(Buffer.concat([encodeFrames([new Uint8Array([1, 2, 3])], HEADER_BYTES + 3), Buffer.alloc(4096)]))
    expect(scan.frames.length).toBe(1)
    expect(scan.tail).toMatchObject({ from: 15, to: 15 + 4096 })
  })
})

describe("spool: round trips", () => {
  it("delivers random batches in order across segment rolls, within the read limits", async () => {
    await fc.assert(
      fc.asyncProperty(batches, fc.integer({ min: 16, max: 3000 }), limits, async (data, segmentBytes, lim) => {
        const dir = tempDir()
        const flat = data.flat()
        const total = flat.reduce((n, r) => n + HEADER_BYTES + r.length, 0)
        await run(Effect.gen(function*() {
          const spool = yield* openSpool(defaults(dir, { segmentBytes }))
          yield* appendAll(spool, data)
          expect(spool.stats()).toMatchObject({ records: flat.length, bytes: total, dropped: 0, full: false })
          const got = yield* take(spool, flat.length, lim)
          expect(bytesOf(got)).toEqual(hex(flat))
          for (let i = 1; i < got.length; i++) {
            const [a, b] = [got[i - 1]!.position, got[i]!.position]
            expect(b.segment > a.segment || (b.segment === a.segment && b.offset > a.offset)).toBe(true)
          }
          // a segment only exceeds segmentBytes when one batch does
          const maxBatch = Math.max(...data.map((b) => b.reduce((n, r) => n + HEADER_BYTES + r.length, 0)))
          for (const name of segmentFiles(dir)) {
            expect(fs.statSync(path.join(dir, name)).size).toBeLessThanOrEqual(Math.max(segmentBytes, maxBatch))
          }
          if (total > segmentBytes + maxBatch) expect(spool.stats().segments).toBeGreaterThan(1)
        }))
      }),
      { numRuns: 40 }
    )
  })

  it("reads, acks and rewinds between appends deliver every record in order, from memory or the files (any recentBytes)", async () => {
    const step = fc.record({ batch: fc.array(record, { minLength: 1, maxLength: 6 }), now: fc.boolean(), read: fc.nat(8), ack: fc.boolean(), rewind: fc.boolean() })
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), fc.integer({ min: 16, max: 3000 }), fc.integer({ min: 0, max: 4000 }), limits, async (steps, segmentBytes, recentBytes, lim) => {
        const dir = tempDir()
        await run(Effect.gen(function*() {
          const spool = yield* openSpool(defaults(dir, { segmentBytes, recentBytes }))
          // the model: every record appended, how far the reader got, how far it acknowledged
          const all: Array<Uint8Array> = []
          let read = 0
          let acked = 0
          let lastRead: SpoolRecord["position"] | undefined
          for (const s of steps) {
            yield* appendVia(s.now)(spool, s.batch)
            all.push(...s.batch)
            const got: Array<SpoolRecord> = []
            for (const want = Math.min(s.read, all.length - read); got.length < want;) {
              got.push(...(yield* spool.next({ maxRecords: Math.min(lim.maxRecords, want - got.length), maxBytes: lim.maxBytes })))
            }
            expect(bytesOf(got)).toEqual(hex(all.slice(read, read + got.length)))
            read += got.length
            if (got.length > 0) lastRead = got[got.length - 1]!.position
            if (s.ack && lastRead !== undefined && read > acked) {
              yield* spool.ack(lastRead)
              acked = read
            }
            if (s.rewind) {
              yield* spool.rewind()
              read = acked
            }
          }
          expect(bytesOf(yield* take(spool, all.length - read, lim))).toEqual(hex(all.slice(read)))
        }))
      }),
      { numRuns: 60 }
    )
  })

  it("a reader that keeps up gets the latest appends from memory; one further behind than recentBytes reads the files", async () => {
    const dir = tempDir()
    const record = (fill: number) => new Uint8Array(100).fill(fill)
    // damage the file under a record once written: only a read of the file can see it
    const damage = (offset: number) => {
      const fd = fs.openSync(path.join(dir, segmentFiles(dir)[0]!), "r+")
      fs.writeSync(fd, Buffer.from([0xff]), 0, 1, offset + HEADER_BYTES + 5)
      fs.closeSync(fd)
    }
    const frame = HEADER_BYTES + 100
    await run(Effect.gen(function*() {
      const spool = yield* openSpool(defaults(dir, { segmentBytes: 1 << 20, recentBytes: 3 * frame }))
      yield* spool.append([record(1)])
      damage(0)
      expect(bytesOf(yield* spool.next({ maxRecords: 10, maxBytes: 1 << 20 }))).toEqual(hex([record(1)]))
      // four appends behind: the first of them is no longer in memory
      for (const fill of [2, 3, 4, 5]) yield* spool.append([record(fill)])
      damage(frame)
      const behind = yield* Effect.result(spool.next({ maxRecords: 10, maxBytes: 1 << 20 }))
      expect(Result.isFailure(behind) && behind.failure.message).toMatch(new RegExp(`offset ${frame} fails its CRC`))
    }))
  })

  it("a record larger than a segment gets a segment of its own; one larger than maxBytes is refused", async () => {
    const dir = tempDir()
    await run(Effect.gen(function*() {
      const spool = yield* openSpool(defaults(dir, { segmentBytes: 100, maxBytes: 20_000 }))
      const big = new Uint8Array(5000).fill(7)
      yield* spool.append([new Uint8Array([1]), big, new Uint8Array([2])])
      yield* spool.append([big])
      const got = yield* take(spool, 4, { maxRecords: 10, maxBytes: 10 })
      expect(got.map((r) => r.data.length)).toEqual([1, 5000, 1, 5000])
      expect(new Set(got.map((r) => r.position.segment)).size).toBe(2) // first batch in one, the big one alone
      const tooBig = yield* Effect.result(spool.append([new Uint8Array(20_000)]))
      expect(Result.isFailure(tooBig) && tooBig.failure).toBeInstanceOf(SpoolFailure)
    }))
  })
})

describe("spool: acknowledgement and replay", () => {
  it("reopen replays exactly the unacknowledged records, in order", async () => {
    await fc.assert(
      fc.asyncProperty(batches, batches, fc.integer({ min: 32, max: 2000 }), fc.nat(), fc.nat(), async (first, second, segmentBytes, k1, k2) => {
        const dir = tempDir()
        const a = first.flat()
        const b = second.flat()
        const acked1 = k1 % (a.length + 1)
        // session 1: append, read all, acknowledge the first acked1
        await run(Effect.gen(function*() {
          const spool = yield* openSpool(defaults(dir, { segmentBytes }))
          yield* appendAll(spool, first)
          const got = yield* take(spool, a.length)
          if (acked1 > 0) yield* spool.ack(got[acked1 - 1]!.position)
          expect(spool.stats().records).toBe(a.length - acked1)
        }))
        // session 2: the rest of session 1 again, then more; acknowledge some of everything
        const all = [...a.slice(acked1), ...b]
        const acked2 = k2 % (all.length + 1)
        await run(Effect.gen(function*() {
          const spool = yield* openSpool(defaults(dir, { segmentBytes }))
          expect(spool.stats().records).toBe(a.length - acked1)
          yield* appendAll(spool, second)
          const got = yield* take(spool, all.length)
          expect(bytesOf(got)).toEqual(hex(all))
          if (acked2 > 0) yield* spool.ack(got[acked2 - 1]!.position)
        }))
        // session 3: exactly what session 2 did not acknowledge
        await run(Effect.gen(function*() {
          const spool = yield* openSpool(defaults(dir, { segmentBytes }))
          expect(bytesOf(yield* takeAll(spool))).toEqual(hex(all.slice(acked2)))
        }))
      }),
      { numRuns: 30 }
    )
  })

  it("acknowledged segments are deleted by the group commit, and the ack survives a crash image", async () => {
    const dir = tempDir()
    const records = Array.from({ length: 200 }, (_, i) => new Uint8Array(100).fill(i))
    await run(Effect.gen(function*() {
      const spool = yield* openSpool(defaults(dir, { segmentBytes: 1000, fsyncIntervalMs: 5 }))
      yield* spool.append(records as unknown as NonEmptyReadonlyArray<Uint8Array>)
      // one batch lands in one segment: roll with smaller appends
      yield* Effect.forEach(records, (r) => spool.append([r]), { discard: true })
      expect(spool.stats().segments).toBeGreaterThan(10)
      const got = yield* take(spool, 400)
      yield* spool.ack(got[299]!.position)
      const expected = Math.ceil((100 * 112) / 1000) + 1
      yield* eventually(() => segmentFiles(dir).length <= expected && spool.stats().segments <= expected)
      const left = segmentFiles(dir)
      expect(left.length).toBe(spool.stats().segments)
      expect(left.length).toBeLessThanOrEqual(expected)
      expect(spool.stats()).toMatchObject({ records: 100, bytes: 100 * 112 })
      // what a SIGKILL now would leave behind: the ack is already on disk
      const image = copyDir(dir)
      const again = yield* openSpool(defaults(image, { segmentBytes: 1000 }))
      expect(bytesOf(yield* takeAll(again))).toEqual(hex(records.slice(100)))
      yield* spool.ack(got[399]!.position)
      yield* eventually(() => segmentFiles(dir).length === 1 && spool.stats().segments === 1)
      expect(spool.stats()).toMatchObject({ records: 0, bytes: 0, segments: 1 })
      expect(segmentFiles(dir).length).toBe(1)
    }))
    // reopened: nothing to deliver, only the fresh active segment
    await run(Effect.gen(function*() {
      const spool = yield* openSpool(defaults(dir))
      expect(spool.stats()).toMatchObject({ records: 0, bytes: 0, segments: 1 })
      expect(segmentFiles(dir).length).toBe(1)
    }))
  })

  it("ack: positions already acknowledged are a no-op; positions never delivered are refused", async () => {
    const dir = tempDir()
    await run(Effect.gen(function*() {
      const spool = yield* openSpool(defaults(dir))
      yield* spool.append([new Uint8Array([1]), new Uint8Array([2]), new Uint8Array([3])])
      const [r1, r2] = yield* take(spool, 2, { maxRecords: 2, maxBytes: 100 })
      const beyond = yield* Effect.result(spool.ack({ segment: r2!.position.segment, offset: r2!.position.offset + 13 }))
      expect(Result.isFailure(beyond) && beyond.failure).toBeInstanceOf(SpoolFailure)
      yield* spool.ack(r2!.position)
      yield* spool.ack(r1!.position)
      expect(spool.stats().records).toBe(1)
    }))
  })

  it("rewind delivers again what was read but not acknowledged", async () => {
    const dir = tempDir()
    await run(Effect.gen(function*() {
      const spool = yield* openSpool(defaults(dir))
      const rs = Array.from({ length: 10 }, (_, i) => new Uint8Array([i]))
      yield* spool.append(rs as unknown as NonEmptyReadonlyArray<Uint8Array>)
      const got = yield* take(spool, 6, { maxRecords: 3, maxBytes: 100 })
      yield* spool.ack(got[2]!.position)
      yield* spool.rewind()
      expect(bytesOf(yield* take(spool, 7))).toEqual(hex(rs.slice(3)))
    }))
  })

  it("a damaged ack file means every record is delivered again, with an error logged", async () => {
    const dir = tempDir()
    const rs = [new Uint8Array([1]), new Uint8Array([2])]
    await run(Effect.gen(function*() {
      const spool = yield* openSpool(defaults(dir))
      yield* spool.append([rs[0]!])
      yield* spool.append([rs[1]!])
      const got = yield* take(spool, 2)
      yield* spool.ack(got[0]!.position)
    }))
    const ackFile = path.join(dir, "ack")
    const bytes = fs.readFileSync(ackFile)
    bytes[10] = bytes[10]! ^ 0x40
    fs.writeFileSync(ackFile, bytes)
    const logs: Array<LogLine> = []
    await run(Effect.gen(function*() {
      const spool = yield* openSpool(defaults(dir))
      expect(bytesOf(yield* takeAll(spool))).toEqual(hex(rs))
    }), logs)
    expect(logs.some((l) => l.level === "Error" && /ack file is damaged/.test(l.text))).toBe(true)
  })
})

describe("spool: recovery", () => {
  const tornCase = async (dir: string, positions: ReadonlyArray<SpoolRecord["position"]>, flat: ReadonlyArray<Uint8Array>, cut: number) => {
    const lastSegment = positions[positions.length - 1]!.segment
    const file = path.join(dir, segmentName(lastSegment))
    fs.truncateSync(file, cut)
    const survivors = flat.filter((r, i) => {
      const p = positions[i]!
      return p.segment < lastSegment || p.offset + HEADER_BYTES + r.length <= cut
    })
    const logs: Array<LogLine> = []
    await run(Effect.gen(function*() {
      const spool = yield* openSpool(defaults(dir, { onCorrupt: "fail" }))
      expect(spool.stats().records).toBe(survivors.length)
      expect(bytesOf(yield* takeAll(spool))).toEqual(hex(survivors))
      // and the spool goes on
      yield* spool.append([new Uint8Array([42])])
      expect(bytesOf(yield* take(spool, 1))).toEqual(hex([new Uint8Array([42])]))
    }), logs)
    const atBoundary = positions.some((p, i) => p.segment === lastSegment && (p.offset === cut || p.offset + HEADER_BYTES + flat[i]!.length === cut))
    expect(logs.filter((l) => /torn tail/.test(l.text)).length).toBe(atBoundary ? 0 : 1)
    expect(logs.filter((l) => l.level === "Error")).toEqual([])
  }

  it("a torn tail (the last segment cut at any byte) is truncated; every record before the cut survives, none after", async () => {
    await fc.assert(
      fc.asyncProperty(batches, fc.integer({ min: 32, max: 3000 }), fc.double({ min: 0, max: 1, noNaN: true }), async (data, segmentBytes, where) => {
        const { dir, positions } = await written(data, segmentBytes)
        const last = positions[positions.length - 1]!.segment
        const size = fs.statSync(path.join(dir, segmentName(last))).size
        await tornCase(dir, positions, data.flat(), Math.min(size - 1, Math.floor(where * size)))
      }),
      { numRuns: 40 }
    )
  })

  it("every possible cut through the last record", async () => {
    const flat = [new Uint8Array(50).fill(1), new Uint8Array(3).fill(2), new Uint8Array(29).fill(3)]
    const { dir, positions } = await written([flat.slice(0, 2), flat.slice(2)], 1 << 20)
    const last = positions[2]!
    for (let cut = last.offset; cut < last.offset + HEADER_BYTES + 29; cut++) {
      await tornCase(copyDir(dir), positions, flat, cut)
    }
  })

  const flipCase = fc
    .tuple(batches, fc.integer({ min: 32, max: 3000 }), fc.nat(), fc.nat(), fc.integer({ min: 1, max: 255 }))
    .filter(([data]) => data.flat().length >= 2)

  it("a flipped byte in the middle is a SpoolCorrupt at its position; quarantine keeps every other record", async () => {
    await fc.assert(
      fc.asyncProperty(flipCase, async ([data, segmentBytes, pick, byte, mask]) => {
        const flat = data.flat()
        const { dir, positions } = await written(data, segmentBytes)
        // any record but the very last one (damage there is indistinguishable from a torn write)
        const victim = pick % (flat.length - 1)
        const at = positions[victim]!
        const file = path.join(dir, segmentName(at.segment))
        const bytes = fs.readFileSync(file)
        const offset = at.offset + (byte % (HEADER_BYTES + flat[victim]!.length))
        bytes[offset] = bytes[offset]! ^ mask
        fs.writeFileSync(file, bytes)

        const failed = await run(Effect.result(openSpool(defaults(dir, { onCorrupt: "fail" }))))
        expect(Result.isFailure(failed)).toBe(true)
        const e = (failed as Result.Failure<unknown, SpoolCorrupt>).failure
        expect(e).toBeInstanceOf(SpoolCorrupt)
        expect({ segment: e.segment, offset: e.offset }).toEqual(at)
        expect(e.bytes).toBe(HEADER_BYTES + flat[victim]!.length)
        expect(fs.readFileSync(file)).toEqual(bytes) // "fail" changes nothing

        const logs: Array<LogLine> = []
        await run(Effect.gen(function*() {
          const spool = yield* openSpool(defaults(dir))
          expect(spool.stats().quarantined).toBe(1)
          expect(bytesOf(yield* takeAll(spool))).toEqual(hex(flat.filter((_, i) => i !== victim)))
        }), logs)
        expect(logs.filter((l) => l.level === "Error" && /AUDIT DATA LOST/.test(l.text)).length).toBe(1)
        const kept = fs.readdirSync(path.join(dir, "quarantine"))
        expect(kept.length).toBe(1)
        expect(fs.readFileSync(path.join(dir, "quarantine", kept[0]!))).toEqual(bytes)
      }),
      { numRuns: 40 }
    )
  })

  it("damage to the very last record reads as a torn write: truncated with a warning", async () => {
    const flat = [new Uint8Array(40).fill(1), new Uint8Array(40).fill(2)]
    const { dir, positions } = await written([flat], 1 << 20)
    const file = path.join(dir, segmentName(positions[1]!.segment))
    const bytes = fs.readFileSync(file)
    bytes[positions[1]!.offset + 20] = bytes[positions[1]!.offset + 20]! ^ 1
    fs.writeFileSync(file, bytes)
    const logs: Array<LogLine> = []
    await run(Effect.gen(function*() {
      const spool = yield* openSpool(defaults(dir, { onCorrupt: "fail" }))
      expect(bytesOf(yield* takeAll(spool))).toEqual(hex(flat.slice(0, 1)))
    }), logs)
    expect(logs.some((l) => l.level === "Warn" && /torn tail/.test(l.text))).toBe(true)
  })

  it("damage appearing while open: a read of the files delivers the good records first, then fails at the damaged one", async () => {
    const dir = tempDir()
    await run(Effect.gen(function*() {
      const spool = yield* openSpool(defaults(dir, { recentBytes: 0 }))
      yield* spool.append([new Uint8Array(10).fill(1), new Uint8Array(10).fill(2), new Uint8Array(10).fill(3)])
      const file = path.join(dir, segmentFiles(dir)[0]!)
      const fd = fs.openSync(file, "r+")
      fs.writeSync(fd, Buffer.from([0xff]), 0, 1, 22 + HEADER_BYTES + 5)
      fs.closeSync(fd)
      const first = yield* spool.next({ maxRecords: 10, maxBytes: 1000 })
      expect(bytesOf(first)).toEqual(hex([new Uint8Array(10).fill(1)]))
      const second = yield* Effect.result(spool.next({ maxRecords: 10, maxBytes: 1000 }))
      expect(Result.isFailure(second) && second.failure.message).toMatch(/offset 22 fails its CRC/)
    }))
  })

  it("a directory is opened by one spool at a time", async () => {
    const dir = tempDir()
    await run(Effect.gen(function*() {
      yield* openSpool(defaults(dir))
      const second = yield* Effect.result(openSpool(defaults(dir)))
      expect(Result.isFailure(second) && second.failure.message).toMatch(/already open in this process/)
    }))
    await run(openSpool(defaults(dir)))
  })
})

describe("spool: the bound", () => {
  const frame = (n: number) => new Uint8Array(n - HEADER_BYTES)

  it.each([false, true])("refuse: SpoolFull when the unacknowledged bytes would pass maxBytes; one alarm per burst; acks make room (appendNow: %s)", async (now) => {
    const dir = tempDir()
    const logs: Array<LogLine> = []
    const append = appendVia(now)
    await run(Effect.gen(function*() {
      const spool = yield* openSpool(defaults(dir, { maxBytes: 1000 }))
      yield* append(spool, [frame(300), frame(300)])
      yield* append(spool, [frame(300)])
      for (let i = 0; i < 3; i++) {
        const r = yield* Effect.result(append(spool, [frame(300)]))
        expect(Result.isFailure(r) && r.failure).toBeInstanceOf(SpoolFull)
        expect(Result.isFailure(r) && r.failure.message).toMatch(/spool is full \(900 of 1000 bytes/)
      }
      yield* append(spool, [frame(100)]) // a smaller one still fits
      expect(spool.stats()).toMatchObject({ bytes: 1000, full: false })
      const r = yield* Effect.result(append(spool, [frame(12)]))
      expect(Result.isFailure(r) && r.failure._tag).toBe("SpoolFull")
      expect(spool.stats().full).toBe(true)
      const [first] = yield* take(spool, 1, { maxRecords: 1, maxBytes: 1 })
      yield* spool.ack(first!.position)
      expect(spool.stats()).toMatchObject({ bytes: 700, full: false, dropped: 0 })
      yield* append(spool, [frame(300)])
    }), logs)
    expect(logs.filter((l) => l.level === "Error" && /spool is full/.test(l.text)).length).toBe(2)
  })

  it.each([false, true])("drop: appends succeed, the records are counted and not stored, one alarm per burst (appendNow: %s)", async (now) => {
    const dir = tempDir()
    const logs: Array<LogLine> = []
    const append = appendVia(now)
    await run(Effect.gen(function*() {
      const spool = yield* openSpool(defaults(dir, { maxBytes: 1000, onFull: "drop" }))
      yield* append(spool, [new Uint8Array(288).fill(1), new Uint8Array(288).fill(2), new Uint8Array(288).fill(3)])
      for (let i = 0; i < 5; i++) yield* append(spool, [frame(300), frame(300)])
      expect(spool.stats()).toMatchObject({ dropped: 10, full: true, records: 3 })
      const got = yield* take(spool, 3)
      yield* spool.ack(got[2]!.position)
      expect(spool.stats().full).toBe(false)
      yield* append(spool, [new Uint8Array(500).fill(4)]) // ends the burst
      yield* append(spool, [frame(600)]) // a new burst
      expect(spool.stats()).toMatchObject({ dropped: 11, records: 1 })
      expect(bytesOf(yield* take(spool, 1))).toEqual(hex([new Uint8Array(500).fill(4)]))
    }), logs)
    expect(logs.filter((l) => l.level === "Error" && /AUDIT EVENTS DROPPED/.test(l.text)).length).toBe(2)
    expect(logs.filter((l) => /accepting appends again/.test(l.text) && /"dropped":10/.test(l.text)).length).toBe(1)
  })
})

describe("spool: concurrency and waiting", () => {
  it("an append interrupted just after it began a segment roll still starts it: later appends and closing go on", async () => {
    // the fiber yields every `ops` steps, and is interrupted after `ticks` of the test's own:
    // some pair lands between the append taking its place in the roll and starting it
    for (let ops = 2; ops <= 8; ops++) {
      for (let ticks = 0; ticks <= 4; ticks++) {
        const later = await run(Effect.gen(function*() {
          const spool = yield* openSpool(defaults(tempDir(), { segmentBytes: 16 }))
          yield* spool.append([new Uint8Array(10)])
          const rolling = yield* Effect.forkChild(spool.append([new Uint8Array([1])]).pipe(Effect.provideService(MaxOpsBeforeYield, ops)))
          for (let i = 0; i < ticks; i++) yield* Effect.yieldNow
          yield* Fiber.interrupt(rolling)
          return yield* spool.append([new Uint8Array([2])]).pipe(Effect.timeoutOption("2 seconds"))
        }))
        expect({ ops, ticks, later: later._tag }).toEqual({ ops, ticks, later: "Some" })
      }
    }
  }, 20_000) // when the roll never starts, closing the spool hangs too: the timeout is the failure

  it("many concurrent appenders, one concurrent consumer: every record exactly once, each appender's in order", async () => {
    const dir = tempDir()
    const appenders = 50
    const perAppender = 60
    await run(Effect.gen(function*() {
      const spool = yield* openSpool(defaults(dir, { segmentBytes: 8192, fsyncIntervalMs: 3 }))
      const total = appenders * perAppender
      const consumer = yield* Effect.forkChild(Effect.gen(function*() {
        const seen: Array<string> = []
        while (seen.length < total) {
          const batch = yield* spool.next({ maxRecords: 37, maxBytes: 4000 })
          for (const r of batch) seen.push(Buffer.from(r.data).toString())
          yield* spool.ack(batch[batch.length - 1]!.position)
        }
        return seen
      }))
      yield* Effect.forEach(
        Array.from({ length: appenders }, (_, a) => a),
        (a) =>
          Effect.gen(function*() {
            for (let i = 0; i < perAppender;) {
              const n = Math.min(perAppender - i, 1 + ((a + i) % 3))
              const recs = Array.from({ length: n }, (_, k) => Buffer.from(`${a}:${i + k}:${"x".repeat((a * 7 + i) % 50)}`))
              yield* spool.append(recs as unknown as NonEmptyReadonlyArray<Uint8Array>, { durable: (a + i) % 10 === 0 })
              i += n
              if (i % 7 === 0) yield* Effect.yieldNow
            }
          }),
        { concurrency: "unbounded", discard: true }
      )
      const seen = yield* Fiber.join(consumer)
      expect(new Set(seen).size).toBe(total)
      const last = new Map<number, number>()
      for (const s of seen) {
        const [a, i] = s.split(":").map(Number) as [number, number]
        expect(i).toBe((last.get(a) ?? -1) + 1)
        last.set(a, i)
      }
      expect(spool.stats()).toMatchObject({ records: 0, bytes: 0 })
    }))
  })

  it("next waits for data, and is interruptible while waiting", async () => {
    const dir = tempDir()
    await run(Effect.gen(function*() {
      const spool = yield* openSpool(defaults(dir))
      const waiting = yield* Effect.forkChild(spool.next({ maxRecords: 1, maxBytes: 1 }))
      yield* Effect.sleep(20)
      yield* Fiber.interrupt(waiting)
      const reader = yield* Effect.forkChild(spool.next({ maxRecords: 10, maxBytes: 100 }))
      yield* Effect.sleep(10)
      yield* spool.append([new Uint8Array([9])])
      const got = yield* Fiber.join(reader)
      expect(bytesOf(got)).toEqual(hex([new Uint8Array([9])]))
    }))
  })

  it("durable appends complete at the next group commit, ordinary ones as soon as the OS has the bytes", async () => {
    const dir = tempDir()
    await run(Effect.gen(function*() {
      const spool = yield* openSpool(defaults(dir, { fsyncIntervalMs: 300 }))
      yield* Effect.sleep(5)
      const order: Array<string> = []
      const started = Date.now()
      yield* Effect.all(
        [
          spool.append([new Uint8Array([1])], { durable: true }).pipe(Effect.tap(() => Effect.sync(() => order.push("durable")))),
          spool.append([new Uint8Array([2])]).pipe(Effect.tap(() => Effect.sync(() => order.push("ordinary"))))
        ],
        { concurrency: "unbounded" }
      )
      expect(order).toEqual(["ordinary", "durable"])
      expect(Date.now() - started).toBeLessThan(2000)
    }))
  })

  it("an ordinary append is in its segment file when it returns, without a suspension (a SIGKILL right after loses nothing)", async () => {
    const dir = tempDir()
    await run(Effect.gen(function*() {
      const spool = yield* openSpool(defaults(dir, { segmentBytes: 1 << 20 }))
      const active = path.join(dir, segmentFiles(dir).at(-1)!)
      for (let i = 1; i <= 20; i++) {
        // runSync throws on any asynchronous step: the write happened inside the call
        Effect.runSync(spool.append([Buffer.from(`event ${i}`)]))
        const frames = scanSegment(fs.readFileSync(active)).frames
        expect(frames.length).toBe(i)
      }
    }))
  })

  it("appends made while a segment rolls wait for it, then land in the new segment in the order they were made", async () => {
    const dir = tempDir()
    await run(Effect.gen(function*() {
      const spool = yield* openSpool(defaults(dir, { segmentBytes: 64 }))
      yield* spool.append([Buffer.alloc(40, 1)])
      // the first append rolls (asynchronously); the others arrive during the roll
      const fibers = []
      for (let i = 0; i < 10; i++) fibers.push(yield* Effect.forkChild(spool.append([Buffer.from([i])]), { startImmediately: true }))
      for (const f of fibers) yield* Fiber.join(f)
      const got = yield* take(spool, 11)
      expect(got.slice(1).map((r) => r.data[0])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
      expect(got[1]!.position.segment).toBeGreaterThan(got[0]!.position.segment)
    }))
  })

  it("closing waits for a roll in progress, keeps every append that returned, and fails a waiting next", async () => {
    const dir = tempDir()
    const waiting = await run(Effect.gen(function*() {
      const spool = yield* openSpool(defaults(dir))
      const reader = yield* Effect.forkDetach(Effect.forever(spool.next({ maxRecords: 7, maxBytes: 1 << 20 })))
      yield* Effect.sleep(10)
      for (let i = 0; i < 100; i++) yield* Effect.forkChild(spool.append([new Uint8Array([i])]), { startImmediately: true })
      return reader
    }))
    const exit = await Effect.runPromise(Fiber.await(waiting))
    expect(String(exit)).toMatch(/the spool is closed/)
    await run(Effect.gen(function*() {
      const spool = yield* openSpool(defaults(dir))
      expect(spool.stats().records).toBe(100)
    }))
  })
})
