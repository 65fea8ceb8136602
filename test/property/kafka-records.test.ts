/**
 * Sluice's Kafka record encoder writes exactly the bytes kafkajs's own would, for any
 * record (the ones it does not take itself go to kafkajs's), and once installed it is the
 * encoder that kafkajs's produce request loads: a produce request's record batch reads
 * back, through kafkajs's decoder, to the messages sent.
 */
import { createRequire } from "node:module"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { fastRecord, kafkajsRecord, useFastRecords } from "../../src/sinks/kafka-records.ts"

const require = createRequire(import.meta.url)

const bytes = fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b))
// 64 or more headers take a two-byte count
const headers = fc.oneof(
  fc.dictionary(fc.string({ maxLength: 30 }), bytes, { maxKeys: 4 }),
  fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.uint8Array({ maxLength: 4 }).map((b) => Buffer.from(b)), { minKeys: 64, maxKeys: 70 })
)
const record = fc.record(
  {
    key: bytes,
    value: bytes,
    headers,
    offsetDelta: fc.oneof(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 2 ** 31 - 1 })),
    timestampDelta: fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.integer({ min: -(2 ** 48), max: 2 ** 48 }))
  },
  { requiredKeys: ["key", "value"] }
)

describe("Kafka record encoder", () => {
  it("writes the bytes kafkajs writes, for any byte key, value and headers", () => {
    fc.assert(
      fc.property(record, (r) => {
        expect(fastRecord(r).buffer.toString("hex")).toBe(kafkajsRecord(r).buffer.toString("hex"))
      }),
      { numRuns: 2000 }
    )
  })

  it("hands anything else to kafkajs's encoder: null or string keys and values, string or array header values", () => {
    const others = [
      { key: null, value: Buffer.from("v") },
      { key: "k", value: "ü" },
      { key: Buffer.from("k"), value: Buffer.from("v"), headers: { h: "text" } },
      { key: Buffer.from("k"), value: Buffer.from("v"), headers: { h: [Buffer.from("a"), Buffer.from("b")] } }
    ]
    for (const r of others) expect(fastRecord(r).buffer.toString("hex")).toBe(kafkajsRecord(r).buffer.toString("hex"))
  })

  it("once installed, kafkajs's produce request encodes with it, and its batches read back", async () => {
    useFastRecords()
    useFastRecords() // idempotent
    expect(require("kafkajs/src/protocol/recordBatch/record/v0")).toBe(fastRecord)
    const produce = require("kafkajs/src/protocol/requests/produce/v3/request") as (args: object) => { encode: () => Promise<{ buffer: Buffer }> }
    const Decoder = require("kafkajs/src/protocol/decoder") as new (b: Buffer) => { readInt32: () => number; readString: () => string; readInt16: () => number; readArray: (f: (d: unknown) => unknown) => unknown }
    const decodeBatch = require("kafkajs/src/protocol/recordBatch/v0/decoder") as (d: unknown) => Promise<{ records: Array<{ key: Buffer; value: Buffer; headers: Record<string, Buffer> }> }>
    const messages = Array.from({ length: 50 }, (_, i) => ({
      key: Buffer.from(`session-${i % 3}`),
      value: Buffer.alloc(100 + i, i),
      headers: { "sluice-event-kind": Buffer.from("Statement"), "sluice-schema-fingerprint": Buffer.from("00ff") }
    }))
    const request = await produce({ acks: -1, timeout: 1000, topicData: [{ topic: "t", partitions: [{ partition: 0, firstSequence: 0, messages }] }] }).encode()
    const d = new Decoder(request.buffer)
    expect(d.readInt16()).toBe(-1) // transactional id: null
    expect(d.readInt16()).toBe(-1) // acks
    expect(d.readInt32()).toBe(1000)
    expect(d.readInt32()).toBe(1) // topics
    expect(d.readString()).toBe("t")
    expect(d.readInt32()).toBe(1) // partitions
    expect(d.readInt32()).toBe(0) // partition
    d.readInt32() // record set size
    const batch = await decodeBatch(d)
    expect(batch.records.map((r) => [r.key.toString(), r.value.toString("hex"), Object.keys(r.headers)])).toEqual(
      messages.map((m) => [m.key.toString(), m.value.toString("hex"), Object.keys(m.headers)])
    )
  })
})
