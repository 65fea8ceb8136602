/** What a relay knows about its session; stages read and update it as frames pass. */
import type { TransactionStatus } from "../../codecs/pg/backend.ts"
import type { Principal } from "../../rules/identity/principal.ts"
import type { ResolvedTarget } from "../../targets/target.ts"

export interface SessionState {
  readonly id: string
  readonly principal: Principal
  readonly target: ResolvedTarget
  /** The server's process id for this session, which the client must never see. */
  readonly serverProcessId: number
  /** The process id Sluice gave the client in its own BackendKeyData. */
  readonly clientProcessId: number
  /** As the server last reported it in ReadyForQuery. */
  transactionStatus: TransactionStatus
  /** Set when the client sent Terminate: the server closing afterwards is expected. */
  terminating: boolean
  /** Set when the server sent a FATAL: it closes next, and the client already knows why. */
  serverEnded: boolean
}
