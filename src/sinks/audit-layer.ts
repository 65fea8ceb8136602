/**
 * The audit trail as configured: events go to the spool, and one shipper moves them to
 * Kafka, or to rotated Avro container files when no Kafka is configured (the embedded
 * default for `npm start`).
 */
import { Array as Arr, Effect, Layer } from "effect"
import type { Audit } from "../config/schema.ts"
import { AuditLog, auditOff, makeAuditLog } from "./audit-log.ts"
import { makeFileSink } from "./file-sink.ts"
import { makeKafkaSink } from "./kafka-sink.ts"
import { ship } from "./shipper.ts"
import { openSpool } from "./spool/spool.ts"
import { toSpoolRecord } from "./spool-record.ts"

export const layerAudit = (config: Audit) =>
  config.enabled
    ? Layer.effect(
        AuditLog,
        Effect.gen(function* () {
          const spool = yield* openSpool(config.spool)
          const kafka = config.kafka
          if (kafka !== undefined) {
            const sink = yield* makeKafkaSink(kafka)
            yield* ship(spool, { name: `kafka topic ${kafka.topic}`, deliver: sink.send }, config.lingerMs).pipe(Effect.forkScoped)
          } else {
            const files = yield* makeFileSink(config.files)
            yield* ship(spool, { name: `files in ${config.files.directory}`, deliver: (events) => files.writeEncoded(Arr.map(events, (e) => e.event)) }, config.lingerMs).pipe(
              Effect.forkScoped
            )
          }
          yield* Effect.logInfo("audit trail", { spool: config.spool.directory, to: kafka === undefined ? config.files.directory : kafka.topic })
          // a quarter of the spool, at most 8 MiB, for the events of statements already let through
          const reserve = Math.min(Math.floor(config.spool.maxBytes / 4), 8 * 1024 * 1024)
          return makeAuditLog({ encode: toSpoolRecord, spool, onFull: config.spool.onFull, refuseAboveBytes: config.spool.maxBytes - reserve })
        })
      )
    : Layer.succeed(AuditLog, auditOff)
