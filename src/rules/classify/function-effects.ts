/**
 * What calling a function does to a statement's class.
 *
 * Built-in functions come from the generated table (pg-functions.ts, read from
 * a real server's pg_catalog). A name that is not there, or that is qualified
 * with a schema other than pg_catalog, is a user-defined function: it could
 * do anything, so the statement becomes "unknown".
 */
import { PG_FUNCTIONS, PG_OPERATORS } from "./pg-functions.ts"
import type { FunctionRef } from "./types.ts"

export type FunctionEffect =
  /** Touches the server: files, programs, other backends, configuration, replication. */
  | { readonly _tag: "admin"; readonly reason: string }
  /** Changes data or state other sessions see. */
  | { readonly _tag: "write"; readonly reason: string }
  /** Takes a lock (advisory locks): `locks` is set, the class is kept. */
  | { readonly _tag: "lock"; readonly reason: string }
  /** Runs SQL given as text, or reads relations named at run time: cannot be seen. */
  | { readonly _tag: "dynamic"; readonly reason: string }
  /** Not a built-in: could do anything. */
  | { readonly _tag: "user-defined"; readonly reason: string }
  /** A built-in that keeps the statement's class. */
  | { readonly _tag: "none" }

/** Admin functions, by exact name (any schema: a same-named function elsewhere is no safer). */
export const ADMIN_FUNCTIONS: ReadonlySet<string> = new Set([
  // other backends
  "pg_terminate_backend",
  "pg_cancel_backend",
  "pg_signal_backend",
  "pg_log_backend_memory_contexts",
  // server files and programs
  "pg_read_file",
  "pg_read_file_old",
  "pg_read_binary_file",
  "pg_ls_dir",
  "pg_ls_logdir",
  "pg_ls_waldir",
  "pg_ls_tmpdir",
  "pg_ls_archive_statusdir",
  "pg_ls_logicalsnapdir",
  "pg_ls_logicalmapdir",
  "pg_ls_replslotdir",
  "pg_ls_summariesdir",
  "pg_stat_file",
  "pg_current_logfile",
  "lo_import",
  "lo_export",
  // adminpack
  "pg_file_write",
  "pg_file_rename",
  "pg_file_unlink",
  "pg_file_sync",
  "pg_logdir_ls",
  // configuration
  "pg_reload_conf",
  "set_config",
  "pg_rotate_logfile",
  "pg_rotate_logfile_old",
  "pg_import_system_collations",
  // WAL, backup, recovery
  "pg_switch_wal",
  "pg_switch_xlog",
  "pg_create_restore_point",
  "pg_backup_start",
  "pg_backup_stop",
  "pg_start_backup",
  "pg_stop_backup",
  "pg_promote",
  "pg_wal_replay_pause",
  "pg_wal_replay_resume",
  "pg_xlog_replay_pause",
  "pg_xlog_replay_resume",
  "pg_log_standby_snapshot",
  // replication slots and origins, logical decoding
  "pg_create_physical_replication_slot",
  "pg_create_logical_replication_slot",
  "pg_drop_replication_slot",
  "pg_copy_physical_replication_slot",
  "pg_copy_logical_replication_slot",
  "pg_replication_slot_advance",
  "pg_sync_replication_slots",
  "pg_logical_slot_get_changes",
  "pg_logical_slot_get_binary_changes",
  "pg_logical_slot_peek_changes",
  "pg_logical_slot_peek_binary_changes",
  "pg_logical_emit_message",
  "pg_replication_origin_create",
  "pg_replication_origin_drop",
  "pg_replication_origin_advance",
  "pg_replication_origin_session_setup",
  "pg_replication_origin_session_reset",
  "pg_replication_origin_xact_setup",
  "pg_replication_origin_xact_reset",
  // statistics counters
  "pg_stat_reset",
  "pg_stat_reset_shared",
  "pg_stat_reset_single_table_counters",
  "pg_stat_reset_single_function_counters",
  "pg_stat_reset_slru",
  "pg_stat_reset_replication_slot",
  "pg_stat_reset_subscription_stats",
  "pg_stat_reset_backend_stats",
  "pg_stat_statements_reset",
])

/** Name prefixes that are admin in any schema: dblink opens connections to other servers; binary_upgrade_* rewrites catalogs. */
export const ADMIN_PREFIXES: ReadonlyArray<string> = ["dblink", "binary_upgrade_", "pg_stat_reset"]

/** Built-ins that change data or state other sessions see. */
export const WRITE_FUNCTIONS: ReadonlyMap<string, string> = new Map([
  ["nextval", "advances a sequence"],
  ["setval", "sets a sequence"],
  ["lo_create", "creates a large object"],
  ["lo_creat", "creates a large object"],
  ["lo_from_bytea", "creates a large object"],
  ["lo_unlink", "deletes a large object"],
  ["lowrite", "writes a large object"],
  ["lo_put", "writes a large object"],
  ["lo_truncate", "truncates a large object"],
  ["lo_truncate64", "truncates a large object"],
  ["pg_notify", "sends a notification"],
  ["brin_summarize_new_values", "changes a BRIN index"],
  ["brin_summarize_range", "changes a BRIN index"],
  ["brin_desummarize_range", "changes a BRIN index"],
  ["gin_clean_pending_list", "changes a GIN index"],
  ["pg_restore_relation_stats", "changes planner statistics"],
  ["pg_restore_attribute_stats", "changes planner statistics"],
  ["pg_clear_relation_stats", "changes planner statistics"],
  ["pg_clear_attribute_stats", "changes planner statistics"],
])

/** Advisory locks: `locks: true`, class kept (they lock no rows; see README of the classifier). */
export const LOCK_FUNCTIONS: ReadonlySet<string> = new Set([
  "pg_advisory_lock",
  "pg_advisory_lock_shared",
  "pg_advisory_xact_lock",
  "pg_advisory_xact_lock_shared",
  "pg_try_advisory_lock",
  "pg_try_advisory_lock_shared",
  "pg_try_advisory_xact_lock",
  "pg_try_advisory_xact_lock_shared",
])

/** Built-ins that run SQL given as text or read relations named at run time. */
export const DYNAMIC_FUNCTIONS: ReadonlyMap<string, string> = new Map([
  ["query_to_xml", "runs SQL given as text"],
  ["query_to_xmlschema", "runs SQL given as text"],
  ["query_to_xml_and_xmlschema", "runs SQL given as text"],
  ["ts_stat", "runs SQL given as text"],
  ["table_to_xml", "reads a table named at run time"],
  ["table_to_xmlschema", "reads a table named at run time"],
  ["table_to_xml_and_xmlschema", "reads a table named at run time"],
  ["schema_to_xml", "reads every table of a schema"],
  ["schema_to_xmlschema", "reads every table of a schema"],
  ["schema_to_xml_and_xmlschema", "reads every table of a schema"],
  ["database_to_xml", "reads every table of the database"],
  ["database_to_xmlschema", "reads every table of the database"],
  ["database_to_xml_and_xmlschema", "reads every table of the database"],
  ["cursor_to_xml", "reads a cursor named at run time"],
  ["cursor_to_xmlschema", "reads a cursor named at run time"],
])

const display = (f: FunctionRef): string => (f.schema === undefined ? f.name : `${f.schema}.${f.name}`)

export const isBuiltinFunction = (f: FunctionRef): boolean =>
  (f.schema === undefined || f.schema === "pg_catalog") && PG_FUNCTIONS.has(f.name)

/** The effect of calling `f`. */
export const functionEffect = (f: FunctionRef): FunctionEffect => {
  const name = f.name
  if (ADMIN_FUNCTIONS.has(name) || ADMIN_PREFIXES.some((p) => name.startsWith(p))) {
    return { _tag: "admin", reason: `calls ${display(f)}` }
  }
  if (!isBuiltinFunction(f)) return { _tag: "user-defined", reason: `calls user-defined function ${display(f)}` }
  const write = WRITE_FUNCTIONS.get(name)
  if (write !== undefined) return { _tag: "write", reason: `calls ${name} (${write})` }
  if (LOCK_FUNCTIONS.has(name)) return { _tag: "lock", reason: `calls ${name} (takes an advisory lock)` }
  const dynamic = DYNAMIC_FUNCTIONS.get(name)
  if (dynamic !== undefined) return { _tag: "dynamic", reason: `calls ${name} (${dynamic})` }
  return { _tag: "none" }
}

/** An operator name (possibly schema-qualified) that is not a pg_catalog operator could run any function. */
export const isBuiltinOperator = (schema: string | undefined, name: string): boolean =>
  (schema === undefined || schema === "pg_catalog") && PG_OPERATORS.has(name)
