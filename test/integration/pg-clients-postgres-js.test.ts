/**
 * postgres.js (porsager) through the real gateway CLI against the harness cluster: it
 * pipelines extended-protocol queries on one connection and prepares statements by
 * default, so the gateway sees many frames per read batch and named statements reused.
 * A small TCP tap between the client and the gateway counts Syncs against
 * ReadyForQuerys to prove the queries really were in flight together.
 */
import { createServer, connect, type Server, type Socket } from "node:net"
import postgres from "postgres"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { freePort } from "../harness/free-port.ts"
import { type Gateway, startGateway, TOKEN } from "./support/gateway.ts"

const T = "sluice_pgjs_items"

/**
 * Counts the PG frames of one message direction as bytes pass: `onType` sees the type byte
 * of every whole frame. The client's first frame (the startup packet) has no type byte.
 */
const frameCounter = (untypedFirst: boolean, onType: (type: number) => void) => {
  let buffered = Buffer.alloc(0)
  let untyped = untypedFirst
  return (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk])
    for (;;) {
      const header = untyped ? 4 : 5
      if (buffered.length < header) return
      const length = buffered.readInt32BE(untyped ? 0 : 1)
      const total = untyped ? length : length + 1
      if (buffered.length < total) return
      if (!untyped) onType(buffered[0]!)
      untyped = false
      buffered = buffered.subarray(total)
    }
  }
}

/**
 * A transparent TCP proxy that watches the protocol: Syncs sent by the client minus
 * ReadyForQuery answers received is the number of extended-protocol requests in flight.
 */
class Tap {
  readonly server: Server
  readonly sockets = new Set<Socket>()
  inFlight = 0
  maxInFlight = 0

  constructor(server: Server) {
    this.server = server
  }

  static async start(targetPort: number): Promise<{ tap: Tap; port: number }> {
    const port = await freePort()
    const server = createServer()
    const tap = new Tap(server)
    server.on("connection", (down) => {
      const up = connect({ host: "127.0.0.1", port: targetPort })
      tap.sockets.add(down).add(up)
      const fromClient = frameCounter(true, (type) => {
        if (type === 0x53 /* Sync */) tap.maxInFlight = Math.max(tap.maxInFlight, ++tap.inFlight)
      })
      const fromServer = frameCounter(false, (type) => {
        if (type === 0x5a /* ReadyForQuery */) tap.inFlight = Math.max(0, tap.inFlight - 1)
      })
      down.on("data", (d: Buffer) => {
        fromClient(d)
        up.write(d)
      })
      up.on("data", (d: Buffer) => {
        fromServer(d)
        down.write(d)
      })
      const close = () => (down.destroy(), up.destroy())
      down.on("close", close).on("error", close)
      up.on("close", close).on("error", close)
    })
    await new Promise<void>((r) => server.listen(port, "127.0.0.1", r))
    return { tap, port }
  }

  /** Starts a measurement of the largest number of requests in flight. */
  mark(): void {
    this.maxInFlight = this.inFlight
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise((r) => this.server.close(r))
  }
}

describe("postgres.js through the gateway", () => {
  let gw: Gateway
  let tap: Tap
  let sql: postgres.Sql
  let notices: Array<string>

  const superuserQuery = async (text: string) => {
    const { pg: info } = inject("servers")
    const c = new pg.Client({ host: info.host, port: info.port, user: info.superuser.user, password: info.superuser.password, database: "app" })
    await c.connect()
    try {
      await c.query(text)
    } finally {
      await c.end()
    }
  }

  beforeAll(async () => {
    gw = await startGateway()
    await superuserQuery(`DROP TABLE IF EXISTS ${T}`)
    const started = await Tap.start(gw.port)
    tap = started.tap
    notices = []
    sql = postgres({
      host: "127.0.0.1",
      port: started.port,
      user: "ci",
      password: TOKEN,
      database: "app",
      ssl: false,
      max: 1,
      prepare: true,
      connect_timeout: 10,
      connection: { application_name: "sluice-pgjs-test" },
      onnotice: (n) => notices.push(String(n.message))
    })
    await sql`CREATE TABLE ${sql(T)} (id int PRIMARY KEY, name text NOT NULL)`
  })

  afterAll(async () => {
    await sql?.end({ timeout: 5 })
    await tap?.stop()
    await superuserQuery(`DROP TABLE IF EXISTS ${T}`).catch(() => {})
    await gw?.stop()
  })

  it("200 pipelined extended queries on one connection come back in order", async () => {
    // postgres.js holds queries of a statement it has not described yet until the first
    // one is answered, so describe it first; then the 200 Bind/Execute/Syncs go out together.
    const [warm] = await sql<Array<{ i: number; pid: number }>>`select ${-1}::int as i, pg_backend_pid() as pid`
    const pid = warm?.pid
    tap.mark()
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => sql<Array<{ i: number; pid: number }>>`select ${i}::int as i, pg_backend_pid() as pid`))
    expect(results.map((r) => r[0]?.i)).toEqual(Array.from({ length: 200 }, (_, i) => i))
    // One connection (max: 1)...
    expect(new Set(results.map((r) => r[0]?.pid))).toEqual(new Set([pid]))
    // ...and many requests were in flight at once (postgres.js caps a pipeline at 100).
    console.log(`[postgres.js] up to ${tap.maxInFlight} requests in flight`)
    expect(tap.maxInFlight).toBeGreaterThanOrEqual(20)
  })

  it("a failing query in a pipeline rejects alone; the queries after it are answered", async () => {
    const settled = await Promise.allSettled(
      Array.from({ length: 60 }, (_, i) =>
        i === 20 ? sql`select 1/0 as boom` : i === 40 ? sql`select * from sluice_pgjs_no_such_table` : sql<Array<{ i: number }>>`select ${i}::int as i`
      )
    )
    settled.forEach((s, i) => {
      if (i === 20) expect(s.status === "rejected" && (s.reason as postgres.PostgresError).code).toBe("22012")
      else if (i === 40) expect(s.status === "rejected" && (s.reason as postgres.PostgresError).code).toBe("42P01")
      else expect(s.status === "fulfilled" && (s.value as Array<{ i: number }>)[0]?.i).toBe(i)
    })
    expect(await sql`select 'after' as a`).toEqual([{ a: "after" }])
  })

  it("prepares statements once and reuses them (prepare: true)", async () => {
    for (let i = 0; i < 20; i++) {
      const [row] = await sql<Array<{ name: string }>>`select ${`name-${i}`}::text as name`
      expect(row?.name).toBe(`name-${i}`)
    }
    const prepared = await sql<Array<{ n: number }>>`select count(*)::int as n from pg_prepared_statements where statement = 'select $1::text as name'`
    expect(prepared).toEqual([{ n: 1 }])
  })

  it("sql.begin commits on success and rolls back when the callback throws", async () => {
    const inserted = await sql.begin(async (tx) => {
      await tx`insert into ${sql(T)} ${sql([{ id: 1, name: "one" }, { id: 2, name: "two" }])}`
      const [row] = await tx<Array<{ n: number }>>`select count(*)::int as n from ${sql(T)}`
      return row?.n
    })
    expect(inserted).toBe(2)

    const failure = await sql
      .begin(async (tx) => {
        await tx`insert into ${sql(T)} values (3, 'three')`
        await tx`insert into ${sql(T)} values (1, 'duplicate')`
      })
      .catch((e: postgres.PostgresError) => e)
    expect((failure as postgres.PostgresError).code).toBe("23505")

    let afterError: string | undefined
    const aborted = await sql
      .begin(async (tx) => {
        await tx`insert into ${sql(T)} values (4, 'four')`
        await tx`select 1/0`.catch(() => {})
        // The transaction is aborted now: the server refuses everything until the rollback.
        afterError = await tx`select 1`.then(
          () => "succeeded",
          (e: postgres.PostgresError) => e.code
        )
      })
      .catch((e: postgres.PostgresError) => e)
    expect(afterError).toBe("25P02")
    // postgres.js rolls back and reports the first error of the block.
    expect((aborted as postgres.PostgresError).code).toBe("22012")

    expect(await sql`select id, name from ${sql(T)} order by id`).toEqual([
      { id: 1, name: "one" },
      { id: 2, name: "two" }
    ])
  })

  it("savepoints inside sql.begin roll back only their part", async () => {
    await sql.begin(async (tx) => {
      await tx`insert into ${sql(T)} values (10, 'kept')`
      await tx.savepoint(async (sp) => {
        await sp`insert into ${sql(T)} values (11, 'undone')`
        throw new Error("undo the savepoint")
      }).catch(() => {})
      await tx`insert into ${sql(T)} values (12, 'kept too')`
    })
    expect(await sql`select id from ${sql(T)} where id >= 10 order by id`).toEqual([{ id: 10 }, { id: 12 }])
  })

  it("a cursor reads a large result in portal-suspended batches", async () => {
    let seen = 0
    let batches = 0
    let outOfOrder = 0
    for await (const rows of sql<Array<{ g: number }>>`select g from generate_series(1, 10000) g order by g`.cursor(1000)) {
      batches++
      for (const r of rows) if (r.g !== ++seen) outOfOrder++
    }
    expect(seen).toBe(10000)
    expect(outOfOrder).toBe(0)
    expect(batches).toBe(10)
  })

  it("sql.unsafe runs a multi-statement simple query; notices reach the client", async () => {
    const r = await sql.unsafe(`select 1 as a; do $$ begin raise notice 'hello from plpgsql'; end $$; select 2 as b`)
    // postgres.js starts a new result per RowDescription, so the DO (no rows) adds none.
    expect(r).toEqual([[{ a: 1 }], [{ b: 2 }]])
    expect(notices).toContain("hello from plpgsql")
  })

  it("keeps the gateway alive", () => {
    expect(gw.alive()).toBe(true)
    expect(gw.logs()).not.toMatch(/session failed unexpectedly/)
  })
})
