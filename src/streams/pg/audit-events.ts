/** The audit payloads a PG session emits, built from what the stages decided and saw. */
import type { RelationRef } from "../../rules/classify/index.ts"
import type { Payload } from "../../sinks/events.ts"
import type { StatementResult } from "./responses.ts"
import type { Audited } from "./stages.ts"

const qualified = (r: { readonly schema: string | undefined; readonly name: string }): string =>
  r.schema === undefined ? r.name : `${r.schema}.${r.name}`

const unique = (refs: ReadonlyArray<RelationRef>): Array<string> => [...new Set(refs.map(qualified))]

export const statementEvents = (a: Audited, policyVersion: string): ReadonlyArray<Payload> => [
  {
    _tag: "Statement",
    statementId: a.id,
    text: a.statement.text,
    fingerprint: a.statement.fingerprint,
    statementClass: a.statement.class,
    relationsRead: unique(a.statement.reads),
    relationsWritten: unique(a.statement.writes),
    functions: [...new Set(a.statement.functions.map(qualified))],
    via: a.via
  },
  { _tag: "Decision", statementId: a.id, verdict: a.verdict, ruleId: a.ruleId, reason: a.reason, policyVersion }
]

export const resultEvent = (r: StatementResult): Payload => ({ _tag: "Result", ...r })
