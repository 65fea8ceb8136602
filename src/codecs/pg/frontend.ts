/**
 * Frontend (client → server) messages of the PostgreSQL v3 protocol: one tagged union,
 * one `decodeFrontend` and one `encodeFrontend`. Startup-phase packets (no type byte)
 * have their own pair, since the same bytes mean different things by phase.
 */
import type { Result } from "effect"
import { ByteReader, ByteWriter, decodeWith, OutOfBounds } from "./bytes.ts"
import type { DecodeError } from "./errors.ts"
import { bodyOffset, type Frame } from "./framing.ts"

export const PROTOCOL_3_0 = 196608
export const SSL_REQUEST_CODE = 80877103
export const GSSENC_REQUEST_CODE = 80877104
export const CANCEL_REQUEST_CODE = 80877102

// ---- startup phase ---------------------------------------------------------

export type StartupPacket =
  | { readonly _tag: "StartupMessage"; readonly protocolVersion: number; readonly parameters: ReadonlyMap<string, string> }
  | { readonly _tag: "SSLRequest" }
  | { readonly _tag: "GSSENCRequest" }
  | { readonly _tag: "CancelRequest"; readonly processId: number; readonly secretKey: number }

export const decodeStartup = (frame: Frame): Result.Result<StartupPacket, DecodeError> =>
  decodeWith(0, () => {
    const r = new ByteReader(frame.bytes, bodyOffset(frame))
    const code = r.int32()
    switch (code) {
      case SSL_REQUEST_CODE:
        r.end()
        return { _tag: "SSLRequest" }
      case GSSENC_REQUEST_CODE:
        r.end()
        return { _tag: "GSSENCRequest" }
      case CANCEL_REQUEST_CODE: {
        const processId = r.int32()
        const secretKey = r.int32()
        r.end()
        return { _tag: "CancelRequest", processId, secretKey }
      }
    }
    // Any other code is a protocol version; its parameters are only meaningful for 3.x.
    const parameters = new Map<string, string>()
    if (code >>> 16 === 3) {
      for (;;) {
        const name = r.cstring()
        if (name === "") break
        // Rejected rather than "last wins": one packet, one meaning.
        if (parameters.has(name)) throw new OutOfBounds(`duplicate startup parameter "${name}"`)
        parameters.set(name, r.cstring())
      }
      r.end()
    }
    return { _tag: "StartupMessage", protocolVersion: code, parameters }
  })

export const encodeStartup = (p: StartupPacket): Uint8Array =>
  ByteWriter.untyped((w) => {
    switch (p._tag) {
      case "SSLRequest":
        return w.int32(SSL_REQUEST_CODE)
      case "GSSENCRequest":
        return w.int32(GSSENC_REQUEST_CODE)
      case "CancelRequest":
        return w.int32(CANCEL_REQUEST_CODE).int32(p.processId).int32(p.secretKey)
      case "StartupMessage":
        w.int32(p.protocolVersion)
        for (const [k, v] of p.parameters) w.cstring(k).cstring(v)
        return w.int8(0)
    }
  })

// ---- typed messages --------------------------------------------------------

export type StatementOrPortal = "S" | "P"

export type FrontendMessage =
  | { readonly _tag: "Query"; readonly sql: string }
  | { readonly _tag: "Parse"; readonly name: string; readonly sql: string; readonly paramTypes: ReadonlyArray<number> }
  | {
      readonly _tag: "Bind"
      readonly portal: string
      readonly statement: string
      readonly paramFormats: ReadonlyArray<number>
      readonly params: ReadonlyArray<Uint8Array | null>
      readonly resultFormats: ReadonlyArray<number>
    }
  | { readonly _tag: "Describe"; readonly kind: StatementOrPortal; readonly name: string }
  | { readonly _tag: "Execute"; readonly portal: string; readonly maxRows: number }
  | { readonly _tag: "Close"; readonly kind: StatementOrPortal; readonly name: string }
  | { readonly _tag: "Sync" }
  | { readonly _tag: "Flush" }
  | { readonly _tag: "Terminate" }
  | { readonly _tag: "CopyData"; readonly data: Uint8Array }
  | { readonly _tag: "CopyDone" }
  | { readonly _tag: "CopyFail"; readonly message: string }
  | {
      readonly _tag: "FunctionCall"
      readonly functionOid: number
      readonly argFormats: ReadonlyArray<number>
      readonly args: ReadonlyArray<Uint8Array | null>
      readonly resultFormat: number
    }
  /** PasswordMessage, SASLInitialResponse and SASLResponse share 'p'; the auth state tells them apart. */
  | { readonly _tag: "AuthResponse"; readonly data: Uint8Array }

export type FrontendTag = FrontendMessage["_tag"]

export const FrontendType = {
  Query: 0x51, // Q
  Parse: 0x50, // P
  Bind: 0x42, // B
  Describe: 0x44, // D
  Execute: 0x45, // E
  Close: 0x43, // C
  Sync: 0x53, // S
  Flush: 0x48, // H
  Terminate: 0x58, // X
  CopyData: 0x64, // d
  CopyDone: 0x63, // c
  CopyFail: 0x66, // f
  FunctionCall: 0x46, // F
  AuthResponse: 0x70 // p
} as const satisfies Record<FrontendTag, number>

const int16s = (r: ByteReader): Array<number> => {
  const n = r.int16()
  if (n < 0) throw new OutOfBounds(`negative count ${n}`)
  const out: Array<number> = []
  for (let i = 0; i < n; i++) out.push(r.int16())
  return out
}

const values = (r: ByteReader): Array<Uint8Array | null> => {
  const n = r.int16()
  if (n < 0) throw new OutOfBounds(`negative count ${n}`)
  const out: Array<Uint8Array | null> = []
  for (let i = 0; i < n; i++) {
    const len = r.int32()
    if (len < -1) throw new OutOfBounds(`invalid value length ${len}`)
    out.push(len === -1 ? null : r.bytesView(len))
  }
  return out
}

const kind = (r: ByteReader): StatementOrPortal => {
  const k = r.int8()
  if (k === 0x53) return "S"
  if (k === 0x50) return "P"
  throw new OutOfBounds(`expected 'S' or 'P', got byte ${k}`)
}

export const decodeFrontend = (frame: Frame): Result.Result<FrontendMessage, DecodeError> =>
  decodeWith(frame.type, (): FrontendMessage => {
    const r = new ByteReader(frame.bytes, bodyOffset(frame))
    const done = <M extends FrontendMessage>(m: M): M => {
      r.end()
      return m
    }
    switch (frame.type) {
      case FrontendType.Query:
        return done({ _tag: "Query", sql: r.cstring() })
      case FrontendType.Parse: {
        const name = r.cstring()
        const sql = r.cstring()
        const n = r.int16()
        if (n < 0) throw new OutOfBounds(`negative count ${n}`)
        const paramTypes: Array<number> = []
        for (let i = 0; i < n; i++) paramTypes.push(r.uint32())
        return done({ _tag: "Parse", name, sql, paramTypes })
      }
      case FrontendType.Bind: {
        const portal = r.cstring()
        const statement = r.cstring()
        const paramFormats = int16s(r)
        const params = values(r)
        const resultFormats = int16s(r)
        return done({ _tag: "Bind", portal, statement, paramFormats, params, resultFormats })
      }
      case FrontendType.Describe:
        return done({ _tag: "Describe", kind: kind(r), name: r.cstring() })
      case FrontendType.Execute:
        return done({ _tag: "Execute", portal: r.cstring(), maxRows: r.int32() })
      case FrontendType.Close:
        return done({ _tag: "Close", kind: kind(r), name: r.cstring() })
      case FrontendType.Sync:
        return done({ _tag: "Sync" })
      case FrontendType.Flush:
        return done({ _tag: "Flush" })
      case FrontendType.Terminate:
        return done({ _tag: "Terminate" })
      case FrontendType.CopyData:
        return { _tag: "CopyData", data: r.rest() }
      case FrontendType.CopyDone:
        return done({ _tag: "CopyDone" })
      case FrontendType.CopyFail:
        return done({ _tag: "CopyFail", message: r.cstring() })
      case FrontendType.FunctionCall: {
        const functionOid = r.uint32()
        const argFormats = int16s(r)
        const args = values(r)
        return done({ _tag: "FunctionCall", functionOid, argFormats, args, resultFormat: r.int16() })
      }
      case FrontendType.AuthResponse:
        return { _tag: "AuthResponse", data: r.rest() }
      default:
        throw new OutOfBounds(`unknown frontend message type ${frame.type}`)
    }
  })

const writeValues = (w: ByteWriter, vs: ReadonlyArray<Uint8Array | null>): void => {
  w.int16(vs.length)
  for (const v of vs) {
    if (v === null) w.int32(-1)
    else w.int32(v.length).bytes(v)
  }
}

const writeInt16s = (w: ByteWriter, ns: ReadonlyArray<number>): void => {
  w.int16(ns.length)
  for (const n of ns) w.int16(n)
}

export const encodeFrontend = (m: FrontendMessage): Uint8Array =>
  ByteWriter.message(FrontendType[m._tag], (w) => {
    switch (m._tag) {
      case "Query":
        return w.cstring(m.sql)
      case "Parse":
        w.cstring(m.name).cstring(m.sql).int16(m.paramTypes.length)
        for (const t of m.paramTypes) w.uint32(t)
        return
      case "Bind":
        w.cstring(m.portal).cstring(m.statement)
        writeInt16s(w, m.paramFormats)
        writeValues(w, m.params)
        return writeInt16s(w, m.resultFormats)
      case "Describe":
      case "Close":
        return w.int8(m.kind.charCodeAt(0)).cstring(m.name)
      case "Execute":
        return w.cstring(m.portal).int32(m.maxRows)
      case "Sync":
      case "Flush":
      case "Terminate":
      case "CopyDone":
        return
      case "CopyData":
      case "AuthResponse":
        return w.bytes(m.data)
      case "CopyFail":
        return w.cstring(m.message)
      case "FunctionCall":
        w.uint32(m.functionOid)
        writeInt16s(w, m.argFormats)
        writeValues(w, m.args)
        return w.int16(m.resultFormat)
    }
  })
