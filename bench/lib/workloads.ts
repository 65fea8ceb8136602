/**
 * One measurement of one workload on one target. The orchestrator (bench/run.ts)
 * repeats them, alternating targets, and takes medians.
 */
import * as hdr from "hdr-histogram-js"
import pg from "pg"
import Cursor from "pg-cursor"
import { run } from "../../test/harness/process.ts"
import { connectPg, type PgConn, roundTrips, simpleQuery, slowRead } from "./pgwire.ts"
import { cpuSeconds, mainThreadCpuSeconds, type Pinning, rssBytes, sampleRss } from "./proc.ts"
import { REDACTED } from "./sluice-config.ts"
import { libpqEnv, type Target } from "./targets.ts"

export interface Context {
  readonly pin: Pinning
}

// ---------------------------------------------------------------------------
// pgbench

export interface PgbenchRun {
  readonly tps: number
  readonly latencyMs: number
  readonly transactions: number
  /** CPU seconds of the proxy process during the run; null for direct. */
  readonly cpuSeconds: number | null
  /** Proxy CPU µs per transaction; null for direct. */
  readonly cpuUsPerTx: number | null
  /** The proxy's main thread's share of it (the event loop, for Node proxies). */
  readonly mainThreadUsPerTx: number | null
  readonly connectionMs: number | null
}

const grab = (out: string, re: RegExp, what: string): number => {
  const m = re.exec(out)
  if (!m) throw new Error(`pgbench printed no ${what}:\n${out}`)
  return Number(m[1])
}

export interface PgbenchOptions {
  readonly mode: "simple" | "prepared"
  readonly clients: number
  /**
   * `-T seconds`, or `-t transactions` per client. Counted runs cannot end before their
   * first transaction: -T includes pgbench's logins, and through PgBouncer a fresh pool
   * opens its server connections one after another.
   */
  readonly length: { readonly seconds: number } | { readonly transactionsPerClient: number }
  /** -C: a new connection for every transaction. */
  readonly reconnect?: boolean
  /**
   * Leave the clients' logins out of the proxy's CPU per transaction: first run every
   * client once (`-t 1`), take that CPU time off the measured run's. Without it, 64
   * Sluice logins (a few ms of CPU each, for SCRAM with PostgreSQL) would weigh on a
   * 6-second run's per-transaction figure.
   */
  readonly excludeLogins?: boolean
}

/** CPU seconds of a proxy process, all its threads and its main thread alone. */
interface CpuSample {
  readonly all: number
  readonly main: number
}
const cpuSample = (pid: number | null): CpuSample | null => (pid === null ? null : { all: cpuSeconds(pid), main: mainThreadCpuSeconds(pid) })
const cpuBetween = (a: CpuSample | null, b: CpuSample | null): CpuSample | null => (a === null || b === null ? null : { all: b.all - a.all, main: b.main - a.main })

const pgbenchOnce = async (t: Target, ctx: Context, o: PgbenchOptions): Promise<{ out: string; transactions: number; cpu: CpuSample | null }> => {
  const length = "seconds" in o.length ? ["-T", String(o.length.seconds)] : ["-t", String(o.length.transactionsPerClient)]
  const args = ["-n", "-S", "-M", o.mode, "-c", String(o.clients), "-j", "1", ...length]
  if (o.reconnect) args.push("-C")
  const cmd = ctx.pin.wrap("load", "pgbench", args)
  const seconds = "seconds" in o.length ? o.length.seconds : 300
  const cpu0 = cpuSample(t.pid)
  const { stdout, stderr } = await run("pgbench", cmd.command, cmd.args, { env: libpqEnv(t.endpoint), timeoutMs: (seconds + 120) * 1000 })
  const cpu1 = cpuSample(t.pid)
  const out = stdout + stderr
  const transactions = grab(out, /number of transactions actually processed: (\d+)/, "transaction count")
  const failed = /number of failed transactions: (\d+)/.exec(out)
  if (failed && Number(failed[1]) > 0) throw new Error(`pgbench: ${failed[1]} failed transactions:\n${out}`)
  if (transactions === 0) throw new Error(`pgbench: no transaction completed:\n${out}`)
  return { out, transactions, cpu: cpuBetween(cpu0, cpu1) }
}

export const pgbench = async (t: Target, ctx: Context, o: PgbenchOptions): Promise<PgbenchRun> => {
  const logins = o.excludeLogins && t.pid !== null ? await pgbenchOnce(t, ctx, { mode: o.mode, clients: o.clients, length: { transactionsPerClient: 1 } }) : null
  const { out, transactions, cpu: measured } = await pgbenchOnce(t, ctx, o)
  const net = (of: (c: CpuSample) => number): number | null => (measured === null ? null : Math.max(0, of(measured) - (logins?.cpu ? of(logins.cpu) : 0)))
  const cpu = net((c) => c.all)
  const main = net((c) => c.main)
  const conn = /(?:average|initial) connection time = ([\d.]+) ms/.exec(out)
  return {
    tps: grab(out, /tps = ([\d.]+)/, "tps"),
    latencyMs: grab(out, /latency average = ([\d.]+) ms/, "average latency"),
    transactions,
    cpuSeconds: cpu,
    cpuUsPerTx: cpu === null ? null : (cpu * 1e6) / transactions,
    mainThreadUsPerTx: main === null ? null : (main * 1e6) / transactions,
    connectionMs: conn ? Number(conn[1]) : null
  }
}

// ---------------------------------------------------------------------------
// Added latency: one connection, `SELECT 1` round trips, HDR histogram in ns

export type Histogram = hdr.Histogram

export const newHistogram = (): Histogram =>
  hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: 3, useWebAssembly: false })

export const latency = async (t: Target, o: { warmup: number; count: number }): Promise<Histogram> => {
  const conn = await connectPg(t.endpoint)
  try {
    await roundTrips(conn, "SELECT 1", o.warmup, () => {})
    const h = newHistogram()
    await roundTrips(conn, "SELECT 1", o.count, (ns) => h.recordValue(ns))
    return h
  } finally {
    conn.close()
  }
}

// ---------------------------------------------------------------------------
// Large results

export const BIG_TABLE = "bench_big"

export const copyOut = async (t: Target, ctx: Context, bytes: number): Promise<{ mbps: number; seconds: number }> => {
  const cmd = ctx.pin.wrap("load", "psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-o", "/dev/null", "-c", "\\timing on", "-c", `COPY ${BIG_TABLE} TO STDOUT`])
  const { stdout, stderr } = await run("psql", cmd.command, cmd.args, { env: libpqEnv(t.endpoint), timeoutMs: 600_000 })
  const m = /Time: ([\d.]+) ms/.exec(stdout + stderr)
  if (!m) throw new Error(`psql printed no timing:\n${stdout}${stderr}`)
  const seconds = Number(m[1]) / 1000
  return { mbps: bytes / 1e6 / seconds, seconds }
}

export interface CursorResult {
  readonly mbps: number
  readonly seconds: number
  readonly rows: number
  /** Rows whose payload arrived as the redacted constant: all of them through a masked target, none otherwise. */
  readonly redactedRows: number
  /** The first row, as the client saw it. */
  readonly sample: ReadonlyArray<unknown> | undefined
  /** CPU seconds of the proxy process during the read (after the login); null for direct. */
  readonly cpuSeconds: number | null
}

export const cursorRead = async (t: Target, bytes: number, batch: number): Promise<CursorResult> => {
  const client = new pg.Client({ ...t.endpoint, ssl: false })
  await client.connect()
  try {
    const cpu0 = t.pid === null ? null : cpuSeconds(t.pid)
    const start = performance.now()
    const cursor = client.query(new Cursor(`SELECT id, payload FROM ${BIG_TABLE}`, [], { rowMode: "array" }))
    let rows = 0
    let redactedRows = 0
    let sample: ReadonlyArray<unknown> | undefined
    for (;;) {
      const got: Array<Array<unknown>> = await cursor.read(batch)
      if (got.length === 0) break
      sample ??= got[0]
      rows += got.length
      // the same check for every target (a comparison a row, next to node-postgres's parsing of it)
      for (const row of got) if (row[1] === REDACTED) redactedRows++
    }
    await cursor.close()
    const seconds = (performance.now() - start) / 1000
    const cpu1 = t.pid === null ? null : cpuSeconds(t.pid)
    return { mbps: bytes / 1e6 / seconds, seconds, rows, redactedRows, sample, cpuSeconds: cpu0 === null || cpu1 === null ? null : cpu1 - cpu0 }
  } finally {
    await client.end()
  }
}

/**
 * `COPY bench_big TO STDOUT` through a target that must refuse it (a masked table: COPY
 * sends CopyData, which masking cannot rewrite): the gateway's error message. Throws when
 * the COPY went through, since that would be the table's values unmasked.
 */
export const copyRefused = async (t: Target, ctx: Context): Promise<string> => {
  const cmd = ctx.pin.wrap("load", "psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-o", "/dev/null", "-c", `COPY ${BIG_TABLE} TO STDOUT`])
  try {
    await run("psql", cmd.command, cmd.args, { env: libpqEnv(t.endpoint), timeoutMs: 600_000 })
  } catch (err) {
    const text = err instanceof Error ? err.message : String(err)
    const m = /ERROR:\s*(.*)/.exec(text)
    if (m) return m[1]!.trim()
    throw new Error(`COPY ${BIG_TABLE} TO STDOUT failed without a server error (expected the gateway to refuse it):\n${text}`)
  }
  throw new Error(`COPY ${BIG_TABLE} TO STDOUT went through a masked target: COPY cannot be masked, so the gateway must refuse it`)
}

// ---------------------------------------------------------------------------
// Memory

export interface IdleResult {
  readonly connections: number
  readonly rssBeforeBytes: number
  readonly rssAfterBytes: number
  readonly bytesPerConnection: number
  readonly openSeconds: number
}

/** Opens `count` logged-in connections, lets them sit, and reads the proxy's RSS. */
export const idleConnections = async (t: Target, count: number, settleMs: number): Promise<IdleResult> => {
  if (t.pid === null) throw new Error("idle connections are measured on a proxy process")
  const rssBeforeBytes = rssBytes(t.pid)
  const conns: PgConn[] = []
  const start = performance.now()
  try {
    const parallel = 32
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < count) {
        next++
        conns.push(await connectPg(t.endpoint, 120_000))
      }
    }
    await Promise.all(Array.from({ length: parallel }, worker))
    const openSeconds = (performance.now() - start) / 1000
    // every one of them is really usable
    await Promise.all(conns.slice(0, 10).map((c) => simpleQuery(c, "SELECT 1")))
    await new Promise((r) => setTimeout(r, settleMs))
    const rssAfterBytes = rssBytes(t.pid)
    return { connections: count, rssBeforeBytes, rssAfterBytes, bytesPerConnection: (rssAfterBytes - rssBeforeBytes) / count, openSeconds }
  } finally {
    for (const c of conns) c.close()
  }
}

export interface SlowReaderResult {
  readonly resultBytes: number
  readonly bytesRead: number
  readonly seconds: number
  readonly finished: boolean
  readonly rssBaselineBytes: number
  readonly rssPeakBytes: number
  readonly growthBytes: number
}

/** One client reads a `rows` × 1,000-byte result at `bytesPerSecond`, while we sample the proxy's RSS. */
export const slowReader = async (t: Target, o: { rows: number; bytesPerSecond: number; seconds: number }): Promise<SlowReaderResult> => {
  if (t.pid === null) throw new Error("the slow reader is measured on a proxy process")
  const conn = await connectPg(t.endpoint)
  try {
    await simpleQuery(conn, "SELECT 1")
    await new Promise((r) => setTimeout(r, 500))
    const rssBaselineBytes = rssBytes(t.pid)
    const sampler = sampleRss(t.pid, 250)
    const r = await slowRead(conn, `SELECT repeat('x', 1000) FROM generate_series(1, ${o.rows})`, o.bytesPerSecond, o.seconds)
    const samples = sampler.stop()
    const rssPeakBytes = Math.max(rssBaselineBytes, ...samples)
    return {
      resultBytes: o.rows * 1011,
      bytesRead: r.bytes,
      seconds: r.seconds,
      finished: r.finished,
      rssBaselineBytes,
      rssPeakBytes,
      growthBytes: rssPeakBytes - rssBaselineBytes
    }
  } finally {
    conn.close()
  }
}
