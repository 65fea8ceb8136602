/**
 * fast-check arbitraries for every PostgreSQL wire message Sluice's codec knows:
 * startup packets, typed frontend messages and typed backend messages, plus the
 * helpers the property suites share (comparison normalisation, stream splitting).
 *
 * Every generated message is one the codec promises to round-trip exactly:
 * cstrings hold no NUL and are well-formed Unicode, counts fit an int16, oids are
 * uint32, and fields are within the width the wire gives them.
 */
import fc from "fast-check"
import type { BackendMessage, BackendTag, FieldDescription, NoticeFields, TransactionStatus } from "../../src/codecs/pg/backend.ts"
import {
  CANCEL_REQUEST_CODE,
  GSSENC_REQUEST_CODE,
  PROTOCOL_3_0,
  SSL_REQUEST_CODE,
  type FrontendMessage,
  type FrontendTag,
  type StartupPacket,
  type StatementOrPortal
} from "../../src/codecs/pg/frontend.ts"

// ---- primitives ------------------------------------------------------------

export const int8u = fc.integer({ min: 0, max: 0xff })
export const int16 = fc.integer({ min: -0x8000, max: 0x7fff })
export const int32 = fc.integer({ min: -0x8000_0000, max: 0x7fff_ffff })
export const uint32 = fc.integer({ min: 0, max: 0xffff_ffff })
/** An oid: uint32, biased towards the small values real catalogs use. */
export const oid = fc.oneof(fc.integer({ min: 0, max: 20_000 }), uint32, fc.constantFrom(0, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff))

/** True when the string has no lone surrogate (so UTF-8 encoding is lossless). */
export const isWellFormed = (s: string): boolean => !/[\uD800-\uDFFF]/.test(s.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, ""))

/** Pieces that tend to break text codecs: BOMs, combining marks, astral code points, U+FFFD, Latin-1 range. */
const awkward = fc.constantFrom(
  "\uFEFF",
  "\uFEFF\uFEFF",
  "\uFFFE",
  "\uFFFD",
  "é",
  "e\u0301",
  "\u00FF",
  "\u0080",
  "ß",
  "中文",
  "\u{1F600}",
  "\u{1F468}\u200D\u{1F469}",
  "\u{10FFFF}",
  "\u0001",
  "\u007F",
  " ",
  ",",
  "=",
  "'",
  "SELECT 1",
  "$1"
)

/** A NUL-free, well-formed string: what a cstring field can carry. */
export const cstring = (maxLength = 12): fc.Arbitrary<string> =>
  fc
    .oneof(
      { weight: 3, arbitrary: fc.string({ unit: "grapheme", maxLength }) },
      { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength }) },
      { weight: 1, arbitrary: fc.string({ unit: "grapheme-ascii", maxLength }) },
      { weight: 2, arbitrary: fc.array(awkward, { maxLength: 4 }).map((a) => a.join("")) }
    )
    .map((s) => s.replaceAll("\0", ""))
    .filter(isWellFormed)

export const nonEmptyCstring = (maxLength = 12): fc.Arbitrary<string> => cstring(maxLength).filter((s) => s.length > 0)

/**
 * Raw bytes, sometimes as a view into a larger buffer (non-zero byteOffset), so that
 * encoders are exercised on subarrays, not only on fresh arrays.
 */
export const bytes = (maxLength = 24): fc.Arbitrary<Uint8Array> =>
  fc.oneof(
    fc.uint8Array({ maxLength }),
    fc.tuple(fc.uint8Array({ maxLength }), fc.nat(7), fc.nat(7)).map(([b, before, after]) => {
      const big = new Uint8Array(before + b.length + after).fill(0xee)
      big.set(b, before)
      return big.subarray(before, before + b.length)
    })
  )

export const nullableBytes = (maxLength = 24): fc.Arbitrary<Uint8Array | null> =>
  fc.oneof({ weight: 1, arbitrary: fc.constant(null) }, { weight: 3, arbitrary: bytes(maxLength) })

/** int16-counted arrays: small in practice (the count itself is checked by the codec). */
const counted = <A>(a: fc.Arbitrary<A>, maxLength = 6): fc.Arbitrary<Array<A>> => fc.array(a, { maxLength })

const kind: fc.Arbitrary<StatementOrPortal> = fc.constantFrom("S", "P")
const formatCode = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(0, 1) }, { weight: 1, arbitrary: int16 })

// ---- startup packets -------------------------------------------------------

/** A protocol version whose major is not 3 and which is none of the special request codes. */
const otherVersion = int32.filter(
  (v) => v >>> 16 !== 3 && v !== SSL_REQUEST_CODE && v !== GSSENC_REQUEST_CODE && v !== CANCEL_REQUEST_CODE
)

const startupParameters: fc.Arbitrary<ReadonlyMap<string, string>> = fc
  .uniqueArray(fc.tuple(nonEmptyCstring(), cstring()), { selector: ([k]) => k, maxLength: 6 })
  .map((entries) => new Map(entries))

export const startupByTag: { readonly [K in StartupPacket["_tag"]]: fc.Arbitrary<Extract<StartupPacket, { _tag: K }>> } = {
  StartupMessage: fc.oneof(
    fc.record({
      _tag: fc.constant("StartupMessage" as const),
      protocolVersion: fc.oneof(fc.constant(PROTOCOL_3_0), fc.integer({ min: 0, max: 0xffff }).map((minor) => PROTOCOL_3_0 + minor)),
      parameters: startupParameters
    }),
    // Only 3.x carries parameters; any other version is decoded without them.
    fc.record({
      _tag: fc.constant("StartupMessage" as const),
      protocolVersion: otherVersion,
      parameters: fc.constant(new Map<string, string>() as ReadonlyMap<string, string>)
    })
  ),
  SSLRequest: fc.constant({ _tag: "SSLRequest" as const }),
  GSSENCRequest: fc.constant({ _tag: "GSSENCRequest" as const }),
  CancelRequest: fc.record({ _tag: fc.constant("CancelRequest" as const), processId: int32, secretKey: int32 })
}

export const startupPacket: fc.Arbitrary<StartupPacket> = fc.oneof(...Object.values(startupByTag))

// ---- frontend messages -----------------------------------------------------

export const frontendByTag: { readonly [K in FrontendTag]: fc.Arbitrary<Extract<FrontendMessage, { _tag: K }>> } = {
  Query: fc.record({ _tag: fc.constant("Query" as const), sql: cstring(40) }),
  Parse: fc.record({
    _tag: fc.constant("Parse" as const),
    name: cstring(),
    sql: cstring(40),
    paramTypes: counted(oid)
  }),
  Bind: fc.record({
    _tag: fc.constant("Bind" as const),
    portal: cstring(),
    statement: cstring(),
    paramFormats: counted(formatCode),
    params: counted(nullableBytes()),
    resultFormats: counted(formatCode)
  }),
  Describe: fc.record({ _tag: fc.constant("Describe" as const), kind, name: cstring() }),
  Execute: fc.record({ _tag: fc.constant("Execute" as const), portal: cstring(), maxRows: int32 }),
  Close: fc.record({ _tag: fc.constant("Close" as const), kind, name: cstring() }),
  Sync: fc.constant({ _tag: "Sync" as const }),
  Flush: fc.constant({ _tag: "Flush" as const }),
  Terminate: fc.constant({ _tag: "Terminate" as const }),
  CopyData: fc.record({ _tag: fc.constant("CopyData" as const), data: bytes(64) }),
  CopyDone: fc.constant({ _tag: "CopyDone" as const }),
  CopyFail: fc.record({ _tag: fc.constant("CopyFail" as const), message: cstring() }),
  FunctionCall: fc.record({
    _tag: fc.constant("FunctionCall" as const),
    functionOid: oid,
    argFormats: counted(formatCode),
    args: counted(nullableBytes()),
    resultFormat: formatCode
  }),
  AuthResponse: fc.record({ _tag: fc.constant("AuthResponse" as const), data: bytes(64) })
}

export const frontendMessage: fc.Arbitrary<FrontendMessage> = fc.oneof(...Object.values(frontendByTag))

// ---- backend messages ------------------------------------------------------

const KNOWN_AUTH_CODES = new Set([0, 3, 5, 10, 11, 12])

/** A notice/error field code: one byte, never the NUL terminator. Mostly the letters PostgreSQL sends. */
export const noticeCode = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(..."SVCMDHPpqWstcdnFLR") },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 0xff }).map((b) => String.fromCharCode(b)) }
)

const noticeFields: fc.Arbitrary<NoticeFields> = fc.array(fc.tuple(noticeCode, cstring(20)), { maxLength: 8 })

const fieldDescription: fc.Arbitrary<FieldDescription> = fc.record({
  name: cstring(),
  tableOid: oid,
  columnAttr: int16,
  typeOid: oid,
  typeSize: int16,
  typeModifier: int32,
  format: formatCode
})

const copyResponse = <T extends "CopyInResponse" | "CopyOutResponse" | "CopyBothResponse">(tag: T) =>
  fc.record({
    _tag: fc.constant(tag),
    format: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(0, 1) }, { weight: 1, arbitrary: int8u }),
    columnFormats: counted(formatCode)
  })

export const backendByTag: { readonly [K in BackendTag]: fc.Arbitrary<Extract<BackendMessage, { _tag: K }>> } = {
  AuthenticationOk: fc.constant({ _tag: "AuthenticationOk" as const }),
  AuthenticationCleartextPassword: fc.constant({ _tag: "AuthenticationCleartextPassword" as const }),
  AuthenticationMD5Password: fc.record({
    _tag: fc.constant("AuthenticationMD5Password" as const),
    salt: fc.uint8Array({ minLength: 4, maxLength: 4 })
  }),
  AuthenticationSASL: fc.record({
    _tag: fc.constant("AuthenticationSASL" as const),
    mechanisms: fc.oneof(
      fc.constant(["SCRAM-SHA-256"]),
      fc.constant(["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]),
      fc.array(nonEmptyCstring(), { maxLength: 4 })
    )
  }),
  AuthenticationSASLContinue: fc.record({ _tag: fc.constant("AuthenticationSASLContinue" as const), data: bytes(64) }),
  AuthenticationSASLFinal: fc.record({ _tag: fc.constant("AuthenticationSASLFinal" as const), data: bytes(64) }),
  AuthenticationUnsupported: fc.record({
    _tag: fc.constant("AuthenticationUnsupported" as const),
    code: fc.oneof(fc.constantFrom(2, 6, 7, 8, 9), int32).filter((c) => !KNOWN_AUTH_CODES.has(c)),
    data: bytes()
  }),
  ParameterStatus: fc.record({ _tag: fc.constant("ParameterStatus" as const), name: cstring(), value: cstring() }),
  BackendKeyData: fc.record({ _tag: fc.constant("BackendKeyData" as const), processId: int32, secretKey: int32 }),
  ReadyForQuery: fc.record({
    _tag: fc.constant("ReadyForQuery" as const),
    status: fc.constantFrom<TransactionStatus>("I", "T", "E")
  }),
  RowDescription: fc.record({ _tag: fc.constant("RowDescription" as const), fields: counted(fieldDescription) }),
  DataRow: fc.record({ _tag: fc.constant("DataRow" as const), values: counted(nullableBytes(), 10) }),
  CommandComplete: fc.record({
    _tag: fc.constant("CommandComplete" as const),
    tag: fc.oneof(fc.constantFrom("SELECT 1", "INSERT 0 3", "UPDATE 0", "BEGIN"), cstring())
  }),
  EmptyQueryResponse: fc.constant({ _tag: "EmptyQueryResponse" as const }),
  ErrorResponse: fc.record({ _tag: fc.constant("ErrorResponse" as const), fields: noticeFields }),
  NoticeResponse: fc.record({ _tag: fc.constant("NoticeResponse" as const), fields: noticeFields }),
  NotificationResponse: fc.record({
    _tag: fc.constant("NotificationResponse" as const),
    processId: int32,
    channel: cstring(),
    payload: cstring(40)
  }),
  ParseComplete: fc.constant({ _tag: "ParseComplete" as const }),
  BindComplete: fc.constant({ _tag: "BindComplete" as const }),
  CloseComplete: fc.constant({ _tag: "CloseComplete" as const }),
  NoData: fc.constant({ _tag: "NoData" as const }),
  PortalSuspended: fc.constant({ _tag: "PortalSuspended" as const }),
  ParameterDescription: fc.record({ _tag: fc.constant("ParameterDescription" as const), typeOids: counted(oid) }),
  CopyInResponse: copyResponse("CopyInResponse"),
  CopyOutResponse: copyResponse("CopyOutResponse"),
  CopyBothResponse: copyResponse("CopyBothResponse"),
  CopyData: fc.record({ _tag: fc.constant("CopyData" as const), data: bytes(64) }),
  CopyDone: fc.constant({ _tag: "CopyDone" as const }),
  FunctionCallResponse: fc.record({ _tag: fc.constant("FunctionCallResponse" as const), value: nullableBytes() }),
  NegotiateProtocolVersion: fc.record({
    _tag: fc.constant("NegotiateProtocolVersion" as const),
    newestMinor: fc.oneof(fc.integer({ min: 0, max: 2 }), int32),
    unsupported: fc.array(fc.oneof(fc.constant("_pq_.compression"), cstring()), { maxLength: 4 })
  })
}

export const backendMessage: fc.Arbitrary<BackendMessage> = fc.oneof(...Object.values(backendByTag))

// ---- helpers ---------------------------------------------------------------

/**
 * A structural copy for comparisons: byte arrays (Buffer, Uint8Array, views) become
 * `{ bytes: [...] }` and Maps become entry lists in insertion order, so `toEqual`
 * compares contents and order, never identity or the concrete typed-array class.
 */
export const plain = (v: unknown): unknown => {
  if (v instanceof Uint8Array) return { bytes: Array.from(v) }
  if (v instanceof Map) return { map: Array.from(v.entries(), ([k, x]) => [plain(k), plain(x)]) }
  if (Array.isArray(v)) return v.map(plain)
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]))
  }
  return v
}

export const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/**
 * Cut points for a stream of `length` bytes: sorted offsets in [0, length], with
 * repeats (empty chunks) allowed. Mixed with the degenerate "every byte alone" split.
 */
export const cutPoints = (length: number): fc.Arbitrary<Array<number>> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.array(fc.integer({ min: 0, max: length }), { maxLength: 24 }).map((cs) => cs.sort((a, b) => a - b)) },
    { weight: 1, arbitrary: fc.constant(Array.from({ length: length + 1 }, (_, i) => i)) },
    { weight: 1, arbitrary: fc.constant([] as Array<number>) }
  )

export interface Chunk {
  /** Where the chunk starts in the whole stream. */
  readonly start: number
  /** Its own copy of the bytes, at a non-zero offset inside a private ArrayBuffer. */
  readonly bytes: Uint8Array
}

/** Splits `whole` at `cuts`; every chunk lives in its own ArrayBuffer, as socket reads do. */
export const split = (whole: Uint8Array, cuts: ReadonlyArray<number>): Array<Chunk> => {
  const bounds = [0, ...cuts, whole.length]
  const chunks: Array<Chunk> = []
  for (let i = 0; i + 1 < bounds.length; i++) {
    const start = bounds[i]!
    const end = bounds[i + 1]!
    const own = new Uint8Array(end - start + 3)
    own.set(whole.subarray(start, end), 3)
    chunks.push({ start, bytes: own.subarray(3, 3 + end - start) })
  }
  return chunks
}
