/**
 * FerretDB v1 (MongoDB wire protocol) with the postgresql handler, against
 * the test PostgreSQL, on 127.0.0.1.
 *
 * The handler's PostgreSQL URL carries no user: FerretDB opens its pool with
 * the credentials each MongoDB client sends with PLAIN, so PostgreSQL checks
 * them for real. The role is `sluice_mongo`, owner of database `ferretdb`.
 */
import { join } from "node:path"
import { MongoClient } from "mongodb"
import type pg from "pg"
import { freePort, waitForPort } from "./free-port.ts"
import { ensureRoleWithDatabase, randomPassword } from "./postgres.ts"
import { makeTempDir, removeTempDir, spawnTracked, untilReady } from "./process.ts"

export interface MongoInfo {
  /** mongodb://host:port/ without credentials. */
  readonly url: string
  /** Null when SLUICE_TEST_MONGO_URL carries no credentials. */
  readonly user: string | null
  readonly password: string | null
  /** "PLAIN" for FerretDB; null means the driver's default negotiation. */
  readonly authMechanism: string | null
  /** A URL with credentials and mechanism, ready for `new MongoClient(...)`. */
  readonly clientUrl: string
  /** True when the harness started this server. */
  readonly managed: boolean
}

export interface MongoServer extends MongoInfo {
  readonly stop: () => Promise<void>
}

export const MONGO_ROLE = "sluice_mongo"
export const MONGO_PG_DATABASE = "ferretdb"

export const mongoClientUrl = (url: string, user: string | null, password: string | null, mechanism: string | null): string => {
  const u = new URL(url)
  if (user !== null) {
    u.username = encodeURIComponent(user)
    u.password = encodeURIComponent(password ?? "")
  }
  if (mechanism !== null) u.searchParams.set("authMechanism", mechanism)
  return u.toString()
}

/** Pings until the server answers an authenticated `ping`. */
export const waitForMongo = async (
  clientUrl: string,
  opts: { timeoutMs: number; failed?: () => Error | undefined },
): Promise<void> => {
  const deadline = Date.now() + opts.timeoutMs
  let lastError: unknown
  for (;;) {
    const failure = opts.failed?.()
    if (failure) throw failure
    const client = new MongoClient(clientUrl, { serverSelectionTimeoutMS: 2000, connectTimeoutMS: 2000 })
    try {
      await client.connect()
      await client.db("admin").command({ ping: 1 })
      return
    } catch (err) {
      lastError = err
    } finally {
      await client.close().catch(() => {})
    }
    if (Date.now() > deadline) throw new Error(`mongo at ${clientUrl.replace(/\/\/[^@/]*@/, "//")} not ready within ${opts.timeoutMs} ms: ${String(lastError)}`)
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

/** Reads SLUICE_TEST_MONGO_URL-style URLs and checks the server answers. */
export const useExistingMongo = async (fullUrl: string): Promise<MongoServer> => {
  const u = new URL(fullUrl)
  const user = u.username ? decodeURIComponent(u.username) : null
  const password = user === null ? null : decodeURIComponent(u.password)
  const authMechanism = u.searchParams.get("authMechanism")
  const bare = new URL(fullUrl)
  bare.username = ""
  bare.password = ""
  bare.searchParams.delete("authMechanism")
  await waitForMongo(fullUrl, { timeoutMs: 10_000 })
  return { url: bare.toString(), user, password, authMechanism, clientUrl: fullUrl, managed: false, stop: async () => {} }
}

export const startFerretDb = async (
  binary: string,
  pgServer: { host: string; port: number; superuser: pg.ClientConfig },
): Promise<MongoServer> => {
  const password = randomPassword()
  await ensureRoleWithDatabase(pgServer.superuser, { user: MONGO_ROLE, password }, MONGO_PG_DATABASE)

  const dir = makeTempDir("sluice-ferretdb-")
  const logFile = join(dir, "ferretdb.log")
  try {
    const port = await freePort()
    const pgUrl = `postgres://${pgServer.host}:${pgServer.port}/${MONGO_PG_DATABASE}?pool_max_conns=20`
    const server = await spawnTracked({
      name: "ferretdb",
      command: binary,
      args: ["-listen", `127.0.0.1:${port}`, "-handler", "postgresql", "-postgresql", pgUrl, "-log-level", "warn"],
      logFile,
      cwd: dir,
      // keep pgx from picking a password up from the environment of the run
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir },
    })
    const stop = async (): Promise<void> => {
      await server.stop({ graceMs: 5000 })
      removeTempDir(dir)
    }
    const url = `mongodb://127.0.0.1:${port}/`
    const clientUrl = mongoClientUrl(url, MONGO_ROLE, password, "PLAIN")
    await untilReady(server, "ferretdb", stop, async (failed) => {
      await waitForPort("127.0.0.1", port, { timeoutMs: 30_000, failed })
      await waitForMongo(clientUrl, { timeoutMs: 30_000, failed })
    })
    return { url, user: MONGO_ROLE, password, authMechanism: "PLAIN", clientUrl, managed: true, stop }
  } catch (err) {
    removeTempDir(dir)
    throw err
  }
}
