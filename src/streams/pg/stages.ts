/**
 * The stages of the pipeline, each a plain function of a frame and the session state,
 * testable without a socket: client → server is classify, decide, route; server →
 * client is observe.
 */
import { Result } from "effect"
import { BackendType, decodeBackend, encodeBackend, field } from "../../codecs/pg/backend.ts"
import type { Frame } from "../../codecs/pg/framing.ts"
import { decodeFrontend, FrontendType } from "../../codecs/pg/frontend.ts"
import type { StatementInfo } from "../../rules/classify/index.ts"
import { blockedParse, blockedQuery } from "./block.ts"
import { type Blocked, type Classified as ClassifiedSql, classifySql, decideFunctionCall, decideSql, parserSafety } from "./enforce.ts"
import type { Sent } from "./responses.ts"
import type { SessionState } from "./session-state.ts"

export type Classified =
  /** Frames that carry no statement: Bind, Execute, Sync, CopyData, … */
  | { readonly _tag: "Passthrough"; readonly frame: Frame }
  | { readonly _tag: "Statement"; readonly frame: Frame; readonly kind: "Query" | "Parse"; readonly sql: string; readonly classified: ClassifiedSql }
  | { readonly _tag: "FunctionCall"; readonly frame: Frame; readonly functionOid: number }
  /** A frame that does not decode, where decoding is required: the session ends. */
  | { readonly _tag: "Malformed"; readonly detail: string }

export type Decided =
  | { readonly _tag: "Forward"; readonly frame: Frame; readonly statements: ReadonlyArray<StatementInfo> }
  | { readonly _tag: "Block"; readonly kind: "Query" | "Parse" | "FunctionCall"; readonly allowed: ReadonlyArray<StatementInfo>; readonly blocked: Blocked }
  /** Skipped, as the server skips messages after an error until Sync. */
  | { readonly _tag: "Discard" }
  | { readonly _tag: "Malformed"; readonly detail: string }

/** What one frame turns into: bytes for the server, and nothing for the client (the server answers). */
export type Routed = ReadonlyArray<Uint8Array>

const SENT: { readonly [type: number]: Sent } = {
  [FrontendType.Query]: "Query",
  [FrontendType.Parse]: "Parse",
  [FrontendType.Bind]: "Bind",
  [FrontendType.Describe]: "Describe",
  [FrontendType.Execute]: "Execute",
  [FrontendType.Close]: "Close",
  [FrontendType.Sync]: "Sync",
  [FrontendType.FunctionCall]: "FunctionCall"
}

export const classify = (frame: Frame, state: SessionState): Classified => {
  if (frame.type !== FrontendType.Query && frame.type !== FrontendType.Parse && frame.type !== FrontendType.FunctionCall) {
    return { _tag: "Passthrough", frame }
  }
  const decoded = decodeFrontend(frame)
  if (Result.isFailure(decoded)) return { _tag: "Malformed", detail: decoded.failure.message }
  const m = decoded.success
  switch (m._tag) {
    case "Query":
    case "Parse":
      return { _tag: "Statement", frame, kind: m._tag, sql: m.sql, classified: classifySql(state.enforcer, m.sql) }
    case "FunctionCall":
      return { _tag: "FunctionCall", frame, functionOid: m.functionOid }
    default:
      return { _tag: "Passthrough", frame }
  }
}

export const decide = (c: Classified, state: SessionState): Decided => {
  if (c._tag === "Malformed") return c
  if (state.discardingUntilSync) {
    if (c.frame.type === FrontendType.Sync) state.discardingUntilSync = false
    else if (c.frame.type !== FrontendType.Flush) return { _tag: "Discard" }
    return { _tag: "Forward", frame: c.frame, statements: [] }
  }
  switch (c._tag) {
    case "Passthrough":
      return { _tag: "Forward", frame: c.frame, statements: [] }
    case "Statement": {
      const v = decideSql(state.enforcer, state.enforcement, c.sql, c.classified)
      return v._tag === "Allow"
        ? { _tag: "Forward", frame: c.frame, statements: v.statements }
        : { _tag: "Block", kind: c.kind, allowed: v.allowed, blocked: v.blocked }
    }
    case "FunctionCall": {
      const blocked = decideFunctionCall(state.enforcer, state.enforcement, c.functionOid)
      return blocked === undefined ? { _tag: "Forward", frame: c.frame, statements: [] } : { _tag: "Block", kind: "FunctionCall", allowed: [], blocked }
    }
  }
}

/**
 * Turns a decision into bytes for the server, recording what each answers. A block is
 * carried out through the server (see block.ts), so the client sees exactly what the
 * server would have done.
 */
export const route = (d: Exclude<Decided, { _tag: "Malformed" }>, state: SessionState): Routed => {
  switch (d._tag) {
    case "Discard":
      return []
    case "Forward": {
      const sent = SENT[d.frame.type]
      if (sent !== undefined) state.responses.sent(sent)
      else if (d.frame.type === FrontendType.Terminate) state.terminating = true
      return [d.frame.bytes]
    }
    case "Block": {
      const raise = { raise: d.blocked.message }
      if (d.kind === "Parse") {
        state.responses.sent("Parse", "drop")
        state.responses.sent("Bind", "drop")
        state.responses.sent("Execute", raise)
        state.discardingUntilSync = true
        return blockedParse({ message: d.blocked.message })
      }
      state.responses.sent("Query", raise)
      return [blockedQuery(d.allowed.map((s) => s.text), { message: d.blocked.message })]
    }
  }
}

/**
 * The server → client direction: observes what the session state needs and forwards
 * bytes as they came, except responses to what Sluice itself injected, and notifications
 * this session sent itself, which carry the client's process id, not the server's.
 */
export const observeBackend = (frame: Frame, state: SessionState): Uint8Array | undefined => {
  const outcome = state.responses.received(frame)
  if (outcome === "drop") return undefined
  switch (frame.type) {
    case BackendType.ReadyForQuery: {
      const m = decodeBackend(frame)
      if (Result.isSuccess(m) && m.success._tag === "ReadyForQuery") state.transactionStatus = m.success.status
      return frame.bytes
    }
    case BackendType.ErrorResponse: {
      const m = decodeBackend(frame)
      if (Result.isSuccess(m) && m.success._tag === "ErrorResponse" && /^(FATAL|PANIC)$/.test(field(m.success.fields, "V") ?? "")) {
        state.serverEnded = true
      }
      return outcome === "forward" ? frame.bytes : outcome
    }
    case BackendType.ParameterStatus: {
      const m = decodeBackend(frame)
      if (Result.isSuccess(m) && m.success._tag === "ParameterStatus") {
        state.enforcement.parserUnsafe ??= parserSafety(m.success.name, m.success.value)
      }
      return frame.bytes
    }
    case BackendType.NotificationResponse: {
      const m = decodeBackend(frame)
      if (Result.isFailure(m) || m.success._tag !== "NotificationResponse" || m.success.processId !== state.serverProcessId) return frame.bytes
      return encodeBackend({ ...m.success, processId: state.clientProcessId })
    }
    default:
      return outcome === "forward" ? frame.bytes : outcome
  }
}
