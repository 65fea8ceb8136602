/**
 * A private PostgreSQL cluster from Debian's binaries: initdb into a temp
 * dir, run as the `postgres` OS user when we are root, listening on
 * 127.0.0.1 on a free port and on a unix socket in the temp dir.
 *
 * Roles (see `prepareCluster`, which also works on a server you run):
 *   sluice_admin    superuser of the private cluster (trust on the unix socket,
 *                   scram-sha-256 over TCP)
 *   sluice_backend  scram-sha-256 password; owns databases app and app2
 *   sluice_md5      password stored as md5, and pg_hba says md5 for it
 *   sluice_plain    pg_hba says `password`: the server asks for it in cleartext
 *
 * The private cluster also serves TLS, with a certificate for localhost and
 * 127.0.0.1 from a throwaway CA (`tls.caFile`), so backend TLS modes are tested.
 */
import { randomBytes } from "node:crypto"
import { chownSync, existsSync, mkdirSync, readdirSync, realpathSync, writeFileSync, appendFileSync } from "node:fs"
import { delimiter, dirname, join } from "node:path"
import pg from "pg"
import { makeTestPki } from "./tls.ts"
import { freePort } from "./free-port.ts"
import { isRoot, logTail, makeTempDir, osUser, removeTempDir, run, spawnTracked, type OsUser } from "./process.ts"

export interface PgRole {
  readonly user: string
  readonly password: string
}

export interface PgSuperuser extends PgRole {
  readonly database: string
  /** postgres://user:password@host:port/database */
  readonly url: string
}

export interface PgInfo {
  readonly host: string
  readonly port: number
  readonly serverVersion: string
  readonly superuser: PgSuperuser
  /** sluice_backend: scram-sha-256 password; owns app and app2. */
  readonly backend: PgRole
  /** sluice_md5: md5-stored password (pg_hba says md5 on a managed cluster). */
  readonly md5: PgRole
  /** sluice_plain: pg_hba `password` (cleartext) on a managed cluster. */
  readonly plain: PgRole
  /** The CA that signed a managed cluster's certificate, and one that did not; null for yours. */
  readonly tls: { readonly caFile: string; readonly otherCaFile: string } | null
  readonly databases: { readonly app: string; readonly app2: string }
  /** True when the harness started this cluster (so pg_hba.conf is ours). */
  readonly managed: boolean
  /** Unix socket directory of a managed cluster, else null. */
  readonly socketDir: string | null
}

export interface PgServer extends PgInfo {
  readonly stop: () => Promise<void>
}

export const ROLES = { superuser: "sluice_admin", backend: "sluice_backend", md5: "sluice_md5", plain: "sluice_plain" } as const
export const DATABASES = { app: "app", app2: "app2" } as const

export const randomPassword = (): string => randomBytes(18).toString("base64url")

const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`
const quoteLiteral = (value: string): string => `'${value.replaceAll("'", "''")}'`

// ---------------------------------------------------------------------------
// Binaries

const onPath = (command: string): string | undefined => {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir && existsSync(join(dir, command))) return join(dir, command)
  }
  return undefined
}

/**
 * The directory holding initdb and postgres: $SLUICE_TEST_PG_BIN, else the
 * newest /usr/lib/postgresql/<ver>/bin, else wherever initdb on PATH really is.
 */
export const findPgBin = (): string => {
  const fromEnv = process.env.SLUICE_TEST_PG_BIN
  if (fromEnv) {
    if (!existsSync(join(fromEnv, "initdb"))) throw new Error(`initdb not found in SLUICE_TEST_PG_BIN=${fromEnv}`)
    return fromEnv
  }
  const base = "/usr/lib/postgresql"
  const versions = existsSync(base)
    ? readdirSync(base)
        .filter((v) => /^\d+$/.test(v) && existsSync(join(base, v, "bin", "initdb")))
        .sort((a, b) => Number(b) - Number(a))
    : []
  if (versions[0] !== undefined) return join(base, versions[0], "bin")
  const initdb = onPath("initdb")
  if (initdb) return dirname(realpathSync(initdb))
  throw new Error(
    "initdb not found: install Debian package postgresql (or set SLUICE_TEST_PG_BIN, or SLUICE_TEST_PG_URL to use a server you run)",
  )
}

// ---------------------------------------------------------------------------
// Roles and databases (idempotent; used on our cluster and on yours)

const ensureRole = async (
  client: pg.Client,
  role: PgRole,
  encryption: "scram-sha-256" | "md5",
): Promise<void> => {
  const exists = await client.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role.user])
  await client.query(`SET password_encryption = ${quoteLiteral(encryption)}`)
  await client.query(
    `${exists.rowCount ? "ALTER" : "CREATE"} ROLE ${quoteIdent(role.user)} LOGIN PASSWORD ${quoteLiteral(role.password)}`,
  )
  await client.query("RESET password_encryption")
}

const ensureDatabase = async (client: pg.Client, name: string, owner: string): Promise<void> => {
  const exists = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name])
  if (exists.rowCount) await client.query(`ALTER DATABASE ${quoteIdent(name)} OWNER TO ${quoteIdent(owner)}`)
  else await client.query(`CREATE DATABASE ${quoteIdent(name)} OWNER ${quoteIdent(owner)}`)
}

/** Creates (or resets the password of) a login role and a database it owns. */
export const ensureRoleWithDatabase = async (
  superuser: pg.ClientConfig,
  role: PgRole,
  database: string,
): Promise<void> => {
  const client = new pg.Client(superuser)
  await client.connect()
  try {
    await ensureRole(client, role, "scram-sha-256")
    await ensureDatabase(client, database, role.user)
  } finally {
    await client.end()
  }
}

/**
 * Creates the roles and databases the tests use; sets fresh passwords on
 * roles that exist. Returns the server version.
 */
export const prepareCluster = async (
  superuser: pg.ClientConfig,
  roles: { backend: PgRole; md5: PgRole; plain: PgRole },
): Promise<string> => {
  const client = new pg.Client(superuser)
  await client.connect()
  try {
    await ensureRole(client, roles.backend, "scram-sha-256")
    await ensureRole(client, roles.md5, "md5")
    await ensureRole(client, roles.plain, "scram-sha-256")
    for (const db of Object.values(DATABASES)) {
      await ensureDatabase(client, db, roles.backend.user)
    }
    const version = await client.query<{ server_version: string }>("SHOW server_version")
    return version.rows[0]?.server_version ?? "unknown"
  } finally {
    await client.end()
  }
}

/** sluice_md5 may use the public schema of app and app2 too (PG 15+ locks it to the owner). */
const grantMd5Schema = async (superuser: pg.ClientConfig, md5User: string): Promise<void> => {
  for (const db of Object.values(DATABASES)) {
    const client = new pg.Client({ ...superuser, database: db })
    await client.connect()
    try {
      await client.query(`GRANT USAGE, CREATE ON SCHEMA public TO ${quoteIdent(md5User)}`)
    } finally {
      await client.end()
    }
  }
}

// ---------------------------------------------------------------------------
// A server you run: SLUICE_TEST_PG_URL

export const useExistingPostgres = async (superuserUrl: string): Promise<PgServer> => {
  const url = new URL(superuserUrl)
  const host = url.hostname || "127.0.0.1"
  const port = Number(url.port || 5432)
  const superuser: PgSuperuser = {
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: url.pathname.replace(/^\//, "") || "postgres",
    url: superuserUrl,
  }
  const backend = { user: ROLES.backend, password: randomPassword() }
  const md5 = { user: ROLES.md5, password: randomPassword() }
  const plain = { user: ROLES.plain, password: randomPassword() }
  const serverVersion = await prepareCluster({ connectionString: superuserUrl }, { backend, md5, plain })
  await grantMd5Schema({ connectionString: superuserUrl }, md5.user)
  return {
    host,
    port,
    serverVersion,
    superuser,
    backend,
    md5,
    plain,
    tls: null,
    databases: DATABASES,
    managed: false,
    socketDir: null,
    stop: async () => {},
  }
}

// ---------------------------------------------------------------------------
// A private cluster

const waitUntilAccepting = async (
  config: pg.ClientConfig,
  failed: () => Error | undefined,
  timeoutMs: number,
): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const failure = failed()
    if (failure) throw failure
    const client = new pg.Client(config)
    try {
      await client.connect()
      await client.query("SELECT 1")
      return
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`postgres did not accept connections within ${timeoutMs} ms: ${String(err)}`)
    } finally {
      await client.end().catch(() => {})
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

export const startPostgres = async (): Promise<PgServer> => {
  const bin = findPgBin()
  let user: OsUser | undefined
  if (isRoot()) {
    user = osUser("postgres")
    if (!user) throw new Error("postgres OS user not found: install Debian package postgresql (it creates the user)")
  }

  const dir = makeTempDir("sluice-pg-")
  try {
    const dataDir = join(dir, "data")
    const logFile = join(dir, "postgres.log")
    const pwFile = join(dir, "superuser.pw")
    const port = await freePort()
    const superuserPassword = randomPassword()
    writeFileSync(pwFile, superuserPassword + "\n", { mode: 0o600 })
    writeFileSync(logFile, "")
    if (user) {
      chownSync(dir, user.uid, user.gid)
      chownSync(pwFile, user.uid, user.gid)
      chownSync(logFile, user.uid, user.gid)
    }

    await run(
      "initdb",
      join(bin, "initdb"),
      [
        "-D", dataDir,
        "-U", ROLES.superuser,
        `--pwfile=${pwFile}`,
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C",
        "--no-sync",
      ],
      { cwd: dir, timeoutMs: 120_000, ...(user ? { user } : {}) },
    )

    const pkiDir = join(dir, "pki")
    mkdirSync(pkiDir)
    const pki = makeTestPki(pkiDir)
    if (user) chownSync(pki.keyFile, user.uid, user.gid)

    // Order matters: the md5 and password lines must come before the catch-all.
    writeFileSync(
      join(dataDir, "pg_hba.conf"),
      [
        "# written by test/harness/postgres.ts",
        "local all all trust",
        `host all ${ROLES.md5} 127.0.0.1/32 md5`,
        `host all ${ROLES.plain} 127.0.0.1/32 password`,
        "host all all 127.0.0.1/32 scram-sha-256",
        "",
      ].join("\n"),
    )
    appendFileSync(
      join(dataDir, "postgresql.conf"),
      [
        "",
        "# test/harness/postgres.ts",
        "listen_addresses = '127.0.0.1'",
        `port = ${port}`,
        `unix_socket_directories = '${dir}'`,
        "max_connections = 200",
        "password_encryption = 'scram-sha-256'",
        "ssl = on",
        `ssl_cert_file = '${pki.certFile}'`,
        `ssl_key_file = '${pki.keyFile}'`,
        // disposable cluster: durability buys nothing
        "fsync = off",
        "synchronous_commit = off",
        "full_page_writes = off",
        "",
      ].join("\n"),
    )

    const server = await spawnTracked({
      name: "postgres",
      command: join(bin, "postgres"),
      args: ["-D", dataDir],
      logFile,
      cwd: dir,
      ...(user ? { user } : {}),
      stopSignal: "SIGINT", // fast shutdown
      emergencySignal: "SIGQUIT", // immediate shutdown, takes the backends along
    })
    const stop = async (): Promise<void> => {
      await server.stop({ graceMs: 5000 })
      removeTempDir(dir)
    }

    try {
      const socket: pg.ClientConfig = { host: dir, port, user: ROLES.superuser, database: "postgres" }
      await waitUntilAccepting(
        socket,
        () => {
          const exit = server.exit()
          return exit && new Error(`postgres exited (${exit.signal ?? exit.code}) while starting`)
        },
        60_000,
      )
      const backend = { user: ROLES.backend, password: randomPassword() }
      const md5 = { user: ROLES.md5, password: randomPassword() }
      const plain = { user: ROLES.plain, password: randomPassword() }
      const serverVersion = await prepareCluster(socket, { backend, md5, plain })
      await grantMd5Schema(socket, md5.user)
      const host = "127.0.0.1"
      return {
        host,
        port,
        serverVersion,
        superuser: {
          user: ROLES.superuser,
          password: superuserPassword,
          database: "postgres",
          url: `postgres://${ROLES.superuser}:${encodeURIComponent(superuserPassword)}@${host}:${port}/postgres`,
        },
        backend,
        md5,
        plain,
        tls: { caFile: pki.caFile, otherCaFile: pki.otherCaFile },
        databases: DATABASES,
        managed: true,
        socketDir: dir,
        stop,
      }
    } catch (err) {
      const tail = logTail(logFile)
      await stop().catch(() => {})
      throw new Error(`${err instanceof Error ? err.message : String(err)}\n--- postgres.log (tail) ---\n${tail}`)
    }
  } catch (err) {
    removeTempDir(dir)
    throw err
  }
}
