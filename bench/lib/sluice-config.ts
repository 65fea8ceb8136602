/**
 * The gateway configs the bench runs Sluice with, made in ONE place: `sluiceConfig`.
 * When the gateway grows a key a variant needs (policy, audit sinks, masking), add it
 * here and nowhere else.
 *
 * Variants:
 *   allow-all       the gateway with a policy that allows everything (the cheapest
 *                   decision) and audit off;
 *   full            classification, a policy with several rules that pgbench's statements
 *                   walk through before one allows them, audit to the file sink (spool,
 *                   then Avro container files); no masks;
 *   full-audit-off  the same policy, audit off;
 *   full-kafka      the same policy, audit to Kafka (spool, then the topic);
 *   full-masked     the same policy plus a mask (`BENCH_MASK`) on bench_big.payload, audit
 *                   to files: `full` with result masking, for the streaming workload.
 * `full`, `full-audit-off` and `full-kafka` differ only in where audit events go, so their
 * difference is the audit's cost; `full` and `full-masked` differ only in the mask, so
 * theirs is the masking's cost. `full` stays unmasked on purpose: the audit comparison
 * must not change with masking.
 */
import { spawnSync } from "node:child_process"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { stringify } from "yaml"
import { hashToken } from "../../src/rules/identity/service-accounts.ts"

/** Each variant's policy and audit destination. */
export const SLUICE_VARIANTS = {
  "allow-all": { policy: "allow-all", audit: "off", masked: false },
  full: { policy: "full", audit: "files", masked: false },
  "full-audit-off": { policy: "full", audit: "off", masked: false },
  "full-kafka": { policy: "full", audit: "kafka", masked: false },
  "full-masked": { policy: "full", audit: "files", masked: true }
} as const satisfies Record<string, { policy: "allow-all" | "full"; audit: "off" | "files" | "kafka"; masked: boolean }>
export type SluiceVariant = keyof typeof SLUICE_VARIANTS

/** Where the `full-kafka` variant ships its audit events. */
export interface AuditKafka {
  readonly brokers: string
  readonly topic: string
}

/** What bench clients send as their password; Sluice knows it as a service account. */
export const SLUICE_TOKEN = "bench-token-3c9e51d07a"
export const SLUICE_USER = "bench"
/** The target name clients put as their database; it maps to the backend database `app`. */
export const SLUICE_TARGET = "app"

export interface Backend {
  readonly host: string
  readonly port: number
  readonly database: string
  readonly user: string
  readonly password: string
}

export interface SluiceConfigOptions {
  readonly variant: SluiceVariant
  readonly port: number
  readonly backend: Backend
  /** A directory of the bench's own, for the policy file and the audit output. */
  readonly dir: string
  /** False for a gateway build that does not know the `policy` key yet. */
  readonly withPolicy: boolean
  /**
   * Whether to write the `audit` key: off, or a spool under `dir` shipped to Avro
   * container files under `dir` or to Kafka, as the variant says. False for a gateway
   * build that does not know the key.
   */
  readonly withAudit: boolean
  /** The broker and topic, for the `full-kafka` variant. */
  readonly kafka?: AuditKafka | undefined
}

/** Lets every statement through, as cheaply as a policy can. */
const ALLOW_ALL_POLICY = {
  version: 1,
  defaults: { "*": { action: "allow" } }
}

/**
 * Several rules, in the order a real deployment writes them: blocks first, then narrow
 * allows. pgbench's SELECT on pgbench_accounts is decided by the fourth rule; `SELECT 1`,
 * the COPY and the cursor by the fourth or fifth. The default blocks, so a statement the
 * rules miss shows up as a broken target rather than as a fast one.
 */
const FULL_POLICY = {
  version: 1,
  defaults: { "*": { action: "block" } },
  rules: [
    { id: "no-secrets", match: { relations: ["secrets.*", "*.credentials"] }, action: "block", message: "secrets are off limits" },
    { id: "no-ddl-for-ci", match: { principal: { groups: ["ci"] }, classes: ["ddl", "dcl", "admin"] }, action: "block" },
    { id: "no-sleep", match: { functions: ["pg_sleep*", "dblink*"] }, action: "block" },
    { id: "bench-reads", match: { principal: { groups: ["bench"] }, classes: ["read"], relations: ["pgbench_*", "bench_*"] }, action: "allow" },
    { id: "bench-copy-out", match: { principal: { groups: ["bench"] }, classes: ["copy-out"], relations: ["bench_*"] }, action: "allow" },
    { id: "sessions", match: { classes: ["transaction", "utility"] }, action: "allow" }
  ]
}

/** The column the `full-masked` variant masks: the text column of bench_big that the streaming workload reads. */
export const MASKED_COLUMN = { table: "public.bench_big", column: "payload" } as const
/** What `redact` makes of every text value (src/rules/masking/methods.ts). */
export const REDACTED = "****"

/**
 * The `full-masked` variant's mask (policy key `masks`). Masking applies to every allowed
 * statement that reads bench_big, whichever rule allowed it: the cursor's SELECT is
 * masked row by row in the gateway, and `COPY bench_big TO STDOUT` is blocked (COPY
 * sends CopyData, which masking cannot rewrite). pgbench's tables are not masked.
 */
const BENCH_MASK = {
  id: "bench-payload",
  description: "the streaming workload's text column, redacted in every row",
  columns: [`${MASKED_COLUMN.table}.${MASKED_COLUMN.column}`],
  method: "redact"
}

/** The `audit` key of a variant: the spool and the shipper's destination live under `dir`. */
const auditConfig = (opts: SluiceConfigOptions): Record<string, unknown> => {
  const { audit } = SLUICE_VARIANTS[opts.variant]
  if (audit === "off") return { enabled: false }
  const spool = { directory: join(opts.dir, "audit-spool") }
  if (audit === "files") return { enabled: true, spool, files: { directory: join(opts.dir, "audit-files") } }
  if (opts.kafka === undefined) throw new Error(`the ${opts.variant} variant needs a Kafka broker and topic (SluiceConfigOptions.kafka)`)
  return { enabled: true, spool, kafka: { brokers: opts.kafka.brokers.split(","), topic: opts.kafka.topic, clientId: "sluice-bench" } }
}

/** The config object (written as YAML) and the files it refers to, written into `dir`. */
export const sluiceConfig = (opts: SluiceConfigOptions): { file: string; notes: string[] } => {
  const notes: string[] = []
  const config: Record<string, unknown> = {
    listen: { host: "127.0.0.1", port: opts.port, loopbackOnly: true },
    targets: [
      {
        name: SLUICE_TARGET,
        host: opts.backend.host,
        port: opts.backend.port,
        database: opts.backend.database,
        user: opts.backend.user,
        password: { value: opts.backend.password }
      }
    ],
    identities: {
      serviceAccounts: [{ name: SLUICE_USER, tokenHash: hashToken(SLUICE_TOKEN), groups: ["bench"] }]
    },
    // 1,000 idle connections log in at once in the memory workload
    limits: { loginTimeoutMs: 60_000, connectTimeoutMs: 30_000 }
  }
  const fullPolicy = SLUICE_VARIANTS[opts.variant].policy === "full"
  if (opts.withPolicy) {
    const policyFile = join(opts.dir, `policy-${opts.variant}.yaml`)
    const policy = fullPolicy ? FULL_POLICY : ALLOW_ALL_POLICY
    writeFileSync(policyFile, stringify(SLUICE_VARIANTS[opts.variant].masked ? { ...policy, masks: [BENCH_MASK] } : policy))
    config.policy = { file: policyFile }
  }
  if (opts.withAudit) config.audit = auditConfig(opts)
  if (SLUICE_VARIANTS[opts.variant].masked) notes.push(`mask ${BENCH_MASK.id}: ${BENCH_MASK.columns.join(", ")} (${BENCH_MASK.method}) in every result`)
  const file = join(opts.dir, `sluice-${opts.variant}.yaml`)
  writeFileSync(file, stringify(config))
  return { file, notes }
}

const BIN = new URL("../../bin/sluice.js", import.meta.url).pathname
export const SLUICE_BIN = BIN

/** `sluice check-config FILE`: null when the gateway accepts it, else its message. */
export const checkConfig = (file: string): string | null => {
  const r = spawnSync(process.execPath, [BIN, "check-config", file], { encoding: "utf8", timeout: 60_000 })
  return r.status === 0 ? null : `${r.stdout}${r.stderr}`.trim() || `check-config exited ${r.status ?? r.signal}`
}
