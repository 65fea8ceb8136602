/**
 * A psycopg 3 session (Debian's python3-psycopg over libpq) through the real gateway
 * CLI against the harness cluster. test/integration/support/psycopg_session.py runs
 * every section and prints a JSON summary; each test below asserts one section.
 */
import { execFile } from "node:child_process"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { type Gateway, startGateway, TOKEN } from "./support/gateway.ts"

const PYTHON = "/usr/bin/python3"
const SCRIPT = new URL("./support/psycopg_session.py", import.meta.url).pathname

interface Outcome {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  readonly ms: number
}

const runPython = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Promise<Outcome> =>
  new Promise((resolve) => {
    const started = Date.now()
    execFile(PYTHON, args, { env: { ...process.env, ...env }, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : null
      resolve({ code, stdout, stderr, ms: Date.now() - started })
    })
  })

type Summary = Record<string, any>

describe("psycopg 3 through the gateway", () => {
  let gw: Gateway
  let session: Outcome
  let summary: Summary

  const dropTables = async () => {
    const { pg: info } = inject("servers")
    const c = new pg.Client({ host: info.host, port: info.port, user: info.superuser.user, password: info.superuser.password, database: "app" })
    await c.connect()
    await c.query("DROP TABLE IF EXISTS sluice_psycopg_items, sluice_psycopg_copy")
    await c.end()
  }

  beforeAll(async () => {
    gw = await startGateway()
    await dropTables()
    const dsn = `host=127.0.0.1 port=${gw.port} user=ci dbname=app sslmode=disable connect_timeout=10`
    session = await runPython([SCRIPT, dsn], { PGPASSWORD: TOKEN })
    try {
      summary = JSON.parse(session.stdout) as Summary
    } catch {
      summary = {}
    }
    console.log(`[psycopg] session script ran in ${session.ms} ms (psycopg ${summary.psycopg}, libpq ${summary.libpq})`)
    const failed = Object.entries(summary).filter(([, v]) => typeof v === "object" && v !== null && "error" in v)
    if (session.code !== 0 || session.stderr !== "" || failed.length > 0) {
      console.log(`[psycopg] exit ${session.code}\nstderr:\n${session.stderr}\nfailed sections:\n${failed.map(([k, v]) => `${k}: ${v.trace}`).join("\n")}`)
    }
  }, 90_000)

  afterAll(async () => {
    await dropTables().catch(() => {})
    await gw?.stop()
  })

  /** A section's result; a section that raised shows its error in the failure. */
  const sectionOf = (name: string) => {
    const value = summary[name]
    expect(value, `section ${name}`).toBeDefined()
    expect(value?.error, `section ${name} raised:\n${value?.trace ?? ""}`).toBeUndefined()
    return value
  }

  it("ran: python3-psycopg imports, the script exits 0 and prints a JSON summary", async () => {
    const probe = await runPython(["-c", "import psycopg; print(psycopg.__version__)"])
    expect(probe.code, probe.stderr).toBe(0)
    expect(session.stderr).toBe("")
    expect(session.code).toBe(0)
    expect(summary.psycopg).toBe(probe.stdout.trim())
  })

  it("connects as the target's role; the BackendKeyData pid is Sluice's, not the server's", () => {
    expect(sectionOf("connect")).toEqual({ user: "sluice_backend", database: "app", application_name: "sluice-psycopg-test", key_pid_differs: true, status_in_transaction: "INTRANS", status_after_commit: "IDLE" })
  })

  it("binds parameters server-side (%s → $n) and converts every type back", () => {
    expect(sectionOf("params")).toEqual({
      n: 42,
      s: "héllo ✓!",
      was_null: true,
      d: "24691357802469135781.0",
      day: "2024-02-29",
      arr: ["a", "b,c", 'd"e'],
      json: { k: [1, "two"] },
      server_saw: "SELECT current_query(), $1::int"
    })
  })

  it("executemany inserts 500 rows", () => {
    expect(sectionOf("executemany")).toEqual({ count: 500, sum: 50 * 45 })
  })

  it("transactions: commit, rollback on exception, 22012 then 25P02 until ROLLBACK, savepoints", () => {
    expect(sectionOf("transactions")).toEqual({
      first_error: "22012",
      status_after_error: "INERROR",
      next_statement: "25P02",
      status_after_rollback: "IDLE",
      savepoint_error: "23505",
      ids: [1000, 1003, 1004]
    })
  })

  it("cursor.copy: COPY FROM STDIN 3000 rows, COPY TO STDOUT returns them equal, CSV with header", () => {
    expect(sectionOf("copy_text")).toEqual({ loaded: 3000, round_trip_equal: true, rows_out: 3000, csv: "id,payload\n0,payload-0-\n1,payload-1-z\n2,payload-2-zz\n" })
  })

  it("binary COPY in and out: every bytea byte value survives", () => {
    expect(sectionOf("copy_binary")).toEqual({ rows: 500, round_trip_equal: true, md5_equal: true })
  })

  it("a binary cursor gets binary results that decode to exactly the values sent", () => {
    expect(sectionOf("binary_cursor")).toEqual({ result_format: 1, mismatches: [], columns: 13 })
  })

  it("prepare=True prepares once on the server and executes ten times", () => {
    expect(sectionOf("prepared")).toEqual({ results: [0, 1, 4, 9, 16, 25, 36, 49, 64, 81], prepared_on_server: 1 })
  })

  it("pipeline mode: 200 statements in one pipeline in order; an error aborts the pipeline and the session recovers", () => {
    expect(sectionOf("pipeline")).toEqual({ supported: true, values_in_order: true, pipeline_error: "22012", after_error: "recovered", leftover_rows: 0 })
  })

  it("a named (server-side) cursor fetches 5000 rows in batches", () => {
    expect(sectionOf("named_cursor")).toEqual({ count: 5000, sum: (5000 * 5001) / 2 })
  })

  it("conn.cancel() (libpq PQcancel with Sluice's key) interrupts pg_sleep(30) with 57014", () => {
    const cancel = sectionOf("cancel")
    expect(cancel.sqlstate).toBe("57014")
    expect(cancel.seconds).toBeLessThan(5)
    expect(cancel.after).toBe("alive")
  })

  it("LISTEN/NOTIFY between two psycopg sessions", () => {
    expect(sectionOf("notify")).toEqual([{ channel: "sluice_psycopg_chan", payload: "hello ✓" }])
  })

  it("errors leave the session usable", () => {
    expect(sectionOf("errors_keep_session")).toEqual({ codes: ["42601", "42P01", "22P02"], after: 42 })
  })

  it("cleaned up, and the gateway stayed alive", () => {
    expect(sectionOf("cleanup")).toBe("dropped")
    expect(gw.alive()).toBe(true)
    expect(gw.logs()).not.toMatch(/session failed unexpectedly/)
  })
})
