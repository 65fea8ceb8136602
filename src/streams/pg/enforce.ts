/**
 * Decisions for what a client asks, per statement: classification, facts for the
 * policy, the policy's verdict, and the session bookkeeping that later decisions need
 * (SQL-level prepared statements, whether the search path is still known).
 *
 * Fails closed: a parser error, an unknown class (unless explicitly allowed), an
 * evaluation error or an oversized statement all block.
 */
import type { Principal } from "../../rules/identity/principal.ts"
import type { Classification, RelationRef, StatementInfo } from "../../rules/classify/index.ts"
import { type Decision, evaluate, type RelationFacts, type StatementFacts, type TargetFacts } from "../../rules/policy/evaluate.ts"
import { type MaskingNeed, maskingOf, masksFor } from "../../rules/masking/plan.ts"
import type { Recording } from "../../rules/policy/schema.ts"
import type { LoadedPolicy } from "../../rules/policy/store.ts"
import type { Fate } from "./responses.ts"

/** What a session's decisions depend on; one per session. */
export interface Enforcer {
  readonly principal: Principal
  readonly target: TargetFacts
  /** The backend role, which `"$user"` in the search path stands for. */
  readonly backendUser: string
  readonly policy: () => LoadedPolicy
  readonly classify: (sql: string) => Classification
}

/** Session knowledge that statements change. */
export interface EnforcementState {
  /** Schemas an unqualified name may resolve to, or `any` once a statement changed the path. */
  searchPath: ReadonlyArray<string> | "any"
  /** SQL-level PREPAREd statements, so that EXECUTE is judged by the body. */
  readonly sqlPrepared: Map<string, StatementInfo>
  /**
   * SQL-level cursors DECLAREd through Sluice, so that a FETCH is masked by what the cursor
   * reads; `portal` for a name a protocol Bind gave a portal, which FETCH reads too.
   */
  readonly cursors: Map<string, DeclaredCursor | "portal">
  /** Set when the server reports a setting under which Sluice's parser may misread statements. */
  parserUnsafe: string | undefined
  /** Bumped whenever the search path may have moved: statements judged before must be judged again. */
  searchPathVersion: number
  /**
   * User-defined function names an unqualified call may resolve to (undefined: unknown, so
   * every unqualified call might). A call by such a name may not be the built-in one.
   */
  readonly userFunctions: ReadonlySet<string> | undefined
  /** Protocol-level prepared statements that were allowed, with the search path and the policy they were judged under. */
  readonly parsed: Map<string, Judged>
}

export interface Judged {
  /** Undefined for an empty statement, which does nothing to judge. */
  readonly statement: StatementInfo | undefined
  readonly searchPathVersion: number
  readonly policyVersion: string
}

/** Client-only encodings whose multibyte characters may contain ASCII bytes such as a backslash. */
const ASCII_UNSAFE_ENCODINGS = new Set(["SJIS", "SHIFT_JIS_2004", "BIG5", "GBK", "UHC", "GB18030", "JOHAB"])

/**
 * Server settings under which the text Sluice parses may not be the text the server
 * parses: backslash escapes in plain strings, or a client encoding whose multibyte
 * characters can hide quote or backslash bytes. (ASCII bytes survive Sluice's UTF-8
 * decoding whatever surrounds them, so every other encoding keeps statement boundaries.)
 */
export const parserSafety = (name: string, value: string): string | undefined => {
  if (name === "standard_conforming_strings" && value !== "on") return `standard_conforming_strings is ${value}`
  if (name === "client_encoding" && ASCII_UNSAFE_ENCODINGS.has(value.toUpperCase())) return `client_encoding is ${value}`
  return undefined
}

/** A statement the policy let through, and the rule (or default) that did. */
export interface Allowed {
  readonly statement: StatementInfo
  readonly ruleId: string
  /** Session recording caps for its results; undefined records nothing. */
  readonly record: Recording | undefined
  /** The masks its results are subject to; undefined when none is. */
  readonly masking: MaskingNeed | undefined
  /** A DECLARE: the fate of the cursor it makes, which the server's answer settles. */
  readonly makes?: Fate
  /** A FETCH: the fate of the DECLARE it was judged by. */
  readonly judgedBy?: Fate
}

/** A cursor as Sluice saw it declared, and whether the server ran that DECLARE after all. */
export interface DeclaredCursor {
  readonly statement: StatementInfo
  readonly fate: Fate
}

export interface Blocked {
  /** What the policy said; hold blocks too, until approvals land. */
  readonly action: "block" | "hold"
  readonly ruleId: string
  /** What the client reads. */
  readonly message: string
  readonly statement: StatementInfo
}

export type Verdict =
  | { readonly _tag: "Allow"; readonly allowed: ReadonlyArray<Allowed> }
  /** `allowed`: the statements before the block, which run as the server would run them. */
  | { readonly _tag: "Block"; readonly allowed: ReadonlyArray<Allowed>; readonly blocked: Blocked }

const relationFacts = (r: RelationRef, state: EnforcementState): RelationFacts => {
  if (r.schema !== undefined) return { schemas: [r.schema], name: r.name }
  if (state.searchPath === "any") return { schemas: "any", name: r.name }
  // pg_catalog is searched first, and every relation in it is named pg_*.
  return { schemas: r.name.startsWith("pg_") ? ["pg_catalog", ...state.searchPath] : state.searchPath, name: r.name }
}

/** An unqualified call that may reach a user-defined function of that name, whatever built-in it names. */
const shadowedCall = (s: StatementInfo, state: EnforcementState): string | undefined =>
  s.functions.find((f) => f.schema === undefined && (state.userFunctions === undefined || state.userFunctions.has(f.name)))?.name

/** What runs: for EXECUTE, what was PREPAREd (undefined if Sluice never saw it). */
const bodyOf = (s: StatementInfo, state: EnforcementState): StatementInfo | undefined =>
  s.prepared?.kind === "execute" ? state.sqlPrepared.get(s.prepared.name) : s

const factsOf = (s: StatementInfo, body: StatementInfo | undefined, state: EnforcementState): StatementFacts => {
  // EXECUTE is judged by its body, and is unknown without one.
  if (body === undefined) return { text: s.text, class: "unknown", relations: [], functions: [] }
  const shadowed = body.class === "read" || body.class === "copy-out" ? shadowedCall(body, state) : undefined
  return {
    text: s.text,
    // A read that may call a user-defined function could do anything that function does.
    class: shadowed === undefined ? body.class : "unknown",
    relations: [...body.reads, ...body.writes].map((r) => relationFacts(r, state)),
    functions: body.functions
  }
}

const describe = (d: Decision, fallback: string): string => `${d.message ?? fallback} (rule ${d.ruleId})`

/** The policy's action as what Sluice can do today: hold blocks until approvals land. */
const toOutcome = (d: Decision, statement: StatementInfo, reasons: ReadonlyArray<string>): Allowed | Blocked => {
  switch (d.action) {
    case "allow":
      return { statement, ruleId: d.ruleId, record: d.record, masking: undefined }
    case "block": {
      const why = reasons.length > 0 ? `statement blocked by policy: ${reasons.join("; ")}` : "statement blocked by policy"
      return { action: "block", ruleId: d.ruleId, message: describe(d, why), statement }
    }
    case "hold":
      return { action: "hold", ruleId: d.ruleId, message: `approval required (rule ${d.ruleId})`, statement }
  }
}

/** An allowed statement under the masks in force for the principal: masked, or blocked where masking cannot follow. */
const withMasking = (e: Enforcer, state: EnforcementState, a: Allowed, body: StatementInfo | undefined, policy: LoadedPolicy): Allowed | Blocked => {
  // A FETCH reads what its cursor's query reads; a cursor Sluice did not see declared could read anything.
  const cursor = body?.cursor?.kind === "fetch" ? state.cursors.get(body.cursor.name) : undefined
  const declared = cursor === "portal" ? undefined : cursor
  const reads = body?.cursor?.kind === "fetch" ? declared?.statement : body
  const m = maskingOf(masksFor(policy.policy, e.principal), reads, (r) => relationFacts(r, state))
  switch (m._tag) {
    case "Unmasked":
      return a
    case "Masked":
      return declared === undefined ? { ...a, masking: m.need } : { ...a, masking: m.need, judgedBy: declared.fate }
    case "Refused":
      return { action: "block", ruleId: `mask:${m.maskId}`, message: m.message, statement: a.statement }
  }
}

const isBlocked = (o: Allowed | Blocked): o is Blocked => "action" in o

const decideOne = (e: Enforcer, state: EnforcementState, s: StatementInfo, policy: LoadedPolicy): Allowed | Blocked => {
  try {
    const body = bodyOf(s, state)
    const facts = factsOf(s, body, state)
    const reasons = facts.class === "unknown" ? [...s.reasons, "its effect is unknown"] : []
    const o = toOutcome(evaluate(policy.policy, e.principal, e.target, facts), s, reasons)
    return isBlocked(o) ? o : withMasking(e, state, o, body, policy)
  } catch (err) {
    return { action: "block", ruleId: "evaluation-error", message: `policy evaluation failed, so the statement is blocked: ${String(err)}`, statement: s }
  }
}

/**
 * Any statement that may move where unqualified names resolve: a SET of the search path
 * however spelled (the classifier says so), a schema created or renamed, or anything
 * resetting settings wholesale.
 */
const movesSearchPath = (s: StatementInfo): boolean =>
  s.class !== "read" &&
  (s.reasons.some((r) => r.includes("search_path")) || /search_path|\bschema\b|discard\s+all|reset\s+all|set_config/iu.test(s.text))

/** A temporary relation: pg_temp is searched before the path, so it becomes a candidate for every name. */
const createsTemporary = (s: StatementInfo): boolean => s.class !== "read" && /\btemp(orary)?\b|pg_temp/iu.test(s.text)

/**
 * Cursors by name. Code Sluice cannot see into (DO, CALL, a user function) may open or
 * close cursors of any name, so after it no cursor is known. (A DECLARE the server refuses
 * leaves a name that only a later DECLARE or a Bind can bring to life: both are seen.)
 */
const rememberCursor = (cursors: Map<string, DeclaredCursor | "portal">, s: StatementInfo): Fate | undefined => {
  if (s.class === "unknown") {
    cursors.clear()
    return undefined
  }
  const c = s.cursor
  // a DECLARE of a portal's name fails while the portal lives, and the portal stays what FETCH reads
  if (c?.kind === "declare" && cursors.get(c.name) !== "portal") {
    const fate = { refused: false }
    cursors.set(c.name, { statement: s, fate })
    return fate
  }
  if (c?.kind === "close") {
    if (c.name === "") cursors.clear()
    else cursors.delete(c.name)
  }
  return undefined
}

/** What an allowed statement changes for the decisions after it; for a DECLARE, the fate of its cursor. */
const remember = (state: EnforcementState, s: StatementInfo): Fate | undefined => {
  const declares = rememberCursor(state.cursors, s)
  const p = s.prepared
  if (p?.kind === "prepare") {
    // The server refuses a name in use (42P05) and keeps the old body, or the old PREPARE
    // failed and the new one takes the name: Sluice cannot tell which, so it knows neither.
    if (state.sqlPrepared.has(p.name)) state.sqlPrepared.delete(p.name)
    else state.sqlPrepared.set(p.name, s)
  } else if (p?.kind === "deallocate") {
    // SQL-level DEALLOCATE (or DISCARD ALL) removes protocol-level statements too
    if (p.name === "" || p.name.toLowerCase() === "all") {
      state.sqlPrepared.clear()
      for (const name of state.parsed.keys()) if (name !== "") state.parsed.delete(name)
    } else {
      state.sqlPrepared.delete(p.name)
      state.parsed.delete(p.name)
    }
  }
  if (movesSearchPath(s)) {
    state.searchPath = "any"
    state.searchPathVersion++
  } else if (createsTemporary(s) && state.searchPath !== "any" && state.searchPath[0] !== "pg_temp") {
    state.searchPath = ["pg_temp", ...state.searchPath]
    state.searchPathVersion++
  }
  return declares
}

/** What classification says about one Query or Parse text, before the policy is asked. */
export type Classified = Classification | { readonly _tag: "Oversized"; readonly bytes: number; readonly limit: number }

/** Classifies a statement text, refusing to parse one above the policy's size limit. */
export const classifySql = (e: Enforcer, sql: string): Classified => {
  const limit = e.policy().policy.maxStatementBytes
  const bytes = Buffer.byteLength(sql, "utf8")
  return bytes > limit ? { _tag: "Oversized", bytes, limit } : e.classify(sql)
}

const unknownStatement = (text: string, reason: string): StatementInfo => ({
  text,
  fingerprint: "",
  class: "unknown",
  reasons: [reason],
  reads: [],
  writes: [],
  columnsRead: [],
  columnsWritten: [],
  columnsProjected: [],
  columnsReturned: [],
  columnsNotReturned: [],
  functions: [],
  locks: false
})

/** Every statement of one Query or Parse text; stops at the first that is not allowed. */
export const decideSql = (e: Enforcer, state: EnforcementState, sql: string, c: Classified): Verdict => {
  const policy = e.policy()
  if (state.parserUnsafe !== undefined) return { _tag: "Block", allowed: [], blocked: unsafe(state.parserUnsafe, sql) }
  switch (c._tag) {
    case "Oversized":
      return {
        _tag: "Block",
        allowed: [],
        blocked: {
          action: "block",
          ruleId: "maxStatementBytes",
          message: `statement of ${c.bytes} bytes exceeds the policy's limit of ${c.limit} bytes`,
          statement: unknownStatement(sql.slice(0, 200), "too long to parse")
        }
      }
    case "Unparseable": {
      const o = decideOne(e, state, unknownStatement(sql, `the statement could not be parsed (${c.message})`), policy)
      return isBlocked(o) ? { _tag: "Block", allowed: [], blocked: o } : { _tag: "Allow", allowed: [o] }
    }
    case "Classified": {
      const allowed: Array<Allowed> = []
      for (const s of c.statements) {
        const o = decideOne(e, state, s, policy)
        if (isBlocked(o)) return { _tag: "Block", allowed, blocked: o }
        const declares = remember(state, s)
        allowed.push(declares === undefined ? o : { ...o, makes: declares })
      }
      return { _tag: "Allow", allowed }
    }
  }
}

/** The fast-path function call protocol names a function by OID only: its effect is unknown. */
const unsafe = (reason: string, text: string): Blocked => ({
  action: "block",
  ruleId: "parser-safety",
  message: `the session's ${reason}, under which Sluice cannot read statements reliably, so it blocks them`,
  statement: unknownStatement(text.slice(0, 200), reason)
})

/**
 * Bind of a prepared statement judged under a search path that has moved since (the
 * server re-plans it under the new path) or under an older policy: it is judged again, as
 * it would be now. Undefined when nothing changed; the new verdict otherwise (an allow may
 * come with other recording caps).
 */
export const decideBind = (e: Enforcer, state: EnforcementState, statementName: string): Allowed | Blocked | undefined => {
  const parsed = state.parsed.get(statementName)
  const policy = e.policy()
  if (parsed?.statement === undefined || (parsed.searchPathVersion === state.searchPathVersion && parsed.policyVersion === policy.version)) return undefined
  const o = decideOne(e, state, parsed.statement, policy)
  if (!isBlocked(o)) state.parsed.set(statementName, { statement: parsed.statement, searchPathVersion: state.searchPathVersion, policyVersion: policy.version })
  return o
}

export const decideFunctionCall = (e: Enforcer, state: EnforcementState, functionOid: number): Allowed | Blocked => {
  const text = `<function call protocol: function oid ${functionOid}>`
  if (state.parserUnsafe !== undefined) return unsafe(state.parserUnsafe, text)
  // Admin, not unknown: the message names a function only by OID, which may be pg_terminate_backend,
  // so allowing statements of unknown effect must not allow it.
  const call: StatementInfo = { ...unknownStatement(text, "the function call protocol names the function only by OID"), class: "admin" }
  return decideOne(e, state, call, e.policy())
}

/**
 * Bind of a statement name Sluice does not know as parsed (never, or forgotten by a
 * DEALLOCATE the server may have refused): the server either refuses it or runs
 * something Sluice cannot mask, so while a mask is in force it is blocked.
 */
export const decideUnknownBind = (e: Enforcer, state: EnforcementState, statementName: string): Blocked | undefined => {
  const mask = masksFor(e.policy().policy, e.principal)[0]
  if (mask === undefined || state.parsed.has(statementName)) return undefined
  return {
    action: "block",
    ruleId: `mask:${mask.id}`,
    message: `prepared statement "${statementName}" is not one Sluice saw prepared, so masking cannot follow it (mask ${mask.id})`,
    statement: unknownStatement(`<bind of prepared statement "${statementName}">`, "a prepared statement Sluice did not see")
  }
}

export { isBlocked }
