/** Statement text with its literals redacted for the audit trail: no literal survives, the rest does. */
import * as fc from "fast-check"
import { beforeAll, describe, expect, it } from "vitest"
import { loadClassifier } from "../../src/rules/classify/index.ts"
import { redactLiterals, WITHHELD } from "../../src/sinks/redact.ts"

beforeAll(loadClassifier)

describe("redactLiterals", () => {
  it("replaces every kind of literal by a numbered placeholder and keeps the rest as written", () => {
    expect(redactLiterals("SELECT * FROM t WHERE name = 'bob' AND id = 42 AND x = E'a\\'b' AND y = $q$x'y$q$")).toBe(
      "SELECT * FROM t WHERE name = $1 AND id = $2 AND x = $3 AND y = $4"
    )
    expect(redactLiterals("INSERT INTO users (email) VALUES (U&'d\\0061ta')")).toBe("INSERT INTO users (email) VALUES ($1)")
  })

  it("never lets a secret literal through, whatever it contains", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 6, maxLength: 30 }).filter((s) => /^[A-Za-z0-9]+$/.test(s)), (secret) => {
        for (const sql of [`SELECT '${secret}'`, `UPDATE t SET p = $tag$${secret}$tag$`, `SELECT E'\\x41${secret}'`]) {
          const out = redactLiterals(sql)
          expect(out === WITHHELD || !out.includes(secret)).toBe(true)
        }
      })
    )
  })

  it("withholds text whose literals it cannot account for", () => {
    expect(redactLiterals("SELECT 'unterminated")).toBe(WITHHELD)
  })
})
