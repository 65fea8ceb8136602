/**
 * A second, dedicated PostgreSQL cluster for the idle-connections workload only: the
 * harness's cluster allows 200 connections, and Sluice, the raw relay and PgBouncer in
 * session mode each need one server connection per idle client. Same approach as
 * test/harness/postgres.ts (Debian binaries, initdb as the postgres OS user, scram role
 * sluice_backend owning database app, 127.0.0.1 on a free port), with
 * max_connections = 1,100 and no TLS.
 */
import { chownSync, writeFileSync, appendFileSync } from "node:fs"
import { join } from "node:path"
import { freePort } from "../../test/harness/free-port.ts"
import { ensureRoleWithDatabase, findPgBin, randomPassword, ROLES } from "../../test/harness/postgres.ts"
import { isRoot, logTail, makeTempDir, osUser, removeTempDir, run, spawnTracked } from "../../test/harness/process.ts"
import pg from "pg"

export interface BenchPostgres {
  readonly host: string
  readonly port: number
  readonly pid: number
  readonly backend: { readonly user: string; readonly password: string }
  readonly database: string
  /** The cluster's superuser over its unix socket (trust). */
  readonly superuser: pg.ClientConfig
  readonly stop: () => Promise<void>
}

export const startDedicatedPostgres = async (maxConnections: number): Promise<BenchPostgres> => {
  const bin = findPgBin()
  const user = isRoot() ? osUser("postgres") : undefined
  if (isRoot() && !user) throw new Error("postgres OS user not found")
  const dir = makeTempDir("sluice-bench-pg-")
  const dataDir = join(dir, "data")
  const logFile = join(dir, "postgres.log")
  writeFileSync(logFile, "")
  if (user) {
    chownSync(dir, user.uid, user.gid)
    chownSync(logFile, user.uid, user.gid)
  }
  const port = await freePort()
  await run(
    "initdb",
    join(bin, "initdb"),
    ["-D", dataDir, "-U", ROLES.superuser, "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync"],
    { cwd: dir, timeoutMs: 120_000, ...(user ? { user } : {}) }
  )
  writeFileSync(join(dataDir, "pg_hba.conf"), "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
  appendFileSync(
    join(dataDir, "postgresql.conf"),
    [
      "",
      "# bench/lib/postgres.ts",
      "listen_addresses = '127.0.0.1'",
      `port = ${port}`,
      `unix_socket_directories = '${dir}'`,
      `max_connections = ${maxConnections}`,
      "password_encryption = 'scram-sha-256'",
      "fsync = off",
      "synchronous_commit = off",
      "full_page_writes = off",
      ""
    ].join("\n")
  )
  const server = await spawnTracked({
    name: "postgres (bench, dedicated)",
    command: join(bin, "postgres"),
    args: ["-D", dataDir],
    logFile,
    cwd: dir,
    ...(user ? { user } : {}),
    stopSignal: "SIGINT",
    emergencySignal: "SIGQUIT"
  })
  const stop = async (): Promise<void> => {
    await server.stop({ graceMs: 10_000 })
    removeTempDir(dir)
  }
  try {
    const socket: pg.ClientConfig = { host: dir, port, user: ROLES.superuser, database: "postgres" }
    const deadline = Date.now() + 60_000
    for (;;) {
      const exit = server.exit()
      if (exit) throw new Error(`postgres exited (${exit.signal ?? exit.code}) while starting`)
      const c = new pg.Client(socket)
      try {
        await c.connect()
        await c.end()
        break
      } catch (err) {
        await c.end().catch(() => {})
        if (Date.now() > deadline) throw err
        await new Promise((r) => setTimeout(r, 100))
      }
    }
    const backend = { user: ROLES.backend, password: randomPassword() }
    await ensureRoleWithDatabase(socket, backend, "app")
    return { host: "127.0.0.1", port, pid: server.pid, backend, database: "app", superuser: socket, stop }
  } catch (err) {
    const tail = logTail(logFile)
    await stop().catch(() => {})
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n--- postgres.log (tail) ---\n${tail}`)
  }
}
