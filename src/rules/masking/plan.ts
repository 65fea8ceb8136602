/**
 * Which masks a statement is subject to, from the policy alone (pure): the masks in force
 * for the principal whose tables the statement reads or writes, whether it projects a masked
 * column into a computed value, and whether it would carry masked values somewhere
 * masking cannot follow (stored data, COPY, a cursor), which blocks it.
 *
 * The exact result columns are told later, from the server's RowDescription: a plain
 * column names its table (OID) and attribute number, which the catalog maps to names
 * (see src/streams/pg/masking.ts).
 */
import { functionEffect } from "../classify/function-effects.ts"
import type { ColumnRef, FunctionRef, StatementInfo } from "../classify/index.ts"
import type { Principal } from "../identity/principal.ts"
import { principalMatches, type RelationFacts, relationsMatch } from "../policy/evaluate.ts"
import { globMatch } from "../policy/glob.ts"
import type { Mask, Policy } from "../policy/schema.ts"
import type { MaskSpec } from "./methods.ts"

/** A column glob split: `table` is a relation glob as rules use them (`schema.table` or `table`). */
export interface ColumnPattern {
  readonly table: string
  readonly column: string
}

/** A mask in force for a principal. */
export interface ActiveMask {
  readonly id: string
  readonly spec: MaskSpec
  readonly columns: ReadonlyArray<ColumnPattern>
  /** The relation globs of `columns`, for matching a statement's relations. */
  readonly tables: ReadonlyArray<string>
}

/** What masking needs to know about one allowed statement. */
export interface MaskingNeed {
  /** The masks whose tables the statement reads or writes; none for a statement only watched (see maskingOf). */
  readonly masks: ReadonlyArray<ActiveMask>
  /** Every relation the statement reads or writes: the catalog tells their OIDs, so that a column from any other table is noticed. */
  readonly relations: ReadonlyArray<RelationFacts>
  /** It projects a masked column (into an expression, perhaps): its computed result columns are masked too. */
  readonly computed: boolean
}

export type MaskingVerdict =
  | { readonly _tag: "Unmasked" }
  | { readonly _tag: "Masked"; readonly need: MaskingNeed }
  /** Masked values would go where masking cannot follow them. */
  | { readonly _tag: "Refused"; readonly maskId: string; readonly message: string }

const UNMASKED: MaskingVerdict = { _tag: "Unmasked" }

const patternOf = (glob: string): ColumnPattern => {
  const dot = glob.lastIndexOf(".")
  return { table: glob.slice(0, dot), column: glob.slice(dot + 1) }
}

const activate = (m: Mask): ActiveMask => {
  const columns = m.columns.map(patternOf)
  const spec: MaskSpec = m.method === "partial" ? { method: "partial", ...(m.keep === undefined ? {} : { keep: m.keep }) } : { method: m.method }
  return { id: m.id, spec, columns, tables: [...new Set(columns.map((c) => c.table))] }
}

const cache = new WeakMap<Policy, WeakMap<Principal, ReadonlyArray<ActiveMask>>>()

/** The masks in force for a principal under a policy (remembered per policy and principal). */
export const masksFor = (policy: Policy, who: Principal): ReadonlyArray<ActiveMask> => {
  if (policy.masks.length === 0) return []
  let byPrincipal = cache.get(policy)
  if (byPrincipal === undefined) cache.set(policy, (byPrincipal = new WeakMap()))
  let masks = byPrincipal.get(who)
  if (masks === undefined) {
    masks = policy.masks.filter((m) => m.exempt === undefined || !principalMatches(m.exempt, who)).map(activate)
    byPrincipal.set(who, masks)
  }
  return masks
}

/**
 * Whether a column reference may name a column of the mask: by name (or `*`, a whole
 * row), on a relation that the mask's table glob touches; a reference whose relation the
 * classifier could not tell may be any table's.
 */
const refMasked = (mask: ActiveMask, c: ColumnRef, relationOf: (c: ColumnRef) => RelationFacts | undefined): boolean =>
  mask.columns.some((p) => {
    if (c.column !== "*" && !globMatch(p.column, c.column)) return false
    const r = relationOf(c)
    return r === undefined || relationsMatch([p.table], [r], false)
  })

const firstMasked = (masks: ReadonlyArray<ActiveMask>, refs: ReadonlyArray<ColumnRef>, relationOf: (c: ColumnRef) => RelationFacts | undefined) =>
  masks.find((m) => refs.some((c) => refMasked(m, c, relationOf)))

/** The classifier's reasons that mark a cursor, and a COPY whose query writes (its class is then write, but it still sends CopyData). */
const opensCursor = (s: StatementInfo): boolean => s.reasons.some((r) => r.startsWith("DECLARE "))
const copiesOut = (s: StatementInfo): boolean => s.class === "copy-out" || s.reasons.some((r) => r.startsWith("COPY (query) TO STDOUT"))

/** Only row locks made this SELECT a write: its target list goes to the client, not into storage. */
const onlyLocksRows = (s: StatementInfo): boolean => s.locks && s.writes.length === 0 && s.reasons.every((r) => /^SELECT \.\.\. FOR .* takes row locks$/u.test(r))

/** Planner statistics hold sample values (most common values, histogram bounds) of every analysed column. */
const STATISTICS: ReadonlySet<string> = new Set(["pg_statistic", "pg_stats", "pg_stats_ext", "pg_stats_ext_exprs", "pg_statistic_ext_data"])

/** A function whose call leaves something behind (a notification, a setting, a large object, a sequence value, a lock) that could carry a value out. */
const sideEffect = (f: FunctionRef): boolean => {
  const e = functionEffect(f)._tag
  return e === "write" || e === "admin" || e === "lock"
}

const refuse = (maskId: string, why: string): MaskingVerdict => ({
  _tag: "Refused",
  maskId,
  message: `${why}, where masking cannot follow them (mask ${maskId})`
})

/**
 * What no statement may do while a mask is in force for the principal, whatever table it
 * names: run code Sluice cannot see into (its reads and side effects are invisible),
 * administer the server (server files hold every value), change the schema (a rename, a
 * trigger, a domain's check or a new parent table moves values out from under the names
 * masks match), or read the planner's statistics (they hold sample values).
 */
const refusedUnderMasks = (mask: ActiveMask, body: StatementInfo | undefined): MaskingVerdict | undefined => {
  if (body === undefined) {
    return refuse(mask.id, "Sluice did not see what runs under this name (a cursor it did not see declared, a protocol portal, a statement it did not see prepared), so it cannot tell what it reads")
  }
  if (body.class === "unknown") return refuse(mask.id, "Sluice cannot see what a statement of unknown effect reads or where its values go")
  if (body.class === "admin") return refuse(mask.id, "administrative statements reach the server's data by other ways")
  if (body.class === "ddl") return refuse(mask.id, "schema changes could move masked values out from under the masks' names; run them as a principal the masks exempt")
  if (body.reads.some((r) => STATISTICS.has(r.name))) return refuse(mask.id, "planner statistics hold sample values of masked columns")
  return undefined
}

/**
 * Masking for one allowed statement. `body` is what runs (for EXECUTE, the PREPAREd
 * statement; for FETCH, its cursor's DECLARE; undefined when Sluice never saw it),
 * `relationOf` resolves a relation as the policy sees it (search path).
 */
export const maskingOf = (
  masks: ReadonlyArray<ActiveMask>,
  body: StatementInfo | undefined,
  relationOf: (r: NonNullable<ColumnRef["relation"]>) => RelationFacts
): MaskingVerdict => {
  const first = masks[0]
  if (first === undefined) return UNMASKED
  const refused = refusedUnderMasks(first, body)
  if (refused !== undefined || body === undefined) return refused ?? UNMASKED
  // Written tables count too: an error about a row (a failed cast in WHERE, a duplicate key) may quote its values.
  const relations = [...body.reads, ...body.writes].map(relationOf)
  const touching = masks.filter((m) => relationsMatch(m.tables, relations, false))
  const mask = touching[0]
  // Watched all the same: if the server runs something else than Sluice takes the statement
  // for (its bookkeeping of names was outwitted), columns of tables it does not name are masked.
  if (mask === undefined) return { _tag: "Masked", need: { masks: [], relations, computed: false } }
  const columnRelation = (c: ColumnRef) => (c.relation === undefined ? undefined : relationOf(c.relation))
  if (copiesOut(body)) return refuse(mask.id, "COPY would send masked columns out; SELECT them instead")
  if (opensCursor(body)) return refuse(mask.id, "a cursor would return masked columns; SELECT them instead, or use the extended protocol's row limit")
  // Even in WHERE: pg_notify(email), set_config(…, email), lo_from_bytea(…, email) leave the value behind.
  const effect = body.functions.find(sideEffect)
  if (effect !== undefined) return refuse(mask.id, `${effect.name}() could carry masked values out of the statement`)
  const stored = body.class === "read" || onlyLocksRows(body) ? [] : body.columnsNotReturned
  const storing = firstMasked(touching, stored, columnRelation)
  if (storing !== undefined) return refuse(storing.id, "the statement would store values of masked columns unmasked")
  return {
    _tag: "Masked",
    need: {
      masks: touching,
      relations,
      computed: firstMasked(touching, body.columnsProjected, columnRelation) !== undefined
    }
  }
}
