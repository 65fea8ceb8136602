/** The audit payloads a PG session emits, built from what the stages decided and saw. */
import type { RelationRef } from "../../rules/classify/index.ts"
import type { LoadedPolicy } from "../../rules/policy/store.ts"
import type { Payload } from "../../sinks/events.ts"
import { redactLiterals } from "../../sinks/redact.ts"
import type { Audited } from "./stages.ts"

const qualified = (r: { readonly schema: string | undefined; readonly name: string }): string =>
  r.schema === undefined ? r.name : `${r.schema}.${r.name}`

const unique = (refs: ReadonlyArray<RelationRef>): Array<string> => [...new Set(refs.map(qualified))]

export const statementEvents = (a: Audited, policy: LoadedPolicy): ReadonlyArray<Payload> => [
  {
    _tag: "Statement",
    statementId: a.id,
    text: policy.policy.auditLiterals === "redact" ? redactLiterals(a.statement.text) : a.statement.text,
    fingerprint: a.statement.fingerprint,
    statementClass: a.statement.class,
    relationsRead: unique(a.statement.reads),
    relationsWritten: unique(a.statement.writes),
    functions: [...new Set(a.statement.functions.map(qualified))],
    via: a.via
  },
  { _tag: "Decision", statementId: a.id, verdict: a.verdict, ruleId: a.ruleId, reason: a.reason, policyVersion: policy.version }
]
