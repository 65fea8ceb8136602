/**
 * The policy file, as an `effect/Schema` definition. The README documents this shape.
 *
 * Evaluation (see evaluate.ts): for each statement, rules are tried top to bottom and the
 * first whose every condition holds decides; when none does, the target's default does.
 */
import { Schema } from "effect"
import { defaultTo } from "../../config/defaults.ts"

export const StatementClass = Schema.Literals([
  "read",
  "write",
  "ddl",
  "dcl",
  "admin",
  "copy-in",
  "copy-out",
  "transaction",
  "utility",
  "unknown"
])
export type StatementClass = typeof StatementClass.Type

/** What a rule does with a statement. Masking is not an action: `masks` apply to every allowed statement. */
export const Action = Schema.Literals(["allow", "block", "hold"])
export type Action = typeof Action.Type

const compiles = (source: string): string | undefined => {
  try {
    new RegExp(source, "iu")
    return undefined
  } catch (e) {
    return `not a valid regular expression: ${(e as Error).message}`
  }
}

const Regex = Schema.NonEmptyString.check(Schema.makeFilter(compiles))

/** The most one audit event may carry of statement text or of recorded rows (see Recording.bytes). */
export const MAX_AUDITED_BYTES = 256 * 1024

/** `schema.table` with `*` and `?` wildcards; a bare `table` means that table in any schema. */
const RelationGlob = Schema.NonEmptyString.check(
  Schema.isPattern(/^[^.\s]+(\.[^.\s]+)?$/, { message: "expected table or schema.table, with * and ? as wildcards" })
)

const NameGlob = Schema.NonEmptyString

const nonEmpty = <S extends Schema.Constraint>(item: S) =>
  Schema.Array(item).check(Schema.isMinLength(1, { message: "an empty list would never match; remove the key instead" }))

export const ClaimPredicate = Schema.Struct({
  /** A claim name, or a dotted path into nested claims (`kubernetes.io.namespace`). */
  claim: Schema.NonEmptyString,
  equals: Schema.optionalKey(Schema.String),
  oneOf: Schema.optionalKey(nonEmpty(Schema.String)),
  matches: Schema.optionalKey(Regex)
}).check(
  Schema.makeFilter((p) =>
    [p.equals, p.oneOf, p.matches].filter((v) => v !== undefined).length === 1 ? undefined : "expected exactly one of equals, oneOf or matches"
  )
)
export type ClaimPredicate = typeof ClaimPredicate.Type

export const PrincipalMatch = Schema.Struct({
  /** Any of these identity providers (globs): `static` for service accounts, else the token's issuer URL. */
  issuers: Schema.optionalKey(nonEmpty(NameGlob)),
  /** Any of these subjects (globs). A subject means nothing without its issuer: name both where it matters. */
  subjects: Schema.optionalKey(nonEmpty(NameGlob)),
  /** Any of these groups (globs). */
  groups: Schema.optionalKey(nonEmpty(NameGlob)),
  kinds: Schema.optionalKey(nonEmpty(Schema.Literals(["machine", "human"]))),
  /** Every predicate must hold. */
  claims: Schema.optionalKey(nonEmpty(ClaimPredicate))
})
export type PrincipalMatch = typeof PrincipalMatch.Type

export const TargetMatch = Schema.Struct({
  /** Target names from the gateway config (globs). */
  names: Schema.optionalKey(nonEmpty(NameGlob)),
  /** Server database names (globs). */
  databases: Schema.optionalKey(nonEmpty(NameGlob))
})
export type TargetMatch = typeof TargetMatch.Type

export const StatementMatch = Schema.Struct({
  principal: Schema.optionalKey(PrincipalMatch),
  target: Schema.optionalKey(TargetMatch),
  /** Any of these classes. `unknown` must be named to be matched by an allow rule. */
  classes: Schema.optionalKey(nonEmpty(StatementClass)),
  /** Any relation the statement touches matches one of these. */
  relations: Schema.optionalKey(nonEmpty(RelationGlob)),
  /** Any function the statement calls matches one of these (globs, `schema.name` or `name`). */
  functions: Schema.optionalKey(nonEmpty(NameGlob)),
  /** The last resort: a regular expression (JavaScript syntax, case-insensitive) over the statement's text. */
  regex: Schema.optionalKey(Regex)
})
export type StatementMatch = typeof StatementMatch.Type

/**
 * Session recording: how much of each statement's result goes into the audit trail, as
 * the client received it. Caps apply per statement; values count by their size on the wire.
 */
export const Recording = Schema.Struct({
  /** Rows captured per statement; 0 records none. */
  rows: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)).pipe(defaultTo(0)),
  /**
   * Bytes captured per statement, as encoded (each value's bytes and a few more); the row
   * that would go past it is not captured. Bounded so that an event stays well inside
   * Kafka's default 1 MB message limit: a larger one would never be delivered.
   */
  bytes: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: MAX_AUDITED_BYTES })).pipe(defaultTo(64 * 1024))
})
export type Recording = typeof Recording.Type

const Id = Schema.NonEmptyString.check(Schema.isPattern(/^[A-Za-z0-9_.:-]+$/, { message: "an id uses letters, digits, '_', '.', ':' and '-'" }))

export const Rule = Schema.Struct({
  id: Id,
  description: Schema.optionalKey(Schema.String),
  match: StatementMatch.pipe(defaultTo({})),
  action: Action,
  /** What the client reads when this rule blocks or holds. */
  message: Schema.optionalKey(Schema.NonEmptyString),
  /** For an allow rule: recording for the statements it allows, instead of the policy's `recording`. */
  record: Schema.optionalKey(Recording)
}).check(
  Schema.makeFilter((r) =>
    r.record === undefined || r.action === "allow" ? undefined : { path: ["record"], issue: `only an allow rule records results; this rule ${r.action}s` }
  )
)
export type Rule = typeof Rule.Type

/** `schema.table.column` or `table.column` (any schema), with * and ? as wildcards. */
const ColumnGlob = Schema.NonEmptyString.check(
  Schema.isPattern(/^[^.\s]+(\.[^.\s]+){1,2}$/, { message: "expected table.column or schema.table.column, with * and ? as wildcards" })
)

/**
 * How a masked value reaches the client (see src/rules/masking/methods.ts): a string
 * mask for text-like columns, NULL for types a string cannot stand in for.
 */
export const MaskMethod = Schema.Literals(["redact", "null", "email", "partial"])
export type MaskMethod = typeof MaskMethod.Type

/**
 * Sensitive columns: their values are rewritten in every result that carries them, for
 * every principal the mask does not exempt, whichever rule allowed the statement.
 */
export const Mask = Schema.Struct({
  id: Id,
  description: Schema.optionalKey(Schema.String),
  columns: nonEmpty(ColumnGlob),
  method: MaskMethod.pipe(defaultTo("redact")),
  /** For `partial`: characters kept at the end of the value (default 4). */
  keep: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 16 }))),
  /** Principals who read these columns in clear. */
  exempt: Schema.optionalKey(PrincipalMatch)
}).check(
  Schema.makeFilter((m) =>
    m.keep === undefined || m.method === "partial" ? undefined : { path: ["keep"], issue: `only the partial method keeps characters; this mask uses ${m.method}` }
  )
)
export type Mask = typeof Mask.Type

export const TargetDefault = Schema.Struct({
  action: Action,
  message: Schema.optionalKey(Schema.NonEmptyString)
})
export type TargetDefault = typeof TargetDefault.Type

export const Policy = Schema.Struct({
  version: Schema.Literal(1),
  /** Per target name; `*` for every target not named. Without either, the default is block. */
  defaults: Schema.Record(Schema.String, TargetDefault).pipe(defaultTo({})),
  rules: Schema.Array(Rule).pipe(defaultTo([])),
  masks: Schema.Array(Mask).pipe(defaultTo([])),
  /** Statement text in audit events: as written, or with every literal replaced by a placeholder. */
  auditLiterals: Schema.Literals(["keep", "redact"]).pipe(defaultTo("keep")),
  /** Statement text in audit events is cut to this many bytes (marked as cut), so that an event stays deliverable. */
  auditTextBytes: Schema.Int.check(Schema.isBetween({ minimum: 256, maximum: MAX_AUDITED_BYTES })).pipe(defaultTo(64 * 1024)),
  /** Session recording for allowed statements whose rule has no `record` of its own; off by default. */
  recording: Recording.pipe(defaultTo({})),
  /** Statements longer than this are blocked before they are parsed. */
  maxStatementBytes: Schema.Int.check(Schema.isGreaterThan(0)).pipe(defaultTo(1024 * 1024))
}).check(
  Schema.makeFilter((p) => {
    const seen = new Set<string>()
    const issues: Array<Schema.FilterIssue> = []
    p.rules.forEach((r, i) => {
      if (seen.has(r.id)) issues.push({ path: ["rules", i, "id"], issue: `duplicate rule id "${r.id}"` })
      seen.add(r.id)
    })
    const masks = new Set<string>()
    p.masks.forEach((m, i) => {
      if (masks.has(m.id)) issues.push({ path: ["masks", i, "id"], issue: `duplicate mask id "${m.id}"` })
      masks.add(m.id)
    })
    return issues
  })
)
export type Policy = typeof Policy.Type
