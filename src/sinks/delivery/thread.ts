/**
 * The shipper's destination, run in a worker thread of its own (worker.ts).
 *
 * Why a thread: shipping a batch (encoding a few hundred Kafka messages, compressing them,
 * parsing the broker's answer) took milliseconds of the event loop at a time, and the
 * statements that arrived meanwhile waited for it. With one client running `SELECT 1`
 * back to back, audit to Kafka took p99.9 latency from about 2.5 ms to 16–21 ms. In a
 * thread of its own the OS time-slices shipping against the data path, and on a machine
 * with a spare core takes it off the data path's core entirely. What stays on the main
 * thread is the spool (its appends are what lets a statement go on) and the shipper's
 * loop: read a batch, hand it over, acknowledge it once delivered.
 *
 * A thread that dies (an uncaught defect) fails the delivery in progress; the next one
 * starts a new thread. The shipper retries with backoff and acknowledges nothing that was
 * not delivered, so nothing is lost, only delayed.
 */
import { Worker } from "node:worker_threads"
import { Data, Deferred, Effect, type Scope } from "effect"
import type { Destination } from "../shipper.ts"
import { type DestinationConfig, destinationName } from "./destination.ts"
import { type FromWorker, pack, type ToWorker, transferList } from "./protocol.ts"

export class DeliveryThreadFailed extends Data.TaggedError("DeliveryThreadFailed")<{ readonly detail: string }> {
  override get message(): string {
    return this.detail
  }
}

/** How long a stopping thread may take to close its destination (finish a file write, disconnect from Kafka). */
const STOP_GRACE_MS = 10_000

const WORKER = new URL("./worker.ts", import.meta.url)

interface Thread {
  readonly worker: Worker
  /** The one batch in flight, if any. */
  pending: { readonly id: number; readonly done: Deferred.Deferred<void, DeliveryThreadFailed> } | undefined
  /** Why the thread is gone, once it is. */
  gone: string | undefined
}

const send = (thread: Thread, message: ToWorker): void =>
  thread.worker.postMessage(message, message._tag === "Deliver" ? transferList(message.batch) : [])

const settle = (thread: Thread, id: number, outcome: Effect.Effect<void, DeliveryThreadFailed>): void => {
  const pending = thread.pending
  if (pending === undefined || pending.id !== id) return
  thread.pending = undefined
  Deferred.doneUnsafe(pending.done, outcome)
}

/** Starts a thread and waits until its destination is open. */
const start = (config: DestinationConfig, workerUrl: URL): Effect.Effect<Thread, DeliveryThreadFailed> =>
  Effect.callback<Thread, DeliveryThreadFailed>((resume) => {
    const worker = new Worker(workerUrl, { workerData: config, name: "sluice-audit-delivery" })
    const thread: Thread = { worker, pending: undefined, gone: undefined }
    let ready = false
    const failed = (detail: string) => Effect.fail(new DeliveryThreadFailed({ detail }))
    const died = (why: string) => {
      if (thread.gone !== undefined) return
      thread.gone = why
      if (!ready) resume(failed(why))
      else if (thread.pending !== undefined) settle(thread, thread.pending.id, failed(why))
    }
    worker.on("message", (message: FromWorker) => {
      switch (message._tag) {
        case "Ready":
          ready = true
          return resume(
            message.priority === undefined
              ? Effect.succeed(thread)
              : Effect.as(Effect.logInfo("audit delivery thread: not below the event loop's priority", { reason: message.priority }), thread)
          )
        case "StartFailed":
          return died(message.message)
        case "Delivered":
          return settle(thread, message.id, Effect.void)
        case "DeliveryFailed":
          return settle(thread, message.id, failed(message.message))
      }
    })
    worker.on("error", (e) => died(`the audit delivery thread failed: ${e.message}`))
    worker.on("exit", (code) => died(`the audit delivery thread stopped (exit code ${code})`))
    // the gateway's scope stops it; it must not keep a process alive that is otherwise done
    worker.unref()
    return Effect.sync(() => void worker.terminate())
  })

const stop = (thread: Thread): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    if (thread.gone !== undefined) return resume(Effect.void)
    const timer = setTimeout(() => void thread.worker.terminate(), STOP_GRACE_MS)
    thread.worker.once("exit", () => {
      clearTimeout(timer)
      resume(Effect.void)
    })
    send(thread, { _tag: "Stop" })
  })

/** Stops a thread that did not answer in time; the next delivery starts a new one. */
const abandon = (thread: Thread, timeoutMs: number): Effect.Effect<never, DeliveryThreadFailed> =>
  Effect.suspend(() => {
    const detail = `the audit delivery thread did not finish a delivery within ${timeoutMs} ms, so it was stopped`
    thread.gone ??= detail
    thread.pending = undefined
    void thread.worker.terminate()
    return Effect.fail(new DeliveryThreadFailed({ detail }))
  })

/**
 * A destination whose deliveries run in a delivery thread. Fails when the first thread
 * cannot open the destination (the gateway then does not start); later threads are
 * started by the delivery that finds the last one gone.
 */
export const deliveryThread = (
  config: DestinationConfig,
  options: {
    /** A delivery not answered by then stops the thread: a hung disk or connection becomes an error that repeats, not a silent stall. */
    readonly timeoutMs: number
    /** For tests: another worker script speaking protocol.ts. */
    readonly workerUrl?: URL
  }
): Effect.Effect<Destination<DeliveryThreadFailed>, DeliveryThreadFailed, Scope.Scope> =>
  Effect.gen(function* () {
    const workerUrl = options.workerUrl ?? WORKER
    let thread = yield* start(config, workerUrl)
    yield* Effect.addFinalizer(() => Effect.suspend(() => stop(thread)))
    let ids = 0
    const running = Effect.suspend(() =>
      thread.gone === undefined
        ? Effect.succeed(thread)
        : Effect.logError("audit delivery thread: starting a new one", { reason: thread.gone }).pipe(
          Effect.andThen(start(config, workerUrl)),
          Effect.tap((t) => Effect.sync(() => void (thread = t)))
        )
    )
    return {
      name: destinationName(config),
      deliver: (records) =>
        Effect.flatMap(running, (t) =>
          Effect.suspend(() => {
            const id = ++ids
            const done = Deferred.makeUnsafe<void, DeliveryThreadFailed>()
            t.pending = { id, done }
            send(t, { _tag: "Deliver", id, batch: pack(records) })
            return Deferred.await(done).pipe(Effect.timeoutOrElse({ duration: options.timeoutMs, orElse: () => abandon(t, options.timeoutMs) }))
          })
        )
    }
  })
