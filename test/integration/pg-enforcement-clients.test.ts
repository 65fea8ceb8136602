/**
 * Real clients through the gateway under a policy that allows reads and blocks writes
 * (issue 3, "Proof"): psql, node-postgres (simple and extended protocol), postgres.js
 * pipelining, and pgbench. Every block is checked on the server too: the row the client
 * tried to change is unchanged when read over a direct superuser connection.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import postgres from "postgres"
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from "vitest"
import { type Gateway, startGateway, TOKEN } from "./support/gateway.ts"
import { backendEnv, closeClient, directQuery, gatewayClient, logEntries, rejection, runCommand } from "./support/policy-clients.ts"

const T = "sluice_enf_items"
const LEDGER = "sluice_enf_ledger"
/** Owned by the superuser; the backend role may only read it, so PostgreSQL itself refuses its writes. */
const LOCKED = "sluice_enf_locked"
const PGBENCH_TABLES = ["pgbench_accounts", "pgbench_branches", "pgbench_history", "pgbench_tellers"]

const LEDGER_MESSAGE = "the ledger is read-only through Sluice"
/** What a client reads for each rule: the rule's message (or Sluice's), then the rule id. */
const LEDGER_BLOCK = `${LEDGER_MESSAGE} (rule ledger-read-only)`
const WRITE_BLOCK = "statement blocked by policy (rule no-writes)"

const POLICY = {
  version: 1,
  defaults: { "*": { action: "block", message: "not allowed by policy" } },
  rules: [
    { id: "ledger-read-only", match: { classes: ["write", "copy-in"], relations: ["public.sluice_enf_ledger"] }, action: "block", message: LEDGER_MESSAGE },
    { id: "reads", match: { classes: ["read", "transaction", "utility"] }, action: "allow" },
    { id: "no-writes", match: { classes: ["write", "ddl", "copy-in"] }, action: "block" }
  ]
}

/** The server's view of the test rows, past the gateway. */
const serverRows = () => directQuery<{ id: number; v: string }>("superuser", `SELECT id, v FROM ${T} ORDER BY id`)
const ORIGINAL = [
  { id: 1, v: "one" },
  { id: 2, v: "two" },
  { id: 3, v: "three" }
]

describe("real clients under a read-only policy", () => {
  let gw: Gateway
  let dir: string
  const psql = (args: ReadonlyArray<string>, input?: string) =>
    runCommand("psql", ["-X", "-d", `host=127.0.0.1 port=${gw.port} user=ci dbname=app sslmode=disable`, ...args], {
      env: { PGPASSWORD: TOKEN },
      ...(input === undefined ? {} : { input })
    })

  const dropAll = () => directQuery("superuser", `DROP TABLE IF EXISTS ${[T, LEDGER, LOCKED, ...PGBENCH_TABLES].join(", ")}`)

  beforeAll(async () => {
    await dropAll()
    // Owned by the role the gateway logs in as, created past the gateway (which blocks DDL).
    await directQuery(
      "backend",
      `CREATE TABLE ${T} (id int PRIMARY KEY, v text NOT NULL);
       INSERT INTO ${T} VALUES (1, 'one'), (2, 'two'), (3, 'three');
       CREATE TABLE ${LEDGER} (id int PRIMARY KEY, amount int NOT NULL);
       INSERT INTO ${LEDGER} VALUES (1, 100)`
    )
    await directQuery(
      "superuser",
      `CREATE TABLE ${LOCKED} (id int PRIMARY KEY, v text); INSERT INTO ${LOCKED} VALUES (1, 'locked');
       GRANT SELECT ON ${LOCKED} TO ${inject("servers").pg.backend.user}`
    )
    gw = await startGateway(undefined, POLICY)
    dir = mkdtempSync(join(tmpdir(), "sluice-enf-"))
  })

  afterAll(async () => {
    await dropAll()
    await gw?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  describe("psql", () => {
    it("reads pass; a write gets ERROR 42501 with the rule's message, and the row is unchanged on the server", async () => {
      const read = await psql(["-At", "-c", `SELECT v FROM ${T} WHERE id = 1`])
      expect(read.stderr).toBe("")
      expect(read.stdout.trim()).toBe("one")

      const write = await psql(["-At", "-v", "VERBOSITY=verbose", "-c", `UPDATE ${T} SET v = 'changed' WHERE id = 1`])
      expect(write.code).toBe(1)
      expect(write.stdout).toBe("")
      expect(write.stderr.split("\n")[0]).toBe(`ERROR:  42501: ${WRITE_BLOCK}`)
      // The block is raised through the server, but the PL/pgSQL context is not shown to the client.
      expect(write.stderr).not.toMatch(/CONTEXT|PL\/pgSQL|inline_code_block|DO \$sluice/)

      const ledger = await psql(["-At", "-v", "VERBOSITY=verbose", "-c", `DELETE FROM ${LEDGER}`])
      expect(ledger.stderr.split("\n")[0]).toBe(`ERROR:  42501: ${LEDGER_BLOCK}`)
      expect(await serverRows()).toEqual(ORIGINAL)
      expect(await directQuery("superuser", `SELECT count(*)::int AS n FROM ${LEDGER}`)).toEqual([{ n: 1 }])
    })

    it("a script: BEGIN; read; blocked write; read (25P02); ROLLBACK; read prints what PostgreSQL's own refusal prints", async () => {
      // The same script twice: through the gateway, where the policy blocks the UPDATE, and
      // directly as the backend role, which lacks UPDATE on LOCKED, so the server refuses it
      // with 42501 itself. Everything but the error's text must be the same.
      const script = join(dir, "txn.sql")
      writeFileSync(
        script,
        [
          `BEGIN;`,
          `SELECT v FROM ${T} WHERE id = 2;`,
          `UPDATE ${LOCKED} SET v = 'changed' WHERE id = 1;`,
          `\\echo sqlstate :LAST_ERROR_SQLSTATE`,
          `SELECT v FROM ${T} WHERE id = 3;`,
          `\\echo sqlstate :LAST_ERROR_SQLSTATE`,
          `ROLLBACK;`,
          `SELECT v FROM ${T} WHERE id = 3;`,
          ``
        ].join("\n")
      )
      const viaGateway = await psql(["-At", "-f", script])
      const { dsn, env } = backendEnv()
      const direct = await runCommand("psql", ["-X", "-d", dsn, "-At", "-f", script], { env })
      expect(viaGateway.stdout.trim().split("\n")).toEqual(["BEGIN", "two", "sqlstate 42501", "sqlstate 25P02", "ROLLBACK", "three"])
      expect(viaGateway.stdout).toBe(direct.stdout)
      expect(viaGateway.code).toBe(0)
      expect(direct.code).toBe(0)
      expect(direct.stderr).toContain(`ERROR:  permission denied for table ${LOCKED}`)
      expect(viaGateway.stderr).toBe(direct.stderr.replace(`permission denied for table ${LOCKED}`, WRITE_BLOCK))
      expect(viaGateway.stderr.match(/ERROR:/g)).toHaveLength(2)
      expect(await directQuery("superuser", `SELECT v FROM ${LOCKED}`)).toEqual([{ v: "locked" }])
    })

    it("with ON_ERROR_STOP a blocked statement stops the script with psql's exit status 3; nothing after it runs", async () => {
      const script = join(dir, "stop.sql")
      writeFileSync(
        script,
        [`SELECT 'before';`, `INSERT INTO ${T} VALUES (4, 'four');`, `\\echo after`, `SELECT 'not reached';`, ``].join("\n")
      )
      const r = await psql(["-At", "-v", "ON_ERROR_STOP=1", "-f", script])
      expect(r.code).toBe(3)
      expect(r.stdout.trim()).toBe("before")
      expect(r.stderr).toMatch(/ERROR:  statement blocked by policy \(rule no-writes\)/)
      // Without ON_ERROR_STOP psql carries on, as it does after any server error.
      const on = await psql(["-At", "-f", script])
      expect(on.code).toBe(0)
      expect(on.stdout.trim().split("\n")).toEqual(["before", "after", "not reached"])
      expect(await serverRows()).toEqual(ORIGINAL)
    })

    it("a multi-statement -c stops at the blocked statement: the ones before it are rolled back with it, as a server error would", async () => {
      // One simple Query: an implicit transaction, so the error undoes the earlier statement too.
      const r = await psql(["-At", "-c", `SELECT 'a'; UPDATE ${T} SET v = 'x' WHERE id = 3; SELECT 'never'`])
      expect(r.code).toBe(1)
      expect(r.stdout).not.toContain("never")
      expect(r.stderr).toMatch(/ERROR:  statement blocked by policy \(rule no-writes\)/)
      expect(await serverRows()).toEqual(ORIGINAL)
    })
  })

  describe("node-postgres", () => {
    /** A fresh client per test (a broken session cannot spill into the next test); a hung query fails in 5 s. */
    let client: pg.Client
    beforeEach(async () => {
      client = await gatewayClient(gw)
    })
    afterEach(async () => {
      await closeClient(client)
    })

    const usable = async (c = client) => {
      expect((await c.query(`SELECT v FROM ${T} WHERE id = 1`)).rows).toEqual([{ v: "one" }])
      expect(c.getTransactionStatus()).toBe("I")
    }
    /** The extended protocol even without parameters (Parse, Bind, Describe, Execute, Sync). */
    const extended = (c: pg.Client, text: string, values: Array<unknown> = []) => c.query({ text, values, queryMode: "extended" } as pg.QueryConfig)

    it("simple protocol: a blocked write rejects with 42501 and the rule's message; the client stays usable", async () => {
      const e = await rejection(client.query(`UPDATE ${T} SET v = 'x' WHERE id = 1`))
      expect(e).toEqual({ code: "42501", message: WRITE_BLOCK, severity: "ERROR" })
      await usable()
      const l = await rejection(client.query(`INSERT INTO ${LEDGER} VALUES (2, 5)`))
      expect(l).toMatchObject({ code: "42501", message: LEDGER_BLOCK })
      await usable()
      expect(await serverRows()).toEqual(ORIGINAL)
    })

    /**
     * A regression case: node-postgres sends Parse, Bind, Describe, Execute and Sync in one
     * write, so the skip to Sync after the blocked Parse must end at that batch's own Sync,
     * or the client's next request would be swallowed (no answer, or a bare ReadyForQuery).
     */
    it("extended protocol: a blocked parameterised write rejects with 42501; the next simple query is answered", async () => {
      const e = await rejection(client.query(`UPDATE ${T} SET v = $1 WHERE id = $2`, ["x", 1]))
      expect(e).toEqual({ code: "42501", message: WRITE_BLOCK, severity: "ERROR" })
      const next = await client.query(`SELECT v FROM ${T} WHERE id = 1`).then(
        (r) => ({ rows: r.rows }),
        (err: Error) => ({ error: err.message })
      )
      expect(next).toEqual({ rows: [{ v: "one" }] })
    })

    it("extended protocol: after a blocked write, extended reads and further blocks answer correctly ", async () => {
      expect(await rejection(client.query(`UPDATE ${T} SET v = $1 WHERE id = $2`, ["x", 1]))).toMatchObject({ code: "42501", message: WRITE_BLOCK })
      expect((await client.query(`SELECT v FROM ${T} WHERE id = $1`, [2])).rows).toEqual([{ v: "two" }])
      expect(await rejection(client.query(`UPDATE ${LEDGER} SET amount = $1`, [0]))).toMatchObject({ code: "42501", message: LEDGER_BLOCK })
      expect((await client.query(`SELECT v FROM ${T} WHERE id = $1`, [3])).rows).toEqual([{ v: "three" }])
      await usable()
      expect(await serverRows()).toEqual(ORIGINAL)
    })

    it("named prepared statements: a blocked one is never created on the server; an allowed one (new name, then the same name) works ", async () => {
      const upd = { name: "enf_upd", text: `UPDATE ${T} SET v = $1 WHERE id = $2` }
      expect(await rejection(client.query({ ...upd, values: ["x", 1] }))).toMatchObject({ code: "42501", message: WRITE_BLOCK })
      // Again: node-postgres saw no ParseComplete, so it parses again, and it is blocked again.
      expect(await rejection(client.query({ ...upd, values: ["y", 2] }))).toMatchObject({ code: "42501", message: WRITE_BLOCK })
      const sel = { name: "enf_sel", text: `SELECT v FROM ${T} WHERE id = $1` }
      expect((await client.query({ ...sel, values: [1] })).rows).toEqual([{ v: "one" }])
      expect((await client.query({ ...sel, values: [3] })).rows).toEqual([{ v: "three" }]) // Bind/Execute of the parsed statement
      // The blocked name does not exist on the server: a Parse under it with other text succeeds (no 42P05).
      const c2 = await gatewayClient(gw)
      try {
        expect(await rejection(c2.query({ name: "reuse", text: `DELETE FROM ${T} WHERE id = $1`, values: [1] }))).toMatchObject({ code: "42501" })
        expect((await c2.query({ name: "reuse", text: `SELECT count(*)::int AS n FROM ${T} WHERE id > $1`, values: [0] })).rows).toEqual([{ n: 3 }])
        // sluice_block is Sluice's own: the raise that carried out the block, parsed beside the client's statements.
        expect((await c2.query(`SELECT name FROM pg_prepared_statements WHERE name <> 'sluice_block' ORDER BY name`)).rows).toEqual([{ name: "reuse" }])
      } finally {
        await closeClient(c2)
      }
      await usable()
      expect(await serverRows()).toEqual(ORIGINAL)
    })

    for (const mode of ["simple", "extended"] as const) {
      it(`in a transaction (${mode}): a block fails the server's transaction (25P02 next); ROLLBACK and further work succeed${mode === "extended" ? " " : ""}`, async () => {
        const q = (sql: string) => (mode === "simple" ? client.query(sql) : extended(client, sql))
        await q("BEGIN")
        expect((await q(`SELECT v FROM ${T} WHERE id = 1`)).rows).toEqual([{ v: "one" }])
        expect(await rejection(q(`UPDATE ${T} SET v = 'x' WHERE id = 1`))).toMatchObject({ code: "42501", message: WRITE_BLOCK })
        // The server's own transaction failed, exactly as if it had raised the error itself
        // (node-postgres rejects on ErrorResponse, so the status is read after the next query).
        expect(await rejection(q(`SELECT v FROM ${T} WHERE id = 2`))).toMatchObject({
          code: "25P02",
          message: "current transaction is aborted, commands ignored until end of transaction block"
        })
        expect(client.getTransactionStatus()).toBe("E")
        expect((await q("ROLLBACK")).command).toBe("ROLLBACK")
        expect(client.getTransactionStatus()).toBe("I")
        await usable()
        await q("BEGIN")
        expect((await q(`SELECT count(*)::int AS n FROM ${T}`)).rows).toEqual([{ n: 3 }])
        await q("COMMIT")
        await usable()
        expect(await serverRows()).toEqual(ORIGINAL)
      })
    }

    it("a block inside a transaction is not undone by COMMIT: the server answers ROLLBACK", async () => {
      await client.query("BEGIN")
      await client.query(`SELECT 1`)
      expect(await rejection(client.query(`DELETE FROM ${T}`))).toMatchObject({ code: "42501" })
      const commit = await client.query("COMMIT")
      expect(commit.command).toBe("ROLLBACK")
      await usable()
      expect(await serverRows()).toEqual(ORIGINAL)
    })
  })

  describe("postgres.js pipelining (max: 1, so every query shares one connection)", () => {
    let sql: postgres.Sql
    beforeEach(async () => {
      sql = postgres({ ...gw.connection(), username: "ci", max: 1, onnotice: () => {} })
      await sql`SELECT 1` // connected, types fetched
    })
    afterEach(async () => {
      await sql.end({ timeout: 2 })
    })
    type Settled = ReadonlyArray<PromiseSettledResult<ReadonlyArray<Record<string, unknown>>>>
    const outcomes = (settled: Settled) =>
      settled.map((s) => (s.status === "fulfilled" ? [...s.value] : { code: (s.reason as { code?: string }).code, message: (s.reason as Error).message }))
    /** Each query in flight at once; a query the gateway never answers fails the batch after 5 s. */
    const together = (queries: ReadonlyArray<Promise<ReadonlyArray<Record<string, unknown>>>>) =>
      Promise.race([
        Promise.allSettled(queries),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error("the pipeline was not answered within 5 s")), 5_000))
      ])

    it("five queries in flight with a blocked one in the middle: the others succeed, in order", async () => {
      const settled = await together([
        sql`SELECT v FROM ${sql(T)} WHERE id = ${1}`,
        sql`SELECT v FROM ${sql(T)} WHERE id = ${2}`,
        sql`UPDATE ${sql(T)} SET v = ${"piped"} WHERE id = ${3}`,
        sql`SELECT v FROM ${sql(T)} WHERE id = ${3}`,
        sql`SELECT count(*)::int AS n FROM ${sql(T)}`
      ])
      expect(outcomes(settled)).toEqual([[{ v: "one" }], [{ v: "two" }], { code: "42501", message: WRITE_BLOCK }, [{ v: "three" }], [{ n: 3 }]])
      expect(await serverRows()).toEqual(ORIGINAL)
    })

    it("after a pipelined block, the next pipeline (statements now prepared) is answered in full ", async () => {
      const first = await together([sql`SELECT v FROM ${sql(T)} WHERE id = ${1}`, sql`UPDATE ${sql(T)} SET v = ${"p"} WHERE id = ${3}`])
      expect(outcomes(first)).toEqual([[{ v: "one" }], { code: "42501", message: WRITE_BLOCK }])
      const again = await together([
        sql`SELECT v FROM ${sql(T)} WHERE id = ${2}`,
        sql`UPDATE ${sql(T)} SET v = ${"p"} WHERE id = ${3}`,
        sql`SELECT 42 AS x`
      ])
      expect(outcomes(again)).toEqual([[{ v: "two" }], { code: "42501", message: WRITE_BLOCK }, [{ x: 42 }]])
      expect(await serverRows()).toEqual(ORIGINAL)
    })
  })

  describe("pgbench", () => {
    const sums = () =>
      directQuery<{ a: string; b: string; t: string; h: number }>(
        "superuser",
        `SELECT (SELECT sum(abalance) FROM pgbench_accounts)::text AS a, (SELECT sum(bbalance) FROM pgbench_branches)::text AS b,
                (SELECT sum(tbalance) FROM pgbench_tellers)::text AS t, (SELECT count(*)::int FROM pgbench_history) AS h`
      )
    const bench = (args: ReadonlyArray<string>) =>
      runCommand("pgbench", [...args, `host=127.0.0.1 port=${gw.port} user=ci dbname=app sslmode=disable`], { env: { PGPASSWORD: TOKEN }, timeoutMs: 60_000 })

    beforeAll(async () => {
      // Initialised past the gateway, as the role the gateway logs in as (the policy blocks DDL).
      const { dsn, env } = backendEnv()
      const init = await runCommand("pgbench", ["-i", "-s", "1", "-q", dsn], { env, timeoutMs: 60_000 })
      expect(init.code, init.stderr).toBe(0)
      // Some activity, so that balances are not all zero.
      await directQuery("backend", "UPDATE pgbench_accounts SET abalance = aid % 97 - 40 WHERE aid % 13 = 0")
    }, 90_000)

    for (const mode of ["simple", "prepared"] as const) {
      it(`-S (select-only) -M ${mode} passes a read-only policy with 0 failed transactions`, async () => {
        const r = await bench(["-n", "-S", "-T", "2", "-c", "2", "-j", "1", "-M", mode])
        expect(r.code, r.stderr).toBe(0)
        expect(r.stderr).not.toMatch(/error|abort/i)
        expect(r.stdout).toMatch(/number of failed transactions: 0 \(0\.000%\)/)
        const processed = Number(/number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1])
        expect(processed).toBeGreaterThan(50)
        console.log(`[pgbench -S -M ${mode} under the read-only policy] ${processed} transactions in 2 s`)
      }, 30_000)
    }

    for (const mode of ["simple", "prepared"] as const) {
      it(`the default TPC-B-like script (-M ${mode}) is refused at its first UPDATE; the balances on the server are unchanged`, async () => {
        const before = await sums()
        const r = await bench(["-n", "-t", "5", "-c", "2", "-j", "1", "-M", mode])
        const output = r.stdout + r.stderr
        // pgbench aborts each client on an error that is not a serialization or deadlock failure.
        expect(r.code, output).toBe(2)
        const aborted = r.stderr.split("\n").filter((l) => /aborted in command 5 /.test(l))
        expect(aborted, output).toHaveLength(2)
        if (mode === "simple") {
          for (const line of aborted) expect(line).toMatch(/ERROR:  statement blocked by policy \(rule no-writes\)$/)
        } else {
          // -M prepared prepares the UPDATE (Parse, Sync) when it first runs it: that is what is
          // refused, and pgbench reports it; its Bind/Execute then finds no such statement, as
          // against a server that refused the Parse.
          expect(r.stderr.match(/error: ERROR:  statement blocked by policy \(rule no-writes\)$/gm), output).toHaveLength(2)
          for (const line of aborted) expect(line).toMatch(/ERROR:  prepared statement "[^"]+" does not exist$/)
        }
        expect(r.stdout).toMatch(/number of transactions actually processed: 0\/10/)
        expect(await sums()).toEqual(before)
        expect(before[0]!.h).toBe(0)
      }, 30_000)
    }

    it("without -n, pgbench's own TRUNCATE of pgbench_history is refused and it carries on (its vacuum is a utility statement)", async () => {
      const r = await bench(["-S", "-t", "3", "-c", "1"])
      expect(r.code).toBe(0)
      expect(r.stderr).toMatch(/ERROR:  statement blocked by policy \(rule no-writes\)/)
      expect(r.stderr).toMatch(/ignoring this error and continuing anyway/)
      expect(r.stdout).toMatch(/number of failed transactions: 0/)
    }, 30_000)
  })

  it("logs every block with its rule id and the statement", () => {
    const blocks = logEntries(gw.logs(), "statement blocked")
    expect(blocks.length).toBeGreaterThan(10)
    const seen = blocks.map((b) => `${/rule: '([^']*)'/.exec(b)?.[1]} ${/statement: (['"])(.*)\1$/m.exec(b)?.[2]}`)
    expect(seen).toContain(`no-writes UPDATE ${T} SET v = 'changed' WHERE id = 1`)
    expect(seen).toContain(`ledger-read-only DELETE FROM ${LEDGER}`)
    expect(seen).toContain(`ledger-read-only INSERT INTO ${LEDGER} VALUES (2, 5)`)
    expect(seen.some((l) => /^no-writes UPDATE pgbench_accounts SET abalance/.test(l))).toBe(true)
    expect(seen.every((l) => /^(no-writes|ledger-read-only) /.test(l))).toBe(true)
    expect(gw.alive()).toBe(true)
    expect(gw.logs()).not.toMatch(/session failed unexpectedly/)
  })
})
