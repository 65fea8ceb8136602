/**
 * Backend (server → client) messages of the PostgreSQL v3 protocol: one tagged union,
 * one `decodeBackend` and one `encodeBackend`. The 'R' family is split by its auth code.
 */
import type { Result } from "effect"
import { ByteReader, ByteWriter, decodeWith, OutOfBounds } from "./bytes.ts"
import type { DecodeError } from "./errors.ts"
import { bodyOffset, type Frame } from "./framing.ts"

export type TransactionStatus = "I" | "T" | "E"

export interface FieldDescription {
  readonly name: string
  readonly tableOid: number
  readonly columnAttr: number
  readonly typeOid: number
  readonly typeSize: number
  readonly typeModifier: number
  readonly format: number
}

/** ErrorResponse / NoticeResponse fields, in wire order, keyed by their one-letter code. */
export type NoticeFields = ReadonlyArray<readonly [code: string, value: string]>

export type BackendMessage =
  | { readonly _tag: "AuthenticationOk" }
  | { readonly _tag: "AuthenticationCleartextPassword" }
  | { readonly _tag: "AuthenticationMD5Password"; readonly salt: Uint8Array }
  | { readonly _tag: "AuthenticationSASL"; readonly mechanisms: ReadonlyArray<string> }
  | { readonly _tag: "AuthenticationSASLContinue"; readonly data: Uint8Array }
  | { readonly _tag: "AuthenticationSASLFinal"; readonly data: Uint8Array }
  /** Kerberos, GSS, SSPI: methods Sluice does not speak to a backend. */
  | { readonly _tag: "AuthenticationUnsupported"; readonly code: number; readonly data: Uint8Array }
  | { readonly _tag: "ParameterStatus"; readonly name: string; readonly value: string }
  | { readonly _tag: "BackendKeyData"; readonly processId: number; readonly secretKey: number }
  | { readonly _tag: "ReadyForQuery"; readonly status: TransactionStatus }
  | { readonly _tag: "RowDescription"; readonly fields: ReadonlyArray<FieldDescription> }
  | { readonly _tag: "DataRow"; readonly values: ReadonlyArray<Uint8Array | null> }
  | { readonly _tag: "CommandComplete"; readonly tag: string }
  | { readonly _tag: "EmptyQueryResponse" }
  | { readonly _tag: "ErrorResponse"; readonly fields: NoticeFields }
  | { readonly _tag: "NoticeResponse"; readonly fields: NoticeFields }
  | { readonly _tag: "NotificationResponse"; readonly processId: number; readonly channel: string; readonly payload: string }
  | { readonly _tag: "ParseComplete" }
  | { readonly _tag: "BindComplete" }
  | { readonly _tag: "CloseComplete" }
  | { readonly _tag: "NoData" }
  | { readonly _tag: "PortalSuspended" }
  | { readonly _tag: "ParameterDescription"; readonly typeOids: ReadonlyArray<number> }
  | { readonly _tag: "CopyInResponse"; readonly format: number; readonly columnFormats: ReadonlyArray<number> }
  | { readonly _tag: "CopyOutResponse"; readonly format: number; readonly columnFormats: ReadonlyArray<number> }
  | { readonly _tag: "CopyBothResponse"; readonly format: number; readonly columnFormats: ReadonlyArray<number> }
  | { readonly _tag: "CopyData"; readonly data: Uint8Array }
  | { readonly _tag: "CopyDone" }
  | { readonly _tag: "FunctionCallResponse"; readonly value: Uint8Array | null }
  | { readonly _tag: "NegotiateProtocolVersion"; readonly newestMinor: number; readonly unsupported: ReadonlyArray<string> }

export type BackendTag = BackendMessage["_tag"]

export const BackendType = {
  Authentication: 0x52, // R
  ParameterStatus: 0x53, // S
  BackendKeyData: 0x4b, // K
  ReadyForQuery: 0x5a, // Z
  RowDescription: 0x54, // T
  DataRow: 0x44, // D
  CommandComplete: 0x43, // C
  EmptyQueryResponse: 0x49, // I
  ErrorResponse: 0x45, // E
  NoticeResponse: 0x4e, // N
  NotificationResponse: 0x41, // A
  ParseComplete: 0x31, // 1
  BindComplete: 0x32, // 2
  CloseComplete: 0x33, // 3
  NoData: 0x6e, // n
  PortalSuspended: 0x73, // s
  ParameterDescription: 0x74, // t
  CopyInResponse: 0x47, // G
  CopyOutResponse: 0x48, // H
  CopyBothResponse: 0x57, // W
  CopyData: 0x64, // d
  CopyDone: 0x63, // c
  FunctionCallResponse: 0x56, // V
  NegotiateProtocolVersion: 0x76 // v
} as const

const AuthCode = { Ok: 0, CleartextPassword: 3, MD5Password: 5, SASL: 10, SASLContinue: 11, SASLFinal: 12 } as const

const typeOf = (tag: BackendTag): number =>
  tag.startsWith("Authentication") ? BackendType.Authentication : BackendType[tag as Exclude<BackendTag, `Authentication${string}`>]

const status = (b: number): TransactionStatus => {
  if (b === 0x49 || b === 0x54 || b === 0x45) return String.fromCharCode(b) as TransactionStatus
  throw new OutOfBounds(`invalid transaction status byte ${b}`)
}

const notices = (r: ByteReader): NoticeFields => {
  const fields: Array<readonly [string, string]> = []
  for (;;) {
    const code = r.int8()
    if (code === 0) return fields
    fields.push([String.fromCharCode(code), r.cstring()])
  }
}

const copyFormats = (r: ByteReader) => {
  const format = r.int8()
  const n = r.int16()
  if (n < 0) throw new OutOfBounds(`negative count ${n}`)
  const columnFormats: Array<number> = []
  for (let i = 0; i < n; i++) columnFormats.push(r.int16())
  return { format, columnFormats }
}

const authentication = (r: ByteReader): BackendMessage => {
  const code = r.int32()
  switch (code) {
    case AuthCode.Ok:
      return { _tag: "AuthenticationOk" }
    case AuthCode.CleartextPassword:
      return { _tag: "AuthenticationCleartextPassword" }
    case AuthCode.MD5Password:
      return { _tag: "AuthenticationMD5Password", salt: r.bytesView(4) }
    case AuthCode.SASL: {
      const mechanisms: Array<string> = []
      for (;;) {
        const m = r.cstring()
        if (m === "") return { _tag: "AuthenticationSASL", mechanisms }
        mechanisms.push(m)
      }
    }
    case AuthCode.SASLContinue:
      return { _tag: "AuthenticationSASLContinue", data: r.rest() }
    case AuthCode.SASLFinal:
      return { _tag: "AuthenticationSASLFinal", data: r.rest() }
    default:
      return { _tag: "AuthenticationUnsupported", code, data: r.rest() }
  }
}

export const decodeBackend = (frame: Frame): Result.Result<BackendMessage, DecodeError> =>
  decodeWith(frame.type, (): BackendMessage => {
    const r = new ByteReader(frame.bytes, bodyOffset(frame))
    const m = decodeBody(frame.type, r)
    r.end()
    return m
  })

const decodeBody = (type: number, r: ByteReader): BackendMessage => {
  switch (type) {
    case BackendType.Authentication:
      return authentication(r)
    case BackendType.ParameterStatus:
      return { _tag: "ParameterStatus", name: r.cstring(), value: r.cstring() }
    case BackendType.BackendKeyData:
      return { _tag: "BackendKeyData", processId: r.int32(), secretKey: r.int32() }
    case BackendType.ReadyForQuery:
      return { _tag: "ReadyForQuery", status: status(r.int8()) }
    case BackendType.RowDescription: {
      const n = r.int16()
      if (n < 0) throw new OutOfBounds(`negative count ${n}`)
      const fields: Array<FieldDescription> = []
      for (let i = 0; i < n; i++) {
        fields.push({
          name: r.cstring(),
          tableOid: r.uint32(),
          columnAttr: r.int16(),
          typeOid: r.uint32(),
          typeSize: r.int16(),
          typeModifier: r.int32(),
          format: r.int16()
        })
      }
      return { _tag: "RowDescription", fields }
    }
    case BackendType.DataRow: {
      const n = r.int16()
      if (n < 0) throw new OutOfBounds(`negative count ${n}`)
      const values: Array<Uint8Array | null> = []
      for (let i = 0; i < n; i++) {
        const len = r.int32()
        if (len < -1) throw new OutOfBounds(`invalid value length ${len}`)
        values.push(len === -1 ? null : r.bytesView(len))
      }
      return { _tag: "DataRow", values }
    }
    case BackendType.CommandComplete:
      return { _tag: "CommandComplete", tag: r.cstring() }
    case BackendType.EmptyQueryResponse:
      return { _tag: "EmptyQueryResponse" }
    case BackendType.ErrorResponse:
      return { _tag: "ErrorResponse", fields: notices(r) }
    case BackendType.NoticeResponse:
      return { _tag: "NoticeResponse", fields: notices(r) }
    case BackendType.NotificationResponse:
      return { _tag: "NotificationResponse", processId: r.int32(), channel: r.cstring(), payload: r.cstring() }
    case BackendType.ParseComplete:
      return { _tag: "ParseComplete" }
    case BackendType.BindComplete:
      return { _tag: "BindComplete" }
    case BackendType.CloseComplete:
      return { _tag: "CloseComplete" }
    case BackendType.NoData:
      return { _tag: "NoData" }
    case BackendType.PortalSuspended:
      return { _tag: "PortalSuspended" }
    case BackendType.ParameterDescription: {
      const n = r.int16()
      if (n < 0) throw new OutOfBounds(`negative count ${n}`)
      const typeOids: Array<number> = []
      for (let i = 0; i < n; i++) typeOids.push(r.uint32())
      return { _tag: "ParameterDescription", typeOids }
    }
    case BackendType.CopyInResponse:
      return { _tag: "CopyInResponse", ...copyFormats(r) }
    case BackendType.CopyOutResponse:
      return { _tag: "CopyOutResponse", ...copyFormats(r) }
    case BackendType.CopyBothResponse:
      return { _tag: "CopyBothResponse", ...copyFormats(r) }
    case BackendType.CopyData:
      return { _tag: "CopyData", data: r.rest() }
    case BackendType.CopyDone:
      return { _tag: "CopyDone" }
    case BackendType.FunctionCallResponse: {
      const len = r.int32()
      if (len < -1) throw new OutOfBounds(`invalid value length ${len}`)
      return { _tag: "FunctionCallResponse", value: len === -1 ? null : r.bytesView(len) }
    }
    case BackendType.NegotiateProtocolVersion: {
      const newestMinor = r.int32()
      const n = r.int32()
      if (n < 0) throw new OutOfBounds(`negative count ${n}`)
      const unsupported: Array<string> = []
      for (let i = 0; i < n; i++) unsupported.push(r.cstring())
      return { _tag: "NegotiateProtocolVersion", newestMinor, unsupported }
    }
    default:
      throw new OutOfBounds(`unknown backend message type ${type}`)
  }
}

const writeNotices = (w: ByteWriter, fields: NoticeFields): void => {
  for (const [code, value] of fields) w.int8(code.charCodeAt(0)).cstring(value)
  w.int8(0)
}

const writeCopyFormats = (w: ByteWriter, m: { readonly format: number; readonly columnFormats: ReadonlyArray<number> }) => {
  w.int8(m.format).int16(m.columnFormats.length)
  for (const f of m.columnFormats) w.int16(f)
}

export const encodeBackend = (m: BackendMessage): Uint8Array =>
  ByteWriter.message(typeOf(m._tag), (w) => {
    switch (m._tag) {
      case "AuthenticationOk":
        return w.int32(AuthCode.Ok)
      case "AuthenticationCleartextPassword":
        return w.int32(AuthCode.CleartextPassword)
      case "AuthenticationMD5Password":
        return w.int32(AuthCode.MD5Password).bytes(m.salt)
      case "AuthenticationSASL":
        w.int32(AuthCode.SASL)
        for (const mech of m.mechanisms) w.cstring(mech)
        return w.int8(0)
      case "AuthenticationSASLContinue":
        return w.int32(AuthCode.SASLContinue).bytes(m.data)
      case "AuthenticationSASLFinal":
        return w.int32(AuthCode.SASLFinal).bytes(m.data)
      case "AuthenticationUnsupported":
        return w.int32(m.code).bytes(m.data)
      case "ParameterStatus":
        return w.cstring(m.name).cstring(m.value)
      case "BackendKeyData":
        return w.int32(m.processId).int32(m.secretKey)
      case "ReadyForQuery":
        return w.int8(m.status.charCodeAt(0))
      case "RowDescription":
        w.int16(m.fields.length)
        for (const f of m.fields) {
          w.cstring(f.name).uint32(f.tableOid).int16(f.columnAttr).uint32(f.typeOid).int16(f.typeSize)
          w.int32(f.typeModifier).int16(f.format)
        }
        return
      case "DataRow":
        w.int16(m.values.length)
        for (const v of m.values) {
          if (v === null) w.int32(-1)
          else w.int32(v.length).bytes(v)
        }
        return
      case "CommandComplete":
        return w.cstring(m.tag)
      case "ErrorResponse":
      case "NoticeResponse":
        return writeNotices(w, m.fields)
      case "NotificationResponse":
        return w.int32(m.processId).cstring(m.channel).cstring(m.payload)
      case "ParameterDescription":
        w.int16(m.typeOids.length)
        for (const t of m.typeOids) w.uint32(t)
        return
      case "CopyInResponse":
      case "CopyOutResponse":
      case "CopyBothResponse":
        return writeCopyFormats(w, m)
      case "CopyData":
        return w.bytes(m.data)
      case "FunctionCallResponse":
        if (m.value === null) w.int32(-1)
        else w.int32(m.value.length).bytes(m.value)
        return
      case "NegotiateProtocolVersion":
        w.int32(m.newestMinor).int32(m.unsupported.length)
        for (const u of m.unsupported) w.cstring(u)
        return
      case "EmptyQueryResponse":
      case "ParseComplete":
      case "BindComplete":
      case "CloseComplete":
      case "NoData":
      case "PortalSuspended":
      case "CopyDone":
        return
    }
  })

/** The fields of an ErrorResponse or NoticeResponse that Sluice raises itself. */
export interface Problem {
  readonly severity: "ERROR" | "FATAL" | "PANIC" | "WARNING" | "NOTICE"
  readonly code: string
  readonly message: string
  readonly detail?: string
  readonly hint?: string
}

export const problemFields = (p: Problem): NoticeFields => [
  ["S", p.severity],
  ["V", p.severity],
  ["C", p.code],
  ["M", p.message],
  ...(p.detail === undefined ? [] : [["D", p.detail] as const]),
  ...(p.hint === undefined ? [] : [["H", p.hint] as const])
]

export const errorResponse = (p: Problem): Uint8Array => encodeBackend({ _tag: "ErrorResponse", fields: problemFields(p) })

export const field = (fields: NoticeFields, code: string): string | undefined => fields.find(([c]) => c === code)?.[1]
