/**
 * Policy evaluation, pure: a statement's facts, who asks and where, to the action that
 * applies and the rule that chose it.
 *
 * Order: rules top to bottom, the first whose every condition holds decides; otherwise
 * the target's default (by name, then `*`, then block). Conditions are read so that
 * no rule says more than it means:
 * - an allow rule's `relations` and `functions` must cover EVERY relation and function
 *   the statement touches; a block, mask or hold rule's need only touch ONE; an allow
 *   rule's `relations` never cover a statement that changes something but names no
 *   relation Sluice could see (DROP SCHEMA, nextval(text), CREATE FUNCTION …);
 * - an unqualified relation may resolve to any schema on the session's search path, so
 *   allow rules must cover every candidate, and other rules match if any candidate does;
 * - class `unknown` is never allowed unless a rule lists it in `classes`: not by a rule
 *   without `classes`, and not by a default.
 */
import type { Principal } from "../identity/principal.ts"
import { anyGlob, globMatch } from "./glob.ts"
import type { Action, ClaimPredicate, Policy, PrincipalMatch, Recording, Rule, StatementClass, StatementMatch } from "./schema.ts"

export interface RelationFacts {
  /**
   * The schema as written, or every schema an unqualified name may resolve to, or `any`
   * when the session's search path is not known (it was changed by a statement).
   */
  readonly schemas: ReadonlyArray<string> | "any"
  readonly name: string
}

export interface FunctionFacts {
  readonly schema: string | undefined
  readonly name: string
}

export interface StatementFacts {
  readonly text: string
  readonly class: StatementClass
  readonly relations: ReadonlyArray<RelationFacts>
  readonly functions: ReadonlyArray<FunctionFacts>
}

export interface TargetFacts {
  readonly name: string
  readonly database: string
}

export interface Decision {
  readonly action: Action
  /** The rule's id, or `default:<target>` / `default:*` / `default` for defaults. */
  readonly ruleId: string
  readonly message: string | undefined
  /** How much of the result to record, when the action is allow; undefined records nothing. */
  readonly record: Recording | undefined
}

const recordingPolicies = new WeakMap<Policy, boolean>()

/** Whether any statement's results may be recorded under this policy (remembered per policy object). */
export const recordsResults = (policy: Policy): boolean => {
  let records = recordingPolicies.get(policy)
  if (records === undefined) {
    records = policy.recording.rows > 0 || policy.rules.some((r) => (r.record?.rows ?? 0) > 0)
    recordingPolicies.set(policy, records)
  }
  return records
}

/** Recording caps worth capturing with: undefined when they would capture no row. */
const recordingOf = (r: Recording): Recording | undefined => (r.rows > 0 ? r : undefined)

const claimAt = (claims: Readonly<Record<string, unknown>> | undefined, path: string): unknown => {
  if (claims === undefined) return undefined
  if (path in claims) return claims[path]
  let value: unknown = claims
  for (const part of path.split(".")) {
    if (typeof value !== "object" || value === null) return undefined
    value = (value as Record<string, unknown>)[part]
  }
  return value
}

const claimHolds = (claims: Readonly<Record<string, unknown>> | undefined, p: ClaimPredicate): boolean => {
  const value = claimAt(claims, p.claim)
  const values = Array.isArray(value) ? value : [value]
  return values.some((v) => {
    if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean") return false
    const s = String(v)
    if (p.equals !== undefined) return s === p.equals
    if (p.oneOf !== undefined) return p.oneOf.includes(s)
    return p.matches !== undefined && new RegExp(p.matches, "u").test(s)
  })
}

export const principalMatches = (m: PrincipalMatch, who: Principal): boolean =>
  (m.issuers === undefined || anyGlob(m.issuers, who.issuer)) &&
  (m.subjects === undefined || anyGlob(m.subjects, who.subject)) &&
  (m.groups === undefined || who.groups.some((g) => anyGlob(m.groups!, g))) &&
  (m.kinds === undefined || m.kinds.includes(who.kind)) &&
  (m.claims === undefined || m.claims.every((p) => claimHolds(who.claims, p)))

const relationMatches = (glob: string, schema: string, name: string): boolean => {
  const dot = glob.indexOf(".")
  return dot < 0 ? globMatch(glob, name) : globMatch(glob.slice(0, dot), schema) && globMatch(glob.slice(dot + 1), name)
}

const tablePart = (glob: string): string => glob.slice(glob.indexOf(".") + 1)

/** A relation in an unknown schema is covered only by globs for any schema, and touched by any glob for its name. */
const anySchemaCovered = (globs: ReadonlyArray<string>, name: string): boolean =>
  globs.some((g) => (!g.includes(".") || g.startsWith("*.")) && globMatch(tablePart(g), name))

const anySchemaTouched = (globs: ReadonlyArray<string>, name: string): boolean => globs.some((g) => globMatch(tablePart(g), name))

/** Allow: every relation, in every schema it may resolve to, is covered. Others: any one is. */
export const relationsMatch = (globs: ReadonlyArray<string>, relations: ReadonlyArray<RelationFacts>, all: boolean): boolean => {
  const covered = (schema: string, name: string) => globs.some((g) => relationMatches(g, schema, name))
  return all
    ? relations.every((r) =>
        r.schemas === "any" ? anySchemaCovered(globs, r.name) : r.schemas.length > 0 && r.schemas.every((s) => covered(s, r.name))
      )
    : relations.some((r) => (r.schemas === "any" ? anySchemaTouched(globs, r.name) : r.schemas.some((s) => covered(s, r.name))))
}

const functionMatches = (glob: string, f: FunctionFacts): boolean =>
  glob.includes(".") ? f.schema !== undefined && globMatch(glob, `${f.schema}.${f.name}`) : globMatch(glob, f.name)

const functionsMatch = (globs: ReadonlyArray<string>, functions: ReadonlyArray<FunctionFacts>, all: boolean): boolean => {
  const covered = (f: FunctionFacts) => globs.some((g) => functionMatches(g, f))
  return all ? functions.every(covered) : functions.some(covered)
}

const classMatches = (m: StatementMatch, action: Action, c: StatementClass): boolean =>
  m.classes === undefined ? !(action === "allow" && c === "unknown") : m.classes.includes(c)

export const ruleMatches = (rule: Rule, who: Principal, target: TargetFacts, s: StatementFacts): boolean => {
  const m = rule.match
  const all = rule.action === "allow"
  return (
    (m.principal === undefined || principalMatches(m.principal, who)) &&
    (m.target === undefined ||
      ((m.target.names === undefined || anyGlob(m.target.names, target.name)) &&
        (m.target.databases === undefined || anyGlob(m.target.databases, target.database)))) &&
    classMatches(m, rule.action, s.class) &&
    (m.relations === undefined || (relationsMatch(m.relations, s.relations, all) && !(all && s.relations.length === 0 && s.class !== "read"))) &&
    (m.functions === undefined || functionsMatch(m.functions, s.functions, all)) &&
    (m.regex === undefined || new RegExp(m.regex, "iu").test(s.text))
  )
}

export const evaluate = (policy: Policy, who: Principal, target: TargetFacts, s: StatementFacts): Decision => {
  for (const rule of policy.rules) {
    if (ruleMatches(rule, who, target, s)) {
      const record = rule.action === "allow" ? recordingOf(rule.record ?? policy.recording) : undefined
      return { action: rule.action, ruleId: rule.id, message: rule.message, record }
    }
  }
  const named = policy.defaults[target.name]
  const fallback = named ?? policy.defaults["*"]
  const ruleId = named !== undefined ? `default:${target.name}` : fallback !== undefined ? "default:*" : "default"
  const d = fallback ?? { action: "block" as const }
  if (d.action === "allow" && s.class === "unknown") {
    return { action: "block", ruleId, message: "statements of unknown effect need a rule that allows class unknown", record: undefined }
  }
  return { action: d.action, ruleId, message: d.message, record: d.action === "allow" ? recordingOf(policy.recording) : undefined }
}
