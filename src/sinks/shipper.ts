/**
 * Moves audit events from the spool to their destination, oldest first, and acknowledges
 * each batch only once it was delivered: delivery is at least once, and an outage only
 * makes the spool grow. Retries forever, backing off to one attempt every 5 seconds.
 */
import { Array as Arr, Duration, Effect, Schedule } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import type { Spool } from "./spool/spool.ts"
import { fromSpoolRecord, type SpooledEvent } from "./spool-record.ts"

export interface Destination<E> {
  readonly name: string
  readonly deliver: (events: NonEmptyReadonlyArray<SpooledEvent>) => Effect.Effect<void, E>
}

const backoff = Schedule.exponential(Duration.millis(100)).pipe(Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.seconds(5)))))

export const ship = <E extends { readonly message: string }>(spool: Spool, destination: Destination<E>) =>
  Effect.forever(
    Effect.gen(function* () {
      const batch = yield* spool.next({ maxRecords: 500, maxBytes: 1024 * 1024 })
      const events = Arr.map(batch, (r) => fromSpoolRecord(r.data))
      yield* destination.deliver(events).pipe(
        Effect.tapError((e) =>
          Effect.logWarning("audit delivery failed; will retry", { destination: destination.name, reason: e.message, spooled: spool.stats().records })
        ),
        Effect.retry(backoff)
      )
      yield* spool.ack(batch[batch.length - 1]!.position)
    })
  )
