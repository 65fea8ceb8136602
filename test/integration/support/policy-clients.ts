/**
 * Small helpers shared by the policy-enforcement tests with real clients: running a
 * command (psql, pgbench) to completion, direct connections to the harness server, the
 * error a rejected query carried, and waiting for a line in the gateway's log.
 */
import { spawn } from "node:child_process"
import pg from "pg"
import { inject } from "vitest"
import type { Gateway } from "./gateway.ts"

export interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  readonly ms: number
}

/** Runs a command to completion (no shell), feeding `input` on stdin. */
export const runCommand = (
  command: string,
  args: ReadonlyArray<string>,
  opts: { input?: string; env?: Record<string, string>; timeoutMs?: number } = {}
): Promise<Run> =>
  new Promise((resolve, reject) => {
    const started = Date.now()
    const child = spawn(command, args, {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, PGSSLMODE: "disable", PGCONNECT_TIMEOUT: "10", ...opts.env }
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 30_000)
    child.once("error", reject)
    child.once("close", (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr, ms: Date.now() - started })
    })
    child.stdin.on("error", () => {})
    child.stdin.end(opts.input ?? "")
  })

/** A direct connection to the harness server, past the gateway: as the superuser, or as the role the gateway logs in as. */
export const direct = async (role: "superuser" | "backend", database = "app"): Promise<pg.Client> => {
  const { pg: info } = inject("servers")
  const who = role === "superuser" ? info.superuser : info.backend
  const c = new pg.Client({ host: info.host, port: info.port, user: who.user, password: who.password, database })
  c.on("error", () => {})
  await c.connect()
  return c
}

/** Runs statements on a fresh direct connection, returning the last result's rows. */
export const directQuery = async <R extends pg.QueryResultRow = pg.QueryResultRow>(
  role: "superuser" | "backend",
  sql: string,
  params: ReadonlyArray<unknown> = [],
  database = "app"
): Promise<Array<R>> => {
  const c = await direct(role, database)
  try {
    return (await c.query<R>(sql, params as Array<unknown>)).rows
  } finally {
    await c.end()
  }
}

/** libpq environment for a direct connection as the backend role (pgbench -i, psql comparisons). */
export const backendEnv = (database = "app") => {
  const { pg: info } = inject("servers")
  return {
    dsn: `host=${info.host} port=${info.port} user=${info.backend.user} dbname=${database} sslmode=disable`,
    env: { PGPASSWORD: info.backend.password }
  }
}

export interface PgError {
  readonly code: string | undefined
  readonly message: string
  readonly severity: string | undefined
}

/** What a rejected promise carried (fails the test if it resolves). */
export const rejection = async (p: Promise<unknown>): Promise<PgError> => {
  try {
    await p
  } catch (e) {
    const err = e as { code?: string; message?: string; severity?: string }
    return { code: err.code, message: err.message ?? String(e), severity: err.severity }
  }
  throw new Error("expected the query to be rejected")
}

/** Waits until the gateway's log, from `from` on (a character offset), matches `pattern`; returns the match. */
export const waitForLog = async (gw: Gateway, pattern: RegExp, from = 0, timeoutMs = 10_000): Promise<RegExpExecArray> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const m = pattern.exec(gw.logs().slice(from))
    if (m !== null) return m
    if (Date.now() > deadline) throw new Error(`the gateway never logged ${pattern} within ${timeoutMs} ms; log since offset ${from}:\n${gw.logs().slice(from)}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** The pid of the gateway process (the fixture does not expose it): the one whose command line names its config. */
export const gatewayPid = async (gw: Gateway): Promise<number> => {
  const r = await runCommand("pgrep", ["-f", `${gw.dir}/sluice.yaml`])
  const pids = r.stdout.trim().split("\n").filter((l) => l !== "").map(Number)
  if (pids.length !== 1) throw new Error(`expected one gateway process for ${gw.dir}, found ${JSON.stringify(pids)}`)
  return pids[0]!
}

/** A node-postgres client through the gateway; a query that gets no answer fails after `queryTimeoutMs`. */
export const gatewayClient = async (gw: Gateway, token?: string, queryTimeoutMs = 5_000): Promise<pg.Client> => {
  const c = new pg.Client({ ...gw.connection(token), query_timeout: queryTimeoutMs })
  c.on("error", () => {})
  await c.connect()
  return c
}

/** Ends a client; if the session no longer answers (so end() would wait forever), drops the socket. */
export const closeClient = async (c: pg.Client | undefined): Promise<void> => {
  if (c === undefined) return
  const ended = await Promise.race([c.end().then(() => true, () => true), new Promise<boolean>((r) => setTimeout(() => r(false), 2_000))])
  if (!ended) (c as unknown as { connection: { stream: { destroy: () => void } } }).connection.stream.destroy()
}

/** The gateway's log as entries (each starts with a `[hh:mm:ss.mmm]` line), those containing `text`. */
export const logEntries = (log: string, text: string): Array<string> => log.split(/\n(?=\[\d\d:\d\d:\d\d\.\d+\] )/).filter((e) => e.includes(text))
