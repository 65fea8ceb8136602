/**
 * kafkajs encodes each record of a batch through its general-purpose `Encoder`: a
 * zero-filled 512-byte buffer per record and per header, varlongs through a 64-bit `Long`,
 * and a `Buffer.from` per varint. On a batch of 900 audit events that took 15.8 µs of CPU
 * an event, ten times the gzip of the whole batch (in a loop): most of what audit to Kafka
 * cost more than audit to files.
 *
 * This writes the same bytes (a v2 record: length, attributes, timestamp and offset deltas,
 * key, value, headers; Kafka's protocol guide, "Record") straight into one buffer of the
 * right size, for the records the Kafka sink sends: byte keys and values, headers of one
 * byte value each. Anything else goes to kafkajs's own encoder. kafkajs reads the record
 * module once, when its produce request module loads, and only through `buf` and `buffer`;
 * the replacement is put into the module cache before that (test/property/kafka-records
 * checks the bytes against kafkajs's, that the cache holds the replacement, and that a
 * produce request loaded after it writes batches kafkajs reads back).
 */
import { createRequire } from "node:module"

interface RecordInput {
  readonly offsetDelta?: number
  readonly timestampDelta?: number
  readonly key?: unknown
  readonly value?: unknown
  readonly headers?: Record<string, unknown>
}

/** The part of kafkajs's `Encoder` that a record batch reads. */
export interface EncodedRecord {
  readonly buf: Buffer
  readonly buffer: Buffer
}

type RecordEncoder = (record: RecordInput) => EncodedRecord

const require = createRequire(import.meta.url)
const RECORD_MODULE = require.resolve("kafkajs/src/protocol/recordBatch/record/v0")
const PRODUCE_REQUEST_MODULE = require.resolve("kafkajs/src/protocol/requests/produce/v3/request")

/** kafkajs's own record encoder. */
export const kafkajsRecord = require(RECORD_MODULE) as RecordEncoder

/** Bytes of a zigzag varint of a safe integer (Kafka's varint and varlong alike). */
const zigzag = (n: number): number => (n >= 0 ? 2 * n : -2 * n - 1)
const varintSize = (n: number): number => {
  let z = zigzag(n)
  let size = 1
  while (z >= 128) {
    z = Math.floor(z / 128)
    size++
  }
  return size
}
const writeVarint = (buf: Buffer, at: number, n: number): number => {
  let z = zigzag(n)
  while (z >= 128) {
    buf[at++] = (z % 128) | 128
    z = Math.floor(z / 128)
  }
  buf[at++] = z
  return at
}

const isSafeDelta = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && Math.abs(n) < 2 ** 52

/** Header names as UTF-8: the sink sends the same two on every record. */
const headerNames = new Map<string, Buffer>()
const headerName = (name: string): Buffer => {
  let bytes = headerNames.get(name)
  if (bytes === undefined) {
    bytes = Buffer.from(name, "utf8")
    if (headerNames.size < 64) headerNames.set(name, bytes)
  }
  return bytes
}

/** The headers, when every value is one Buffer; otherwise undefined (kafkajs's encoder handles the rest). */
const byteHeaders = (headers: Record<string, unknown>): Array<readonly [Buffer, Buffer]> | undefined => {
  const out: Array<readonly [Buffer, Buffer]> = []
  for (const key in headers) {
    if (!Object.hasOwn(headers, key)) continue
    const value = headers[key]
    if (!Buffer.isBuffer(value)) return undefined
    out.push([headerName(key), value])
  }
  return out
}

export const fastRecord: RecordEncoder = (record) => {
  const { key, value, offsetDelta = 0, timestampDelta = 0 } = record
  const headers = record.headers === undefined ? [] : byteHeaders(record.headers)
  if (!Buffer.isBuffer(key) || !Buffer.isBuffer(value) || headers === undefined || !isSafeDelta(offsetDelta) || !isSafeDelta(timestampDelta) || Math.abs(offsetDelta) >= 2 ** 31) {
    return kafkajsRecord(record)
  }
  let body = 1 + varintSize(timestampDelta) + varintSize(offsetDelta) + varintSize(key.length) + key.length + varintSize(value.length) + value.length + varintSize(headers.length)
  for (const [k, v] of headers) body += varintSize(k.length) + k.length + varintSize(v.length) + v.length
  const buf = Buffer.allocUnsafe(varintSize(body) + body)
  let at = writeVarint(buf, 0, body)
  buf[at++] = 0 // attributes: none are used
  at = writeVarint(buf, at, timestampDelta)
  at = writeVarint(buf, at, offsetDelta)
  at = writeVarint(buf, at, key.length)
  at += key.copy(buf, at)
  at = writeVarint(buf, at, value.length)
  at += value.copy(buf, at)
  at = writeVarint(buf, at, headers.length)
  for (const [k, v] of headers) {
    at = writeVarint(buf, at, k.length)
    at += k.copy(buf, at)
    at = writeVarint(buf, at, v.length)
    at += v.copy(buf, at)
  }
  return { buf, buffer: buf }
}

/**
 * Makes kafkajs encode records with {@link fastRecord} (idempotent). Throws if kafkajs's
 * produce request was loaded before: it would keep the record encoder it already has.
 */
export const useFastRecords = (): void => {
  const cached = require.cache[RECORD_MODULE]
  if (cached === undefined) throw new Error(`kafkajs's record module is not loaded from ${RECORD_MODULE}`)
  if (cached.exports === fastRecord) return
  if (require.cache[PRODUCE_REQUEST_MODULE] !== undefined) throw new Error("kafkajs's produce request loaded before its record encoder was replaced")
  cached.exports = fastRecord
}
