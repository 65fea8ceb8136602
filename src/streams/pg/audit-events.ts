/** The audit payloads a PG session emits, built from what the stages decided and saw. */
import type { RelationRef } from "../../rules/classify/index.ts"
import type { LoadedPolicy } from "../../rules/policy/store.ts"
import type { Payload } from "../../sinks/events.ts"
import { redactLiterals } from "../../sinks/redact.ts"
import type { Audited } from "./stages.ts"

const qualified = (r: { readonly schema: string | undefined; readonly name: string }): string =>
  r.schema === undefined ? r.name : `${r.schema}.${r.name}`

const unique = (refs: ReadonlyArray<RelationRef>): Array<string> => [...new Set(refs.map(qualified))]

/**
 * Text cut to `limit` bytes of UTF-8 (on a character boundary), marked as cut and with its
 * full length: an event must stay small enough for Kafka to take it, or nothing after it
 * would ever be delivered. The fingerprint still names the whole statement.
 */
export const capText = (text: string, limit: number): string => {
  const bytes = Buffer.byteLength(text, "utf8")
  if (bytes <= limit) return text
  let head = Buffer.from(text, "utf8").subarray(0, limit).toString("utf8")
  if (head.endsWith("\uFFFD")) head = head.slice(0, -1) // a character cut in two
  return `${head}… [statement text cut: ${bytes} bytes in all]`
}

export const statementEvents = (a: Audited, policy: LoadedPolicy): ReadonlyArray<Payload> => [
  {
    _tag: "Statement",
    statementId: a.id,
    text: capText(policy.policy.auditLiterals === "redact" ? redactLiterals(a.statement.text) : a.statement.text, policy.policy.auditTextBytes),
    fingerprint: a.statement.fingerprint,
    statementClass: a.statement.class,
    relationsRead: unique(a.statement.reads),
    relationsWritten: unique(a.statement.writes),
    functions: [...new Set(a.statement.functions.map(qualified))],
    via: a.via
  },
  { _tag: "Decision", statementId: a.id, verdict: a.verdict, ruleId: a.ruleId, reason: a.reason, policyVersion: policy.version }
]
