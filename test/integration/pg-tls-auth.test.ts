/**
 * TLS on both sides of the gateway, and every backend login method: client TLS
 * termination (and refusal of plaintext tokens), backend TLS modes disable, require and
 * verify-full, and SCRAM-SHA-256, md5 and cleartext logins with stored credentials.
 */
import { execFile } from "node:child_process"
import { readFileSync } from "node:fs"
import { promisify } from "node:util"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { encodeStartup } from "../../src/codecs/pg/frontend.ts"
import { defaultConfig, type Gateway, startGateway, TOKEN } from "./support/gateway.ts"
import { errorFields, RawClient } from "./support/raw-client.ts"

const info = () => inject("servers").pg
const pki = () => {
  const tls = info().tls
  if (tls === null) throw new Error("these tests need the harness's own PostgreSQL cluster (it serves TLS); unset SLUICE_TEST_PG_URL")
  return { ...tls, certFile: tls.caFile.replace(/sluice-test-ca\.crt$/, "server.crt"), keyFile: tls.caFile.replace(/sluice-test-ca\.crt$/, "server.key") }
}

const backendSsl = async (gw: Gateway, database: string): Promise<boolean> => {
  const c = new pg.Client({ ...gw.connection(TOKEN, database), ssl: { ca: readFileSync(pki().caFile), servername: "localhost" } })
  await c.connect()
  try {
    const r = await c.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    return r.rows[0].ssl as boolean
  } finally {
    await c.end()
  }
}

describe("TLS and backend logins", () => {
  let gw: Gateway

  beforeAll(async () => {
    const { host, port, backend, plain, md5, databases } = info()
    const { caFile, otherCaFile, certFile, keyFile } = pki()
    const target = (name: string, tls: object, role = backend, database: string = databases.app) => ({
      name,
      host,
      port,
      database,
      user: role.user,
      password: { value: role.password },
      tls
    })
    gw = await startGateway((p) => ({
      ...defaultConfig(p, { listen: { loopbackOnly: false, tls: { certFile, keyFile } } }),
      targets: [
        target("scram-plain", { mode: "disable" }),
        target("scram-require", { mode: "require" }),
        target("scram-verify", { mode: "verify-full", caFile, serverName: "localhost" }),
        target("scram-wrong-ca", { mode: "verify-full", caFile: otherCaFile, serverName: "localhost" }),
        target("scram-wrong-name", { mode: "verify-full", caFile, serverName: "db.example.com" }),
        target("md5", { mode: "disable" }, md5, databases.app2),
        target("cleartext", { mode: "require" }, plain)
      ]
    }))
  })

  afterAll(() => gw?.stop())

  it("terminates client TLS with the configured certificate (psql sslmode=verify-full)", async () => {
    const { stdout } = await promisify(execFile)(
      "psql",
      [`host=localhost port=${gw.port} dbname=scram-plain user=ci sslmode=verify-full sslrootcert=${pki().caFile}`, "-At", "-c", "\\conninfo", "-c", "SELECT 'over-tls'"],
      { env: { ...process.env, PGPASSWORD: TOKEN } }
    )
    expect(stdout).toMatch(/SSL connection \(protocol: TLSv1\.[23]/)
    expect(stdout).toContain("over-tls")
  })

  it("refuses a plaintext token on a listener that is not loopback-only", async () => {
    const c = await RawClient.connect(gw.port)
    c.startup("scram-plain")
    const err = errorFields(await c.next())
    expect(err).toEqual({ severity: "FATAL", code: "28000", message: "this listener requires TLS: connect with sslmode=require" })
    await c.waitClosed()
  })

  it("refuses bytes smuggled after SSLRequest, before the handshake", async () => {
    const c = await RawClient.connect(gw.port)
    c.send(Buffer.concat([encodeStartup({ _tag: "SSLRequest" }), Buffer.from("Q\0\0\0\x0dSELECT 1\0")]))
    const first = await new Promise<Buffer>((r) => c.socket.once("data", r))
    expect(first[0]).not.toBe(0x53)
    await new Promise<void>((r) => (c.closed ? r() : c.socket.once("close", () => r())))
  })

  it("connects to the target without TLS in mode disable", async () => {
    expect(await backendSsl(gw, "scram-plain")).toBe(false)
  })

  it("connects to the target over TLS in mode require", async () => {
    expect(await backendSsl(gw, "scram-require")).toBe(true)
  })

  it("verifies the target's certificate and name in mode verify-full", async () => {
    expect(await backendSsl(gw, "scram-verify")).toBe(true)
  })

  for (const [target, why] of [
    ["scram-wrong-ca", "an untrusted CA"],
    ["scram-wrong-name", "a certificate for another name"]
  ] as const) {
    it(`refuses a target with ${why} in mode verify-full`, async () => {
      const c = new pg.Client({ ...gw.connection(TOKEN, target), ssl: { ca: readFileSync(pki().caFile), servername: "localhost" } })
      const error = await c.connect().then(
        () => undefined,
        (e: pg.DatabaseError) => e
      )
      expect(error?.code).toBe("08001")
      expect(error?.message).toMatch(new RegExp(`^target "${target}" is unreachable: TLS handshake failed`))
      await c.end().catch(() => {})
    })
  }

  it("logs in with SCRAM-SHA-256, md5 and cleartext as the server asks", async () => {
    const { superuser } = info()
    const admin = new pg.Client({ connectionString: superuser.url })
    await admin.connect()
    const methods = new Map(
      (await admin.query("SELECT user_name[1] AS role, auth_method FROM pg_hba_file_rules WHERE type = 'host'")).rows.map((r) => [r.role, r.auth_method])
    )
    await admin.end()
    expect(methods.get(info().md5.user)).toBe("md5")
    expect(methods.get(info().plain.user)).toBe("password")
    expect(methods.get("all")).toBe("scram-sha-256")
    for (const [database, role] of [
      ["scram-plain", info().backend.user],
      ["md5", info().md5.user],
      ["cleartext", info().plain.user]
    ] as const) {
      const c = new pg.Client({ ...gw.connection(TOKEN, database), ssl: { ca: readFileSync(pki().caFile), servername: "localhost" } })
      await c.connect()
      const r = await c.query("SELECT current_user AS u")
      await c.end()
      expect(r.rows[0].u).toBe(role)
    }
  })
})
