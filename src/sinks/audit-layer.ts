/**
 * The audit trail as configured: events go to the spool, and one shipper moves them to
 * Kafka, or to rotated Avro container files when no Kafka is configured (the embedded
 * default for `npm start`), through a delivery thread (delivery/thread.ts).
 */
import { Effect, Layer } from "effect"
import type { Audit } from "../config/schema.ts"
import { AuditLog, auditOff, makeAuditLog } from "./audit-log.ts"
import { deliveryThread } from "./delivery/thread.ts"
import { ship } from "./shipper.ts"
import { openSpool } from "./spool/spool.ts"
import { toSpoolRecord } from "./spool-record.ts"

export const layerAudit = (config: Audit) =>
  config.enabled
    ? Layer.effect(
        AuditLog,
        Effect.gen(function* () {
          const spool = yield* openSpool(config.spool)
          const destination = yield* deliveryThread(config, { timeoutMs: config.deliveryTimeoutMs })
          yield* ship(spool, destination, config.lingerMs).pipe(Effect.forkScoped)
          yield* Effect.logInfo("audit trail", { spool: config.spool.directory, to: destination.name })
          // a quarter of the spool, at most 8 MiB, for the events of statements already let through
          const reserve = Math.min(Math.floor(config.spool.maxBytes / 4), 8 * 1024 * 1024)
          const run = Effect.runForkWith(yield* Effect.context<never>())
          const log = makeAuditLog({ encode: toSpoolRecord, spool, onFull: config.spool.onFull, refuseAboveBytes: config.spool.maxBytes - reserve, run })
          // finalizers run last first: the turn in progress is written before the spool closes
          yield* Effect.addFinalizer(() => log.flush)
          return log
        })
      )
    : Layer.succeed(AuditLog, auditOff)
