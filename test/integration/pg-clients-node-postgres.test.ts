/**
 * Whole node-postgres (`pg`) sessions through the real gateway CLI against the harness
 * cluster: simple and extended protocol, named prepared statements, binary results,
 * COPY both ways, LISTEN/NOTIFY, transaction states, both ways of cancelling, and
 * volume (many statements, a large result, a large parameter).
 */
import { createHash } from "node:crypto"
import { connect } from "node:net"
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import pg from "pg"
import { from as copyFrom, to as copyTo } from "pg-copy-streams"
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from "vitest"
import { type Gateway, startGateway } from "./support/gateway.ts"

const T = "sluice_nodepg_items"
const T_COPY = "sluice_nodepg_copy"

/** What node-postgres has but @types/pg does not declare. */
type FullClient = pg.Client & {
  readonly processID: number
  readonly secretKey: number
  cancel(client: pg.Client, query: pg.Query): void
}

const md5 = (s: string) => createHash("md5").update(s).digest("hex")

/** The SQLSTATE of a rejected promise (fails the test if it resolves). */
const sqlstate = async (p: Promise<unknown>): Promise<string | undefined> => {
  try {
    await p
  } catch (e) {
    return (e as { code?: string }).code
  }
  throw new Error("expected the query to fail")
}

describe("node-postgres through the gateway", () => {
  let gw: Gateway
  let client: FullClient
  const open: Array<pg.Client> = []

  const connectClient = async (extra: Partial<pg.ClientConfig> = {}): Promise<FullClient> => {
    const c = new pg.Client({ ...gw.connection(), ...extra }) as FullClient
    c.on("error", () => {})
    await c.connect()
    open.push(c)
    return c
  }

  const superuser = () => {
    const { pg: info } = inject("servers")
    return new pg.Client({ host: info.host, port: info.port, user: info.superuser.user, password: info.superuser.password, database: "app" })
  }

  const dropAll = async () => {
    const c = superuser()
    await c.connect()
    await c.query(`DROP TABLE IF EXISTS ${T}, ${T_COPY}`)
    await c.end()
  }

  /** The session still answers a plain query correctly. */
  const usable = async (c: pg.Client) => {
    const r = await c.query("SELECT 'still here'::text AS s")
    expect(r.rows).toEqual([{ s: "still here" }])
    expect(c.getTransactionStatus()).toBe("I")
  }

  /** Polls (through the gateway) until backend `pid` is running a statement containing `fragment`. */
  const waitUntilRunning = async (monitor: pg.Client, pid: number, fragment: string) => {
    const deadline = Date.now() + 10_000
    for (;;) {
      const r = await monitor.query<{ state: string; query: string }>("SELECT state, query FROM pg_stat_activity WHERE pid = $1", [pid])
      if (r.rows[0]?.state === "active" && r.rows[0].query.includes(fragment)) return
      if (Date.now() > deadline) throw new Error(`backend ${pid} never started running ${fragment}: ${JSON.stringify(r.rows)}`)
      await new Promise((res) => setTimeout(res, 25))
    }
  }

  const backendPid = async (c: pg.Client): Promise<number> => (await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid

  beforeAll(async () => {
    gw = await startGateway()
    await dropAll()
    client = await connectClient({ application_name: "sluice-nodepg-test" })
  })

  // A failed assertion inside a transaction must not poison the tests after it.
  afterEach(async () => {
    if (client?.getTransactionStatus() !== "I") await client?.query("ROLLBACK").catch(() => {})
  })

  afterAll(async () => {
    for (const c of open) await c.end().catch(() => {})
    await dropAll()
    await gw?.stop()
  })

  it("simple query: rows, fields and command tag", async () => {
    const r = await client.query("SELECT 42 AS answer, 'forty-two'::text AS words, NULL::int AS nothing, current_user AS who, current_setting('application_name') AS app")
    expect(r.command).toBe("SELECT")
    expect(r.rowCount).toBe(1)
    expect(r.fields.map((f) => [f.name, f.dataTypeID])).toEqual([
      ["answer", 23],
      ["words", 25],
      ["nothing", 23],
      ["who", 19],
      ["app", 25]
    ])
    expect(r.rows).toEqual([{ answer: 42, words: "forty-two", nothing: null, who: "sluice_backend", app: "sluice-nodepg-test" }])
  })

  it("extended query with parameters of several types, nulls and unicode", async () => {
    const r = await client.query("SELECT $1::int + 1 AS n, $2::text || '!' AS s, length($2::text) AS len, $3::int IS NULL AS was_null, $4::jsonb -> 'k' AS j, $5::numeric * 2 AS d, $6::text[] AS arr", [
      41,
      "héllo ✓",
      null,
      JSON.stringify({ k: [1, "two"] }),
      "12345678901234567890.5",
      ["a", "b,c", 'd"e']
    ])
    expect(r.rows).toEqual([{ n: 42, s: "héllo ✓!", len: 7, was_null: true, j: [1, "two"], d: "24691357802469135781.0", arr: ["a", "b,c", 'd"e'] }])
  })

  it("a named prepared statement is parsed once on the server and executed many times", async () => {
    const name = "sluice_nodepg_square"
    const results: Array<number> = []
    for (let i = 0; i < 25; i++) {
      const r = await client.query<{ sq: number }>({ name, text: "SELECT $1::int * $1::int AS sq", values: [i] })
      results.push(r.rows[0]!.sq)
    }
    expect(results).toEqual(Array.from({ length: 25 }, (_, i) => i * i))
    const prepared = await client.query("SELECT name, statement, parameter_types::text[] AS types FROM pg_prepared_statements WHERE name = $1", [name])
    expect(prepared.rows).toEqual([{ name, statement: "SELECT $1::int * $1::int AS sq", types: ["integer"] }])
  })

  /**
   * node-postgres asks for binary results per query, but pg-protocol decodes every DataRow
   * field as a UTF-8 string before the binary type parser sees it, so any value whose bytes
   * are not valid UTF-8 is mangled by the client itself. The values below are chosen so that
   * every byte is < 0x80; arbitrary binary bytes are checked with psycopg instead.
   */
  const BINARY_QUERY = {
    text: "SELECT $1::int2 AS i2, $2::int4 AS i4, $3::int8 AS i8, $4::float8 AS f8, $5::float4 AS f4, $6::bool AS b, $7::text AS t, $8::timestamptz AS ts, '{1,2,3}'::int4[] AS arr, NULL::int4 AS n, 1.5::numeric AS num",
    values: [258, 16909060, "72623859790382856", 2, 0.5, true, "bïnary ✓", "2000-01-01T00:00:00.000Z"],
    binary: true
  }

  it("binary-format results decode to the right values", async () => {
    const r = await client.query(BINARY_QUERY)
    const row = r.rows[0]
    expect(r.fields.every((f) => f.format === "binary")).toBe(true)
    expect(row.i2).toBe(258)
    expect(row.i4).toBe(16909060)
    expect(String(row.i8)).toBe("72623859790382856")
    expect(row.f8).toBe(2)
    expect(row.f4).toBe(0.5)
    expect(row.b).toBe(true)
    expect(row.t).toBe("bïnary ✓")
    expect((row.ts as Date).toISOString()).toBe("2000-01-01T00:00:00.000Z")
    expect(row.arr).toEqual([1, 2, 3])
    expect(row.n).toBeNull()
    expect(Number(row.num)).toBe(1.5)
    await usable(client)
  })

  it("binary results through the gateway equal binary results straight from the server, even where the client mangles them", async () => {
    const { pg: info } = inject("servers")
    const direct = new pg.Client({ host: info.host, port: info.port, user: info.backend.user, password: info.backend.password, database: "app" })
    await direct.connect()
    const lossy = { text: "SELECT $1::int2 AS i2, $2::int4 AS i4, $3::float8 AS f8, now()::timestamptz - now() AS zero, '\\xdeadbeef00ff'::bytea AS raw", values: [-12, -1, Math.PI], binary: true }
    try {
      for (const q of [BINARY_QUERY, lossy]) {
        const [viaGateway, straight] = [await client.query(q), await direct.query(q)]
        expect(viaGateway.rows).toEqual(straight.rows)
        expect(viaGateway.fields).toEqual(straight.fields)
      }
    } finally {
      await direct.end()
    }
  })

  it("a multi-statement simple query returns every result; an error rolls the whole implicit transaction back", async () => {
    const results = (await client.query(
      `CREATE TABLE ${T} (id int PRIMARY KEY, name text); INSERT INTO ${T} VALUES (1, 'a'), (2, 'b'); UPDATE ${T} SET name = upper(name) WHERE id = 2; SELECT * FROM ${T} ORDER BY id`
    )) as unknown as Array<pg.QueryResult>
    expect(results.map((r) => [r.command, r.rowCount])).toEqual([
      ["CREATE", null],
      ["INSERT", 2],
      ["UPDATE", 1],
      ["SELECT", 2]
    ])
    expect(results[3]!.rows).toEqual([
      { id: 1, name: "a" },
      { id: 2, name: "B" }
    ])
    expect(await sqlstate(client.query(`INSERT INTO ${T} VALUES (3, 'c'); SELECT 1/0; INSERT INTO ${T} VALUES (4, 'd')`))).toBe("22012")
    expect((await client.query(`SELECT count(*)::int AS n FROM ${T}`)).rows).toEqual([{ n: 2 }])
    await usable(client)
  })

  it("COPY FROM STDIN and COPY TO STDOUT move 5000 rows intact both ways", async () => {
    await client.query(`CREATE TABLE ${T_COPY} (id int PRIMARY KEY, payload text, note text)`)
    const lines = Array.from({ length: 5000 }, (_, i) => `${i}\tpayload-${i}-${"z".repeat(i % 97)}\t${i % 7 === 0 ? "\\N" : `note ✓ ${i}`}\n`)
    const chunks = Array.from({ length: 50 }, (_, k) => lines.slice(k * 100, k * 100 + 100).join(""))
    const into = client.query(copyFrom(`COPY ${T_COPY} (id, payload, note) FROM STDIN`))
    await pipeline(Readable.from(chunks), into)
    expect(into.rowCount).toBe(5000)

    const check = await client.query<{ n: number; nulls: number; longest: number }>(
      `SELECT count(*)::int AS n, count(*) FILTER (WHERE note IS NULL)::int AS nulls, max(length(payload))::int AS longest FROM ${T_COPY}`
    )
    expect(check.rows).toEqual([{ n: 5000, nulls: Math.ceil(5000 / 7), longest: "payload-4946-".length + 96 }])

    const out = client.query(copyTo(`COPY (SELECT id, payload, note FROM ${T_COPY} ORDER BY id) TO STDOUT`))
    const received: Array<Buffer> = []
    for await (const chunk of out) received.push(chunk as Buffer)
    expect(Buffer.concat(received).toString("utf8")).toBe(lines.join(""))
    expect(out.rowCount).toBe(5000)
    await usable(client)
  })

  it("a COPY FROM STDIN the server rejects mid-stream reports 22P02 and leaves the session usable", async () => {
    const into = client.query(copyFrom(`COPY ${T_COPY} (id, payload, note) FROM STDIN`))
    const failed = pipeline(Readable.from(["100001\tok\tok\n", "not-a-number\tbad\tbad\n", "100002\tok\tok\n"]), into)
    await expect(failed).rejects.toMatchObject({ code: "22P02" })
    expect((await client.query(`SELECT count(*)::int AS n FROM ${T_COPY} WHERE id > 100000`)).rows).toEqual([{ n: 0 }])
    await usable(client)
  })

  it("a COPY FROM STDIN the client aborts (CopyFail) loads nothing and leaves the session usable", async () => {
    const source = new Readable({ read() {} })
    const into = client.query(copyFrom(`COPY ${T_COPY} (id, payload, note) FROM STDIN`))
    const done = pipeline(source, into).then(
      () => undefined,
      (e: Error) => e
    )
    source.push("200001\tok\tok\n200002\tok\tok\n")
    setTimeout(() => source.destroy(new Error("the source broke")), 50)
    expect((await done)?.message).toMatch(/the source broke/)
    expect((await client.query(`SELECT count(*)::int AS n FROM ${T_COPY} WHERE id > 200000`)).rows).toEqual([{ n: 0 }])
    await usable(client)
  })

  it("LISTEN/NOTIFY between two gateway sessions: payloads arrive, rolled-back notifications do not", async () => {
    const listener = await connectClient()
    const notifier = await connectClient()
    const got: Array<{ channel: string; payload: string | undefined }> = []
    let wake: () => void = () => {}
    listener.on("notification", (n) => {
      got.push({ channel: n.channel, payload: n.payload })
      wake()
    })
    await listener.query("LISTEN sluice_nodepg_chan")
    await notifier.query("SELECT pg_notify('sluice_nodepg_chan', $1)", ["first payload ✓"])
    await notifier.query("BEGIN")
    await notifier.query("NOTIFY sluice_nodepg_chan, 'rolled back'")
    await notifier.query("ROLLBACK")
    await notifier.query("BEGIN")
    await notifier.query("NOTIFY sluice_nodepg_chan, 'committed'")
    await notifier.query("COMMIT")
    // The listener sits idle: the notifications must be relayed without any client traffic.
    const deadline = Date.now() + 5_000
    while (got.length < 2 && Date.now() < deadline) await new Promise<void>((r) => ((wake = r), setTimeout(r, 200)))
    expect(got).toEqual([
      { channel: "sluice_nodepg_chan", payload: "first payload ✓" },
      { channel: "sluice_nodepg_chan", payload: "committed" }
    ])
    await listener.query("UNLISTEN *")
  })

  it("a notification a session sends itself carries the pid the client knows (its BackendKeyData), not the server's", async () => {
    const self = await connectClient()
    const other = await connectClient()
    const got: Array<{ processId: number; payload: string | undefined }> = []
    self.on("notification", (n) => got.push({ processId: n.processId, payload: n.payload }))
    await self.query("LISTEN sluice_nodepg_self")
    await self.query("NOTIFY sluice_nodepg_self, 'from myself'")
    const otherPid = await backendPid(other)
    await other.query("NOTIFY sluice_nodepg_self, 'from another session'")
    const deadline = Date.now() + 5_000
    while (got.length < 2 && Date.now() < deadline) await self.query("SELECT 1")
    expect(got).toEqual([
      // libpq-style "is this my own notification?" checks compare with BackendKeyData's pid.
      { processId: self.processID, payload: "from myself" },
      { processId: otherPid, payload: "from another session" }
    ])
    expect(self.processID).not.toBe(await backendPid(self))
  })

  it("transactions: commit, an error aborts the block (25P02) until ROLLBACK, savepoints recover", async () => {
    await client.query("BEGIN")
    expect(client.getTransactionStatus()).toBe("T")
    await client.query(`INSERT INTO ${T} VALUES (10, 'committed')`)
    await client.query("COMMIT")
    expect(client.getTransactionStatus()).toBe("I")

    await client.query("BEGIN")
    await client.query(`INSERT INTO ${T} VALUES (11, 'rolled back')`)
    expect(await sqlstate(client.query("SELECT 1/0"))).toBe("22012")
    // node-postgres rejects on ErrorResponse; the status comes with the ReadyForQuery after it.
    await vi.waitFor(() => expect(client.getTransactionStatus()).toBe("E"), { timeout: 2_000, interval: 5 })
    expect(await sqlstate(client.query("SELECT 1"))).toBe("25P02")
    expect(await sqlstate(client.query("SELECT $1::int", [1]))).toBe("25P02")
    await client.query("ROLLBACK")
    expect(client.getTransactionStatus()).toBe("I")

    await client.query("BEGIN")
    await client.query(`INSERT INTO ${T} VALUES (12, 'kept')`)
    await client.query("SAVEPOINT sp")
    expect(await sqlstate(client.query(`INSERT INTO ${T} VALUES (12, 'duplicate')`))).toBe("23505")
    await client.query("ROLLBACK TO SAVEPOINT sp")
    expect(client.getTransactionStatus()).toBe("T")
    await client.query("COMMIT")

    const rows = await client.query(`SELECT id, name FROM ${T} WHERE id >= 10 ORDER BY id`)
    expect(rows.rows).toEqual([
      { id: 10, name: "committed" },
      { id: 12, name: "kept" }
    ])
    await usable(client)
  })

  it("the session stays usable after syntax, undefined-table, constraint and type errors", async () => {
    expect(await sqlstate(client.query("SELEC 1"))).toBe("42601")
    await usable(client)
    expect(await sqlstate(client.query("SELECT * FROM sluice_nodepg_no_such_table"))).toBe("42P01")
    await usable(client)
    expect(await sqlstate(client.query(`INSERT INTO ${T} VALUES (1, 'dup')`))).toBe("23505")
    await usable(client)
    expect(await sqlstate(client.query("SELECT $1::int", ["not an int"]))).toBe("22P02")
    await usable(client)
    expect(await sqlstate(client.query({ name: "sluice_nodepg_bad", text: "SELECT nope FROM nowhere" }))).toBe("42P01")
    await usable(client)
  })

  it("BackendKeyData: the client gets Sluice's key, not the server's pid", async () => {
    const c = await connectClient()
    const realPid = await backendPid(c)
    expect(Number.isInteger(c.processID)).toBe(true)
    expect(c.processID).not.toBe(realPid)
    const other = await connectClient()
    expect(other.processID).not.toBe(c.processID)
  })

  it("cancel via pg_cancel_backend(pid) from a second gateway session: the victim gets 57014", async () => {
    const victim = await connectClient()
    const killer = await connectClient()
    const pid = await backendPid(victim)
    const started = Date.now()
    const sleeping = sqlstate(victim.query("SELECT pg_sleep(30)"))
    await waitUntilRunning(killer, pid, "pg_sleep(30)")
    expect((await killer.query("SELECT pg_cancel_backend($1) AS ok", [pid])).rows).toEqual([{ ok: true }])
    expect(await sleeping).toBe("57014")
    expect(Date.now() - started).toBeLessThan(10_000)
    await usable(victim)
  })

  it("cancel via the client's own CancelRequest (Sluice's key) interrupts pg_sleep(30) with 57014 quickly", async () => {
    const victim = await connectClient()
    const monitor = await connectClient()
    const pid = await backendPid(victim)
    const query = new pg.Query("SELECT pg_sleep(30)")
    const outcome = new Promise<{ code: string | undefined; at: number }>((resolve) => {
      query.on("error", (e: Error & { code?: string }) => resolve({ code: e.code, at: Date.now() }))
      query.on("end", () => resolve({ code: undefined, at: Date.now() }))
    })
    victim.query(query)
    await waitUntilRunning(monitor, pid, "pg_sleep(30)")
    const sent = Date.now()
    ;(new pg.Client(gw.connection()) as FullClient).cancel(victim, query)
    const { code, at } = await outcome
    expect(code).toBe("57014")
    expect(at - sent).toBeLessThan(5_000)
    await usable(victim)
  })

  it("a CancelRequest with the real pid, or with a wrong secret, cancels nothing", async () => {
    const victim = await connectClient()
    const monitor = await connectClient()
    const pid = await backendPid(victim)
    const sendCancel = (processId: number, secretKey: number) =>
      new Promise<void>((resolve, reject) => {
        const packet = Buffer.alloc(16)
        packet.writeInt32BE(16, 0)
        packet.writeInt32BE(80877102, 4)
        packet.writeInt32BE(processId, 8)
        packet.writeInt32BE(secretKey, 12)
        const s = connect({ host: "127.0.0.1", port: gw.port }, () => s.end(packet))
        s.on("close", () => resolve())
        s.on("error", reject)
        s.resume()
      })
    const sleeping = victim.query("SELECT pg_sleep(1.5) AS slept")
    await waitUntilRunning(monitor, pid, "pg_sleep(1.5)")
    await sendCancel(pid, victim.secretKey)
    await sendCancel(victim.processID, victim.secretKey ^ 1)
    const r = await sleeping
    expect(r.rows).toEqual([{ slept: "" }])
  })

  it("2000 small statements on one connection, alternating simple and extended protocol", async () => {
    const c = await connectClient()
    let sum = 0
    for (let i = 0; i < 2000; i++) {
      const r = i % 2 === 0 ? await c.query(`SELECT ${i} + 1 AS n`) : await c.query("SELECT $1::int + 1 AS n", [i])
      sum += r.rows[0].n as number
    }
    expect(sum).toBe((2000 * 2001) / 2)
  })

  it("pg pipeline mode: 300 queries in flight on one connection, one failing, the rest answered in order", async () => {
    const c = await connectClient({ pipeline: true } as Partial<pg.ClientConfig>)
    const settled = await Promise.allSettled(
      Array.from({ length: 300 }, (_, i) => (i === 150 ? c.query("SELECT 1/0") : c.query<{ i: number }>("SELECT $1::int AS i", [i])))
    )
    settled.forEach((s, i) => {
      if (i === 150) expect(s.status === "rejected" && (s.reason as { code?: string }).code).toBe("22012")
      else expect(s.status === "fulfilled" && s.value.rows[0]?.i).toBe(i)
    })
    expect((await c.query("SELECT 'after' AS a")).rows).toEqual([{ a: "after" }])
  })

  it("a 200,000-row result arrives complete and in order", async () => {
    const r = await client.query<{ i: number; h: string }>("SELECT g AS i, md5(g::text) AS h FROM generate_series(1, 200000) g ORDER BY g")
    expect(r.rowCount).toBe(200_000)
    expect(r.rows.length).toBe(200_000)
    let bad = 0
    for (let k = 0; k < r.rows.length; k++) {
      const row = r.rows[k]!
      if (row.i !== k + 1 || row.h !== md5(String(k + 1))) bad++
    }
    expect(bad).toBe(0)
    await usable(client)
  }, 60_000)

  it("a 5 MB text parameter and a 5 MB bytea parameter round-trip", async () => {
    const big = Array.from({ length: 5 * 1024 }, (_, k) => `${String(k).padStart(6, "0")}:${"abcdefghijklmnopqrstuvwxyz✓".repeat(38)}`.slice(0, 1024)).join("")
    expect(big.length).toBe(5 * 1024 * 1024)
    const r = await client.query<{ v: string; n: number; h: string }>("SELECT $1::text AS v, length($1::text) AS n, md5($1::text) AS h", [big])
    expect(r.rows[0]!.n).toBe(big.length)
    expect(r.rows[0]!.h).toBe(md5(big))
    expect(r.rows[0]!.v === big).toBe(true)

    const bytes = Buffer.alloc(5 * 1024 * 1024)
    for (let k = 0; k < bytes.length; k++) bytes[k] = (k * 31 + (k >> 8)) & 0xff
    const b = await client.query<{ v: Buffer; h: string }>("SELECT $1::bytea AS v, md5($1::bytea) AS h", [bytes])
    expect(b.rows[0]!.h).toBe(createHash("md5").update(bytes).digest("hex"))
    expect(Buffer.compare(b.rows[0]!.v, bytes)).toBe(0)
    await usable(client)
  }, 60_000)

  it("an empty query string gets EmptyQueryResponse and the session carries on", async () => {
    const r = await client.query("")
    expect(r.command).toBeNull()
    expect(r.rows).toEqual([])
    await usable(client)
  })

  it("20 concurrent connections each run 50 queries and see only their own results", async () => {
    const clients = await Promise.all(Array.from({ length: 20 }, () => connectClient()))
    expect(new Set(clients.map((c) => c.processID)).size).toBe(20)
    const sums = await Promise.all(
      clients.map(async (c, k) => {
        let sum = 0
        for (let i = 0; i < 50; i++) sum += (await c.query<{ v: number }>("SELECT $1::int * 1000 + $2::int AS v", [k, i])).rows[0]!.v
        return sum
      })
    )
    expect(sums).toEqual(clients.map((_, k) => 50 * k * 1000 + (49 * 50) / 2))
    const pids = await Promise.all(clients.map(backendPid))
    expect(new Set(pids).size).toBe(20)
    await Promise.all(clients.map((c) => c.end()))
    open.splice(0, open.length, ...open.filter((c) => !clients.includes(c as FullClient)))
  })

  it("a client that vanishes mid-query takes its server session with it", async () => {
    const victim = await connectClient()
    const monitor = await connectClient()
    const pid = await backendPid(victim)
    // Lets the backend notice a closed socket while it sleeps (PG 14+, user-settable).
    await victim.query("SET client_connection_check_interval = '100ms'")
    void victim.query("SELECT pg_sleep(30)").catch(() => {})
    await waitUntilRunning(monitor, pid, "pg_sleep(30)")
    ;(victim as unknown as { connection: { stream: import("node:net").Socket } }).connection.stream.destroy()
    const deadline = Date.now() + 10_000
    let still = 1
    while (still > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100))
      still = (await monitor.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1", [pid])).rows[0]!.n
    }
    expect(still).toBe(0)
  })

  /**
   * GATEWAY BUG (fails today): when the server ends a session with a FATAL ErrorResponse
   * (here idle_session_timeout, 57P05), Sluice relays it and then appends its own
   * `FATAL 08006 the connection to target "app" was lost`, so the client sees a second,
   * misleading error after the server's FATAL. Straight from PostgreSQL the client sees
   * 57P05 and then the close.
   */
  it("a session the server ends with FATAL: the client hears the server's error and nothing else, as it would directly", async () => {
    const { pg: info } = inject("servers")
    const errorsOf = async (config: pg.ClientConfig) => {
      const c = new pg.Client(config)
      const codes: Array<string | undefined> = []
      c.on("error", (e: Error & { code?: string }) => codes.push(e.code))
      const ended = new Promise<void>((r) => c.once("end", () => r()))
      await c.connect()
      await c.query("SET idle_session_timeout = '200ms'")
      await ended
      return codes
    }
    const direct = await errorsOf({ host: info.host, port: info.port, user: info.backend.user, password: info.backend.password, database: "app" })
    expect(direct[0]).toBe("57P05")
    const viaGateway = await errorsOf(gw.connection())
    expect(viaGateway).toEqual(direct)
  })

  it("kept the gateway alive and logged no unexpected failure", () => {
    expect(gw.alive()).toBe(true)
    expect(gw.logs()).not.toMatch(/session failed unexpectedly/)
  })
})
