/**
 * Ships spooled audit events to Kafka: an idempotent producer, acks from all in-sync
 * replicas, keyed by session id (a session stays in order on one partition), gzip
 * compressed (at level 1: kafka-gzip.ts), with the event kind and schema fingerprint in
 * headers. Values are Avro single-object encoded, or in the Confluent wire format when a
 * schema registry is set. kafkajs sends the records; Sluice writes them (kafka-records.ts).
 */
import { Data, Effect, type Scope } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import { CompressionTypes, Kafka, logLevel, type Producer } from "kafkajs"
import { CONFLUENT_HEADER_LENGTH, CURRENT_SCHEMA, SINGLE_OBJECT_HEADER_LENGTH } from "./avro.ts"
import { useFastGzip } from "./kafka-gzip.ts"
import { sessionPartitioner } from "./kafka-partitioner.ts"
import { useFastRecords } from "./kafka-records.ts"
import { useQuietRequestQueue } from "./kafka-request-queue.ts"
import { makeRegistryClient, type RegistryError } from "./registry.ts"
import type { SpooledEvent } from "./spool-record.ts"

export class KafkaUnavailable extends Data.TaggedError("KafkaUnavailable")<{ readonly detail: string }> {
  override get message(): string {
    return `Kafka is unavailable: ${this.detail}`
  }
}

export interface KafkaSinkOptions {
  readonly brokers: ReadonlyArray<string>
  readonly topic: string
  readonly clientId: string
  readonly schemaRegistryUrl?: string | undefined
}

export interface KafkaSink {
  /** Fails with the registry's own error when the schema cannot be registered: it is not Kafka that is down. */
  readonly send: (events: NonEmptyReadonlyArray<SpooledEvent>) => Effect.Effect<void, KafkaUnavailable | RegistryError>
}

// Header values as bytes (the kind's are the spool record's own): kafkajs would encode strings again for every message.
const FINGERPRINT_HEADER = Buffer.from(CURRENT_SCHEMA.fingerprint.toString("hex"), "utf8")

export const makeKafkaSink = (options: KafkaSinkOptions): Effect.Effect<KafkaSink, never, Scope.Scope> =>
  Effect.gen(function* () {
    useFastGzip()
    useFastRecords()
    useQuietRequestQueue()
    const kafka = new Kafka({
      clientId: options.clientId,
      brokers: [...options.brokers],
      logLevel: logLevel.NOTHING,
      // Sluice retries whole batches itself, forever; kafkajs only rides out short blips.
      retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 2_000 },
      connectionTimeout: 3_000
    })
    const registry = options.schemaRegistryUrl === undefined ? undefined : makeRegistryClient({ url: options.schemaRegistryUrl })
    let producer: Producer | undefined
    let schemaId: number | undefined

    const fail = (e: unknown) => new KafkaUnavailable({ detail: e instanceof Error ? e.message : String(e) })

    const connected = Effect.suspend((): Effect.Effect<Producer, KafkaUnavailable> => {
      if (producer !== undefined) return Effect.succeed(producer)
      const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: true, createPartitioner: sessionPartitioner })
      return Effect.tryPromise({ try: () => p.connect(), catch: fail }).pipe(
        Effect.as(p),
        Effect.tap(() =>
          Effect.sync(() => {
            producer = p
          })
        )
      )
    })

    const value = (e: SpooledEvent): Buffer => {
      if (schemaId === undefined) return e.event
      const header = Buffer.alloc(CONFLUENT_HEADER_LENGTH)
      header.writeUInt32BE(schemaId, 1)
      return Buffer.concat([header, e.event.subarray(SINGLE_OBJECT_HEADER_LENGTH)])
    }

    const disconnect = Effect.suspend(() => {
      const p = producer
      producer = undefined
      return p === undefined ? Effect.void : Effect.promise(() => p.disconnect().catch(() => undefined))
    })
    yield* Effect.addFinalizer(() => disconnect)

    return {
      send: (events) =>
        Effect.gen(function* () {
          if (registry !== undefined && schemaId === undefined) {
            schemaId = yield* registry.registerForTopic(options.topic)
          }
          const p = yield* connected
          yield* Effect.tryPromise({
            try: () =>
              p.send({
                topic: options.topic,
                acks: -1,
                compression: CompressionTypes.GZIP,
                messages: events.map((e) => ({
                  key: e.sessionKey,
                  value: value(e),
                  headers: { "sluice-event-kind": e.kind, "sluice-schema-fingerprint": FINGERPRINT_HEADER }
                }))
              }),
            catch: fail
          }).pipe(Effect.tapError(() => disconnect))
        })
    }
  })
