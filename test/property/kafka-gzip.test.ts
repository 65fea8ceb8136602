/**
 * The gzip codec Sluice gives kafkajs: record batches written at level 1 (the gzip header
 * says so: XFL 4, "fastest"), read back by kafkajs as any gzip, whatever level wrote them.
 */
import { gzipSync } from "node:zlib"
import fc from "fast-check"
import kafkajs from "kafkajs"
import { describe, expect, it } from "vitest"
import { useFastGzip } from "../../src/sinks/kafka-gzip.ts"

interface Codec {
  readonly compress: (encoder: { readonly buffer: Buffer }) => Promise<Buffer>
  readonly decompress: (buffer: Buffer) => Promise<Buffer>
}

describe("kafkajs gzip at level 1", () => {
  it("writes gzip marked as the fastest level that reads back to the batch, and still reads gzip of any level", async () => {
    useFastGzip()
    useFastGzip() // idempotent
    const codec = (kafkajs.CompressionCodecs[kafkajs.CompressionTypes.GZIP] as () => Codec)()
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 4096 }), fc.integer({ min: 1, max: 9 }), async (bytes, level) => {
        const batch = Buffer.from(bytes)
        const compressed = await codec.compress({ buffer: batch })
        expect(compressed[8]).toBe(4) // XFL: compressor used the fastest algorithm
        expect((await codec.decompress(compressed)).equals(batch)).toBe(true)
        expect((await codec.decompress(gzipSync(batch, { level }))).equals(batch)).toBe(true)
      }),
      { numRuns: 100 }
    )
  })
})
