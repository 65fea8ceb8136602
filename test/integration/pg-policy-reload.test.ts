/**
 * Hot reload of the policy during live sessions (issue 3, "Proof"): a psql process and a
 * node-postgres client connect under policy A (writes allowed); the file is replaced by B
 * (writes blocked) and the SAME sessions' next write is blocked while reads still work; a
 * file with a YAML syntax error, then one with a schema error, is rejected with a logged
 * error naming the problem and the path, B stays in force and the process stays up;
 * SIGHUP reloads a change the file watcher cannot see. A bad policy at startup stops the
 * gateway from starting.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import type pg from "pg"
import { stringify } from "yaml"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { defaultConfig, type Gateway, startGateway, TOKEN } from "./support/gateway.ts"
import { closeClient, directQuery, gatewayClient, gatewayPid, logEntries, rejection, waitForLog } from "./support/policy-clients.ts"
import { type PsqlSession, startPsql } from "./support/psql-session.ts"

const T = "sluice_reload_items"

const policy = (rules: ReadonlyArray<Record<string, unknown>>) => ({
  version: 1,
  defaults: { "*": { action: "allow" } },
  rules
})
const freeze = (id: string, message: string) => ({ id, match: { classes: ["write", "ddl", "copy-in"] }, action: "block", message })

/** A: everything of known effect allowed, writes included. */
const A = policy([])
/** B: writes frozen. */
const B_MESSAGE = "writes are frozen for the release"
const B = policy([freeze("freeze-writes", B_MESSAGE)])
const B_BLOCK = `${B_MESSAGE} (rule freeze-writes)`

const serverValue = async (id: number) => (await directQuery<{ v: string }>("superuser", `SELECT v FROM ${T} WHERE id = $1`, [id]))[0]?.v

describe("policy hot reload during live sessions", () => {
  let gw: Gateway
  let psql: PsqlSession
  let client: pg.Client
  let elsewhere: string

  /** Replaces the policy and waits for the gateway to log the reload, returning the new version. */
  const reloadTo = async (next: object): Promise<string> => {
    const from = gw.logs().length
    gw.writePolicy(next)
    return (await waitForLog(gw, /policy reloaded \{[^}]*version: '([0-9a-f]+)'/, from))[1]!
  }

  beforeAll(async () => {
    await directQuery("superuser", `DROP TABLE IF EXISTS ${T}`)
    await directQuery("backend", `CREATE TABLE ${T} (id int PRIMARY KEY, v text NOT NULL); INSERT INTO ${T} VALUES (1, 'one'), (2, 'two'), (3, 'three')`)
    gw = await startGateway(undefined, A)
    psql = await startPsql(`host=127.0.0.1 port=${gw.port} user=ci dbname=app sslmode=disable application_name=reload-psql`, { PGPASSWORD: TOKEN }, ["-v", "VERBOSITY=verbose"])
    client = await gatewayClient(gw)
    elsewhere = mkdtempSync(join(tmpdir(), "sluice-policy-elsewhere-"))
  })

  afterAll(async () => {
    await psql?.quit()
    await closeClient(client)
    await gw?.stop()
    await directQuery("superuser", `DROP TABLE IF EXISTS ${T}`)
    if (elsewhere) rmSync(elsewhere, { recursive: true, force: true })
  })

  it("under A, both live sessions write", async () => {
    const w = await psql.run(`UPDATE ${T} SET v = 'psql-a' WHERE id = 1;`)
    expect(w).toEqual({ stdout: "UPDATE 1\n", stderr: "" })
    expect((await client.query(`UPDATE ${T} SET v = $1 WHERE id = $2`, ["pg-a", 2])).rowCount).toBe(1)
    // a named prepared statement, parsed (and judged) now; node-postgres only binds it from now on
    expect((await client.query({ name: "named-update", text: `UPDATE ${T} SET v = $1 WHERE id = $2`, values: ["pg-a", 2] })).rowCount).toBe(1)
    expect(await serverValue(1)).toBe("psql-a")
    expect(await serverValue(2)).toBe("pg-a")
  })

  it("a transaction begun under A: its write under A stands until B arrives, then its next write is blocked and the transaction fails", async () => {
    await client.query("BEGIN")
    await client.query(`UPDATE ${T} SET v = 'in-txn' WHERE id = 3`)
    const from = gw.logs().length
    await reloadTo(B)
    expect(gw.logs().slice(from)).toMatch(/rules: 1/)
    expect(await rejection(client.query(`UPDATE ${T} SET v = 'in-txn-2' WHERE id = 1`))).toMatchObject({ code: "42501", message: B_BLOCK })
    expect(await rejection(client.query("SELECT 1"))).toMatchObject({ code: "25P02" })
    expect((await client.query("ROLLBACK")).command).toBe("ROLLBACK")
    // The write made under A went with the rollback.
    expect(await serverValue(3)).toBe("three")
  })

  it("under B, the SAME live sessions: writes are blocked with B's message, reads still work", async () => {
    const w = await psql.run(`UPDATE ${T} SET v = 'psql-b' WHERE id = 1;`)
    expect(w.stdout).toBe("")
    expect(w.stderr.split("\n")[0]).toBe(`ERROR:  42501: ${B_BLOCK}`)
    expect((await psql.run(`SELECT v FROM ${T} WHERE id = 1;`)).stdout).toBe("psql-a\n")

    expect(await rejection(client.query(`UPDATE ${T} SET v = 'pg-b' WHERE id = 2`))).toMatchObject({ code: "42501", message: B_BLOCK })
    // the statement prepared under A is judged again when bound under B
    expect(await rejection(client.query({ name: "named-update", text: `UPDATE ${T} SET v = $1 WHERE id = $2`, values: ["pg-b", 2] }))).toMatchObject({ code: "42501", message: B_BLOCK })
    expect((await client.query(`SELECT v FROM ${T} WHERE id = 2`)).rows).toEqual([{ v: "pg-a" }])
    expect(await serverValue(1)).toBe("psql-a")
    expect(await serverValue(2)).toBe("pg-a")
  })

  const writesStillBlocked = async () => {
    const w = await psql.run(`DELETE FROM ${T};`)
    expect(w.stderr.split("\n")[0]).toBe(`ERROR:  42501: ${B_BLOCK}`)
    expect(await rejection(client.query(`DELETE FROM ${T}`))).toMatchObject({ code: "42501", message: B_BLOCK })
    expect((await client.query(`SELECT count(*)::int AS n FROM ${T}`)).rows).toEqual([{ n: 3 }])
    expect(gw.alive()).toBe(true)
  }

  const rejectedReload = async (bad: string | object) => {
    const from = gw.logs().length
    gw.writePolicy(bad)
    await waitForLog(gw, /policy reload rejected/, from)
    // Let any second event of the same write be handled too.
    await new Promise((r) => setTimeout(r, 300))
    const entries = logEntries(gw.logs().slice(from), "policy reload rejected")
    expect(logEntries(gw.logs().slice(from), "policy reloaded")).toEqual([])
    return entries
  }

  it("a file with a YAML syntax error is rejected with an error naming the file and the line; B stays in force", async () => {
    const versionB = /policy reloaded \{[^}]*version: '([0-9a-f]+)'/.exec(gw.logs())![1]!
    const entries = await rejectedReload("version: 1\nrules:\n  - id: broken\n    action: [allow\n")
    expect(entries.length).toBeGreaterThanOrEqual(1)
    const entry = entries[0]!
    expect(entry).toMatch(/ERROR/)
    expect(entry).toContain(`keeping version ${versionB}`)
    expect(entry).toContain(`${gw.policyFile}: invalid policy`)
    expect(entry).toMatch(/\(root\): YAML line \d+, column \d+/)
    await writesStillBlocked()
  })

  it("files written beside the policy reload nothing: a rejected file's error is not repeated for them", async () => {
    const from = gw.logs().length
    expect(await rejectedReload("version: 1\nrules: [\n")).toHaveLength(1)
    // a log file beside the policy, say: each write is a change in the watched directory
    for (let i = 0; i < 3; i++) {
      writeFileSync(join(dirname(gw.policyFile), "beside.log"), `line ${i}\n`, { flag: "a" })
      await new Promise((r) => setTimeout(r, 250))
    }
    expect(logEntries(gw.logs().slice(from), "policy reload rejected")).toHaveLength(1)
    await writesStillBlocked()
  })

  it("a file with schema errors is rejected with each problem's path; B stays in force", async () => {
    const entries = await rejectedReload({
      version: 1,
      defaults: { "*": { action: "permit" } },
      rules: [{ id: "r1", match: { classes: ["read", "sideways"] }, action: "allow" }, { id: "r1", action: "block" }]
    })
    const entry = entries[0]!
    expect(entry).toContain(`${gw.policyFile}: invalid policy`)
    expect(entry).toMatch(/defaults\.\*\.action: /)
    expect(entry).toMatch(/rules\.0\.match\.classes\.1: /)
    await writesStillBlocked()
    // A schema-valid policy with a duplicate rule id is refused too.
    const dup = await rejectedReload(policy([{ id: "x", action: "allow" }, { id: "x", action: "block" }]))
    expect(dup[0]).toContain('rules.1.id: duplicate rule id "x"')
    await writesStillBlocked()
  })

  it("a policy file that disappears is rejected too; B stays in force", async () => {
    const from = gw.logs().length
    rmSync(gw.policyFile)
    await waitForLog(gw, /policy reload rejected[\s\S]*cannot read file: ENOENT/, from)
    await writesStillBlocked()
  })

  it("SIGHUP reloads a change the file watcher cannot see (the file is a symlink whose target changed elsewhere)", async () => {
    const target = join(elsewhere, "policy.yaml")
    const writeElsewhere = (p: object) => {
      writeFileSync(`${target}.tmp`, stringify(p))
      renameSync(`${target}.tmp`, target)
    }
    // B again, behind a symlink; creating the link is a change the watcher sees. Same
    // content as B, so the version does not change and nothing is logged as reloaded.
    writeElsewhere(B)
    let from = gw.logs().length
    symlinkSync(target, gw.policyFile)
    await new Promise((r) => setTimeout(r, 400))
    await writesStillBlocked()

    // C, written in the other directory: the watcher (of the policy file's directory) does not notice.
    const C_MESSAGE = "writes are frozen until Monday"
    writeElsewhere(policy([freeze("freeze-writes-2", C_MESSAGE)]))
    await new Promise((r) => setTimeout(r, 400))
    expect(logEntries(gw.logs().slice(from), "policy reload")).toEqual([])
    await writesStillBlocked()

    from = gw.logs().length
    const pid = await gatewayPid(gw)
    process.kill(pid, "SIGHUP")
    await waitForLog(gw, /policy reloaded \{[^}]*rules: 1/, from)
    expect(gw.alive()).toBe(true)
    const w = await psql.run(`UPDATE ${T} SET v = 'x' WHERE id = 1;`)
    expect(w.stderr.split("\n")[0]).toBe(`ERROR:  42501: ${C_MESSAGE} (rule freeze-writes-2)`)
    expect(await rejection(client.query(`UPDATE ${T} SET v = 'x' WHERE id = 1`))).toMatchObject({ code: "42501", message: `${C_MESSAGE} (rule freeze-writes-2)` })

    // SIGHUP with nothing changed: no crash, no reload logged, the same policy.
    from = gw.logs().length
    process.kill(pid, "SIGHUP")
    await new Promise((r) => setTimeout(r, 400))
    expect(gw.alive()).toBe(true)
    expect(logEntries(gw.logs().slice(from), "policy reload")).toEqual([])
    expect((await client.query(`SELECT v FROM ${T} WHERE id = 1`)).rows).toEqual([{ v: "psql-a" }])
  })

  it("back to A: the same sessions write again; they never dropped", async () => {
    rmSync(gw.policyFile)
    await reloadTo(A)
    expect(await psql.run(`UPDATE ${T} SET v = 'psql-again' WHERE id = 1;`)).toEqual({ stdout: "UPDATE 1\n", stderr: "" })
    expect((await client.query(`UPDATE ${T} SET v = 'pg-again' WHERE id = 2`)).rowCount).toBe(1)
    expect(await serverValue(1)).toBe("psql-again")
    expect(await serverValue(2)).toBe("pg-again")
    expect(psql.exited()).toBe(false)
    // One session each, for the whole file.
    expect(logEntries(gw.logs(), "session started")).toHaveLength(2)
    expect(gw.logs()).not.toMatch(/session failed unexpectedly/)
  })

  /**
   * A Kubernetes ConfigMap volume is `policy.yaml -> ..data/policy.yaml`, and kubelet updates
   * it by renaming a new `..data_tmp` symlink over `..data`: no event names the policy file.
   */
  it("a ConfigMap-style update (the ..data symlink swapped) is reloaded without SIGHUP", async () => {
    const dir = gw.dir
    // ..v1 holds A (in force), ..data -> ..v1, policy.yaml -> ..data/policy.yaml
    const v1 = join(dir, "..v1")
    const v2 = join(dir, "..v2")
    rmSync(v1, { recursive: true, force: true })
    rmSync(v2, { recursive: true, force: true })
    mkdirSync(v1)
    writeFileSync(join(v1, "policy.yaml"), stringify(A))
    symlinkSync("..v1", join(dir, "..data"))
    rmSync(gw.policyFile, { force: true })
    symlinkSync("..data/policy.yaml", gw.policyFile)
    await new Promise((r) => setTimeout(r, 400))
    expect((await client.query(`UPDATE ${T} SET v = 'cm-a' WHERE id = 3`)).rowCount).toBe(1)

    // The update: ..v2 holds B, ..data_tmp -> ..v2 renamed over ..data.
    mkdirSync(v2)
    writeFileSync(join(v2, "policy.yaml"), stringify(B))
    symlinkSync("..v2", join(dir, "..data_tmp"))
    const from = gw.logs().length
    renameSync(join(dir, "..data_tmp"), join(dir, "..data"))
    rmSync(v1, { recursive: true, force: true })
    await waitForLog(gw, /policy reloaded/, from, 2_000)
    expect(await rejection(client.query(`UPDATE ${T} SET v = 'cm-b' WHERE id = 3`))).toMatchObject({ code: "42501", message: B_BLOCK })
  })
})

describe("a bad policy at startup", () => {
  const refusal = async (policyFile: string | object): Promise<string> => {
    try {
      const gw = await startGateway((p) => defaultConfig(p), policyFile as object)
      await gw.stop()
    } catch (e) {
      return (e as Error).message
    }
    throw new Error("expected the gateway to refuse to start")
  }

  it("a schema error: the gateway exits 1 and names the file and the problem's path", async () => {
    const message = await refusal({ version: 1, rules: [{ id: "ok", action: "allow" }, { id: "bad", match: { classes: ["reads"] }, action: "allow" }] })
    expect(message).toMatch(/^sluice exited with 1:/)
    expect(message).toMatch(/policy\.yaml: invalid policy/)
    expect(message).toMatch(/rules\.1\.match\.classes\.0: /)
    expect(message).not.toContain("listening")
  })

  it("a YAML syntax error: the gateway exits 1 and names the line", async () => {
    const message = await refusal("version: 1\nrules: [\n")
    expect(message).toMatch(/^sluice exited with 1:/)
    expect(message).toMatch(/policy\.yaml: invalid policy\n\s+\(root\): YAML line \d+, column \d+/)
  })
})
