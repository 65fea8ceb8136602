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
import type { Recording } from "../../rules/policy/schema.ts"
import type { MaskingSummary, RecordedColumn, RecordedRows, Result } from "../../sinks/events.ts"
import { emptyTally, type MaskingTally, masksApply, ResultMasker, type ResultMasking, summaryOf, unresolvedMasking, withheldFields } from "./masking.ts"
import { Capture, columnsOf, withFormats } from "./recording.ts"

export type Sent = "Parse" | "Bind" | "Describe" | "Execute" | "Close" | "Sync" | "Query" | "FunctionCall"

/**
 * `drop`: Sluice's own message, whose success response is not the client's.
 * `raise`: it raises a block's error with this message, which the client must get.
 */
export type Origin = "client" | "drop" | { readonly raise: string }

export type Outcome = "forward" | "drop" | Uint8Array

/** A statement as its results are audited: its id, how much of them to record, and how they are masked. */
export interface StatementRef {
  readonly id: number
  readonly record: Recording | undefined
  readonly masking: ResultMasking | undefined
  /** What this statement makes (a Parse its prepared statement, a DECLARE its cursor), settled by the server's answer. */
  readonly makes?: Fate
  /**
   * The fate of what Sluice judged this statement's results by: its own Parse, or the
   * DECLARE of the cursor a FETCH reads. Sluice may have judged by it before the server's
   * answer came (pipelined behind a Sync, or later in a Query the server abandoned); if
   * the server refused or skipped it, what runs is something Sluice did not judge, so the
   * results are masked whole. The answer always comes before those results.
   */
  readonly judgedBy?: Fate
}

/** Whether the server refused or skipped a statement whose effect Sluice already counted on. */
export interface Fate {
  refused: boolean
}

/**
 * What a message names, for session recording to know the columns of a result: the
 * statement (`S` + name) or portal (`P` + name) a Parse, Describe, Close or Execute names,
 * or the portal a Bind makes, with the statement it binds and its result formats.
 */
export type Address =
  | { readonly target: string }
  | { readonly target: string; readonly statement: string; readonly formats: ReadonlyArray<number> }

/** A Parse the server answered with an error, and the statement Sluice had noted under its name. */
export interface FailedParse {
  readonly name: string
  readonly ref: StatementRef
}

interface Entry {
  readonly sent: Sent
  /** For a Parse: the statement name it prepares. */
  readonly prepares: string | undefined
  readonly origin: Origin
  /** The recording period it was sent in (see ResponseTracker.epoch). */
  readonly epoch: number
  /** The statements whose results this message produces, in order (a Query may run several). */
  readonly statements: ReadonlyArray<StatementRef>
  readonly address: Address | undefined
  next: number
  startedAt: number
  rows: number
  bytes: number
  /** A Query's current result set, as its RowDescription said (recording only). */
  columns: ReadonlyArray<RecordedColumn> | undefined
  capture: Capture | undefined
  /** The current result set's masking (masked statements only). */
  masker: ResultMasker | undefined
  tally: MaskingTally | undefined
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

/** Marks what the statements from `from` on would have made as never made. */
const refuse = (statements: ReadonlyArray<StatementRef>, from: number): void => {
  for (let i = from; i < statements.length; i++) {
    const made = statements[i]!.makes
    if (made !== undefined) made.refused = true
  }
}

const cstringAt = (bytes: Uint8Array, at: number): string => Buffer.from(bytes.subarray(at, bytes.indexOf(0, at))).toString("utf8")

export class ResponseTracker {
  private entries: Array<Entry> = []
  private head = 0
  private results: Array<Result | RecordedRows | MaskingSummary> = []
  private failedParses: Array<FailedParse> = []
  /**
   * Columns of described statements and portals, by address. Kept only while the policy
   * records anything: a description missed while it did not could mislabel values later.
   */
  private readonly described = new Map<string, ReadonlyArray<RecordedColumn>>()
  /** What is left of a suspended portal's caps: the next Execute of it goes on from there. */
  private readonly leftover = new Map<string, Recording>()
  private recordingOn = false
  /**
   * Bumped whenever recording stops. Answers to messages sent in an earlier period are not
   * learnt from: what was sent while nothing was recorded carried no address, so a
   * description from before could have been invalidated without Sluice seeing it.
   */
  private epoch = 0
  /** After an extended-protocol error, until the client's Sync: the server skips these messages, so no answer comes. */
  private skippingUntilSync = false

  sent(sent: Sent, origin: Origin = "client", statements: ReadonlyArray<StatementRef> = [], address?: Address, prepares?: string): void {
    if (this.skippingUntilSync) {
      if (sent !== "Sync") return this.skipped(sent, statements, prepares)
      this.skippingUntilSync = false
    }
    this.entries.push({ sent, prepares, origin, epoch: this.epoch, statements, address, next: 0, startedAt: micros(), rows: 0, bytes: 0, columns: undefined, capture: undefined, masker: undefined, tally: undefined })
  }

  /** Whether the policy in force records results; turning it off forgets every description. */
  get recording(): boolean {
    return this.recordingOn
  }

  set recording(on: boolean) {
    if (!on && this.recordingOn) {
      this.described.clear()
      this.leftover.clear()
      this.epoch++
    }
    this.recordingOn = on
  }

  /** A message that failed, or that the server skipped after an error: a Parse among them made no statement. */
  private skipped(sent: Sent, statements: ReadonlyArray<StatementRef>, prepares: string | undefined): void {
    const ref = statements[0]
    if (sent === "Query") refuse(statements, 0)
    if (sent === "Parse" && prepares !== undefined && ref !== undefined) {
      refuse(statements, 0)
      this.failedParses.push({ name: prepares, ref })
    }
  }

  /** The Parses the server refused or skipped since the last call. */
  takeFailedParses(): ReadonlyArray<FailedParse> {
    if (this.failedParses.length === 0) return this.failedParses
    const out = this.failedParses
    this.failedParses = []
    return out
  }

  get pending(): number {
    return this.entries.length - this.head
  }

  /** The results completed since the last call, each after its masking summary and the rows recorded from it. */
  takeResults(): ReadonlyArray<Result | RecordedRows | MaskingSummary> {
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
    const statement = e.statements[e.next]
    if (statement === undefined) return
    const statementId = statement.id
    if (e.sent === "Query") e.next++
    const now = micros()
    if (statement.masking !== undefined) {
      const tally = e.tally ?? emptyTally()
      e.masker?.addTo(tally)
      // a statement only watched is summarised only if masking had to step in
      if (masksApply(statement.masking) || tally.columns.length > 0) this.results.push(summaryOf(statementId, tally))
      e.masker = undefined
      e.tally = undefined
    }
    if (e.capture !== undefined) {
      this.results.push(e.capture.finish(statementId))
      // A suspended portal (Execute with a row limit) goes on in the next Execute, within the same caps.
      if (e.sent === "Execute" && e.address !== undefined && sqlstate === "00000" && commandTag === null) this.leftover.set(e.address.target, e.capture.remaining())
      e.capture = undefined
    }
    this.results.push({
      _tag: "Result",
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
      case BackendType.DataRow: {
        if (head === undefined) return "forward"
        const bytes = this.masked(head, frame.bytes)
        head.rows++
        head.bytes += bytes.length
        if (this.recordingOn) this.capture(head, bytes === frame.bytes ? frame : { type: frame.type, bytes })
        return bytes === frame.bytes ? "forward" : bytes
      }
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
      // These end an extended-protocol message; inside a Query they don't.
      case BackendType.ParseComplete:
      case BackendType.BindComplete:
      case BackendType.CloseComplete:
      case BackendType.NoData:
      case BackendType.EmptyQueryResponse:
        if (this.recordingOn && head !== undefined && head.epoch === this.epoch) this.describedChanged(head)
        return head !== undefined && EXTENDED.has(head.sent) ? this.shiftForward() : "forward"
      case BackendType.RowDescription: {
        if (head === undefined) return "forward"
        if (this.recordingOn && head.epoch === this.epoch) this.describe(head, frame)
        this.planMasking(head, frame)
        return head.sent === "Describe" ? this.shiftForward() : "forward"
      }
      case BackendType.ReadyForQuery:
        // Outside a transaction every portal is gone: their names will be bound afresh.
        if (this.recordingOn && frame.bytes[5] === 0x49 /* I */) this.portalsGone()
        if (head?.sent === "Sync" || head?.sent === "Query" || head?.sent === "FunctionCall") this.shift()
        return "forward"
      case BackendType.ErrorResponse:
        return this.error(frame, head)
      case BackendType.NoticeResponse: {
        if (head === undefined || !this.withholds(head)) return "forward"
        const m = decodeBackend(frame)
        return this.withhold(head, "NoticeResponse", R.isSuccess(m) && m.success._tag === "NoticeResponse" ? m.success.fields : [])
      }
      default:
        return "forward"
    }
  }

  private capture(head: Entry, frame: Frame): void {
    if (head.capture === undefined) {
      const record = head.statements[head.next]?.record
      if (record === undefined) return
      const portal = head.sent === "Execute" ? head.address?.target : undefined
      const caps = (portal === undefined ? undefined : this.leftover.get(portal)) ?? record
      if (caps.rows === 0) return // a suspended portal's caps were used up by its earlier rows
      const columns = head.sent === "Query" ? head.columns : portal === undefined || head.epoch !== this.epoch ? undefined : this.described.get(portal)
      head.capture = new Capture(caps, columns ?? [])
    }
    head.capture.add(frame)
  }

  /**
   * The masking of the statement `head` is producing results for, if it is masked: all of
   * it when the Parse Sluice judged it by was refused or skipped (the server runs another).
   */
  private maskingFor(head: Entry): ResultMasking | undefined {
    const statement = head.statements[head.next]
    const masking = statement?.masking
    return masking !== undefined && statement!.judgedBy?.refused === true ? unresolvedMasking(masking.need) : masking
  }

  /** Whether the statement's server texts are withheld: its masks apply to it. */
  private withholds(head: Entry): boolean {
    const masking = this.maskingFor(head)
    return masking !== undefined && masksApply(masking)
  }

  /** A masked statement's row, rewritten; every other row as it came. */
  private masked(head: Entry, row: Uint8Array): Uint8Array {
    const masking = this.maskingFor(head)
    if (masking === undefined) return row
    head.masker ??= ResultMasker.blind(masking, row)
    return head.masker.row(row)
  }

  /**
   * A masked statement's result set starts: in a Query its RowDescription precedes the
   * rows; for an Execute, Sluice asked for the portal's description just before it, so
   * the entry after that Describe is the Execute the rows will answer.
   */
  private planMasking(head: Entry, frame: Frame): void {
    const masking = this.maskingFor(head)
    const forExecute = head.sent === "Describe" && head.origin === "drop"
    if (masking === undefined || (head.sent !== "Query" && !forExecute)) return
    const m = decodeBackend(frame)
    const fields = R.isSuccess(m) && m.success._tag === "RowDescription" ? m.success.fields : undefined
    // A description that does not decode leaves the masker unset: the rows are then masked blind.
    const masker = fields === undefined ? undefined : new ResultMasker(masking, fields)
    if (!forExecute) head.masker = masker
    else {
      const execute = this.entries[this.head + 1]
      if (execute?.sent === "Execute") execute.masker = masker
    }
  }

  /** An error or notice of a masked statement, without the texts that could quote a masked value. */
  private withhold(head: Entry, kind: "ErrorResponse" | "NoticeResponse", fields: ReadonlyArray<readonly [string, string]>): Uint8Array {
    head.tally ??= emptyTally()
    head.tally.messagesWithheld++
    return encodeBackend({ _tag: kind, fields: withheldFields(fields) })
  }

  private portalsGone(): void {
    for (const key of this.described.keys()) if (key.startsWith("P")) this.described.delete(key)
    this.leftover.clear()
  }

  private describe(head: Entry, frame: Frame): void {
    const m = decodeBackend(frame)
    if (R.isFailure(m) || m.success._tag !== "RowDescription") return
    const columns = columnsOf(m.success.fields)
    if (head.sent === "Query") head.columns = columns
    else if (head.sent === "Describe" && head.address !== undefined) this.described.set(head.address.target, columns)
  }

  /** A statement or portal made, replaced, closed or found to return no rows. */
  private describedChanged(head: Entry): void {
    const a = head.address
    if (a === undefined) return
    if (a.target.startsWith("P")) this.leftover.delete(a.target)
    if ("statement" in a) {
      const statement = this.described.get(`S${a.statement}`)
      if (statement === undefined) this.described.delete(a.target)
      else this.described.set(a.target, withFormats(statement, a.formats))
    } else this.described.delete(a.target)
  }

  private shiftForward(): Outcome {
    return this.shift()!.origin === "drop" ? "drop" : "forward"
  }

  /** In the extended protocol an error makes the server skip everything up to Sync. */
  private error(frame: Frame, head: Entry | undefined): Outcome {
    if (head === undefined) return "forward"
    const m = decodeBackend(frame)
    const fields = R.isSuccess(m) && m.success._tag === "ErrorResponse" ? m.success.fields : []
    const withheld = this.withholds(head) ? this.withhold(head, "ErrorResponse", fields) : undefined
    // the failing statement of a Query, and every one after it, did not run
    if (head.sent === "Query") refuse(head.statements, head.next)
    this.complete(head, field(fields, "C") ?? "XX000", null)
    if (EXTENDED.has(head.sent)) {
      while (this.peek() !== undefined && this.peek()!.sent !== "Sync") {
        const e = this.shift()!
        this.skipped(e.sent, e.statements, e.prepares)
      }
      // The rest of the client's pipeline may not have been sent yet: it will be skipped too.
      if (this.peek() === undefined) this.skippingUntilSync = true
    }
    if (withheld !== undefined) return withheld
    if (typeof head.origin !== "object") return "forward"
    // The error a block raised through the server, without the PL/pgSQL details it
    // carries. Any other error (a statement before the block failed first) passes as it is.
    const raised = head.origin.raise
    if (!fields.some(([code, value]) => code === "M" && value === raised)) return "forward"
    return encodeBackend({ _tag: "ErrorResponse", fields: fields.filter(([code]) => !RAISE_ONLY_FIELDS.has(code)) })
  }
}
