/**
 * What the classifier says about SQL text. Plain data: no Effect, no classes.
 */

/**
 * What a statement does, by effect:
 * - read: returns data, changes nothing (SELECT, VALUES, TABLE, SHOW, plain EXPLAIN).
 * - write: changes rows (INSERT/UPDATE/DELETE/MERGE, data-modifying CTEs, SELECT INTO,
 *   SELECT ... FOR UPDATE/SHARE, TRUNCATE, LOCK beyond ACCESS SHARE, writing built-ins).
 * - ddl: changes the schema. dcl: changes who may do what, or who the session is.
 * - admin: touches the server itself (files, programs, other backends, configuration).
 * - copy-in / copy-out: COPY FROM STDIN / COPY TO STDOUT.
 * - transaction: transaction control. utility: session housekeeping.
 * - unknown: could do anything (DO, CALL, user-defined functions, EXECUTE of a
 *   prepared name, anything the walker does not recognise).
 */
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

/** A relation as written in the statement; unqualified → schema undefined. */
export interface RelationRef {
  readonly schema: string | undefined
  readonly name: string
}

/** A column as written; relation resolved through aliases where it maps to one relation. `*` is column "*". */
export interface ColumnRef {
  readonly relation: RelationRef | undefined
  readonly column: string
}

export interface FunctionRef {
  readonly schema: string | undefined
  readonly name: string
}

/**
 * SQL-level prepared statements, so that the gateway can track them:
 * PREPARE name AS ..., EXECUTE name, DEALLOCATE name. `name` is "" for
 * DEALLOCATE ALL (and for DISCARD ALL, which deallocates everything too): no
 * SQL-level name can be empty ("" is a zero-length identifier, an error).
 * SQL-level and protocol-level (Parse) statement names share one namespace.
 */
export interface PreparedRef {
  readonly kind: "prepare" | "execute" | "deallocate"
  readonly name: string
}

/**
 * SQL-level cursors, so that the gateway can tell what a FETCH reads: DECLARE name,
 * FETCH or MOVE from name, CLOSE name (`""` for CLOSE ALL).
 */
export interface CursorRef {
  readonly kind: "declare" | "fetch" | "close"
  readonly name: string
}

export interface StatementInfo {
  /** This statement's own text, sliced from the input by stmt_location/stmt_len. */
  readonly text: string
  /** Stable hash of the literal-normalized statement (same shape → same fingerprint). */
  readonly fingerprint: string
  readonly class: StatementClass
  /** Human-readable reasons, e.g. "data-modifying CTE", "calls pg_terminate_backend". */
  readonly reasons: ReadonlyArray<string>
  readonly reads: ReadonlyArray<RelationRef>
  readonly writes: ReadonlyArray<RelationRef>
  readonly columnsRead: ReadonlyArray<ColumnRef>
  readonly columnsWritten: ReadonlyArray<ColumnRef>
  /**
   * Columns whose values can reach the statement's result rows or the data it stores:
   * read anywhere except in clauses that only filter, group or order (WHERE, HAVING,
   * JOIN ... ON/USING, GROUP BY, ORDER BY, LIMIT/OFFSET, window PARTITION BY/ORDER BY,
   * aggregate FILTER and ORDER BY, ON CONFLICT's WHERE, ...). A whole-row reference (`t` or
   * `t.*` used as a value, e.g. row_to_json(t), t::text, ROW(t.*)) is column "*" of t.
   * A `*` or `t.*` that is itself a top-level entry of a SELECT or RETURNING list expands to
   * plain columns and is listed as column "*" too.
   */
  readonly columnsProjected: ReadonlyArray<ColumnRef>
  /**
   * The subset of columnsProjected that appears in the statement's own RETURNING list (values
   * go to the client, not to storage). A data-modifying CTE's RETURNING feeds the outer query,
   * which may store it: projected, not returned.
   */
  readonly columnsReturned: ReadonlyArray<ColumnRef>
  /**
   * The subset of columnsProjected that appears anywhere but the statement's own RETURNING
   * list: in a statement that writes, where values may be stored. A column in both lists
   * is in both.
   */
  readonly columnsNotReturned: ReadonlyArray<ColumnRef>
  readonly functions: ReadonlyArray<FunctionRef>
  /** Takes row or table locks: SELECT ... FOR UPDATE/NO KEY UPDATE/SHARE/KEY SHARE, LOCK, advisory locks. */
  readonly locks: boolean
  readonly prepared?: PreparedRef
  readonly cursor?: CursorRef
}

export type Classification =
  | { readonly _tag: "Classified"; readonly statements: ReadonlyArray<StatementInfo> }
  | { readonly _tag: "Unparseable"; readonly message: string; readonly cursor: number | undefined }
