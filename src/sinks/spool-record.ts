/**
 * What the audit log puts in the spool: the event single-object encoded, behind the two
 * things a shipper needs without decoding it (the Kafka key and the event kind).
 *   u8 session id length | session id | u8 kind length | kind | single-object bytes
 */
import { encodeSingleObjectAfter } from "./avro.ts"
import type { AuditEvent } from "./events.ts"

/**
 * A spooled event as a shipper needs it: byte ranges of the record, nothing decoded. Each
 * range is cut when it is first asked for: the file sink needs only the event, and the
 * views cost more to make than anything else a shipper does with an event.
 */
export class SpooledEvent {
  readonly #data: Buffer
  readonly #kindAt: number
  readonly #eventAt: number
  constructor(data: Uint8Array) {
    this.#data = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    this.#kindAt = 1 + this.#data[0]!
    this.#eventAt = this.#kindAt + 1 + this.#data[this.#kindAt]!
  }
  /** The session id (UTF-8): the Kafka message key. */
  get sessionKey(): Buffer {
    return this.#data.subarray(1, this.#kindAt)
  }
  /** The event kind (UTF-8): a Kafka header value. */
  get kind(): Buffer {
    return this.#data.subarray(this.#kindAt + 1, this.#eventAt)
  }
  /** Avro single-object encoding: C3 01, the schema fingerprint, the body. */
  get event(): Buffer {
    return this.#data.subarray(this.#eventAt)
  }
}

export const toSpoolRecord = (e: AuditEvent): Uint8Array =>
  encodeSingleObjectAfter(e, (out) => {
    out.shortString(e.sessionId)
    out.shortString(e.payload._tag)
  })

export const fromSpoolRecord = (data: Uint8Array): SpooledEvent => new SpooledEvent(data)
