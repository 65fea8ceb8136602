/**
 * Startup parameters against the real server: the settings Sluice passes on are in force
 * in the session, whether given as parameters (in any case) or in `options` (libpq's
 * PGOPTIONS, with psql as the client); any other is refused by name with a FATAL, never
 * dropped quietly. Rules in detail: test/property/pg-startup-parameters.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { openSession, simpleQuery } from "./bypass/wire.ts"
import { type Gateway, startGateway, TOKEN } from "./support/gateway.ts"
import type { RawClient } from "./support/raw-client.ts"
import { run } from "../harness/process.ts"

describe("startup parameters through Sluice", () => {
  let gw: Gateway
  const opened: Array<RawClient> = []
  const session = async (startup: Record<string, string>) => {
    const c = await openSession(gw.port, startup)
    opened.push(c)
    return c
  }
  const show = async (c: RawClient, setting: string) => (await simpleQuery(c, `SHOW ${setting}`)).rows[0]?.[0]

  beforeAll(async () => {
    gw = await startGateway()
  })
  afterAll(async () => {
    for (const c of opened) c.close()
    await gw?.stop()
  })

  it("settings in options are in force: statement_timeout cancels a longer statement, search_path resolves names", async () => {
    const c = await session({ options: "-c statement_timeout=300 --search-path=pg_catalog,public" })
    expect(await show(c, "statement_timeout")).toBe("300ms")
    expect(await show(c, "search_path")).toBe("pg_catalog,public")
    const slow = await simpleQuery(c, "SELECT pg_sleep(2)")
    expect(slow.errors.map((e) => e.code)).toEqual(["57014"])
  })

  it("a parameter spelled in another case (libpq sends PGDATESTYLE as datestyle) is in force", async () => {
    const c = await session({ datestyle: "SQL, DMY", timezone: "Asia/Tokyo" })
    expect(await show(c, "DateStyle")).toBe("SQL, DMY")
    expect(await show(c, "TimeZone")).toBe("Asia/Tokyo")
  })

  it("a parameter wins over the same setting in options, as in PostgreSQL", async () => {
    const c = await session({ options: "-c lock_timeout=1s", lock_timeout: "2s" })
    expect(await show(c, "lock_timeout")).toBe("2s")
  })

  const refused = (startup: Record<string, string>) => openSession(gw.port, startup).then((c) => (opened.push(c), "logged in"), (e: Error) => e.message)

  it("a setting Sluice does not pass on refuses the session with a FATAL naming it, as a parameter or in options", async () => {
    expect(await refused({ work_mem: "1GB" })).toMatch(/^login failed: 42501 startup parameter "work_mem": the setting "work_mem" cannot be given at startup through Sluice/)
    // it would change how literals read: the bypass corpus relies on its being refused
    expect(await refused({ options: "-c standard_conforming_strings=off" })).toMatch(/^login failed: 42501 startup parameter "standard_conforming_strings"/)
    expect(await refused({ standard_conforming_strings: "off" })).toMatch(/^login failed: 42501 startup parameter "standard_conforming_strings"/)
    expect(await refused({ options: "--role=pg_read_all_data" })).toMatch(/^login failed: 42501 startup parameter "role"/)
    expect(await refused({ options: "-B 64" })).toMatch(/^login failed: 42501 startup parameter "options": "-B" is not a setting/)
  })

  it("a replication connection is refused, before authentication", async () => {
    expect(await refused({ replication: "database" })).toMatch(/^expected a password request, got .*"42501".*"replication connections are not allowed through Sluice"/)
  })

  it("psql with PGOPTIONS: a passed setting is in force, another is refused with the message on stderr", async () => {
    const env = { ...process.env, PGHOST: "127.0.0.1", PGPORT: String(gw.port), PGUSER: "ci", PGDATABASE: "app", PGPASSWORD: TOKEN, PGSSLMODE: "disable" }
    const ok = await run("psql", "psql", ["-X", "-At", "-c", "SHOW statement_timeout"], { env: { ...env, PGOPTIONS: "-c statement_timeout=42s" } })
    expect(ok.stdout.trim()).toBe("42s")
    await expect(run("psql", "psql", ["-X", "-At", "-c", "SELECT 1"], { env: { ...env, PGOPTIONS: "-c work_mem=1GB" } })).rejects.toThrow(
      /exited with code 2\n.*FATAL: {2}startup parameter "work_mem"/
    )
  })
})
