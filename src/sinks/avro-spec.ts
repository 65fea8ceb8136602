/**
 * Avro specification pieces that avsc does not provide, independent of Sluice's events:
 *
 * - Parsing Canonical Form of a schema (spec, "Parsing Canonical Form for Schemas").
 * - The CRC-64-AVRO (Rabin) fingerprint of it (spec, "Schema Fingerprints"). avsc's
 *   `Type#fingerprint()` hashes with md5/sha256 only, so single-object encoding needs this.
 * - A well-formedness check of binary data against a writer type, with every length and
 *   count bounded by the bytes left. avsc's decoders trust counts: garbage claiming an
 *   array of 2^31 strings makes them loop for minutes. Decoding untrusted bytes (a topic, a
 *   file) runs this check first, so that garbage fails fast with a reason.
 */
import { isUtf8 } from "node:buffer"
import avsc from "avsc"

const PRIMITIVES: ReadonlySet<string> = new Set(["null", "boolean", "int", "long", "float", "double", "bytes", "string"])

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const fullName = (name: string, namespace: string): string =>
  name.includes(".") || namespace === "" ? name : `${namespace}.${name}`

const namespaceOf = (full: string): string => {
  const dot = full.lastIndexOf(".")
  return dot < 0 ? "" : full.slice(0, dot)
}

/**
 * The Parsing Canonical Form of a schema given as parsed JSON: primitives in simple form,
 * full names, only the attributes that matter for parsing (name, type, fields, symbols,
 * items, values, size) in that order, no whitespace; a named type after its first
 * definition is written as its full name. Throws on a value that is not a schema.
 */
export const parsingCanonicalForm = (schema: unknown): string => canonical(schema, "", new Set())

const canonical = (s: unknown, namespace: string, defined: Set<string>): string => {
  if (typeof s === "string") {
    return JSON.stringify(PRIMITIVES.has(s) ? s : fullName(s, namespace))
  }
  if (Array.isArray(s)) {
    return `[${s.map((branch) => canonical(branch, namespace, defined)).join(",")}]`
  }
  if (!isRecord(s)) throw new Error(`not an Avro schema: ${JSON.stringify(s)}`)
  const type = s["type"]
  if (typeof type !== "string") return canonical(type, namespace, defined)
  switch (type) {
    case "record":
    case "error":
    case "enum":
    case "fixed": {
      const name = s["name"]
      if (typeof name !== "string") throw new Error(`a ${type} needs a name`)
      const ns = typeof s["namespace"] === "string" ? s["namespace"] : namespace
      const full = fullName(name, ns)
      if (defined.has(full)) return JSON.stringify(full)
      defined.add(full)
      const head = `{"name":${JSON.stringify(full)},"type":"${type === "error" ? "record" : type}"`
      if (type === "enum") {
        const symbols = s["symbols"]
        if (!Array.isArray(symbols)) throw new Error(`enum ${full} needs symbols`)
        return `${head},"symbols":[${symbols.map((x) => JSON.stringify(String(x))).join(",")}]}`
      }
      if (type === "fixed") return `${head},"size":${Number(s["size"])}}`
      const fields = s["fields"]
      if (!Array.isArray(fields)) throw new Error(`record ${full} needs fields`)
      const inner = namespaceOf(full)
      const parts = fields.map((f: unknown) => {
        if (!isRecord(f) || typeof f["name"] !== "string") throw new Error(`record ${full} has a field without a name`)
        return `{"name":${JSON.stringify(f["name"])},"type":${canonical(f["type"], inner, defined)}}`
      })
      return `${head},"fields":[${parts.join(",")}]}`
    }
    case "array":
      return `{"type":"array","items":${canonical(s["items"], namespace, defined)}}`
    case "map":
      return `{"type":"map","values":${canonical(s["values"], namespace, defined)}}`
    default:
      // a primitive in object form (logicalType and other attributes are stripped) or a named reference
      return canonical(type, namespace, defined)
  }
}

// CRC-64-AVRO, as in the spec's reference implementation: the table-driven Rabin fingerprint.
const EMPTY = 0xc15d213aa4d7a795n
const TABLE: BigUint64Array = (() => {
  const table = new BigUint64Array(256)
  for (let i = 0; i < 256; i++) {
    let fp = BigInt(i)
    for (let j = 0; j < 8; j++) fp = (fp >> 1n) ^ (EMPTY & -(fp & 1n))
    table[i] = fp
  }
  return table
})()

/** The CRC-64-AVRO fingerprint of some bytes, as an unsigned 64-bit value. */
export const rabinFingerprint64 = (bytes: Uint8Array): bigint => {
  let fp = EMPTY
  for (const b of bytes) fp = (fp >> 8n) ^ TABLE[Number((fp ^ BigInt(b)) & 0xffn)]!
  return fp
}

/** The 8 bytes of a schema's fingerprint as single-object encoding writes them: little-endian. */
export const fingerprintOfCanonical = (canonicalForm: string): Buffer => {
  const out = Buffer.alloc(8)
  out.writeBigUInt64LE(rabinFingerprint64(Buffer.from(canonicalForm, "utf8")))
  return out
}

/** Thrown by {@link checkWellFormed}; carries the byte offset where the data went wrong. */
export class MalformedAvro extends Error {
  readonly offset: number
  /** The data ran out before the value ended (a torn tail), rather than being wrong. */
  readonly truncated: boolean
  constructor(message: string, offset: number, truncated = false) {
    super(`${message} at byte ${offset}`)
    this.offset = offset
    this.truncated = truncated
  }
}

type Walker = (buf: Buffer, pos: number) => number

/** Minimum number of bytes any value of the type takes (0 for null and records of nothing). */
const minSize = (t: avsc.Type, seen: Set<avsc.Type> = new Set()): number => {
  const name = t.typeName
  if (name.startsWith("logical:")) return minSize((t as avsc.types.LogicalType).underlyingType, seen)
  switch (name) {
    case "null":
      return 0
    case "float":
      return 4
    case "double":
      return 8
    case "fixed":
      return (t as avsc.types.FixedType).size
    case "record":
    case "error": {
      if (seen.has(t)) return 0
      seen.add(t)
      return (t as avsc.types.RecordType).fields.reduce((n, f) => n + minSize(f.type, seen), 0)
    }
    default:
      return 1
  }
}

/** Items or entries of zero size cannot be bounded by the bytes left: cap them. */
const MAX_ZERO_SIZE_ITEMS = 1_000_000

/**
 * Where the last {@link varintAt} ended. The walkers are synchronous, so one cursor shared
 * by all of them serves: a `{ value, pos }` object a varint was most of what a check
 * allocated, and the check runs on every event the file sink writes.
 */
let varintEnd = 0

/** The zig-zag varint (an Avro int or long) at `start`; its end goes to {@link varintEnd}. Throws {@link MalformedAvro}. */
const varintAt = (buf: Buffer, start: number): number => {
  const first = buf[start]
  if (first !== undefined && first < 0x80) {
    // one byte: most lengths, counts and indexes
    varintEnd = start + 1
    return (first & 1) === 0 ? first / 2 : -(first + 1) / 2
  }
  let pos = start
  let n = 0
  let scale = 1
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw new MalformedAvro("truncated varint", start, true)
    const b = buf[pos++]!
    n += (b & 0x7f) * scale
    scale *= 128
    if ((b & 0x80) === 0) {
      varintEnd = pos
      // zig-zag, the sign from the first byte (n itself is inexact beyond 2^53; lengths and counts
      // are bounded by the caller, longs range-checked)
      // (an odd n at or beyond 2^53 is below -2^52: reported as -2^53, since -(n+1)/2 would round)
      return (buf[start]! & 1) === 0 ? n / 2 : n >= 2 ** 53 ? -(2 ** 53) : -(n + 1) / 2
    }
  }
  throw new MalformedAvro("varint longer than 10 bytes", start)
}

/** Reads one zig-zag varint (an Avro int or long) at `start`; throws {@link MalformedAvro}. */
export const readVarint = (buf: Buffer, start: number): { readonly value: number; readonly pos: number } => {
  const value = varintAt(buf, start)
  return { value, pos: varintEnd }
}

/** Short ASCII strings (most of an event's) are checked by a loop: a view and a native call cost more. */
const isUtf8Between = (buf: Buffer, start: number, end: number): boolean => {
  if (end - start <= 64) {
    let i = start
    while (i < end && buf[i]! < 0x80) i++
    if (i === end) return true
  }
  return isUtf8(buf.subarray(start, end))
}

const compile = (t: avsc.Type, cache: Map<avsc.Type, Walker>): Walker => {
  const known = cache.get(t)
  if (known !== undefined) return known
  let compiled: Walker | undefined
  // registered before compiling, for recursive types
  const lazy: Walker = (buf, pos) => compiled!(buf, pos)
  cache.set(t, lazy)
  compiled = build(t, cache)
  cache.set(t, compiled)
  return compiled
}

const build = (t: avsc.Type, cache: Map<avsc.Type, Walker>): Walker => {
  const name = t.typeName
  if (name.startsWith("logical:")) return compile((t as avsc.types.LogicalType).underlyingType, cache)
  switch (name) {
    case "null":
      return (_buf, pos) => pos
    case "boolean":
      return (buf, pos) => {
        if (pos >= buf.length) throw new MalformedAvro("truncated boolean", pos, true)
        if (buf[pos]! > 1) throw new MalformedAvro(`boolean byte ${buf[pos]}`, pos)
        return pos + 1
      }
    case "int":
      return (buf, pos) => {
        const value = varintAt(buf, pos)
        if (value < -2147483648 || value > 2147483647) throw new MalformedAvro("int out of range", pos)
        return varintEnd
      }
    case "long":
      return (buf, pos) => {
        // below -2^52 avsc's double arithmetic decodes a different number: refuse (zig-zag odd and >= 2^53)
        if (varintAt(buf, pos) < -(2 ** 52)) throw new MalformedAvro("long below -2^52", pos)
        return varintEnd
      }
    case "float":
    case "double":
    case "fixed": {
      const size = name === "float" ? 4 : name === "double" ? 8 : (t as avsc.types.FixedType).size
      return (buf, pos) => {
        if (pos + size > buf.length) throw new MalformedAvro(`truncated ${name}`, pos, true)
        return pos + size
      }
    }
    case "bytes":
    case "string":
      return (buf, pos) => {
        const length = varintAt(buf, pos)
        const start = varintEnd
        if (length < 0) throw new MalformedAvro(`negative ${name} length`, pos)
        const end = start + length
        if (end > buf.length) throw new MalformedAvro(`${name} of ${length} bytes past the end`, pos, true)
        if (name === "string" && !isUtf8Between(buf, start, end)) throw new MalformedAvro("string is not UTF-8", start)
        return end
      }
    case "enum": {
      const count = (t as avsc.types.EnumType).symbols.length
      return (buf, pos) => {
        const index = varintAt(buf, pos)
        if (index < 0 || index >= count) throw new MalformedAvro(`enum index ${index} of ${count}`, pos)
        return varintEnd
      }
    }
    case "union:wrapped":
    case "union:unwrapped": {
      const branches = (t as avsc.types.WrappedUnionType).types.map((b) => compile(b, cache))
      return (buf, pos) => {
        const index = varintAt(buf, pos)
        const branch = branches[index]
        if (branch === undefined) throw new MalformedAvro(`union branch ${index} of ${branches.length}`, pos)
        return branch(buf, varintEnd)
      }
    }
    case "array":
    case "map": {
      const itemType = name === "array" ? (t as avsc.types.ArrayType).itemsType : (t as avsc.types.MapType).valuesType as avsc.Type
      const item = compile(itemType, cache)
      const key = compile(avsc_string, cache)
      const isMap = name === "map"
      const itemMin = (isMap ? 1 : 0) + minSize(itemType)
      return (buf, start) => {
        let pos = start
        let total = 0
        for (;;) {
          let count = varintAt(buf, pos)
          const countEnd = varintEnd
          pos = countEnd
          if (count === 0) return pos
          if (count < 0) {
            count = -count
            const size = varintAt(buf, pos)
            if (size < 0 || varintEnd + size > buf.length) throw new MalformedAvro(`${name} block size past the end`, pos, true)
            pos = varintEnd
          }
          total += count
          if (itemMin === 0 ? total > MAX_ZERO_SIZE_ITEMS : count > (buf.length - pos) / itemMin) {
            throw new MalformedAvro(`${name} block of ${count} items in ${buf.length - pos} bytes`, countEnd)
          }
          for (let i = 0; i < count; i++) {
            if (isMap) pos = key(buf, pos)
            pos = item(buf, pos)
          }
        }
      }
    }
    case "record":
    case "error": {
      const fields = (t as avsc.types.RecordType).fields.map((f) => compile(f.type, cache))
      return (buf, start) => {
        let pos = start
        for (const f of fields) pos = f(buf, pos)
        return pos
      }
    }
    default:
      throw new Error(`no well-formedness check for Avro type ${name}`)
  }
}

// A stand-in with the only property build() reads, for map keys.
const avsc_string = { typeName: "string" } as avsc.Type

const walkers = new WeakMap<avsc.Type, Walker>()

/**
 * Checks that `buf` from `offset` holds one well-formed value of the writer type: every
 * varint terminates, every length and count fits in the bytes left, strings are UTF-8,
 * enum and union indexes exist. Returns the offset just past the value; throws
 * {@link MalformedAvro}. Runs in time linear in the bytes, whatever they claim.
 */
export const checkWellFormed = (type: avsc.Type, buf: Buffer, offset = 0): number => {
  let walk = walkers.get(type)
  if (walk === undefined) {
    walk = compile(type, new Map())
    walkers.set(type, walk)
  }
  return walk(buf, offset)
}

/**
 * Whether `newer` can read everything written with `older` (Avro schema resolution, as
 * avsc implements it: fields added without a default, branches or symbols the reader
 * lacks without a default, renamed types without aliases, incompatible promotions all
 * fail). Schemas are parsed JSON or avsc types.
 */
export const isBackwardCompatible = (
  older: unknown,
  newer: unknown,
): { readonly compatible: true } | { readonly compatible: false; readonly reason: string } => {
  try {
    const writer = toType(older)
    const reader = toType(newer)
    reader.createResolver(writer)
    return { compatible: true }
  } catch (e) {
    return { compatible: false, reason: e instanceof Error ? e.message : String(e) }
  }
}

const toType = (schema: unknown): avsc.Type =>
  avsc.Type.isType(schema) ? (schema as avsc.Type) : avsc.Type.forSchema(schema as avsc.schema.AvroSchema)
