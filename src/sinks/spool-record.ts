/**
 * What the audit log puts in the spool: the event single-object encoded, behind the two
 * things a shipper needs without decoding it (the Kafka key and the event kind).
 *   u8 session id length | session id | u8 kind length | kind | single-object bytes
 */
import { encodeSingleObjectAfter } from "./avro.ts"
import type { AuditEvent } from "./events.ts"

/** A spooled event as a shipper needs it: byte ranges of the record, nothing decoded. */
export interface SpooledEvent {
  /** The session id (UTF-8): the Kafka message key. */
  readonly sessionKey: Buffer
  /** The event kind (UTF-8): a Kafka header value. */
  readonly kind: Buffer
  /** Avro single-object encoding: C3 01, the schema fingerprint, the body. */
  readonly event: Buffer
}

export const toSpoolRecord = (e: AuditEvent): Uint8Array =>
  encodeSingleObjectAfter(e, (out) => {
    out.shortString(e.sessionId)
    out.shortString(e.payload._tag)
  })

export const fromSpoolRecord = (data: Uint8Array): SpooledEvent => {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  const sessionEnd = 1 + b[0]!
  const kindEnd = sessionEnd + 1 + b[sessionEnd]!
  return { sessionKey: b.subarray(1, sessionEnd), kind: b.subarray(sessionEnd + 1, kindEnd), event: b.subarray(kindEnd) }
}
