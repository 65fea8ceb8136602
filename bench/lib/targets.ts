/**
 * The targets the bench measures, each started by the bench on 127.0.0.1 on a free port:
 *   direct       PostgreSQL itself (no proxy);
 *   relay        bench/raw-relay.ts, two Node `pipe` calls: the floor for a Node proxy;
 *   pgbouncer    Debian's PgBouncer in session mode, SCRAM secret in its userlist;
 *   sluice       the gateway with an allow-all policy;
 *   sluice-full  the gateway with the full pipeline, audit to files (see sluice-config.ts);
 *   sluice-full-audit-off, sluice-full-kafka
 *                the same pipeline with audit off, and with audit to Kafka;
 *   sluice-full-masked
 *                the full pipeline plus a mask on bench_big.payload (audit to files): the
 *                streaming workload's cursor only (`MASKED_TARGET`), since COPY of a
 *                masked table is blocked by design.
 */
import { chownSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import pg from "pg"
import { freePort, waitForPort } from "../../test/harness/free-port.ts"
import { isRoot, logTail, makeTempDir, osUser, removeTempDir, spawnTracked, type Tracked } from "../../test/harness/process.ts"
import type { Pinning } from "./proc.ts"
import {
  type AuditKafka,
  type Backend,
  checkConfig,
  SLUICE_BIN,
  SLUICE_TARGET,
  SLUICE_TOKEN,
  SLUICE_USER,
  SLUICE_VARIANTS,
  sluiceConfig,
  type SluiceVariant
} from "./sluice-config.ts"

export type TargetName = "direct" | "relay" | "pgbouncer" | "sluice" | "sluice-full-audit-off" | "sluice-full" | "sluice-full-masked" | "sluice-full-kafka"
export const TARGET_ORDER: ReadonlyArray<TargetName> = ["direct", "relay", "pgbouncer", "sluice", "sluice-full-audit-off", "sluice-full", "sluice-full-masked", "sluice-full-kafka"]
export const TARGET_LABELS: Record<TargetName, string> = {
  direct: "direct",
  relay: "raw relay",
  pgbouncer: "PgBouncer",
  sluice: "Sluice allow-all",
  "sluice-full-audit-off": "Sluice full, no audit",
  "sluice-full": "Sluice full",
  "sluice-full-masked": "Sluice full, masked",
  "sluice-full-kafka": "Sluice full, Kafka"
}
/** The longest label, for aligned log lines. */
export const LABEL_WIDTH = Math.max(...Object.values(TARGET_LABELS).map((l) => l.length))

/** The target each gateway variant is measured as. */
export const SLUICE_TARGETS: Record<SluiceVariant, TargetName> = {
  "allow-all": "sluice",
  full: "sluice-full",
  "full-audit-off": "sluice-full-audit-off",
  "full-kafka": "sluice-full-kafka",
  "full-masked": "sluice-full-masked"
}

/**
 * The masked target runs only the streaming workload, and there only the cursor: its mask
 * is on bench_big, which no other workload reads (pgbench's statements would be the
 * unmasked full pipeline again), and COPY of a masked table is blocked by design.
 */
export const MASKED_TARGET: TargetName = "sluice-full-masked"

/** Where a client connects, and as whom. */
export interface Endpoint {
  readonly host: string
  readonly port: number
  readonly user: string
  readonly password: string
  readonly database: string
}

export interface Target {
  readonly name: TargetName
  readonly endpoint: Endpoint
  /** The proxy process, for its CPU time and RSS; null for direct. */
  readonly pid: number | null
  readonly notes: ReadonlyArray<string>
  readonly alive: () => boolean
  readonly logs: () => string
  readonly stop: () => Promise<void>
}

/** A PostgreSQL server the targets sit in front of. */
export interface Upstream {
  readonly backend: Backend
  /** A superuser connection, to read the backend role's SCRAM secret for PgBouncer. */
  readonly superuser: pg.ClientConfig
}

/** A target the bench could not start for a known, printed reason (not a failure). */
export class Skipped extends Error {}

const waitForLog = async (proc: Tracked, text: string, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (logTail(proc.logFile, 200).includes(text)) return
    const exit = proc.exit()
    if (exit) throw new Error(`${proc.name} exited (${exit.signal ?? exit.code}) while starting:\n${logTail(proc.logFile)}`)
    if (Date.now() > deadline) {
      await proc.stop({ graceMs: 1000 })
      throw new Error(`${proc.name} did not print "${text}" within ${timeoutMs} ms:\n${logTail(proc.logFile)}`)
    }
    await new Promise((r) => setTimeout(r, 25))
  }
}

const fromProcess = (name: TargetName, endpoint: Endpoint, proc: Tracked, dir: string, notes: string[]): Target => ({
  name,
  endpoint,
  pid: proc.pid,
  notes,
  alive: () => proc.exit() === undefined,
  logs: () => logTail(proc.logFile, 60),
  stop: async () => {
    await proc.stop({ graceMs: 10_000 })
    removeTempDir(dir)
  }
})

export const startDirect = (up: Upstream): Target => ({
  name: "direct",
  endpoint: { host: up.backend.host, port: up.backend.port, user: up.backend.user, password: up.backend.password, database: up.backend.database },
  pid: null,
  notes: [],
  alive: () => true,
  logs: () => "",
  stop: async () => {}
})

export const startRelay = async (up: Upstream, pin: Pinning): Promise<Target> => {
  const dir = makeTempDir("sluice-bench-relay-")
  const port = await freePort()
  const script = new URL("../raw-relay.ts", import.meta.url).pathname
  const cmd = pin.wrap("proxy", process.execPath, [script, "--listen", `127.0.0.1:${port}`, "--target", `${up.backend.host}:${up.backend.port}`])
  const proc = await spawnTracked({ name: "raw relay", command: cmd.command, args: cmd.args, logFile: join(dir, "relay.log") })
  await waitForLog(proc, "listening", 20_000)
  const endpoint = { host: "127.0.0.1", port, user: up.backend.user, password: up.backend.password, database: up.backend.database }
  return fromProcess("relay", endpoint, proc, dir, [])
}

const scramSecret = async (up: Upstream): Promise<string> => {
  const client = new pg.Client(up.superuser)
  await client.connect()
  try {
    const r = await client.query<{ rolpassword: string | null }>("SELECT rolpassword FROM pg_authid WHERE rolname = $1", [up.backend.user])
    const secret = r.rows[0]?.rolpassword
    if (!secret?.startsWith("SCRAM-SHA-256$")) throw new Error(`role ${up.backend.user} has no SCRAM secret`)
    return secret
  } finally {
    await client.end()
  }
}

export const PGBOUNCER = "/usr/sbin/pgbouncer"

export const startPgBouncer = async (up: Upstream, pin: Pinning, poolSize: number): Promise<Target> => {
  const user = isRoot() ? osUser("postgres") : undefined
  if (isRoot() && !user) throw new Error("PgBouncer refuses to run as root, and there is no postgres OS user to run it as")
  const dir = makeTempDir("sluice-bench-pgbouncer-")
  const port = await freePort()
  const secret = await scramSecret(up)
  const q = (s: string): string => `"${s.replaceAll('"', '""')}"`
  writeFileSync(join(dir, "userlist.txt"), `${q(up.backend.user)} ${q(secret)}\n`, { mode: 0o600 })
  writeFileSync(
    join(dir, "pgbouncer.ini"),
    [
      "[databases]",
      `${up.backend.database} = host=${up.backend.host} port=${up.backend.port} dbname=${up.backend.database}`,
      "",
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = scram-sha-256",
      `auth_file = ${join(dir, "userlist.txt")}`,
      "pool_mode = session",
      `max_client_conn = ${poolSize + 100}`,
      `default_pool_size = ${poolSize}`,
      "min_pool_size = 0",
      "server_tls_sslmode = disable",
      "client_tls_sslmode = disable",
      "log_connections = 0",
      "log_disconnections = 0",
      "ignore_startup_parameters = extra_float_digits",
      ""
    ].join("\n")
  )
  const logFile = join(dir, "pgbouncer.log")
  writeFileSync(logFile, "")
  if (user) for (const f of ["", "userlist.txt", "pgbouncer.ini", "pgbouncer.log"]) chownSync(join(dir, f), user.uid, user.gid)
  const cmd = pin.wrap("proxy", PGBOUNCER, [join(dir, "pgbouncer.ini")])
  const proc = await spawnTracked({ name: "pgbouncer", command: cmd.command, args: cmd.args, logFile, cwd: dir, ...(user ? { user } : {}) })
  await waitForPort("127.0.0.1", port, {
    timeoutMs: 20_000,
    failed: () => {
      const exit = proc.exit()
      return exit && new Error(`pgbouncer exited (${exit.signal ?? exit.code}):\n${logTail(logFile)}`)
    }
  })
  const endpoint = { host: "127.0.0.1", port, user: up.backend.user, password: up.backend.password, database: up.backend.database }
  return fromProcess("pgbouncer", endpoint, proc, dir, [])
}

export interface SluiceStartOptions {
  readonly variant: SluiceVariant
  /** The broker and topic, for the `full-kafka` variant. */
  readonly kafka?: AuditKafka | undefined
  /** Extra node flags, e.g. --cpu-prof. */
  readonly nodeFlags?: ReadonlyArray<string>
}

/**
 * Starts the gateway. Its config comes from `sluiceConfig`; `sluice check-config` decides
 * whether this gateway build takes a policy: allow-all falls back to no policy (the
 * gateway then passes everything through, and the report notes it); the full pipeline
 * is skipped with the gateway's own message, and so is audit to Kafka on a build without
 * the `audit` key (without it, the variant would measure nothing it is named for).
 */
export const startSluice = async (up: Upstream, pin: Pinning, opts: SluiceStartOptions): Promise<Target> => {
  const dir = makeTempDir(`sluice-bench-${opts.variant}-`)
  const port = await freePort()
  const notes: string[] = []
  // The newest config shape this gateway build accepts: with policy and audit keys,
  // then without audit, then without either (older builds).
  const shapes = [
    { withPolicy: true, withAudit: true, note: null },
    { withPolicy: true, withAudit: false, note: "this gateway build has no `audit` key: it ran without audit" },
    { withPolicy: false, withAudit: false, note: "this gateway build has no `policy` key: it ran without enforcement (pass-through)" }
  ]
  let made: { file: string; notes: string[] } | undefined
  let firstRefusal: string | null = null
  const variant = SLUICE_VARIANTS[opts.variant]
  for (const shape of shapes) {
    if ((variant.policy === "full" && !shape.withPolicy) || (variant.audit === "kafka" && !shape.withAudit)) break
    const attempt = sluiceConfig({ variant: opts.variant, port, backend: up.backend, dir, kafka: opts.kafka, ...shape })
    const refused = checkConfig(attempt.file)
    if (refused === null) {
      made = attempt
      if (shape.note) notes.push(shape.note)
      break
    }
    firstRefusal ??= refused
  }
  if (made === undefined) {
    removeTempDir(dir)
    const why = (firstRefusal ?? "").split("\n").slice(0, 6).join(" | ")
    if (variant.policy === "full") throw new Skipped(`the gateway does not take this config (check-config: ${why})`)
    throw new Error(`sluice check-config refused the bench config:\n${firstRefusal}`)
  }
  notes.push(...made.notes)
  const cmd = pin.wrap("proxy", process.execPath, [...(opts.nodeFlags ?? []), SLUICE_BIN, "start", "--config", made.file])
  const proc = await spawnTracked({ name: `sluice (${opts.variant})`, command: cmd.command, args: cmd.args, logFile: join(dir, "sluice.log"), cwd: dir })
  await waitForLog(proc, "listening", 30_000)
  const endpoint = { host: "127.0.0.1", port, user: SLUICE_USER, password: SLUICE_TOKEN, database: SLUICE_TARGET }
  return fromProcess(SLUICE_TARGETS[opts.variant], endpoint, proc, dir, notes)
}

/** The configured database a bench client asks for, for libpq tools. */
export const libpqEnv = (e: Endpoint): NodeJS.ProcessEnv => ({
  ...process.env,
  PGHOST: e.host,
  PGPORT: String(e.port),
  PGUSER: e.user,
  PGPASSWORD: e.password,
  PGDATABASE: e.database,
  PGSSLMODE: "disable",
  PGGSSENCMODE: "disable",
  PGAPPNAME: "sluice-bench"
})

export const readLog = (file: string): string => {
  try {
    return readFileSync(file, "utf8")
  } catch {
    return ""
  }
}
