/**
 * The masking catalog against the harness PostgreSQL: relation names to OIDs and column
 * names by attnum, over the catalog's own side connection. A scripted fake server covers
 * what a real one will not do on demand (never answer, count the questions asked).
 */
import { randomBytes } from "node:crypto"
import { createServer, type Server, type Socket } from "node:net"
import { Effect, Exit, Redacted, Scope } from "effect"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { encodeBackend } from "../../src/codecs/pg/backend.ts"
import { type Catalog, type CatalogRelation, makeCatalog, MAX_CACHED_NAMES, type RelationName } from "../../src/streams/pg/catalog.ts"
import type { CatalogUnavailable } from "../../src/streams/pg/errors.ts"
import type { ResolvedTarget } from "../../src/targets/target.ts"
import { freePort } from "../harness/free-port.ts"

const servers = () => inject("servers")
const LIMITS = { maxFrameBytes: 1024 * 1024, connectTimeoutMs: 2_000 }

const target = (over: { host?: string; port?: number; user?: string; password?: string; database?: string } = {}): ResolvedTarget => {
  const { pg: info } = servers()
  const password = over.password ?? info.backend.password
  return {
    config: {
      name: "cat",
      host: over.host ?? info.host,
      port: over.port ?? info.port,
      database: over.database ?? info.databases.app,
      user: over.user ?? info.backend.user,
      password: { value: password },
      tls: { mode: "disable" }
    },
    password: Redacted.make(password),
    ca: undefined,
    saltedPasswords: new Map()
  }
}

interface Open {
  readonly catalog: Catalog
  readonly close: () => Promise<void>
}

const openCatalog = async (t: ResolvedTarget, options?: { ttlMs?: number; queryTimeoutMs?: number }): Promise<Open> => {
  const scope = Effect.runSync(Scope.make())
  const catalog = await Effect.runPromise(makeCatalog(t, LIMITS, options).pipe(Scope.provide(scope)))
  return { catalog, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}

const lookup = (c: Catalog, names: ReadonlyArray<RelationName>) => Effect.runPromise(c.relations(names))
/** The typed failure; a success or a defect fails the test. */
const failure = async (c: Catalog, names: ReadonlyArray<RelationName>): Promise<CatalogUnavailable> => {
  const exit = await Effect.runPromiseExit(c.relations(names))
  if (Exit.isSuccess(exit)) throw new Error(`expected CatalogUnavailable, got ${JSON.stringify(exit.value)}`)
  const error = exit.cause.reasons.find((r) => r._tag === "Fail")
  if (error === undefined || error._tag !== "Fail") throw new Error(`expected a typed failure, got ${String(exit.cause)}`)
  return error.error
}

const plain = (rs: ReadonlyArray<CatalogRelation>) =>
  rs
    .map((r) => ({ schema: r.schema, name: r.name, columns: Object.fromEntries(r.columns) }))
    .sort((a, b) => (a.schema + "." + a.name).localeCompare(b.schema + "." + b.name))

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`

/** The details never name the server or carry a credential. */
const expectClean = (e: CatalogUnavailable, port: number) => {
  const { pg: info } = servers()
  expect(e._tag).toBe("CatalogUnavailable")
  expect(e.target).toBe("cat")
  expect(e.detail).not.toContain(info.backend.password)
  expect(e.detail).not.toContain("127.0.0.1")
  expect(e.detail).not.toContain(info.host)
  expect(e.detail).not.toContain(String(port))
}

describe("catalog on the harness PostgreSQL", () => {
  const suffix = randomBytes(4).toString("hex")
  const s1 = `cat_a_${suffix}`
  const s2 = `cat_b_${suffix}`
  const people = `people_${suffix}`
  const weird = `we"ird_${suffix}`
  const braces = `a{b,c}\\d "e"_${suffix}`
  const quote = `it's_${suffix}`
  let admin: pg.Client
  let oids: Record<string, number>

  const oid = async (qualified: string) => (await admin.query<{ oid: number }>(`SELECT $1::regclass::oid::int AS oid`, [qualified])).rows[0]!.oid

  beforeAll(async () => {
    const { pg: info } = servers()
    admin = new pg.Client({ host: info.host, port: info.port, user: info.backend.user, password: info.backend.password, database: info.databases.app })
    await admin.connect()
    await admin.query(`
      CREATE SCHEMA ${s1};
      CREATE SCHEMA ${s2};
      CREATE TABLE ${s1}.${people} (id int, name text, gone text, ssn text);
      ALTER TABLE ${s1}.${people} DROP COLUMN gone;
      ALTER TABLE ${s1}.${people} ADD COLUMN email text;
      CREATE TABLE ${s2}.${people} (id int, card text);
      CREATE VIEW ${s1}.people_v_${suffix} AS SELECT id, ssn FROM ${s1}.${people};
      CREATE MATERIALIZED VIEW ${s1}.people_m_${suffix} AS SELECT id, name AS who FROM ${s1}.${people};
      CREATE TABLE ${s1}.part_${suffix} (k int, v text) PARTITION BY RANGE (k);
      CREATE SEQUENCE ${s1}.seq_${suffix};
      CREATE INDEX idx_${suffix} ON ${s1}.${people} (id);
      CREATE TABLE ${s1}.empty_${suffix} ();
      CREATE TABLE ${s1}.${quoteIdent(weird)} (${quoteIdent('col"q')} int, ${quoteIdent("x,y}")} text);
      CREATE TABLE ${s1}.${quoteIdent(braces)} (${quoteIdent("back\\slash")} int, "NULL" text);
      CREATE TABLE ${s1}.${quoteIdent(quote)} (${quoteIdent("o'k")} int);
    `)
    oids = {
      people1: await oid(`${s1}.${people}`),
      people2: await oid(`${s2}.${people}`),
      view: await oid(`${s1}.people_v_${suffix}`),
      matview: await oid(`${s1}.people_m_${suffix}`),
      weird: await oid(`${s1}.${quoteIdent(weird)}`),
      braces: await oid(`${s1}.${quoteIdent(braces)}`)
    }
  })

  afterAll(async () => {
    await admin?.query(`DROP SCHEMA IF EXISTS ${s1} CASCADE; DROP SCHEMA IF EXISTS ${s2} CASCADE`)
    await admin?.end()
  })

  it("finds a relation by qualified name, with its live columns by attnum and no dropped column", async () => {
    const { catalog, close } = await openCatalog(target())
    try {
      const found = await lookup(catalog, [{ schemas: [s1], name: people }])
      expect(found).toHaveLength(1)
      expect(found[0]!.oid).toBe(oids.people1)
      expect(found[0]!.schema).toBe(s1)
      expect(found[0]!.name).toBe(people)
      expect([...found[0]!.columns]).toEqual([
        [1, "id"],
        [2, "name"],
        [4, "ssn"],
        [5, "email"]
      ])
      expect([...found[0]!.columns.values()]).not.toContain("gone")
      expect(await lookup(catalog, [{ schemas: [s2], name: people }])).toEqual([
        { oid: oids.people2, schema: s2, name: people, columns: new Map([[1, "id"], [2, "card"]]) }
      ])
      expect(await lookup(catalog, [{ schemas: ["public"], name: people }])).toEqual([])
    } finally {
      await close()
    }
  })

  it("finds every schema's relation for 'any', and those on a search-path candidate list", async () => {
    const { catalog, close } = await openCatalog(target())
    try {
      const any = await lookup(catalog, [{ schemas: "any", name: people }])
      expect(any.map((r) => r.oid).sort()).toEqual([oids.people1, oids.people2].sort())
      const path = await lookup(catalog, [{ schemas: ["pg_temp", "pg_catalog", "public", s2], name: people }])
      expect(path.map((r) => r.oid)).toEqual([oids.people2])
      const both = await lookup(catalog, [{ schemas: [s2, s1], name: people }])
      expect(both.map((r) => r.oid).sort()).toEqual([oids.people1, oids.people2].sort())
      // Several names at once, one relation reported once.
      const many = await lookup(catalog, [
        { schemas: [s1], name: people },
        { schemas: "any", name: people },
        { schemas: [s1], name: `people_v_${suffix}` },
        { schemas: "any", name: `nothing_${suffix}` }
      ])
      expect(many.map((r) => r.oid).sort()).toEqual([oids.people1, oids.people2, oids.view].sort())
    } finally {
      await close()
    }
  })

  it("finds views, materialized views, partitioned and column-less tables; not sequences or indexes", async () => {
    const { catalog, close } = await openCatalog(target())
    try {
      const found = await lookup(
        catalog,
        ["people_v", "people_m", "part", "empty", "seq", "idx"].map((n) => ({ schemas: [s1], name: `${n}_${suffix}` }))
      )
      expect(plain(found)).toEqual([
        { schema: s1, name: `empty_${suffix}`, columns: {} },
        { schema: s1, name: `part_${suffix}`, columns: { 1: "k", 2: "v" } },
        { schema: s1, name: `people_m_${suffix}`, columns: { 1: "id", 2: "who" } },
        { schema: s1, name: `people_v_${suffix}`, columns: { 1: "id", 2: "ssn" } }
      ])
      expect(found.find((r) => r.name === `people_v_${suffix}`)!.oid).toBe(oids.view)
      expect(found.find((r) => r.name === `people_m_${suffix}`)!.oid).toBe(oids.matview)
    } finally {
      await close()
    }
  })

  it("looks up names with quotes, braces, commas, backslashes and spaces as the server stores them", async () => {
    const { catalog, close } = await openCatalog(target())
    try {
      const found = await lookup(catalog, [
        { schemas: [s1], name: weird },
        { schemas: [s1], name: braces },
        { schemas: "any", name: quote },
        // Near misses must not match: the literal is not re-interpreted.
        { schemas: "any", name: `we""ird_${suffix}` },
        { schemas: "any", name: `a{b,c}\\\\d "e"_${suffix}` },
        { schemas: "any", name: `a{b` },
        { schemas: "any", name: `NULL` },
        { schemas: "any", name: `"}, "${people}` },
        { schemas: "any", name: `'); DROP SCHEMA ${s1} CASCADE; --` }
      ])
      expect(plain(found)).toEqual([
        { schema: s1, name: braces, columns: { 1: "back\\slash", 2: "NULL" } },
        { schema: s1, name: quote, columns: { 1: "o'k" } },
        { schema: s1, name: weird, columns: { 1: 'col"q', 2: "x,y}" } }
      ])
      expect(found.find((r) => r.name === weird)!.oid).toBe(oids.weird)
      expect(found.find((r) => r.name === braces)!.oid).toBe(oids.braces)
      // A name no relation can have (NUL) or an over-long one is no error.
      expect(await lookup(catalog, [{ schemas: "any", name: "a\0b" }])).toEqual([])
      expect(await lookup(catalog, [{ schemas: "any", name: "x".repeat(200) }])).toEqual([])
      expect(await lookup(catalog, [])).toEqual([])
    } finally {
      await close()
    }
  })

  it("finds a long name by the 63 bytes the server keeps", async () => {
    const long = `long_${suffix}_${"é".repeat(40)}`
    await admin.query(`CREATE TABLE ${s1}.${quoteIdent(long)} (a int)`)
    const { catalog, close } = await openCatalog(target())
    try {
      const found = await lookup(catalog, [{ schemas: [s1], name: long }])
      expect(found).toHaveLength(1)
      expect(Buffer.byteLength(found[0]!.name)).toBeLessThanOrEqual(63)
      expect(long.startsWith(found[0]!.name)).toBe(true)
    } finally {
      await close()
    }
  })

  it("'pg_temp' matches a session's temporary schema", async () => {
    const temp = `tmp_${suffix}`
    await admin.query(`CREATE TEMP TABLE ${temp} (secret text)`)
    const { catalog, close } = await openCatalog(target())
    try {
      const found = await lookup(catalog, [{ schemas: ["pg_temp", "public"], name: temp }])
      expect(found).toHaveLength(1)
      expect(found[0]!.schema).toMatch(/^pg_temp_\d+$/)
      expect([...found[0]!.columns]).toEqual([[1, "secret"]])
      expect(await lookup(catalog, [{ schemas: ["public", s1], name: temp }])).toEqual([])
    } finally {
      await close()
      await admin.query(`DROP TABLE pg_temp.${temp}`)
    }
  })

  it("serves from the cache within the TTL and asks again after it", async () => {
    const t = `ttl_${suffix}`
    await admin.query(`CREATE TABLE ${s1}.${t} (before text)`)
    const { catalog, close } = await openCatalog(target(), { ttlMs: 1_000 })
    try {
      const names = [{ schemas: [s1], name: t }]
      expect([...(await lookup(catalog, names))[0]!.columns.values()]).toEqual(["before"])
      await admin.query(`ALTER TABLE ${s1}.${t} RENAME COLUMN before TO after`)
      expect([...(await lookup(catalog, names))[0]!.columns.values()]).toEqual(["before"])
      await sleep(1_100)
      expect([...(await lookup(catalog, names))[0]!.columns.values()]).toEqual(["after"])
    } finally {
      await close()
    }
  })

  it("invalidate() forgets at once, absent names included", async () => {
    const t = `inv_${suffix}`
    const later = `later_${suffix}`
    await admin.query(`CREATE TABLE ${s1}.${t} (before text)`)
    const { catalog, close } = await openCatalog(target(), { ttlMs: 600_000 })
    try {
      const names = [{ schemas: [s1], name: t }]
      expect([...(await lookup(catalog, names))[0]!.columns.values()]).toEqual(["before"])
      expect(await lookup(catalog, [{ schemas: "any", name: later }])).toEqual([])
      await admin.query(`ALTER TABLE ${s1}.${t} RENAME COLUMN before TO after; CREATE TABLE ${s1}.${later} (x int)`)
      expect([...(await lookup(catalog, names))[0]!.columns.values()]).toEqual(["before"])
      expect(await lookup(catalog, [{ schemas: "any", name: later }])).toEqual([])
      catalog.invalidate()
      expect([...(await lookup(catalog, names))[0]!.columns.values()]).toEqual(["after"])
      expect((await lookup(catalog, [{ schemas: "any", name: later }])).map((r) => r.name)).toEqual([later])
    } finally {
      await close()
    }
  })

  const catalogBackends = async (): Promise<Array<number>> => {
    const { pg: info } = servers()
    const r = await admin.query<{ pid: number }>(
      `SELECT pid FROM pg_catalog.pg_stat_activity WHERE application_name = 'sluice catalog' AND usename = $1 ORDER BY pid`,
      [info.backend.user]
    )
    return r.rows.map((row) => row.pid)
  }

  const waitFor = async (check: () => Promise<boolean>, what: string) => {
    const deadline = Date.now() + 5_000
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await sleep(50)
    }
  }

  it("keeps one side connection, reconnects after pg_terminate_backend, and closes with its scope", async () => {
    await waitFor(async () => (await catalogBackends()).length === 0, "earlier catalog connections to end")
    const { catalog, close } = await openCatalog(target(), { ttlMs: 600_000 })
    let closed = false
    try {
      expect(await catalogBackends()).toEqual([]) // opened lazily
      await lookup(catalog, [{ schemas: [s1], name: people }])
      const [first, ...others] = await catalogBackends()
      expect(first).toBeDefined()
      expect(others).toEqual([])
      await lookup(catalog, [{ schemas: [s2], name: `other_${suffix}` }])
      expect(await catalogBackends()).toEqual([first])

      const killed = await admin.query<{ ok: boolean }>(`SELECT pg_catalog.pg_terminate_backend($1) AS ok`, [first])
      expect(killed.rows[0]!.ok).toBe(true)
      await waitFor(async () => !(await catalogBackends()).includes(first!), "the backend to end")

      catalog.invalidate()
      const found = await lookup(catalog, [{ schemas: [s1], name: people }])
      expect(found.map((r) => r.oid)).toEqual([oids.people1])
      const [second, ...more] = await catalogBackends()
      expect(second).toBeDefined()
      expect(second).not.toBe(first)
      expect(more).toEqual([])

      await close()
      closed = true
      await waitFor(async () => (await catalogBackends()).length === 0, "the catalog connection to close with its scope")
      const after = await failure(catalog, [{ schemas: "any", name: `x_${suffix}` }])
      expect(after.detail).toMatch(/closed/)
    } finally {
      if (!closed) await close()
    }
  })

  it("fails with CatalogUnavailable on refused credentials, without leaking them", async () => {
    const { pg: info } = servers()
    const { catalog, close } = await openCatalog(target({ password: "not-the-password-4711" }))
    try {
      const e = await failure(catalog, [{ schemas: "any", name: people }])
      expectClean(e, info.port)
      expect(e.detail).toMatch(/refused the catalog's login: the server rejected the stored credentials \(SQLSTATE 28P01\)/)
      expect(e.detail).not.toContain("not-the-password-4711")
    } finally {
      await close()
    }
  })
})

/**
 * A scripted server: logs anyone in, answers Sluice's login question, then answers each
 * catalog question (Parse/Bind/Execute/Sync) with `answer(names)` after `delayMs`, or
 * never when `silent`.
 */
class FakeServer {
  server: Server | undefined
  port = 0
  connections = 0
  closedConnections = 0
  questions: Array<ReadonlyArray<string>> = []
  silent = false
  delayMs = 0
  answer: (names: ReadonlyArray<string>) => Array<[oid: number, schema: string, name: string, attnum: number | null, attname: string | null]> = () => []
  private sockets = new Set<Socket>()

  async listen(port?: number): Promise<void> {
    const server = createServer((sock) => this.serve(sock))
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject)
      server.listen(port ?? 0, "127.0.0.1", () => resolve())
    })
    this.server = server
    const address = server.address()
    if (address === null || typeof address === "string") throw new Error("no address")
    this.port = address.port
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    const server = this.server
    if (server !== undefined) await new Promise((r) => server.close(r))
  }

  private serve(sock: Socket): void {
    this.connections++
    this.sockets.add(sock)
    sock.on("close", () => {
      this.closedConnections++
      this.sockets.delete(sock)
    })
    sock.on("error", () => {})
    let buf = Buffer.alloc(0)
    let started = false
    let names: ReadonlyArray<string> = []
    sock.on("data", (chunk) => {
      buf = Buffer.concat([buf, chunk])
      for (;;) {
        if (!started) {
          if (buf.length < 4) return
          const len = buf.readInt32BE(0)
          if (buf.length < len) return
          buf = buf.subarray(len)
          started = true
          sock.write(
            Buffer.concat([
              encodeBackend({ _tag: "AuthenticationOk" }),
              encodeBackend({ _tag: "BackendKeyData", processId: 7, secretKey: 9 }),
              encodeBackend({ _tag: "ReadyForQuery", status: "I" })
            ])
          )
          continue
        }
        if (buf.length < 5) return
        const type = buf[0]!
        const total = 1 + buf.readInt32BE(1)
        if (buf.length < total) return
        const body = buf.subarray(5, total)
        buf = buf.subarray(total)
        if (type === 0x51) sock.write(encodeBackend({ _tag: "ReadyForQuery", status: "I" }))
        else if (type === 0x42) names = parseBindNames(body)
        else if (type === 0x53) {
          this.questions.push(names)
          if (this.silent) continue
          const reply = Buffer.concat([
            encodeBackend({ _tag: "ParseComplete" }),
            encodeBackend({ _tag: "BindComplete" }),
            ...this.answer(names).map((row) =>
              encodeBackend({ _tag: "DataRow", values: row.map((v) => (v === null ? null : Buffer.from(String(v)))) })
            ),
            encodeBackend({ _tag: "CommandComplete", tag: "SELECT" }),
            encodeBackend({ _tag: "ReadyForQuery", status: "I" })
          ])
          setTimeout(() => sock.write(reply), this.delayMs)
        }
      }
    })
  }
}

/** The one text-format text[] parameter of the catalog's Bind, every element quoted. */
const parseBindNames = (body: Buffer): Array<string> => {
  let i = body.indexOf(0) + 1 // portal
  i = body.indexOf(0, i) + 1 // statement
  const formats = body.readInt16BE(i)
  i += 2 + 2 * formats
  expect(body.readInt16BE(i)).toBe(1)
  i += 2
  const len = body.readInt32BE(i)
  const literal = body.subarray(i + 4, i + 4 + len).toString("utf8")
  expect(literal.startsWith("{") && literal.endsWith("}")).toBe(true)
  const out: Array<string> = []
  let j = 1
  while (j < literal.length - 1) {
    expect(literal[j]).toBe('"')
    j++
    let name = ""
    while (literal[j] !== '"') {
      if (literal[j] === "\\") j++
      name += literal[j]
      j++
    }
    j++
    out.push(name)
    if (literal[j] === ",") j++
  }
  return out
}

describe("catalog failures and sharing, against a scripted server", () => {
  let fake: FakeServer

  beforeAll(async () => {
    fake = new FakeServer()
    await fake.listen()
  })

  afterAll(async () => {
    await fake?.close()
  })

  const reset = () => {
    fake.questions = []
    fake.silent = false
    fake.delayMs = 0
    // A stable OID per name, as a server would have.
    fake.answer = (names) => names.filter((n) => /^t\d+$/.test(n)).map((n) => [1000 + Number(n.slice(1)), "public", n, 1, "c"])
  }

  it("an unreachable target fails with a clear CatalogUnavailable, and the catalog connects once it is up", async () => {
    reset()
    const port = await freePort()
    const { catalog, close } = await openCatalog(target({ host: "127.0.0.1", port }))
    const late = new FakeServer()
    try {
      const e = await failure(catalog, [{ schemas: "any", name: "t1" }])
      expectClean(e, port)
      expect(e.detail).toBe("cannot connect: connection failed (ECONNREFUSED)")
      // Still failing cleanly, not wedged.
      expect((await failure(catalog, [{ schemas: "any", name: "t1" }])).detail).toBe(e.detail)
      late.answer = () => [[42, "public", "t1", 1, "c"]]
      await late.listen(port)
      expect(await lookup(catalog, [{ schemas: "any", name: "t1" }])).toEqual([
        { oid: 42, schema: "public", name: "t1", columns: new Map([[1, "c"]]) }
      ])
      expect(late.connections).toBe(1)
    } finally {
      await close()
      await late.close()
    }
  })

  it("a query with no answer within queryTimeoutMs fails, drops the connection, and the next one reconnects", async () => {
    reset()
    const before = { connections: fake.connections, closed: fake.closedConnections }
    const { catalog, close } = await openCatalog(target({ host: "127.0.0.1", port: fake.port }), { queryTimeoutMs: 300 })
    try {
      fake.silent = true
      const started = Date.now()
      const e = await failure(catalog, [{ schemas: "any", name: "t1" }])
      expect(Date.now() - started).toBeLessThan(3_000)
      expectClean(e, fake.port)
      expect(e.detail).toBe("the catalog query got no answer within 300 ms")
      expect(fake.questions).toEqual([["t1"]]) // not retried after a timeout
      await sleep(100)
      expect(fake.closedConnections - before.closed).toBe(1)
      fake.silent = false
      expect((await lookup(catalog, [{ schemas: "any", name: "t1" }])).map((r) => r.name)).toEqual(["t1"])
      expect(fake.connections - before.connections).toBe(2)
    } finally {
      await close()
    }
  })

  it("concurrent callers share a fetch: each missing name is asked once", async () => {
    reset()
    fake.delayMs = 150
    const { catalog, close } = await openCatalog(target({ host: "127.0.0.1", port: fake.port }))
    try {
      const results = await Promise.all([
        ...Array.from({ length: 5 }, () => lookup(catalog, [{ schemas: "any", name: "t1" }])),
        lookup(catalog, [{ schemas: "any", name: "t1" }, { schemas: ["public"], name: "t2" }])
      ])
      for (const r of results.slice(0, 5)) expect(r.map((x) => x.name)).toEqual(["t1"])
      expect(results[5]!.map((x) => x.name)).toEqual(["t1", "t2"])
      const asked = fake.questions.flat().sort()
      expect(asked).toEqual(["t1", "t2"])
      expect(fake.questions.length).toBeLessThanOrEqual(2)
      // Cached now.
      await lookup(catalog, [{ schemas: "any", name: "t2" }, { schemas: "any", name: "t1" }])
      expect(fake.questions.flat().sort()).toEqual(["t1", "t2"])
    } finally {
      await close()
    }
  })

  it("an answer to a question asked before invalidate() is returned but not cached", async () => {
    reset()
    fake.delayMs = 200
    const { catalog, close } = await openCatalog(target({ host: "127.0.0.1", port: fake.port }))
    try {
      const pending = lookup(catalog, [{ schemas: "any", name: "t1" }])
      await sleep(50)
      catalog.invalidate()
      expect((await pending).map((r) => r.name)).toEqual(["t1"])
      fake.delayMs = 0
      await lookup(catalog, [{ schemas: "any", name: "t1" }])
      await lookup(catalog, [{ schemas: "any", name: "t1" }])
      expect(fake.questions).toEqual([["t1"], ["t1"]])
    } finally {
      await close()
    }
  })

  it(`caches at most ${MAX_CACHED_NAMES} names, forgetting the oldest`, async () => {
    reset()
    const { catalog, close } = await openCatalog(target({ host: "127.0.0.1", port: fake.port }))
    try {
      await lookup(catalog, [{ schemas: "any", name: "first" }])
      const many = Array.from({ length: MAX_CACHED_NAMES }, (_, i) => ({ schemas: "any" as const, name: `n${i}` }))
      await lookup(catalog, many)
      expect(fake.questions.length).toBe(2)
      await lookup(catalog, [{ schemas: "any", name: `n${MAX_CACHED_NAMES - 1}` }, { schemas: "any", name: "n1" }])
      expect(fake.questions.length).toBe(2) // still cached
      await lookup(catalog, [{ schemas: "any", name: "first" }])
      expect(fake.questions).toHaveLength(3)
      expect(fake.questions[2]).toEqual(["first"])
    } finally {
      await close()
    }
  })

  it("sends awkward names as one properly quoted text[] parameter", async () => {
    reset()
    const { catalog, close } = await openCatalog(target({ host: "127.0.0.1", port: fake.port }))
    try {
      const names = ['a"b', "c\\d", "{e}", "f,g", "NULL", "", " h ", "ü'"]
      await lookup(catalog, names.map((name) => ({ schemas: "any", name })))
      expect(fake.questions).toEqual([names])
    } finally {
      await close()
    }
  })
})
