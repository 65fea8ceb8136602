/**
 * Walks the parse tree of one statement: the relations and columns it reads
 * and writes, the functions it calls, and the effects that decide its class
 * (data-modifying statements anywhere, SELECT INTO, row locks, what the
 * called functions do).
 *
 * Every node the walker has no rule for is descended into generically, so a
 * function call or subquery is found wherever the grammar puts it.
 *
 * Literal values (A_Const) are never looked at, except through `constString`,
 * which records the literal's location: the cache key ignores literal values,
 * so any result that depends on one must be pinned to it (see analyze.ts).
 */
import { bodyOf, isObj, isRangeVarBody, list, nameList, num, str, stringNode, unwrap, type Obj } from "./ast.ts"
import { functionEffect, isBuiltinOperator } from "./function-effects.ts"
import { PG_CATALOG_SERVER_VERSION, PG_FUNCTIONS } from "./pg-functions.ts"
import type { ColumnRef, FunctionRef, RelationRef } from "./types.ts"

/** What the walk found that changes a statement's class. */
export interface Effects {
  /** INSERT/UPDATE/DELETE/MERGE somewhere (top level or nested). */
  dml: boolean
  /** SELECT ... INTO. */
  selectInto: boolean
  /** FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE. */
  rowLocks: boolean
  /** A built-in that writes (nextval, lo_unlink, ...). */
  writeFunction: boolean
  /** An admin function. */
  admin: boolean
  /** A user-defined function or operator, or dynamic SQL: could do anything. */
  unknown: boolean
  /** Advisory or table locks. */
  locks: boolean
}

interface Scope {
  readonly parent: Scope | undefined
  /** CTE names visible from this level (and below). */
  readonly ctes: Set<string>
  /** FROM-clause names (alias, relation name, schema.name) → base relation, or null for a subquery, function, CTE or join alias. */
  readonly sources: Map<string, RelationRef | null>
  /** FROM items in order (null: not a base relation). */
  readonly items: Array<RelationRef | null>
  /**
   * Aliases that rename columns (`customers AS t(i, n, e)`, `(a JOIN b …) AS j(x, y)`): a
   * name through them, or an unqualified name beside them, says nothing of which column it is.
   */
  readonly renaming: Set<string>
}

const newScope = (parent: Scope | undefined): Scope => ({ parent, ctes: new Set(), sources: new Map(), items: [], renaming: new Set() })

const relKey = (r: RelationRef): string => `${r.schema ?? ""}\u0000${r.name}`

const DML_TAGS: ReadonlySet<string> = new Set(["InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"])
const DML_WORD: Readonly<Record<string, string>> = {
  InsertStmt: "INSERT",
  UpdateStmt: "UPDATE",
  DeleteStmt: "DELETE",
  MergeStmt: "MERGE",
}

const LOCK_WORDS: Readonly<Record<string, string>> = {
  LCS_FORKEYSHARE: "FOR KEY SHARE",
  LCS_FORSHARE: "FOR SHARE",
  LCS_FORNOKEYUPDATE: "FOR NO KEY UPDATE",
  LCS_FORUPDATE: "FOR UPDATE",
}

/** A_Expr kinds whose `name` is an operator. */
const OPERATOR_KINDS: ReadonlySet<string> = new Set([
  "AEXPR_OP",
  "AEXPR_OP_ANY",
  "AEXPR_OP_ALL",
  "AEXPR_DISTINCT",
  "AEXPR_NOT_DISTINCT",
  "AEXPR_NULLIF",
  "AEXPR_IN",
  "AEXPR_LIKE",
  "AEXPR_ILIKE",
  "AEXPR_SIMILAR",
])

/** Parse a relation name given as text (nextval('s.seq')), as regclass input does: dots split, quotes keep case. */
export const parseRelationText = (text: string): RelationRef | undefined => {
  const parts: string[] = []
  let i = 0
  const n = text.length
  while (i <= n) {
    let part = ""
    if (text[i] === "\"") {
      i++
      for (;;) {
        if (i >= n) return undefined
        if (text[i] === "\"") {
          if (text[i + 1] === "\"") {
            part += "\""
            i += 2
            continue
          }
          i++
          break
        }
        part += text[i]
        i++
      }
    } else {
      const start = i
      while (i < n && text[i] !== ".") i++
      part = text.slice(start, i).trim().replace(/[A-Z]+/g, (m) => m.toLowerCase())
      if (part === "" || /["\s]/.test(part)) return undefined
    }
    parts.push(part)
    if (i >= n) break
    if (text[i] !== ".") return undefined
    i++
  }
  if (parts.length === 0 || parts.length > 3) return undefined
  const name = parts[parts.length - 1]
  if (name === undefined) return undefined
  return { schema: parts.length >= 2 ? parts[parts.length - 2] : undefined, name }
}

export class Walker {
  readonly reads: RelationRef[] = []
  readonly writes: RelationRef[] = []
  readonly columnsRead: ColumnRef[] = []
  readonly columnsWritten: ColumnRef[] = []
  readonly columnsProjected: ColumnRef[] = []
  readonly columnsReturned: ColumnRef[] = []
  readonly columnsNotReturned: ColumnRef[] = []
  readonly functions: FunctionRef[] = []
  readonly reasons: string[] = []
  readonly effects: Effects = {
    dml: false,
    selectInto: false,
    rowLocks: false,
    writeFunction: false,
    admin: false,
    unknown: false,
    locks: false,
  }
  /** Byte locations of the A_Const nodes whose values the result depends on. */
  readonly usedConstants: number[] = []
  /**
   * What the statement does with the expressions being walked:
   * - run: they are evaluated; every function effect counts.
   * - plan (plain EXPLAIN): planned, not run. Functions that write or
   *   administer are reported but do not change the class; user-defined ones
   *   still make it unknown (the planner may evaluate immutable and stable
   *   functions while planning).
   * - define (CREATE FUNCTION/VIEW/RULE/TRIGGER/POLICY/TABLE/DOMAIN): stored,
   *   not run; functions are only reported.
   */
  mode: "run" | "plan" | "define" = "run"
  /**
   * Whether the values of the expressions being walked can reach the result rows
   * or stored data. Switched off for clauses that only filter, group or order
   * (see `predicate`), and for everything under them: a subquery in a WHERE
   * only filters, even its target list.
   */
  projecting = true
  /** Walking the statement's own RETURNING list: its values go to the client. */
  private returningToClient = false

  private readonly seen = new Set<string>()

  // ---------------------------------------------------------------- results

  private once(kind: string, key: string): boolean {
    const k = `${kind}\u0001${key}`
    if (this.seen.has(k)) return false
    this.seen.add(k)
    return true
  }

  reason(text: string): void {
    if (this.once("reason", text)) this.reasons.push(text)
  }

  read(r: RelationRef): void {
    if (this.once("read", relKey(r))) this.reads.push(r)
  }

  write(r: RelationRef): void {
    if (this.once("write", relKey(r))) this.writes.push(r)
  }

  private column(into: ColumnRef[], kind: string, c: ColumnRef): void {
    const key = `${c.relation === undefined ? "\u0002" : relKey(c.relation)}\u0000${c.column}`
    if (this.once(kind, key)) into.push(c)
  }

  columnRead(c: ColumnRef): void {
    this.column(this.columnsRead, "colr", c)
  }

  columnWritten(c: ColumnRef): void {
    this.column(this.columnsWritten, "colw", c)
  }

  columnProjected(c: ColumnRef): void {
    this.column(this.columnsProjected, "colp", c)
    if (this.returningToClient) this.column(this.columnsReturned, "colret", c)
    else this.column(this.columnsNotReturned, "colnret", c)
  }

  private functionCalled(f: FunctionRef): void {
    if (this.once("fn", `${f.schema ?? ""}\u0000${f.name}`)) this.functions.push(f)
  }

  /** The string value of a constant (A_Const, possibly under a cast), recording that the result depends on it. */
  constString(node: unknown): string | undefined {
    let n = node
    const cast = bodyOf(n, "TypeCast")
    if (cast !== undefined) n = cast["arg"]
    const c = bodyOf(n, "A_Const")
    if (c === undefined) return undefined
    const sval = c["sval"]
    if (!isObj(sval)) return undefined
    const loc = num(c["location"])
    if (loc === undefined || loc < 0) return undefined
    this.usedConstants.push(loc)
    return str(sval["sval"]) ?? ""
  }

  // ---------------------------------------------------------------- names

  relationOf(rv: Obj): RelationRef {
    return { schema: str(rv["schemaname"]), name: str(rv["relname"]) ?? "" }
  }

  private isCte(name: string, scope: Scope | undefined): boolean {
    for (let s = scope; s !== undefined; s = s.parent) if (s.ctes.has(name)) return true
    return false
  }

  private addSource(scope: Scope, rel: RelationRef | null, alias: string | undefined, rv: Obj | undefined): void {
    scope.items.push(rel)
    if (alias !== undefined) scope.sources.set(alias, rel)
    else if (rv !== undefined && rel !== null) {
      scope.sources.set(rel.name, rel)
      if (rel.schema !== undefined) scope.sources.set(`${rel.schema}.${rel.name}`, rel)
    }
  }

  private aliasOf(b: Obj): string | undefined {
    const a = b["alias"]
    return isObj(a) ? str(a["aliasname"]) : undefined
  }

  /** The relation an unqualified column belongs to: the only FROM item of the innermost level that has any. */
  private soleRelation(scope: Scope | undefined): RelationRef | undefined {
    for (let s = scope; s !== undefined; s = s.parent) {
      if (s.items.length === 0) continue
      return s.items.length === 1 ? (s.items[0] ?? undefined) : undefined
    }
    return undefined
  }

  /** The FROM item a name refers to, innermost level first: a relation, null (not a base relation), or undefined (no such name). */
  private source(key: string, scope: Scope | undefined): RelationRef | null | undefined {
    for (let s = scope; s !== undefined; s = s.parent) {
      const hit = s.sources.get(key)
      if (hit !== undefined) return hit
    }
    return undefined
  }

  private noteRenaming(b: Obj, scope: Scope): void {
    const a = b["alias"]
    if (!isObj(a) || list(a["colnames"]).length === 0) return
    scope.renaming.add(str(a["aliasname"]) ?? "")
  }

  private renamed(parts: ReadonlyArray<string>, scope: Scope | undefined): boolean {
    const qualifier = parts.slice(0, -1).join(".")
    for (let s = scope; s !== undefined; s = s.parent) {
      if (s.renaming.size > 0 && (parts.length === 1 || s.renaming.has(qualifier))) return true
    }
    return false
  }

  private resolveQualifier(parts: ReadonlyArray<string>, scope: Scope | undefined): RelationRef | undefined {
    const hit = this.source(parts.join("."), scope)
    if (hit !== undefined) return hit ?? undefined
    if (parts.length >= 2) {
      const name = parts[parts.length - 1]
      if (name !== undefined) return { schema: parts[parts.length - 2], name }
    }
    return undefined
  }

  private columnRef(b: Obj, scope: Scope | undefined): void {
    const parts: string[] = []
    for (const f of list(b["fields"])) {
      const s = stringNode(f)
      if (s !== undefined) parts.push(s)
      else if (bodyOf(f, "A_Star") !== undefined) parts.push("*")
      else return
    }
    const name = parts[parts.length - 1]
    if (name === undefined) return
    const relation = parts.length === 1 ? this.soleRelation(scope) : this.resolveQualifier(parts.slice(0, -1), scope)
    // through (or beside) an alias that renames columns, any column may be meant
    const column = this.renamed(parts, scope) ? "*" : name
    this.columnRead({ relation, column })
    if (!this.projecting) return
    this.columnProjected({ relation, column })
    // a bare name may be a whole row (row_to_json(c), c::text) rather than a column: list both
    const whole = parts.length === 1 ? this.source(name, scope) : undefined
    if (whole !== undefined) this.columnProjected({ relation: whole ?? undefined, column: "*" })
  }

  // ---------------------------------------------------------------- effects

  private callEffect(f: FunctionRef): void {
    if (this.mode === "define") return
    const e = functionEffect(f)
    if (e._tag === "admin") {
      if (this.mode === "run") this.admin(e.reason)
      return
    }
    if (f.schema === "pg_catalog" && !PG_FUNCTIONS.has(f.name)) {
      this.unknown(
        `calls pg_catalog.${f.name}, which is not in the built-in function table (PostgreSQL ${PG_CATALOG_SERVER_VERSION})`,
      )
      return
    }
    switch (e._tag) {
      case "user-defined":
      case "dynamic":
        this.unknown(e.reason)
        return
      case "write":
        if (this.mode === "run") {
          this.effects.writeFunction = true
          this.reason(e.reason)
        }
        return
      case "lock":
        if (this.mode === "run") {
          this.effects.locks = true
          this.reason(e.reason)
        }
        return
      case "none":
        return
    }
  }

  /** The statement acts on the server itself. */
  admin(reason: string): void {
    this.effects.admin = true
    this.reason(reason)
  }

  /** The statement could do anything. */
  unknown(reason: string): void {
    this.effects.unknown = true
    this.reason(reason)
  }

  private operator(names: unknown): void {
    const parts = nameList(names)
    if (parts === undefined || parts.length === 0) return
    const name = parts[parts.length - 1] ?? ""
    const schema = parts.length >= 2 ? parts[parts.length - 2] : undefined
    if (this.mode !== "define" && !isBuiltinOperator(schema, name)) {
      this.unknown(`uses user-defined operator ${schema === undefined ? name : `${schema}.${name}`}`)
    }
  }

  private funcCall(b: Obj, scope: Scope | undefined): void {
    const names = nameList(b["funcname"]) ?? []
    const name = names[names.length - 1]
    if (name !== undefined) {
      const f: FunctionRef = { schema: names.length >= 2 ? names[names.length - 2] : undefined, name }
      this.functionCalled(f)
      this.callEffect(f)
      if ((name === "nextval" || name === "setval") && (f.schema === undefined || f.schema === "pg_catalog")) {
        const text = this.constString(list(b["args"])[0])
        const rel = text === undefined ? undefined : parseRelationText(text)
        if (rel !== undefined) this.write(rel)
      }
    }
    this.expr(b["args"], scope)
    // an ordered-set aggregate (mode() WITHIN GROUP (ORDER BY x)) returns values of its ORDER BY
    if (b["agg_within_group"] === true) this.expr(b["agg_order"], scope)
    else this.predicate(b["agg_order"], scope)
    this.predicate(b["agg_filter"], scope)
    this.predicate(b["over"], scope)
  }

  /** Walk a clause that only filters, groups or orders: no value under it reaches the output. */
  predicate(node: unknown, scope: Scope | undefined): void {
    const projecting = this.projecting
    this.projecting = false
    this.expr(node, scope)
    this.projecting = projecting
  }

  // ---------------------------------------------------------------- generic descent

  /** Walk any node, list or body. */
  expr(node: unknown, scope: Scope | undefined): void {
    if (Array.isArray(node)) {
      for (const item of node) this.expr(item, scope)
      return
    }
    if (!isObj(node)) return
    const u = unwrap(node)
    if (u === undefined) {
      if (typeof node["relname"] === "string") this.relationNode(node, scope)
      else for (const k in node) this.expr(node[k], scope)
      return
    }
    const [tag, b] = u
    switch (tag) {
      case "A_Const":
        return // values are not looked at (see constString)
      case "ColumnRef":
        return this.columnRef(b, scope)
      case "FuncCall":
        return this.funcCall(b, scope)
      case "A_Expr": {
        const kind = str(b["kind"]) ?? ""
        if (OPERATOR_KINDS.has(kind)) this.operator(b["name"])
        this.expr(b["lexpr"], scope)
        this.expr(b["rexpr"], scope)
        return
      }
      case "SubLink":
        this.operator(b["operName"])
        this.expr(b["testexpr"], scope)
        this.query(b["subselect"], scope)
        return
      case "SortBy":
        this.operator(b["useOp"])
        this.expr(b["node"], scope)
        return
      case "RangeVar":
        return this.relationNode(b, scope)
      case "SelectStmt":
      case "InsertStmt":
      case "UpdateStmt":
      case "DeleteStmt":
      case "MergeStmt":
        return this.query(node, scope)
      default:
        for (const k in b) this.expr(b[k], scope)
    }
  }

  /** A RangeVar met outside a FROM clause or statement target: read, unless it names a CTE. */
  private relationNode(rv: Obj, scope: Scope | undefined): void {
    const rel = this.relationOf(rv)
    if (rel.schema === undefined && this.isCte(rel.name, scope)) return
    this.read(rel)
  }

  // ---------------------------------------------------------------- queries

  /** A query node (SelectStmt, DML, or anything else) in the given outer scope. */
  query(node: unknown, outer: Scope | undefined): void {
    const u = unwrap(node)
    if (u === undefined) return this.expr(node, outer)
    const [tag, b] = u
    switch (tag) {
      case "SelectStmt":
        return this.select(b, outer)
      case "InsertStmt":
        return this.insert(b, outer)
      case "UpdateStmt":
        return this.update(b, outer)
      case "DeleteStmt":
        return this.delete(b, outer)
      case "MergeStmt":
        return this.merge(b, outer)
      default:
        return this.expr(node, outer)
    }
  }

  private withClause(w: unknown, scope: Scope): void {
    if (!isObj(w)) return
    const ctes = list(w["ctes"]).map((c) => bodyOf(c, "CommonTableExpr")).filter((c): c is Obj => c !== undefined)
    const recursive = w["recursive"] === true
    if (recursive) for (const c of ctes) scope.ctes.add(str(c["ctename"]) ?? "")
    for (const c of ctes) {
      const q = unwrap(c["ctequery"])
      if (q !== undefined && DML_TAGS.has(q[0])) this.reason(`data-modifying CTE (${DML_WORD[q[0]] ?? q[0]})`)
      this.query(c["ctequery"], scope)
      this.expr(c["search_clause"], scope)
      this.expr(c["cycle_clause"], scope)
      scope.ctes.add(str(c["ctename"]) ?? "")
    }
  }

  private fromItem(item: unknown, scope: Scope): void {
    const u = unwrap(item)
    if (u === undefined) return this.expr(item, scope)
    const [tag, b] = u
    switch (tag) {
      case "RangeVar": {
        const rel = this.relationOf(b)
        const alias = this.aliasOf(b)
        if (rel.schema === undefined && this.isCte(rel.name, scope)) {
          this.addSource(scope, null, alias ?? rel.name, undefined)
          return
        }
        this.read(rel)
        this.addSource(scope, rel, alias, b)
        this.noteRenaming(b, scope)
        return
      }
      case "JoinExpr": {
        this.fromItem(b["larg"], scope)
        this.fromItem(b["rarg"], scope)
        for (const c of list(b["usingClause"])) {
          const col = stringNode(c)
          if (col !== undefined) this.columnRead({ relation: undefined, column: col })
        }
        this.predicate(b["quals"], scope)
        const alias = this.aliasOf(b)
        if (alias !== undefined) scope.sources.set(alias, null)
        this.noteRenaming(b, scope)
        const usingAlias = b["join_using_alias"]
        if (isObj(usingAlias)) {
          const a = str(usingAlias["aliasname"])
          if (a !== undefined) scope.sources.set(a, null)
        }
        return
      }
      case "RangeSubselect":
        this.query(b["subquery"], scope)
        this.addSource(scope, null, this.aliasOf(b) ?? "", undefined)
        return
      case "RangeTableSample":
        this.fromItem(b["relation"], scope)
        this.expr(b["args"], scope)
        this.expr(b["repeatable"], scope)
        this.tablesampleMethod(b["method"])
        return
      default:
        // RangeFunction, RangeTableFunc, JsonTable, ...: walk, register the alias as a non-relation
        for (const k in b) if (k !== "alias") this.expr(b[k], scope)
        this.addSource(scope, null, this.aliasOf(b) ?? "", undefined)
    }
  }

  private tablesampleMethod(method: unknown): void {
    const names = nameList(method)
    const name = names?.[names.length - 1]
    if (name === undefined) return
    if (name !== "system" && name !== "bernoulli") {
      // tsm_system_rows / tsm_system_time are extensions: their handlers are C, not user SQL, but fail closed.
      if (this.mode !== "define") this.unknown(`uses TABLESAMPLE method ${name}, which is not built in`)
    }
  }

  private fromClause(items: unknown, scope: Scope): void {
    for (const item of list(items)) this.fromItem(item, scope)
  }

  select(b: Obj, outer: Scope | undefined): void {
    const scope = newScope(outer)
    this.withClause(b["withClause"], scope)
    const op = str(b["op"])
    if (op !== undefined && op !== "SETOP_NONE") {
      if (isObj(b["larg"])) this.select(b["larg"], scope)
      if (isObj(b["rarg"])) this.select(b["rarg"], scope)
    }
    this.fromClause(b["fromClause"], scope)
    const into = b["intoClause"]
    if (isObj(into)) {
      const rel = into["rel"]
      if (isRangeVarBody(rel)) this.write(this.relationOf(rel))
      this.effects.selectInto = true
      this.reason("SELECT INTO creates a table")
    }
    this.expr(b["valuesLists"], scope)
    this.expr(b["targetList"], scope)
    this.predicate(b["whereClause"], scope)
    this.predicate(b["groupClause"], scope)
    this.predicate(b["havingClause"], scope)
    this.predicate(b["windowClause"], scope)
    this.predicate(b["distinctClause"], scope) // DISTINCT ON (...) picks rows; the values shown come from the target list
    this.predicate(b["sortClause"], scope)
    this.predicate(b["limitOffset"], scope)
    this.predicate(b["limitCount"], scope)
    for (const l of list(b["lockingClause"])) {
      const lc = bodyOf(l, "LockingClause")
      if (lc === undefined) continue
      this.effects.rowLocks = true
      this.effects.locks = true
      this.reason(`SELECT ... ${LOCK_WORDS[str(lc["strength"]) ?? ""] ?? "FOR UPDATE/SHARE"} takes row locks`)
    }
  }

  /** The target of INSERT/UPDATE/DELETE/MERGE: written, and in scope under its alias. */
  private target(b: Obj, scope: Scope): RelationRef | undefined {
    const rv = b["relation"]
    if (!isRangeVarBody(rv)) return undefined
    const rel = this.relationOf(rv)
    this.write(rel)
    this.addSource(scope, rel, this.aliasOf(rv), rv)
    return rel
  }

  private dml(tag: string): void {
    this.effects.dml = true
    this.reason(`${DML_WORD[tag] ?? tag} changes rows`)
  }

  /** RETURNING; `toClient`: it is the statement's own (a data-modifying CTE's feeds the outer query instead). */
  private returning(b: Obj, target: RelationRef | undefined, scope: Scope, toClient: boolean): void {
    const r = b["returningClause"]
    if (!isObj(r)) return
    if (target !== undefined) {
      this.read(target)
      this.reason("RETURNING returns the changed rows")
    }
    // RETURNING old.* / new.* (PostgreSQL 18), possibly renamed by WITH (OLD AS o, NEW AS n), refer to the target
    for (const name of ["old", "new"]) if (!scope.sources.has(name)) scope.sources.set(name, target ?? null)
    for (const o of list(r["options"])) {
      const opt = bodyOf(o, "ReturningOption")
      const name = opt === undefined ? undefined : str(opt["value"])
      if (name !== undefined) scope.sources.set(name, target ?? null)
    }
    const returningToClient = this.returningToClient
    this.returningToClient = toClient
    this.expr(r["exprs"], scope)
    this.returningToClient = returningToClient
  }

  private assignments(targets: unknown, target: RelationRef | undefined, scope: Scope): void {
    for (const t of list(targets)) {
      const rt = bodyOf(t, "ResTarget")
      if (rt === undefined) continue
      const name = str(rt["name"])
      if (name !== undefined) this.columnWritten({ relation: target, column: name })
      this.expr(rt["indirection"], scope)
      const val = rt["val"]
      const multi = bodyOf(val, "MultiAssignRef")
      this.expr(multi !== undefined ? multi["source"] : val, scope)
    }
  }

  insert(b: Obj, outer: Scope | undefined): void {
    const scope = newScope(outer)
    this.withClause(b["withClause"], scope)
    this.dml("InsertStmt")
    const valuesScope = newScope(scope) // the target is not visible to INSERT's own query
    const rv = b["relation"]
    const target = isRangeVarBody(rv) ? this.relationOf(rv) : undefined
    if (target !== undefined) this.write(target)
    const cols = list(b["cols"])
    if (cols.length === 0) this.columnWritten({ relation: target, column: "*" })
    for (const c of cols) {
      const rt = bodyOf(c, "ResTarget")
      const name = rt === undefined ? undefined : str(rt["name"])
      if (name !== undefined) this.columnWritten({ relation: target, column: name })
    }
    this.query(b["selectStmt"], valuesScope)
    const targetScope = newScope(scope)
    if (target !== undefined && isRangeVarBody(rv)) this.addSource(targetScope, target, this.aliasOf(rv), rv)
    const oc = b["onConflictClause"]
    if (isObj(oc)) {
      const conflictScope = newScope(targetScope)
      conflictScope.sources.set("excluded", null)
      this.predicate(oc["infer"], targetScope)
      if (list(oc["targetList"]).length > 0) this.reason("ON CONFLICT DO UPDATE changes existing rows")
      this.assignments(oc["targetList"], target, conflictScope)
      this.predicate(oc["whereClause"], conflictScope)
    }
    this.returning(b, target, targetScope, outer === undefined)
  }

  update(b: Obj, outer: Scope | undefined): void {
    const scope = newScope(outer)
    this.withClause(b["withClause"], scope)
    this.dml("UpdateStmt")
    const target = this.target(b, scope)
    this.fromClause(b["fromClause"], scope)
    this.assignments(b["targetList"], target, scope)
    this.predicate(b["whereClause"], scope)
    this.returning(b, target, scope, outer === undefined)
  }

  delete(b: Obj, outer: Scope | undefined): void {
    const scope = newScope(outer)
    this.withClause(b["withClause"], scope)
    this.dml("DeleteStmt")
    const target = this.target(b, scope)
    this.fromClause(b["usingClause"], scope)
    this.predicate(b["whereClause"], scope)
    this.returning(b, target, scope, outer === undefined)
  }

  merge(b: Obj, outer: Scope | undefined): void {
    const scope = newScope(outer)
    this.withClause(b["withClause"], scope)
    this.dml("MergeStmt")
    const target = this.target(b, scope)
    this.fromItem(b["sourceRelation"], scope)
    this.predicate(b["joinCondition"], scope)
    for (const w of list(b["mergeWhenClauses"])) {
      const wc = bodyOf(w, "MergeWhenClause")
      if (wc === undefined) continue
      this.predicate(wc["condition"], scope)
      const command = str(wc["commandType"])
      if (command === "CMD_INSERT") {
        const cols = list(wc["targetList"])
        if (cols.length === 0) this.columnWritten({ relation: target, column: "*" })
        this.assignments(cols, target, scope)
        this.expr(wc["values"], scope)
      } else if (command === "CMD_UPDATE") {
        this.assignments(wc["targetList"], target, scope)
      }
    }
    this.returning(b, target, scope, outer === undefined)
  }

  /** A top-level query in its own scope. */
  statementQuery(node: unknown): void {
    this.query(node, undefined)
  }
}
