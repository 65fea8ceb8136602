/**
 * Moves audit events from the spool to their destination, oldest first, and acknowledges
 * each batch only once it was delivered: delivery is at least once, and an outage only
 * makes the spool grow. Retries forever, backing off to one attempt every 5 seconds.
 *
 * After a batch that was not full it lingers before reading the next: at a low event rate
 * every delivery would otherwise carry a handful of events, and its fixed cost (a spool
 * read, a compressed Kafka request or file block, an ack) would land on each statement.
 */
import { Array as Arr, Duration, Effect, Schedule } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import type { Spool } from "./spool/spool.ts"

export interface Destination<E> {
  readonly name: string
  /** Spool records as the audit log wrote them (spool-record.ts), oldest first. */
  readonly deliver: (records: NonEmptyReadonlyArray<Uint8Array>) => Effect.Effect<void, E>
}

const backoff = Schedule.exponential(Duration.millis(100)).pipe(Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.seconds(5)))))

/**
 * A delivery's size. Kafka refuses a record batch (one partition's share of a request, and
 * a session's events all go to one partition) past `message.max.bytes`, 1 MB by default,
 * and compression may not shrink one: half of that leaves room. A single event is bounded
 * by the policy (auditTextBytes, recording.bytes) well below it. Each delivery has a fixed
 * cost (a spool read, a deflate or gzip stream, a write and its sync, an ack), but batches
 * far larger than this cost more CPU an event, not less: profiled under pgbench -S with 16
 * clients, 1000 records took about 350 µs of gateway CPU a transaction, 500 about 360, and
 * 4096 about 372 (alternating runs, bench/profile.ts).
 */
export const BATCH = { maxRecords: 1000, maxBytes: 512 * 1024 }

/** A batch that stopped at a limit, or close to one: more is waiting, so no lingering. */
const nearlyFull = (batch: ReadonlyArray<{ readonly data: Uint8Array }>): boolean => {
  if (batch.length >= BATCH.maxRecords) return true
  let bytes = 0
  for (const r of batch) bytes += r.data.length
  return bytes * 2 >= BATCH.maxBytes
}

export const ship = <E extends { readonly message: string }>(spool: Spool, destination: Destination<E>, lingerMs: number) =>
  Effect.forever(
    Effect.gen(function* () {
      const batch = yield* spool.next(BATCH)
      yield* destination.deliver(Arr.map(batch, (r) => r.data)).pipe(
        Effect.tapError((e) =>
          Effect.logWarning("audit delivery failed; will retry", { destination: destination.name, reason: e.message, spooled: spool.stats().records })
        ),
        Effect.retry(backoff)
      )
      yield* spool.ack(batch[batch.length - 1]!.position)
      if (lingerMs > 0 && !nearlyFull(batch)) yield* Effect.sleep(Duration.millis(lingerMs))
    })
  )
