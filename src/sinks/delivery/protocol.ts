/**
 * The messages between the gateway's main thread (thread.ts) and its delivery thread
 * (worker.ts). The main thread sends one batch at a time and waits for its answer.
 */
import type { NonEmptyReadonlyArray } from "effect/Array"

/**
 * A batch of spool records in one buffer, so that posting it moves two ArrayBuffers to
 * the delivery thread instead of cloning a thousand small ones.
 */
export interface PackedBatch {
  readonly data: Uint8Array
  /** The end offset of each record in `data`. */
  readonly ends: Uint32Array
}

export type ToWorker = { readonly _tag: "Deliver"; readonly id: number; readonly batch: PackedBatch } | { readonly _tag: "Stop" }

export type FromWorker =
  | { readonly _tag: "Ready"; /** Why the thread kept the gateway's priority (priority.ts), if it did. */ readonly priority: string | undefined }
  | { readonly _tag: "StartFailed"; readonly message: string }
  | { readonly _tag: "Delivered"; readonly id: number }
  | { readonly _tag: "DeliveryFailed"; readonly id: number; readonly message: string }

/** Copies the records into buffers of their own (never Node's shared pool), ready to be transferred. */
export const pack = (records: NonEmptyReadonlyArray<Uint8Array>): PackedBatch => {
  let total = 0
  for (const r of records) total += r.length
  const data = new Uint8Array(total)
  const ends = new Uint32Array(records.length)
  let at = 0
  for (let i = 0; i < records.length; i++) {
    data.set(records[i]!, at)
    at += records[i]!.length
    ends[i] = at
  }
  return { data, ends }
}

export const transferList = (batch: PackedBatch): Array<ArrayBuffer> => [batch.data.buffer as ArrayBuffer, batch.ends.buffer as ArrayBuffer]

/** The records of a batch, as views of its buffer. */
export const unpack = (batch: PackedBatch): Array<Buffer> => {
  const data = Buffer.from(batch.data.buffer, batch.data.byteOffset, batch.data.byteLength)
  const records: Array<Buffer> = []
  let start = 0
  for (const end of batch.ends) {
    records.push(data.subarray(start, end))
    start = end
  }
  return records
}
