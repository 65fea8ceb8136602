/**
 * Which startup parameters a session starts with (src/streams/pg/startup-parameters.ts):
 * the settings Sluice passes on, in any case and from `options`, in PostgreSQL's order; a
 * refusal naming the first it does not pass on. Against the real server:
 * test/integration/pg-startup-parameters.test.ts.
 */
import fc from "fast-check"
import { Result } from "effect"
import { describe, expect, it } from "vitest"
import { sessionSettings, splitOptions } from "../../src/streams/pg/startup-parameters.ts"

const settingsOf = (parameters: Record<string, string>) => sessionSettings(new Map(Object.entries(parameters)))
const ok = (parameters: Record<string, string>) => {
  const r = settingsOf(parameters)
  if (Result.isFailure(r)) throw new Error(`refused: ${r.failure.reason}`)
  return r.success
}
const refusal = (parameters: Record<string, string>) => {
  const r = settingsOf(parameters)
  if (Result.isSuccess(r)) throw new Error(`not refused: ${JSON.stringify(r.success)}`)
  return r.failure
}

/** PostgreSQL's escaping for a word of `options`: a backslash before each space or backslash. */
const escape = (word: string) => word.replace(/[\s\\]/g, (c) => `\\${c}`)

describe("startup parameters", () => {
  it("the settings Sluice passes on, in whatever case the client spells them; user, database and _pq_ options are not settings", () => {
    expect(ok({ user: "ci", database: "app", application_name: "etl", datestyle: "ISO, DMY", TIMEZONE: "UTC", "_pq_.protocol_managed_params": "x" })).toEqual([
      ["application_name", "etl"],
      ["datestyle", "ISO, DMY"],
      ["TIMEZONE", "UTC"]
    ])
  })

  it("options: -c name=value, -cname=value and --name=value (dashes in the name become underscores) come first, then the parameters", () => {
    expect(ok({ search_path: "b", options: "-c statement_timeout=5s  -clock_timeout=1s\t--idle-in-transaction-session-timeout=9s -c search_path=a" })).toEqual([
      ["statement_timeout", "5s"],
      ["lock_timeout", "1s"],
      ["idle_in_transaction_session_timeout", "9s"],
      ["search_path", "a"],
      ["search_path", "b"]
    ])
  })

  it("options is cut into words as PostgreSQL cuts it: whitespace, and backslash escapes", () => {
    expect(splitOptions("  -c   a=b\\ c\\\\d\t--x=y\\")).toEqual(["-c", "a=b c\\d", "--x=y\\"])
    fc.assert(
      fc.property(fc.array(fc.string({ minLength: 1 }), { maxLength: 6 }), fc.constantFrom(" ", "\t", "  \n "), (words, gap) => {
        expect(splitOptions(words.map(escape).join(gap))).toEqual(words)
      })
    )
  })

  it("a setting Sluice does not pass on is refused by name, as a parameter or in options", () => {
    expect(refusal({ work_mem: "1GB" })).toMatchObject({ parameter: "work_mem" })
    expect(refusal({ work_mem: "1GB" }).reason).toContain("statement_timeout")
    expect(refusal({ options: "-c statement_timeout=5s -c standard_conforming_strings=off" })).toMatchObject({ parameter: "standard_conforming_strings" })
    expect(refusal({ options: "--role=admin" })).toMatchObject({ parameter: "role" })
    expect(refusal({ session_authorization: "postgres" })).toMatchObject({ parameter: "session_authorization" })
  })

  it("options words that are not settings are refused: other server switches, -c without name=value", () => {
    for (const options of ["-B 100", "-c", "-c statement_timeout", "-c =5s", "--", "statement_timeout=5s"]) {
      expect(refusal({ options })).toMatchObject({ parameter: "options" })
    }
  })

  it("any mix of passed settings, as parameters or in options, is passed on whole; one other anywhere refuses the session", () => {
    const passed = fc.constantFrom("application_name", "DateStyle", "TimeZone", "search_path", "statement_timeout", "lock_timeout")
    const value = fc.string({ maxLength: 12 })
    const other = fc.constantFrom("work_mem", "role", "standard_conforming_strings", "log_statement")
    fc.assert(
      fc.property(fc.array(fc.tuple(passed, value, fc.boolean())), fc.option(fc.tuple(other, value, fc.boolean()), { nil: undefined }), (settings, bad) => {
        const all = bad === undefined ? settings : [...settings, bad]
        const inOptions = all.filter(([, , o]) => o)
        const direct = new Map(all.filter(([, , o]) => !o).map(([n, v]) => [n, v]))
        const parameters: Record<string, string> = { user: "ci", ...Object.fromEntries(direct) }
        if (inOptions.length > 0) parameters["options"] = inOptions.map(([n, v]) => `-c ${escape(`${n}=${v}`)}`).join(" ")
        const r = settingsOf(parameters)
        if (bad !== undefined) {
          expect(Result.isFailure(r) && r.failure.parameter).toBe(bad[0])
          return
        }
        expect(Result.getOrThrow(r)).toEqual([...inOptions.map(([n, v]) => [n, v]), ...direct])
      })
    )
  })
})
