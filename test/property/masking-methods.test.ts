/**
 * Properties of the masking methods: per type and format, what a masked value becomes,
 * checked against a model written over JavaScript strings (code points), independent
 * of the byte-level implementation.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import {
  DEFAULT_PARTIAL_KEEP,
  FIRST_USER_OID,
  valueMask,
  type MaskSpec
} from "../../src/rules/masking/methods.ts"

const RUNS = 1000

const enc = new TextEncoder()
const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })
const utf8 = (s: string): Uint8Array => enc.encode(s)
/** The UTF-8 text of a masked value, failing the test if it is not valid UTF-8. */
const text = (b: Uint8Array | null): string | null => (b === null ? null : strict.decode(b))

/** String types whose binary format is their text bytes. */
const TEXT_BINARY = [25, 1043, 1042, 19, 705] as const
/** String types in text format (adds "char" and user-defined types). */
const TEXT_FORMAT = [...TEXT_BINARY, 18, 16384, 16385, 50_000, 0xffff_ffff] as const
const JSON_TYPES = [114, 3802] as const
const KNOWN = new Set<number>([...TEXT_BINARY, 18, ...JSON_TYPES])

/** A column masked with string methods: [typeOid, binary]. */
const stringColumn: fc.Arbitrary<readonly [number, boolean]> = fc.oneof(
  fc.tuple(fc.constantFrom(...TEXT_BINARY), fc.boolean()),
  fc.tuple(fc.constantFrom(...TEXT_FORMAT), fc.constant(false)),
  fc.tuple(fc.integer({ min: FIRST_USER_OID, max: 0xffff_ffff }), fc.constant(false))
)

/** A type OID that is neither a string type nor json: every method gives NULL. */
const otherOid: fc.Arbitrary<number> = fc
  .oneof(
    fc.constantFrom(16, 17, 20, 21, 23, 26, 700, 701, 1082, 1114, 1184, 1700, 2950, 1007, 1009, 199, 3807, 0),
    fc.integer({ min: 0, max: FIRST_USER_OID - 1 })
  )
  .filter((o) => !KNOWN.has(o))

const keep = fc.nat(12)
const spec: fc.Arbitrary<MaskSpec> = fc.oneof(
  fc.constant({ method: "redact" } as const),
  fc.constant({ method: "null" } as const),
  fc.constant({ method: "email" } as const),
  fc.constant({ method: "partial" } as const),
  keep.map((k) => ({ method: "partial", keep: k }) as const)
)

/** Well-formed strings, heavy in the characters the methods care about. */
const piece = fc.constantFrom("@", "*", "****", "a", "Z", "0", ".", "é", "e\u0301", "中", "\u{1F600}", "\uFEFF", "\u{10FFFF}", "\0", " ")
const str: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 30 }),
  fc.array(piece, { maxLength: 30 }).map((a) => a.join(""))
)

/** Bytes that are not valid UTF-8. */
const invalidUtf8: fc.Arbitrary<Uint8Array> = fc
  .tuple(
    str,
    fc.constantFrom([0x80], [0xff], [0xc3], [0xe4, 0xb8], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xf4, 0x90, 0x80, 0x80], [0xfe]),
    fc.nat(40)
  )
  .map(([s, bad, at]) => {
    const b = utf8(s)
    const cut = Math.min(at, b.length)
    // Inserted anywhere, even inside a sequence; the filter keeps only invalid results.
    return Uint8Array.from([...b.subarray(0, cut), ...bad, ...b.subarray(cut)])
  })
  .filter((b) => {
    try {
      strict.decode(b)
      return false
    } catch {
      return true
    }
  })

/** A value as a view into a larger buffer, as the DataRow hands it to a mask. */
const view = (b: Uint8Array): Uint8Array => {
  const big = new Uint8Array(b.length + 10).fill(0x40)
  big.set(b, 5)
  return big.subarray(5, 5 + b.length)
}

// ---- the model ---------------------------------------------------------------

const keepOf = (s: MaskSpec): number => {
  if (s.method !== "partial") return 0
  const k = s.keep ?? DEFAULT_PARTIAL_KEEP
  return Number.isSafeInteger(k) && k >= 0 ? k : 0
}

/** What a string column's value becomes, over code points. */
const modelString = (s: MaskSpec, value: string): string | null => {
  switch (s.method) {
    case "null":
      return null
    case "redact":
      return "****"
    case "partial": {
      const k = keepOf(s)
      const cps = [...value]
      return cps.length <= k * 2 ? "****" : "****" + (k === 0 ? "" : cps.slice(-k).join(""))
    }
    case "email": {
      const at = value.lastIndexOf("@")
      return at < 0 ? "****" : "****@" + value.slice(at + 1)
    }
  }
}

// ---- tables --------------------------------------------------------------------

describe("masking methods: table", () => {
  const cases: ReadonlyArray<readonly [name: string, spec: MaskSpec, oid: number, binary: boolean, input: string, expected: string | null]> = [
    ["text redact", { method: "redact" }, 25, false, "secret value", "****"],
    ["text redact empty", { method: "redact" }, 25, false, "", "****"],
    ["varchar binary redact", { method: "redact" }, 1043, true, "x", "****"],
    ["bpchar redact", { method: "redact" }, 1042, false, "ab  ", "****"],
    ["name binary redact", { method: "redact" }, 19, true, "relname", "****"],
    ["char text redact", { method: "redact" }, 18, false, "a", "****"],
    ["unknown binary email", { method: "email" }, 705, true, "a@b.c", "****@b.c"],
    ["text null", { method: "null" }, 25, false, "x", null],
    ["text partial default", { method: "partial" }, 25, false, "4111111111111111", "****1111"],
    ["text partial short", { method: "partial" }, 25, false, "12345678", "****"],
    ["text partial one over", { method: "partial" }, 25, false, "123456789", "****6789"],
    ["text partial keep 2", { method: "partial", keep: 2 }, 25, false, "abcdef", "****ef"],
    ["text partial keep 0", { method: "partial", keep: 0 }, 25, false, "abcdef", "****"],
    ["text partial negative keep", { method: "partial", keep: -3 }, 25, false, "abcdef", "****"],
    ["text partial fractional keep", { method: "partial", keep: 1.5 }, 25, false, "abcdef", "****"],
    ["text partial NaN keep", { method: "partial", keep: Number.NaN }, 25, false, "abcdef", "****"],
    ["text partial code points", { method: "partial", keep: 2 }, 25, false, "ab中\u{1F600}x", "****\u{1F600}x"],
    ["text partial astral tail", { method: "partial", keep: 1 }, 1043, true, "abc\u{1F600}", "****\u{1F600}"],
    ["text email", { method: "email" }, 25, false, "jane.doe@example.com", "****@example.com"],
    ["text email last @", { method: "email" }, 25, false, '"a@b"@example.org', "****@example.org"],
    ["text email no @", { method: "email" }, 25, false, "not an email", "****"],
    ["text email empty domain", { method: "email" }, 25, false, "jane@", "****@"],
    ["citext text email", { method: "email" }, 90_001, false, "X@Y.Z", "****@Y.Z"],
    ["enum text redact", { method: "redact" }, 16384, false, "happy", "****"],
    ["user binary redact", { method: "redact" }, 16384, true, "happy", null],
    ["char binary redact", { method: "redact" }, 18, true, "a", null],
    ["json redact", { method: "redact" }, 114, false, '{"ssn":"123"}', '"****"'],
    ["json binary partial", { method: "partial" }, 114, true, '{"ssn":"123"}', '"****"'],
    ["jsonb email", { method: "email" }, 3802, false, '"a@b.c"', '"****"'],
    ["jsonb binary redact", { method: "redact" }, 3802, true, '\u0001{"a": 1}', '\u0001"****"'],
    ["jsonb null", { method: "null" }, 3802, true, "\u0001{}", null],
    ["int4 redact", { method: "redact" }, 23, false, "42", null],
    ["int8 binary partial", { method: "partial" }, 20, true, "\0\0\0\0\0\0\0\u0001", null],
    ["numeric email", { method: "email" }, 1700, false, "3.14", null],
    ["date redact", { method: "redact" }, 1082, false, "2024-01-01", null],
    ["uuid redact", { method: "redact" }, 2950, false, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", null],
    ["bytea redact", { method: "redact" }, 17, false, "\\xdeadbeef", null],
    ["text[] redact", { method: "redact" }, 1009, false, "{a,b}", null],
    ["bool redact", { method: "redact" }, 16, false, "t", null]
  ]
  for (const [name, s, oid, binary, input, expected] of cases) {
    it(name, () => {
      expect(text(valueMask(s, oid, binary)(utf8(input)))).toBe(expected)
    })
  }

  it("invalid UTF-8 in a string column: partial and email give NULL, redact the constant", () => {
    const bad = Uint8Array.of(0x61, 0x62, 0xff, 0x40, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a)
    expect(valueMask({ method: "partial" }, 25, false)(bad)).toBeNull()
    expect(valueMask({ method: "email" }, 25, false)(bad)).toBeNull()
    expect(text(valueMask({ method: "redact" }, 25, false)(bad))).toBe("****")
  })
})

// ---- properties ----------------------------------------------------------------

describe("masking methods: properties", () => {
  it("string columns follow the code point model, and the output is valid UTF-8", () => {
    fc.assert(
      fc.property(spec, stringColumn, str, fc.boolean(), (s, [oid, binary], value, asView) => {
        const input = utf8(value)
        const out = valueMask(s, oid, binary)(asView ? view(input) : input)
        expect(text(out)).toBe(modelString(s, value))
        expect(Buffer.isBuffer(out)).toBe(false)
      }),
      { numRuns: RUNS }
    )
  })

  it("redact is the constant ****, for any bytes, in every string column", () => {
    fc.assert(
      fc.property(stringColumn, fc.uint8Array({ maxLength: 64 }), ([oid, binary], value) => {
        expect(text(valueMask({ method: "redact" }, oid, binary)(value))).toBe("****")
      }),
      { numRuns: RUNS }
    )
  })

  it("partial keeps exactly the last keep code points of a long value, behind a fixed ****", () => {
    fc.assert(
      fc.property(keep, stringColumn, str, (k, [oid, binary], value) => {
        const cps = [...value]
        fc.pre(cps.length > k * 2)
        const out = [...text(valueMask({ method: "partial", keep: k }, oid, binary)(utf8(value)))!]
        expect(out.length).toBe(4 + k)
        expect(out.slice(0, 4).join("")).toBe("****")
        expect(out.slice(4)).toEqual(cps.slice(cps.length - k))
      }),
      { numRuns: RUNS }
    )
  })

  it("partial masks a short value entirely", () => {
    fc.assert(
      fc.property(keep, stringColumn, str, (k, [oid, binary], value) => {
        fc.pre([...value].length <= k * 2)
        expect(text(valueMask({ method: "partial", keep: k }, oid, binary)(utf8(value)))).toBe("****")
      }),
      { numRuns: RUNS }
    )
  })

  it("email keeps the domain after the last @ and nothing else", () => {
    fc.assert(
      fc.property(stringColumn, str, str, fc.boolean(), ([oid, binary], local, domain, withAt) => {
        const d = domain.replaceAll("@", "")
        const value = withAt ? `${local}@${d}` : local.replaceAll("@", "")
        const out = text(valueMask({ method: "email" }, oid, binary)(utf8(value)))
        expect(out).toBe(withAt ? `****@${d}` : "****")
      }),
      { numRuns: RUNS }
    )
  })

  it("a masked string never reveals more than the method keeps: output equals input only if the input already looked masked", () => {
    fc.assert(
      fc.property(spec, stringColumn, str, (s, [oid, binary], value) => {
        fc.pre(value.length > 0)
        const out = text(valueMask(s, oid, binary)(utf8(value)))
        if (out === value) expect(value.startsWith("****")).toBe(true)
        if (out !== null) {
          // Everything after the **** prefix is a suffix of the input.
          expect(out.startsWith("****")).toBe(true)
          expect(value.endsWith(out.slice(4))).toBe(true)
        }
      }),
      { numRuns: RUNS }
    )
  })

  it("the output is bounded: 4 + 4 * keep bytes for partial, at most the input plus 4 for email", () => {
    fc.assert(
      fc.property(keep, stringColumn, str, (k, [oid, binary], value) => {
        const input = utf8(value)
        expect(valueMask({ method: "partial", keep: k }, oid, binary)(input)!.length).toBeLessThanOrEqual(4 + 4 * k)
        expect(valueMask({ method: "email" }, oid, binary)(input)!.length).toBeLessThanOrEqual(input.length + 4)
      }),
      { numRuns: RUNS }
    )
  })

  it("invalid UTF-8 gives NULL for partial and email", () => {
    fc.assert(
      fc.property(fc.oneof(keep.map((k) => ({ method: "partial", keep: k }) as const), fc.constant({ method: "email" } as const)), stringColumn, invalidUtf8, (s, [oid, binary], value) => {
        expect(valueMask(s, oid, binary)(value)).toBeNull()
      }),
      { numRuns: RUNS }
    )
  })

  it("every other type gives NULL, whatever the method, format and value", () => {
    fc.assert(
      fc.property(spec, otherOid, fc.boolean(), fc.uint8Array({ maxLength: 32 }), (s, oid, binary, value) => {
        expect(valueMask(s, oid, binary)(value)).toBeNull()
      }),
      { numRuns: RUNS }
    )
  })

  it("user-defined types and \"char\" in binary format give NULL", () => {
    fc.assert(
      fc.property(spec, fc.oneof(fc.constant(18), fc.integer({ min: FIRST_USER_OID, max: 0xffff_ffff })), fc.uint8Array({ maxLength: 32 }), (s, oid, value) => {
        expect(valueMask(s, oid, true)(value)).toBeNull()
      }),
      { numRuns: RUNS }
    )
  })

  it("json and jsonb give the JSON string \"****\" (after jsonb's version byte in binary), or NULL for null", () => {
    fc.assert(
      fc.property(spec, fc.constantFrom(...JSON_TYPES), fc.boolean(), fc.uint8Array({ maxLength: 32 }), (s, oid, binary, value) => {
        const out = valueMask(s, oid, binary)(value)
        if (s.method === "null") {
          expect(out).toBeNull()
          return
        }
        expect(out).not.toBeNull()
        const body = oid === 3802 && binary ? out!.subarray(1) : out!
        if (oid === 3802 && binary) expect(out![0]).toBe(1)
        expect(JSON.parse(text(body)!)).toBe("****")
      }),
      { numRuns: RUNS }
    )
  })

  it("a mask that declares a constant output gives it for every value; redact, null and json always declare one", () => {
    fc.assert(
      fc.property(spec, fc.oneof(stringColumn, fc.tuple(fc.oneof(otherOid, fc.constantFrom(...JSON_TYPES)), fc.boolean())), fc.uint8Array({ maxLength: 32 }), (s, [oid, binary], value) => {
        const m = valueMask(s, oid, binary)
        if (s.method === "redact" || s.method === "null" || JSON_TYPES.includes(oid as 114) || !KNOWN.has(oid) && oid < FIRST_USER_OID) {
          expect(m.constant).not.toBeUndefined()
        }
        if (s.method === "partial" || s.method === "email") {
          // A string column's partial and email depend on the value.
          if (TEXT_BINARY.includes(oid as 25) || (!binary && (oid === 18 || oid >= FIRST_USER_OID))) expect(m.constant).toBeUndefined()
        }
        if (m.constant !== undefined) expect(m(value)).toEqual(m.constant)
      }),
      { numRuns: RUNS }
    )
  })

  it("masks do not modify their input", () => {
    fc.assert(
      fc.property(spec, fc.oneof(stringColumn, fc.tuple(fc.constantFrom(...JSON_TYPES, 23), fc.boolean())), str, (s, [oid, binary], value) => {
        const input = utf8(value)
        const copy = input.slice()
        valueMask(s, oid, binary)(input)
        expect(input).toEqual(copy)
      }),
      { numRuns: RUNS }
    )
  })
})
