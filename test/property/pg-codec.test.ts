/**
 * Properties of the PostgreSQL message codec: exact round trips both ways, and
 * agreement with an independent implementation (node-postgres' pg-protocol).
 */
import { Result } from "effect"
import fc from "fast-check"
import { serialize } from "pg-protocol"
import { Parser } from "pg-protocol/dist/parser.js"
import { describe, expect, it } from "vitest"
import { decodeBackend, encodeBackend, type BackendMessage, type BackendTag } from "../../src/codecs/pg/backend.ts"
import { DecodeError } from "../../src/codecs/pg/errors.ts"
import { Framer, type Frame } from "../../src/codecs/pg/framing.ts"
import {
  decodeFrontend,
  decodeStartup,
  encodeFrontend,
  encodeStartup,
  FrontendType,
  PROTOCOL_3_0,
  type FrontendMessage,
  type FrontendTag,
  type StartupPacket
} from "../../src/codecs/pg/frontend.ts"
import { initialResponse } from "../../src/codecs/pg/scram.ts"
import {
  backendByTag,
  backendMessage,

  cstring,
  frontendByTag,
  frontendMessage,
  int32,
  nonEmptyCstring,
  plain,
  startupByTag,
  startupPacket
} from "./pg-arbitraries.ts"

const RUNS = 1000

const typedFrame = (b: Uint8Array): Frame => ({ type: b[0]!, bytes: b })
const startupFrame = (b: Uint8Array): Frame => ({ type: 0, bytes: b })

/** The same bytes at a non-zero offset in a larger buffer, as the Framer hands them out. */
const asView = (b: Uint8Array): Uint8Array => {
  const big = new Uint8Array(b.length + 11).fill(0xaa)
  big.set(b, 7)
  return big.subarray(7, 7 + b.length)
}

const ok = <A>(r: Result.Result<A, DecodeError>): A => {
  if (!Result.isSuccess(r)) throw new Error(`expected a decoded message, got ${r.failure.message}`)
  return r.success
}

const int32At = (b: Uint8Array, at: number): number => new DataView(b.buffer, b.byteOffset, b.byteLength).getInt32(at)

const backendTypeByte: { readonly [K in BackendTag]: number } = {
  AuthenticationOk: 0x52,
  AuthenticationCleartextPassword: 0x52,
  AuthenticationMD5Password: 0x52,
  AuthenticationSASL: 0x52,
  AuthenticationSASLContinue: 0x52,
  AuthenticationSASLFinal: 0x52,
  AuthenticationUnsupported: 0x52,
  ParameterStatus: 0x53,
  BackendKeyData: 0x4b,
  ReadyForQuery: 0x5a,
  RowDescription: 0x54,
  DataRow: 0x44,
  CommandComplete: 0x43,
  EmptyQueryResponse: 0x49,
  ErrorResponse: 0x45,
  NoticeResponse: 0x4e,
  NotificationResponse: 0x41,
  ParseComplete: 0x31,
  BindComplete: 0x32,
  CloseComplete: 0x33,
  NoData: 0x6e,
  PortalSuspended: 0x73,
  ParameterDescription: 0x74,
  CopyInResponse: 0x47,
  CopyOutResponse: 0x48,
  CopyBothResponse: 0x57,
  CopyData: 0x64,
  CopyDone: 0x63,
  FunctionCallResponse: 0x56,
  NegotiateProtocolVersion: 0x76
}

// ---- round trips -----------------------------------------------------------

describe("round trip: decode(encode(m)) = m", () => {
  it("every frontend message", () => {
    fc.assert(
      fc.property(frontendMessage, (m) => {
        const b = encodeFrontend(m)
        expect(b[0]).toBe(FrontendType[m._tag])
        expect(int32At(b, 1)).toBe(b.length - 1)
        expect(plain(ok(decodeFrontend(typedFrame(b))))).toEqual(plain(m))
      }),
      { numRuns: RUNS }
    )
  })

  it("every startup packet", () => {
    fc.assert(
      fc.property(startupPacket, (p) => {
        const b = encodeStartup(p)
        expect(int32At(b, 0)).toBe(b.length)
        expect(plain(ok(decodeStartup(startupFrame(b))))).toEqual(plain(p))
      }),
      { numRuns: RUNS }
    )
  })

  it("every backend message", () => {
    fc.assert(
      fc.property(backendMessage, (m) => {
        const b = encodeBackend(m)
        expect(b[0]).toBe(backendTypeByte[m._tag])
        expect(int32At(b, 1)).toBe(b.length - 1)
        expect(plain(ok(decodeBackend(typedFrame(b))))).toEqual(plain(m))
      }),
      { numRuns: RUNS }
    )
  })

  // The union arbitraries above pick tags uniformly; these make sure each tag is hit
  // often on its own, so a rare tag cannot hide behind the others.
  it.each(Object.keys(frontendByTag) as Array<FrontendTag>)("frontend %s", (tag) => {
    fc.assert(
      fc.property(frontendByTag[tag] as fc.Arbitrary<FrontendMessage>, (m) => {
        expect(plain(ok(decodeFrontend(typedFrame(encodeFrontend(m)))))).toEqual(plain(m))
      }),
      { numRuns: 100 }
    )
  })

  it.each(Object.keys(backendByTag) as Array<BackendTag>)("backend %s", (tag) => {
    fc.assert(
      fc.property(backendByTag[tag] as fc.Arbitrary<BackendMessage>, (m) => {
        expect(plain(ok(decodeBackend(typedFrame(encodeBackend(m)))))).toEqual(plain(m))
      }),
      { numRuns: 100 }
    )
  })

  it.each(Object.keys(startupByTag) as Array<StartupPacket["_tag"]>)("startup %s", (tag) => {
    fc.assert(
      fc.property(startupByTag[tag] as fc.Arbitrary<StartupPacket>, (p) => {
        expect(plain(ok(decodeStartup(startupFrame(encodeStartup(p)))))).toEqual(plain(p))
      }),
      { numRuns: 100 }
    )
  })
})

describe("round trip: encode(decode(bytes)) = bytes", () => {
  it("frontend frames, decoded from a view into a larger buffer", () => {
    fc.assert(
      fc.property(frontendMessage, (m) => {
        const wire = encodeFrontend(m)
        const again = encodeFrontend(ok(decodeFrontend(typedFrame(asView(wire)))))
        expect(Array.from(again)).toEqual(Array.from(wire))
      }),
      { numRuns: RUNS }
    )
  })

  it("startup packets, decoded from a view into a larger buffer", () => {
    fc.assert(
      fc.property(startupPacket, (p) => {
        const wire = encodeStartup(p)
        const again = encodeStartup(ok(decodeStartup(startupFrame(asView(wire)))))
        expect(Array.from(again)).toEqual(Array.from(wire))
      }),
      { numRuns: RUNS }
    )
  })

  it("backend frames, decoded from a view into a larger buffer", () => {
    fc.assert(
      fc.property(backendMessage, (m) => {
        const wire = encodeBackend(m)
        const again = encodeBackend(ok(decodeBackend(typedFrame(asView(wire)))))
        expect(Array.from(again)).toEqual(Array.from(wire))
      }),
      { numRuns: RUNS }
    )
  })

  // Bodies built from a small alphabet (NULs, tiny ints, 'S'/'P'/status letters, -1
  // bytes) decode successfully often enough to matter. Whenever a decoder accepts a
  // body, re-encoding must give back exactly the frame: no ignored trailing bytes,
  // no lossy fields. Bytes >= 0x80 are left out: invalid UTF-8 in a cstring is
  // (by design) decoded lossily.
  const alphabet = fc.constantFrom(0, 0, 0, 1, 2, 3, 4, 0x45, 0x49, 0x50, 0x53, 0x54, 0x61, 0x7f)
  const bodyOf = fc.array(alphabet, { maxLength: 40 }).map((a) => Uint8Array.from(a))
  const frameOf = (type: number, body: Uint8Array): Frame => {
    const b = new Uint8Array(5 + body.length)
    b[0] = type
    new DataView(b.buffer).setInt32(1, 4 + body.length)
    b.set(body, 5)
    return { type, bytes: b }
  }

  it("any frontend frame the decoder accepts re-encodes to the same bytes", () => {
    const types = fc.constantFrom(...Object.values(FrontendType))
    let accepted = 0
    fc.assert(
      fc.property(types, bodyOf, (type, body) => {
        const frame = frameOf(type, body)
        const r = decodeFrontend(frame)
        if (Result.isSuccess(r)) {
          accepted++
          expect(Array.from(encodeFrontend(r.success))).toEqual(Array.from(frame.bytes))
        }
      }),
      { numRuns: 3000 }
    )
    expect(accepted).toBeGreaterThan(100)
  })

  it("any backend frame the decoder accepts re-encodes to the same bytes", () => {
    const types = fc.constantFrom(...new Set(Object.values(backendTypeByte)))
    let accepted = 0
    fc.assert(
      fc.property(types, bodyOf, (type, body) => {
        const frame = frameOf(type, body)
        const r = decodeBackend(frame)
        if (Result.isSuccess(r)) {
          accepted++
          expect(Array.from(encodeBackend(r.success))).toEqual(Array.from(frame.bytes))
        }
      }),
      { numRuns: 3000 }
    )
    expect(accepted).toBeGreaterThan(100)
  })

  it("a startup packet of a version other than 3.x is decoded without parsing its body", () => {
    const version = fc
      .integer({ min: -0x8000_0000, max: 0x7fff_ffff })
      .filter((v) => v >>> 16 !== 3 && v !== 80877102 && v !== 80877103 && v !== 80877104)
    fc.assert(
      fc.property(version, fc.uint8Array({ maxLength: 40 }), (v, body) => {
        const b = new Uint8Array(8 + body.length)
        const view = new DataView(b.buffer)
        view.setInt32(0, b.length)
        view.setInt32(4, v)
        b.set(body, 8)
        expect(plain(ok(decodeStartup(startupFrame(b))))).toEqual(
          plain({ _tag: "StartupMessage", protocolVersion: v, parameters: new Map() })
        )
      }),
      { numRuns: 500 }
    )
  })

  it("any 3.x startup packet or special request the decoder accepts re-encodes to the same bytes", () => {
    // Versions other than 3.x are decoded without looking at their body (there is no
    // other protocol to parse), so only 3.x and the request codes are canonical.
    const code = fc.constantFrom(PROTOCOL_3_0, PROTOCOL_3_0 + 2, 80877102, 80877103, 80877104)
    let accepted = 0
    fc.assert(
      fc.property(code, bodyOf, (c, body) => {
        const b = new Uint8Array(8 + body.length)
        const v = new DataView(b.buffer)
        v.setInt32(0, b.length)
        v.setInt32(4, c)
        b.set(body, 8)
        const r = decodeStartup(startupFrame(b))
        if (Result.isSuccess(r)) {
          accepted++
          expect(Array.from(encodeStartup(r.success))).toEqual(Array.from(b))
        }
      }),
      { numRuns: 3000 }
    )
    expect(accepted).toBeGreaterThan(100)
  })
})

// ---- pg-protocol: its serializer, our decoder ------------------------------

const utf8 = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, "utf8"))
const cstr = (s: string): Uint8Array => Uint8Array.from([...utf8(s), 0])

/** pg-protocol output, cut by our Framer (so the cross-check covers framing too). */
const frameTyped = (wire: Buffer): Frame => {
  const frames = new Framer(1 << 20, { startup: false }).push(wire)
  if (!Array.isArray(frames) || frames.length !== 1) throw new Error(`expected one frame, got ${String(frames)}`)
  return frames[0]!
}
const frameStartup = (wire: Buffer): Frame => {
  const frames = new Framer(1 << 20, { startup: true }).push(wire)
  if (!Array.isArray(frames) || frames.length !== 1) throw new Error(`expected one frame, got ${String(frames)}`)
  return frames[0]!
}
const fromPg = (wire: Buffer): FrontendMessage => ok(decodeFrontend(frameTyped(wire)))

describe("pg-protocol serializer → decodeFrontend / decodeStartup", () => {
  const N = 300
  /** pg-protocol writes int32 type oids with writeInt32BE, so it only takes the signed range. */
  const pgOid = fc.integer({ min: 0, max: 0x7fff_ffff })

  it("query", () => {
    fc.assert(
      fc.property(cstring(60), (sql) => {
        expect(fromPg(serialize.query(sql))).toEqual({ _tag: "Query", sql })
      }),
      { numRuns: N }
    )
  })

  it("parse", () => {
    fc.assert(
      fc.property(cstring(), cstring(60), fc.array(pgOid, { maxLength: 8 }), (name, text, types) => {
        expect(fromPg(serialize.parse({ name, text, types }))).toEqual({ _tag: "Parse", name, sql: text, paramTypes: types })
      }),
      { numRuns: N }
    )
  })

  it("bind", () => {
    const value = fc.oneof(
      fc.constant(null),
      cstring(20),
      fc.uint8Array({ maxLength: 20 }).map((b) => Buffer.from(b))
    )
    fc.assert(
      fc.property(cstring(), cstring(), fc.array(value, { maxLength: 8 }), fc.boolean(), (portal, statement, values, binary) => {
        const m = fromPg(serialize.bind({ portal, statement, values, binary }))
        expect(plain(m)).toEqual(
          plain({
            _tag: "Bind",
            portal,
            statement,
            paramFormats: values.map((v) => (Buffer.isBuffer(v) ? 1 : 0)),
            params: values.map((v) => (v === null ? null : typeof v === "string" ? Buffer.from(v, "utf8") : v)),
            resultFormats: [binary ? 1 : 0]
          })
        )
      }),
      { numRuns: N }
    )
  })

  it("execute", () => {
    fc.assert(
      fc.property(cstring(), fc.integer({ min: 0, max: 0x7fff_ffff }), (portal, rows) => {
        expect(fromPg(serialize.execute({ portal, rows }))).toEqual({ _tag: "Execute", portal, maxRows: rows })
      }),
      { numRuns: N }
    )
    expect(fromPg(serialize.execute())).toEqual({ _tag: "Execute", portal: "", maxRows: 0 })
  })

  it("describe and close", () => {
    fc.assert(
      fc.property(fc.constantFrom("S" as const, "P" as const), cstring(), (type, name) => {
        expect(fromPg(serialize.describe({ type, name }))).toEqual({ _tag: "Describe", kind: type, name })
        expect(fromPg(serialize.close({ type, name }))).toEqual({ _tag: "Close", kind: type, name })
      }),
      { numRuns: N }
    )
  })

  it("sync, flush, end, copyDone", () => {
    expect(fromPg(serialize.sync())).toEqual({ _tag: "Sync" })
    expect(fromPg(serialize.flush())).toEqual({ _tag: "Flush" })
    expect(fromPg(serialize.end())).toEqual({ _tag: "Terminate" })
    expect(fromPg(serialize.copyDone())).toEqual({ _tag: "CopyDone" })
  })

  it("copyData and copyFail", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), cstring(40), (chunk, message) => {
        expect(plain(fromPg(serialize.copyData(Buffer.from(chunk))))).toEqual(plain({ _tag: "CopyData", data: chunk }))
        expect(fromPg(serialize.copyFail(message))).toEqual({ _tag: "CopyFail", message })
      }),
      { numRuns: N }
    )
  })

  it("password, SASLInitialResponse and SASLResponse are AuthResponse with the same bytes", () => {
    fc.assert(
      fc.property(cstring(30), nonEmptyCstring(), cstring(60), (password, mechanism, payload) => {
        expect(plain(fromPg(serialize.password(password)))).toEqual(plain({ _tag: "AuthResponse", data: cstr(password) }))
        expect(plain(fromPg(serialize.sendSASLInitialResponseMessage(mechanism, payload)))).toEqual(
          plain({ _tag: "AuthResponse", data: initialResponse(mechanism, payload) })
        )
        expect(plain(fromPg(serialize.sendSCRAMClientFinalMessage(payload)))).toEqual(
          plain({ _tag: "AuthResponse", data: utf8(payload) })
        )
      }),
      { numRuns: N }
    )
  })

  it("startup", () => {
    const params = fc.dictionary(
      nonEmptyCstring().filter((k) => k !== "client_encoding" && k !== "__proto__"),
      cstring(),
      { maxKeys: 6 }
    )
    fc.assert(
      fc.property(params, (opts) => {
        const p = ok(decodeStartup(frameStartup(serialize.startup(opts))))
        // pg-protocol writes Object.keys order (integer-like keys first), then client_encoding.
        const expected = new Map([...Object.keys(opts).map((k) => [k, opts[k]!] as const), ["client_encoding", "UTF8"] as const])
        expect(plain(p)).toEqual(plain({ _tag: "StartupMessage", protocolVersion: PROTOCOL_3_0, parameters: expected }))
      }),
      { numRuns: N }
    )
  })

  it("cancel and requestSsl", () => {
    fc.assert(
      fc.property(int32, int32, (processId, secretKey) => {
        expect(ok(decodeStartup(frameStartup(serialize.cancel(processId, secretKey))))).toEqual({
          _tag: "CancelRequest",
          processId,
          secretKey
        })
      }),
      { numRuns: N }
    )
    expect(ok(decodeStartup(frameStartup(serialize.requestSsl())))).toEqual({ _tag: "SSLRequest" })
  })
})

// ---- our encoder → pg-protocol's parser ------------------------------------

/** What pg-protocol's Parser should report for one of our messages, or undefined if it does not know the type. */
const pgView = (m: BackendMessage): Record<string, unknown> | undefined => {
  const text = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("utf8")
  switch (m._tag) {
    case "AuthenticationOk":
      return { name: "authenticationOk" }
    case "AuthenticationCleartextPassword":
      return { name: "authenticationCleartextPassword" }
    case "AuthenticationMD5Password":
      return { name: "authenticationMD5Password", salt: plain(m.salt) }
    case "AuthenticationSASL":
      return { name: "authenticationSASL", mechanisms: m.mechanisms }
    case "AuthenticationSASLContinue":
      return { name: "authenticationSASLContinue", data: text(m.data) }
    case "AuthenticationSASLFinal":
      return { name: "authenticationSASLFinal", data: text(m.data) }
    case "ParameterStatus":
      return { name: "parameterStatus", parameterName: m.name, parameterValue: m.value }
    case "BackendKeyData":
      return { name: "backendKeyData", processID: m.processId, secretKey: m.secretKey }
    case "ReadyForQuery":
      return { name: "readyForQuery", status: m.status }
    case "RowDescription":
      return {
        name: "rowDescription",
        fieldCount: m.fields.length,
        fields: m.fields.map((f) => ({
          name: f.name,
          tableID: f.tableOid,
          columnID: f.columnAttr,
          dataTypeID: f.typeOid,
          dataTypeSize: f.typeSize,
          dataTypeModifier: f.typeModifier,
          format: f.format === 0 ? "text" : "binary"
        }))
      }
    case "DataRow":
      return { name: "dataRow", fieldCount: m.values.length, fields: m.values.map((v) => (v === null ? null : text(v))) }
    case "CommandComplete":
      return { name: "commandComplete", text: m.tag }
    case "EmptyQueryResponse":
      return { name: "emptyQuery" }
    case "ErrorResponse":
    case "NoticeResponse": {
      const last = new Map(m.fields)
      const known: Record<string, string> = {
        S: "severity",
        C: "code",
        D: "detail",
        H: "hint",
        P: "position",
        p: "internalPosition",
        q: "internalQuery",
        W: "where",
        s: "schema",
        t: "table",
        c: "column",
        d: "dataType",
        n: "constraint",
        F: "file",
        L: "line",
        R: "routine"
      }
      const out: Record<string, unknown> = { name: m._tag === "ErrorResponse" ? "error" : "notice" }
      for (const [code, prop] of Object.entries(known)) out[prop] = last.get(code)
      // DatabaseError is an Error: a missing M is the empty message.
      out["message"] = last.get("M") ?? (m._tag === "ErrorResponse" ? "" : undefined)
      return out
    }
    case "NotificationResponse":
      return { name: "notification", processId: m.processId, channel: m.channel, payload: m.payload }
    case "ParseComplete":
      return { name: "parseComplete" }
    case "BindComplete":
      return { name: "bindComplete" }
    case "CloseComplete":
      return { name: "closeComplete" }
    case "NoData":
      return { name: "noData" }
    case "PortalSuspended":
      return { name: "portalSuspended" }
    case "ParameterDescription":
      return { name: "parameterDescription", parameterCount: m.typeOids.length, dataTypeIDs: m.typeOids }
    case "CopyInResponse":
    case "CopyOutResponse":
      return {
        name: m._tag === "CopyInResponse" ? "copyInResponse" : "copyOutResponse",
        binary: m.format !== 0,
        columnTypes: m.columnFormats
      }
    case "CopyBothResponse":
      return { name: "replicationStart" }
    case "CopyData":
      return { name: "copyData", chunk: plain(m.data) }
    case "CopyDone":
      return { name: "copyDone" }
    // Not parsed by pg-protocol.
    case "AuthenticationUnsupported":
    case "FunctionCallResponse":
    case "NegotiateProtocolVersion":
      return undefined
  }
}

const understood = backendMessage.filter((m) => pgView(m) !== undefined)

/** pg-protocol messages reduced to the properties pgView names. */
const pick = (parsed: Record<string, unknown>, like: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(Object.keys(like).map((k) => [k, plain(parsed[k])]))

describe("encodeBackend → pg-protocol Parser", () => {
  it("a stream of our backend messages parses to the same fields, message by message", () => {
    fc.assert(
      fc.property(fc.array(understood, { minLength: 1, maxLength: 12 }), (ms) => {
        // Snapshot each message in the callback: pg-protocol reuses singleton objects
        // for field-less messages and overwrites their `length`.
        const parsed: Array<{ readonly fields: Record<string, unknown>; readonly length: unknown }> = []
        const parser = new Parser()
        for (const m of ms) {
          const want = pgView(m)!
          parser.parse(Buffer.from(encodeBackend(m)), (msg) => {
            const r = msg as unknown as Record<string, unknown>
            parsed.push({ fields: pick(r, want), length: r["length"] })
          })
        }
        expect(parsed.length).toBe(ms.length)
        ms.forEach((m, i) => {
          expect(parsed[i]!.fields).toEqual(plain(pgView(m)!))
          // pg-protocol records the length word it read; ours must be the frame length.
          expect(parsed[i]!.length).toBe(encodeBackend(m).length - 1)
        })
      }),
      { numRuns: RUNS }
    )
  })

  it("the whole stream at once parses the same as message by message", () => {
    fc.assert(
      fc.property(fc.array(understood, { minLength: 1, maxLength: 12 }), (ms) => {
        const one: Array<unknown> = []
        const many: Array<unknown> = []
        const whole = Buffer.concat(ms.map((m) => encodeBackend(m)))
        new Parser().parse(whole, (msg) => one.push(plain({ ...msg })))
        const p = new Parser()
        for (const m of ms) p.parse(Buffer.from(encodeBackend(m)), (msg) => many.push(plain({ ...msg })))
        expect(one).toEqual(many)
      }),
      { numRuns: 200 }
    )
  })
})

describe("DecodeError", () => {
  it("names the frame's type", () => {
    const r = decodeBackend({ type: 0x5a, bytes: Uint8Array.from([0x5a, 0, 0, 0, 5, 0x58]) })
    expect(Result.isFailure(r)).toBe(true)
    if (Result.isFailure(r)) {
      expect(r.failure).toBeInstanceOf(DecodeError)
      expect(r.failure.type).toBe(0x5a)
    }
  })
})
