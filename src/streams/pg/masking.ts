/**
 * Result masking on the server → client path. A masked statement's masks are resolved
 * against the catalog before it is sent (table OID and attribute number → names); each
 * of its result sets is then told column by column from the RowDescription the server
 * sends, and its DataRows are rewritten on the way through.
 *
 * Fails closed: a column from a table the catalog did not list for the statement (it was
 * dropped and made again since, say) is masked, as is a column of a listed table that the
 * catalog's answer did not list (added since the answer was cached), a whole row of a
 * table with masked columns, every computed column of a statement that projects a masked
 * column, and every column when the catalog could not be asked at all.
 */
import { encodeBackend, type FieldDescription } from "../../codecs/pg/backend.ts"
import { maskDataRow } from "../../codecs/pg/data-row.ts"
import { type MaskSpec, valueMask, type ValueMask } from "../../rules/masking/methods.ts"
import type { ActiveMask, MaskingNeed } from "../../rules/masking/plan.ts"
import { relationsMatch } from "../../rules/policy/evaluate.ts"
import { globMatch } from "../../rules/policy/glob.ts"
import type { MaskedColumn, MaskingSummary } from "../../sinks/events.ts"
import type { CatalogRelation } from "./catalog.ts"

interface MaskedOrigin {
  readonly mask: ActiveMask
  /** `schema.table.column`. */
  readonly source: string
}

/** A masked statement, with its masks resolved against the catalog. */
export interface ResultMasking {
  readonly need: MaskingNeed
  /** Table OID → attribute number → the mask of that column, for masked columns only. */
  readonly origins: ReadonlyMap<number, ReadonlyMap<number, MaskedOrigin>>
  /**
   * Every relation the statement names, by OID, with the attribute numbers of the live
   * columns the catalog listed for it; undefined when the catalog could not say (everything
   * is masked).
   */
  readonly known: ReadonlyMap<number, ReadonlySet<number>> | undefined
}

const REDACT: MaskSpec = { method: "redact" }

const maskOfColumn = (masks: ReadonlyArray<ActiveMask>, r: CatalogRelation, column: string): ActiveMask | undefined =>
  masks.find((m) => m.columns.some((p) => globMatch(p.column, column) && relationsMatch([p.table], [{ schemas: [r.schema], name: r.name }], false)))

export const resolveMasking = (need: MaskingNeed, relations: ReadonlyArray<CatalogRelation>): ResultMasking => {
  const origins = new Map<number, Map<number, MaskedOrigin>>()
  for (const r of relations) {
    for (const [attnum, column] of r.columns) {
      const mask = maskOfColumn(need.masks, r, column)
      if (mask === undefined) continue
      let byAttnum = origins.get(r.oid)
      if (byAttnum === undefined) origins.set(r.oid, (byAttnum = new Map()))
      byAttnum.set(attnum, { mask, source: `${r.schema}.${r.name}.${column}` })
    }
  }
  return { need, origins, known: new Map(relations.map((r) => [r.oid, new Set(r.columns.keys())])) }
}

/** Whether a statement's masks apply to it (not only watched): its server texts are withheld, and the audit hears of it. */
export const masksApply = (m: ResultMasking): boolean => m.need.masks.length > 0

/** When the catalog cannot be asked: every column of every result is masked. */
export const unresolvedMasking = (need: MaskingNeed): ResultMasking => ({ need, origins: new Map(), known: undefined })

interface ColumnPlan {
  readonly column: Omit<MaskedColumn, "values">
  readonly rewrite: ValueMask
}

const planColumn = (m: ResultMasking, f: FieldDescription): ColumnPlan | undefined => {
  const binary = f.format === 1
  const fallback = (maskId: "computed" | "unresolved"): ColumnPlan => ({
    column: { name: f.name, source: null, maskId, method: "redact" },
    rewrite: valueMask(REDACT, f.typeOid, binary)
  })
  if (m.known === undefined) return fallback("unresolved")
  if (f.tableOid === 0) return m.need.computed ? fallback("computed") : undefined
  const origin = m.origins.get(f.tableOid)?.get(f.columnAttr)
  if (origin !== undefined) {
    return { column: { name: f.name, source: origin.source, maskId: origin.mask.id, method: origin.mask.spec.method }, rewrite: valueMask(origin.mask.spec, f.typeOid, binary) }
  }
  const columns = m.known.get(f.tableOid)
  if (columns === undefined) return fallback("unresolved")
  // Attribute 0 is a whole row used as a value (`SELECT t FROM t`): it carries every
  // column of the table, the masked ones too.
  if (f.columnAttr === 0) return m.origins.has(f.tableOid) ? fallback("computed") : undefined
  // A column the catalog's (cached) answer does not list was added since, perhaps under a
  // masked name: it cannot be told, so it is masked. Attribute numbers below 0 are system
  // columns (ctid, xmin, ...), which hold no user data.
  return f.columnAttr > 0 && !columns.has(f.columnAttr) ? fallback("unresolved") : undefined
}

/** The masking of one result set: from its RowDescription, over its DataRows. */
export class ResultMasker {
  private readonly columns: ReadonlyArray<Omit<MaskedColumn, "values">>
  private readonly rewrites: ReadonlyArray<ValueMask | undefined>
  private readonly counts: Array<number>
  private readonly index: ReadonlyArray<number>
  /** What a row that does not fit the description becomes: every value NULL. */
  private readonly nullRow: Uint8Array
  private rowsMasked = 0

  constructor(m: ResultMasking, fields: ReadonlyArray<FieldDescription>) {
    const plans = fields.map((f) => planColumn(m, f))
    this.nullRow = encodeBackend({ _tag: "DataRow", values: fields.map(() => null) })
    this.rewrites = plans.map((p) => p?.rewrite)
    this.index = plans.flatMap((p, i) => (p === undefined ? [] : [i]))
    this.columns = this.index.map((i) => plans[i]!.column)
    this.counts = fields.map(() => 0)
  }

  /**
   * A result whose description Sluice never saw (it should always see one): every column
   * is masked, as values of an unknown type are, to NULL.
   */
  static blind(m: ResultMasking, row: Uint8Array): ResultMasker {
    const columns = row.length >= 7 ? (row[5]! << 8) | row[6]! : 0
    const field: FieldDescription = { name: "?column?", tableOid: 0, columnAttr: 0, typeOid: 0, typeSize: -1, typeModifier: -1, format: 0 }
    return new ResultMasker(unresolvedMasking(m.need), Array.from({ length: columns }, () => field))
  }

  /** The row as the client may see it; one that does not fit the description goes as NULLs. */
  row(frame: Uint8Array): Uint8Array {
    if (this.index.length === 0) return frame
    const out = maskDataRow(frame, this.rewrites, this.counts)
    if (out === frame) return out
    this.rowsMasked++
    return out instanceof Uint8Array ? out : this.nullRow
  }

  /** Adds this result's counts to a statement's summary. */
  addTo(summary: MaskingTally): void {
    summary.rows += this.rowsMasked
    this.index.forEach((i, k) => summary.columns.push({ ...this.columns[k]!, values: this.counts[i]! }))
  }
}

/** A statement's masking summary as it is built up. */
export interface MaskingTally {
  rows: number
  messagesWithheld: number
  readonly columns: Array<MaskedColumn>
}

export const emptyTally = (): MaskingTally => ({ rows: 0, messagesWithheld: 0, columns: [] })

export const summaryOf = (statementId: number, t: MaskingTally): MaskingSummary => ({
  _tag: "MaskingSummary",
  statementId,
  columns: t.columns,
  rows: t.rows,
  messagesWithheld: t.messagesWithheld
})

/** Fields of an error or notice that may quote a value: message, detail, hint, context, internal query. */
const QUOTING_FIELDS: ReadonlySet<string> = new Set(["M", "D", "H", "W", "q", "p"])

/**
 * An error or notice of a masked statement, without the texts that may echo a masked
 * value (a unique violation's DETAIL, a failed cast's MESSAGE); its SQLSTATE, position
 * and the names of the schema, table, column and constraint remain.
 */
export const withheldFields = (fields: ReadonlyArray<readonly [string, string]>): ReadonlyArray<readonly [string, string]> => {
  const code = fields.find(([c]) => c === "C")?.[1] ?? "XX000"
  const kept = fields.filter(([c]) => !QUOTING_FIELDS.has(c))
  return [...kept, ["M", `message withheld: the statement reads masked columns (SQLSTATE ${code})`] as const]
}
