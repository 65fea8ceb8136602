/**
 * The policies the bypass corpus runs under. Rule ids appear in the block messages, so a
 * case can say which rule must have stopped it.
 */
import { S, SECRET } from "./fixture.ts"

export const MAX_STATEMENT_BYTES = 1_000_000

/**
 * Reads allowed everywhere except the secret schema (the example policy's shape); writes
 * allowed only to `log` and to the uppercase `"Accounts"`, and DDL only in scratch
 * schemas (pg_temp, sluice_bypass_scratch); admin, dcl and admin functions blocked;
 * everything else, unknown included, blocked by the default.
 */
export const MAIN_POLICY = {
  version: 1,
  maxStatementBytes: MAX_STATEMENT_BYTES,
  defaults: { "*": { action: "block", message: "not allowed by the bypass corpus policy" } },
  rules: [
    { id: "bp-no-secret", match: { relations: [`${SECRET}.*`] }, action: "block", message: "the secret schema is off limits" },
    {
      id: "bp-no-admin-functions",
      match: { functions: ["pg_terminate_backend", "pg_cancel_backend", "pg_read_file", "pg_read_binary_file", "set_config"] },
      action: "block",
      message: "admin functions are blocked"
    },
    { id: "bp-no-admin", match: { classes: ["admin", "dcl"] }, action: "block", message: "administrative statements are blocked" },
    { id: "bp-scratch-ddl", match: { classes: ["ddl"], relations: ["pg_temp.*", "sluice_bypass_scratch.*"] }, action: "allow" },
    {
      id: "bp-scratch-writes",
      match: { classes: ["write", "copy-in"], relations: ["pg_temp.*", "sluice_bypass_scratch.*", `${S}.log`, `${S}.Accounts`] },
      action: "allow"
    },
    { id: "bp-reads", match: { classes: ["read", "copy-out", "transaction", "utility"] }, action: "allow" }
  ]
}

/**
 * A looser policy that allows statements of unknown effect (DO blocks, user functions),
 * but still blocks admin and dcl, and the admin functions by name. The classifier's
 * promise: "admin wins over unknown, so that a policy allowing unknown never thereby
 * allows pg_terminate_backend".
 */
export const UNKNOWN_ALLOWED_POLICY = {
  version: 1,
  maxStatementBytes: MAX_STATEMENT_BYTES,
  defaults: { "*": { action: "block", message: "not allowed by the bypass corpus policy" } },
  rules: [
    { id: "bpu-no-secret", match: { relations: [`${SECRET}.*`] }, action: "block", message: "the secret schema is off limits" },
    {
      id: "bpu-no-admin-functions",
      match: { functions: ["pg_terminate_backend", "pg_cancel_backend", "pg_read_file", "lo_*"] },
      action: "block",
      message: "admin functions are blocked"
    },
    { id: "bpu-no-admin", match: { classes: ["admin", "dcl"] }, action: "block", message: "administrative statements are blocked" },
    { id: "bpu-allow", match: { classes: ["read", "copy-out", "transaction", "utility", "unknown"] }, action: "allow" }
  ]
}
