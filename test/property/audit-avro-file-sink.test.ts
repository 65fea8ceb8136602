/**
 * The audit file sink: Avro object container files, rotated by size and age, names that
 * sort by time, torn tails repaired on start, and the reader that `sluice replay` uses.
 * Cross-checked with avsc's own container encoder and decoder (a second implementation of
 * the container format; fastavro is a third, in test/integration/audit-interop.test.ts).
 */
import { createWriteStream } from "node:fs"
import { mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import avsc from "avsc"
import { Effect, Exit, Scope } from "effect"
import fc from "fast-check"
import { afterEach, describe, expect, it } from "vitest"
import { CURRENT_SCHEMA, encodeEvent, encodeSingleObject } from "../../src/sinks/avro.ts"
import type { AuditEvent, Payload } from "../../src/sinks/events.ts"
import {
  _internal,
  type FileSink,
  FileSinkError,
  type FileSinkOptions,
  listContainerFiles,
  makeFileSink,
  readContainerFile,
  readContainerFiles,
} from "../../src/sinks/file-sink.ts"

const dirs: Array<string> = []
const tempDir = async (): Promise<string> => {
  const d = await mkdtemp(join(tmpdir(), "sluice-file-sink-"))
  dirs.push(d)
  return d
}
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })))
})

const run = <A, E>(effect: Effect.Effect<A, E>): Promise<A> => Effect.runPromise(effect)

/** Opens a sink in its own scope; `close()` closes the scope (as the gateway's shutdown does). */
const openSink = async (options: FileSinkOptions): Promise<{ sink: FileSink; close: () => Promise<void> }> => {
  const scope = await run(Scope.make())
  const sink = await run(Scope.provide(scope)(makeFileSink(options)))
  return { sink, close: () => run(Scope.close(scope, Exit.void)) }
}

let counter = 0
const event = (payload?: Partial<Payload>, sessionId = "s-1"): AuditEvent => {
  const n = counter++
  const hex = n.toString(16).padStart(12, "0")
  return {
    eventId: `00000000-0000-4000-8000-${hex}`,
    sessionId,
    sequence: n,
    time: 1_790_000_000_000_000 + n,
    gateway: "gw",
    payload: {
      _tag: "Statement",
      statementId: n,
      text: `SELECT * FROM t${n} WHERE note = 'ünïcödé ${"x".repeat(n % 50)}'`,
      fingerprint: `fp${n % 7}`,
      statementClass: "read",
      relationsRead: [`public.t${n}`],
      relationsWritten: [],
      functions: [],
      via: n % 3 === 0 ? "function-call" : "simple",
      ...(payload as object),
    } as Payload,
  }
}
const events = (n: number): [AuditEvent, ...Array<AuditEvent>] => [event(), ...Array.from({ length: n - 1 }, () => event())]

/** Writes a container file with avsc's own BlockEncoder (values: the current schema's, written with `type`). */
const avscWrite = (path: string, type: avsc.Type, codec: string, list: ReadonlyArray<AuditEvent>): Promise<void> =>
  new Promise((resolve, reject) => {
    const encoder = new avsc.streams.BlockEncoder(type, { codec })
    const out = createWriteStream(path)
    out.on("close", () => resolve())
    out.on("error", reject)
    encoder.on("error", reject)
    encoder.pipe(out)
    for (const e of list) encoder.write(CURRENT_SCHEMA.type.fromBuffer(encodeEvent(e)))
    encoder.end()
  })

const sizes = async (dir: string) => Promise.all((await run(listContainerFiles(dir))).map(async (p) => (await stat(p)).size))
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe("audit file sink", () => {
  it("everything written is read back in order, across rotations by size, with either codec", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 12 }),
        fc.constantFrom("deflate" as const, "null" as const),
        fc.integer({ min: 300, max: 6000 }),
        fc.integer({ min: 200, max: 4000 }),
        async (batchSizes, codec, maxFileBytes, blockBytes) => {
          const dir = await tempDir()
          const { sink, close } = await openSink({ directory: dir, maxFileBytes, maxFileAgeMs: 60_000, codec, fsync: false, blockBytes })
          const written: Array<AuditEvent> = []
          for (const n of batchSizes) {
            const batch = events(n)
            await run(sink.write(batch))
            written.push(...batch)
          }
          await close()
          expect(await run(readContainerFiles(dir))).toStrictEqual(written)
          // rotated by size: every file but the newest reached maxFileBytes; names sort by time
          const files = await run(listContainerFiles(dir))
          const byName = [...files].sort()
          expect(files).toEqual(byName)
          const s = await sizes(dir)
          for (const size of s.slice(0, -1)) expect(size).toBeGreaterThanOrEqual(maxFileBytes)
          for (const f of files) expect(f).toMatch(/\/audit-\d{8}T\d{6}Z-\d{6}\.avro$/)
        },
      ),
      { numRuns: 25 },
    )
  })

  it("the header names the codec, the schema (full JSON) and its version; fsync on", async () => {
    const dir = await tempDir()
    const { sink, close } = await openSink({ directory: dir, maxFileBytes: 1 << 20, maxFileAgeMs: 60_000 })
    await run(sink.write(events(3)))
    const path = await run(sink.currentFile)
    expect(path).toBeDefined()
    await close()
    const header = avsc.extractFileHeader(path!, { decode: false })
    expect(header.meta["avro.codec"].toString()).toBe("deflate")
    expect(header.meta["avro.schema"].toString()).toBe(CURRENT_SCHEMA.json)
    expect(header.meta["sluice.schema.version"].toString()).toBe(String(CURRENT_SCHEMA.version))
  })

  it("a file past its age is closed while idle, and the next batch starts a new file", async () => {
    const dir = await tempDir()
    const { sink, close } = await openSink({ directory: dir, maxFileBytes: 1 << 20, maxFileAgeMs: 100, fsync: false })
    const first = events(2)
    await run(sink.write(first))
    expect(await run(sink.currentFile)).toBeDefined()
    await sleep(400)
    expect(await run(sink.currentFile)).toBeUndefined()
    const second = events(2)
    await run(sink.write(second))
    await close()
    const files = await run(listContainerFiles(dir))
    expect(files).toHaveLength(2)
    expect((await run(readContainerFile(files[0]!))).events).toStrictEqual(first)
    expect((await run(readContainerFile(files[1]!))).events).toStrictEqual(second)
  })

  it("concurrent writes are serialized: each batch stays whole and in one file", async () => {
    const dir = await tempDir()
    const { sink, close } = await openSink({ directory: dir, maxFileBytes: 4000, maxFileAgeMs: 60_000, fsync: false })
    const batches = Array.from({ length: 30 }, (_, i) => events(1 + (i % 9)))
    await run(Effect.all(batches.map((b) => sink.write(b)), { concurrency: "unbounded" }))
    await close()
    const read = await run(readContainerFiles(dir))
    expect(read).toHaveLength(batches.flat().length)
    expect(new Set(read.map((e) => e.eventId))).toEqual(new Set(batches.flat().map((e) => e.eventId)))
    for (const b of batches) {
      const at = read.findIndex((e) => e.eventId === b[0].eventId)
      expect(read.slice(at, at + b.length)).toStrictEqual(b)
    }
  })

  it("writeEncoded takes single-object encoded events (as a spool holds them); malformed ones fail the batch", async () => {
    const dir = await tempDir()
    const { sink, close } = await openSink({ directory: dir, maxFileBytes: 1 << 20, maxFileAgeMs: 60_000, fsync: false })
    const batch = events(5)
    await run(sink.writeEncoded([encodeSingleObject(batch[0]), ...batch.slice(1).map(encodeSingleObject)]))
    const plain = encodeEvent(event())
    const cut = encodeSingleObject(event()).subarray(0, 30)
    const unknown = Buffer.from(encodeSingleObject(event()))
    unknown[5] = unknown[5]! ^ 0xff
    for (const bad of [plain, cut, unknown, Buffer.concat([encodeSingleObject(event()), Buffer.from([0])])]) {
      const err = await Effect.runPromise(Effect.flip(sink.writeEncoded([encodeSingleObject(event()), bad])))
      expect(err).toMatchObject({ _tag: "FileSinkError", op: "encode" })
    }
    await close()
    expect(await run(readContainerFiles(dir))).toStrictEqual(batch)
  })

  it("names keep growing across restarts, even when an existing file is stamped in the future", async () => {
    const dir = await tempDir()
    const a = await openSink({ directory: dir, maxFileBytes: 1 << 20, maxFileAgeMs: 60_000, fsync: false })
    await run(a.sink.write(events(1)))
    const first = (await run(a.sink.currentFile))!
    await a.close()
    // as if the clock had been far ahead when it was written
    const future = join(dir, "audit-20991231T235959Z-000041.avro")
    await rename(first, future)
    const b = await openSink({ directory: dir, maxFileBytes: 1 << 20, maxFileAgeMs: 60_000, fsync: false })
    await run(b.sink.write(events(1)))
    expect(await run(b.sink.currentFile)).toBe(join(dir, "audit-20991231T235959Z-000042.avro"))
    await b.close()
    expect(await run(listContainerFiles(dir))).toEqual([future, join(dir, "audit-20991231T235959Z-000042.avro")])
    // and the counter sorts numerically past 6 digits
    expect(_internal.parseName("audit-20991231T235959Z-1000000.avro")!.counter).toBe(1_000_000)
    expect(_internal.fileName(Date.UTC(2026, 10, 22, 19, 1, 2) / 1000, 1)).toBe("audit-20261122T190102Z-000001.avro")
  })

  it("a torn tail is skipped by the reader and cut off when a sink starts", async () => {
    const dir = await tempDir()
    const a = await openSink({ directory: dir, maxFileBytes: 1 << 20, maxFileAgeMs: 60_000, fsync: false })
    const whole = events(4)
    await run(a.sink.write(whole))
    const path = (await run(a.sink.currentFile))!
    const good = (await stat(path)).size
    await run(a.sink.write(events(3)))
    await a.close()
    const full = await readFile(path)
    // as if the process had died in the middle of writing the second batch
    for (const cut of [good + 1, good + Math.floor((full.length - good) / 2), full.length - 1]) {
      await writeFile(path, full.subarray(0, cut))
      expect(await run(readContainerFile(path))).toStrictEqual({ path, events: whole, truncated: true })
      const c = await openSink({ directory: dir, maxFileBytes: 1 << 20, maxFileAgeMs: 60_000, fsync: false })
      expect((await stat(path)).size).toBe(good)
      expect(await run(readContainerFile(path))).toStrictEqual({ path, events: whole, truncated: false })
      await c.close()
    }
    const c = await openSink({ directory: dir, maxFileBytes: 1 << 20, maxFileAgeMs: 60_000, fsync: false })
    const more = events(2)
    await run(c.sink.write(more))
    await c.close()
    expect(await run(readContainerFiles(dir))).toStrictEqual([...whole, ...more])
    expect(await run(listContainerFiles(dir))).toHaveLength(2)
  })

  it("a newest file torn inside its header is removed on start; one with a wrong sync marker is left and reported", async () => {
    const dir = await tempDir()
    await writeFile(join(dir, "audit-20260101T000000Z-000001.avro"), Buffer.from("Obj\x01\x04\x14avro.sch", "latin1"))
    const a = await openSink({ directory: dir, maxFileBytes: 1 << 20, maxFileAgeMs: 60_000, fsync: false })
    expect(await readdir(dir)).toEqual([])
    await run(a.sink.write(events(2)))
    const path = (await run(a.sink.currentFile))!
    await a.close()
    // flip a byte of the block's sync marker (the file's last 16 bytes)
    const bytes = await readFile(path)
    bytes[bytes.length - 3] = bytes[bytes.length - 3]! ^ 0xff
    await writeFile(path, bytes)
    const read = await Effect.runPromise(Effect.flip(readContainerFile(path)))
    expect(read).toBeInstanceOf(FileSinkError)
    expect(read.message).toMatch(/sync marker does not match/)
    const b = await openSink({ directory: dir, maxFileBytes: 1 << 20, maxFileAgeMs: 60_000, fsync: false })
    expect(await readFile(path)).toEqual(bytes)
    await b.close()
  })

  it("writes after close fail with a typed error; close is idempotent", async () => {
    const dir = await tempDir()
    const { sink, close } = await openSink({ directory: dir, maxFileBytes: 1 << 20, maxFileAgeMs: 60_000, fsync: false })
    await run(sink.write(events(1)))
    await run(sink.close)
    await run(sink.close)
    const err = await Effect.runPromise(Effect.flip(sink.write(events(1))))
    expect(err).toMatchObject({ _tag: "FileSinkError", op: "write", detail: "the sink is closed" })
    await close()
    expect(await run(readContainerFiles(dir))).toHaveLength(1)
  })

  it("an invalid event fails the batch with op 'encode', and nothing of it is written", async () => {
    const dir = await tempDir()
    const { sink, close } = await openSink({ directory: dir, maxFileBytes: 1 << 20, maxFileAgeMs: 60_000, fsync: false })
    const err = await Effect.runPromise(Effect.flip(sink.write([event(), { ...event(), eventId: "nope" }])))
    expect(err).toMatchObject({ _tag: "FileSinkError", op: "encode" })
    await close()
    expect(await run(readContainerFiles(dir))).toEqual([])
  })

  it("refuses bad options", async () => {
    const dir = await tempDir()
    for (const bad of [{ maxFileBytes: 0 }, { maxFileAgeMs: -1 }, { maxFileBytes: Number.NaN }, { codec: "snappy" as never }]) {
      const err = await Effect.runPromise(Effect.flip(Effect.scoped(makeFileSink({ directory: dir, maxFileBytes: 100, maxFileAgeMs: 100, ...bad }))))
      expect(err).toMatchObject({ _tag: "FileSinkError", op: "options" })
    }
  })

  it("interoperates with avsc's own container encoder and decoder, and resolves an older writer schema", async () => {
    const dir = await tempDir()
    const { sink, close } = await openSink({ directory: dir, maxFileBytes: 1 << 20, maxFileAgeMs: 60_000, fsync: false })
    const batch = events(20)
    await run(sink.write(batch))
    const ours = (await run(sink.currentFile))!
    await close()
    // avsc reads our file
    const decoded: Array<{ eventId: string }> = []
    await new Promise<void>((resolve, reject) =>
      avsc.createFileDecoder(ours).on("data", (r: { eventId: string }) => decoded.push(r)).on("end", resolve).on("error", reject),
    )
    expect(decoded.map((r) => r.eventId)).toEqual(batch.map((e) => e.eventId))

    // we read a file avsc wrote, with a hypothetical older schema lacking Statement.functions
    const older = JSON.parse(CURRENT_SCHEMA.json)
    const statement = older.fields.find((f: { name: string }) => f.name === "payload").type.find((b: { name: string }) => b.name === "Statement")
    statement.fields = statement.fields.filter((f: { name: string }) => f.name !== "functions")
    const olderType = avsc.Type.forSchema(older)
    const theirs = join(dir, "audit-20000101T000000Z-000001.avro")
    await avscWrite(theirs, olderType, "deflate", batch)
    // `functions` is not in the older schema: v1 has no default for it, so the older file cannot be resolved
    const refused = await Effect.runPromise(Effect.flip(readContainerFile(theirs)))
    expect(refused.message).toMatch(/cannot be read as the current one/)

    // a compatible older schema (one without Result.commandTag, which has a default) resolves
    const compatible = JSON.parse(CURRENT_SCHEMA.json)
    const result = compatible.fields.find((f: { name: string }) => f.name === "payload").type.find((b: { name: string }) => b.name === "Result")
    result.fields = result.fields.filter((f: { name: string }) => f.name !== "commandTag")
    const compatibleType = avsc.Type.forSchema(compatible)
    const resultEvents = events(5).map((e): AuditEvent => ({ ...e, payload: { _tag: "Result", statementId: e.sequence, rows: 3, bytes: 120, durationMicros: 900, sqlstate: "00000", commandTag: null } }))
    const path = join(dir, "audit-20000101T000001Z-000002.avro")
    await avscWrite(path, compatibleType, "null", resultEvents)
    expect(await run(readContainerFile(path))).toStrictEqual({ path, events: resultEvents, truncated: false })
  })
})
