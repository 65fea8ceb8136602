/**
 * Where the shipper sends spooled events, as configured: a Kafka topic, or Avro container
 * files in a directory when no Kafka is configured. Opened in the delivery thread
 * (worker.ts), so that encoding and compressing for the destination stays off the data path.
 */
import { Array as Arr, Effect, type Scope } from "effect"
import type { Audit } from "../../config/schema.ts"
import { type FileSinkError, makeFileSink } from "../file-sink.ts"
import { makeKafkaSink } from "../kafka-sink.ts"
import type { Destination } from "../shipper.ts"
import { fromSpoolRecord } from "../spool-record.ts"

/** What the delivery thread needs of the audit configuration: plain data, cloned into the thread. */
export type DestinationConfig = Pick<Audit, "kafka" | "files">

export const destinationName = (config: DestinationConfig): string =>
  config.kafka === undefined ? `files in ${config.files.directory}` : `kafka topic ${config.kafka.topic}`

export const openDestination = (config: DestinationConfig): Effect.Effect<Destination<{ readonly message: string }>, FileSinkError, Scope.Scope> =>
  Effect.gen(function* () {
    const name = destinationName(config)
    if (config.kafka !== undefined) {
      const sink = yield* makeKafkaSink(config.kafka)
      return { name, deliver: (records) => sink.send(Arr.map(records, fromSpoolRecord)) }
    }
    const files = yield* makeFileSink(config.files)
    return { name, deliver: (records) => files.writeEncoded(Arr.map(records, (r) => fromSpoolRecord(r).event)) }
  })
