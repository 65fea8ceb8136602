/**
 * Which frontend message each backend message answers. The server answers in order, so
 * a FIFO of what was sent tells the server → client stage when a response belongs to a
 * message Sluice injected (to drop it, or to clean the error it raised for a block).
 *
 * Mutable on purpose: it sits on the hot path of both directions of one session.
 */
import { BackendType, decodeBackend, encodeBackend } from "../../codecs/pg/backend.ts"
import type { Frame } from "../../codecs/pg/framing.ts"
import { Result } from "effect"

export type Sent = "Parse" | "Bind" | "Describe" | "Execute" | "Close" | "Sync" | "Query" | "FunctionCall"

/**
 * `drop`: Sluice's own message, whose success response is not the client's.
 * `raise`: it raises a block's error with this message, which the client must get.
 */
export type Origin = "client" | "drop" | { readonly raise: string }

export type Outcome = "forward" | "drop" | Uint8Array

interface Entry {
  readonly sent: Sent
  readonly origin: Origin
}

const EXTENDED: ReadonlySet<Sent> = new Set(["Parse", "Bind", "Describe", "Execute", "Close"])

export class ResponseTracker {
  private entries: Array<Entry> = []
  private head = 0

  sent(sent: Sent, origin: Origin = "client"): void {
    this.entries.push({ sent, origin })
  }

  get pending(): number {
    return this.entries.length - this.head
  }

  private peek(): Entry | undefined {
    return this.entries[this.head]
  }

  private shift(): Entry | undefined {
    const e = this.entries[this.head]
    if (e === undefined) return undefined
    this.head++
    // Compact now and then rather than shifting the array on every response.
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head)
      this.head = 0
    }
    return e
  }

  /** The fate of one backend frame, given what it answers. */
  received(frame: Frame): Outcome {
    const head = this.peek()
    switch (frame.type) {
      case BackendType.ParseComplete:
      case BackendType.BindComplete:
      case BackendType.CloseComplete:
      case BackendType.NoData:
      case BackendType.CommandComplete:
      case BackendType.EmptyQueryResponse:
      case BackendType.PortalSuspended:
        // These end an extended-protocol message; inside a Query or function call they don't.
        if (head !== undefined && EXTENDED.has(head.sent)) return this.shift()!.origin === "drop" ? "drop" : "forward"
        return "forward"
      case BackendType.RowDescription:
        if (head?.sent === "Describe") this.shift()
        return "forward"
      case BackendType.ReadyForQuery:
        if (head?.sent === "Sync" || head?.sent === "Query" || head?.sent === "FunctionCall") this.shift()
        return "forward"
      case BackendType.ErrorResponse:
        return this.error(frame, head)
      default:
        return "forward"
    }
  }

  /** In the extended protocol an error makes the server skip everything up to Sync. */
  private error(frame: Frame, head: Entry | undefined): Outcome {
    if (head === undefined) return "forward"
    if (EXTENDED.has(head.sent)) {
      while (this.peek() !== undefined && this.peek()!.sent !== "Sync") this.shift()
    }
    return typeof head.origin === "object" ? withoutContext(frame, head.origin.raise) : "forward"
  }
}

/**
 * The error a block raised through the server, without the PL/pgSQL CONTEXT line it
 * carries. Any other error (a statement before the block failed first) passes as it is.
 */
const withoutContext = (frame: Frame, raised: string): Outcome => {
  const m = decodeBackend(frame)
  if (Result.isFailure(m) || m.success._tag !== "ErrorResponse") return "forward"
  const fields = m.success.fields
  if (!fields.some(([code, value]) => code === "M" && value === raised)) return "forward"
  return encodeBackend({ _tag: "ErrorResponse", fields: fields.filter(([code]) => code !== "W") })
}
