/**
 * The local spool: a durable, bounded, append-only log of opaque records (encoded audit
 * events) between the data path and the shipper (Kafka or files). See README.md here for
 * the format, the guarantees and their limits, and measurements.
 *
 * Shape: an append writes its frames to the page cache at once, with one synchronous
 * positional write (so a SIGKILL loses nothing whose append returned), and a sync fiber
 * runs `fdatasync` every `fsyncIntervalMs` (group commit), persists the ack position and
 * deletes fully acknowledged segments. One consumer reads with `next` and acknowledges
 * with `ack`; on open everything not acknowledged is delivered again.
 *
 * Why synchronous: a write of a few KB into the page cache costs about 2.6 µs of CPU
 * on the event loop; handing it to libuv's thread pool costs about 28 µs (a futex wake and
 * a thread switch on each side; README.md, measurements). With one or two appends a
 * statement, the bench's audit cost fell from 57–267 to 32–124 µs of gateway CPU a
 * transaction when appends became synchronous (bench/README.md). Only the slow parts,
 * `fdatasync` and a segment roll, leave the event loop.
 *
 * The hot path is plain mutable state inside this closure: JS is single-threaded, and
 * every check-then-act below happens without a suspension point in between.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Context, Data, Deferred, Effect, Fiber, Layer, Result, type Scope, Semaphore } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import {
  decodeAck,
  encodeAck,
  encodeFrames,
  HEADER_BYTES,
  MAX_RECORD_BYTES,
  parseSegmentName,
  recordAt,
  scanSegment,
  segmentName,
  type Frame
} from "./format.ts"

// ---------------------------------------------------------------------------------------
// API

export interface Position {
  readonly segment: number
  readonly offset: number
}

export interface SpoolRecord {
  readonly position: Position
  readonly data: Uint8Array
}

export interface SpoolStats {
  /** Unacknowledged bytes (frames, headers included), accepted but not yet acknowledged; the bound applies to this. */
  readonly bytes: number
  /** Unacknowledged records. */
  readonly records: number
  /** Segment files on disk, the active one included. */
  readonly segments: number
  /** Records dropped because the spool was full (`onFull: "drop"` only), since open. */
  readonly dropped: number
  /** The last append did not fit, and acknowledgements have not yet made room for it. */
  readonly full: boolean
  /** Damaged regions moved to `quarantine/` when this spool was opened. */
  readonly quarantined: number
}

export interface Spool {
  /**
   * Appends the records, in order, as one unit. Their bytes are handed to the OS before
   * the Effect completes, usually without a suspension (a process crash no longer loses
   * them; only a segment roll makes appends wait); with `durable: true`, it completes only
   * after the next group commit (`fdatasync`) covered them (a power loss no longer loses them).
   */
  readonly append: (
    records: NonEmptyReadonlyArray<Uint8Array>,
    options?: { readonly durable?: boolean }
  ) => Effect.Effect<void, SpoolFull | SpoolFailure>
  /**
   * `append`, done at once in the common case (room, no segment roll due or under way,
   * nothing to wait for or to log), which so costs the data path no Effect to build and
   * run: `undefined` once the records are written. Otherwise nothing is done yet, and the
   * Effect returned does it all, or fails as `append` would.
   */
  readonly appendNow: (
    records: NonEmptyReadonlyArray<Uint8Array>,
    options?: { readonly durable?: boolean }
  ) => Effect.Effect<void, SpoolFull | SpoolFailure> | undefined
  /** Waits until at least one record past the read cursor exists, then returns up to the limits, oldest first, and advances the read cursor. */
  readonly next: (limits: {
    readonly maxRecords: number
    readonly maxBytes: number
  }) => Effect.Effect<NonEmptyReadonlyArray<SpoolRecord>, SpoolFailure>
  /** Everything up to and including `position` was delivered. */
  readonly ack: (position: Position) => Effect.Effect<void, SpoolFailure>
  /**
   * Moves the read cursor back to the first unacknowledged record, so that whatever `next`
   * returned but nobody acknowledged is delivered again: for a shipper that lost a batch
   * (its fiber was interrupted after `next` returned, or it gave up on a send) without
   * restarting the gateway.
   */
  readonly rewind: () => Effect.Effect<void>
  readonly stats: () => SpoolStats
}

export interface SpoolOptions {
  readonly directory: string
  /** The bound on unacknowledged bytes (see `SpoolStats.bytes`). */
  readonly maxBytes: number
  /** A segment rolls before a batch would take it past this size. */
  readonly segmentBytes: number
  /** Group commit interval. */
  readonly fsyncIntervalMs: number
  /** `refuse`: `append` fails with `SpoolFull`. `drop`: the records are dropped, counted and alarmed. */
  readonly onFull: "refuse" | "drop"
  /**
   * Damage in the middle of the spool found on open. `quarantine` (default): copy the
   * segment to `quarantine/`, keep its readable records, log an error, open. `fail`: open
   * fails with `SpoolCorrupt` and nothing is changed.
   */
  readonly onCorrupt?: "quarantine" | "fail"
  /**
   * How many bytes of the latest frames of the active segment are also kept in memory
   * (default 8 MiB): a reader less than this far behind gets them from there, without
   * reading them back. 0: it always reads the files.
   */
  readonly recentBytes?: number
}

export class SpoolFull extends Data.TaggedError("SpoolFull")<{
  readonly directory: string
  readonly bytes: number
  readonly maxBytes: number
  readonly requested: number
}> {
  override get message(): string {
    return `the audit spool is full (${this.bytes} of ${this.maxBytes} bytes waiting for delivery; ${this.requested} more requested)`
  }
}

export class SpoolFailure extends Data.TaggedError("SpoolFailure")<{
  readonly directory: string
  readonly operation: string
  readonly reason: string
}> {
  override get message(): string {
    return `audit spool ${this.directory}: ${this.operation} failed: ${this.reason}`
  }
}

/** A damaged region in the middle of the spool (never a torn tail, which is truncated). */
export class SpoolCorrupt extends Data.TaggedError("SpoolCorrupt")<{
  readonly directory: string
  readonly segment: number
  /** The first byte of the segment that is not part of a valid record. */
  readonly offset: number
  /** How many bytes of the segment could not be read. */
  readonly bytes: number
  readonly reason: string
}> {
  override get message(): string {
    return `audit spool ${this.directory}: segment ${segmentName(this.segment)} is damaged at offset ${this.offset} (${this.reason}; ${this.bytes} bytes unreadable)`
  }
}

export class SpoolService extends Context.Service<SpoolService, Spool>()("sluice/Spool") {}

export const layerSpool = (options: SpoolOptions): Layer.Layer<SpoolService, SpoolFailure | SpoolCorrupt> =>
  Layer.effect(SpoolService)(openSpool(options))

// ---------------------------------------------------------------------------------------
// node fs, as Effects

type Errno = NodeJS.ErrnoException

const reasonOf = (e: unknown): string => (e instanceof Error ? e.message : String(e))

/**
 * A node callback call. Uninterruptible: an interrupted fiber must not go on (closing the
 * fd, say) while the thread pool still runs the call on it.
 */
const nodeCall = <A>(
  fail: (e: Errno) => SpoolFailure,
  run: (cb: (err: Errno | null, a: A) => void) => void
): Effect.Effect<A, SpoolFailure> =>
  Effect.uninterruptible(
    Effect.callback<A, SpoolFailure>((resume) => {
      run((err, a) => resume(err ? Effect.fail(fail(err)) : Effect.succeed(a)))
    })
  )

/** Writes every byte of `data` at `position`, looping over short writes; throws the errno. */
const writeAllSync = (fd: number, data: Buffer, position: number): void => {
  let done = 0
  while (done < data.length) {
    const written = fs.writeSync(fd, data, done, data.length - done, position + done)
    if (written === 0) throw Object.assign(new Error("write wrote nothing"), { code: "EIO" })
    done += written
  }
}

const readAt = (fd: number, length: number, position: number, fail: (e: Errno) => SpoolFailure): Effect.Effect<Buffer, SpoolFailure> =>
  nodeCall(fail, (cb) => {
    const buf = Buffer.allocUnsafe(length)
    fs.read(fd, buf, 0, length, position, (err, n) => cb(err, n === length ? buf : buf.subarray(0, n)))
  })

const fsyncDirSync = (dir: string): void => {
  const fd = fs.openSync(dir, "r")
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

const writeFileDurablySync = (file: string, data: Uint8Array): void => {
  const fd = fs.openSync(file, "w")
  try {
    fs.writeSync(fd, data)
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

// ---------------------------------------------------------------------------------------
// the directory lock: one process, one open spool per directory

/** Directories (resolved) open in this process. */
const openHere = new Set<string>()

const alive = (pid: number): boolean => {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as Errno).code === "EPERM"
  }
}

/** A `LOCK` file holding our pid, taken over when its process is gone (after a crash). Best effort: pids are reused. */
const lockSync = (dir: string): string | undefined => {
  const file = path.join(dir, "LOCK")
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = fs.openSync(file, "wx")
      try {
        fs.writeSync(fd, `${process.pid}\n`)
      } finally {
        fs.closeSync(fd)
      }
      openHere.add(dir)
      return undefined
    } catch (e) {
      if ((e as Errno).code !== "EEXIST") throw e
      let holder = Number.NaN
      try {
        holder = Number(fs.readFileSync(file, "utf8").trim())
      } catch {
        // vanished or unreadable: take it over
      }
      if (holder === process.pid ? openHere.has(dir) : alive(holder)) {
        return holder === process.pid ? "it is already open in this process" : `it is in use by process ${holder}`
      }
      fs.rmSync(file, { force: true })
    }
  }
  return "its LOCK file keeps reappearing"
}

const unlockSync = (dir: string): void => {
  openHere.delete(dir)
  fs.rmSync(path.join(dir, "LOCK"), { force: true })
}

// ---------------------------------------------------------------------------------------
// recovery on open (synchronous: it runs once, before the gateway serves anyone)

interface Segment {
  readonly id: number
  /** Bytes handed to the OS: always a whole number of valid frames. */
  size: number
}

interface LogLine {
  readonly level: "warning" | "error"
  readonly message: string
  readonly fields: Record<string, unknown>
}

interface Recovered {
  readonly segments: Array<Segment>
  readonly activeFd: number
  readonly ack: Position
  readonly records: number
  readonly bytes: number
  readonly quarantined: number
  readonly logs: ReadonlyArray<LogLine>
}

const comparePositions = (a: Position, b: Position): number => a.segment - b.segment || a.offset - b.offset

/** Moves an ack position that sits at the end of a sealed segment (or in a missing one) to the next segment's start. */
const normalizeAck = (ack: Position, segments: ReadonlyArray<Segment>): Position => {
  let a = ack
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!
    if (s.id < a.segment) continue
    if (s.id > a.segment) return { segment: s.id, offset: 0 }
    if (a.offset < s.size || i === segments.length - 1) return a
    a = { segment: segments[i + 1]!.id, offset: 0 }
  }
  return a
}

const recoverSync = (directory: string, onCorrupt: "quarantine" | "fail"): Recovered => {
  const logs: Array<LogLine> = []
  const names = fs.readdirSync(directory)
  for (const name of names) if (name.endsWith(".tmp")) fs.rmSync(path.join(directory, name), { force: true })

  // the ack position; a damaged ack file means: deliver everything again (at least once)
  let ack: Position = { segment: 0, offset: 0 }
  const ackFile = path.join(directory, "ack")
  if (fs.existsSync(ackFile)) {
    const decoded = decodeAck(fs.readFileSync(ackFile))
    if (decoded) ack = decoded
    else
      logs.push({
        level: "error",
        message: "spool: the ack file is damaged; every record still on disk will be delivered again",
        fields: { file: ackFile }
      })
  }

  const ids = names.flatMap((n) => {
    const id = parseSegmentName(n)
    return id === undefined ? [] : [id]
  }).sort((a, b) => a - b)
  const highest = ids.length > 0 ? ids[ids.length - 1]! : 0

  // acknowledged segments whose deletion a crash interrupted
  for (const id of ids) if (id < ack.segment) fs.rmSync(path.join(directory, segmentName(id)), { force: true })
  const live = ids.filter((id) => id >= ack.segment)
  if (!live.includes(ack.segment)) ack = { segment: ack.segment, offset: 0 }

  const segments: Array<Segment> = []
  let records = 0
  let bytes = 0
  let quarantined = 0
  for (let i = 0; i < live.length; i++) {
    const id = live[i]!
    const isLast = i === live.length - 1
    const file = path.join(directory, segmentName(id))
    const buf = fs.readFileSync(file)
    const scan = scanSegment(buf)
    const damage = scan.tail !== undefined && !isLast ? [...scan.damage, scan.tail] : scan.damage
    let frames: ReadonlyArray<Frame> = scan.frames

    if (damage.length > 0) {
      const lost = damage.reduce((n, d) => n + (d.to - d.from), 0)
      const corrupt = new SpoolCorrupt({ directory, segment: id, offset: damage[0]!.from, bytes: lost, reason: damage[0]!.reason })
      if (onCorrupt === "fail") throw corrupt
      // keep the damaged original for a human, and the readable records in the spool
      const quarantine = path.join(directory, "quarantine")
      fs.mkdirSync(quarantine, { recursive: true })
      const kept = path.join(quarantine, `${segmentName(id)}.${Date.now()}`)
      fs.copyFileSync(file, kept)
      const keptFd = fs.openSync(kept, "r+")
      fs.fsyncSync(keptFd)
      fs.closeSync(keptFd)
      fsyncDirSync(quarantine)
      const repaired = Buffer.concat(frames.map((f) => buf.subarray(f.offset, f.offset + f.length)))
      const tmp = `${file}.tmp`
      writeFileDurablySync(tmp, repaired)
      fs.renameSync(tmp, file)
      fsyncDirSync(directory)
      if (ack.segment === id) {
        // acknowledged = the records that ended at or before the old ack offset
        ack = { segment: id, offset: frames.filter((f) => f.offset + f.length <= ack.offset).reduce((n, f) => n + f.length, 0) }
      }
      let at = 0
      frames = frames.map((f) => {
        const moved = { offset: at, length: f.length }
        at += f.length
        return moved
      })
      quarantined += damage.length
      for (const d of damage) {
        logs.push({
          level: "error",
          message: "spool: AUDIT DATA LOST: a damaged region in the middle of a segment was removed; the original segment is kept in quarantine",
          fields: { segment: id, offset: d.from, bytes: d.to - d.from, reason: d.reason, quarantine: kept, recordsKept: frames.length }
        })
      }
    } else if (scan.tail !== undefined) {
      // a write that never finished (crash or power loss): its append never completed
      const fd = fs.openSync(file, "r+")
      try {
        fs.ftruncateSync(fd, scan.tail.from)
        fs.fsyncSync(fd)
      } finally {
        fs.closeSync(fd)
      }
      logs.push({
        level: "warning",
        message: "spool: truncated a torn tail (an append that never completed)",
        fields: { segment: id, offset: scan.tail.from, bytes: scan.tail.to - scan.tail.from, reason: scan.tail.reason }
      })
    }

    if (ack.segment === id) {
      // an ack position inside a record (it never should be): deliver that record again
      let aligned = 0
      for (const f of frames) if (f.offset + f.length <= ack.offset) aligned = f.offset + f.length
      if (aligned !== ack.offset) {
        const size = frames.length > 0 ? frames[frames.length - 1]!.offset + frames[frames.length - 1]!.length : 0
        if (ack.offset < size) {
          logs.push({
            level: "error",
            message: "spool: the ack position is not on a record boundary; delivering from the record before it",
            fields: { segment: id, offset: ack.offset, from: aligned }
          })
        }
        ack = { segment: id, offset: aligned }
      }
    }
    let size = 0
    for (const f of frames) {
      size = f.offset + f.length
      if (id > ack.segment || f.offset >= ack.offset) {
        records++
        bytes += f.length
      }
    }
    if (size === 0) fs.rmSync(file, { force: true })
    else segments.push({ id, size })
  }

  // always a fresh segment: new records never share a file with an old ack position
  const activeId = Math.max(highest, ack.segment) + 1
  const activeFd = fs.openSync(path.join(directory, segmentName(activeId)), "wx")
  segments.push({ id: activeId, size: 0 })
  try {
    ack = normalizeAck(ack, segments)
    const tmp = path.join(directory, "ack.tmp")
    writeFileDurablySync(tmp, encodeAck(ack.segment, ack.offset))
    fs.renameSync(tmp, ackFile)
    fsyncDirSync(directory)
    while (segments[0]!.id < ack.segment) fs.rmSync(path.join(directory, segmentName(segments.shift()!.id)), { force: true })
  } catch (e) {
    fs.closeSync(activeFd)
    throw e
  }
  return { segments, activeFd, ack, records, bytes, quarantined, logs }
}

// ---------------------------------------------------------------------------------------
// the spool

/** An append waiting for a segment roll. */
interface Waiting {
  readonly records: ReadonlyArray<Uint8Array>
  readonly bytes: number
  /** Succeeds with the total bytes written once the records were handed to the OS. */
  readonly done: Deferred.Deferred<number, SpoolFailure>
}

/** The most one `next` reads from disk at once. */
const READ_BYTES = 16 * 1024 * 1024

const RECENT_BYTES = 8 * 1024 * 1024

/** One append's frames, as written at `start` of the active segment. */
interface Written {
  readonly start: number
  readonly frames: Buffer
}

const positiveInteger = (n: number): boolean => Number.isSafeInteger(n) && n > 0

/**
 * Opens (creating, or recovering) the spool in `options.directory`; closing the scope drains
 * the accepted appends, runs a last group commit, persists the ack position and unlocks.
 * Uninterruptible: the lock, the files and the fibers are either all handed to the scope or
 * never taken.
 */
export const openSpool = (options: SpoolOptions): Effect.Effect<Spool, SpoolFailure | SpoolCorrupt, Scope.Scope> =>
  Effect.uninterruptible(Effect.gen(function*() {
    const directory = path.resolve(options.directory)
    const { maxBytes, segmentBytes, fsyncIntervalMs, onFull } = options
    const failure = (operation: string, reason: string) => new SpoolFailure({ directory, operation, reason })
    const failWith = (operation: string) => (e: Errno) => failure(operation, reasonOf(e))

    if (!positiveInteger(maxBytes) || !positiveInteger(segmentBytes) || !positiveInteger(fsyncIntervalMs)) {
      return yield* Effect.fail(failure("open", "maxBytes, segmentBytes and fsyncIntervalMs must be positive integers"))
    }

    // --- open: lock, recover -------------------------------------------------------------
    yield* Effect.try({
      try: () => fs.mkdirSync(directory, { recursive: true }),
      catch: (e) => failure("open", reasonOf(e))
    })
    const refused = yield* Effect.try({ try: () => lockSync(directory), catch: (e) => failure("lock", reasonOf(e)) })
    if (refused !== undefined) return yield* Effect.fail(failure("open", `the spool directory is locked: ${refused}`))
    const recovered = yield* Effect.try({
      try: () => recoverSync(directory, options.onCorrupt ?? "quarantine"),
      catch: (e) => (e instanceof SpoolCorrupt ? e : failure("open", reasonOf(e)))
    }).pipe(Effect.onError(() => Effect.sync(() => unlockSync(directory))))
    for (const line of recovered.logs) {
      yield* (line.level === "error" ? Effect.logError(line.message, line.fields) : Effect.logWarning(line.message, line.fields)).pipe(
        Effect.annotateLogs({ spool: directory })
      )
    }

    // --- state -----------------------------------------------------------------------------
    const segments = recovered.segments
    const active = (): Segment => segments[segments.length - 1]!
    let activeFd = recovered.activeFd
    let unackedBytes = recovered.bytes
    let unackedRecords = recovered.records
    let dropped = 0
    /** a refusal burst: set by the first refused/dropped append, cleared by the next accepted one */
    let burst: { records: number; lastBytes: number } | undefined
    /** after a failed fsync nothing written can be trusted to be on disk: every append fails */
    let fatal: SpoolFailure | undefined
    /** no more appends (the writer drains what it has) */
    let closing = false
    /** the files are closed */
    let closed = false

    // an append goes into one segment in one write, so a segment only passes segmentBytes
    // when a single append does
    let writtenTotal = 0
    /**
     * While a segment rolls, appends wait here, in the order they were made, and the roll
     * writes them to the new segment when it is done: a session's events keep their order.
     */
    let waitingForRoll: Array<Waiting> | undefined
    /** Completes when the roll in progress (if any) and the writes waiting for it are done. */
    let rollDone: Deferred.Deferred<void> | undefined
    let syncedTotal = 0
    let syncRound = Deferred.makeUnsafe<void, SpoolFailure>()
    const fdLock = Semaphore.makeUnsafe(1)

    // reader
    /** Set only while a reader waits: an append with nobody waiting makes and completes nothing. */
    let dataSignal: Deferred.Deferred<void> | undefined
    const pulseReaders = () => {
      const s = dataSignal
      if (s === undefined) return
      dataSignal = undefined
      Deferred.doneUnsafe(s, Effect.void)
    }
    let cursor: Position = recovered.ack
    /**
     * The latest appends to the active segment, contiguous, oldest first from `head`, at
     * most `recentBytes` in all: reading back what was just written (a thread-pool read, a
     * buffer the size of the batch, every CRC again) is work on the event loop that buys
     * nothing (README.md, Reads). The files stay the truth for a reader further behind.
     */
    const recentBytes = options.recentBytes ?? RECENT_BYTES
    const recent = { segment: -1, appends: [] as Array<Written>, head: 0, bytes: 0 }
    let reader: { segment: number; fd: number } | undefined
    const readLock = Semaphore.makeUnsafe(1)
    /** delivered, unacknowledged records: (segment, offset, frame length) triples from `deliveredHead` */
    let delivered: Array<number> = []
    let deliveredHead = 0

    // acks
    let ackNext: Position = recovered.ack
    let ackPersisted: Position = recovered.ack
    let ackDirty = false

    /** Breaks the spool at once (not when the Effect runs); the Effect logs it. */
    const poison = (e: SpoolFailure): Effect.Effect<void> => {
      if (fatal) return Effect.void
      fatal = e
      Deferred.doneUnsafe(syncRound, Effect.fail(e))
      pulseReaders()
      return Effect.logError("spool: AUDIT SPOOL BROKEN: every append will fail until the gateway restarts", { reason: e.message })
    }

    // --- append --------------------------------------------------------------------------
    const waitSynced = (need: number): Effect.Effect<void, SpoolFailure> =>
      Effect.suspend(() => {
        if (syncedTotal >= need) return Effect.void
        if (fatal) return Effect.fail(fatal)
        return Effect.andThen(Deferred.await(syncRound), waitSynced(need))
      })

    const refuse = (count: number, bytes: number): Effect.Effect<void, SpoolFull> => {
      const first = burst === undefined
      burst ??= { records: 0, lastBytes: 0 }
      burst.records += count
      burst.lastBytes = bytes
      if (onFull === "drop") dropped += count
      const full = new SpoolFull({ directory, bytes: unackedBytes, maxBytes, requested: bytes })
      const alarm = first
        ? Effect.logError(
          onFull === "drop"
            ? "spool: AUDIT EVENTS DROPPED: the spool is full and onFull is \"drop\"; dropping until the shipper catches up"
            : "spool: the spool is full; refusing appends (and so statements) until the shipper catches up",
          { spool: directory, bytes: unackedBytes, maxBytes }
        )
        : Effect.void
      return onFull === "drop" ? alarm : Effect.andThen(alarm, Effect.fail(full))
    }

    // Uninterruptible up to the waits (restore): an append that begins a roll must also
    // start it, or every later append would wait for a roll that never comes.
    const append: Spool["append"] = (records, appendOptions) =>
      Effect.uninterruptibleMask((restore) => Effect.suspend((): Effect.Effect<void, SpoolFull | SpoolFailure> => {
        if (fatal) return Effect.fail(fatal)
        if (closing) return Effect.fail(failure("append", "the spool is closed"))
        let bytes = 0
        for (const r of records) {
          if (r.length > MAX_RECORD_BYTES || r.length + HEADER_BYTES > maxBytes) {
            return Effect.fail(failure("append", `a record of ${r.length} bytes can never fit (maxBytes ${maxBytes})`))
          }
          bytes += HEADER_BYTES + r.length
        }
        if (records.length === 0) return Effect.void
        if (unackedBytes + bytes > maxBytes) return refuse(records.length, bytes)

        unackedBytes += bytes
        unackedRecords += records.length
        const ended = burst
        burst = undefined
        const alarmEnded = ended === undefined
          ? Effect.void
          : Effect.logWarning("spool: accepting appends again", { spool: directory, [onFull === "drop" ? "dropped" : "refused"]: ended.records })
        const durable = appendOptions?.durable === true
        if (waitingForRoll === undefined && !needsRoll(bytes)) {
          const failed = writeNow(records, bytes)
          if (failed !== undefined) return Effect.andThen(alarmEnded, failed)
          return durable ? Effect.andThen(alarmEnded, restore(waitSynced(writtenTotal))) : alarmEnded
        }
        const waiting: Waiting = { records, bytes, done: Deferred.makeUnsafe<number, SpoolFailure>() }
        const started = waitingForRoll === undefined ? beginRoll(waiting) : (waitingForRoll.push(waiting), Effect.void)
        const written = Deferred.await(waiting.done)
        return Effect.andThen(Effect.andThen(started, alarmEnded), restore(durable ? Effect.flatMap(written, waitSynced) : Effect.asVoid(written)))
      }))

    const appendNow: Spool["appendNow"] = (records, appendOptions) => {
      let bytes = 0
      let largest = 0
      for (const r of records) {
        bytes += HEADER_BYTES + r.length
        largest = Math.max(largest, r.length)
      }
      const atOnce = !fatal && !closing && burst === undefined && appendOptions?.durable !== true && waitingForRoll === undefined &&
        largest <= MAX_RECORD_BYTES && unackedBytes + bytes <= maxBytes && !needsRoll(bytes)
      if (!atOnce) return append(records, appendOptions)
      unackedBytes += bytes
      unackedRecords += records.length
      return writeNow(records, bytes)
    }

    const needsRoll = (bytes: number): boolean => active().size > 0 && active().size + bytes > segmentBytes

    /** Writes accepted records to the active segment; a failure leaves no partial frame behind. */
    const writeNow = (records: ReadonlyArray<Uint8Array>, bytes: number): Effect.Effect<never, SpoolFailure> | undefined => {
      const segment = active()
      const start = segment.size
      const frames = encodeFrames(records, bytes)
      try {
        writeAllSync(activeFd, frames, start)
      } catch (e) {
        unackedBytes -= bytes
        unackedRecords -= records.length
        const error = failure("write", reasonOf(e))
        try {
          fs.ftruncateSync(activeFd, start)
        } catch {
          return Effect.andThen(poison(failure("write", `${error.reason}, and removing the partial write failed too`)), Effect.fail(error))
        }
        return Effect.fail(error)
      }
      segment.size += bytes
      writtenTotal += bytes
      keepRecent(segment.id, { start, frames })
      pulseReaders()
      return undefined
    }

    const keepRecent = (segment: number, written: Written): void => {
      if (recentBytes === 0) return
      if (recent.segment !== segment) forgetRecent(segment)
      recent.appends.push(written)
      recent.bytes += written.frames.length
      while (recent.bytes > recentBytes) dropOldestRecent()
    }
    const forgetRecent = (segment: number): void => {
      recent.segment = segment
      recent.appends = []
      recent.head = 0
      recent.bytes = 0
    }
    const dropOldestRecent = (): void => {
      recent.bytes -= recent.appends[recent.head]!.frames.length
      recent.head++
      if (recent.head === recent.appends.length) forgetRecent(recent.segment)
      else if (recent.head >= 1024 && recent.head * 2 >= recent.appends.length) {
        recent.appends = recent.appends.slice(recent.head)
        recent.head = 0
      }
    }

    // --- writer --------------------------------------------------------------------------
    const syncDirectory: Effect.Effect<void, SpoolFailure> = nodeCall<number>(failWith("sync directory"), (cb) => fs.open(directory, "r", cb)).pipe(
      Effect.flatMap((dfd) =>
        nodeCall<void>(failWith("sync directory"), (cb) => fs.fsync(dfd, cb)).pipe(
          Effect.ensuring(nodeCall<void>(failWith("sync directory"), (cb) => fs.close(dfd, cb)).pipe(Effect.ignore))
        )
      )
    )

    const roll: Effect.Effect<void, SpoolFailure> = Effect.gen(function*() {
      const id = active().id + 1
      const file = path.join(directory, segmentName(id))
      const fd = yield* nodeCall<number>(failWith("create segment"), (cb) => fs.open(file, "wx", cb))
      const dirSynced = yield* Effect.result(syncDirectory)
      if (Result.isFailure(dirSynced)) {
        fs.close(fd, () => fs.rm(file, { force: true }, () => {}))
        return yield* Effect.fail(dirSynced.failure)
      }
      // the sealed segment is durable before anything lands in the next one
      yield* fdLock.withPermit(Effect.gen(function*() {
        const synced = yield* Effect.result(nodeCall<void>(failWith("fdatasync"), (cb) => fs.fdatasync(activeFd, cb)))
        if (Result.isFailure(synced)) {
          fs.close(fd, () => fs.rm(file, { force: true }, () => {}))
          yield* poison(synced.failure)
          return yield* Effect.fail(synced.failure)
        }
        syncedTotal = writtenTotal
        const old = activeFd
        activeFd = fd
        segments.push({ id, size: 0 })
        fs.close(old, () => {})
      }))
      ackDirty = true // the sealed segment may be fully acknowledged already
    })

    /**
     * Starts a roll in a fiber of its own; `first`, and every append made until the roll is
     * done, waits for it. The state changes at once; the returned Effect forks the fiber.
     */
    const beginRoll = (first: Waiting): Effect.Effect<void> => {
      waitingForRoll = [first]
      rollDone ??= Deferred.makeUnsafe<void>()
      return Effect.asVoid(Effect.forkDetach(Effect.uninterruptible(Effect.result(roll).pipe(Effect.flatMap(afterRoll)))))
    }

    /**
     * Writes the waiting appends in order, or fails them all. One loop with no suspension,
     * so that no append made meanwhile can pass a waiting one; an append that needs the
     * next roll begins it, and the rest wait for that one.
     */
    const afterRoll = (rolled: Result.Result<void, SpoolFailure>): Effect.Effect<void> =>
      Effect.suspend(() => {
        const waiting = waitingForRoll ?? []
        waitingForRoll = undefined
        const then: Array<Effect.Effect<void>> = []
        for (const w of waiting) {
          if (Result.isFailure(rolled)) {
            unackedBytes -= w.bytes
            unackedRecords -= w.records.length
            Deferred.doneUnsafe(w.done, Effect.fail(rolled.failure))
            continue
          }
          const queue = waitingForRoll as Array<Waiting> | undefined // a roll this loop began
          if (queue !== undefined) queue.push(w)
          else if (needsRoll(w.bytes)) then.push(beginRoll(w))
          else {
            const failed = writeNow(w.records, w.bytes)
            if (failed === undefined) Deferred.doneUnsafe(w.done, Effect.succeed(writtenTotal))
            else then.push(Effect.map(Effect.exit(failed), (exit) => Deferred.doneUnsafe(w.done, exit)))
          }
        }
        if (waitingForRoll === undefined && rollDone !== undefined) {
          Deferred.doneUnsafe(rollDone, Effect.void)
          rollDone = undefined
        }
        return Effect.all(then, { discard: true })
      })

    // --- group commit, ack persistence, deletion ------------------------------------------
    const persistAck: Effect.Effect<void, SpoolFailure> = Effect.gen(function*() {
      ackDirty = false
      const target = normalizeAck(ackNext, segments)
      if (comparePositions(target, ackPersisted) !== 0) {
        const tmp = path.join(directory, "ack.tmp")
        const ackFile = path.join(directory, "ack")
        const data = encodeAck(target.segment, target.offset)
        const fd = yield* nodeCall<number>(failWith("write ack"), (cb) => fs.open(tmp, "w", cb))
        yield* nodeCall<number>(failWith("write ack"), (cb) => fs.write(fd, data, 0, data.length, 0, cb)).pipe(
          Effect.filterOrFail((written) => written === data.length, () => failure("write ack", "a short write")),
          Effect.andThen(nodeCall<void>(failWith("write ack"), (cb) => fs.fdatasync(fd, cb))),
          Effect.ensuring(nodeCall<void>(failWith("write ack"), (cb) => fs.close(fd, cb)).pipe(Effect.ignore))
        )
        yield* nodeCall<void>(failWith("write ack"), (cb) => fs.rename(tmp, ackFile, cb))
        yield* syncDirectory
        ackPersisted = target
      }
      // only once the ack that covers them is durable
      while (segments.length > 1 && segments[0]!.id < ackPersisted.segment) {
        const gone = segments[0]!
        yield* nodeCall<void>(failWith("delete segment"), (cb) => fs.rm(path.join(directory, segmentName(gone.id)), { force: true }, cb))
        if (segments[0] === gone) segments.shift()
      }
    }).pipe(Effect.tapError(() => Effect.sync(() => void (ackDirty = true))))

    const syncOnce: Effect.Effect<void> = Effect.gen(function*() {
      if (!fatal && writtenTotal > syncedTotal) {
        yield* fdLock.withPermit(Effect.suspend(() => {
          const target = writtenTotal
          return nodeCall<void>(failWith("fdatasync"), (cb) => fs.fdatasync(activeFd, cb)).pipe(
            Effect.map(() => void (syncedTotal = Math.max(syncedTotal, target)))
          )
        })).pipe(Effect.catch(poison))
      }
      if (!fatal) {
        const round = syncRound
        syncRound = Deferred.makeUnsafe<void, SpoolFailure>()
        Deferred.doneUnsafe(round, Effect.void)
      }
      if (ackDirty) {
        yield* persistAck.pipe(
          Effect.catch((e) => Effect.logError("spool: persisting the ack position failed; will retry", { spool: directory, reason: e.message }))
        )
      }
    })

    const syncer: Effect.Effect<never> = Effect.forever(Effect.andThen(Effect.sleep(fsyncIntervalMs), syncOnce))

    // --- read ----------------------------------------------------------------------------
    const segmentAt = (id: number): Segment | undefined => {
      for (const s of segments) if (s.id >= id) return s
      return undefined
    }

    const readRecords = (
      segment: Segment,
      limits: { readonly maxRecords: number; readonly maxBytes: number }
    ): Effect.Effect<NonEmptyReadonlyArray<SpoolRecord>, SpoolFailure> =>
      Effect.gen(function*() {
        if (reader === undefined || reader.segment !== segment.id) {
          if (reader !== undefined) fs.close(reader.fd, () => {})
          reader = undefined
          const file = path.join(directory, segmentName(segment.id))
          const fd = yield* nodeCall<number>(failWith("open segment"), (cb) => fs.open(file, "r", cb))
          reader = { segment: segment.id, fd }
        }
        const fd = reader.fd
        const base = cursor.offset
        const avail = segment.size - base
        const corrupt = (offset: number, what: string) =>
          failure(
            "read",
            `the record at segment ${segment.id} offset ${offset} ${what} (the disk changed it after it was written); ` +
              "reopening the spool moves the damage to quarantine"
          )
        const maxRecords = Math.max(1, Math.floor(limits.maxRecords))
        let buf = yield* readAt(fd, Math.min(avail, READ_BYTES, Math.max(limits.maxBytes, 0) + HEADER_BYTES * Math.min(maxRecords, 4096)), base, failWith("read"))
        if (buf.length < HEADER_BYTES) return yield* Effect.fail(corrupt(base, "is cut short"))
        const first = buf.readUInt32BE(0)
        if (HEADER_BYTES + first > buf.length) {
          // one record larger than the read: take it alone
          if (HEADER_BYTES + first > avail) return yield* Effect.fail(corrupt(base, "has a damaged header"))
          buf = yield* readAt(fd, HEADER_BYTES + first, base, failWith("read"))
        }
        const out: Array<SpoolRecord> = []
        let o = 0
        let dataBytes = 0
        while (out.length < maxRecords && o + HEADER_BYTES <= buf.length) {
          const length = buf.readUInt32BE(o)
          if (o + HEADER_BYTES + length > buf.length) break
          if (out.length > 0 && dataBytes + length > limits.maxBytes) break
          const data = recordAt(buf, o)
          if (data === undefined) {
            if (out.length > 0) break // deliver what is good first
            return yield* Effect.fail(corrupt(base + o, "fails its CRC"))
          }
          const end = o + HEADER_BYTES + length
          out.push({ position: { segment: segment.id, offset: base + o }, data })
          delivered.push(segment.id, base + o, end - o)
          dataBytes += length
          o = end
        }
        cursor = { segment: segment.id, offset: base + o }
        return out as unknown as NonEmptyReadonlyArray<SpoolRecord>
      })

    /**
     * `readRecords` from the recent appends, when they hold the cursor: the frames are the
     * ones written, so their CRCs are not checked again. Appends before the cursor are let go.
     */
    const recentRecords = (
      segment: number,
      limits: { readonly maxRecords: number; readonly maxBytes: number }
    ): NonEmptyReadonlyArray<SpoolRecord> | undefined => {
      if (recent.segment !== segment) return undefined
      while (recent.bytes > 0 && cursor.offset >= recent.appends[recent.head]!.start + recent.appends[recent.head]!.frames.length) dropOldestRecent()
      if (recent.bytes === 0 || recent.appends[recent.head]!.start > cursor.offset) return undefined
      const maxRecords = Math.max(1, Math.floor(limits.maxRecords))
      const out: Array<SpoolRecord> = []
      let dataBytes = 0
      let offset = cursor.offset
      for (let i = recent.head; i < recent.appends.length && out.length < maxRecords; i++) {
        const { start, frames } = recent.appends[i]!
        let at = offset - start
        while (at < frames.length && out.length < maxRecords) {
          const length = frames.readUInt32BE(at)
          if (out.length > 0 && dataBytes + length > limits.maxBytes) break
          out.push({ position: { segment, offset }, data: frames.subarray(at + HEADER_BYTES, at + HEADER_BYTES + length) })
          delivered.push(segment, offset, HEADER_BYTES + length)
          dataBytes += length
          at += HEADER_BYTES + length
          offset += HEADER_BYTES + length
        }
        if (at < frames.length) break
      }
      cursor = { segment, offset }
      return out as unknown as NonEmptyReadonlyArray<SpoolRecord>
    }

    const nextLoop = (limits: {
      readonly maxRecords: number
      readonly maxBytes: number
    }): Effect.Effect<NonEmptyReadonlyArray<SpoolRecord>, SpoolFailure> =>
      Effect.suspend(() => {
        if (fatal) return Effect.fail(fatal)
        if (closed) return Effect.fail(failure("next", "the spool is closed"))
        let segment = segmentAt(cursor.segment)
        if (segment !== undefined && segment.id !== cursor.segment) cursor = { segment: segment.id, offset: 0 }
        while (segment !== undefined && segment !== active() && cursor.offset >= segment.size) {
          segment = segmentAt(segment.id + 1)
          if (segment !== undefined) cursor = { segment: segment.id, offset: 0 }
        }
        if (segment === undefined) return Effect.fail(failure("next", "the read cursor is past every segment"))
        if (cursor.offset < segment.size) {
          const fromMemory = recentRecords(segment.id, limits)
          return fromMemory === undefined ? readRecords(segment, limits) : Effect.succeed(fromMemory)
        }
        if (closing) return Effect.fail(failure("next", "the spool is closed"))
        // the only wait: interruptible, and woken by the next write (and by close)
        dataSignal ??= Deferred.makeUnsafe<void>()
        return Effect.andThen(Deferred.await(dataSignal), nextLoop(limits))
      })

    const next: Spool["next"] = (limits) => readLock.withPermit(nextLoop(limits))

    // --- ack -----------------------------------------------------------------------------
    const ack: Spool["ack"] = (position) =>
      Effect.suspend(() => {
        if (comparePositions(position, ackNext) < 0) return Effect.void
        const last = delivered.length - 3
        if (
          deliveredHead > last ||
          comparePositions(position, { segment: delivered[last]!, offset: delivered[last + 1]! }) > 0
        ) {
          return Effect.fail(failure("ack", `position ${position.segment}:${position.offset} was never delivered by next`))
        }
        let i = deliveredHead
        while (
          i < delivered.length &&
          comparePositions({ segment: delivered[i]!, offset: delivered[i + 1]! }, position) <= 0
        ) {
          unackedBytes -= delivered[i + 2]!
          unackedRecords -= 1
          ackNext = { segment: delivered[i]!, offset: delivered[i + 1]! + delivered[i + 2]! }
          i += 3
        }
        if (i === delivered.length) {
          delivered = []
          deliveredHead = 0
        } else if (i > 3 * 4096 && i * 2 > delivered.length) {
          delivered = delivered.slice(i)
          deliveredHead = 0
        } else deliveredHead = i
        ackDirty = true
        return Effect.void
      })

    const rewind: Spool["rewind"] = () =>
      readLock.withPermit(Effect.sync(() => {
        cursor = ackNext
        delivered = []
        deliveredHead = 0
      }))

    const stats = (): SpoolStats => ({
      bytes: unackedBytes,
      records: unackedRecords,
      segments: segments.length,
      dropped,
      full: burst !== undefined && unackedBytes + burst.lastBytes > maxBytes,
      quarantined: recovered.quarantined
    })

    // --- lifetime ------------------------------------------------------------------------
    const close = (syncFiber: Fiber.Fiber<never>): Effect.Effect<void> =>
      Effect.gen(function*() {
        closing = true
        pulseReaders()
        if (rollDone !== undefined) yield* Deferred.await(rollDone)
        yield* Fiber.interrupt(syncFiber)
        // a read in flight finishes first, and no read starts after
        yield* readLock.withPermit(Effect.sync(() => {
          closed = true
          if (reader !== undefined) fs.closeSync(reader.fd)
          reader = undefined
        }))
        // the final group commit
        if (!fatal && writtenTotal > syncedTotal) {
          yield* nodeCall<void>(failWith("fdatasync"), (cb) => fs.fdatasync(activeFd, cb)).pipe(
            Effect.map(() => void (syncedTotal = writtenTotal)),
            Effect.catch(poison)
          )
        }
        if (!fatal) Deferred.doneUnsafe(syncRound, Effect.void)
        // always: an interrupted sync fiber may have been half way through persisting it
        yield* persistAck.pipe(
          Effect.catch((e) => Effect.logError("spool: persisting the ack position on close failed", { spool: directory, reason: e.message }))
        )
        fs.closeSync(activeFd)
        // an empty active segment is not worth keeping (open always starts a fresh one)
        if (active().size === 0) fs.rmSync(path.join(directory, segmentName(active().id)), { force: true })
        unlockSync(directory)
      }).pipe(Effect.catchCause((cause) => Effect.logError("spool: closing failed", { spool: directory, cause: String(cause) })))

    const syncFiber = yield* Effect.forkDetach(syncer)
    yield* Effect.addFinalizer(() => close(syncFiber))

    return { append, appendNow, next, ack, rewind, stats } satisfies Spool
  }))
