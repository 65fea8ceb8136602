/**
 * Sluice's own Avro writer against avsc, the reference: byte-equal on every audit event
 * (arbitrary ones, and avsc's own random values of every schema version), on the long and
 * string edges where a hand-written encoder slips (varint widths, the one-byte length of
 * short strings, non-ASCII text around 64 units), and refusing what avsc refuses (and the
 * longs below -2^52 that avsc would write inexactly).
 */
import { randomUUID } from "node:crypto"
import avsc from "avsc"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { CURRENT_SCHEMA, encodeEvent, MIN_LONG, SCHEMA_VERSIONS } from "../../src/sinks/avro.ts"
import { avroWriter, InvalidValue, Output } from "../../src/sinks/avro-writer.ts"
import { auditArbitraries } from "./audit-arbitraries.ts"

const written = (write: (out: Output, value: unknown) => void, value: unknown, initialBytes = 16): Buffer => {
  const out = new Output(initialBytes) // small: every test also grows the buffer
  write(out, value)
  return out.buf.subarray(0, out.pos)
}

const MAX_LONG = 2 ** 53 - 2

const text = fc.oneof(fc.string(), fc.string({ unit: "grapheme" }), fc.string({ unit: "binary", maxLength: 80 }))
const long = fc.oneof(fc.integer({ min: MIN_LONG, max: MAX_LONG }), fc.integer({ min: -300, max: 300 }))
const { anyEvent } = auditArbitraries({ text, long, time: long, statementText: fc.oneof(text, fc.string({ unit: "grapheme", minLength: 60, maxLength: 3000 })) })

describe("the Avro writer", () => {
  it("writes every audit event exactly as avsc does", () => {
    fc.assert(
      fc.property(anyEvent, (e) => {
        const body = encodeEvent(e)
        // avsc reads the body into its own value and writes that value again: the same bytes
        expect(CURRENT_SCHEMA.type.toBuffer(CURRENT_SCHEMA.type.fromBuffer(body)).equals(body)).toBe(true)
      }),
      { numRuns: 1000 },
    )
  })

  for (const version of SCHEMA_VERSIONS) {
    it(`writes avsc's random values of ${version.file} as avsc does`, () => {
      const write = avroWriter(JSON.parse(version.json))
      for (let i = 0; i < 500; i++) {
        // avsc knows no uuid logical type: its random eventId is any string, which this writer refuses
        const value = { ...(version.type.random() as object), eventId: randomUUID() }
        expect(written(write, value).equals(version.type.toBuffer(value))).toBe(true)
      }
    })
  }

  it("longs: every varint width, both signs, up to the bounds avsc keeps", () => {
    const write = avroWriter("long")
    const longType = avsc.Type.forSchema("long")
    const edges = fc.integer({ min: 0, max: 53 }).chain((bits) => fc.constantFrom(2 ** bits, 2 ** bits - 1, -(2 ** bits), -(2 ** bits) + 1))
    fc.assert(
      fc.property(fc.oneof(edges, fc.integer({ min: MIN_LONG, max: MAX_LONG })), (n) => {
        fc.pre(n >= MIN_LONG && n <= MAX_LONG)
        expect(written(write, n).toString("hex")).toBe(longType.toBuffer(n).toString("hex"))
      }),
      { numRuns: 2000 },
    )
  })

  it("strings: short and long, ASCII or not, at any position", () => {
    const write = avroWriter("string")
    const stringType = avsc.Type.forSchema("string")
    const around64 = fc.tuple(fc.integer({ min: 0, max: 70 }), fc.string({ unit: "binary", maxLength: 3 }), fc.integer({ min: 0, max: 70 })).map(
      ([before, odd, after]) => "a".repeat(before) + odd + "b".repeat(after),
    )
    fc.assert(
      fc.property(fc.oneof(around64, fc.string({ unit: "binary", maxLength: 300 }), fc.string({ maxLength: 200 })), (s) => {
        expect(written(write, s).toString("hex")).toBe(stringType.toBuffer(s).toString("hex"))
      }),
      { numRuns: 2000 },
    )
  })

  it("uuids: writes a UUID as avsc writes the string, and refuses anything else", () => {
    const write = avroWriter({ type: "string", logicalType: "uuid" })
    const stringType = avsc.Type.forSchema("string")
    const isUuid = (s: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s)
    // a UUID with one character replaced by any other: every position, every kind of character
    const spoiled = fc.tuple(fc.uuid(), fc.nat(35), fc.string({ unit: "binary", minLength: 1, maxLength: 1 })).map(([u, i, c]) => u.slice(0, i) + c + u.slice(i + 1))
    fc.assert(
      fc.property(fc.oneof(fc.uuid(), fc.uuid().map((u) => u.toUpperCase()), spoiled, fc.string({ maxLength: 40 })), (s) => {
        if (isUuid(s)) expect(written(write, s).equals(stringType.toBuffer(s))).toBe(true)
        else expect(() => written(write, s), s).toThrow(InvalidValue)
      }),
      { numRuns: 3000 },
    )
  })

  it("refuses what avsc refuses, and longs below -2^52 that avsc would write inexactly, with an InvalidValue", () => {
    const cases: ReadonlyArray<readonly [string | object, unknown]> = [
      ["long", 1.5],
      ["long", 2 ** 53],
      ["long", MIN_LONG - 2], // avsc takes it, but cannot write it exactly
      ["int", 2 ** 31],
      ["string", 7],
      ["bytes", "text"],
      ["boolean", 0],
      [["null", "string"], undefined],
      [{ type: "enum", name: "E", symbols: ["a", "b"] }, "c"],
      [{ type: "array", items: "int" }, "not an array"],
      [{ type: "record", name: "R", fields: [{ name: "f", type: "string" }] }, { f: null }],
      [[{ type: "record", name: "A", fields: [] }, { type: "record", name: "B", fields: [] }], { C: {} }],
      [[{ type: "record", name: "A", fields: [] }, { type: "record", name: "B", fields: [] }], { A: {}, B: {} }],
    ]
    for (const [schema, value] of cases) {
      expect(() => written(avroWriter(schema), value), JSON.stringify(schema)).toThrow(InvalidValue)
    }
  })

  it("refuses a schema whose union it could not tell apart", () => {
    expect(() => avroWriter(["int", "long"])).toThrow(/cannot tell the branches/)
    expect(() => avroWriter({ type: "map", values: "string" })).toThrow(/does not support map/)
  })
})
