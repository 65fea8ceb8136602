/**
 * Which frontend message each backend message answers. The server answers in order, so
 * a FIFO of what was sent tells the server → client stage when a response belongs to a
 * message Sluice injected (to drop it, or to clean the error it raised for a block), and
 * which statement a result belongs to (rows, bytes, duration, SQLSTATE for the audit).
 *
 * Mutable on purpose: it sits on the hot path of both directions of one session.
 */
import { Result as R } from "effect"
import { BackendType, decodeBackend, encodeBackend, field } from "../../codecs/pg/backend.ts"
import type { Frame } from "../../codecs/pg/framing.ts"
import type { Result } from "../../sinks/events.ts"

export type Sent = "Parse" | "Bind" | "Describe" | "Execute" | "Close" | "Sync" | "Query" | "FunctionCall"

/**
 * `drop`: Sluice's own message, whose success response is not the client's.
 * `raise`: it raises a block's error with this message, which the client must get.
 */
export type Origin = "client" | "drop" | { readonly raise: string }

export type Outcome = "forward" | "drop" | Uint8Array

/** How one statement ended, as far as the server said: the audit's Result event. */
export type StatementResult = Omit<Result, "_tag">

interface Entry {
  readonly sent: Sent
  readonly origin: Origin
  /** The statements whose results this message produces, in order (a Query may run several). */
  readonly statementIds: ReadonlyArray<number>
  next: number
  startedAt: number
  rows: number
  bytes: number
}

/** Where (W), file (F), line (L) and routine (R) of the PL/pgSQL RAISE that carries out a block. */
const RAISE_ONLY_FIELDS: ReadonlySet<string> = new Set(["W", "F", "L", "R"])

const EXTENDED: ReadonlySet<Sent> = new Set(["Parse", "Bind", "Describe", "Execute", "Close"])

const micros = (): number => Math.round(performance.now() * 1000)

/** The row count a CommandComplete tag ends with ("SELECT 5", "INSERT 0 3", "COPY 10"). */
const rowsOf = (tag: string): number | undefined => {
  const m = / (\d+)$/.exec(tag)
  return m === null ? undefined : Number(m[1])
}

const cstringAt = (bytes: Uint8Array, at: number): string => Buffer.from(bytes.subarray(at, bytes.indexOf(0, at))).toString("utf8")

export class ResponseTracker {
  private entries: Array<Entry> = []
  private head = 0
  private results: Array<StatementResult> = []

  sent(sent: Sent, origin: Origin = "client", statementIds: ReadonlyArray<number> = []): void {
    this.entries.push({ sent, origin, statementIds, next: 0, startedAt: micros(), rows: 0, bytes: 0 })
  }

  get pending(): number {
    return this.entries.length - this.head
  }

  /** The results completed since the last call. */
  takeResults(): ReadonlyArray<StatementResult> {
    if (this.results.length === 0) return this.results
    const out = this.results
    this.results = []
    return out
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

  /** Closes the current statement of `e`, if it has one, with what the server said. */
  private complete(e: Entry, sqlstate: string, commandTag: string | null): void {
    const statementId = e.statementIds[e.next]
    if (statementId === undefined) return
    if (e.sent === "Query") e.next++
    const now = micros()
    this.results.push({
      statementId,
      rows: commandTag === null ? e.rows : (rowsOf(commandTag) ?? e.rows),
      bytes: e.bytes,
      durationMicros: now - e.startedAt,
      sqlstate,
      commandTag
    })
    e.startedAt = now
    e.rows = 0
    e.bytes = 0
  }

  /** The fate of one backend frame, given what it answers. */
  received(frame: Frame): Outcome {
    const head = this.peek()
    switch (frame.type) {
      case BackendType.DataRow:
      case BackendType.CopyData:
        if (head !== undefined) {
          head.rows++
          head.bytes += frame.bytes.length
        }
        return "forward"
      case BackendType.CommandComplete:
        if (head !== undefined) this.complete(head, "00000", cstringAt(frame.bytes, 5))
        return head !== undefined && EXTENDED.has(head.sent) ? this.shiftForward() : "forward"
      case BackendType.PortalSuspended:
        if (head !== undefined) this.complete(head, "00000", null)
        return head !== undefined && EXTENDED.has(head.sent) ? this.shiftForward() : "forward"
      case BackendType.ParseComplete:
      case BackendType.BindComplete:
      case BackendType.CloseComplete:
      case BackendType.NoData:
      case BackendType.EmptyQueryResponse:
        // These end an extended-protocol message; inside a Query they don't.
        return head !== undefined && EXTENDED.has(head.sent) ? this.shiftForward() : "forward"
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

  private shiftForward(): Outcome {
    return this.shift()!.origin === "drop" ? "drop" : "forward"
  }

  /** In the extended protocol an error makes the server skip everything up to Sync. */
  private error(frame: Frame, head: Entry | undefined): Outcome {
    if (head === undefined) return "forward"
    const m = decodeBackend(frame)
    const fields = R.isSuccess(m) && m.success._tag === "ErrorResponse" ? m.success.fields : []
    this.complete(head, field(fields, "C") ?? "XX000", null)
    if (EXTENDED.has(head.sent)) {
      while (this.peek() !== undefined && this.peek()!.sent !== "Sync") this.shift()
    }
    if (typeof head.origin !== "object") return "forward"
    // The error a block raised through the server, without the PL/pgSQL details it
    // carries. Any other error (a statement before the block failed first) passes as it is.
    const raised = head.origin.raise
    if (!fields.some(([code, value]) => code === "M" && value === raised)) return "forward"
    return encodeBackend({ _tag: "ErrorResponse", fields: fields.filter(([code]) => !RAISE_ONLY_FIELDS.has(code)) })
  }
}
