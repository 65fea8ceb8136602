/** What a relay knows about its session; stages read and update it as frames pass. */
import type { TransactionStatus } from "../../codecs/pg/backend.ts"
import type { SessionAudit } from "../../sinks/audit-log.ts"
import type { ResolvedTarget } from "../../targets/target.ts"
import type { Catalog } from "./catalog.ts"
import type { EnforcementState, Enforcer } from "./enforce.ts"
import type { ResponseTracker, StatementRef } from "./responses.ts"

export interface StatementIds {
  next: number
  readonly named: Map<string, StatementRef>
  readonly portals: Map<string, StatementRef>
}

export interface SessionState {
  readonly id: string
  readonly target: ResolvedTarget
  readonly enforcer: Enforcer
  readonly enforcement: EnforcementState
  readonly audit: SessionAudit
  /** The target's catalog, which masking asks for the tables a masked statement reads. */
  readonly catalog: Catalog
  /** Which response answers which message: for the frames Sluice injects, and for results. */
  readonly responses: ResponseTracker
  /** Statement ids for the audit: the next one, and which prepared statement and portal run which. */
  readonly statements: StatementIds
  /** The server's process id for this session, which the client must never see. */
  readonly serverProcessId: number
  /** The process id Sluice gave the client in its own BackendKeyData. */
  readonly clientProcessId: number
  /** As the server last reported it in ReadyForQuery. */
  transactionStatus: TransactionStatus
  /** After a blocked Parse, the client's messages up to Sync are skipped, as the server skips them. */
  discardingUntilSync: boolean
  /** Set when the client sent Terminate: the server closing afterwards is expected. */
  terminating: boolean
  /** Set when the server sent a FATAL: it closes next, and the client already knows why. */
  serverEnded: boolean
  bytesFromClient: number
  bytesToClient: number
}
