/**
 * The audit topic's partitioner: the same murmur2 as Kafka's Java client (its own test
 * vectors) and kafkajs's, and the same partition for every key and partition count as
 * kafkajs's default partitioner, which Sluice replaced only for speed.
 */
import { createRequire } from "node:module"
import fc from "fast-check"
import { Partitioners, type PartitionMetadata } from "kafkajs"
import { describe, expect, it } from "vitest"
import { murmur2, sessionPartitioner } from "../../src/sinks/kafka-partitioner.ts"

const kafkajsMurmur2 = createRequire(import.meta.url)("kafkajs/src/producer/partitioners/default/murmur2.js") as (key: Buffer) => number

const metadata = (partitions: number): Array<PartitionMetadata> =>
  Array.from({ length: partitions }, (_, partitionId) => ({ partitionErrorCode: 0, partitionId, leader: 1, replicas: [1], isr: [1] }))

describe("audit topic partitioner", () => {
  it("murmur2 gives the Java client's values (Kafka's UtilsTest vectors)", () => {
    const vectors: ReadonlyArray<readonly [string, number]> = [
      ["21", -973932308],
      ["foobar", -790332482],
      ["a-little-bit-long-string", -985981536],
      ["a-little-bit-longer-string", -1486304829],
      ["lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971],
      ["abc", 479470107]
    ]
    for (const [key, hash] of vectors) expect(murmur2(Buffer.from(key, "utf8"))).toBe(hash)
  })

  it("murmur2 equals kafkajs's for any bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        expect(murmur2(bytes)).toBe(kafkajsMurmur2(Buffer.from(bytes)))
      }),
      { numRuns: 2000 }
    )
  })

  it("every key goes to the partition kafkajs's default partitioner picks, whatever the partition count", () => {
    const ours = sessionPartitioner()
    const theirs = Partitioners.DefaultPartitioner()
    fc.assert(
      fc.property(fc.oneof(fc.uuid(), fc.string({ unit: "binary" })), fc.integer({ min: 1, max: 1000 }), fc.boolean(), (key, partitions, asBytes) => {
        const partitionMetadata = metadata(partitions)
        const message = { key: asBytes ? Buffer.from(key, "utf8") : key, value: null }
        const picked = ours({ topic: "t", partitionMetadata, message })
        expect(picked).toBe(theirs({ topic: "t", partitionMetadata, message }))
        expect(picked).toBeGreaterThanOrEqual(0)
        expect(picked).toBeLessThan(partitions)
      }),
      { numRuns: 2000 }
    )
  })
})
