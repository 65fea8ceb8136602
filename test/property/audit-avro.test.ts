/**
 * Audit events in Avro: round trips of every payload kind (plain, single-object,
 * Confluent), decoders that never throw on garbage, the CRC-64-AVRO fingerprint against
 * the Avro project's own vectors, and schema evolution: every consecutive pair of
 * checked-in versions is backward compatible, and the checker itself is shown to refuse
 * incompatible changes and accept compatible ones.
 */
import { isUtf8 } from "node:buffer"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import avsc from "avsc"
import { Result } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import {
  AvroEncodeError,
  bodyReader,
  CURRENT_SCHEMA,
  confluentSchemaId,
  decodeConfluent,
  decodeEvent,
  decodeSingleObject,
  encodeConfluent,
  encodeEvent,
  encodeSingleObject,
  MIN_LONG,
  SCHEMA_DIRECTORY,
  SCHEMA_VERSIONS,
  SINGLE_OBJECT_MAGIC,
  schemaVersion,
  tryEncodeEvent,
} from "../../src/sinks/avro.ts"
import { checkWellFormed, isBackwardCompatible, MalformedAvro, parsingCanonicalForm, rabinFingerprint64 } from "../../src/sinks/avro-spec.ts"
import type { AuditEvent, Payload } from "../../src/sinks/events.ts"
import { auditArbitraries } from "./audit-arbitraries.ts"

// ---------------------------------------------------------------------------------------------
// arbitraries

/** The longs avsc encodes exactly: -2^52 .. 2^53 - 2 (see MIN_LONG). */
const SAFE = 2 ** 53 - 2
const safeLong = fc.oneof(fc.integer({ min: MIN_LONG, max: SAFE }), fc.constantFrom(SAFE, MIN_LONG, 0, -1))

const text = fc.oneof(fc.string(), fc.string({ unit: "grapheme" }), fc.string({ unit: "binary", maxLength: 20 }))
const long = fc.oneof(safeLong, fc.integer({ min: 0, max: 1_000_000 }))

const { payloads: PAYLOADS, eventOf, anyEvent } = auditArbitraries({
  text,
  long,
  time: safeLong,
  eventId: fc.oneof(fc.uuid(), fc.uuid().map((u) => u.toUpperCase())),
  statementText: fc.oneof(text, fc.string({ unit: "grapheme", minLength: 1000, maxLength: 5000 }))
})
const { SessionStart: sessionStart, Statement: statement, Decision: decision, MaskingSummary: maskingSummary } = PAYLOADS

/** The payload kinds a schema version's union has, in order (v1: five; v2 appends RecordedRows; v3 MaskingSummary). */
const kindsOf = (version: { readonly json: string }): ReadonlyArray<string> =>
  JSON.parse(version.json).fields.find((f: { name: string }) => f.name === "payload").type.map((b: { name: string }) => b.name)

const ok = <A, E>(r: Result.Result<A, E>): A => {
  if (Result.isFailure(r)) throw new Error(`expected success, got ${String(r.failure)}`)
  return r.success
}

// ---------------------------------------------------------------------------------------------

describe("audit events in Avro", () => {
  for (const [kind, payload] of Object.entries(PAYLOADS)) {
    it(`${kind}: plain binary round trip`, () => {
      fc.assert(
        fc.property(eventOf(payload), (e) => {
          expect(ok(decodeEvent(encodeEvent(e)))).toStrictEqual(e)
        }),
        { numRuns: 300 },
      )
    })
  }

  it("single-object encoding: C3 01, the newest schema's fingerprint (little-endian), the plain body", () => {
    fc.assert(
      fc.property(anyEvent, (e) => {
        const framed = encodeSingleObject(e)
        expect(framed.subarray(0, 2)).toEqual(Buffer.from([0xc3, 0x01]))
        expect(framed.subarray(2, 10)).toEqual(CURRENT_SCHEMA.fingerprint)
        expect(framed.subarray(10)).toEqual(encodeEvent(e))
        expect(ok(decodeSingleObject(framed))).toStrictEqual(e)
      }),
    )
  })

  it("Confluent wire format: 00, the schema id big-endian, the plain body", () => {
    fc.assert(
      fc.property(anyEvent, fc.integer({ min: 0, max: 0xffffffff }), (e, id) => {
        const framed = encodeConfluent(e, id)
        expect(framed[0]).toBe(0)
        expect(framed.readUInt32BE(1)).toBe(id)
        expect(framed.subarray(5)).toEqual(encodeEvent(e))
        expect(ok(confluentSchemaId(framed))).toBe(id)
        expect(ok(decodeConfluent(framed, (i) => (i === id ? CURRENT_SCHEMA : undefined)))).toStrictEqual(e)
        const unknown = decodeConfluent(framed, () => undefined)
        expect(Result.isFailure(unknown) && unknown.failure.reason).toBe(`unknown schema id ${id}`)
      }),
    )
    expect(() => encodeConfluent({} as AuditEvent, 2 ** 32)).toThrow(AvroEncodeError)
  })

  it("events far larger than the encoder's scratch buffer (64 KiB), then small ones again", () => {
    fc.assert(
      fc.property(eventOf(statement), fc.integer({ min: 60_000, max: 3_000_000 }), eventOf(decision), (e, size, small) => {
        const big = { ...e, payload: { ...e.payload, text: "é".repeat(size) } as Payload }
        expect(ok(decodeSingleObject(encodeSingleObject(big)))).toStrictEqual(big)
        expect(ok(decodeConfluent(encodeConfluent(small, 9), () => CURRENT_SCHEMA))).toStrictEqual(small)
      }),
      { numRuns: 10 },
    )
  })

  it("the event's own type is enforced when encoding: typed error, never a corrupt message", () => {
    fc.assert(
      fc.property(
        anyEvent,
        fc.constantFrom<(e: AuditEvent) => AuditEvent>(
          (e) => ({ ...e, eventId: "not-a-uuid" }),
          (e) => ({ ...e, sequence: 1.5 }),
          (e) => ({ ...e, time: 2 ** 60 }),
          (e) => ({ ...e, time: MIN_LONG - 2 }),
          (e) => ({ ...e, payload: { _tag: "Result", statementId: 1, rows: -(2 ** 53) + 2, bytes: 0, durationMicros: 0, sqlstate: "00000", commandTag: null } }),
          (e) => ({ ...e, sessionId: 7 as unknown as string }),
          (e) => ({ ...e, payload: { ...e.payload, _tag: "Nope" } as unknown as Payload }),
          (e) => ({ ...e, payload: { _tag: "Decision", statementId: 1, verdict: "other", ruleId: "r", reason: null, policyVersion: "v" } as unknown as Payload }),
          (e) => ({ ...e, payload: { ...(e.payload as object), _tag: "SessionStart", clientPort: 2 ** 31 } as unknown as Payload }),
          (e) => ({ ...e, payload: { _tag: "MaskingSummary", statementId: 1, columns: [{ name: "c", source: null, maskId: "m", method: "other" }], rows: 1, messagesWithheld: 0 } as unknown as Payload }),
          (e) => ({ ...e, payload: { _tag: "MaskingSummary", statementId: 1, columns: [{ name: "c", source: null, maskId: "m", method: "hash", values: 1 }], rows: 1, messagesWithheld: 0 } as unknown as Payload }),
          (e) => ({ ...e, payload: { _tag: "MaskingSummary", statementId: 1, columns: [{ name: "c", source: "s.t.c", maskId: "m", method: "redact", values: MIN_LONG - 2 }], rows: 1, messagesWithheld: 0 } }),
          (e) => ({ ...e, payload: { _tag: "MaskingSummary", statementId: 1, columns: [], rows: 1, messagesWithheld: 0.5 } }),
        ),
        (e, breakIt) => {
          const bad = breakIt(e)
          expect(() => encodeEvent(bad)).toThrow(AvroEncodeError)
          const r = tryEncodeEvent(bad)
          expect(Result.isFailure(r) && r.failure._tag).toBe("AvroEncodeError")
        },
      ),
      { numRuns: 200 },
    )
  })

  describe("decoders never throw", () => {
    const decoders = [
      (b: Buffer) => decodeEvent(b),
      (b: Buffer) => decodeSingleObject(b),
      (b: Buffer) => decodeConfluent(b, () => CURRENT_SCHEMA),
    ] as const

    it("on random bytes", () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 300 }), fc.constantFrom(...decoders), (bytes, decode) => {
          const r = decode(Buffer.from(bytes))
          expect(Result.isResult(r)).toBe(true)
          // whatever decodes is a valid event: it encodes again
          if (Result.isSuccess(r)) encodeEvent(r.success)
        }),
        { numRuns: 3000 },
      )
    })

    it("on valid messages cut short, extended or with bytes changed", () => {
      const mutation = fc.oneof(
        fc.record({ op: fc.constant("truncate" as const), at: fc.nat() }),
        fc.record({ op: fc.constant("append" as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
        fc.record({ op: fc.constant("set" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
      )
      fc.assert(
        fc.property(anyEvent, fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.constantFrom(0, 1, 2), (e, mutations, which) => {
          let buf = which === 0 ? encodeEvent(e) : which === 1 ? encodeSingleObject(e) : encodeConfluent(e, 1)
          let changed = false
          for (const m of mutations) {
            if (m.op === "truncate") {
              const at = m.at % buf.length
              changed ||= at < buf.length
              buf = buf.subarray(0, at)
            } else if (m.op === "append") {
              buf = Buffer.concat([buf, m.bytes])
              changed = true
            } else if (buf.length > 0) {
              const copy = Buffer.from(buf)
              copy[m.at % copy.length] = m.value
              changed ||= !copy.equals(buf)
              buf = copy
            }
          }
          const r = decoders[which](buf)
          expect(Result.isResult(r)).toBe(true)
          if (Result.isSuccess(r)) encodeEvent(r.success)
          // a cut or an extension alone is always caught (no short read, no trailing data)
          if (changed && mutations.length === 1 && mutations[0]!.op !== "set") expect(Result.isFailure(r)).toBe(true)
        }),
        { numRuns: 2000 },
      )
    })

    it("fast, on counts and lengths that claim far more than the bytes hold", () => {
      const event: AuditEvent = {
        eventId: "6f1c4b0e-8e8b-4a53-9a39-2f6a0f5b9c11",
        sessionId: "s",
        sequence: 0,
        time: 0,
        gateway: "g",
        payload: { _tag: "Statement", statementId: 0, text: "", fingerprint: "", statementClass: "", relationsRead: [], relationsWritten: [], functions: [], via: "simple" },
      }
      const body = encodeEvent(event)
      // the body ends with relationsRead, relationsWritten, functions (empty: one 0 byte each) and via (0):
      // replace them with relationsRead claiming `count` strings, and nothing after
      const prefix = body.subarray(0, body.length - 4)
      for (const count of [2 ** 31 - 1, 2 ** 40, 2 ** 52]) {
        const zigzag = BigInt(count) * 2n
        const varint: Array<number> = []
        let v = zigzag
        do {
          varint.push(Number(v & 0x7fn) | (v > 0x7fn ? 0x80 : 0))
          v >>= 7n
        } while (v > 0n)
        const hostile = Buffer.concat([prefix, Buffer.from(varint), Buffer.from([0x00])])
        const started = performance.now()
        const r = decodeEvent(hostile)
        expect(Result.isFailure(r)).toBe(true)
        expect(performance.now() - started).toBeLessThan(50)
      }
      expect(ok(decodeEvent(body))).toStrictEqual(event)
    })
  })

  it("the well-formedness check takes any text as UTF-8, short or long, and refuses a byte that breaks it", () => {
    const statement = (text: string): AuditEvent => ({
      eventId: "6f1c4b0e-8e8b-4a53-9a39-2f6a0f5b9c11",
      sessionId: "s",
      sequence: 0,
      time: 0,
      gateway: "g",
      payload: { _tag: "Statement", statementId: 0, text, fingerprint: "f", statementClass: "read", relationsRead: [], relationsWritten: [], functions: [], via: "simple" },
    })
    // both sides of the 64-byte line between the ASCII loop and the native check
    const text = fc.oneof(fc.string({ minLength: 1, maxLength: 40 }), fc.string({ unit: "grapheme", minLength: 1, maxLength: 200 }))
    fc.assert(
      fc.property(text, fc.nat(), fc.constantFrom(0x80, 0xbf, 0xc0, 0xf8, 0xff), (t, at, bad) => {
        const body = encodeEvent(statement(t))
        expect(checkWellFormed(CURRENT_SCHEMA.type, body)).toBe(body.length)
        const bytes = Buffer.from(t, "utf8")
        // the body ends with the text, "f", "read", three empty arrays and the enum: 11 bytes after the text
        const start = body.length - 11 - bytes.length
        expect(body.subarray(start, start + bytes.length)).toStrictEqual(bytes)
        const broken = Buffer.from(body)
        broken[start + (at % bytes.length)] = bad
        // a lone continuation byte, an overlong lead or a byte UTF-8 never uses
        if (isUtf8(broken.subarray(start, start + bytes.length))) return
        expect(() => checkWellFormed(CURRENT_SCHEMA.type, broken)).toThrow(MalformedAvro)
        expect(() => checkWellFormed(CURRENT_SCHEMA.type, broken)).toThrow(/not UTF-8/)
      }),
      { numRuns: 500 },
    )
  })

  it("a long below -2^52 is refused, never decoded into a different number", () => {
    const event: AuditEvent = {
      eventId: "6f1c4b0e-8e8b-4a53-9a39-2f6a0f5b9c11",
      sessionId: "s",
      sequence: MIN_LONG,
      time: 0,
      gateway: "g",
      payload: { _tag: "SessionEnd", reason: "", durationMicros: 0, bytesFromClient: 0, bytesToClient: 0, statements: 0 },
    }
    const body = encodeEvent(event)
    expect(ok(decodeEvent(body))).toStrictEqual(event)
    // sequence follows eventId (1 + 36 bytes) and sessionId (2 bytes): zig-zag 2^53 - 1 is 8 bytes
    // ff ff ff ff ff ff ff 0f; 2^53 + 1 (the value -2^52 - 1) is 81 80 80 80 80 80 80 10
    const at = 1 + 36 + 2
    expect(body.subarray(at, at + 8).toString("hex")).toBe("ffffffffffffff0f")
    const below = Buffer.concat([body.subarray(0, at), Buffer.from("8180808080808010", "hex"), body.subarray(at + 8)])
    const r = decodeEvent(below)
    expect(Result.isFailure(r) && r.failure.reason).toMatch(/long below -2\^52/)
  })

  it("'other', the enums' reader default, is never accepted as a value", () => {
    // v1 writes 'other' only if forced: build the bytes with avsc directly
    const raw = CURRENT_SCHEMA.type.toBuffer({
      eventId: "6f1c4b0e-8e8b-4a53-9a39-2f6a0f5b9c11",
      sessionId: "s",
      sequence: 0,
      time: 0,
      gateway: "g",
      payload: { "sluice.audit.Decision": { statementId: 1, verdict: "other", ruleId: "r", reason: null, policyVersion: "p" } },
    })
    const r = decodeEvent(raw)
    expect(Result.isFailure(r) && r.failure.reason).toMatch(/verdict is 'other', a reader default/)
    const method = decodeEvent(
      CURRENT_SCHEMA.type.toBuffer({
        eventId: "6f1c4b0e-8e8b-4a53-9a39-2f6a0f5b9c11",
        sessionId: "s",
        sequence: 0,
        time: 0,
        gateway: "g",
        payload: { "sluice.audit.MaskingSummary": { statementId: 1, columns: [{ name: "c", source: null, maskId: "m", method: "other", values: 1 }], rows: 1, messagesWithheld: 0 } },
      }),
    )
    expect(Result.isFailure(method) && method.failure.reason).toMatch(/columns\.method is 'other', a reader default/)
  })

  it("MaskingSummary: a column's count below -2^52 is named in the error", () => {
    fc.assert(
      fc.property(eventOf(maskingSummary), fc.nat(), (e, at) => {
        const p = e.payload as Extract<Payload, { _tag: "MaskingSummary" }>
        if (p.columns.length === 0) return
        const i = at % p.columns.length
        const bad: AuditEvent = { ...e, sequence: 0, time: 0, payload: { ...p, statementId: 0, rows: 0, messagesWithheld: 0, columns: p.columns.map((c, j) => ({ ...c, values: j === i ? MIN_LONG - 1 : 0 })) } }
        expect(() => encodeEvent(bad)).toThrow(`columns[${i}].values ${MIN_LONG - 1} is below -2^52`)
      }),
      { numRuns: 50 },
    )
  })
})

// ---------------------------------------------------------------------------------------------
// fingerprints

/** The Avro project's vectors (share/test/data/schema-tests.txt): input, canonical form, signed 64-bit fingerprint. */
const SPEC_VECTORS: ReadonlyArray<readonly [string, string, string | undefined]> = [
  [`"null"`, `"null"`, "7195948357588979594"],
  [`{"type":"null"}`, `"null"`, undefined],
  [`"boolean"`, `"boolean"`, "-6970731678124411036"],
  [`{"type":"boolean"}`, `"boolean"`, undefined],
  [`"int"`, `"int"`, "8247732601305521295"],
  [`{"type":"int"}`, `"int"`, undefined],
  [`"long"`, `"long"`, "-3434872931120570953"],
  [`{"type":"long"}`, `"long"`, undefined],
  [`"float"`, `"float"`, "5583340709985441680"],
  [`{"type":"float"}`, `"float"`, undefined],
  [`"double"`, `"double"`, "-8181574048448539266"],
  [`{"type":"double"}`, `"double"`, undefined],
  [`"bytes"`, `"bytes"`, "5746618253357095269"],
  [`{"type":"bytes"}`, `"bytes"`, undefined],
  [`"string"`, `"string"`, "-8142146995180207161"],
  [`{"type":"string"}`, `"string"`, undefined],
  [`[  ]`, `[]`, "-1241056759729112623"],
  [`[ "int"  ]`, `["int"]`, "-5232228896498058493"],
  [`[ "int" , {"type":"boolean"} ]`, `["int","boolean"]`, "5392556393470105090"],
  [`{"fields":[], "type":"record", "name":"foo"}`, `{"name":"foo","type":"record","fields":[]}`, "-4824392279771201922"],
  [`{"fields":[], "type":"record", "name":"foo", "namespace":"x.y"}`, `{"name":"x.y.foo","type":"record","fields":[]}`, "5916914534497305771"],
  [`{"fields":[], "type":"record", "name":"a.b.foo", "namespace":"x.y"}`, `{"name":"a.b.foo","type":"record","fields":[]}`, "-4616218487480524110"],
  [`{"fields":[], "type":"record", "name":"foo", "doc":"Useful info"}`, `{"name":"foo","type":"record","fields":[]}`, "-4824392279771201922"],
  [`{"fields":[], "type":"record", "name":"foo", "aliases":["foo","bar"]}`, `{"name":"foo","type":"record","fields":[]}`, "-4824392279771201922"],
  [`{"fields":[], "type":"record", "name":"foo", "doc":"foo", "aliases":["foo","bar"]}`, `{"name":"foo","type":"record","fields":[]}`, "-4824392279771201922"],
  [`{"fields":[{"type":{"type":"boolean"}, "name":"f1"}], "type":"record", "name":"foo"}`, `{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}`, "7843277075252814651"],
  [
    `{ "fields":[{"type":"boolean", "aliases":[], "name":"f1", "default":"true"},
            {"order":"descending","name":"f2","doc":"Hello","type":"int"}],
  "type":"record", "name":"foo"
}`,
    `{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},{"name":"f2","type":"int"}]}`,
    "-4860222112080293046",
  ],
  [`{"type":"enum", "name":"foo", "symbols":["A1"]}`, `{"name":"foo","type":"enum","symbols":["A1"]}`, "-6342190197741309591"],
  [`{"namespace":"x.y.z", "type":"enum", "name":"foo", "doc":"foo bar", "symbols":["A1", "A2"]}`, `{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}`, "-4448647247586288245"],
  [`{"name":"foo","type":"fixed","size":15}`, `{"name":"foo","type":"fixed","size":15}`, "1756455273707447556"],
  [`{"namespace":"x.y.z", "type":"fixed", "name":"foo", "doc":"foo bar", "size":32}`, `{"name":"x.y.z.foo","type":"fixed","size":32}`, "-3064184465700546786"],
  [`{ "items":{"type":"null"}, "type":"array"}`, `{"type":"array","items":"null"}`, "-589620603366471059"],
  [`{ "values":"string", "type":"map"}`, `{"type":"map","values":"string"}`, "-8732877298790414990"],
  [
    `{"name":"PigValue","type":"record",
   "fields":[{"name":"value", "type":["null", "int", "long", "PigValue"]}]}`,
    `{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}`,
    "-1759257747318642341",
  ],
]

describe("CRC-64-AVRO fingerprints of the Parsing Canonical Form", () => {
  it.each(SPEC_VECTORS.map((v, i) => [String(i).padStart(3, "0"), ...v] as const))("spec vector %s", (_n, input, canonical, fingerprint) => {
    const pcf = parsingCanonicalForm(JSON.parse(input))
    expect(pcf).toBe(canonical)
    const expected = fingerprint ?? SPEC_VECTORS.find(([, c, f]) => c === canonical && f !== undefined)![2]!
    expect(BigInt.asIntN(64, rabinFingerprint64(Buffer.from(pcf, "utf8"))).toString()).toBe(expected)
  })

  it("each checked-in schema: our canonical form is avsc's; the header carries its fingerprint little-endian", () => {
    for (const v of SCHEMA_VERSIONS) {
      expect(v.canonical).toBe(JSON.stringify(v.type.schema()))
      const fp = rabinFingerprint64(Buffer.from(v.canonical, "utf8"))
      expect(v.fingerprint.readBigUInt64LE(0)).toBe(fp)
      // docs, defaults and logical types do not change the fingerprint; a field name does
      const stripped = schemaVersion(JSON.parse(JSON.stringify(JSON.parse(v.json), (k, x) => (k === "doc" || k === "logicalType" ? undefined : x))), 99)
      expect(stripped.fingerprintHex).toBe(v.fingerprintHex)
      const renamed = schemaVersion(JSON.parse(v.json.replace(`"name":"gateway"`, `"name":"gatewayName"`)), 99)
      expect(renamed.fingerprintHex).not.toBe(v.fingerprintHex)
    }
  })
})

// ---------------------------------------------------------------------------------------------
// schema evolution

type Json = any
const v1: Json = JSON.parse(readFileSync(join(SCHEMA_DIRECTORY, "audit-event.v1.avsc"), "utf8"))
const clone = (): Json => structuredClone(v1)
const newest = (): Json => JSON.parse(CURRENT_SCHEMA.json)
const branch = (schema: Json, name: string): Json => schema.fields.find((f: Json) => f.name === "payload").type.find((b: Json) => b.name === name)
const field = (record: Json, name: string): Json => record.fields.find((f: Json) => f.name === name)

describe("schema evolution", () => {
  it("the checked-in versions are numbered 1..N, and each is backward compatible with the one before", () => {
    const files = readdirSync(SCHEMA_DIRECTORY).filter((f) => f.endsWith(".avsc")).sort()
    expect(files.length).toBe(SCHEMA_VERSIONS.length)
    expect(SCHEMA_VERSIONS.map((v) => v.version)).toEqual(SCHEMA_VERSIONS.map((_, i) => i + 1))
    for (let i = 1; i < SCHEMA_VERSIONS.length; i++) {
      expect(isBackwardCompatible(SCHEMA_VERSIONS[i - 1]!.type, SCHEMA_VERSIONS[i]!.type), `${SCHEMA_VERSIONS[i]!.file} reads ${SCHEMA_VERSIONS[i - 1]!.file}`).toEqual({ compatible: true })
    }
    // and the newest version is the one every encoder writes
    expect(CURRENT_SCHEMA).toBe(SCHEMA_VERSIONS[SCHEMA_VERSIONS.length - 1])
  })

  const compatible: ReadonlyArray<readonly [string, (s: Json) => void]> = [
    ["unchanged", () => {}],
    ["docs changed", (s) => (s.doc = "something else")],
    ["a field added with a default", (s) => branch(s, "Statement").fields.push({ name: "database", type: ["null", "string"], default: null })],
    ["an envelope field added with a default", (s) => s.fields.splice(5, 0, { name: "tenant", type: "string", default: "" })],
    ["a payload kind appended to the union", (s) => field(s, "payload").type.push({ type: "record", name: "Approval", fields: [{ name: "approver", type: "string" }] })],
    ["a verdict added", (s) => field(branch(s, "Decision"), "verdict").type.symbols.push("escalated")],
    ["a verdict removed (the reader's default takes it)", (s) => field(branch(s, "Decision"), "verdict").type.symbols.splice(0, 1)],
    ["a field removed", (s) => branch(s, "SessionEnd").fields.splice(0, 1)],
    ["int widened to long", (s) => (field(branch(s, "SessionStart"), "clientPort").type = "long")],
    ["a field made nullable", (s) => (field(branch(s, "Decision"), "ruleId").type = ["string", "null"])],
    ["a record renamed with an alias", (s) => Object.assign(branch(s, "Result"), { name: "StatementResult", aliases: ["Result"] })],
  ]
  const incompatible: ReadonlyArray<readonly [string, (s: Json) => void]> = [
    ["a field added without a default", (s) => branch(s, "Statement").fields.push({ name: "database", type: "string" })],
    ["an envelope field added without a default", (s) => s.fields.push({ name: "tenant", type: "string" })],
    ["a payload kind removed from the union", (s) => (field(s, "payload").type = field(s, "payload").type.filter((b: Json) => b.name !== "Result"))],
    ["a field's type changed", (s) => (field(branch(s, "Result"), "rows").type = "string")],
    ["long narrowed to int", (s) => (field(s, "sequence").type = "int")],
    ["a record renamed without an alias", (s) => (branch(s, "Result").name = "StatementResult")],
    ["a symbol removed from an enum without a default", (s) => {
      const e = field(branch(s, "Decision"), "verdict").type
      delete e.default
      e.symbols = e.symbols.filter((x: string) => x !== "timeout" && x !== "other")
    }],
    ["a nullable field made required", (s) => (field(branch(s, "Result"), "commandTag").type = "string")],
  ]

  it.each(compatible)("the checker accepts a compatible change: %s", (_name, change) => {
    const newer = clone()
    change(newer)
    expect(isBackwardCompatible(v1, newer)).toEqual({ compatible: true })
  })

  it.each(incompatible)("the checker refuses an incompatible change: %s", (_name, change) => {
    const newer = clone()
    change(newer)
    const verdict = isBackwardCompatible(v1, newer)
    expect(verdict.compatible).toBe(false)
  })

  it("each version's payload kinds are the previous version's with new kinds appended; the newest has every kind of the event model", () => {
    expect(kindsOf(SCHEMA_VERSIONS[0]!)).toEqual(["SessionStart", "SessionEnd", "Statement", "Decision", "Result"])
    for (let i = 1; i < SCHEMA_VERSIONS.length; i++) {
      const [before, after] = [kindsOf(SCHEMA_VERSIONS[i - 1]!), kindsOf(SCHEMA_VERSIONS[i]!)]
      expect(after.slice(0, before.length), SCHEMA_VERSIONS[i]!.file).toEqual(before)
    }
    expect(SCHEMA_VERSIONS.map(kindsOf).map((k) => k[k.length - 1])).toEqual(["Result", "RecordedRows", "MaskingSummary"].slice(0, SCHEMA_VERSIONS.length))
    expect([...kindsOf(CURRENT_SCHEMA)].sort()).toEqual(Object.keys(PAYLOADS).sort())
  })

  it("every checked-in version's data decodes into the current event (single-object, by its fingerprint)", () => {
    for (const writer of SCHEMA_VERSIONS) {
      // the kinds that version has (RecordedRows came in v2, MaskingSummary in v3)
      const kinds = kindsOf(writer).map((k) => PAYLOADS[k as Payload["_tag"]])
      fc.assert(
        fc.property(eventOf(fc.oneof(...kinds)), (e) => {
          // the event as that version writes it: its own body behind its own fingerprint
          const body = writer.type.toBuffer(CURRENT_SCHEMA.type.fromBuffer(encodeEvent(e)))
          const message = Buffer.concat([SINGLE_OBJECT_MAGIC, writer.fingerprint, body])
          expect(ok(decodeSingleObject(message))).toStrictEqual(e)
        }),
        { numRuns: 100 },
      )
    }
  })

  it("v2 RecordedRows decode into the newest schema with text as text and bytes as bytes (avsc alone would read bytes as a string)", () => {
    const v2 = SCHEMA_VERSIONS[1]!
    const e: AuditEvent = {
      eventId: "6f1c4b0e-8e8b-4a53-9a39-2f6a0f5b9c11",
      sessionId: "s",
      sequence: 3,
      time: 1,
      gateway: "g",
      payload: {
        _tag: "RecordedRows",
        statementId: 0,
        columns: [],
        rows: [[Buffer.from([0xca, 0xfe]), Buffer.alloc(0), "", "text", null, Buffer.from("utf-8 bytes")]],
        truncated: false,
      },
    }
    const body = v2.type.toBuffer(CURRENT_SCHEMA.type.fromBuffer(encodeEvent(e)))
    expect(ok(decodeSingleObject(Buffer.concat([SINGLE_OBJECT_MAGIC, v2.fingerprint, body])))).toStrictEqual(e)
    // why avro.ts resolves through its own reader: avsc's resolution takes the first branch that can read a
    // value, promotions included, so the bytes land in the string branch
    const plain = CURRENT_SCHEMA.type.fromBuffer(body, CURRENT_SCHEMA.type.createResolver(v2.type))
    expect(plain.payload["sluice.audit.RecordedRows"].rows[0][5]).toBe("utf-8 bytes")
  })

  it("an older reader cannot read a newer version's new kind: new kinds are backward, not forward, compatible (SCHEMAS.md)", () => {
    for (let i = 1; i < SCHEMA_VERSIONS.length; i++) {
      expect(isBackwardCompatible(SCHEMA_VERSIONS[i]!.type, SCHEMA_VERSIONS[i - 1]!.type).compatible, `${SCHEMA_VERSIONS[i - 1]!.file} reads ${SCHEMA_VERSIONS[i]!.file}`).toBe(false)
    }
  })

  it("v3's MaskingSummary read by v2 and v1 readers: refused at resolution, never misread as another kind", () => {
    // the reverse direction works: v2 and v1 data (no MaskingSummary) resolve into v3 (above)
    for (const older of SCHEMA_VERSIONS.slice(0, 2)) {
      expect(() => older.type.createResolver(CURRENT_SCHEMA.type)).toThrow()
    }
  })

  it("a newer reader decodes the current data through resolution (a field added with a default)", () => {
    // the decoders resolve every older writer into the newest schema; simulate a next version that adds a field
    const next = newest()
    branch(next, "Decision").fields.push({ name: "approver", type: ["null", "string"], default: null })
    const nextType = avsc.Type.forSchema(next)
    const reader = nextType.createResolver(CURRENT_SCHEMA.type)
    fc.assert(
      fc.property(eventOf(decision), (e) => {
        const decoded = nextType.fromBuffer(encodeEvent(e), reader)
        expect(decoded.payload["sluice.audit.Decision"].approver).toBeNull()
        expect(decoded.payload["sluice.audit.Decision"].ruleId).toBe((e.payload as { ruleId: string }).ruleId)
      }),
      { numRuns: 50 },
    )
  })

  it("an older writer's data decodes into the current event (bodyReader resolves)", () => {
    // a hypothetical v0 without applicationName: v1's default (null) fills it in
    const v0 = clone()
    branch(v0, "SessionStart").fields = branch(v0, "SessionStart").fields.filter((f: Json) => f.name !== "applicationName")
    const v0Type = avsc.Type.forSchema(v0)
    const reader = ok(bodyReader(v0Type))
    fc.assert(
      fc.property(eventOf(sessionStart), (e) => {
        // v0 data: the current value written with v0's writer, which has no applicationName
        const written = v0Type.toBuffer(CURRENT_SCHEMA.type.fromBuffer(encodeEvent(e)))
        const { event, offset } = ok(reader.read(written, 0))
        expect(offset).toBe(written.length)
        expect(event).toStrictEqual({ ...e, payload: { ...e.payload, applicationName: null } })
      }),
      { numRuns: 50 },
    )
  })

  it("why enums have a default: a v1 reader reads a verdict added later as 'other' instead of failing", () => {
    const later = clone()
    field(branch(later, "Decision"), "verdict").type.symbols.push("escalated")
    const laterType = avsc.Type.forSchema(later)
    const data = laterType.toBuffer({
      eventId: "6f1c4b0e-8e8b-4a53-9a39-2f6a0f5b9c11",
      sessionId: "s",
      sequence: 1,
      time: 1,
      gateway: "g",
      payload: { "sluice.audit.Decision": { statementId: 1, verdict: "escalated", ruleId: "r", reason: null, policyVersion: "p" } },
    })
    const asV1 = CURRENT_SCHEMA.type.fromBuffer(data, CURRENT_SCHEMA.type.createResolver(laterType))
    expect(asV1.payload["sluice.audit.Decision"].verdict).toBe("other")
    // without the default, the same v1 reader could not be built at all
    const noDefault = clone()
    delete field(branch(noDefault, "Decision"), "verdict").type.default
    expect(isBackwardCompatible(later, noDefault).compatible).toBe(false)
  })
})
