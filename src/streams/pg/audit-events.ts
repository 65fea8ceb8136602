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
  if (text.length * 3 <= limit) return text // a UTF-16 unit is at most 3 bytes of UTF-8: no need to count
  const bytes = Buffer.byteLength(text, "utf8")
  if (bytes <= limit) return text
  let head = Buffer.from(text, "utf8").subarray(0, limit).toString("utf8")
  if (head.endsWith("\uFFFD")) head = head.slice(0, -1) // a character cut in two
  return `${head}… [statement text cut: ${bytes} bytes in all]`
}

/**
 * Names up to `limit` bytes in all, then one `… and N more`: a statement naming thousands
 * of relations must not make an event too big to deliver, any more than a long text.
 */
export const capNames = (names: ReadonlyArray<string>, limit: number): ReadonlyArray<string> => {
  let bytes = 0
  for (let i = 0; i < names.length; i++) {
    bytes += Buffer.byteLength(names[i]!, "utf8")
    if (bytes > limit) return [...names.slice(0, i), `… and ${names.length - i} more`]
  }
  return names
}

export const statementEvents = (a: Audited, policy: LoadedPolicy): ReadonlyArray<Payload> => {
  const limit = policy.policy.auditTextBytes
  return [
    {
      _tag: "Statement",
      statementId: a.id,
      text: capText(policy.policy.auditLiterals === "redact" ? redactLiterals(a.statement.text) : a.statement.text, limit),
      fingerprint: a.statement.fingerprint,
      statementClass: a.statement.class,
      relationsRead: capNames(unique(a.statement.reads), limit),
      relationsWritten: capNames(unique(a.statement.writes), limit),
      functions: capNames([...new Set(a.statement.functions.map(qualified))], limit),
      via: a.via
    },
    { _tag: "Decision", statementId: a.id, verdict: a.verdict, ruleId: a.ruleId, reason: a.reason, policyVersion: policy.version }
  ]
}
