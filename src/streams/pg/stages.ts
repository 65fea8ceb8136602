/**
 * The stages of the pipeline, each a plain function of a frame and the session state,
 * testable without a socket: client → server is classify, decide, route; server →
 * client is observe.
 */
import { Result } from "effect"
import { BackendType, decodeBackend, encodeBackend, field } from "../../codecs/pg/backend.ts"
import type { Frame } from "../../codecs/pg/framing.ts"
import { decodeFrontend, encodeFrontend, FrontendType } from "../../codecs/pg/frontend.ts"
import type { Recording } from "../../rules/policy/schema.ts"
import type { StatementInfo } from "../../rules/classify/index.ts"
import { blockedExtended, blockedQuery } from "./block.ts"
import {
  type Allowed,
  type Blocked,
  type Classified as ClassifiedSql,
  classifySql,
  decideBind,
  decideFunctionCall,
  decideSql,
  decideUnknownBind,
  isBlocked,
  parserSafety
} from "./enforce.ts"
import { masksApply, type ResultMasking, unresolvedMasking } from "./masking.ts"
import type { Address, FailedParse, Fate, Sent, StatementRef } from "./responses.ts"
import type { SessionState } from "./session-state.ts"

export type Classified =
  /** Frames that carry no statement: Bind, Execute, Sync, CopyData, … */
  | { readonly _tag: "Passthrough"; readonly frame: Frame }
  | { readonly _tag: "Statement"; readonly frame: Frame; readonly kind: "Query" | "Parse"; readonly sql: string; readonly classified: ClassifiedSql }
  | { readonly _tag: "FunctionCall"; readonly frame: Frame; readonly functionOid: number }
  /** A frame that does not decode, where decoding is required: the session ends. */
  | { readonly _tag: "Malformed"; readonly detail: string }

export type Decided =
  | {
      readonly _tag: "Forward"
      readonly frame: Frame
      readonly allowed: ReadonlyArray<Allowed>
      /** A Bind whose prepared statement was judged again (the policy or search path changed) and allowed. */
      readonly rejudged?: { readonly statementName: string; readonly allowed: Allowed }
    }
  | {
      readonly _tag: "Block"
      readonly kind: "Query" | "Parse" | "Bind" | "FunctionCall"
      readonly allowed: ReadonlyArray<Allowed>
      readonly blocked: Blocked
      /** For Parse and Bind: the client's statement name. */
      readonly statementName?: string
    }
  /** Skipped, as the server skips messages after an error until Sync. */
  | { readonly _tag: "Discard" }
  | { readonly _tag: "Malformed"; readonly detail: string }

/** A statement as the audit trail records it. */
export interface Audited {
  readonly id: number
  readonly statement: StatementInfo
  readonly via: "simple" | "extended" | "function-call"
  readonly verdict: "allow" | "block" | "hold" | "mask"
  readonly ruleId: string
  readonly reason: string | null
  /** How much of its result to record. */
  readonly record: Recording | undefined
  /** How its results are masked; undefined when they are not. */
  readonly masking: ResultMasking | undefined
  /** See StatementRef. */
  readonly makes?: Fate
  readonly judgedBy?: Fate
}

/** What one decision turns into: bytes for the server (the server answers the client), and what to audit. */
export interface Routed {
  readonly bytes: ReadonlyArray<Uint8Array>
  readonly audited: ReadonlyArray<Audited>
}

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
  const d = decideFrame(c, state)
  // After a blocked Parse or Bind the server skips to Sync, and so must the frames that
  // follow it in this very batch: the flag is set here, frame by frame, not when routing.
  if (d._tag === "Block" && (d.kind === "Parse" || d.kind === "Bind")) state.discardingUntilSync = true
  return d
}

/** A statement the audit trail cannot record does not run: it is blocked instead. */
const unlessAuditRefuses = (d: Decided, frame: Frame, state: SessionState): Decided => {
  if (d._tag !== "Forward" || d.allowed.length === 0) return d
  const refused = state.audit.refusal()
  if (refused === undefined) return d
  return {
    _tag: "Block",
    kind: frame.type === FrontendType.Parse ? "Parse" : frame.type === FrontendType.FunctionCall ? "FunctionCall" : "Query",
    ...(frame.type === FrontendType.Parse ? { statementName: nameAt(frame.bytes, 5) } : {}),
    allowed: [],
    blocked: { action: "block", ruleId: "audit-unavailable", message: `the audit trail cannot record statements (${refused}), so they are refused (rule audit-unavailable)`, statement: d.allowed[0]!.statement }
  }
}

const decideFrame = (c: Classified, state: SessionState): Decided => {
  if (c._tag === "Malformed") return c
  if (state.discardingUntilSync) {
    if (c.frame.type === FrontendType.Sync) state.discardingUntilSync = false
    else if (c.frame.type !== FrontendType.Flush) return { _tag: "Discard" }
    return { _tag: "Forward", frame: c.frame, allowed: [] }
  }
  switch (c._tag) {
    case "Passthrough": {
      // Forgotten as it is decided, so that a Parse of the name later in this batch is new.
      if (c.frame.type === FrontendType.Close) {
        const name = nameAt(c.frame.bytes, 6)
        if (c.frame.bytes[5] === 0x53) state.enforcement.parsed.delete(name)
        else if (state.enforcement.cursors.get(identifier(name)) === "portal") state.enforcement.cursors.delete(identifier(name))
      }
      if (c.frame.type === FrontendType.Bind) {
        const { portal, statement } = bindNames(c.frame.bytes)
        // SQL FETCH reads protocol portals too: whatever was declared under the name, this is what it reads now
        if (portal !== "") state.enforcement.cursors.set(identifier(portal), "portal")
        const unknown = decideUnknownBind(state.enforcer, state.enforcement, statement)
        if (unknown !== undefined) return { _tag: "Block", kind: "Bind", allowed: [], blocked: unknown, statementName: statement }
        const judged = decideBind(state.enforcer, state.enforcement, statement)
        if (judged !== undefined) {
          if (isBlocked(judged)) return { _tag: "Block", kind: "Bind", allowed: [], blocked: judged, statementName: statement }
          // allowed again, perhaps under a new policy: its results are recorded and masked as that policy says
          return { _tag: "Forward", frame: c.frame, allowed: [], rejudged: { statementName: statement, allowed: judged } }
        }
      }
      return { _tag: "Forward", frame: c.frame, allowed: [] }
    }
    case "Statement": {
      const v = decideSql(state.enforcer, state.enforcement, c.sql, c.classified)
      const statementName = c.kind === "Parse" ? nameAt(c.frame.bytes, 5) : undefined
      if (v._tag === "Block") return { _tag: "Block", kind: c.kind, allowed: v.allowed, blocked: v.blocked, ...(statementName === undefined ? {} : { statementName }) }
      const d = unlessAuditRefuses({ _tag: "Forward", frame: c.frame, allowed: v.allowed }, c.frame, state)
      // A name in use is refused by the server, which keeps the statement it has (see route).
      const fresh = statementName === "" || !state.enforcement.parsed.has(statementName ?? "")
      // An empty statement (a driver's ping) is parsed too: its Bind must not look unknown.
      if (d._tag === "Forward" && statementName !== undefined && v.allowed.length <= 1 && fresh) {
        state.enforcement.parsed.set(statementName, {
          statement: v.allowed[0]?.statement,
          searchPathVersion: state.enforcement.searchPathVersion,
          policyVersion: state.enforcer.policy().version
        })
      }
      return d
    }
    case "FunctionCall": {
      const o = decideFunctionCall(state.enforcer, state.enforcement, c.functionOid)
      return isBlocked(o)
        ? { _tag: "Block", kind: "FunctionCall", allowed: [], blocked: o }
        : unlessAuditRefuses({ _tag: "Forward", frame: c.frame, allowed: [o] }, c.frame, state)
    }
  }
}

/** The fates a statement carries (see StatementRef), passed on to each record made of it. */
const fatesOf = (s: { readonly makes?: Fate; readonly judgedBy?: Fate }): { makes?: Fate; judgedBy?: Fate } => ({
  ...(s.makes === undefined ? {} : { makes: s.makes }),
  ...(s.judgedBy === undefined ? {} : { judgedBy: s.judgedBy })
})

/** A name as SQL sees it: PostgreSQL cuts identifiers to 63 bytes (on a character boundary), as Sluice's parser does. */
const identifier = (name: string): string => {
  const bytes = Buffer.from(name, "utf8")
  if (bytes.length <= 63) return name
  let end = 63
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--
  return bytes.subarray(0, end).toString("utf8")
}

const nameAt = (bytes: Uint8Array, at: number): string => Buffer.from(bytes.subarray(at, bytes.indexOf(0, at))).toString("utf8")

/** Bind: which prepared statement the portal runs. Only the two names are read. */
const bindNames = (bytes: Uint8Array): { portal: string; statement: string } => {
  const portalEnd = bytes.indexOf(0, 5)
  return { portal: nameAt(bytes, 5), statement: nameAt(bytes, portalEnd + 1) }
}

const VIA = { Query: "simple", Parse: "extended", Bind: "extended", FunctionCall: "function-call" } as const

/** Bind's result-format codes, read only while results are recorded. */
const resultFormats = (frame: Frame): ReadonlyArray<number> => {
  const m = decodeFrontend(frame)
  return Result.isSuccess(m) && m.success._tag === "Bind" ? m.success.resultFormats : []
}

/**
 * What a Parse, Bind, Describe, Close or Execute names, for session recording to know a
 * result's columns (see responses.ts); undefined for other messages, or when nothing is recorded.
 */
const addressOf = (f: Frame, state: SessionState): Address | undefined => {
  if (!state.responses.recording) return undefined
  switch (f.type) {
    case FrontendType.Parse:
      return { target: `S${nameAt(f.bytes, 5)}` }
    case FrontendType.Bind: {
      const { portal, statement } = bindNames(f.bytes)
      return { target: `P${portal}`, statement, formats: resultFormats(f) }
    }
    case FrontendType.Describe:
    case FrontendType.Close:
      return { target: `${String.fromCharCode(f.bytes[5]!)}${nameAt(f.bytes, 6)}` }
    case FrontendType.Execute:
      return { target: `P${nameAt(f.bytes, 5)}` }
    default:
      return undefined
  }
}

/**
 * SQL-level DEALLOCATE (or DISCARD ALL) also removes protocol-level prepared statements: a
 * later Bind of the name runs something else, never the statement audited under it.
 */
const forgetDeallocated = (audited: ReadonlyArray<Audited>, ids: SessionState["statements"]): void => {
  for (const a of audited) {
    const p = a.statement.prepared
    if (p?.kind !== "deallocate") continue
    if (p.name !== "") ids.named.delete(p.name)
    else for (const key of ids.named.keys()) if (key !== "") ids.named.delete(key)
  }
}

/** Every allowed statement a decision carries, including a Bind's re-judged one: masked ones need the catalog before routing. */
export const allowedIn = (d: Decided): ReadonlyArray<Allowed> =>
  d._tag === "Forward" ? (d.rejudged === undefined ? d.allowed : [...d.allowed, d.rejudged.allowed]) : d._tag === "Block" ? d.allowed : []

/** Asks the server to describe a portal just before it runs, so that its rows can be masked by what they are. */
const describePortal = (portal: string): Uint8Array => encodeFrontend({ _tag: "Describe", kind: "P", name: portal })

/**
 * Turns a decision into bytes for the server, recording what each answers and which
 * statement each result will belong to. A block is carried out through the server
 * (see block.ts), so the client sees exactly what the server would have done.
 * `maskings` holds the catalog's answer for masked statements; one missing masks everything.
 */
export const route = (d: Exclude<Decided, { _tag: "Malformed" }>, state: SessionState, maskings: ReadonlyMap<Allowed, ResultMasking> = new Map()): Routed => {
  const ids = state.statements
  const maskingOf = (a: Allowed): ResultMasking | undefined => (a.masking === undefined ? undefined : (maskings.get(a) ?? unresolvedMasking(a.masking)))
  const audit = (a: Allowed, via: Audited["via"]): Audited => {
    const masking = maskingOf(a)
    const verdict = masking !== undefined && masksApply(masking) ? "mask" : "allow"
    return {
      id: ids.next++,
      statement: a.statement,
      via,
      verdict,
      ruleId: a.ruleId,
      reason: null,
      record: a.record,
      masking,
      ...fatesOf(a)
    }
  }
  const ref = (a: Audited): StatementRef => ({
    id: a.id,
    record: a.record,
    masking: a.masking,
    ...fatesOf(a)
  })
  switch (d._tag) {
    case "Discard":
      return { bytes: [], audited: [] }
    case "Forward": {
      const f = d.frame
      const sent = SENT[f.type]
      const via = f.type === FrontendType.Query ? "simple" : f.type === FrontendType.Parse ? "extended" : "function-call"
      const audited = d.allowed.map((a) => audit(a, via))
      const statements = audited.map(ref)
      const bytes = [f.bytes]
      let prepares: string | undefined
      switch (f.type) {
        case FrontendType.Parse: {
          const name = nameAt(f.bytes, 5)
          if (statements[0] !== undefined) {
            const fate = { refused: false }
            statements[0] = { ...statements[0], makes: fate, judgedBy: fate }
          }
          // The server refuses a name in use (42P05) and keeps the statement it has.
          if (statements[0] !== undefined && (name === "" || !ids.named.has(name))) ids.named.set(name, statements[0])
          prepares = name
          break
        }
        case FrontendType.Bind: {
          const { portal, statement } = bindNames(f.bytes)
          const before = ids.named.get(statement)
          if (d.rejudged !== undefined && before !== undefined) {
            const a = d.rejudged.allowed
            ids.named.set(statement, { id: before.id, record: a.record, masking: maskingOf(a), ...fatesOf(before) })
          }
          const named = ids.named.get(statement)
          if (named === undefined) ids.portals.delete(portal)
          else {
            ids.portals.set(portal, named)
            // A statement can fail at Bind (a bad parameter, a constant folded at planning).
            statements.push(named)
          }
          break
        }
        case FrontendType.Execute: {
          const portal = nameAt(f.bytes, 5)
          const bound = ids.portals.get(portal)
          if (bound !== undefined) statements.push(bound)
          if (bound?.masking !== undefined) {
            bytes.unshift(describePortal(portal))
            state.responses.sent("Describe", "drop", [bound], { target: `P${portal}` })
          }
          break
        }
        case FrontendType.Close:
          if (f.bytes[5] === 0x53) ids.named.delete(nameAt(f.bytes, 6))
          else ids.portals.delete(nameAt(f.bytes, 6))
          break
        case FrontendType.Terminate:
          state.terminating = true
          break
      }
      forgetDeallocated(audited, ids)
      if (sent !== undefined) state.responses.sent(sent, "client", statements, addressOf(f, state), prepares)
      return { bytes, audited }
    }
    case "Block": {
      const audited = d.allowed.map((a) => audit(a, VIA[d.kind]))
      const b = d.blocked
      const blocked: Audited = { id: ids.next++, statement: b.statement, via: VIA[d.kind], verdict: b.action, ruleId: b.ruleId, reason: b.message, record: undefined, masking: undefined }
      const raise = { raise: b.message }
      if (d.kind === "Parse" || d.kind === "Bind") {
        const replacesUnnamed = d.kind === "Parse" && d.statementName === ""
        // The raise replaces the unnamed portal, and maybe the unnamed statement: their descriptions go.
        if (!replacesUnnamed) state.responses.sent("Close", "drop")
        state.responses.sent("Parse", "drop", [], replacesUnnamed ? { target: "S" } : undefined)
        state.responses.sent("Bind", "drop", [], { target: "P" })
        state.responses.sent("Execute", raise, [ref(blocked)])
        return { bytes: blockedExtended({ message: b.message }, replacesUnnamed), audited: [blocked] }
      }
      state.responses.sent("Query", raise, [...audited.map(ref), ref(blocked)])
      return { bytes: [blockedQuery(d.allowed.map((a) => a.statement.text), { message: b.message })], audited: [...audited, blocked] }
    }
  }
}

/** A Parse the server refused made no statement: its name is free again, as the server sees it. */
const forgetFailedParse = (failed: FailedParse, state: SessionState): void => {
  if (state.statements.named.get(failed.name) !== failed.ref) return
  state.statements.named.delete(failed.name)
  state.enforcement.parsed.delete(failed.name)
}

/**
 * The server → client direction: observes what the session state needs and forwards
 * bytes as they came, except responses to what Sluice itself injected, and notifications
 * this session sent itself, which carry the client's process id, not the server's.
 */
export const observeBackend = (frame: Frame, state: SessionState): Uint8Array | undefined => {
  const outcome = state.responses.received(frame)
  if (outcome === "drop") return undefined
  for (const failed of state.responses.takeFailedParses()) forgetFailedParse(failed, state)
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
