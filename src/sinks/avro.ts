/**
 * The Avro wire forms of audit events (schemas/audit-event.v<N>.avsc, SCHEMAS.md):
 *
 * - plain Avro binary of the newest schema: {@link encodeEvent} / {@link decodeEvent};
 * - single-object encoding, used on Kafka without a schema registry:
 *   `C3 01`, the 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's
 *   Parsing Canonical Form, then the body: {@link encodeSingleObject} / {@link decodeSingleObject};
 * - the Confluent wire format, used with a schema registry: `00`, the 4-byte big-endian
 *   schema id the registry gave, then the body: {@link encodeConfluent} / {@link decodeConfluent}.
 *
 * Every version of the schema is loaded; decoding data written with an older version
 * resolves it into the newest (Avro schema resolution), so readers always get the current
 * `AuditEvent`. Decoders never throw: untrusted bytes get an {@link AvroDecodeError}.
 * Encoders throw {@link AvroEncodeError} only for an event that breaks its own type (a
 * fractional or unsafe integer, an eventId that is not a UUID): a bug in the producer.
 */
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import avsc from "avsc"
import { Data, Result } from "effect"
import { checkWellFormed, fingerprintOfCanonical, parsingCanonicalForm } from "./avro-spec.ts"
import { avroWriter, InvalidValue, MIN_LONG, Output } from "./avro-writer.ts"
import type { Actor, AuditEvent, MaskedColumn, MaskMethod, Payload, RecordedColumn, Statement, Verdict } from "./events.ts"

export class AvroDecodeError extends Data.TaggedError("AvroDecodeError")<{ readonly reason: string }> {
  override get message(): string {
    return `cannot decode audit event: ${this.reason}`
  }
}

export class AvroEncodeError extends Data.TaggedError("AvroEncodeError")<{ readonly reason: string }> {
  override get message(): string {
    return `cannot encode audit event: ${this.reason}`
  }
}

/** One checked-in version of the audit event schema. */
export interface SchemaVersion {
  readonly version: number
  readonly file: string
  /** The schema as compact JSON, docs included: what is registered and written into container files. */
  readonly json: string
  readonly type: avsc.Type
  /** Parsing Canonical Form. */
  readonly canonical: string
  /** CRC-64-AVRO of the canonical form, little-endian, as single-object encoding writes it. */
  readonly fingerprint: Buffer
  readonly fingerprintHex: string
}

export const SCHEMA_DIRECTORY = fileURLToPath(new URL("./schemas/", import.meta.url))
const FILE_PATTERN = /^audit-event\.v([1-9][0-9]*)\.avsc$/

/** Builds a {@link SchemaVersion} from a schema (parsed JSON); throws if avsc refuses it. */
export const schemaVersion = (schema: unknown, version: number, file = `audit-event.v${version}.avsc`): SchemaVersion => {
  const type = avsc.Type.forSchema(schema as avsc.schema.AvroSchema)
  const canonical = parsingCanonicalForm(schema)
  const fingerprint = fingerprintOfCanonical(canonical)
  return { version, file, json: JSON.stringify(schema), type, canonical, fingerprint, fingerprintHex: fingerprint.toString("hex") }
}

/** Every `audit-event.v<N>.avsc` in the directory, oldest first. Throws on an unreadable or invalid schema. */
export const loadSchemaVersions = (directory: string = SCHEMA_DIRECTORY): ReadonlyArray<SchemaVersion> =>
  readdirSync(directory)
    .flatMap((file) => {
      const m = FILE_PATTERN.exec(file)
      return m === null ? [] : [{ file, version: Number(m[1]) }]
    })
    .sort((a, b) => a.version - b.version)
    .map(({ file, version }) => {
      const text = readFileSync(join(directory, file), "utf8")
      try {
        return schemaVersion(JSON.parse(text), version, file)
      } catch (e) {
        throw new Error(`${join(directory, file)}: ${e instanceof Error ? e.message : String(e)}`)
      }
    })

export const SCHEMA_VERSIONS: ReadonlyArray<SchemaVersion> = loadSchemaVersions()
if (SCHEMA_VERSIONS.length === 0) throw new Error(`no audit-event.v<N>.avsc in ${SCHEMA_DIRECTORY}`)
/** The newest schema: what every encoder writes and every decoder resolves into. */
export const CURRENT_SCHEMA: SchemaVersion = SCHEMA_VERSIONS[SCHEMA_VERSIONS.length - 1]!

/**
 * avsc resolves a writer's union branch into the first reader branch that can read it,
 * promotions included (as the Avro specification words it), so the `bytes` branch of
 * RecordedRows' `["null", "string", "bytes"]` written with an older version would be read
 * into the reader's `string` branch: binary values would come back as (mangled) text.
 * Java's implementation prefers the branch of the writer's own type, and so does Sluice:
 * older data is resolved into a copy of the newest schema in which the `string` and
 * `bytes` branches of such unions read only their own type. Values and shapes are those of
 * the newest schema (the logical type below passes values through).
 */
const EXACT_BRANCH = "sluice-exact-branch"

class ExactBranch extends avsc.types.LogicalType {
  protected override _fromValue(value: unknown): unknown {
    return value
  }
  protected override _toValue(value: unknown): unknown {
    return value
  }
  protected override _resolve(writer: avsc.Type): ((value: unknown) => unknown) | undefined {
    return writer.typeName === this.underlyingType.typeName ? (value) => value : undefined
  }
}

const PROMOTABLE = new Set(["string", "bytes"])

/** The primitive a union branch is, when it is `string` or `bytes` (plain, without a logical type). */
const promotable = (branch: unknown): string | undefined => {
  const name = typeof branch === "string" ? branch : typeof branch === "object" && branch !== null && !("logicalType" in branch) ? (branch as { type?: unknown }).type : undefined
  return typeof name === "string" && PROMOTABLE.has(name) ? name : undefined
}

/** A copy of a schema in which the `string` and `bytes` branches of every union that has both are {@link EXACT_BRANCH}. */
const exactBranches = (type: unknown): unknown => {
  if (Array.isArray(type)) {
    const both = type.filter((b) => promotable(b) !== undefined).length > 1
    return type.map((b) => {
      const name = promotable(b)
      return both && name !== undefined ? { type: name, logicalType: EXACT_BRANCH } : exactBranches(b)
    })
  }
  if (typeof type !== "object" || type === null) return type
  const t = type as Record<string, unknown>
  switch (t["type"]) {
    case "record":
    case "error":
      return { ...t, fields: (t["fields"] as ReadonlyArray<Record<string, unknown>>).map((f) => ({ ...f, type: exactBranches(f["type"]) })) }
    case "array":
      return { ...t, items: exactBranches(t["items"]) }
    case "map":
      return { ...t, values: exactBranches(t["values"]) }
    default:
      return t
  }
}

/** The newest schema as the reader of older data (see {@link ExactBranch}). */
const RESOLVING_READER: avsc.Type = avsc.Type.forSchema(exactBranches(JSON.parse(CURRENT_SCHEMA.json)) as avsc.schema.AvroSchema, {
  logicalTypes: { [EXACT_BRANCH]: ExactBranch },
})

const byFingerprint = new Map(SCHEMA_VERSIONS.map((v) => [v.fingerprintHex, v]))

/** The known schema version with this fingerprint (8 bytes, little-endian, as in single-object headers). */
export const schemaByFingerprint = (fingerprint: Uint8Array): SchemaVersion | undefined =>
  byFingerprint.get(Buffer.from(fingerprint.buffer, fingerprint.byteOffset, fingerprint.byteLength).toString("hex"))

// ---------------------------------------------------------------------------------------------
// AuditEvent <-> Avro value

const NS = "sluice.audit."
/** 8-4-4-4-12 hex digits: what a decoded eventId must be (the writer checks the bytes it writes). */
const isUuid = (s: unknown): boolean => {
  if (typeof s !== "string" || s.length !== 36) return false
  for (let i = 0; i < 36; i++) {
    const c = s.charCodeAt(i)
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 45) return false
    } else if (!((c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102))) return false
  }
  return true
}
/** The enum symbol that only a reader default can produce (see the schema's enum docs). */
const READER_DEFAULT = "other"

/**
 * avsc writes and reads a long through a double: below -2^52 (and above 2^53 - 2, which it
 * refuses itself) the zig-zag value is not exact, and a negative long comes out as a
 * different number. Sluice's longs are times, counts and ids, never that negative: the
 * writer refuses rather than write a wrong value.
 */
export { MIN_LONG }

const LONGS: Readonly<Record<Payload["_tag"], ReadonlyArray<string>>> = {
  SessionStart: [],
  SessionEnd: ["durationMicros", "bytesFromClient", "bytesToClient", "statements"],
  Statement: ["statementId"],
  Decision: ["statementId"],
  Result: ["statementId", "rows", "bytes", "durationMicros"],
  RecordedRows: ["statementId"],
  MaskingSummary: ["statementId", "rows", "messagesWithheld"],
}

/** The error for a long below {@link MIN_LONG} that the writer refused, found again by name (off the fast path). */
const belowMinLong = (e: AuditEvent): AvroEncodeError | undefined => {
  const p = e.payload as unknown as Record<string, unknown>
  const values: ReadonlyArray<readonly [string, unknown]> = [
    ["sequence", e.sequence],
    ["time", e.time],
    ...(LONGS[e.payload._tag] ?? []).map((n) => [n, p[n]] as const),
    ...(e.payload._tag === "MaskingSummary" ? e.payload.columns.map((c, i) => [`columns[${i}].values`, c.values] as const) : []),
  ]
  const below = values.find(([, v]) => typeof v === "number" && v < MIN_LONG)
  return below === undefined ? undefined : new AvroEncodeError({ reason: `${below[0]} ${String(below[1])} is below -2^52, which avsc cannot encode exactly` })
}

const readerDefault = (what: string): AvroEncodeError => new AvroEncodeError({ reason: `${what}: '${READER_DEFAULT}' is a reader default, never a value` })

// One literal-keyed wrapper per branch (a computed key would make a slow dictionary object).
const wrapSessionStart = (r: unknown) => ({ "sluice.audit.SessionStart": r })
const wrapSessionEnd = (r: unknown) => ({ "sluice.audit.SessionEnd": r })
const wrapStatement = (r: unknown) => ({ "sluice.audit.Statement": r })
const wrapDecision = (r: unknown) => ({ "sluice.audit.Decision": r })
const wrapResult = (r: unknown) => ({ "sluice.audit.Result": r })
const wrapRecordedRows = (r: unknown) => ({ "sluice.audit.RecordedRows": r })
const wrapMaskingSummary = (r: unknown) => ({ "sluice.audit.MaskingSummary": r })

/** The avsc value of an event; payload records are passed as they are (avsc reads fields by name, `_tag` is ignored). */
const toAvro = (e: AuditEvent): unknown => {
  const p = e.payload
  let payload: unknown
  switch (p._tag) {
    case "SessionStart":
      if ((p.actor.kind as string) === READER_DEFAULT) throw readerDefault("actor.kind")
      if ((p.protocol as string) === READER_DEFAULT) throw readerDefault("protocol")
      payload = wrapSessionStart(p)
      break
    case "SessionEnd":
      payload = wrapSessionEnd(p)
      break
    case "Statement":
      if (p.via === "function-call") payload = wrapStatement({ ...p, via: "function_call" })
      else if (p.via === "simple" || p.via === "extended") payload = wrapStatement(p)
      else throw new AvroEncodeError({ reason: `via ${JSON.stringify(p.via)} is not a value of the event model` })
      break
    case "Decision":
      if ((p.verdict as string) === READER_DEFAULT) throw readerDefault("verdict")
      payload = wrapDecision(p)
      break
    case "Result":
      payload = wrapResult(p)
      break
    case "RecordedRows":
      payload = wrapRecordedRows(p)
      break
    case "MaskingSummary":
      for (const c of p.columns) {
        if ((c.method as string) === READER_DEFAULT) throw readerDefault("columns.method")
      }
      payload = wrapMaskingSummary(p)
      break
    default:
      throw new AvroEncodeError({ reason: `unknown payload kind ${JSON.stringify((p as { _tag: unknown })._tag)}` })
  }
  return { eventId: e.eventId, sessionId: e.sessionId, sequence: e.sequence, time: e.time, gateway: e.gateway, payload }
}

class Refused extends Error {}

const symbol = <A extends string>(value: string, what: string): A => {
  if (value === READER_DEFAULT) throw new Refused(`${what} is '${READER_DEFAULT}', a reader default that no Sluice version writes`)
  return value as A
}

// avsc's decoded values are untyped; the writer type and the well-formedness check vouch for their shape.
type Decoded = Record<string, any>

const fromAvro = (v: Decoded): AuditEvent => {
  if (!isUuid(v["eventId"])) throw new Refused(`eventId ${JSON.stringify(v["eventId"])} is not a UUID`)
  const wrapped: Decoded = v["payload"]
  const branch = Object.keys(wrapped)[0]!
  const r: Decoded = wrapped[branch]
  let payload: Payload
  switch (branch) {
    case `${NS}SessionStart`: {
      const a: Decoded = r["actor"]
      const actor: Actor = {
        subject: a["subject"],
        kind: symbol<Actor["kind"]>(a["kind"], "actor.kind"),
        issuer: a["issuer"],
        groups: a["groups"],
      }
      payload = {
        _tag: "SessionStart",
        actor,
        clientAddress: r["clientAddress"],
        clientPort: r["clientPort"],
        clientUser: r["clientUser"],
        applicationName: r["applicationName"],
        tls: r["tls"],
        protocol: symbol(r["protocol"], "protocol"),
        targetName: r["targetName"],
        targetDatabase: r["targetDatabase"],
        backendUser: r["backendUser"],
      }
      break
    }
    case `${NS}SessionEnd`:
      payload = {
        _tag: "SessionEnd",
        reason: r["reason"],
        durationMicros: r["durationMicros"],
        bytesFromClient: r["bytesFromClient"],
        bytesToClient: r["bytesToClient"],
        statements: r["statements"],
      }
      break
    case `${NS}Statement`: {
      const via: string = symbol(r["via"], "via")
      payload = {
        _tag: "Statement",
        statementId: r["statementId"],
        text: r["text"],
        fingerprint: r["fingerprint"],
        statementClass: r["statementClass"],
        relationsRead: r["relationsRead"],
        relationsWritten: r["relationsWritten"],
        functions: r["functions"],
        via: (via === "function_call" ? "function-call" : via) as Statement["via"],
      }
      break
    }
    case `${NS}Decision`:
      payload = {
        _tag: "Decision",
        statementId: r["statementId"],
        verdict: symbol<Verdict>(r["verdict"], "verdict"),
        ruleId: r["ruleId"],
        reason: r["reason"],
        policyVersion: r["policyVersion"],
      }
      break
    case `${NS}Result`:
      payload = {
        _tag: "Result",
        statementId: r["statementId"],
        rows: r["rows"],
        bytes: r["bytes"],
        durationMicros: r["durationMicros"],
        sqlstate: r["sqlstate"],
        commandTag: r["commandTag"],
      }
      break
    case `${NS}RecordedRows`:
      payload = {
        _tag: "RecordedRows",
        statementId: r["statementId"],
        columns: r["columns"].map((c: Decoded): RecordedColumn => ({ name: c["name"], typeOid: c["typeOid"], binary: c["binary"] })),
        rows: r["rows"],
        truncated: r["truncated"],
      }
      break
    case `${NS}MaskingSummary`:
      payload = {
        _tag: "MaskingSummary",
        statementId: r["statementId"],
        columns: r["columns"].map(
          (c: Decoded): MaskedColumn => ({
            name: c["name"],
            source: c["source"],
            maskId: c["maskId"],
            method: symbol<MaskMethod>(c["method"], "columns.method"),
            values: c["values"],
          }),
        ),
        rows: r["rows"],
        messagesWithheld: r["messagesWithheld"],
      }
      break
    default:
      // a branch the newest schema has but this code does not know: the code is older than the schema
      throw new Refused(`payload kind ${branch} is not known to this version of Sluice`)
  }
  return { eventId: v["eventId"], sessionId: v["sessionId"], sequence: v["sequence"], time: v["time"], gateway: v["gateway"], payload }
}

// ---------------------------------------------------------------------------------------------
// plain binary

// Events are written into one shared buffer (grown when too small), then copied out once,
// framing included: one allocation per message.
const SCRATCH_SIZE = 64 * 1024
const SCRATCH_KEEP = 1024 * 1024
const scratch = new Output(SCRATCH_SIZE)
const writeEvent = avroWriter(JSON.parse(CURRENT_SCHEMA.json))

/** What goes before the body: a wire format's header, a spool record's own fields. */
type Prefix = (out: Output) => void

const encodeFramed = (e: AuditEvent, prefix: Prefix | undefined): Buffer => {
  let value: unknown
  try {
    value = toAvro(e)
    scratch.pos = 0
    prefix?.(scratch)
    writeEvent(scratch, value)
    const encoded = Buffer.allocUnsafe(scratch.pos)
    scratch.buf.copy(encoded, 0, 0, scratch.pos)
    return encoded
  } catch (cause) {
    if (cause instanceof AvroEncodeError) throw cause
    if (value === undefined) throw new AvroEncodeError({ reason: describe(cause) })
    throw (cause instanceof InvalidValue ? belowMinLong(e) : undefined) ?? new AvroEncodeError({ reason: describeInvalid(value, cause) })
  } finally {
    if (scratch.buf.length > SCRATCH_KEEP) scratch.buf = Buffer.allocUnsafe(SCRATCH_SIZE) // after a huge event
  }
}

/** The Avro binary body of an event, in the newest schema. Throws {@link AvroEncodeError} for an invalid event. */
export const encodeEvent = (e: AuditEvent): Buffer => encodeFramed(e, undefined)

const describe = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/** {@link encodeEvent} without the throw. */
export const tryEncodeEvent = (e: AuditEvent): Result.Result<Buffer, AvroEncodeError> => {
  try {
    return Result.succeed(encodeEvent(e))
  } catch (cause) {
    return Result.fail(cause instanceof AvroEncodeError ? cause : new AvroEncodeError({ reason: String(cause) }))
  }
}

const describeInvalid = (value: unknown, cause: unknown): string => {
  const paths: Array<string> = []
  try {
    CURRENT_SCHEMA.type.isValid(value, {
      errorHook: (path, v, type) => {
        paths.push(`${path.join(".")}: ${JSON.stringify(v)} is not a valid ${type.typeName}`)
      },
    })
  } catch {
    // the value is too broken for avsc to walk: the encoder's own message will do
  }
  return paths.length > 0 ? paths.join("; ") : describe(cause)
}

/** A decoder of bodies written with one writer schema, into the newest schema. */
export interface BodyReader {
  readonly writer: avsc.Type
  /** Decodes one event at `offset`; the value and the offset just past it. */
  readonly read: (buf: Buffer, offset: number) => Result.Result<{ readonly event: AuditEvent; readonly offset: number }, AvroDecodeError>
}

const readers = new WeakMap<avsc.Type, BodyReader>()

/**
 * The reader for data written with `writer` (a known version, or any schema such as a
 * container file's header carries). Fails if the writer schema cannot be resolved into
 * the newest one.
 */
export const bodyReader = (writer: avsc.Type): Result.Result<BodyReader, AvroDecodeError> => {
  const known = readers.get(writer)
  if (known !== undefined) return Result.succeed(known)
  let resolver: avsc.Resolver | undefined
  if (writer !== CURRENT_SCHEMA.type) {
    try {
      resolver = RESOLVING_READER.createResolver(writer)
    } catch (e) {
      return Result.fail(new AvroDecodeError({ reason: `the writer schema cannot be read as the current one: ${e instanceof Error ? e.message : String(e)}` }))
    }
  }
  const reader: BodyReader = {
    writer,
    read: (buf, offset) => {
      try {
        const end = checkWellFormed(writer, buf, offset)
        const { value, offset: next } = resolver === undefined ? CURRENT_SCHEMA.type.decode(buf, offset) : RESOLVING_READER.decode(buf, offset, resolver)
        if (next !== end) return Result.fail(new AvroDecodeError({ reason: `decoder stopped at ${next}, data ends at ${end}` }))
        return Result.succeed({ event: fromAvro(value as Decoded), offset: end })
      } catch (e) {
        return Result.fail(new AvroDecodeError({ reason: e instanceof Error ? e.message : String(e) }))
      }
    },
  }
  readers.set(writer, reader)
  return Result.succeed(reader)
}

const readWhole = (reader: BodyReader, body: Buffer): Result.Result<AuditEvent, AvroDecodeError> =>
  Result.flatMap(reader.read(body, 0), ({ event, offset }) =>
    offset === body.length ? Result.succeed(event) : Result.fail(new AvroDecodeError({ reason: `${body.length - offset} bytes of trailing data` })),
  )

/** Decodes the Avro binary body of one event written with `writer` (default: the newest schema). */
export const decodeEvent = (body: Buffer, writer: SchemaVersion = CURRENT_SCHEMA): Result.Result<AuditEvent, AvroDecodeError> =>
  Result.flatMap(bodyReader(writer.type), (reader) => readWhole(reader, body))

// ---------------------------------------------------------------------------------------------
// single-object encoding

export const SINGLE_OBJECT_MAGIC = Buffer.from([0xc3, 0x01])
export const SINGLE_OBJECT_HEADER_LENGTH = 10

const SINGLE_OBJECT_HEADER = Buffer.concat([SINGLE_OBJECT_MAGIC, CURRENT_SCHEMA.fingerprint])

/** `C3 01` + fingerprint (8 bytes LE) + body, in the newest schema. Throws like {@link encodeEvent}. */
const singleObjectHeader: Prefix = (out) => out.raw(SINGLE_OBJECT_HEADER)

export const encodeSingleObject = (e: AuditEvent): Buffer => encodeFramed(e, singleObjectHeader)

/** {@link encodeSingleObject} behind what `prefix` writes, in the same buffer. */
export const encodeSingleObjectAfter = (e: AuditEvent, prefix: Prefix): Buffer =>
  encodeFramed(e, (out) => {
    prefix(out)
    singleObjectHeader(out)
  })

/** Decodes a single-object encoded event; the writer schema is looked up by its fingerprint among the known versions. */
export const decodeSingleObject = (buf: Buffer): Result.Result<AuditEvent, AvroDecodeError> => {
  if (buf.length < SINGLE_OBJECT_HEADER_LENGTH) {
    return Result.fail(new AvroDecodeError({ reason: `${buf.length} bytes: shorter than the single-object header` }))
  }
  if (buf[0] !== 0xc3 || buf[1] !== 0x01) {
    return Result.fail(new AvroDecodeError({ reason: `no single-object marker (C3 01): starts with ${buf.subarray(0, 2).toString("hex")}` }))
  }
  const writer = schemaByFingerprint(buf.subarray(2, SINGLE_OBJECT_HEADER_LENGTH))
  if (writer === undefined) {
    return Result.fail(new AvroDecodeError({ reason: `unknown schema fingerprint ${buf.subarray(2, SINGLE_OBJECT_HEADER_LENGTH).toString("hex")} (written by a newer Sluice?)` }))
  }
  return decodeEvent(buf.subarray(SINGLE_OBJECT_HEADER_LENGTH), writer)
}

// ---------------------------------------------------------------------------------------------
// Confluent wire format

export const CONFLUENT_HEADER_LENGTH = 5

/** `00` + schema id (4 bytes BE) + body, in the newest schema: `schemaId` must be the registry's id for it. */
export const encodeConfluent = (e: AuditEvent, schemaId: number): Buffer => {
  if (!Number.isInteger(schemaId) || schemaId < 0 || schemaId > 0xffffffff) throw new AvroEncodeError({ reason: `schema id ${schemaId} does not fit 4 bytes` })
  return encodeFramed(e, (out) => {
    out.byte(0)
    out.reserve(4)
    out.buf.writeUInt32BE(schemaId, out.pos)
    out.pos += 4
  })
}

/** The schema id of a Confluent-framed message. */
export const confluentSchemaId = (buf: Buffer): Result.Result<number, AvroDecodeError> => {
  if (buf.length < CONFLUENT_HEADER_LENGTH) return Result.fail(new AvroDecodeError({ reason: `${buf.length} bytes: shorter than the Confluent header` }))
  if (buf[0] !== 0) return Result.fail(new AvroDecodeError({ reason: `Confluent magic byte is ${buf[0]}, not 0` }))
  return Result.succeed(buf.readUInt32BE(1))
}

/**
 * Decodes a Confluent-framed event. `writerForId` maps the registry's schema ids to known
 * versions (the registry client's cache, or a lookup of `GET /schemas/ids/{id}`).
 */
export const decodeConfluent = (
  buf: Buffer,
  writerForId: (id: number) => SchemaVersion | undefined,
): Result.Result<AuditEvent, AvroDecodeError> =>
  Result.flatMap(confluentSchemaId(buf), (id) => {
    const writer = writerForId(id)
    return writer === undefined
      ? Result.fail(new AvroDecodeError({ reason: `unknown schema id ${id}` }))
      : decodeEvent(buf.subarray(CONFLUENT_HEADER_LENGTH), writer)
  })

/** The event kind, for a message header. */
export const eventKind = (e: AuditEvent): Payload["_tag"] => e.payload._tag
