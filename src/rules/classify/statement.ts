/**
 * The class of one statement, by what it does. The walker collects relations,
 * columns, functions and effects; this module decides the statement's base
 * class from its kind and lets the effects escalate it:
 *
 *   admin  >  unknown  >  (read or copy-out → write when anything writes)  >  base class
 *
 * An admin function anywhere makes the statement admin; a user-defined
 * function, operator or dynamic SQL makes it unknown (admin wins: a policy
 * that allows unknown must not thereby allow pg_terminate_backend).
 */
import { bodyOf, isObj, isRangeVarBody, list, nameList, num, str, stringNode, unwrap, type Obj } from "./ast.ts"
import type { CursorRef, PreparedRef, RelationRef, StatementClass } from "./types.ts"
import { Walker } from "./walker.ts"

export interface StatementResult {
  readonly cls: StatementClass
  readonly prepared: PreparedRef | undefined
  readonly cursor?: CursorRef
}

const result = (cls: StatementClass, prepared?: PreparedRef): StatementResult => ({ cls, prepared })

/** Apply the walk's effects to a base class. */
export const escalate = (base: StatementClass, w: Walker): StatementClass => {
  const e = w.effects
  if (e.admin) return "admin"
  if (e.unknown) return "unknown"
  if ((base === "read" || base === "copy-out") && (e.dml || e.selectInto || e.rowLocks || e.writeFunction)) return "write"
  return base
}

// ------------------------------------------------------------------ kinds

/** Statements that only change the schema. Their targets (see TARGETS) are written; other relations read. */
const DDL: ReadonlySet<string> = new Set([
  "CreateStmt",
  "AlterTableStmt",
  "IndexStmt",
  "DropStmt",
  "ViewStmt",
  "CreateTableAsStmt",
  "CreateSchemaStmt",
  "CreateSeqStmt",
  "AlterSeqStmt",
  "CreateFunctionStmt",
  "AlterFunctionStmt",
  "CreateTrigStmt",
  "CreateEventTrigStmt",
  "AlterEventTrigStmt",
  "RuleStmt",
  "CreateExtensionStmt",
  "AlterExtensionStmt",
  "AlterExtensionContentsStmt",
  "CommentStmt",
  "SecLabelStmt",
  "RenameStmt",
  "AlterObjectSchemaStmt",
  "AlterObjectDependsStmt",
  "CompositeTypeStmt",
  "CreateEnumStmt",
  "CreateRangeStmt",
  "AlterEnumStmt",
  "AlterTypeStmt",
  "CreateDomainStmt",
  "AlterDomainStmt",
  "DefineStmt",
  "CreateOpClassStmt",
  "CreateOpFamilyStmt",
  "AlterOpFamilyStmt",
  "AlterOperatorStmt",
  "CreateCastStmt",
  "CreateTransformStmt",
  "CreateConversionStmt",
  "CreatePLangStmt",
  "CreateAmStmt",
  "CreateStatsStmt",
  "AlterStatsStmt",
  "AlterTSDictionaryStmt",
  "AlterTSConfigurationStmt",
  "CreateFdwStmt",
  "AlterFdwStmt",
  "CreateForeignServerStmt",
  "AlterForeignServerStmt",
  "CreateForeignTableStmt",
  "ImportForeignSchemaStmt",
  "CreatedbStmt",
  "AlterDatabaseStmt",
  "AlterDatabaseSetStmt",
  "AlterDatabaseRefreshCollStmt",
  "DropdbStmt",
  "AlterCollationStmt",
  "ReplicaIdentityStmt",
  "AlterTableMoveAllStmt",
  "AlterTableSpaceOptionsStmt",
  "DropTableSpaceStmt",
  "CreatePublicationStmt",
  "AlterPublicationStmt",
  "DropOwnedStmt",
  "ClusterStmt",
  "ReindexStmt",
])

/** Statements about who may do what. */
const DCL: ReadonlySet<string> = new Set([
  "GrantStmt",
  "GrantRoleStmt",
  "CreateRoleStmt",
  "AlterRoleStmt",
  "AlterRoleSetStmt",
  "DropRoleStmt",
  "AlterDefaultPrivilegesStmt",
  "ReassignOwnedStmt",
  "AlterOwnerStmt",
  "CreatePolicyStmt",
  "AlterPolicyStmt",
  "CreateUserMappingStmt",
  "AlterUserMappingStmt",
  "DropUserMappingStmt",
])

/** Statements that act on the server itself. */
const ADMIN: ReadonlyMap<string, string> = new Map([
  ["AlterSystemStmt", "ALTER SYSTEM changes the server's configuration file"],
  ["LoadStmt", "LOAD loads a shared library into the server"],
  ["CheckPointStmt", "CHECKPOINT forces a server-wide checkpoint"],
  ["CreateTableSpaceStmt", "CREATE TABLESPACE uses a server directory"],
  ["CreateSubscriptionStmt", "a subscription connects to another server"],
  ["AlterSubscriptionStmt", "a subscription connects to another server"],
  ["DropSubscriptionStmt", "a subscription connects to another server"],
])

/** Fields that name the relation a DDL/DCL statement changes (a RangeVar body, or a list of RangeVar nodes). */
const TARGETS: Readonly<Record<string, ReadonlyArray<string>>> = {
  CreateStmt: ["relation"],
  AlterTableStmt: ["relation"],
  IndexStmt: ["relation"],
  ViewStmt: ["view"],
  RefreshMatViewStmt: ["relation"],
  CreateSeqStmt: ["sequence"],
  AlterSeqStmt: ["sequence"],
  CreateTrigStmt: ["relation"],
  RuleStmt: ["relation"],
  RenameStmt: ["relation"],
  AlterObjectSchemaStmt: ["relation"],
  AlterObjectDependsStmt: ["relation"],
  CompositeTypeStmt: ["typevar"],
  ClusterStmt: ["relation"],
  ReindexStmt: ["relation"],
  CreatePolicyStmt: ["table"],
  AlterPolicyStmt: ["table"],
  GrantStmt: ["objects"],
  TruncateStmt: ["relations"],
  LockStmt: ["relations"],
}

/**
 * Definitions: their expressions are stored, not run, when the statement runs
 * (CREATE FUNCTION, VIEW, RULE, TRIGGER, POLICY, TABLE defaults and checks).
 * Functions in them are reported but do not change the class.
 */
const DEFINITIONS: ReadonlySet<string> = new Set([
  "CreateFunctionStmt",
  "ViewStmt",
  "RuleStmt",
  "CreateTrigStmt",
  "CreatePolicyStmt",
  "AlterPolicyStmt",
  "CreateStmt",
  "CreateForeignTableStmt",
  "CreateDomainStmt",
])

/** DROP of these object types names relations. */
const DROPPED_RELATIONS: ReadonlySet<string> = new Set([
  "OBJECT_TABLE",
  "OBJECT_VIEW",
  "OBJECT_MATVIEW",
  "OBJECT_SEQUENCE",
  "OBJECT_INDEX",
  "OBJECT_FOREIGN_TABLE",
])

/** GUCs that only a superuser (or a privileged role) should touch, or that hide or disable checks. */
const ADMIN_SETTINGS: ReadonlySet<string> = new Set([
  "session_replication_role",
  "allow_system_table_mods",
  "allow_in_place_tablespaces",
  "ignore_system_indexes",
  "ignore_checksum_failure",
  "ignore_invalid_pages",
  "zero_damaged_pages",
  "session_preload_libraries",
  "local_preload_libraries",
  "dynamic_library_path",
  "log_statement",
  "log_min_duration_statement",
  "log_min_messages",
  "log_min_error_statement",
  "log_duration",
  "log_statement_sample_rate",
  "log_transaction_sample_rate",
  "log_parameter_max_length",
  "lo_compat_privileges",
  "temp_file_limit",
])

/** GUCs that change how the server reads SQL text: a value other than the ones listed would let it parse differently from the classifier. */
const PARSER_SETTINGS: ReadonlyMap<string, (value: string) => boolean> = new Map([
  ["standard_conforming_strings", (v) => ["on", "true", "yes", "t", "y", "1"].includes(v.toLowerCase())],
  ["client_encoding", (v) => ["utf8", "unicode"].includes(v.toLowerCase().replace(/[^a-z0-9]/g, ""))],
])

const LOCK_MODES = [
  "",
  "ACCESS SHARE",
  "ROW SHARE",
  "ROW EXCLUSIVE",
  "SHARE UPDATE EXCLUSIVE",
  "SHARE",
  "SHARE ROW EXCLUSIVE",
  "EXCLUSIVE",
  "ACCESS EXCLUSIVE",
]

// ------------------------------------------------------------------ helpers

const relationFromNames = (names: ReadonlyArray<string>): RelationRef | undefined => {
  const name = names[names.length - 1]
  if (name === undefined || names.length > 3) return undefined
  return { schema: names.length >= 2 ? names[names.length - 2] : undefined, name }
}

/** Write the target fields; walk everything else (nested RangeVars are read). */
const targetsAndRest = (tag: string, b: Obj, w: Walker): void => {
  const targets = TARGETS[tag] ?? []
  for (const key in b) {
    const v = b[key]
    if (targets.includes(key)) {
      if (isRangeVarBody(v)) {
        w.write(w.relationOf(v))
        continue
      }
      if (Array.isArray(v) && v.every((x) => bodyOf(x, "RangeVar") !== undefined)) {
        for (const x of v) {
          const rv = bodyOf(x, "RangeVar")
          if (rv !== undefined) w.write(w.relationOf(rv))
        }
        continue
      }
    }
    w.expr(v, undefined)
  }
}

/** EXPLAIN's analyze option: absent → false; no value, a non-false value or an unreadable one → true (it runs). */
const explainAnalyzes = (options: unknown): boolean => {
  let analyze = false
  for (const o of list(options)) {
    const d = bodyOf(o, "DefElem")
    if (d === undefined || str(d["defname"]) !== "analyze") continue
    const arg = d["arg"]
    if (arg === undefined) {
      analyze = true
      continue
    }
    const s = stringNode(arg)
    if (s !== undefined) {
      analyze = !["off", "false", "no", "0", "f", "n", "of", "fa", "fal", "fals"].includes(s.toLowerCase())
      continue
    }
    const i = bodyOf(arg, "Integer")
    if (i !== undefined) {
      analyze = (num(i["ival"]) ?? 0) !== 0
      continue
    }
    analyze = true
  }
  return analyze
}

const setStatement = (b: Obj, w: Walker, verb: string): StatementClass => {
  const kind = str(b["kind"]) ?? ""
  if (kind === "VAR_RESET_ALL") {
    w.reason("RESET ALL also resets the session's role")
    return "dcl"
  }
  if (kind === "VAR_SET_MULTI") return "transaction"
  const name = (str(b["name"]) ?? "").toLowerCase()
  const doing = kind === "VAR_RESET" ? `RESET ${name}` : `${verb} ${name}`
  if (name === "role" || name === "session_authorization") {
    w.reason(`${doing} changes the session's identity`)
    return "dcl"
  }
  const safe = PARSER_SETTINGS.get(name)
  if (safe !== undefined) {
    const value = kind === "VAR_SET_VALUE" ? w.constString(list(b["args"])[0]) : undefined
    if (value !== undefined && safe(value)) return "utility"
    w.reason(`${doing} changes how the server reads SQL text, so it could parse statements differently from the gateway`)
    return "admin"
  }
  if (ADMIN_SETTINGS.has(name)) {
    w.reason(`${doing} is a privileged setting`)
    return "admin"
  }
  if (name === "search_path") w.reason("changes search_path: unqualified names may resolve to other schemas")
  w.expr(b["args"], undefined)
  return "utility"
}

// ------------------------------------------------------------------ the dispatch

/** Classify one statement node (RawStmt.stmt), walking it with `w`. */
export const classifyStatement = (node: unknown, w: Walker): StatementResult => {
  const u = unwrap(node)
  if (u === undefined) {
    w.unknown("the parser returned a statement the classifier cannot read")
    return result("unknown")
  }
  const [tag, b] = u
  switch (tag) {
    case "SelectStmt":
    case "InsertStmt":
    case "UpdateStmt":
    case "DeleteStmt":
    case "MergeStmt":
      w.statementQuery(node)
      return result(escalate("read", w))

    case "VariableShowStmt":
      return result("read")

    case "ExplainStmt": {
      if (explainAnalyzes(b["options"])) {
        w.reason("EXPLAIN ANALYZE runs the statement")
        const inner = classifyStatement(b["query"], w)
        return result(escalate(inner.cls, w), inner.prepared)
      }
      w.reason("EXPLAIN without ANALYZE plans the statement without running it")
      const mode = w.mode
      if (mode === "run") w.mode = "plan"
      // its output is the plan: no value of the statement reaches it
      const projecting = w.projecting
      w.projecting = false
      const inner = classifyStatement(b["query"], w)
      w.mode = mode
      w.projecting = projecting
      return result(w.effects.unknown ? "unknown" : "read", inner.prepared)
    }

    case "CopyStmt": {
      const rv = b["relation"]
      const rel = isRangeVarBody(rv) ? w.relationOf(rv) : undefined
      const isFrom = b["is_from"] === true
      const columns = list(b["attlist"]).map(stringNode).filter((c): c is string => c !== undefined)
      if (rel !== undefined) {
        if (isFrom) {
          w.write(rel)
          for (const c of columns.length > 0 ? columns : ["*"]) w.columnWritten({ relation: rel, column: c })
        } else {
          w.read(rel)
          for (const c of columns.length > 0 ? columns : ["*"]) {
            w.columnRead({ relation: rel, column: c })
            w.columnProjected({ relation: rel, column: c })
          }
        }
      }
      if (b["query"] !== undefined) w.statementQuery(b["query"])
      w.predicate(b["whereClause"], undefined)
      if (b["is_program"] === true) {
        w.admin(`COPY ${isFrom ? "FROM" : "TO"} PROGRAM runs a program on the server`)
        return result("admin")
      }
      if (b["filename"] !== undefined) {
        w.admin(`COPY ${isFrom ? "FROM" : "TO"} a file on the server`)
        return result("admin")
      }
      if (isFrom) return result(escalate("copy-in", w))
      const cls = escalate("copy-out", w)
      if (cls === "write") w.reason("COPY (query) TO STDOUT runs a query that writes")
      return result(cls)
    }

    case "PrepareStmt": {
      const name = str(b["name"]) ?? ""
      w.reason(`PREPARE ${name}: classified by its body`)
      const inner = classifyStatement(b["query"], w)
      return result(inner.cls, { kind: "prepare", name })
    }

    case "ExecuteStmt": {
      const name = str(b["name"]) ?? ""
      w.reason(`EXECUTE ${name} runs a prepared statement (classified when it was prepared)`)
      w.expr(b["params"], undefined)
      return result(escalate("unknown", w), { kind: "execute", name })
    }

    case "DeallocateStmt":
      return result("utility", { kind: "deallocate", name: b["isall"] === true ? "" : (str(b["name"]) ?? "") })

    case "DeclareCursorStmt": {
      const name = str(b["portalname"]) ?? ""
      w.reason(`DECLARE ${name}: its query runs as the cursor is fetched`)
      const inner = classifyStatement(b["query"], w)
      return { cls: inner.cls, prepared: undefined, cursor: { kind: "declare", name } }
    }

    case "FetchStmt": {
      const name = str(b["portalname"]) ?? ""
      w.reason(`${b["ismove"] === true ? "MOVE" : "FETCH"} reads from cursor ${name} (classified at DECLARE)`)
      return { cls: "read", prepared: undefined, cursor: { kind: "fetch", name } }
    }

    case "ClosePortalStmt":
      // no portalname: CLOSE ALL
      return { cls: "utility", prepared: undefined, cursor: { kind: "close", name: str(b["portalname"]) ?? "" } }

    case "TransactionStmt":
    case "ConstraintsSetStmt":
      return result("transaction")

    case "VariableSetStmt":
      return result(escalate(setStatement(b, w, "SET"), w))

    case "DiscardStmt":
      if (str(b["target"]) === "DISCARD_ALL") {
        w.reason("DISCARD ALL also resets the session's role and deallocates every prepared statement")
        return result("dcl", { kind: "deallocate", name: "" })
      }
      return result("utility")

    case "ListenStmt":
    case "UnlistenStmt":
    case "NotifyStmt":
      return result("utility")

    case "VacuumStmt":
      for (const r of list(b["rels"])) {
        const vr = bodyOf(r, "VacuumRelation")
        const rv = vr?.["relation"]
        if (vr === undefined || !isRangeVarBody(rv)) continue
        const rel = w.relationOf(rv)
        w.read(rel)
        for (const c of list(vr["va_cols"])) {
          const col = stringNode(c)
          if (col !== undefined) w.columnRead({ relation: rel, column: col })
        }
      }
      return result("utility")

    case "LockStmt": {
      const mode = num(b["mode"]) ?? 8
      const shared = mode <= 1
      for (const r of list(b["relations"])) {
        const rv = bodyOf(r, "RangeVar")
        if (rv === undefined) continue
        if (shared) w.read(w.relationOf(rv))
        else w.write(w.relationOf(rv))
      }
      w.effects.locks = true
      w.reason(`LOCK ... IN ${LOCK_MODES[mode] ?? "ACCESS EXCLUSIVE"} MODE takes a table lock`)
      return result(shared ? "read" : "write")
    }

    case "TruncateStmt":
      targetsAndRest(tag, b, w)
      w.reason("TRUNCATE deletes every row")
      if (str(b["behavior"]) === "DROP_CASCADE") w.reason("TRUNCATE ... CASCADE also empties tables that reference these")
      return result(escalate("write", w))

    case "RefreshMatViewStmt":
      targetsAndRest(tag, b, w)
      w.reason("REFRESH MATERIALIZED VIEW recomputes the view's rows (runs its query)")
      return result(escalate("write", w))

    case "DoStmt":
      w.unknown("DO runs procedural code the classifier cannot see")
      return result(escalate("unknown", w))

    case "CallStmt":
      w.unknown("CALL runs a procedure")
      w.expr(b["funccall"] === undefined ? undefined : { FuncCall: b["funccall"] }, undefined)
      return result(escalate("unknown", w))

    case "AlterRoleSetStmt": {
      // ALTER ROLE ... SET: dcl whatever the setting
      w.expr(b["setstmt"], undefined)
      return result("dcl")
    }

    case "CreateTableAsStmt": {
      const into = b["into"]
      if (isObj(into) && isRangeVarBody(into["rel"])) w.write(w.relationOf(into["rel"]))
      w.statementQuery(b["query"])
      return result(escalate("ddl", w))
    }

    case "CreateForeignTableStmt": {
      const base = b["base"]
      if (isObj(base) && isRangeVarBody(base["relation"])) w.write(w.relationOf(base["relation"]))
      const mode = w.mode
      w.mode = "define"
      for (const key in b) if (key !== "base") w.expr(b[key], undefined)
      if (isObj(base)) for (const key in base) if (key !== "relation") w.expr(base[key], undefined)
      w.mode = mode
      return result(escalate("ddl", w))
    }

    case "DropStmt": {
      const removeType = str(b["removeType"]) ?? ""
      if (DROPPED_RELATIONS.has(removeType)) {
        for (const o of list(b["objects"])) {
          const names = nameList(bodyOf(o, "List")?.["items"])
          const rel = names === undefined ? undefined : relationFromNames(names)
          if (rel !== undefined) w.write(rel)
        }
      }
      if (str(b["behavior"]) === "DROP_CASCADE") w.reason("DROP ... CASCADE also drops dependent objects")
      return result("ddl")
    }

    case "CreateSchemaStmt": {
      // CREATE SCHEMA ... CREATE TABLE ...: the elements are statements of their own
      for (const e of list(b["schemaElts"])) {
        const inner = classifyStatement(e, w)
        if (inner.cls !== "ddl" && inner.cls !== "dcl") w.unknown("CREATE SCHEMA contains an unexpected statement")
      }
      return result(escalate("ddl", w))
    }
  }

  const adminReason = ADMIN.get(tag)
  if (adminReason !== undefined) {
    if (tag === "AlterSystemStmt") w.expr(b["setstmt"], undefined)
    w.reason(adminReason)
    return result("admin")
  }

  if (DDL.has(tag) || DCL.has(tag)) {
    const mode = w.mode
    if (DEFINITIONS.has(tag)) w.mode = "define"
    targetsAndRest(tag, b, w)
    w.mode = mode
    return result(escalate(DCL.has(tag) ? "dcl" : "ddl", w))
  }

  w.unknown(`${tag} is not a statement the classifier knows`)
  return result("unknown")
}
