/**
 * The bench suite: Sluice against direct connections, a raw Node relay and PgBouncer,
 * measured side by side in one run (issue 5). See bench/README.md.
 *
 *   npm run bench                 full run (about 40 minutes), writes bench/results/latest.*
 *   npm run bench -- --quick      smoke run (about 2 minutes), writes bench/results/quick.*
 *
 * Exit status: 0 when every target that was started ran every workload; 1 when a target
 * or a workload broke. Timings never fail the run.
 */
import { mkdirSync, existsSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { parseArgs } from "node:util"
import pg from "pg"
import { startPostgres, type PgServer } from "../test/harness/postgres.ts"
import { run } from "../test/harness/process.ts"
import { type AuditBroker, awaitDelivery, startAuditBroker } from "./lib/kafka.ts"
import { describeMachine, loadAverage } from "./lib/machine.ts"
import { startDedicatedPostgres } from "./lib/postgres.ts"
import { pinSelf, planPinning } from "./lib/proc.ts"
import { toMarkdown, toSvg } from "./lib/report.ts"
import { REDACTED } from "./lib/sluice-config.ts"
import type { BarRow, ConnectRow, Failure, IdleRow, LatencyRow, PgbenchRow, Results, SlowReaderRow, StreamRow, TargetInfo } from "./lib/results.ts"
import { fmt, fmtRatio, median, ratio, rotate, round } from "./lib/stats.ts"
import {
  LABEL_WIDTH,
  libpqEnv,
  MASKED_TARGET,
  Skipped,
  startDirect,
  startPgBouncer,
  startRelay,
  startSluice,
  TARGET_LABELS,
  TARGET_ORDER,
  type Target,
  type TargetName,
  type Upstream
} from "./lib/targets.ts"
import { BIG_TABLE, copyOut, copyRefused, cursorRead, type CursorResult, idleConnections, latency, newHistogram, pgbench, type PgbenchOptions, slowReader, type Context, type Histogram } from "./lib/workloads.ts"

// ---------------------------------------------------------------------------
// Settings

const WORKLOADS = ["latency", "pgbench", "streaming", "connect", "slow-reader", "idle", "classifier"] as const
type Workload = (typeof WORKLOADS)[number]

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    "no-pin": { type: "boolean", default: false },
    only: { type: "string" },
    targets: { type: "string" },
    "slow-seconds": { type: "string" },
    out: { type: "string" },
    help: { type: "boolean", short: "h", default: false }
  }
})

if (args.help) {
  console.log(`node bench/run.ts [--quick] [--only ${WORKLOADS.join(",")}] [--targets ${TARGET_ORDER.join(",")}]
                  [--slow-seconds N] [--no-pin] [--out DIR]
  --quick          smoke run, about 2 minutes; writes quick.* instead of latest.*
  --only           run only these workloads (writes partial.*)
  --targets        run only these targets (writes partial.*)
  --slow-seconds   how long the slow reader reads (full: 60; 1100 reads the whole 1 GB)
  --no-pin         do not pin processes to cpus with taskset`)
  process.exit(0)
}

const quick = args.quick
const settings = {
  pgbenchScale: quick ? 1 : 10,
  pgbenchModes: ["simple", "prepared"] as Array<"simple" | "prepared">,
  pgbenchClients: quick ? [1, 16] : [1, 16, 64],
  // many short repetitions rather than a few long ones: a burst of load from another
  // process on a shared machine then spoils one repetition, and the median drops it
  // quick mode counts transactions (about a second's worth): it can never end before its
  // first transaction, however busy the machine is
  pgbenchLength: quick ? ("about 1 s, counted in transactions" as const) : { seconds: 6 },
  pgbenchWarmupSeconds: quick ? 0 : 2,
  pgbenchReps: quick ? 1 : 5,
  latencyWarmup: quick ? 200 : 2_000,
  latencyRoundTrips: quick ? 1_000 : 20_000,
  latencyReps: quick ? 1 : 5,
  streamRows: quick ? 200_000 : 1_000_000,
  streamReps: quick ? 1 : 5,
  cursorBatch: 10_000,
  connectClients: 4,
  connectLength: (quick ? { transactionsPerClient: 10 } : { seconds: 5 }) as PgbenchOptions["length"],
  connectReps: quick ? 1 : 5,
  idleConnections: quick ? 50 : 1_000,
  idleSettleMs: quick ? 500 : 3_000,
  slowRows: 1_000_000,
  slowBytesPerSecond: 1_000_000,
  slowSeconds: args["slow-seconds"] !== undefined ? Number(args["slow-seconds"]) : quick ? 3 : 60
}

const only = new Set<Workload>((args.only?.split(",").map((s) => s.trim()) ?? WORKLOADS) as Workload[])
for (const w of only) if (!WORKLOADS.includes(w)) throw new Error(`unknown workload "${w}"; one of ${WORKLOADS.join(", ")}`)
const wanted = new Set<TargetName>((args.targets?.split(",").map((s) => s.trim()) ?? TARGET_ORDER) as TargetName[])
for (const t of wanted) if (!TARGET_ORDER.includes(t)) throw new Error(`unknown target "${t}"; one of ${TARGET_ORDER.join(", ")}`)
const partial = args.only !== undefined || args.targets !== undefined
const outDir = args.out ?? new URL("./results", import.meta.url).pathname
const baseName = partial ? "partial" : quick ? "quick" : "latest"

// ---------------------------------------------------------------------------
// Bookkeeping

const t0 = performance.now()
const log = (s: string): void => {
  const secs = ((performance.now() - t0) / 1000).toFixed(0).padStart(4)
  console.log(`[${secs}s] ${s}`)
}

/** A workload's first line, with the load average: other processes on the machine show up there. */
const header = (s: string): void => log(`${s} (load average ${loadAverage().join(" ")})`)

const failures: Failure[] = []
const notes: string[] = []
const broken = new Set<TargetName>()

const withTimeout = <A>(p: Promise<A>, ms: number, what: string): Promise<A> =>
  new Promise<A>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms)
    p.then(
      (a) => {
        clearTimeout(timer)
        resolve(a)
      },
      (e: unknown) => {
        clearTimeout(timer)
        reject(e instanceof Error ? e : new Error(String(e)))
      }
    )
  })

/** Runs one measurement; a failure marks the target broken, prints why, and moves on. */
const attempt = async <A>(t: Target, workload: string, fn: () => Promise<A>): Promise<A | undefined> => {
  if (broken.has(t.name)) return undefined
  try {
    const a = await fn()
    if (!t.alive()) throw new Error(`${TARGET_LABELS[t.name]} process exited`)
    return a
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err)
    const logs = t.logs()
    failures.push({ target: t.name, workload, error: message + (logs ? `\n--- ${t.name} log (tail) ---\n${logs}` : "") })
    broken.add(t.name)
    log(`FAILED ${TARGET_LABELS[t.name]} / ${workload}: ${message.split("\n").slice(0, 8).join("\n    ")}`)
    if (logs) console.log(`    --- log tail ---\n${logs.split("\n").slice(-15).map((l) => `    ${l}`).join("\n")}`)
    return undefined
  }
}

const live = (targets: ReadonlyArray<Target>): Target[] => targets.filter((t) => !broken.has(t.name))
/** The live targets but the masked one, which runs only the streaming cursor (see MASKED_TARGET). */
const liveUnmasked = (targets: ReadonlyArray<Target>): Target[] => live(targets).filter((t) => t.name !== MASKED_TARGET)

// ---------------------------------------------------------------------------
// Set-up

const pin = planPinning(args["no-pin"])
pinSelf(pin)
const ctx: Context = { pin }

log(`Sluice bench, ${quick ? "quick" : "full"} mode${partial ? " (partial)" : ""}`)
log("starting PostgreSQL (test harness cluster)")
const server: PgServer = await startPostgres()
const machineBefore = describeMachine(server.serverVersion)
log(
  `machine: ${machineBefore.cores} cores (${machineBefore.cpuModel}), ${machineBefore.memoryGiB} GiB, Linux ${machineBefore.kernel}; ` +
    `Node ${machineBefore.node}; PostgreSQL ${machineBefore.postgres}; ${machineBefore.pgbench}; ${machineBefore.pgbouncer}; ${machineBefore.psql}; ` +
    `Sluice ${machineBefore.sluiceCommit}; load average ${machineBefore.loadAverageBefore.join(" ")}`
)
log(`pinning: ${pin.note}`)

const upstream: Upstream = {
  backend: { host: server.host, port: server.port, database: server.databases.app, user: server.backend.user, password: server.backend.password },
  superuser: { connectionString: server.superuser.url }
}

const targets: Target[] = []
const targetInfo = new Map<TargetName, TargetInfo>()
const stopAll = async (): Promise<void> => {
  for (const t of targets.splice(0)) await t.stop().catch(() => {})
}

// ---------------------------------------------------------------------------
// Workloads

const latencyRows: LatencyRow[] = []
const pgbenchRows: PgbenchRow[] = []
const streamRows: StreamRow[] = []
const connectRows: ConnectRow[] = []
const idleRows: IdleRow[] = []
const slowRows: SlowReaderRow[] = []
let classifier: string | null = null
let streamBytes = 0
/** pgbench -S transactions of the timed runs, per target: the floor for its audit events. */
const measuredTransactions = new Map<TargetName, number>()

async function runLatency(): Promise<void> {
  header(`added latency: ${settings.latencyReps} × ${settings.latencyRoundTrips} round trips of SELECT 1 per target, alternating`)
  const perRep = new Map<TargetName, Array<{ p50: number; p90: number; p99: number; p999: number; max: number }>>()
  const merged = new Map<TargetName, Histogram>()
  for (let rep = 0; rep < settings.latencyReps; rep++) {
    for (const t of rotate(liveUnmasked(targets), rep)) {
      const h = await attempt(t, "latency", () =>
        withTimeout(latency(t, { warmup: settings.latencyWarmup, count: settings.latencyRoundTrips }), 300_000, "latency")
      )
      if (!h) continue
      const us = (p: number): number => h.getValueAtPercentile(p) / 1000
      const row = { p50: us(50), p90: us(90), p99: us(99), p999: us(99.9), max: h.maxValue / 1000 }
      perRep.set(t.name, [...(perRep.get(t.name) ?? []), row])
      const m = merged.get(t.name) ?? newHistogram()
      m.add(h)
      merged.set(t.name, m)
      log(`  latency rep ${rep + 1}: ${TARGET_LABELS[t.name]} p50 ${fmt(row.p50)} µs, p99 ${fmt(row.p99)} µs, p99.9 ${fmt(row.p999)} µs`)
    }
  }
  const med = (t: TargetName, k: "p50" | "p90" | "p99" | "p999" | "max"): number => median((perRep.get(t) ?? []).map((r) => r[k]))
  for (const name of TARGET_ORDER) {
    const h = merged.get(name)
    if (!h || broken.has(name)) continue
    const distribution: Array<[number, number]> = []
    for (const p of [0, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 92.5, 95, 96, 97, 98, 99, 99.25, 99.5, 99.75, 99.9, 99.95, 99.99]) {
      distribution.push([p, round(h.getValueAtPercentile(p) / 1000, 1)])
    }
    latencyRows.push({
      target: name,
      roundTrips: h.totalCount,
      p50Us: round(med(name, "p50"), 1),
      p90Us: round(med(name, "p90"), 1),
      p99Us: round(med(name, "p99"), 1),
      p999Us: round(med(name, "p999"), 1),
      maxUs: round(med(name, "max"), 0),
      overDirectP50Us: perRep.has("direct") ? round(med(name, "p50") - med("direct", "p50"), 1) : null,
      overRelayP50Us: perRep.has("relay") ? round(med(name, "p50") - med("relay", "p50"), 1) : null,
      distribution
    })
  }
}

/** A CPU figure of one run, to 0.01 µs. */
const us = (v: number | null): number | null => (v === null ? null : round(v, 2))

/** The median of the runs that measured it (a direct target measures none). */
const medianOf = (values: ReadonlyArray<number | null>): number | null => {
  const measured = values.filter((v): v is number => v !== null)
  return measured.length ? round(median(measured), 1) : null
}

async function runPgbench(): Promise<void> {
  for (const mode of settings.pgbenchModes) {
    for (const clients of settings.pgbenchClients) {
      const runs = new Map<TargetName, Array<{ tps: number; latencyMs: number; cpuUsPerTx: number | null; mainThreadUsPerTx: number | null }>>()
      header(`pgbench -S -M ${mode} -c ${clients}: ${settings.pgbenchReps} × ${typeof settings.pgbenchLength === "string" ? settings.pgbenchLength : `${settings.pgbenchLength.seconds} s`} per target, alternating`)
      for (const t of liveUnmasked(targets)) {
        // about pgbenchWarmupSeconds at a few thousand TPS, counted in transactions
        const transactionsPerClient = Math.max(20, Math.round((settings.pgbenchWarmupSeconds * 5_000) / clients))
        await attempt(t, `pgbench ${mode}/${clients} warm-up`, () => pgbench(t, ctx, { mode, clients, length: { transactionsPerClient } }))
      }
      const length = typeof settings.pgbenchLength === "string" ? { transactionsPerClient: Math.max(50, Math.round(1_500 / clients)) } : settings.pgbenchLength
      for (let rep = 0; rep < settings.pgbenchReps; rep++) {
        for (const t of rotate(liveUnmasked(targets), rep)) {
          const r = await attempt(t, `pgbench ${mode}/${clients}`, () => pgbench(t, ctx, { mode, clients, length, excludeLogins: true }))
          if (!r) continue
          measuredTransactions.set(t.name, (measuredTransactions.get(t.name) ?? 0) + r.transactions)
          runs.set(t.name, [...(runs.get(t.name) ?? []), { tps: round(r.tps, 1), latencyMs: r.latencyMs, cpuUsPerTx: us(r.cpuUsPerTx), mainThreadUsPerTx: us(r.mainThreadUsPerTx) }])
          log(`  rep ${rep + 1}: ${TARGET_LABELS[t.name].padEnd(LABEL_WIDTH)} ${fmt(r.tps, 0).padStart(7)} TPS  ${fmt(r.latencyMs, 3)} ms  ${r.cpuUsPerTx === null ? "" : `${fmt(r.cpuUsPerTx, 1)} µs CPU/tx`}`)
        }
      }
      for (const name of TARGET_ORDER) {
        const rs = runs.get(name)
        if (!rs || broken.has(name)) continue
        pgbenchRows.push({
          mode,
          clients,
          target: name,
          runs: rs,
          tps: round(median(rs.map((r) => r.tps)), 1),
          latencyMs: round(median(rs.map((r) => r.latencyMs)), 3),
          cpuUsPerTx: medianOf(rs.map((r) => r.cpuUsPerTx)),
          mainThreadUsPerTx: medianOf(rs.map((r) => r.mainThreadUsPerTx))
        })
      }
    }
  }
}

/**
 * A cursor read is only a measurement of the path it claims to measure: every row must
 * arrive, and the payload must be masked through the masked target (every row "****") and
 * in clear through every other one. Anything else fails the target.
 */
const checkCursor = (t: Target, r: CursorResult): void => {
  const masked = t.name === MASKED_TARGET
  const sample = JSON.stringify(r.sample)
  if (r.rows !== settings.streamRows) throw new Error(`cursor: ${r.rows} rows arrived, expected ${settings.streamRows} (sample row ${sample})`)
  if (masked && r.redactedRows !== r.rows) {
    throw new Error(
      `cursor through the masked target: ${r.rows - r.redactedRows} of ${r.rows} rows arrived with a payload other than "${REDACTED}" (sample row ${sample}): unmasked rows would mean this measures an unmasked path`
    )
  }
  if (!masked && r.redactedRows !== 0) throw new Error(`cursor: ${r.redactedRows} of ${r.rows} rows arrived masked through an unmasked target (sample row ${sample})`)
}

async function runStreaming(): Promise<void> {
  for (const kind of ["copy", "cursor"] as const) {
    header(`large results, ${kind === "copy" ? "COPY TO STDOUT via psql" : "node-postgres cursor"}: ${settings.streamReps} × per target, alternating`)
    const masked = live(targets).find((t) => t.name === MASKED_TARGET)
    if (kind === "copy" && masked) {
      // COPY of a masked table is blocked by design: not a failure, but the gateway must refuse it
      const refusal = await attempt(masked, "copy refused", () => withTimeout(copyRefused(masked, ctx), 120_000, "copy refused"))
      if (refusal !== undefined) {
        const note = `${TARGET_LABELS[masked.name]}: COPY skipped, blocked by design: COPY sends the table as CopyData, which masking cannot rewrite, so the gateway refuses COPY of a masked table (checked in this run; its error: "${refusal}"). Its streaming number is the cursor's, masked row by row.`
        notes.push(note)
        log(`  NOTE: ${note}`)
      }
    }
    const runs = new Map<TargetName, number[]>()
    const cpu = new Map<TargetName, number[]>()
    const once = async (t: Target): Promise<{ mbps: number; cpuSeconds?: number | null }> => {
      if (kind === "copy") return copyOut(t, ctx, streamBytes)
      const r = await withTimeout(cursorRead(t, streamBytes, settings.cursorBatch), 600_000, "cursor")
      checkCursor(t, r)
      return r
    }
    const those = (): Target[] => (kind === "copy" ? liveUnmasked(targets) : live(targets))
    if (!quick) for (const t of those()) await attempt(t, `${kind} warm-up`, () => once(t))
    for (let rep = 0; rep < settings.streamReps; rep++) {
      for (const t of rotate(those(), rep)) {
        const r = await attempt(t, kind, () => once(t))
        if (!r) continue
        runs.set(t.name, [...(runs.get(t.name) ?? []), round(r.mbps, 1)])
        const nsPerRow = r.cpuSeconds === undefined || r.cpuSeconds === null ? null : (r.cpuSeconds * 1e9) / settings.streamRows
        if (nsPerRow !== null) cpu.set(t.name, [...(cpu.get(t.name) ?? []), nsPerRow])
        log(`  rep ${rep + 1}: ${TARGET_LABELS[t.name].padEnd(LABEL_WIDTH)} ${fmt(r.mbps)} MB/s${nsPerRow === null ? "" : `  proxy CPU ${fmt(nsPerRow, 0)} ns/row`}`)
      }
    }
    if (kind === "cursor" && runs.has(MASKED_TARGET) && !broken.has(MASKED_TARGET)) {
      const n = runs.get(MASKED_TARGET)!.length + (quick ? 0 : 1)
      const note = `${TARGET_LABELS[MASKED_TARGET]}: the payload of every row arrived as "${REDACTED}" in ${n === 1 ? "its cursor read" : `each of its ${n} cursor reads`} of ${settings.streamRows.toLocaleString("en-US")} rows (checked by the bench; the other targets' arrived in clear)`
      notes.push(note)
      log(`  ${note}`)
    }
    for (const name of TARGET_ORDER) {
      const rs = runs.get(name)
      if (!rs || broken.has(name)) continue
      const c = cpu.get(name)
      streamRows.push({
        kind,
        target: name,
        bytes: streamBytes,
        rows: settings.streamRows,
        runs: rs,
        mbps: round(median(rs), 1),
        ...(kind === "cursor" ? { cpuNsPerRow: c ? round(median(c), 0) : null } : {})
      })
    }
  }
}

async function runConnect(): Promise<void> {
  header(`connection set-up: pgbench -S -C -c ${settings.connectClients}, ${settings.connectReps} × ${"seconds" in settings.connectLength ? `${settings.connectLength.seconds} s` : `${settings.connectLength.transactionsPerClient} connections per client`} per target, alternating`)
  const runs = new Map<TargetName, Array<{ perSecond: number; cpuUs: number | null }>>()
  for (let rep = 0; rep < settings.connectReps; rep++) {
    for (const t of rotate(liveUnmasked(targets), rep)) {
      const r = await attempt(t, "connect", () => pgbench(t, ctx, { mode: "simple", clients: settings.connectClients, length: settings.connectLength, reconnect: true }))
      if (!r) continue
      // with -C every transaction is a new connection
      runs.set(t.name, [...(runs.get(t.name) ?? []), { perSecond: r.tps, cpuUs: r.cpuUsPerTx }])
      log(`  rep ${rep + 1}: ${TARGET_LABELS[t.name].padEnd(LABEL_WIDTH)} ${fmt(r.tps, 0)} connections/s${r.cpuUsPerTx === null ? "" : `, ${fmt(r.cpuUsPerTx, 0)} µs CPU per connection`}`)
    }
  }
  for (const name of TARGET_ORDER) {
    const rs = runs.get(name)
    if (!rs || broken.has(name)) continue
    const cpu = rs.map((r) => r.cpuUs).filter((c): c is number => c !== null)
    connectRows.push({
      target: name,
      clients: settings.connectClients,
      runs: rs.map((r) => round(r.perSecond, 1)),
      perSecond: round(median(rs.map((r) => r.perSecond)), 1),
      cpuUsPerConnection: cpu.length ? round(median(cpu), 0) : null
    })
  }
}

async function runSlowReader(): Promise<void> {
  const which: TargetName[] = quick ? ["sluice", "sluice-full"] : ["relay", "sluice", "sluice-full"]
  const MiB = 2 ** 20
  for (const t of live(targets).filter((x) => which.includes(x.name))) {
    header(`slow reader through ${TARGET_LABELS[t.name]}: ${settings.slowSeconds} s at ${settings.slowBytesPerSecond / 1e6} MB/s of a ${fmt((settings.slowRows * 1011) / 1e9, 2)} GB result`)
    const r = await attempt(t, "slow reader", () =>
      withTimeout(slowReader(t, { rows: settings.slowRows, bytesPerSecond: settings.slowBytesPerSecond, seconds: settings.slowSeconds }), (settings.slowSeconds + 120) * 1000, "slow reader")
    )
    if (!r) continue
    const row: SlowReaderRow = {
      target: t.name,
      resultMiB: round(r.resultBytes / MiB, 0),
      readMiB: round(r.bytesRead / MiB, 1),
      seconds: round(r.seconds, 1),
      rateMiBps: round(r.bytesRead / MiB / r.seconds, 2),
      finished: r.finished,
      rssBaselineMiB: round(r.rssBaselineBytes / MiB, 1),
      rssPeakMiB: round(r.rssPeakBytes / MiB, 1),
      growthMiB: round(r.growthBytes / MiB, 1)
    }
    slowRows.push(row)
    log(`  ${TARGET_LABELS[t.name]}: read ${fmt(row.readMiB)} MiB in ${fmt(row.seconds)} s; RSS ${fmt(row.rssBaselineMiB)} → peak ${fmt(row.rssPeakMiB)} MiB (growth ${fmt(row.growthMiB)} MiB)`)
  }
}

async function runIdle(): Promise<void> {
  const n = settings.idleConnections
  const which = (["relay", "pgbouncer", "sluice", "sluice-full"] as const).filter(
    (name) => wanted.has(name) && targetInfo.get(name)?.ran === true && !broken.has(name)
  )
  if (which.length === 0) return
  header(`idle connections: a dedicated PostgreSQL with max_connections ${n + 100}, fresh proxies, ${n} logged-in idle clients each`)
  const dedicated = await startDedicatedPostgres(n + 100)
  try {
    const up: Upstream = {
      backend: { host: dedicated.host, port: dedicated.port, database: dedicated.database, user: dedicated.backend.user, password: dedicated.backend.password },
      superuser: dedicated.superuser
    }
    for (const name of which) {
      let t: Target
      try {
        t =
          name === "relay"
            ? await startRelay(up, pin)
            : name === "pgbouncer"
              ? await startPgBouncer(up, pin, n + 10)
              : await startSluice(up, pin, { variant: name === "sluice" ? "allow-all" : "full" })
      } catch (err) {
        failures.push({ target: name, workload: "idle (start)", error: err instanceof Error ? err.message : String(err) })
        log(`FAILED to start ${TARGET_LABELS[name]} for the idle workload: ${String(err)}`)
        continue
      }
      try {
        // one connection first, so that lazily loaded code is not counted per connection
        await attempt(t, "idle warm-up", () => withTimeout(idleConnections(t, 1, 200), 60_000, "idle warm-up"))
        const r = await attempt(t, "idle connections", () => withTimeout(idleConnections(t, n, settings.idleSettleMs), 600_000, "idle connections"))
        if (r) {
          const MiB = 2 ** 20
          const row: IdleRow = {
            target: name,
            connections: n,
            rssBeforeMiB: round(r.rssBeforeBytes / MiB, 1),
            rssAfterMiB: round(r.rssAfterBytes / MiB, 1),
            kibPerConnection: round(r.bytesPerConnection / 1024, 1),
            openSeconds: round(r.openSeconds, 1)
          }
          idleRows.push(row)
          log(`  ${TARGET_LABELS[name]}: RSS ${fmt(row.rssBeforeMiB)} → ${fmt(row.rssAfterMiB)} MiB with ${n} idle connections: ${fmt(row.kibPerConnection)} KiB each`)
        }
      } finally {
        await t.stop().catch(() => {})
      }
    }
  } finally {
    await dedicated.stop().catch(() => {})
  }
}

/**
 * Audit to Kafka is asynchronous (spool, then shipper), so a broken or lagging sink would
 * not slow the statements down: a fast number means something only if the events arrived.
 * Every statement makes at least one audit event, so the topic must hold at least as many
 * messages as the timed pgbench transactions that went through the target.
 */
async function verifyKafkaAudit(broker: AuditBroker): Promise<void> {
  const t = live(targets).find((x) => x.name === "sluice-full-kafka")
  if (!t) return
  const transactions = measuredTransactions.get(t.name) ?? 0
  header(`audit to Kafka: waiting for the topic ${broker.topic} to hold at least ${transactions.toLocaleString("en-US")} events and stop growing`)
  const d = await attempt(t, "audit delivery to Kafka", async () => {
    const d = await awaitDelivery(broker, { minimum: transactions, quietMs: 2_000, timeoutMs: 120_000 })
    if (d.complete) return d
    throw new Error(
      d.messages < transactions
        ? `audit to Kafka: ${d.messages.toLocaleString("en-US")} events on topic ${broker.topic} after ${fmt(d.catchUpSeconds, 0)} s, fewer than the ${transactions.toLocaleString("en-US")} timed pgbench transactions through it (each makes at least one): the sink lost or held back events, so this target's numbers do not count`
        : `audit to Kafka: events were still arriving on topic ${broker.topic} ${fmt(d.catchUpSeconds, 0)} s after the last workload: the sink is far behind the gateway, so this target's numbers do not count`
    )
  })
  if (!d) return
  const note =
    `audit to Kafka: ${d.messages.toLocaleString("en-US")} events arrived on topic ${broker.topic} at ${broker.brokers} ` +
    `(${broker.managed ? "a single-node KRaft broker the bench started" : "SLUICE_TEST_KAFKA's broker"}), at least one for each of the ` +
    `${transactions.toLocaleString("en-US")} timed pgbench transactions through ${TARGET_LABELS[t.name]} (warm-ups and the other workloads add theirs); ` +
    `the last of them arrived ${fmt(d.catchUpSeconds, 1)} s after the last workload through it`
  notes.push(note)
  log(`  ${note}`)
}

async function runClassifier(): Promise<void> {
  const script = new URL("../scripts/classify-speed.ts", import.meta.url).pathname
  if (!existsSync(script)) {
    notes.push("classifier speed: scripts/classify-speed.ts does not exist yet")
    return
  }
  log("classifier speed: scripts/classify-speed.ts")
  try {
    const cmd = pin.wrap("proxy", process.execPath, [script, "--seconds", "2"])
    const { stdout } = await run("classify-speed", cmd.command, cmd.args, { timeoutMs: 300_000 })
    classifier = stdout
    console.log(stdout)
  } catch (err) {
    failures.push({ target: "setup", workload: "classifier", error: err instanceof Error ? err.message : String(err) })
  }
}

// ---------------------------------------------------------------------------
// The bar from issue 5, and the output

function bar(): BarRow[] {
  const rows: BarRow[] = []
  const fullRan = targetInfo.get("sluice-full")?.ran === true && !broken.has("sluice-full")
  const s: TargetName = fullRan ? "sluice-full" : "sluice"
  const stand = fullRan ? "" : "full pipeline did not run: measured on Sluice allow-all"
  const add = (b: string, measured: string, limit: string, pass: boolean | null, note = stand): void => {
    rows.push({ bar: b, target: s, measured, limit, pass, note })
  }
  for (const mode of ["simple", "prepared"] as const) {
    for (const clients of [1, 16]) {
      const p = (t: TargetName) => pgbenchRows.find((r) => r.mode === mode && r.clients === clients && r.target === t)
      const cpu = ratio(p(s)?.cpuUsPerTx, p("relay")?.cpuUsPerTx)
      const tps = ratio(p(s)?.tps, p("relay")?.tps)
      if (p(s) && p("relay")) {
        add(`CPU per transaction vs raw relay (-M ${mode}, ${clients} cl.)`, `${fmtRatio(cpu)} (${fmt(p(s)?.cpuUsPerTx)} vs ${fmt(p("relay")?.cpuUsPerTx)} µs)`, "≤ 1.30×", cpu <= 1.3)
        add(`TPS vs raw relay (-M ${mode}, ${clients} cl.)`, `${fmtRatio(tps)} (${fmt(p(s)?.tps, 0)} vs ${fmt(p("relay")?.tps, 0)})`, "≥ 0.85×", tps >= 0.85)
      }
    }
  }
  const l = (t: TargetName) => latencyRows.find((r) => r.target === t)
  if (l(s) && l("relay")) {
    const over = l(s)!.p50Us - l("relay")!.p50Us
    add("Added p50 latency at 1 client over raw relay", `${fmt(over)} µs (${fmt(l(s)!.p50Us)} vs ${fmt(l("relay")!.p50Us)})`, "≤ 15 µs", over <= 15)
  }
  for (const kind of ["copy", "cursor"] as const) {
    const st = (t: TargetName) => streamRows.find((r) => r.kind === kind && r.target === t)
    if (st(s) && st("relay")) {
      const x = ratio(st(s)!.mbps, st("relay")!.mbps)
      add(`Streaming pass-through vs raw relay (${kind === "copy" ? "COPY" : "cursor"})`, `${fmtRatio(x)} (${fmt(st(s)!.mbps)} vs ${fmt(st("relay")!.mbps)} MB/s)`, "≥ 0.80×", x >= 0.8)
    }
  }
  // the masked target's own rows (it runs the cursor only: COPY of a masked table is blocked)
  const cur = (t: TargetName) => streamRows.find((r) => r.kind === "cursor" && r.target === t)
  const m = cur(MASKED_TARGET)
  const maskedInfo = targetInfo.get(MASKED_TARGET)
  const maskedMissing = maskedInfo?.skipped
    ? `masked target skipped: ${maskedInfo.skipped}`
    : !wanted.has(MASKED_TARGET) || !only.has("streaming")
      ? "the masked target did not run in this run"
      : "the masked target failed (see Failures)"
  const addMasked = (b: string, measured: string, limit: string, pass: boolean | null, note: string, informational = false): void => {
    rows.push({ bar: b, target: MASKED_TARGET, measured, limit, pass, note, ...(informational ? { informational } : {}) })
  }
  if (m && cur("relay")) {
    const x = ratio(m.mbps, cur("relay")!.mbps)
    addMasked("Streaming masked vs raw relay (cursor)", `${fmtRatio(x)} (${fmt(m.mbps)} vs ${fmt(cur("relay")!.mbps)} MB/s)`, "≥ 0.50×", x >= 0.5, "COPY of a masked table is blocked by design")
  } else {
    addMasked("Streaming masked vs raw relay (cursor)", "n/a", "≥ 0.50×", null, m ? "the raw relay did not run" : maskedMissing)
  }
  if (m && cur("sluice-full")) {
    const x = ratio(m.mbps, cur("sluice-full")!.mbps)
    const u = cur("sluice-full")!
    const c = ratio(m.cpuNsPerRow, u.cpuNsPerRow)
    const cpuText = Number.isFinite(c) ? `; proxy CPU ${fmtRatio(c)} (${fmt(m.cpuNsPerRow, 0)} vs ${fmt(u.cpuNsPerRow, 0)} ns/row)` : ""
    addMasked("Streaming masked vs unmasked, Sluice full (cursor)", `${fmtRatio(x)} (${fmt(m.mbps)} vs ${fmt(u.mbps)} MB/s)${cpuText}`, "none: the cost of masking", null, "", true)
  }
  const idle = idleRows.find((r) => r.target === s)
  if (idle) add(`Idle connections (${idle.connections})`, `${fmt(idle.kibPerConnection)} KiB each`, "≤ 64 KiB each", idle.kibPerConnection <= 64)
  const slow = slowRows.find((r) => r.target === s)
  if (slow) add(`Slow reader RSS growth (${fmt(slow.readMiB, 0)} MiB read at 1 MB/s)`, `${fmt(slow.growthMiB)} MiB`, "< 100 MiB", slow.growthMiB < 100)
  return rows
}

function writeResults(): void {
  const results: Results = {
    version: 1,
    mode: quick ? "quick" : "full",
    startedAt: new Date(Date.now() - (performance.now() - t0)).toISOString(),
    seconds: round((performance.now() - t0) / 1000, 0),
    machine: { ...machineBefore, loadAverageAfter: loadAverage() },
    pinning: pin.note,
    settings,
    targets: TARGET_ORDER.filter((n) => targetInfo.has(n)).map((n) => targetInfo.get(n)!),
    pgbench: pgbenchRows,
    latency: latencyRows,
    streaming: streamRows,
    connect: connectRows,
    idle: idleRows,
    slowReader: slowRows,
    bar: bar(),
    classifier,
    notes,
    failures
  }
  mkdirSync(outDir, { recursive: true })
  const md = toMarkdown(results)
  writeFileSync(join(outDir, `${baseName}.json`), JSON.stringify(results, null, 1) + "\n")
  writeFileSync(join(outDir, `${baseName}.md`), md + "\n")
  writeFileSync(join(outDir, `${baseName}.svg`), toSvg(results))
  console.log("\n" + md)
  log(`wrote ${join(outDir, baseName)}.{json,md,svg}`)
  if (failures.length > 0) log(`${failures.length} failure(s): exit 1`)
  else log("every target that ran finished every workload: exit 0")
}

// ---------------------------------------------------------------------------
// Main (after every declaration above)

const exitCode = await (async (): Promise<number> => {
  // A JVM takes seconds to start: the broker comes up while the data loads. If it fails,
  // the Kafka target fails to start (and only that target).
  const broker: Promise<AuditBroker | Error> | undefined = wanted.has("sluice-full-kafka")
    ? startAuditBroker().catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))))
    : undefined
  /** The broker, when it was wanted and started. */
  const brokerUp = async (): Promise<AuditBroker | undefined> => {
    const b = await broker
    return b instanceof Error ? undefined : b
  }
  try {
    // data
    if (only.has("pgbench") || only.has("connect")) {
      log(`pgbench -i -s ${settings.pgbenchScale}`)
      await run("pgbench -i", "pgbench", ["-i", "-q", "-s", String(settings.pgbenchScale)], { env: libpqEnv(startDirect(upstream).endpoint), timeoutMs: 600_000 })
    }
    if (only.has("streaming")) {
      log(`${BIG_TABLE}: ${settings.streamRows.toLocaleString("en-US")} rows`)
      const c = new pg.Client({ ...startDirect(upstream).endpoint, ssl: false })
      await c.connect()
      await c.query(`DROP TABLE IF EXISTS ${BIG_TABLE}`)
      await c.query(
        `CREATE TABLE ${BIG_TABLE} AS SELECT i AS id, md5(i::text) || repeat('x', 76) AS payload FROM generate_series(1, ${settings.streamRows}) i`
      )
      await c.query(`VACUUM ANALYZE ${BIG_TABLE}`)
      // the COPY text form: id, tab, payload, newline (nothing here needs escaping)
      const r = await c.query<{ bytes: string }>(`SELECT sum(octet_length(id::text) + octet_length(payload) + 2)::text AS bytes FROM ${BIG_TABLE}`)
      streamBytes = Number(r.rows[0]?.bytes)
      await c.end()
      log(`${BIG_TABLE}: ${fmt(streamBytes / 1e6, 0)} MB as text`)
    }

    // targets
    const starters: Record<TargetName, () => Promise<Target>> = {
      direct: async () => startDirect(upstream),
      relay: () => startRelay(upstream, pin),
      pgbouncer: () => startPgBouncer(upstream, pin, 150),
      sluice: () => startSluice(upstream, pin, { variant: "allow-all" }),
      "sluice-full-audit-off": () => startSluice(upstream, pin, { variant: "full-audit-off" }),
      "sluice-full": () => startSluice(upstream, pin, { variant: "full" }),
      "sluice-full-masked": () => startSluice(upstream, pin, { variant: "full-masked" }),
      "sluice-full-kafka": async () => {
        const b = await broker
        if (b === undefined || b instanceof Error) throw new Error(`the Kafka broker for audit did not start: ${String(b)}`)
        log(`kafka: ${b.brokers} (${b.managed ? "started by the bench" : "SLUICE_TEST_KAFKA"}), audit topic ${b.topic}`)
        return startSluice(upstream, pin, { variant: "full-kafka", kafka: b })
      }
    }
    for (const name of TARGET_ORDER) {
      if (!wanted.has(name)) continue
      if (name === MASKED_TARGET && !only.has("streaming")) {
        log(`target ${TARGET_LABELS[name]}: not started (it runs the streaming workload only)`)
        continue
      }
      try {
        const t = await starters[name]()
        targets.push(t)
        targetInfo.set(name, { name, label: TARGET_LABELS[name], ran: true, skipped: null, notes: t.notes })
        log(`target ${TARGET_LABELS[name]}: ${t.endpoint.host}:${t.endpoint.port}${t.pid ? ` (pid ${t.pid})` : ""}${t.notes.length ? ` — ${t.notes.join("; ")}` : ""}`)
      } catch (err) {
        if (err instanceof Skipped) {
          targetInfo.set(name, { name, label: TARGET_LABELS[name], ran: false, skipped: err.message, notes: [] })
          log(`NOTE: target ${TARGET_LABELS[name]} SKIPPED: ${err.message}`)
        } else {
          const message = err instanceof Error ? err.message : String(err)
          targetInfo.set(name, { name, label: TARGET_LABELS[name], ran: false, skipped: null, notes: [] })
          failures.push({ target: name, workload: "start", error: message })
          broken.add(name)
          log(`FAILED to start ${TARGET_LABELS[name]}: ${message}`)
        }
      }
    }

    if (only.has("latency")) await runLatency()
    if (only.has("pgbench")) await runPgbench()
    if (only.has("streaming")) await runStreaming()
    if (only.has("connect")) await runConnect()
    // right after the last workload through the Kafka target (the slow reader skips it)
    const b = await brokerUp()
    if (b) await verifyKafkaAudit(b)
    if (only.has("slow-reader")) await runSlowReader()
    await stopAll()
    if (only.has("idle")) await runIdle()
    if (only.has("classifier") && !quick) await runClassifier()
  } catch (err) {
    failures.push({ target: "setup", workload: "setup", error: err instanceof Error ? (err.stack ?? err.message) : String(err) })
    log(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
  } finally {
    await stopAll()
    await (await brokerUp())?.stop().catch((err: unknown) => log(`stopping Kafka: ${String(err)}`))
    await server.stop().catch(() => {})
  }
  writeResults()
  return failures.length > 0 ? 1 : 0
})()

process.exit(exitCode)
