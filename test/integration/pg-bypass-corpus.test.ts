/**
 * The bypass corpus (issue 3, "Proof"): attacks on Sluice's PostgreSQL enforcement, each
 * run through the real gateway CLI, each judged by the server's state read directly as
 * the superuser — rows still there, tables and schemas not dropped, sequences not
 * advanced, no row locks taken, no files written, no backend terminated, no role or
 * privilege changed, no secret row sent to the client — and not only by the error the
 * client got. Where Sluice blocks, the client must get SQLSTATE 42501 from the rule that
 * should decide, and the session must stay usable.
 *
 * The simple-protocol cases are data (bypass/corpus.ts); the cases below them need other
 * frames: the extended protocol (node-postgres and raw Parse/Bind/Execute/Sync), portals,
 * the function call protocol, pipelining, and another client encoding.
 */
import { randomBytes } from "node:crypto"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { FrontendMessage } from "../../src/codecs/pg/frontend.ts"
import { CORPUS, type Case, type Mutable, type Step } from "./bypass/corpus.ts"
import {
  backendClient,
  fileExists,
  ROLE,
  S,
  SECRET,
  type SentinelFiles,
  type ServerState,
  sentinelFiles,
  setupSql,
  snapshot,
  superuserClient,
  teardownSql,
  VICTIM
} from "./bypass/fixture.ts"
import { MAIN_POLICY, MAX_STATEMENT_BYTES, UNKNOWN_ALLOWED_POLICY } from "./bypass/policies.ts"
import { type Answer, copyFrames, openSession, pbe, rawQueryFrame, readAnswer, sendAll, simpleQuery, SYNC } from "./bypass/wire.ts"
import { type Gateway, startGateway } from "./support/gateway.ts"
import type { RawClient } from "./support/raw-client.ts"

const DEL = `DELETE FROM ${S}.accounts`
const RULE_SUFFIX = /\(rule [A-Za-z0-9_.:*-]+\)$/

describe("bypass corpus: PostgreSQL enforcement", () => {
  let gw: Gateway
  let su: pg.Client
  let victim: pg.Client
  let victimPid: number
  let files: SentinelFiles
  let largeObjectsBefore: Array<number> = []
  const opened: Array<RawClient> = []

  const state = () => snapshot(su, files, victimPid)

  /**
   * After a case that got through: the fixture as it was at the start (tables, rows,
   * functions, schemas), no new large objects or sentinel files, a live victim backend.
   * Later cases then start from a known state, whatever an earlier bypass did.
   */
  const restoreFixture = async () => {
    await runSuperuser(setupSql())
    await su.query("SELECT lo_unlink(oid) FROM pg_largeobject_metadata WHERE NOT (oid::bigint = ANY($1::bigint[]))", [largeObjectsBefore])
    await su.query(`COPY (SELECT 1) TO PROGRAM 'rm -f ${files.program} ${files.copyTo} ${files.loExport}'`)
    const alive = (await su.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [victimPid])).rowCount === 1
    if (!alive) await openVictim()
  }

  const openVictim = async () => {
    await victim?.end().catch(() => {})
    victim = await backendClient()
    victimPid = (await victim.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid
  }

  /** A test body that restores the fixture when it fails. */
  const guarded = (body: () => Promise<void>) => async () => {
    try {
      await body()
    } catch (e) {
      await restoreFixture()
      throw e
    }
  }

  const runSuperuser = async (statements: ReadonlyArray<string> = []) => {
    for (const s of statements) await su.query(s)
  }

  const fill = (sql: string) =>
    sql
      .replaceAll("{victim}", String(victimPid))
      .replaceAll("{file:program}", files.program)
      .replaceAll("{file:copyTo}", files.copyTo)
      .replaceAll("{file:loExport}", files.loExport)

  const session = async (startup: Readonly<Record<string, string>> = {}) => {
    const c = await openSession(gw.port, startup)
    opened.push(c)
    return c
  }

  const reloads = () => gw.logs().split("policy reloaded").length - 1
  const setPolicy = async (policy: object) => {
    const before = reloads()
    gw.writePolicy(policy)
    const deadline = Date.now() + 10_000
    while (reloads() <= before) {
      if (Date.now() > deadline) throw new Error(`the gateway did not reload the policy:\n${gw.logs().slice(-2000)}`)
      await new Promise((r) => setTimeout(r, 25))
    }
  }

  /** The state before, with a case's allowed change applied. */
  const expected = (before: ServerState, change?: (s: Mutable<ServerState>) => void): ServerState => {
    const s = structuredClone(before) as Mutable<ServerState>
    change?.(s)
    return s
  }

  const leaked = (c: RawClient) => c.received.toString("latin1").includes("TOP-SECRET")

  /** A blocked answer: exactly one error, Sluice's 42501 at severity ERROR, from the expected rule. */
  const expectBlocked = (a: Answer, where: string, rule?: string, message?: RegExp) => {
    expect.soft(a.errors.map((e) => `${e.code} ${e.message}`), `${where}: one 42501`).toHaveLength(1)
    const e = a.errors[0]
    expect.soft(e?.code, `${where}: SQLSTATE (${e?.message})`).toBe("42501")
    expect.soft(e?.severity, `${where}: severity`).toBe("ERROR")
    if (message !== undefined) expect.soft(e?.message, `${where}: message`).toMatch(message)
    else if (rule !== undefined) expect.soft(e?.message, `${where}: rule`).toMatch(new RegExp(`\\(rule ${rule.replace(/[*.]/g, "\\$&")}\\)$`))
    else expect.soft(e?.message, `${where}: a Sluice rule`).toMatch(RULE_SUFFIX)
  }

  const checkStep = (step: Step, a: Answer, where: string) => {
    if (step.expect === "blocked") expectBlocked(a, where, step.rule, step.message)
    else if (step.expect === "ok") expect.soft(a.errors, `${where}: no error`).toEqual([])
    else expect.soft(a.errors.map((e) => e.code), `${where}: server error ${JSON.stringify(a.errors)}`).toEqual([step.expect])
    // A blocked statement returns nothing; rows before it in the same Query are listed.
    if (step.rows !== undefined || step.expect !== "ok") expect.soft(a.rows, `${where}: rows`).toEqual(step.rows ?? [])
    expect.soft(a.status, `${where}: transaction status`).toBe(step.status ?? "I")
    expect.soft(a.unexpectedCopyIn, `${where}: the server started a COPY FROM STDIN`).toBe(false)
  }

  /** The session answers an allowed query correctly, outside any transaction (a hang counts as a soft failure). */
  const expectUsable = async (c: RawClient, where = "follow-up") => {
    try {
      const u = await simpleQuery(c, "SELECT 'usable' AS u")
      expect.soft(u.errors, `${where}: usable`).toEqual([])
      expect.soft(u.rows, `${where}: usable`).toEqual([["usable"]])
      expect.soft(u.status, `${where}: idle`).toBe("I")
    } catch (e) {
      expect.soft(String(e), `${where}: the session must still answer`).toBe("an answer")
    }
  }

  const rollback = async (c: RawClient) => {
    try {
      expect.soft((await simpleQuery(c, "ROLLBACK")).status, "after ROLLBACK").toBe("I")
    } catch (e) {
      expect.soft(String(e), "ROLLBACK must be answered").toBe("an answer")
    }
  }

  const runCase = async (k: Case) => {
    await runSuperuser(k.setup)
    try {
      const before = await state()
      const c = await session(k.startup)
      try {
        for (const [i, step] of k.steps.entries()) {
          const where = `${k.id} step ${i + 1} (${step.sql.length > 140 ? `${step.sql.slice(0, 140)}…` : step.sql})`
          checkStep(step, await simpleQuery(c, fill(step.sql), copyFrames(step.copyData ?? [])), where)
        }
        await expectUsable(c)
        // Taken before the session ends: temp tables are part of what a case may leave.
        expect(await state(), `${k.id}: server state`).toEqual(expected(before, k.change))
        expect(leaked(c), `${k.id}: a secret row reached the client`).toBe(false)
      } finally {
        c.close()
        await sessionTempTablesGone()
      }
    } finally {
      await runSuperuser(k.teardown)
    }
  }

  /**
   * A server backend drops its temp tables as it exits, a moment after the client closes:
   * the next case's "before" snapshot must not catch them on their way out.
   */
  const sessionTempTablesGone = async () => {
    const deadline = Date.now() + 10_000
    for (;;) {
      const r = await su.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_class WHERE relpersistence = 't' AND relname IN ('accounts', 'data', 'leak')")
      if (r.rows[0]!.n === 0) return
      if (Date.now() > deadline) throw new Error("the closed session's temp tables were still there after 10 s")
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  beforeAll(async () => {
    files = sentinelFiles(randomBytes(6).toString("hex"))
    su = await superuserClient()
    await runSuperuser(setupSql())
    largeObjectsBefore = (await su.query<{ oid: number }>("SELECT oid::bigint AS oid FROM pg_largeobject_metadata")).rows.map((r) => Number(r.oid))
    await openVictim()
    gw = await startGateway(undefined, MAIN_POLICY)
  })

  afterAll(async () => {
    for (const c of opened) c.close()
    await gw?.stop()
    await victim?.end().catch(() => {})
    if (su !== undefined) {
      await runSuperuser(teardownSql()).catch(() => {})
      await su.query("SELECT lo_unlink(oid) FROM pg_largeobject_metadata WHERE NOT (oid::bigint = ANY($1::bigint[]))", [largeObjectsBefore]).catch(() => {})
      if (files !== undefined) {
        await su.query(`COPY (SELECT 1) TO PROGRAM 'rm -f ${files.program} ${files.copyTo} ${files.loExport}'`).catch(() => {})
      }
      await su.end()
    }
  })

  /**
   * Without this, a case could pass because the server itself refused the effect: the
   * role Sluice logs in as can do, directly, everything the attacks try.
   */
  it("controls: the backend role can do directly what each attack attempts", async () => {
    const b = await backendClient()
    const other = await backendClient()
    const control = `${files.program}_control`
    try {
      const inRollback = async (sql: string) => {
        await b.query("BEGIN")
        try {
          return await b.query(sql)
        } finally {
          await b.query("ROLLBACK")
        }
      }
      expect((await inRollback(DEL)).rowCount).toBe(3)
      expect((await inRollback(`SELECT ${S}.wipe() AS n`)).rows).toEqual([{ n: "3" }])
      expect((await inRollback(`SELECT * FROM ${S}.locked FOR UPDATE`)).rowCount).toBe(2)
      expect((await inRollback(`SET LOCAL search_path = ${S}, public; SELECT upper(1) AS n`) as unknown as Array<pg.QueryResult>)[1]!.rows).toEqual([{ n: "3" }])
      expect((await inRollback(`SET LOCAL ROLE ${ROLE}; SELECT current_user AS u`) as unknown as Array<pg.QueryResult>)[1]!.rows).toEqual([{ u: ROLE }])
      await inRollback(`GRANT ${ROLE} TO sluice_plain`)
      await inRollback(`GRANT SELECT ON ${SECRET}.data TO PUBLIC`)
      await inRollback(`DROP SCHEMA ${VICTIM} CASCADE`)
      await inRollback(`SELECT lo_create(0)`)
      expect((await b.query("SELECT pg_read_file('PG_VERSION') AS v")).rows[0].v).toMatch(/^\d+/)
      await b.query(`COPY (SELECT 1) TO PROGRAM 'touch ${control}'`)
      expect(await fileExists(su, control)).toBe(true)
      await b.query(`COPY (SELECT 1) TO PROGRAM 'rm -f ${control}'`)
      const otherPid = (await other.query("SELECT pg_backend_pid() AS pid")).rows[0].pid as number
      expect((await b.query("SELECT pg_terminate_backend($1) AS t", [otherPid])).rows).toEqual([{ t: true }])
    } finally {
      await b.end()
      await other.end().catch(() => {})
    }
  })

  describe.each([...new Set(CORPUS.map((k) => k.area))])("%s", (area) => {
    for (const k of CORPUS.filter((c) => c.area === area)) {
      it(`${k.id}: ${k.title}`, guarded(() => runCase(k)))
    }
  })

  describe("extended protocol", () => {
    const node = async () => {
      const c = new pg.Client({ ...gw.connection(), query_timeout: 5_000 })
      c.on("error", () => {})
      await c.connect()
      return c
    }
    const sqlstate = async (p: Promise<unknown>): Promise<{ code: string | undefined; message: string }> => {
      try {
        await p
      } catch (e) {
        return { code: (e as { code?: string }).code, message: (e as Error).message }
      }
      return { code: "no error", message: "" }
    }

    it("node-postgres {text, values}: blocked DELETE and secret read, session usable", guarded(async () => {
      const before = await state()
      const c = await node()
      try {
        expect.soft(await sqlstate(c.query({ text: `${DEL} WHERE id = $1`, values: [1] }))).toMatchObject({ code: "42501" })
        expect.soft(await sqlstate(c.query({ text: `SELECT * FROM ${SECRET}.data WHERE id = $1`, values: [1] }))).toMatchObject({ code: "42501" })
        expect.soft(await sqlstate(c.query({ text: `WITH d AS (${DEL} WHERE id = $1 RETURNING *) SELECT * FROM d`, values: [2] }))).toMatchObject({ code: "42501" })
        expect.soft((await c.query({ text: "SELECT $1::int + 1 AS n", values: [41] })).rows).toEqual([{ n: 42 }])
        expect(await state()).toEqual(before)
      } finally {
        await c.end()
      }
    }))

    it("node-postgres named statement: blocked at every attempt, never created on the server", guarded(async () => {
      const before = await state()
      const c = await node()
      try {
        const q = { name: "bp_np_del", text: `${DEL} WHERE id = $1`, values: [1] }
        expect.soft(await sqlstate(c.query(q))).toMatchObject({ code: "42501" })
        expect.soft(await sqlstate(c.query(q))).toMatchObject({ code: "42501" })
        expect.soft((await c.query("SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name = 'bp_np_del'")).rows).toEqual([{ n: 0 }])
        expect.soft((await c.query({ name: "bp_np_ok", text: `SELECT count(*)::int AS n FROM ${S}.accounts` })).rows).toEqual([{ n: 3 }])
        expect(await state()).toEqual(before)
      } finally {
        await c.end()
      }
    }))

    it("node-postgres: nextval($1) with the sequence name as a parameter", guarded(async () => {
      const before = await state()
      const c = await node()
      try {
        expect.soft(await sqlstate(c.query({ text: "SELECT nextval($1)", values: [`${S}.seq`] }))).toMatchObject({ code: "42501" })
        expect.soft((await c.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }])
        expect(await state(), "the sequence must not advance").toEqual(before)
      } finally {
        await c.end()
      }
    }))

    /** One batch (frames in one write, up to Sync), its answer, and the session's follow-up. */
    const batch = async (c: RawClient, messages: ReadonlyArray<FrontendMessage>) => {
      sendAll(c, messages)
      return readAnswer(c)
    }

    it("Parse '' allowed, Parse '' blocked, Bind/Execute '' in one batch: neither statement runs", guarded(async () => {
      const before = await state()
      const c = await session()
      const a = await batch(c, [
        { _tag: "Parse", name: "", sql: `INSERT INTO ${S}.log VALUES ('xp-old-unnamed')`, paramTypes: [] },
        { _tag: "Parse", name: "", sql: DEL, paramTypes: [] },
        { _tag: "Bind", portal: "", statement: "", paramFormats: [], params: [], resultFormats: [] },
        { _tag: "Describe", kind: "P", name: "" },
        { _tag: "Execute", portal: "", maxRows: 0 },
        SYNC
      ])
      expect.soft(a.tags).toEqual(["ParseComplete", "ErrorResponse", "ReadyForQuery"])
      expectBlocked(a, "blocked re-Parse", "default:*")
      // The unnamed statement is gone: binding it again runs neither the old nor the new text.
      const again = await batch(c, [{ _tag: "Bind", portal: "", statement: "", paramFormats: [], params: [], resultFormats: [] }, { _tag: "Execute", portal: "", maxRows: 0 }, SYNC])
      expect.soft(again.errors).toHaveLength(1)
      expect.soft(again.commands).toEqual([])
      await expectUsable(c)
      expect(await state()).toEqual(before)
    }))

    it("the unnamed statement from an earlier batch is not run in place of a blocked re-Parse", guarded(async () => {
      const before = await state()
      const c = await session()
      expect.soft((await batch(c, [{ _tag: "Parse", name: "", sql: `INSERT INTO ${S}.log VALUES ('xp-unnamed-earlier')`, paramTypes: [] }, SYNC])).tags).toEqual([
        "ParseComplete",
        "ReadyForQuery"
      ])
      const a = await batch(c, [...pbe(DEL), SYNC])
      expectBlocked(a, "blocked re-Parse", "default:*")
      expect.soft(a.tags).toEqual(["ErrorResponse", "ReadyForQuery"])
      const again = await batch(c, [{ _tag: "Bind", portal: "", statement: "", paramFormats: [], params: [], resultFormats: [] }, { _tag: "Execute", portal: "", maxRows: 0 }, SYNC])
      expect.soft(again.errors).toHaveLength(1)
      expect.soft(again.commands).toEqual([])
      await expectUsable(c)
      expect(await state()).toEqual(before)
    }))

    it("named statement re-Parsed with a blocked text (no Close): the old statement does not run in its place", guarded(async () => {
      const before = await state()
      const c = await session()
      expect.soft((await batch(c, [{ _tag: "Parse", name: "bp_s1", sql: `INSERT INTO ${S}.log VALUES ('xp-named-old')`, paramTypes: [] }, SYNC])).errors).toEqual([])
      const a = await batch(c, [...pbe(DEL, [], "bp_s1"), SYNC])
      expectBlocked(a, "re-Parse of bp_s1", "default:*")
      expect.soft(a.tags).toEqual(["ErrorResponse", "ReadyForQuery"])
      expect.soft((await batch(c, [{ _tag: "Close", kind: "S", name: "bp_s1" }, SYNC])).tags).toEqual(["CloseComplete", "ReadyForQuery"])
      await expectUsable(c)
      expect(await state()).toEqual(before)
    }))

    it("named statement Closed and re-Parsed with a blocked text in one batch: it no longer exists", guarded(async () => {
      const before = await state()
      const c = await session()
      expect.soft((await batch(c, [{ _tag: "Parse", name: "bp_s2", sql: `SELECT count(*) FROM ${S}.accounts`, paramTypes: [] }, SYNC])).errors).toEqual([])
      const a = await batch(c, [{ _tag: "Close", kind: "S", name: "bp_s2" }, ...pbe(DEL, [], "bp_s2"), SYNC])
      expect.soft(a.tags).toEqual(["CloseComplete", "ErrorResponse", "ReadyForQuery"])
      expectBlocked(a, "re-Parse of bp_s2", "default:*")
      const bind = await batch(c, [{ _tag: "Bind", portal: "", statement: "bp_s2", paramFormats: [], params: [], resultFormats: [] }, { _tag: "Execute", portal: "", maxRows: 0 }, SYNC])
      expect.soft(bind.errors.map((e) => e.code)).toEqual(["26000"])
      await expectUsable(c)
      expect(await state()).toEqual(before)
    }))

    it("after a blocked Parse, the client's next batch is decided and answered, not skipped", guarded(async () => {
      const before = await state()
      const c = await session()
      // Parse, Bind, Execute and Sync in one write, as every driver sends them.
      expectBlocked(await batch(c, [...pbe(DEL), SYNC]), "first blocked batch", "default:*")
      const next = await batch(c, [...pbe(`INSERT INTO ${S}.log VALUES ('after-blocked-parse')`), SYNC])
      expect.soft(next.tags, "the allowed batch after the blocked one must run").toEqual(["ParseComplete", "BindComplete", "CommandComplete", "ReadyForQuery"])
      expectBlocked(await batch(c, [...pbe(DEL), SYNC]), "second blocked batch")
      // A bare ReadyForQuery here would tell the client its DELETE succeeded.
      expectBlocked(await batch(c, [...pbe(`UPDATE ${S}.accounts SET balance = 0`), SYNC]), "blocked batch right after a blocked batch")
      await expectUsable(c)
      expect(await state()).toEqual(expected(before, (s) => void (s.log = [...s.log, "after-blocked-parse"].sort())))
    }))

    it("a blocked named Parse leaves the client's unnamed statement as it was", guarded(async () => {
      const before = await state()
      const c = await session()
      expect.soft((await batch(c, [{ _tag: "Parse", name: "", sql: `INSERT INTO ${S}.log VALUES ('xp-unnamed-kept')`, paramTypes: [] }, SYNC])).errors).toEqual([])
      // Parse and Sync in separate writes, so that this case does not depend on how one read is batched.
      sendAll(c, [{ _tag: "Parse", name: "bp_s3", sql: DEL, paramTypes: [] }])
      await new Promise((r) => setTimeout(r, 100))
      sendAll(c, [SYNC])
      expectBlocked(await readAnswer(c), "Parse of bp_s3", "default:*")
      // On a server, a failed Parse of a named statement does not touch the unnamed one.
      const run = await batch(c, [{ _tag: "Bind", portal: "", statement: "", paramFormats: [], params: [], resultFormats: [] }, { _tag: "Execute", portal: "", maxRows: 0 }, SYNC])
      expect.soft(run.errors, "the client's unnamed INSERT must still run").toEqual([])
      expect.soft(run.tags).toEqual(["BindComplete", "CommandComplete", "ReadyForQuery"])
      await expectUsable(c)
      expect(await state()).toEqual(expected(before, (s) => void (s.log = [...s.log, "xp-unnamed-kept"].sort())))
    }))

    it("portal: a blocked statement bound to a named portal never runs, and the portal does not exist afterwards", guarded(async () => {
      const before = await state()
      const c = await session()
      const a = await batch(c, [
        { _tag: "Parse", name: "", sql: DEL, paramTypes: [] },
        { _tag: "Bind", portal: "bp_p1", statement: "", paramFormats: [], params: [], resultFormats: [] },
        { _tag: "Execute", portal: "bp_p1", maxRows: 0 },
        SYNC
      ])
      expect.soft(a.tags).toEqual(["ErrorResponse", "ReadyForQuery"])
      expectBlocked(a, "portal bp_p1", "default:*")
      const exec = await batch(c, [{ _tag: "Execute", portal: "bp_p1", maxRows: 0 }, SYNC])
      expect.soft(exec.errors.map((e) => e.code)).toEqual(["34000"])
      await expectUsable(c)
      expect(await state()).toEqual(before)
    }))

    it("portal: a portal of an allowed statement is not executed after a blocked Parse in the same batch", guarded(async () => {
      const before = await state()
      const c = await session()
      const a = await batch(c, [
        { _tag: "Parse", name: "", sql: `INSERT INTO ${S}.log VALUES ('xp-portal')`, paramTypes: [] },
        { _tag: "Bind", portal: "bp_p2", statement: "", paramFormats: [], params: [], resultFormats: [] },
        { _tag: "Parse", name: "", sql: DEL, paramTypes: [] },
        { _tag: "Execute", portal: "bp_p2", maxRows: 0 },
        SYNC
      ])
      expect.soft(a.tags).toEqual(["ParseComplete", "BindComplete", "ErrorResponse", "ReadyForQuery"])
      expectBlocked(a, "Parse after bind", "default:*")
      await expectUsable(c)
      expect(await state()).toEqual(before)
    }))

    it("portal in a transaction: after a blocked Parse the transaction is failed (25P02) and ROLLBACK keeps nothing", guarded(async () => {
      const before = await state()
      const c = await session()
      expect.soft((await simpleQuery(c, "BEGIN")).status).toBe("T")
      const bound = await batch(c, [
        { _tag: "Parse", name: "", sql: `INSERT INTO ${S}.log VALUES ('xp-tx-portal')`, paramTypes: [] },
        { _tag: "Bind", portal: "bp_p3", statement: "", paramFormats: [], params: [], resultFormats: [] },
        SYNC
      ])
      expect.soft(bound.tags).toEqual(["ParseComplete", "BindComplete", "ReadyForQuery"])
      expect.soft(bound.status).toBe("T")
      const a = await batch(c, [...pbe(DEL), SYNC])
      expectBlocked(a, "blocked Parse in transaction", "default:*")
      expect.soft(a.status).toBe("E")
      const exec = await batch(c, [{ _tag: "Execute", portal: "bp_p3", maxRows: 0 }, SYNC])
      expect.soft(exec.errors.map((e) => e.code)).toEqual(["25P02"])
      expect.soft(exec.status).toBe("E")
      await rollback(c)
      await expectUsable(c)
      expect(await state()).toEqual(before)
    }))

    it("a Parse over maxStatementBytes is blocked with the size message", guarded(async () => {
      const before = await state()
      const c = await session()
      const a = await batch(c, [...pbe(`INSERT INTO ${S}.log VALUES ('${"L".repeat(MAX_STATEMENT_BYTES)}')`), SYNC])
      expect.soft(a.tags).toEqual(["ErrorResponse", "ReadyForQuery"])
      expectBlocked(a, "long Parse", undefined, new RegExp(`exceeds the policy's limit of ${MAX_STATEMENT_BYTES} bytes$`))
      await expectUsable(c)
      expect(await state()).toEqual(before)
    }))

    it("a Parse with an allowed and a blocked statement is blocked", guarded(async () => {
      const before = await state()
      const c = await session()
      const a = await batch(c, [...pbe(`INSERT INTO ${S}.log VALUES ('xp-two'); ${DEL}`), SYNC])
      expectBlocked(a, "two statements in one Parse", "default:*")
      await expectUsable(c)
      expect(await state()).toEqual(before)
    }))

    it("a named statement parsed under one search_path is not executed against another schema after SET search_path", guarded(async () => {
      const before = await state()
      const c = await session({ search_path: S })
      // Allowed: under search_path sluice_bypass, "log" is the writable sluice_bypass.log.
      expect.soft((await batch(c, [{ _tag: "Parse", name: "bp_stale", sql: "DELETE FROM log", paramTypes: [] }, SYNC])).errors).toEqual([])
      expect.soft((await simpleQuery(c, `SET search_path = ${SECRET}`)).errors).toEqual([])
      // The server re-analyses a cached statement when search_path changed: now it is sluice_bypass_secret.log.
      const a = await batch(c, [{ _tag: "Bind", portal: "", statement: "bp_stale", paramFormats: [], params: [], resultFormats: [] }, { _tag: "Execute", portal: "", maxRows: 0 }, SYNC])
      expect.soft(a.commands, "the stale statement ran").toEqual([])
      expectBlocked(a, "Execute of a statement whose relations moved", "bp-no-secret")
      await expectUsable(c)
      expect(await state(), "sluice_bypass_secret.log must keep its row").toEqual(before)
    }))

    it("a named statement parsed under one search_path does not read the secret schema after SET search_path", guarded(async () => {
      const before = await state()
      const c = await session({ search_path: S })
      expect.soft((await batch(c, [{ _tag: "Parse", name: "bp_stale_read", sql: "SELECT * FROM data", paramTypes: [] }, SYNC])).errors).toEqual([])
      expect.soft((await simpleQuery(c, `SET search_path = ${SECRET}`)).errors).toEqual([])
      const a = await batch(c, [{ _tag: "Bind", portal: "", statement: "bp_stale_read", paramFormats: [], params: [], resultFormats: [] }, { _tag: "Execute", portal: "", maxRows: 0 }, SYNC])
      expectBlocked(a, "Execute of a read whose relations moved", "bp-no-secret")
      expect.soft(leaked(c), "secret rows reached the client").toBe(false)
      await expectUsable(c)
      expect(await state()).toEqual(before)
    }))
  })

  describe("pipelining", () => {
    it("Query messages back to back in one write: answers in order, the ones after the block still run", guarded(async () => {
      const before = await state()
      const c = await session()
      sendAll(c, [
        { _tag: "Query", sql: `INSERT INTO ${S}.log VALUES ('pipe-1')` },
        { _tag: "Query", sql: DEL },
        { _tag: "Query", sql: `INSERT INTO ${S}.log VALUES ('pipe-3')` },
        { _tag: "Query", sql: "SELECT 'pipe-4'" }
      ])
      const answers = [await readAnswer(c), await readAnswer(c), await readAnswer(c), await readAnswer(c)]
      expect.soft(answers.map((a) => a.commands)).toEqual([["INSERT 0 1"], [], ["INSERT 0 1"], ["SELECT 1"]])
      expect.soft(answers[0]!.errors).toEqual([])
      expectBlocked(answers[1]!, "pipelined DELETE", "default:*")
      expect.soft(answers[2]!.errors).toEqual([])
      expect.soft(answers[3]!.rows).toEqual([["pipe-4"]])
      expect.soft(answers.map((a) => a.status)).toEqual(["I", "I", "I", "I"])
      await expectUsable(c)
      expect(await state()).toEqual(expected(before, (s) => void (s.log = [...s.log, "pipe-1", "pipe-3"].sort())))
    }))

    it("extended batches back to back in one write, each with its Sync: the batch after the blocked one runs", guarded(async () => {
      const before = await state()
      const c = await session()
      sendAll(c, [...pbe(`INSERT INTO ${S}.log VALUES ('xpipe-1')`), SYNC, ...pbe(DEL), SYNC, ...pbe(`INSERT INTO ${S}.log VALUES ('xpipe-3')`), SYNC])
      const answers = [await readAnswer(c), await readAnswer(c), await readAnswer(c)]
      expect.soft(answers.map((a) => a.tags)).toEqual([
        ["ParseComplete", "BindComplete", "CommandComplete", "ReadyForQuery"],
        ["ErrorResponse", "ReadyForQuery"],
        ["ParseComplete", "BindComplete", "CommandComplete", "ReadyForQuery"]
      ])
      expectBlocked(answers[1]!, "pipelined extended DELETE", "default:*")
      await expectUsable(c)
      expect(await state()).toEqual(expected(before, (s) => void (s.log = [...s.log, "xpipe-1", "xpipe-3"].sort())))
    }))

    it("one extended batch with a blocked statement in the middle: the implicit transaction rolls back, the rest is skipped", guarded(async () => {
      const before = await state()
      const c = await session()
      sendAll(c, [...pbe(`INSERT INTO ${S}.log VALUES ('xbatch-1')`), ...pbe(DEL), ...pbe(`INSERT INTO ${S}.log VALUES ('xbatch-3')`), SYNC])
      const a = await readAnswer(c)
      expect.soft(a.tags).toEqual(["ParseComplete", "BindComplete", "CommandComplete", "ErrorResponse", "ReadyForQuery"])
      expectBlocked(a, "DELETE mid-batch", "default:*")
      await expectUsable(c)
      expect(await state()).toEqual(before)
    }))

    it("a simple Query, an extended batch and a function call in one write, the blocked ones in between", guarded(async () => {
      const before = await state()
      const oid = (await su.query<{ oid: number }>("SELECT 'lo_creat(integer)'::regprocedure::oid::int AS oid")).rows[0]!.oid
      const c = await session()
      sendAll(c, [
        { _tag: "Query", sql: `INSERT INTO ${S}.log VALUES ('mix-1')` },
        ...pbe(DEL),
        SYNC,
        { _tag: "FunctionCall", functionOid: oid, argFormats: [0], args: [Buffer.from("-1")], resultFormat: 0 },
        { _tag: "Query", sql: `INSERT INTO ${S}.log VALUES ('mix-4')` }
      ])
      const answers = [await readAnswer(c), await readAnswer(c), await readAnswer(c), await readAnswer(c)]
      expect.soft(answers.map((a) => a.errors.map((e) => e.code))).toEqual([[], ["42501"], ["42501"], []])
      await expectUsable(c)
      expect(await state()).toEqual(expected(before, (s) => void (s.log = [...s.log, "mix-1", "mix-4"].sort())))
    }))
  })

  describe("function call protocol", () => {
    const oidOf = async (signature: string) => (await su.query<{ oid: number }>("SELECT $1::regprocedure::oid::int AS oid", [signature])).rows[0]!.oid
    const call = (functionOid: number, args: ReadonlyArray<string>): FrontendMessage => ({
      _tag: "FunctionCall",
      functionOid,
      argFormats: [0],
      args: args.map((a) => Buffer.from(a)),
      resultFormat: 0
    })

    it("pg_terminate_backend by OID is blocked and the victim backend lives", guarded(async () => {
      const before = await state()
      const c = await session()
      sendAll(c, [call(await oidOf("pg_terminate_backend(integer, bigint)"), [String(victimPid), "0"])])
      const a = await readAnswer(c)
      expect.soft(a.tags).toEqual(["ErrorResponse", "ReadyForQuery"])
      expectBlocked(a, "FunctionCall pg_terminate_backend")
      await expectUsable(c)
      expect(await state()).toEqual(before)
      expect.soft((await victim.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }])
    }))

    it("lo_creat by OID is blocked and no large object appears; inside a transaction it fails the transaction", guarded(async () => {
      const before = await state()
      const c = await session()
      const oid = await oidOf("lo_creat(integer)")
      sendAll(c, [call(oid, ["-1"])])
      expectBlocked(await readAnswer(c), "FunctionCall lo_creat")
      expect.soft((await simpleQuery(c, "BEGIN")).status).toBe("T")
      sendAll(c, [call(oid, ["-1"])])
      const inTx = await readAnswer(c)
      expectBlocked(inTx, "FunctionCall lo_creat in a transaction")
      expect.soft(inTx.status).toBe("E")
      expect.soft((await simpleQuery(c, "SELECT 1")).errors.map((e) => e.code)).toEqual(["25P02"])
      await rollback(c)
      await expectUsable(c)
      expect(await state()).toEqual(before)
    }))
  })

  describe("client encoding", () => {
    it("client_encoding=SJIS at startup: E'<0x95 0x5c>' hides a quote from a UTF-8 reader, the DELETE must not run", guarded(async () => {
      const before = await state()
      const c = await session({ client_encoding: "SJIS" })
      // 0x95 0x5C is one SJIS character to the server; to a UTF-8 reader it is junk and a backslash escaping the quote.
      const body = Buffer.concat([Buffer.from("SELECT E'"), Buffer.from([0x95, 0x5c]), Buffer.from(`' ; ${DEL}; --'`)])
      sendAll(c, [rawQueryFrame(body)])
      const a = await readAnswer(c)
      expect.soft(a.commands, "the hidden DELETE ran").not.toContain("DELETE 3")
      expectBlocked(a, "SJIS statement", undefined, /client_encoding is SJIS/)
      expect(await state()).toEqual(before)
    }))
  })

  describe("a policy that allows statements of unknown effect", () => {
    beforeAll(() => setPolicy(UNKNOWN_ALLOWED_POLICY))
    afterAll(() => setPolicy(MAIN_POLICY))

    it("still blocks pg_terminate_backend in SQL (control)", guarded(async () => {
      const before = await state()
      const c = await session()
      expectBlocked(await simpleQuery(c, `SELECT pg_terminate_backend(${victimPid})`), "SQL pg_terminate_backend", "bpu-no-admin-functions")
      expect.soft((await simpleQuery(c, `SELECT ${S}.purge('nothing_here')`)).errors.map((e) => e.code), "unknown is allowed: the server answers").toEqual(["42P01"])
      await expectUsable(c)
      expect(await state()).toEqual(before)
    }))

    it("blocks pg_terminate_backend through the function call protocol too", guarded(async () => {
      const before = await state()
      const c = await session()
      const oid = (await su.query<{ oid: number }>("SELECT 'pg_terminate_backend(integer, bigint)'::regprocedure::oid::int AS oid")).rows[0]!.oid
      sendAll(c, [{ _tag: "FunctionCall", functionOid: oid, argFormats: [0], args: [Buffer.from(String(victimPid)), Buffer.from("0")], resultFormat: 0 }])
      const a = await readAnswer(c)
      expect.soft(a.tags, "FunctionCallResponse means the call ran").not.toContain("FunctionCallResponse")
      expectBlocked(a, "FunctionCall pg_terminate_backend under allow-unknown")
      await expectUsable(c)
      expect(await state(), "the victim backend must live").toEqual(before)
    }))

    it("blocks lo_* (blocked by name) through the function call protocol too", guarded(async () => {
      const before = await state()
      const c = await session()
      const oid = (await su.query<{ oid: number }>("SELECT 'lo_creat(integer)'::regprocedure::oid::int AS oid")).rows[0]!.oid
      sendAll(c, [{ _tag: "FunctionCall", functionOid: oid, argFormats: [0], args: [Buffer.from("-1")], resultFormat: 0 }])
      const a = await readAnswer(c)
      expectBlocked(a, "FunctionCall lo_creat under allow-unknown")
      await expectUsable(c)
      expect(await state(), "no large object may appear").toEqual(before)
    }))
  })

  it("the gateway survived every case, and logged its blocks", () => {
    expect(gw.alive()).toBe(true)
    expect(gw.logs()).toContain("statement blocked")
  })
})
