/**
 * Audit events: what every stage reports, in the shape SIEM teams consume. Field names
 * follow OCSF Datastore Activity (class 6005) where it fits; the README maps them.
 * The Avro schema in schemas/ is the wire form of exactly this type.
 */

export type Verdict = "allow" | "block" | "mask" | "hold" | "approved" | "denied" | "timeout"

export interface Actor {
  /** The principal's subject: a service account name or a token's subject claim. */
  readonly subject: string
  readonly kind: "machine" | "human"
  /** The identity provider: `static` or the token's issuer. */
  readonly issuer: string
  readonly groups: ReadonlyArray<string>
}

export interface SessionStart {
  readonly _tag: "SessionStart"
  readonly actor: Actor
  readonly clientAddress: string
  readonly clientPort: number
  /** The user name the client sent; informational, never a backend role. */
  readonly clientUser: string
  readonly applicationName: string | null
  readonly tls: boolean
  readonly protocol: "postgresql" | "mongodb"
  readonly targetName: string
  readonly targetDatabase: string
  /** The backend role Sluice logged in as; never a credential. */
  readonly backendUser: string
}

export interface SessionEnd {
  readonly _tag: "SessionEnd"
  readonly reason: string
  readonly durationMicros: number
  readonly bytesFromClient: number
  readonly bytesToClient: number
  readonly statements: number
}

export interface Statement {
  readonly _tag: "Statement"
  /** Which statement this is within the session, for Decision and Result events to refer to. */
  readonly statementId: number
  /** The text, or with literals replaced by placeholders when the policy asks. */
  readonly text: string
  readonly fingerprint: string
  readonly statementClass: string
  readonly relationsRead: ReadonlyArray<string>
  readonly relationsWritten: ReadonlyArray<string>
  readonly functions: ReadonlyArray<string>
  readonly via: "simple" | "extended" | "function-call"
}

export interface Decision {
  readonly _tag: "Decision"
  readonly statementId: number
  readonly verdict: Verdict
  readonly ruleId: string
  readonly reason: string | null
  readonly policyVersion: string
}

export interface Result {
  readonly _tag: "Result"
  readonly statementId: number
  readonly rows: number
  readonly bytes: number
  readonly durationMicros: number
  /** 00000 on success. */
  readonly sqlstate: string
  readonly commandTag: string | null
}

export interface RecordedColumn {
  readonly name: string
  /** The PostgreSQL type OID. */
  readonly typeOid: number
  /** Binary-format values are bytes as the server sent them; text-format values are strings. */
  readonly binary: boolean
}

/** SQL NULL, a text-format value, or a binary-format value (or one whose format is unknown). */
export type RecordedValue = string | Buffer | null

/**
 * Session recording: the first rows of a statement's result as the client received them,
 * up to the policy's caps. Emitted just before the statement's Result.
 */
export interface RecordedRows {
  readonly _tag: "RecordedRows"
  readonly statementId: number
  /** Empty when the server never described the rows to this session; the values are then bytes. */
  readonly columns: ReadonlyArray<RecordedColumn>
  readonly rows: ReadonlyArray<ReadonlyArray<RecordedValue>>
  /** A cap stopped the capture before the result ended (Result.rows has the full count). */
  readonly truncated: boolean
}

/** How a mask rewrites a value. */
export type MaskMethod = "redact" | "null" | "partial" | "email"

/** One result column whose values Sluice rewrote. */
export interface MaskedColumn {
  /** The column's name in the result, as the client saw it. */
  readonly name: string
  /** Where its values came from, `schema.table.column`; null for a computed column (an expression over masked columns). */
  readonly source: string | null
  /** The policy mask that applied (its id); `computed` for an expression over masked columns, `unresolved` when Sluice could not tell the column's origin and masked it to fail closed. */
  readonly maskId: string
  readonly method: MaskMethod
  /** Values rewritten (NULLs stay NULL and are not counted). */
  readonly values: number
}

/** What masking did to one statement's result; emitted before the statement's RecordedRows and Result. */
export interface MaskingSummary {
  readonly _tag: "MaskingSummary"
  readonly statementId: number
  readonly columns: ReadonlyArray<MaskedColumn>
  /** Rows in which at least one value was rewritten. */
  readonly rows: number
  /** Server error and notice texts withheld because they could echo a masked value. */
  readonly messagesWithheld: number
}

export type Payload = SessionStart | SessionEnd | Statement | Decision | Result | RecordedRows | MaskingSummary

export interface AuditEvent {
  /** Unique per event: consumers drop duplicates by it (delivery is at least once). */
  readonly eventId: string
  readonly sessionId: string
  /** 0, 1, 2, … within the session, in the order the events happened. */
  readonly sequence: number
  /** Microseconds since the Unix epoch. */
  readonly time: number
  readonly gateway: string
  readonly payload: Payload
}
