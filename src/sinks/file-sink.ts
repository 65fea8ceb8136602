/**
 * The audit file sink: Avro object container files in a directory, the default when no
 * Kafka is configured.
 *
 * - Files are named `audit-<UTC yyyyMMddTHHmmssZ>-<counter>.avro`. Names only grow: the
 *   timestamp never goes below the newest existing file's (a clock stepping back does not
 *   reorder files), the counter continues across restarts, and a file is created with
 *   O_EXCL so that nothing is ever overwritten. One sink per directory.
 * - Each `write` appends its batch as whole blocks (codec `deflate` or `null`) in one write
 *   call, then fdatasyncs (unless `fsync: false`). A file is a valid container file after
 *   every batch: there is no footer to finish. A failed write is cut back to where the batch
 *   started, so a batch is in a file entirely or not at all, and the file is closed.
 * - Rotation: before a batch, a file that has reached `maxFileBytes` or is `maxFileAgeMs`
 *   old is closed and a new one started (a file exceeds `maxFileBytes` by at most one
 *   batch); a full file is closed right after its batch; a background fiber closes a file
 *   that grows old while idle. A closed file is fsynced and never touched again, so a
 *   shipper may pick up every file but the newest.
 * - On start, the newest existing file is checked: a torn tail (the process died in the
 *   middle of a write) is cut off at the last whole block, and a file too short to hold its
 *   header is removed. Corrupt data (a wrong sync marker) is left alone and reported.
 *
 * {@link readContainerFiles} reads a directory back in file order (`sluice replay`), tolerating a
 * torn tail in any file; data written with an older schema version is resolved into the newest.
 */
import { randomBytes } from "node:crypto"
import type { FileHandle } from "node:fs/promises"
import { mkdir, open, readdir, readFile, truncate, unlink } from "node:fs/promises"
import { join } from "node:path"
import { promisify } from "node:util"
import { deflateRawSync, inflateRaw as inflateRawCb, constants as zlibConstants } from "node:zlib"
import avsc from "avsc"
import { Data, Effect, Result, type Scope, Semaphore } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import {
  type BodyReader,
  bodyReader,
  CURRENT_SCHEMA,
  decodeSingleObject,
  encodeEvent,
  SINGLE_OBJECT_HEADER_LENGTH,
  schemaByFingerprint,
  type SchemaVersion,
} from "./avro.ts"
import { checkWellFormed, fingerprintOfCanonical, MalformedAvro, parsingCanonicalForm, readVarint } from "./avro-spec.ts"
import type { AuditEvent } from "./events.ts"

/**
 * Audit events compress about as well at level 1 as at the default 6 (5,966 against 5,932
 * bytes for a block of 21 KB of pgbench events) for about 30% less CPU. Compressed in the
 * calling thread (the delivery thread), at its lower priority (delivery/priority.ts),
 * not in the thread pool the event loop shares.
 */
const FASTEST = { level: zlibConstants.Z_BEST_SPEED }
const inflateRaw = promisify(inflateRawCb)

export class FileSinkError extends Data.TaggedError("FileSinkError")<{
  readonly op: "options" | "open" | "write" | "close" | "read" | "list" | "repair" | "encode"
  readonly path: string
  readonly detail: string
}> {
  override get message(): string {
    return `audit file sink: ${this.op} ${this.path}: ${this.detail}`
  }
}

export type ContainerCodec = "deflate" | "null"

export interface FileSinkOptions {
  readonly directory: string
  /** Rotate once a file has reached this size (it may exceed it by one batch). */
  readonly maxFileBytes: number
  /** Rotate once a file is this old, idle or not. */
  readonly maxFileAgeMs: number
  /** Block compression; default `deflate`. */
  readonly codec?: ContainerCodec
  /** fdatasync after every batch and fsync on close; default true. Off: a machine crash may lose the last batches (a process crash does not). */
  readonly fsync?: boolean
  /** Target uncompressed size of one block; default 64 KiB. */
  readonly blockBytes?: number
}

export interface FileSink {
  /** Appends the events to the current file (rotating first when due); done when they are written (and synced). */
  readonly write: (events: NonEmptyReadonlyArray<AuditEvent>) => Effect.Effect<void, FileSinkError>
  /**
   * Same, for events already single-object encoded ({@link encodeSingleObject}: what a spool or
   * the Kafka sink holds). The fingerprint says which schema wrote each: bodies of the newest
   * schema are checked and copied as they are, older ones re-encoded; malformed ones or an
   * unknown fingerprint fail the batch (op "encode").
   */
  readonly writeEncoded: (messages: NonEmptyReadonlyArray<Buffer>) => Effect.Effect<void, FileSinkError>
  /** Closes the current file; later writes fail. Also run when the scope closes. Idempotent. */
  readonly close: Effect.Effect<void>
  /** The file being written, if any. */
  readonly currentFile: Effect.Effect<string | undefined>
}

// ---------------------------------------------------------------------------------------------
// container format (Avro spec, "Object Container Files")

const MAGIC = Buffer.from([0x4f, 0x62, 0x6a, 0x01]) // "Obj" 1
const SYNC_SIZE = 16
const HEADER_TYPE = avsc.Type.forSchema({
  type: "record",
  name: "org.apache.avro.file.Header",
  fields: [
    { name: "magic", type: { type: "fixed", name: "Magic", size: 4 } },
    { name: "meta", type: { type: "map", values: "bytes" } },
    { name: "sync", type: { type: "fixed", name: "Sync", size: SYNC_SIZE } },
  ],
})
const LONG = avsc.Type.forSchema("long")

const containerHeader = (codec: ContainerCodec, sync: Buffer): Buffer =>
  HEADER_TYPE.toBuffer({
    magic: MAGIC,
    meta: {
      "avro.schema": Buffer.from(CURRENT_SCHEMA.json, "utf8"),
      "avro.codec": Buffer.from(codec, "utf8"),
      "sluice.schema.version": Buffer.from(String(CURRENT_SCHEMA.version), "utf8"),
    },
    sync,
  })

const encodeBlocks = (bodies: ReadonlyArray<Buffer>, codec: ContainerCodec, sync: Buffer, blockBytes: number): Buffer => {
  const frames: Array<Buffer> = []
  let start = 0
  while (start < bodies.length) {
    let end = start
    let size = 0
    while (end < bodies.length && (end === start || size + bodies[end]!.length <= blockBytes)) size += bodies[end++]!.length
    const raw = Buffer.concat(bodies.slice(start, end), size)
    const data = codec === "deflate" ? deflateRawSync(raw, FASTEST) : raw
    frames.push(LONG.toBuffer(end - start), LONG.toBuffer(data.length), data, sync)
    start = end
  }
  return Buffer.concat(frames)
}

interface ParsedHeader {
  readonly end: number
  readonly codec: string
  readonly schemaJson: string
  readonly sync: Buffer
}

/** The header, or "truncated" when the data ends inside it. Throws on anything else wrong. */
const parseHeader = (buf: Buffer): ParsedHeader | "truncated" => {
  if (buf.length < MAGIC.length) return "truncated"
  if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error("not an Avro object container file (no Obj\\x01 magic)")
  let end: number
  try {
    end = checkWellFormed(HEADER_TYPE, buf, 0)
  } catch (e) {
    if (e instanceof MalformedAvro && e.truncated) return "truncated"
    throw e
  }
  const { value } = HEADER_TYPE.decode(buf, 0) as { value: { meta: Record<string, Buffer>; sync: Buffer } }
  const schema = value.meta["avro.schema"]
  if (schema === undefined) throw new Error("the header has no avro.schema")
  return { end, codec: value.meta["avro.codec"]?.toString("utf8") ?? "null", schemaJson: schema.toString("utf8"), sync: value.sync }
}

interface BlockFrame {
  readonly count: number
  readonly data: Buffer
  readonly end: number
}

/** The block at `pos`, or "truncated" when the file ends inside it. Throws on a wrong sync marker. */
const parseBlock = (buf: Buffer, pos: number, sync: Buffer): BlockFrame | "truncated" => {
  let count: number
  let size: number
  let at: number
  try {
    const c = readVarint(buf, pos)
    const s = readVarint(buf, c.pos)
    count = c.value
    size = s.value
    at = s.pos
  } catch (e) {
    if (e instanceof MalformedAvro && e.truncated) return "truncated"
    throw e
  }
  if (count <= 0 || size < 0) throw new Error(`block at byte ${pos} claims ${count} objects in ${size} bytes`)
  if (at + size + SYNC_SIZE > buf.length) return "truncated"
  if (!buf.subarray(at + size, at + size + SYNC_SIZE).equals(sync)) throw new Error(`block at byte ${pos}: sync marker does not match the header's (corrupt file)`)
  return { count, data: buf.subarray(at, at + size), end: at + size + SYNC_SIZE }
}

const readerForSchema = (schemaJson: string): Result.Result<BodyReader, string> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(schemaJson)
  } catch {
    return Result.fail("avro.schema is not JSON")
  }
  let known: SchemaVersion | undefined
  try {
    known = schemaByFingerprint(fingerprintOfCanonical(parsingCanonicalForm(parsed)))
  } catch (e) {
    return Result.fail(`avro.schema is not a schema: ${e instanceof Error ? e.message : String(e)}`)
  }
  if (known !== undefined) return Result.mapError(bodyReader(known.type), (e) => e.reason)
  // written with a schema this version does not ship (a newer Sluice): resolve it if Avro can
  let type: avsc.Type
  try {
    type = avsc.Type.forSchema(parsed as avsc.schema.AvroSchema)
  } catch (e) {
    return Result.fail(`avro.schema is not a schema: ${e instanceof Error ? e.message : String(e)}`)
  }
  return Result.mapError(bodyReader(type), (e) => e.reason)
}

export interface ContainerFileContents {
  readonly path: string
  readonly events: ReadonlyArray<AuditEvent>
  /** The file ended inside a block (or its header): the events of that block are not in `events`. */
  readonly truncated: boolean
}

const readContainer = async (path: string): Promise<ContainerFileContents> => {
  const buf = await readFile(path)
  const header = parseHeader(buf)
  if (header === "truncated") return { path, events: [], truncated: true }
  if (header.codec !== "null" && header.codec !== "deflate") throw new Error(`codec ${header.codec} is not supported (null, deflate)`)
  const reader = readerForSchema(header.schemaJson)
  if (Result.isFailure(reader)) throw new Error(reader.failure)
  const events: Array<AuditEvent> = []
  let pos = header.end
  while (pos < buf.length) {
    const block = parseBlock(buf, pos, header.sync)
    if (block === "truncated") return { path, events, truncated: true }
    const data = header.codec === "deflate" ? await inflateRaw(block.data) : block.data
    let at = 0
    for (let i = 0; i < block.count; i++) {
      const r = reader.success.read(data, at)
      if (Result.isFailure(r)) throw new Error(`block at byte ${pos}, object ${i}: ${r.failure.reason}`)
      events.push(r.success.event)
      at = r.success.offset
    }
    if (at !== data.length) throw new Error(`block at byte ${pos}: ${data.length - at} bytes after its ${block.count} objects`)
    pos = block.end
  }
  return { path, events, truncated: false }
}

/** Where the whole blocks end, or "no-header" when even the header is torn. Throws on corruption. */
const lastWholeBlockEnd = (buf: Buffer): number | "no-header" => {
  const header = parseHeader(buf)
  if (header === "truncated") return "no-header"
  let pos = header.end
  while (pos < buf.length) {
    const block = parseBlock(buf, pos, header.sync)
    if (block === "truncated") return pos
    pos = block.end
  }
  return pos
}

// ---------------------------------------------------------------------------------------------
// file names

const FILE_NAME = /^audit-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-(\d+)\.avro$/

interface NamedFile {
  readonly name: string
  readonly second: number
  readonly counter: number
}

const parseName = (name: string): NamedFile | undefined => {
  const m = FILE_NAME.exec(name)
  if (m === null) return undefined
  const [, y, mo, d, h, mi, s, n] = m.map(Number) as [number, number, number, number, number, number, number, number]
  return { name, second: Date.UTC(y, mo - 1, d, h, mi, s) / 1000, counter: n }
}

const fileName = (second: number, counter: number): string => {
  const iso = new Date(second * 1000).toISOString() // 2026-11-22T19:01:02.000Z
  const stamp = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`
  return `audit-${stamp}-${String(counter).padStart(6, "0")}.avro`
}

const byTime = (a: NamedFile, b: NamedFile): number => a.second - b.second || a.counter - b.counter

const listNamed = async (directory: string): Promise<ReadonlyArray<NamedFile>> =>
  (await readdir(directory)).flatMap((name) => {
    const f = parseName(name)
    return f === undefined ? [] : [f]
  }).sort(byTime)

const describe = (e: unknown): string => (e instanceof Error ? e.message : String(e))

/** The container files in a directory, oldest first (full paths). */
export const listContainerFiles = (directory: string): Effect.Effect<ReadonlyArray<string>, FileSinkError> =>
  Effect.tryPromise({
    try: async () => (await listNamed(directory)).map((f) => join(directory, f.name)),
    catch: (e) => new FileSinkError({ op: "list", path: directory, detail: describe(e) }),
  })

/** One container file's events. */
export const readContainerFile = (path: string): Effect.Effect<ContainerFileContents, FileSinkError> =>
  Effect.tryPromise({
    try: () => readContainer(path),
    catch: (e) => new FileSinkError({ op: "read", path, detail: describe(e) }),
  })

/** Every event in the directory's container files, in file order then write order (a torn tail of any file is skipped). */
export const readContainerFiles = (directory: string): Effect.Effect<ReadonlyArray<AuditEvent>, FileSinkError> =>
  Effect.gen(function* () {
    const files = yield* listContainerFiles(directory)
    const events: Array<AuditEvent> = []
    for (const file of files) {
      const contents = yield* readContainerFile(file)
      for (const e of contents.events) events.push(e)
    }
    return events
  })

// ---------------------------------------------------------------------------------------------
// the sink

/** Compared byte by byte: a native compare, or a view to compare, costs more than the loop. */
const isCurrentFingerprint = (message: Buffer): boolean => {
  const fingerprint = CURRENT_SCHEMA.fingerprint
  for (let i = 2; i < SINGLE_OBJECT_HEADER_LENGTH; i++) if (message[i] !== fingerprint[i - 2]) return false
  return true
}

/** The body, in the newest schema, of a single-object encoded event; throws if it is not one. */
const currentBody = (message: Buffer): Buffer => {
  if (message.length >= SINGLE_OBJECT_HEADER_LENGTH && message[0] === 0xc3 && message[1] === 0x01 && isCurrentFingerprint(message)) {
    const body = message.subarray(SINGLE_OBJECT_HEADER_LENGTH)
    const end = checkWellFormed(CURRENT_SCHEMA.type, body, 0)
    if (end !== body.length) throw new Error(`${body.length - end} bytes of trailing data after the event`)
    return body
  }
  const decoded = decodeSingleObject(message)
  if (Result.isFailure(decoded)) throw new Error(decoded.failure.reason)
  return encodeEvent(decoded.success)
}

interface OpenFile {
  readonly path: string
  readonly handle: FileHandle
  readonly sync: Buffer
  readonly openedAt: number
  bytes: number
}

const fsyncDirectory = async (directory: string): Promise<void> => {
  const dir = await open(directory, "r")
  try {
    await dir.sync()
  } finally {
    await dir.close()
  }
}

const writeAll = async (handle: FileHandle, buf: Buffer, position: number): Promise<void> => {
  let done = 0
  while (done < buf.length) {
    const { bytesWritten } = await handle.write(buf, done, buf.length - done, position + done)
    if (bytesWritten <= 0) throw new Error("write made no progress")
    done += bytesWritten
  }
}

/** Cuts a torn tail off the newest file left by an earlier run. */
const repairNewest = async (directory: string, files: ReadonlyArray<NamedFile>): Promise<string | undefined> => {
  const newest = files[files.length - 1]
  if (newest === undefined) return undefined
  const path = join(directory, newest.name)
  const buf = await readFile(path)
  let end: number | "no-header"
  try {
    end = lastWholeBlockEnd(buf)
  } catch (e) {
    return `${path} is corrupt and was left as it is: ${describe(e)}`
  }
  if (end === "no-header") {
    await unlink(path)
    return `${path} ended inside its header (${buf.length} bytes, no events): removed`
  }
  if (end < buf.length) {
    await truncate(path, end)
    return `${path} had a torn tail: cut from ${buf.length} to ${end} bytes`
  }
  return undefined
}

export const makeFileSink = (options: FileSinkOptions): Effect.Effect<FileSink, FileSinkError, Scope.Scope> =>
  Effect.gen(function* () {
    const { directory, maxFileBytes, maxFileAgeMs } = options
    const codec = options.codec ?? "deflate"
    const fsync = options.fsync ?? true
    const blockBytes = options.blockBytes ?? 64 * 1024
    for (const [name, value] of [["maxFileBytes", maxFileBytes], ["maxFileAgeMs", maxFileAgeMs], ["blockBytes", blockBytes]] as const) {
      if (!(Number.isFinite(value) && value > 0)) {
        return yield* new FileSinkError({ op: "options", path: directory, detail: `${name} must be a positive number, not ${value}` })
      }
    }
    if (codec !== "deflate" && codec !== "null") {
      return yield* new FileSinkError({ op: "options", path: directory, detail: `codec must be deflate or null, not ${String(codec)}` })
    }

    const existing = yield* Effect.tryPromise({
      try: async () => {
        await mkdir(directory, { recursive: true })
        const files = await listNamed(directory)
        return { files, repaired: await repairNewest(directory, files) }
      },
      catch: (e) => new FileSinkError({ op: "repair", path: directory, detail: describe(e) }),
    })
    if (existing.repaired !== undefined) yield* Effect.logWarning(`audit file sink: ${existing.repaired}`)

    let lastSecond = existing.files.reduce((m, f) => Math.max(m, f.second), 0)
    let lastCounter = existing.files.reduce((m, f) => Math.max(m, f.counter), 0)
    let current: OpenFile | undefined
    let closed = false
    const lock = Semaphore.makeUnsafe(1)

    const openNext = async (): Promise<OpenFile> => {
      const now = Date.now()
      lastSecond = Math.max(lastSecond, Math.floor(now / 1000))
      for (let attempt = 0; ; attempt++) {
        const path = join(directory, fileName(lastSecond, ++lastCounter))
        let handle: FileHandle
        try {
          handle = await open(path, "wx")
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === "EEXIST" && attempt < 1000) continue
          throw e
        }
        const sync = randomBytes(SYNC_SIZE)
        try {
          const header = containerHeader(codec, sync)
          await writeAll(handle, header, 0)
          if (fsync) {
            await handle.datasync()
            await fsyncDirectory(directory)
          }
          return { path, handle, sync, openedAt: now, bytes: header.length }
        } catch (e) {
          await handle.close().catch(() => {})
          await unlink(path).catch(() => {})
          throw e
        }
      }
    }

    const closeCurrent = async (): Promise<void> => {
      const file = current
      if (file === undefined) return
      current = undefined
      try {
        if (fsync) await file.handle.sync()
      } finally {
        await file.handle.close()
      }
    }

    const due = (file: OpenFile, now: number): boolean => file.bytes >= maxFileBytes || now - file.openedAt >= maxFileAgeMs

    const append = async (bodies: ReadonlyArray<Buffer>): Promise<void> => {
      if (closed) throw new FileSinkError({ op: "write", path: directory, detail: "the sink is closed" })
      if (current !== undefined && due(current, Date.now())) await closeCurrent()
      if (current === undefined) current = await openNext()
      const file = current
      const start = file.bytes
      try {
        const blocks = encodeBlocks(bodies, codec, file.sync, blockBytes)
        await writeAll(file.handle, blocks, start)
        if (fsync) await file.handle.datasync()
        file.bytes = start + blocks.length
      } catch (e) {
        // all or nothing: cut the file back to where this batch started, and leave it
        current = undefined
        await file.handle.truncate(start).catch(() => {})
        await file.handle.close().catch(() => {})
        throw new FileSinkError({ op: "write", path: file.path, detail: describe(e) })
      }
      if (file.bytes >= maxFileBytes) await closeCurrent()
    }

    const toError = (op: FileSinkError["op"]) => (e: unknown): FileSinkError =>
      e instanceof FileSinkError ? e : new FileSinkError({ op, path: current?.path ?? directory, detail: describe(e) })

    // The work under the lock is uninterruptible: an interrupted write must not leave the file
    // half-appended while the lock is free (waiting for the lock stays interruptible).
    const locked = <A>(op: FileSinkError["op"], f: () => Promise<A>): Effect.Effect<A, FileSinkError> =>
      lock.withPermit(Effect.uninterruptible(Effect.tryPromise({ try: f, catch: toError(op) })))

    /** Every item's body first, so that one that cannot be written fails the batch before anything is. */
    const writeBodies = <A>(items: NonEmptyReadonlyArray<A>, body: (item: A) => Buffer): Effect.Effect<void, FileSinkError> =>
      Effect.suspend(() => {
        let bodies: Array<Buffer>
        try {
          bodies = items.map(body)
        } catch (e) {
          return Effect.fail(new FileSinkError({ op: "encode", path: directory, detail: describe(e) }))
        }
        return locked("write", () => append(bodies))
      })

    const writeEncoded = (messages: NonEmptyReadonlyArray<Buffer>) => writeBodies(messages, currentBody)
    const write = (events: NonEmptyReadonlyArray<AuditEvent>) => writeBodies(events, encodeEvent)

    const close: Effect.Effect<void> = locked("close", async () => {
      closed = true
      await closeCurrent()
    }).pipe(Effect.catch((e) => Effect.logError(e.message)))

    yield* Effect.addFinalizer(() => close)

    // closes a file that reaches its age while no batch comes
    const tick = Math.min(1000, Math.max(10, Math.floor(maxFileAgeMs / 4)))
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.sleep(tick).pipe(
          Effect.andThen(
            locked("close", async () => {
              if (current !== undefined && due(current, Date.now())) await closeCurrent()
            }),
          ),
          Effect.catch((e) => Effect.logError(e.message)),
        ),
      ),
    )

    return {
      write,
      writeEncoded,
      close,
      currentFile: Effect.sync(() => current?.path),
    } satisfies FileSink
  })

/** For tests. */
export const _internal = { lastWholeBlockEnd, fileName, parseName } as const
