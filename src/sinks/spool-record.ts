/**
 * What the audit log puts in the spool: the event single-object encoded, behind the two
 * things a shipper needs without decoding it (the Kafka key and the event kind).
 *   u8 session id length | session id | u8 kind length | kind | single-object bytes
 */
import { encodeSingleObjectAfter } from "./avro.ts"
import type { AuditEvent } from "./events.ts"

export interface SpooledEvent {
  readonly sessionId: string
  /** The session id's bytes (UTF-8), as stored: the Kafka message key, without re-encoding. */
  readonly sessionKey: Buffer
  readonly kind: string
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
  return {
    sessionId: b.toString("utf8", 1, sessionEnd),
    sessionKey: b.subarray(1, sessionEnd),
    kind: b.toString("utf8", sessionEnd + 1, kindEnd),
    event: b.subarray(kindEnd)
  }
}
