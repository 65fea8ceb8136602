/**
 * The delivery thread's entry point (started by thread.ts): opens the destination named by
 * its `workerData` (a {@link DestinationConfig}), answers `Ready` or `StartFailed`, then
 * delivers each batch it is sent and answers for it. `Stop` interrupts a delivery in
 * progress and closes the destination; the thread then ends.
 */
import { parentPort, workerData } from "node:worker_threads"
import { Array as Arr, Cause, Effect, Exit, Queue } from "effect"
import { type DestinationConfig, openDestination } from "./destination.ts"
import { lowerOwnPriority } from "./priority.ts"
import { type FromWorker, type ToWorker, unpack } from "./protocol.ts"

type Deliver = Extract<ToWorker, { readonly _tag: "Deliver" }>

const port = parentPort
if (port === null) throw new Error("delivery/worker.ts runs as a worker thread (see thread.ts)")
const post = (message: FromWorker): void => port.postMessage(message)

/** A typed failure by its message (a person reads it in the log); a defect with its stack. */
const describe = (cause: Cause.Cause<{ readonly message: string }>): string => {
  const error = Cause.findErrorOption(cause)
  return error._tag === "Some" ? error.value.message : Cause.pretty(cause)
}

const inbox = Effect.runSync(Queue.unbounded<Deliver>())
/** Before anything else, so that opening the destination runs below the event loop too. */
const priority = lowerOwnPriority()

const serve = Effect.gen(function* () {
  const destination = yield* openDestination(workerData as DestinationConfig)
  post({ _tag: "Ready", priority })
  return yield* Effect.forever(
    Effect.gen(function* () {
      const { id, batch } = yield* Queue.take(inbox)
      const records = unpack(batch)
      const exit = yield* Effect.exit(Arr.isArrayNonEmpty(records) ? destination.deliver(records) : Effect.void)
      post(Exit.isSuccess(exit) ? { _tag: "Delivered", id } : { _tag: "DeliveryFailed", id, message: describe(exit.cause) })
    })
  )
}).pipe(Effect.scoped)

const fiber = Effect.runFork(serve)
port.on("message", (message: ToWorker) => {
  if (message._tag === "Stop") fiber.interruptUnsafe()
  else Queue.offerUnsafe(inbox, message)
})
fiber.addObserver((exit) => {
  // only a failure to open the destination ends `serve` on its own
  if (Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)) post({ _tag: "StartFailed", message: describe(exit.cause) })
  port.close()
})
