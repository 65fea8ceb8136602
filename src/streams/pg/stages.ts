/**
 * The stages of the client → server pipeline: classify, then decide, then route.
 * Each is a plain function of a frame and the session state, testable without a socket.
 *
 * In this slice classify only extracts statement text and decide allows everything;
 * the policy engine replaces both behind these same types.
 */
import { Result } from "effect"
import { BackendType, decodeBackend, encodeBackend, field, errorResponse } from "../../codecs/pg/backend.ts"
import type { Frame } from "../../codecs/pg/framing.ts"
import { decodeFrontend, FrontendType } from "../../codecs/pg/frontend.ts"
import type { SessionState } from "./session-state.ts"

/** The statement a frame carries, for the frames that carry one. */
export type Statement =
  | { readonly _tag: "SimpleQuery"; readonly sql: string }
  | { readonly _tag: "Parse"; readonly name: string; readonly sql: string }

export type StatementClass =
  | "read"
  | "write"
  | "ddl"
  | "dcl"
  | "admin"
  | "copy-in"
  | "copy-out"
  | "transaction"
  | "utility"
  | "unknown"

export interface Classified {
  readonly _tag: "Classified"
  readonly frame: Frame
  readonly statement: Statement | undefined
  /** `unknown` until the classifier exists; fail-closed policies will refuse it. */
  readonly statementClass: StatementClass | undefined
}

/** A frame that does not decode, where decoding is required, stops the session. */
export interface Malformed {
  readonly _tag: "Malformed"
  readonly detail: string
}

export type Verdict = { readonly _tag: "Allow" } | { readonly _tag: "Block"; readonly ruleId: string; readonly message: string }

export interface Decided {
  readonly _tag: "Decided"
  readonly frame: Frame
  readonly statement: Statement | undefined
  readonly verdict: Verdict
}

export type Routed =
  | { readonly _tag: "ToServer"; readonly bytes: Uint8Array }
  | { readonly _tag: "ToClient"; readonly bytes: Uint8Array }

export const classify = (frame: Frame, _state: SessionState): Classified | Malformed => {
  if (frame.type !== FrontendType.Query && frame.type !== FrontendType.Parse) {
    return { _tag: "Classified", frame, statement: undefined, statementClass: undefined }
  }
  const decoded = decodeFrontend(frame)
  if (Result.isFailure(decoded)) return { _tag: "Malformed", detail: decoded.failure.message }
  const m = decoded.success
  const statement: Statement | undefined =
    m._tag === "Query" ? { _tag: "SimpleQuery", sql: m.sql } : m._tag === "Parse" ? { _tag: "Parse", name: m.name, sql: m.sql } : undefined
  return { _tag: "Classified", frame, statement, statementClass: "unknown" }
}

const ALLOW: Verdict = { _tag: "Allow" }

export const decide = (c: Classified, _state: SessionState): Decided => ({ _tag: "Decided", frame: c.frame, statement: c.statement, verdict: ALLOW })

export const route = (d: Decided, state: SessionState): Routed => {
  if (d.verdict._tag === "Allow") {
    if (d.frame.type === FrontendType.Terminate) state.terminating = true
    return { _tag: "ToServer", bytes: d.frame.bytes }
  }
  return { _tag: "ToClient", bytes: errorResponse({ severity: "ERROR", code: "42501", message: d.verdict.message }) }
}

/**
 * The server → client direction: observes what the session state needs and forwards
 * bytes as they came, except that a notification this session sent itself carries the
 * client's process id, not the server's.
 */
export const observeBackend = (frame: Frame, state: SessionState): Uint8Array => {
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
      return frame.bytes
    }
    case BackendType.NotificationResponse: {
      const m = decodeBackend(frame)
      if (Result.isFailure(m) || m.success._tag !== "NotificationResponse" || m.success.processId !== state.serverProcessId) return frame.bytes
      return encodeBackend({ ...m.success, processId: state.clientProcessId })
    }
    default:
      return frame.bytes
  }
}
