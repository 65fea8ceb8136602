/**
 * Session recording: the first rows of a statement's result, captured from the frames on
 * their way to the client, up to the policy's caps on rows and bytes.
 *
 * Text-format values become strings (when they are valid UTF-8; otherwise they stay
 * bytes, so nothing is lost in a conversion), binary-format values stay bytes. Column
 * names and formats come from the RowDescription the server sent this session: in a
 * simple Query it precedes the rows; in the extended protocol it answers a Describe of the
 * portal, or of the statement, with Bind choosing the formats (see responses.ts).
 */
import { isUtf8 } from "node:buffer"
import { Result } from "effect"
import { decodeBackend, type FieldDescription } from "../../codecs/pg/backend.ts"
import type { Frame } from "../../codecs/pg/framing.ts"
import type { Recording } from "../../rules/policy/schema.ts"
import type { RecordedColumn, RecordedRows, RecordedValue } from "../../sinks/events.ts"

export const columnsOf = (fields: ReadonlyArray<FieldDescription>): ReadonlyArray<RecordedColumn> =>
  fields.map((f) => ({ name: f.name, typeOid: f.typeOid, binary: f.format === 1 }))

/**
 * A described statement's columns as a Bind's result-format codes make them: no code
 * means all text, one code applies to every column, otherwise one per column.
 */
export const withFormats = (columns: ReadonlyArray<RecordedColumn>, formats: ReadonlyArray<number>): ReadonlyArray<RecordedColumn> =>
  columns.map((c, i) => ({ ...c, binary: (formats.length === 1 ? formats[0] : formats[i]) === 1 }))

const valueOf = (bytes: Uint8Array | null, column: RecordedColumn | undefined): RecordedValue => {
  if (bytes === null) return null
  if (column !== undefined && !column.binary && isUtf8(bytes)) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8")
  // A copy: the frame's bytes belong to a socket read that must not be kept alive.
  return Buffer.from(bytes)
}

/**
 * What a value adds to the encoded event: its bytes, the union branch and the length
 * (a few bytes of varint), so that the cap bounds the event and not only the data.
 */
const encodedSize = (v: Uint8Array | null): number => (v === null ? 1 : v.byteLength + 4)

/** The rows of one statement's result captured so far. */
export class Capture {
  private readonly caps: Recording
  private readonly columns: ReadonlyArray<RecordedColumn>
  private readonly rows: Array<ReadonlyArray<RecordedValue>> = []
  private bytes = 0
  private truncated = false
  /** Some row's values did not line up with the columns: the event names none of them. */
  private misaligned = false

  constructor(caps: Recording, columns: ReadonlyArray<RecordedColumn>) {
    this.caps = caps
    this.columns = columns
  }

  /** Captures a DataRow if the caps allow it; the first row past a cap ends the capture. */
  add(frame: Frame): void {
    if (this.truncated) return
    const m = decodeBackend(frame)
    if (Result.isFailure(m) || m.success._tag !== "DataRow") return
    const values = m.success.values
    let size = 1
    for (const v of values) size += encodedSize(v)
    if (this.rows.length >= this.caps.rows || this.bytes + size > this.caps.bytes) {
      this.truncated = true
      return
    }
    // Columns that do not line up with the values would mislabel them: record bytes, unnamed.
    const aligned = values.length === this.columns.length
    if (!aligned) this.misaligned = true
    this.rows.push(values.map((v, i) => valueOf(v, aligned ? this.columns[i] : undefined)))
    this.bytes += size
  }

  /** The caps still unused, for the rest of a suspended portal (none once a cap was hit). */
  remaining(): Recording {
    return this.truncated ? { rows: 0, bytes: 1 } : { rows: this.caps.rows - this.rows.length, bytes: Math.max(1, this.caps.bytes - this.bytes) }
  }

  finish(statementId: number): RecordedRows {
    return { _tag: "RecordedRows", statementId, columns: this.misaligned ? [] : this.columns, rows: this.rows, truncated: this.truncated }
  }
}
