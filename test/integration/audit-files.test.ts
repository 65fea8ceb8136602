/**
 * The embedded default audit sink: with no Kafka configured, every session's events land
 * in rotated Avro container files, complete, in order, and tied together by statement id.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { readContainerFiles } from "../../src/sinks/file-sink.ts"
import type { AuditEvent } from "../../src/sinks/events.ts"
import { defaultConfig, type Gateway, startGateway } from "./support/gateway.ts"

const POLICY = {
  version: 1,
  defaults: { "*": { action: "allow" } },
  rules: [{ id: "no-deletes", match: { regex: "^\\s*delete" }, action: "block", message: "no deletes here" }]
}

describe("audit to Avro container files", () => {
  let gw: Gateway
  const dir = mkdtempSync(join(tmpdir(), "sluice-audit-files-"))
  const files = join(dir, "files")

  beforeAll(async () => {
    gw = await startGateway(
      (port) => ({ ...defaultConfig(port), audit: { spool: { directory: join(dir, "spool") }, files: { directory: files, maxFileAgeMs: 500 } } }),
      POLICY
    )
  })

  afterAll(async () => {
    await gw?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it("records every session, statement, decision and result, in order", async () => {
    const c = new pg.Client(gw.connection())
    await c.connect()
    await c.query("SELECT 1 AS one")
    await c.query({ text: "SELECT $1::int AS n", values: [7] })
    await expect(c.query("DELETE FROM pg_class WHERE false")).rejects.toMatchObject({ code: "42501" })
    await expect(c.query("SELECT 1/0")).rejects.toMatchObject({ code: "22012" })
    await c.end()
    const deadline = Date.now() + 15_000
    let events: ReadonlyArray<AuditEvent> = []
    while (Date.now() < deadline) {
      events = await Effect.runPromise(readContainerFiles(files))
      if (events.some((e) => e.payload._tag === "SessionEnd")) break
      await new Promise((r) => setTimeout(r, 200))
    }
    const session = events.filter((e) => e.payload._tag === "SessionStart")[0]!.sessionId
    const mine = events.filter((e) => e.sessionId === session).sort((a, b) => a.sequence - b.sequence)
    expect(mine.map((e) => e.sequence)).toEqual(mine.map((_, i) => i))
    expect(mine.map((e) => e.payload._tag)).toEqual([
      "SessionStart",
      ...["Statement", "Decision", "Result"],
      ...["Statement", "Decision", "Result"],
      ...["Statement", "Decision", "Result"],
      ...["Statement", "Decision", "Result"],
      "SessionEnd"
    ])
    const payloads = mine.map((e) => e.payload)
    const decisions = payloads.filter((p) => p._tag === "Decision")
    expect(decisions.map((d) => [d.statementId, d.verdict, d.ruleId])).toEqual([
      [0, "allow", "default:*"],
      [1, "allow", "default:*"],
      [2, "block", "no-deletes"],
      [3, "allow", "default:*"]
    ])
    const results = payloads.filter((p) => p._tag === "Result")
    expect(results.map((r) => [r.statementId, r.rows, r.sqlstate])).toEqual([
      [0, 1, "00000"],
      [1, 1, "00000"],
      [2, 0, "42501"],
      [3, 0, "22012"]
    ])
    const statements = payloads.filter((p) => p._tag === "Statement")
    expect(statements.map((s) => [s.statementId, s.statementClass, s.via])).toEqual([
      [0, "read", "simple"],
      [1, "read", "extended"],
      [2, "write", "simple"],
      [3, "read", "simple"]
    ])
    const start = payloads[0]!
    expect(start._tag === "SessionStart" && [start.actor.subject, start.targetName, start.backendUser]).toEqual(["ci-job", "app", inject("servers").pg.backend.user])
    expect(JSON.stringify(mine)).not.toContain(inject("servers").pg.backend.password)
  })
})
