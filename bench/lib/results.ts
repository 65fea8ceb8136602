/** The shape of bench/results/latest.json. Every ratio is against a baseline from the same run. */
import type { TargetName } from "./targets.ts"

export interface Machine {
  readonly cpuModel: string
  readonly cores: number
  readonly memoryGiB: number
  readonly kernel: string
  readonly node: string
  readonly postgres: string
  readonly pgbench: string
  readonly pgbouncer: string
  readonly psql: string
  readonly sluiceCommit: string
  readonly loadAverageBefore: ReadonlyArray<number>
  readonly loadAverageAfter: ReadonlyArray<number>
}

export interface TargetInfo {
  readonly name: TargetName
  readonly label: string
  /** Started and measured. */
  readonly ran: boolean
  /** Why it did not run, when it was skipped on purpose (not a failure). */
  readonly skipped: string | null
  readonly notes: ReadonlyArray<string>
}

export interface PgbenchRow {
  readonly mode: "simple" | "prepared"
  readonly clients: number
  readonly target: TargetName
  readonly runs: ReadonlyArray<{ tps: number; latencyMs: number; cpuUsPerTx: number | null; mainThreadUsPerTx?: number | null }>
  readonly tps: number
  readonly latencyMs: number
  readonly cpuUsPerTx: number | null
  /** The main thread's share of `cpuUsPerTx` (the event loop); absent from results before 2026-11-23. */
  readonly mainThreadUsPerTx?: number | null
}

export interface LatencyRow {
  readonly target: TargetName
  readonly roundTrips: number
  readonly p50Us: number
  readonly p90Us: number
  readonly p99Us: number
  readonly p999Us: number
  readonly maxUs: number
  /** Median p50 minus direct's median p50. */
  readonly overDirectP50Us: number | null
  readonly overRelayP50Us: number | null
  /** [percentile, µs] of all repetitions merged, for the chart. */
  readonly distribution: ReadonlyArray<readonly [number, number]>
}

export interface StreamRow {
  readonly kind: "copy" | "cursor"
  readonly target: TargetName
  readonly bytes: number
  readonly rows: number
  readonly runs: ReadonlyArray<number>
  readonly mbps: number
  /** Cursor only: the proxy process's CPU per row read (median over the repetitions); null for direct. */
  readonly cpuNsPerRow?: number | null
}

export interface ConnectRow {
  readonly target: TargetName
  readonly clients: number
  readonly runs: ReadonlyArray<number>
  readonly perSecond: number
  readonly cpuUsPerConnection: number | null
}

export interface IdleRow {
  readonly target: TargetName
  readonly connections: number
  readonly rssBeforeMiB: number
  readonly rssAfterMiB: number
  readonly kibPerConnection: number
  readonly openSeconds: number
}

export interface SlowReaderRow {
  readonly target: TargetName
  readonly resultMiB: number
  readonly readMiB: number
  readonly seconds: number
  readonly rateMiBps: number
  readonly finished: boolean
  readonly rssBaselineMiB: number
  readonly rssPeakMiB: number
  readonly growthMiB: number
}

export interface BarRow {
  readonly bar: string
  readonly target: TargetName
  readonly measured: string
  readonly limit: string
  /** null when it could not be measured in this run (or for an informational row). */
  readonly pass: boolean | null
  readonly note: string
  /** Reported for context, no bar of issue 5 (e.g. masked vs unmasked): no status. */
  readonly informational?: boolean
}

export interface Failure {
  readonly target: TargetName | "setup"
  readonly workload: string
  readonly error: string
}

export interface Results {
  readonly version: 1
  readonly mode: "quick" | "full"
  readonly startedAt: string
  readonly seconds: number
  readonly machine: Machine
  readonly pinning: string
  readonly settings: Record<string, unknown>
  readonly targets: ReadonlyArray<TargetInfo>
  readonly pgbench: ReadonlyArray<PgbenchRow>
  readonly latency: ReadonlyArray<LatencyRow>
  readonly streaming: ReadonlyArray<StreamRow>
  readonly connect: ReadonlyArray<ConnectRow>
  readonly idle: ReadonlyArray<IdleRow>
  readonly slowReader: ReadonlyArray<SlowReaderRow>
  readonly bar: ReadonlyArray<BarRow>
  readonly classifier: string | null
  readonly notes: ReadonlyArray<string>
  readonly failures: ReadonlyArray<Failure>
}
