/**
 * Logs into a target with its stored credentials (SCRAM-SHA-256, md5 or cleartext) and
 * collects what the client must see afterwards. The client never sees these credentials:
 * server texts from this phase are reduced to their SQLSTATE.
 */
import { Effect, Redacted, Result, type Scope } from "effect"
import type * as Socket from "effect/socket/Socket"
import { type BackendMessage, decodeBackend, field } from "../../codecs/pg/backend.ts"
import type { Frame } from "../../codecs/pg/framing.ts"
import { Framer } from "../../codecs/pg/framing.ts"
import { encodeFrontend, encodeStartup, PROTOCOL_3_0 } from "../../codecs/pg/frontend.ts"
import { md5Response } from "../../codecs/pg/md5.ts"
import * as Scram from "../../codecs/pg/scram.ts"
import type { ResolvedTarget } from "../../targets/target.ts"
import { connectTarget } from "./backend-connect.ts"
import { TargetGone, TargetLoginFailed, TargetProtocolViolation, type TargetUnreachable } from "./errors.ts"
import { FramedReader } from "./framed-reader.ts"
import type { Setting } from "./startup-parameters.ts"

export interface BackendSession {
  readonly reader: FramedReader
  readonly writer: Socket.Writer
  /** ParameterStatus and NoticeResponse frames, relayed to the client as they came. */
  readonly greeting: ReadonlyArray<Frame>
  /** The server's ParameterStatus values at login. */
  readonly parameters: ReadonlyArray<readonly [name: string, value: string]>
  /** The schemas unqualified names resolve to, as the server says after login; undefined if it would not say. */
  readonly searchPath: ReadonlyArray<string> | undefined
  /** Names of functions defined in those schemas (outside pg_catalog): an unqualified call may reach them. */
  readonly userFunctions: ReadonlySet<string> | undefined
  readonly processId: number
  readonly secretKey: number
}

const serverRefused = (m: BackendMessage & { _tag: "ErrorResponse" }): string => {
  const code = field(m.fields, "C") ?? "XX000"
  const what =
    code === "28P01" || code === "28000"
      ? "the server rejected the stored credentials"
      : code === "3D000"
        ? "the target database does not exist"
        : code === "53300"
          ? "the server has too many connections"
          : "the server refused the connection"
  return `${what} (SQLSTATE ${code})`
}

export const loginToTarget = (
  target: ResolvedTarget,
  /** What the client's session starts with (startup-parameters.ts). */
  settings: ReadonlyArray<Setting>,
  limits: { readonly maxFrameBytes: number; readonly connectTimeoutMs: number }
): Effect.Effect<BackendSession, TargetUnreachable | TargetLoginFailed | TargetGone | TargetProtocolViolation, Scope.Scope> =>
  Effect.gen(function* () {
    const name = target.config.name
    const { reader: raw, writer } = yield* connectTarget(target, limits.connectTimeoutMs)
    const reader = new FramedReader(raw, new Framer(limits.maxFrameBytes, { startup: false }))
    const parameters = new Map<string, string>([
      ["user", target.config.user],
      ["database", target.config.database]
    ])
    for (const [name, value] of settings) parameters.set(name, value)
    yield* writer.write(encodeStartup({ _tag: "StartupMessage", protocolVersion: PROTOCOL_3_0, parameters }))

    const violation = (detail: string) => new TargetProtocolViolation({ target: name, detail })
    const next = Effect.flatMap(reader.next, (frame) => {
      const m = decodeBackend(frame)
      return Result.isFailure(m) ? Effect.fail(violation(m.failure.message)) : Effect.succeed({ frame, message: m.success })
    })
    const password = () => Redacted.value(target.password)
    const reply = (data: Uint8Array) => writer.write(encodeFrontend({ _tag: "AuthResponse", data }))

    const greeting: Array<Frame> = []
    const reported: Array<readonly [string, string]> = []
    let key: { processId: number; secretKey: number } | undefined
    for (;;) {
      const { frame, message: m } = yield* next
      switch (m._tag) {
        case "AuthenticationOk":
        case "NegotiateProtocolVersion":
          continue
        case "AuthenticationCleartextPassword":
          yield* reply(Buffer.from(`${password()}\0`))
          continue
        case "AuthenticationMD5Password":
          yield* reply(md5Response(target.config.user, password(), m.salt))
          continue
        case "AuthenticationSASL": {
          if (!m.mechanisms.includes(Scram.SCRAM_SHA_256)) {
            return yield* new TargetLoginFailed({ target: name, detail: `the server offers no supported SASL mechanism (${m.mechanisms.join(", ")})` })
          }
          yield* scramExchange(target, reply, next)
          continue
        }
        case "AuthenticationSASLContinue":
        case "AuthenticationSASLFinal":
          return yield* violation("SASL message outside a SASL exchange")
        case "AuthenticationUnsupported":
          return yield* new TargetLoginFailed({ target: name, detail: `the server asks for an authentication method Sluice does not speak (code ${m.code})` })
        case "ErrorResponse":
          return yield* new TargetLoginFailed({ target: name, detail: serverRefused(m) })
        case "ParameterStatus":
          reported.push([m.name, m.value])
          greeting.push(frame)
          continue
        case "NoticeResponse":
          greeting.push(frame)
          continue
        case "BackendKeyData":
          key = { processId: m.processId, secretKey: m.secretKey }
          continue
        case "ReadyForQuery": {
          if (key === undefined) return yield* violation("no BackendKeyData before ReadyForQuery")
          const { searchPath, userFunctions } = yield* resolutionContext(writer, next)
          return { reader, writer, greeting, parameters: reported, searchPath, userFunctions, ...key }
        }
        default:
          return yield* violation(`unexpected ${m._tag} during login`)
      }
    }
  }).pipe(
    Effect.catchTags({
      FrameError: (e) => Effect.fail(new TargetProtocolViolation({ target: target.config.name, detail: e.message })),
      SocketError: () => Effect.fail(new TargetGone({ target: target.config.name }))
    })
  )

/** Both questions in one Query: the effective path, then the user functions visible on it. */
const RESOLUTION_QUERY = `SELECT pg_catalog.current_schemas(false)::text;
SELECT DISTINCT p.proname::text FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = ANY (pg_catalog.current_schemas(false)) AND n.nspname NOT IN ('pg_catalog', 'information_schema')`

/**
 * Asks the server where unqualified names resolve for this session (role and database
 * defaults apply; schemas that do not exist, often "$user", are left out), and which
 * user-defined function names an unqualified call may reach there. One round trip per
 * session, before the client's first statement.
 */
const resolutionContext = <E>(
  writer: Socket.Writer,
  next: Effect.Effect<{ readonly message: BackendMessage }, E | Socket.SocketError>
) =>
  Effect.gen(function* () {
    yield* writer.write(encodeFrontend({ _tag: "Query", sql: RESOLUTION_QUERY }))
    let path: string | undefined
    const functions = new Set<string>()
    let resultSet = 0
    let failed = false
    for (;;) {
      const { message: m } = yield* next
      if (m._tag === "DataRow" && m.values[0] != null) {
        const text = Buffer.from(m.values[0]).toString("utf8")
        if (resultSet === 0) path = text
        else functions.add(text)
      }
      if (m._tag === "CommandComplete") resultSet++
      if (m._tag === "ErrorResponse") failed = true
      if (m._tag === "ReadyForQuery") {
        return failed || path === undefined
          ? { searchPath: undefined, userFunctions: undefined }
          : { searchPath: parseNameArray(path), userFunctions: functions }
      }
    }
  })

/** PostgreSQL's text form of a name[]: {a,"b c","d\"e"}. */
export const parseNameArray = (text: string): ReadonlyArray<string> | undefined => {
  if (!text.startsWith("{") || !text.endsWith("}")) return undefined
  const names: Array<string> = []
  const body = text.slice(1, -1)
  let i = 0
  while (i < body.length) {
    let name = ""
    if (body[i] === '"') {
      i++
      while (i < body.length && body[i] !== '"') {
        if (body[i] === "\\") i++
        name += body[i] ?? ""
        i++
      }
      i++
    } else {
      while (i < body.length && body[i] !== ",") name += body[i++]
    }
    names.push(name)
    if (body[i] === ",") i++
  }
  return names
}

const scramExchange = <E>(
  target: ResolvedTarget,
  reply: (data: Uint8Array) => Effect.Effect<void, Socket.SocketError>,
  next: Effect.Effect<{ readonly message: BackendMessage }, E | Socket.SocketError>
) =>
  Effect.gen(function* () {
    const name = target.config.name
    const failed = (e: Scram.ScramError) => new TargetLoginFailed({ target: name, detail: e.message })
    const start = Scram.start()
    yield* reply(Scram.initialResponse(Scram.SCRAM_SHA_256, start.clientFirst))
    const first = yield* next
    if (first.message._tag === "ErrorResponse") return yield* new TargetLoginFailed({ target: name, detail: serverRefused(first.message) })
    if (first.message._tag !== "AuthenticationSASLContinue") return yield* new TargetProtocolViolation({ target: name, detail: "expected SASLContinue" })
    const server = Scram.parseServerFirst(start, Buffer.from(first.message.data).toString("utf8"))
    if (Result.isFailure(server)) return yield* failed(server.failure)
    const cacheKey = `${server.success.salt.toString("base64")}:${server.success.iterations}`
    let salted = target.saltedPasswords.get(cacheKey)
    if (salted === undefined) {
      salted = Scram.saltPassword(Redacted.value(target.password), server.success.salt, server.success.iterations)
      target.saltedPasswords.set(cacheKey, salted)
    }
    const final = Scram.clientFinal(start, server.success, salted)
    yield* reply(Buffer.from(final.clientFinal))
    const last = yield* next
    if (last.message._tag === "ErrorResponse") return yield* new TargetLoginFailed({ target: name, detail: serverRefused(last.message) })
    if (last.message._tag !== "AuthenticationSASLFinal") return yield* new TargetProtocolViolation({ target: name, detail: "expected SASLFinal" })
    const verified = Scram.verifyServerFinal(final, Buffer.from(last.message.data).toString("utf8"))
    if (Result.isFailure(verified)) return yield* failed(verified.failure)
  })
