/**
 * Statement text for the audit trail: with its literals redacted, no literal survives and
 * the rest does; cut to the policy's size, it stays within the limit and says so.
 */
import * as fc from "fast-check"
import { beforeAll, describe, expect, it } from "vitest"
import { loadClassifier } from "../../src/rules/classify/index.ts"
import { redactLiterals, WITHHELD } from "../../src/sinks/redact.ts"
import { capNames, capText } from "../../src/streams/pg/audit-events.ts"

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

describe("capText", () => {
  it("keeps text within the limit as it is, and cuts longer text on a character boundary, marked with its full size", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 400 }), fc.integer({ min: 1, max: 300 }), (text, limit) => {
        const bytes = Buffer.byteLength(text)
        const out = capText(text, limit)
        if (bytes <= limit) {
          expect(out).toBe(text)
          return
        }
        const marker = `… [statement text cut: ${bytes} bytes in all]`
        expect(out.endsWith(marker)).toBe(true)
        const head = out.slice(0, -marker.length)
        expect(Buffer.byteLength(head)).toBeLessThanOrEqual(limit)
        expect(Buffer.byteLength(head)).toBeGreaterThan(limit - 4) // at most one character dropped
        expect(text.startsWith(head)).toBe(true)
      }),
      { numRuns: 500 }
    )
  })
})

describe("capNames", () => {
  it("keeps names while they fit, then says how many more there were", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 20 }), { maxLength: 40 }), fc.integer({ min: 1, max: 200 }), (names, limit) => {
        const out = capNames(names, limit)
        const total = names.reduce((n, s) => n + Buffer.byteLength(s), 0)
        if (total <= limit) {
          expect(out).toEqual(names)
          return
        }
        const kept = out.slice(0, -1)
        expect(kept).toEqual(names.slice(0, kept.length))
        expect(kept.reduce((n, s) => n + Buffer.byteLength(s), 0)).toBeLessThanOrEqual(limit)
        expect(out.at(-1)).toBe(`… and ${names.length - kept.length} more`)
      }),
      { numRuns: 300 }
    )
  })
})
