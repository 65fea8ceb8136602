/**
 * Every failure case of the PG gateway, each asserted against the real CLI process:
 * the client gets the right protocol error, no secret leaks, and the gateway keeps
 * serving other clients.
 */
import { createServer, type Server } from "node:net"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { encodeBackend } from "../../src/codecs/pg/backend.ts"
import { encodeFrontend, encodeStartup } from "../../src/codecs/pg/frontend.ts"
import { freePort } from "../harness/free-port.ts"
import { defaultConfig, type Gateway, startGateway, TOKEN } from "./support/gateway.ts"
import { errorFields, RawClient } from "./support/raw-client.ts"

const servers = () => inject("servers")

/** A session still works end to end: the gateway is serving. */
const healthy = async (gw: Gateway) => {
  expect(gw.alive()).toBe(true)
  const c = new pg.Client(gw.connection())
  await c.connect()
  const r = await c.query("SELECT 41 + 1 AS n")
  await c.end()
  expect(r.rows).toEqual([{ n: 42 }])
}

/** Nothing a client receives may contain backend credentials or addresses. */
const expectNoBackendSecrets = (received: Buffer) => {
  const { pg } = servers()
  const text = received.toString("latin1")
  expect(text).not.toContain(pg.backend.password)
  expect(text).not.toContain(pg.md5.password)
  expect(text).not.toContain(String(pg.port))
}

describe("PG gateway failure handling", () => {
  let gw: Gateway
  let deadPort: number
  let fake: Server
  let fakePort: number

  beforeAll(async () => {
    deadPort = await freePort()
    // A "server" that logs anyone in, then dies in the middle of the first result.
    fakePort = await freePort()
    fake = createServer((sock) => {
      let startup = true
      let queries = 0
      sock.on("data", (chunk) => {
        if (startup) {
          startup = false
          sock.write(
            Buffer.concat([
              encodeBackend({ _tag: "AuthenticationOk" }),
              encodeBackend({ _tag: "BackendKeyData", processId: 7, secretKey: 9 }),
              encodeBackend({ _tag: "ReadyForQuery", status: "I" })
            ])
          )
        } else if (chunk[0] === 0x51 && queries++ === 0) {
          // Sluice's own question after login: the search path, then user functions (none).
          sock.write(
            Buffer.concat([
              encodeBackend({ _tag: "RowDescription", fields: [{ name: "s", tableOid: 0, columnAttr: 0, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 }] }),
              encodeBackend({ _tag: "DataRow", values: [Buffer.from("{public}")] }),
              encodeBackend({ _tag: "CommandComplete", tag: "SELECT 1" }),
              encodeBackend({ _tag: "RowDescription", fields: [{ name: "f", tableOid: 0, columnAttr: 0, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 }] }),
              encodeBackend({ _tag: "CommandComplete", tag: "SELECT 0" }),
              encodeBackend({ _tag: "ReadyForQuery", status: "I" })
            ])
          )
        } else if (chunk[0] === 0x51) {
          sock.write(
            Buffer.concat([
              encodeBackend({ _tag: "RowDescription", fields: [{ name: "x", tableOid: 0, columnAttr: 0, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 }] }),
              encodeBackend({ _tag: "DataRow", values: [Buffer.from("1")] })
            ])
          )
          sock.destroy()
        }
      })
      sock.on("error", () => {})
    })
    await new Promise<void>((r) => fake.listen(fakePort, "127.0.0.1", r))
    const { pg } = servers()
    gw = await startGateway((port) =>
      defaultConfig(port, {
        limits: { maxFrameBytes: 1024 * 1024 },
        targets: [
          { name: "dead", host: "127.0.0.1", port: deadPort, database: "app", user: pg.backend.user, password: { value: pg.backend.password } },
          { name: "badcreds", host: pg.host, port: pg.port, database: "app", user: pg.backend.user, password: { value: "definitely-not-the-password" } },
          { name: "dies", host: "127.0.0.1", port: fakePort, database: "app", user: "x", password: { value: "unused-secret" } }
        ]
      })
    )
  })

  afterAll(async () => {
    await gw?.stop()
    await new Promise((r) => fake?.close(r))
  })

  it("answers a wrong token with FATAL 28P01 and nothing about the backend", async () => {
    const c = await RawClient.connect(gw.port)
    const greeting = await c.login("app", "wrong-token")
    const err = errorFields(greeting.at(-1))
    expect(err).toEqual({ severity: "FATAL", code: "28P01", message: 'password authentication failed for user "ci"' })
    await c.waitClosed()
    expect(c.received.toString("latin1")).not.toContain(servers().pg.backend.user)
    expectNoBackendSecrets(c.received)
    await healthy(gw)
  })

  it("answers a frame over the size limit with FATAL 08P01, then closes", async () => {
    const c = await RawClient.connect(gw.port)
    await c.login("app", TOKEN)
    const header = Buffer.alloc(5)
    header[0] = 0x51
    header.writeInt32BE(64 * 1024 * 1024, 1)
    c.send(header)
    const err = errorFields(await c.until("ErrorResponse"))
    expect(err?.severity).toBe("FATAL")
    expect(err?.code).toBe("08P01")
    expect(err?.message).toMatch(/exceeds the limit of 1048576 bytes/)
    await c.waitClosed()
    expect(c.closed).toBe(true)
    await healthy(gw)
  })

  it("answers a garbage frame length with FATAL 08P01, then closes", async () => {
    const c = await RawClient.connect(gw.port)
    await c.login("app", TOKEN)
    c.send(Buffer.from([0x51, 0, 0, 0, 2, 0xde, 0xad]))
    const err = errorFields(await c.until("ErrorResponse"))
    expect(err).toMatchObject({ severity: "FATAL", code: "08P01" })
    await c.waitClosed()
    await healthy(gw)
  })

  it("answers a malformed Query body with FATAL 08P01", async () => {
    const c = await RawClient.connect(gw.port)
    await c.login("app", TOKEN)
    // A Query whose string has no terminating NUL.
    c.send(Buffer.from([0x51, 0, 0, 0, 8, 0x61, 0x62, 0x63, 0x64]))
    expect(errorFields(await c.until("ErrorResponse"))).toMatchObject({ severity: "FATAL", code: "08P01" })
    await c.waitClosed()
    await healthy(gw)
  })

  it("answers a garbage startup packet with FATAL 08P01", async () => {
    const c = await RawClient.connect(gw.port)
    c.send(Buffer.from([0, 0, 0, 3, 1, 2, 3, 4]))
    expect(errorFields(await c.next())).toMatchObject({ severity: "FATAL", code: "08P01" })
    await c.waitClosed()
    await healthy(gw)
  })

  it("refuses protocol versions other than 3.x with a clean FATAL", async () => {
    const c = await RawClient.connect(gw.port)
    c.send(encodeStartup({ _tag: "StartupMessage", protocolVersion: 2 << 16, parameters: new Map() }))
    const err = errorFields(await c.next())
    expect(err).toMatchObject({ severity: "FATAL", code: "0A000" })
    expect(err?.message).toMatch(/unsupported frontend protocol 2\.0/)
    await c.waitClosed()
  })

  it("answers SSLRequest with N when no certificate is configured, and GSSENCRequest with N", async () => {
    const c = await RawClient.connect(gw.port)
    const first = new Promise<Buffer>((r) => c.socket.once("data", r))
    c.send(encodeStartup({ _tag: "GSSENCRequest" }))
    expect([...(await first)]).toEqual([0x4e])
    const second = new Promise<Buffer>((r) => c.socket.once("data", r))
    c.send(encodeStartup({ _tag: "SSLRequest" }))
    expect([...(await second)]).toEqual([0x4e])
    c.close()
  })

  it("tells the client when the target is unreachable, with no address or secret", async () => {
    const c = await RawClient.connect(gw.port)
    const greeting = await c.login("dead", TOKEN)
    const err = errorFields(greeting.at(-1))
    expect(err).toMatchObject({ severity: "FATAL", code: "08001" })
    expect(err?.message).toBe('target "dead" is unreachable: connection failed (ECONNREFUSED)')
    expect(c.received.toString("latin1")).not.toContain(String(deadPort))
    expectNoBackendSecrets(c.received)
    await healthy(gw)
  })

  it("tells the client when the target refuses the stored credentials, with no secret", async () => {
    const c = await RawClient.connect(gw.port)
    const greeting = await c.login("badcreds", TOKEN)
    const err = errorFields(greeting.at(-1))
    expect(err).toMatchObject({ severity: "FATAL", code: "08004" })
    expect(err?.message).toBe('target "badcreds" refused Sluice\'s login: the server rejected the stored credentials (SQLSTATE 28P01)')
    expect(c.received.toString("latin1")).not.toContain("definitely-not-the-password")
    expectNoBackendSecrets(c.received)
    await healthy(gw)
  })

  it("answers an unknown database with FATAL 3D000 after authentication", async () => {
    const c = await RawClient.connect(gw.port)
    const greeting = await c.login("nope", TOKEN)
    expect(errorFields(greeting.at(-1))).toMatchObject({ severity: "FATAL", code: "3D000" })
  })

  it("tells the client when the server dies mid-result, and keeps serving others", async () => {
    const c = await RawClient.connect(gw.port)
    const greeting = await c.login("dies", TOKEN)
    expect(greeting.at(-1)?._tag).toBe("ReadyForQuery")
    c.send(encodeFrontend({ _tag: "Query", sql: "SELECT x" }))
    expect((await c.next())?._tag).toBe("RowDescription")
    expect((await c.next())?._tag).toBe("DataRow")
    const err = errorFields(await c.next())
    expect(err).toEqual({ severity: "FATAL", code: "08006", message: 'the connection to target "dies" was lost' })
    await c.waitClosed()
    await healthy(gw)
  })

  it("tells the client when its server backend is terminated", async () => {
    const { pg: info } = servers()
    const victim = new pg.Client(gw.connection())
    const errors: Array<Error> = []
    victim.on("error", (e) => errors.push(e))
    await victim.connect()
    const pid = (await victim.query("SELECT pg_backend_pid() AS pid")).rows[0].pid as number
    const admin = new pg.Client({ connectionString: info.superuser.url })
    await admin.connect()
    await admin.query("SELECT pg_terminate_backend($1)", [pid])
    await admin.end()
    await expect(victim.query("SELECT 1")).rejects.toThrow()
    await healthy(gw)
  })

  it("frees the server connection when a client vanishes mid-result", async () => {
    const { pg: info } = servers()
    const admin = new pg.Client({ connectionString: info.superuser.url })
    await admin.connect()
    const c = await RawClient.connect(gw.port)
    await c.login("app", TOKEN)
    c.send(encodeFrontend({ _tag: "Query", sql: "SELECT 'sluice-vanish-probe', a, b, repeat('x', 200) FROM generate_series(1, 10000) a, generate_series(1, 10000) b" }))
    await c.until("DataRow")
    const running = async () =>
      (await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE '%sluice-vanish-probe%' AND pid <> pg_backend_pid()")).rows[0].n as number
    expect(await running()).toBe(1)
    c.close()
    const deadline = Date.now() + 15_000
    while ((await running()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    expect(await running()).toBe(0)
    await admin.end()
    await healthy(gw)
  })

  it("serves a client that pipelines startup, password and a query in one write", async () => {
    const c = await RawClient.connect(gw.port)
    c.send(
      Buffer.concat([
        encodeStartup({ _tag: "StartupMessage", protocolVersion: 196608, parameters: new Map([["user", "ci"], ["database", "app"]]) }),
        encodeFrontend({ _tag: "AuthResponse", data: Buffer.from(`${TOKEN}\0`) }),
        encodeFrontend({ _tag: "Query", sql: "SELECT 'pipelined'" })
      ])
    )
    expect((await c.until("DataRow"))?._tag).toBe("DataRow")
    expect(c.received.toString("latin1")).toContain("pipelined")
    c.close()
  })

  it("survived every case above in one process", () => {
    expect(gw.alive()).toBe(true)
  })
})
