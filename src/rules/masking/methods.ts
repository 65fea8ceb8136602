/**
 * Masking methods: how one sensitive result value is rewritten before the client sees it.
 *
 * A masked value must still be a valid value of its column's type and format (as the
 * RowDescription gives them), so every driver (node-postgres, psycopg, pgx, psql) still
 * parses the row: a driver that parses int4 text would throw on "****". Where no
 * valid masked value of the type exists, the value becomes SQL NULL. Masking fails
 * closed: the original value is never passed through.
 *
 * By type (type OID) and format:
 *
 * - String types: text (25), varchar (1043), bpchar (1042), name (19) and unknown (705)
 *   in text or binary format (their binary form is the same bytes as their text form),
 *   "char" (18) in text format only (its binary form is a single byte), and any
 *   user-defined type (OID >= 16384: citext, enums, domains, ...) in text format only.
 *   - `redact`: the constant `****`, whatever the value (its length does not leak).
 *   - `partial`: `****` followed by the value's last `keep` characters (Unicode code
 *     points, never a split UTF-8 sequence); a value of at most `keep * 2` characters
 *     becomes `****` alone, since keeping its end would reveal most of it. The prefix
 *     is always `****`, whatever the value's length, so the length does not leak and
 *     the output is at most 4 + 4 * `keep` bytes. `keep` defaults to 4; a `keep` that is
 *     not a non-negative integer counts as 0 (nothing kept).
 *   - `email`: `****@` followed by everything after the value's last `@` (the domain):
 *     `jane.doe@example.com` → `****@example.com`; a value without `@` → `****`.
 *   - `null`: SQL NULL.
 *   A value that is not valid UTF-8 becomes SQL NULL under `partial` and `email`
 *   (`redact` does not look at the value). The string methods assume the session's
 *   client_encoding is UTF8.
 * - json (114) and jsonb (3802), either format: the JSON string `"****"` for `redact`,
 *   `partial` and `email` (jsonb's binary form is the version byte 1 followed by the
 *   JSON text); SQL NULL for `null`.
 * - Every other type (numbers, booleans, dates and times, uuid, bytea, arrays, ranges,
 *   user-defined types in binary format, ...): SQL NULL, whatever the method.
 *
 * `valueMask` does the type and format dispatch once per column; the returned function
 * runs per value and allocates nothing but its output (constant outputs are shared
 * buffers, which callers copy and must not modify). A mask whose output does not depend
 * on the value (`redact`, `null`, json, every non-string type) says so in `constant`.
 */
import { isUtf8 } from "node:buffer"

/** A masking method, with its options. */
export type MaskSpec =
  | { readonly method: "redact" }
  | { readonly method: "null" }
  | {
      readonly method: "partial"
      /** Characters (code points) kept at the end, after a `****` prefix; default 4. */
      readonly keep?: number | undefined
    }
  | { readonly method: "email" }

export type MaskMethod = MaskSpec["method"]

/** Rewrites one non-NULL value; returns null to send SQL NULL. */
export interface ValueMask {
  (value: Uint8Array): Uint8Array | null
  /**
   * Present when the mask ignores its input: what every value becomes (null: SQL NULL).
   * A caller may use it instead of calling the mask, and skip making a view of the value.
   */
  readonly constant?: Uint8Array | null
}

/** `partial`'s `keep` when the spec gives none. */
export const DEFAULT_PARTIAL_KEEP = 4

/** Type OIDs of the built-in types masking knows (pg_type.dat). */
const TypeOid = {
  char: 18,
  name: 19,
  text: 25,
  json: 114,
  unknown: 705,
  bpchar: 1042,
  varchar: 1043,
  jsonb: 3802
} as const

/** The first OID a user-defined object can get (FirstNormalObjectId). */
export const FIRST_USER_OID = 16384

const MASK = 0x2a // '*'
const AT = 0x40 // '@'

/** `****`: the redacted string. */
const REDACTED = Uint8Array.of(MASK, MASK, MASK, MASK)
/** `"****"`: the redacted JSON value (json in either format, jsonb in text format). */
const JSON_REDACTED = Uint8Array.of(0x22, MASK, MASK, MASK, MASK, 0x22)
/** jsonb binary format: version 1, then the JSON text. */
const JSONB_BINARY_REDACTED = Uint8Array.of(1, 0x22, MASK, MASK, MASK, MASK, 0x22)

const constant = (out: Uint8Array | null): ValueMask => Object.assign(() => out, { constant: out })

const toNull = constant(null)
const redacted = constant(REDACTED)
const jsonRedacted = constant(JSON_REDACTED)
const jsonbBinaryRedacted = constant(JSONB_BINARY_REDACTED)

/** `****` followed by `value[from..]`, in one allocation (none when nothing follows). */
const prefixed = (value: Uint8Array, from: number): Uint8Array => {
  if (from === value.length) return REDACTED
  // From Node's pool (allocating a small Uint8Array is many times slower), as a plain view.
  const size = 4 + value.length - from
  const b = Buffer.allocUnsafe(size)
  const out = new Uint8Array(b.buffer, b.byteOffset, size)
  out[0] = out[1] = out[2] = out[3] = MASK
  for (let i = from, to = 4; i < value.length; i++, to++) out[to] = value[i]!
  return out
}

const partial = (keep: number): ValueMask => {
  // A value of more than `keep * 2` code points keeps its last `keep`.
  const reveal = keep * 2 + 1
  return (value) => {
    if (!isUtf8(value)) return null
    // Walk back over code point starts (bytes that are not 10xxxxxx), no decoding.
    let seen = 0
    let tail = value.length
    for (let at = value.length - 1; at >= 0; at--) {
      if ((value[at]! & 0xc0) === 0x80) continue
      seen++
      if (seen === keep) tail = at
      if (seen === reveal) return prefixed(value, tail)
    }
    return REDACTED
  }
}

const email: ValueMask = (value) => {
  if (!isUtf8(value)) return null
  // 0x40 is never part of a multi-byte UTF-8 sequence, so a byte search is exact.
  const at = value.lastIndexOf(AT)
  return at < 0 ? REDACTED : prefixed(value, at)
}

const keepOf = (keep: number | undefined): number => {
  const k = keep ?? DEFAULT_PARTIAL_KEEP
  return Number.isSafeInteger(k) && k >= 0 ? k : 0
}

/** The string types whose binary format is their text's bytes (textsend and its kin). */
const isTextBinary = (typeOid: number): boolean =>
  typeOid === TypeOid.text ||
  typeOid === TypeOid.varchar ||
  typeOid === TypeOid.bpchar ||
  typeOid === TypeOid.name ||
  typeOid === TypeOid.unknown

const isStringColumn = (typeOid: number, binary: boolean): boolean =>
  isTextBinary(typeOid) || (!binary && (typeOid === TypeOid.char || typeOid >= FIRST_USER_OID))

/** The rewrite for one result column, given its type OID and format (RowDescription). */
export const valueMask = (spec: MaskSpec, typeOid: number, binary: boolean): ValueMask => {
  if (spec.method === "null") return toNull
  if (typeOid === TypeOid.json) return jsonRedacted
  if (typeOid === TypeOid.jsonb) return binary ? jsonbBinaryRedacted : jsonRedacted
  if (!isStringColumn(typeOid, binary)) return toNull
  switch (spec.method) {
    case "redact":
      return redacted
    case "partial":
      return partial(keepOf(spec.keep))
    case "email":
      return email
  }
}
