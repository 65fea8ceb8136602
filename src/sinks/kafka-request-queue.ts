/**
 * kafkajs 2.2.4 polls each broker connection's request queue every millisecond, for as
 * long as the connection lives, once one request has been answered. Its
 * `scheduleCheckPendingRequests` waits `throttledUntil - Date.now()`: while nothing is
 * throttled `throttledUntil` is -1, so that is minus the clock, which Node runs as 1 ms
 * (printing a TimeoutNegativeWarning), and every check schedules the next one (kafkajs
 * issue #1751, open). In the delivery thread that is a thousand wake-ups a second per
 * connection, each one taking the CPU from whatever shares its core, the event loop among
 * them. This replaces the method with one that schedules a check only when a request
 * waits (as kafkajs does) or a throttle has yet to run out: with neither, the next request
 * or answer checks the queue anyway. An idempotent producer idle for 3 s after one send,
 * against the test broker: 118–128 ms of CPU and about 2,700 wake-ups with kafkajs's
 * method, 5–6 ms and 32 with this one.
 */
import { createRequire } from "node:module"

/** What the replacement reads and writes of kafkajs's RequestQueue. */
interface RequestQueue {
  throttledUntil: number
  throttleCheckTimeoutId: ReturnType<typeof setTimeout> | null
  readonly pending: ReadonlyArray<unknown>
  checkPendingRequests(): void
  scheduleCheckPendingRequests(): void
}

const require = createRequire(import.meta.url)

/** kafkajs's RequestQueue class (a module of its own, `src/network/requestQueue`). */
export const KafkajsRequestQueue = require("kafkajs/src/network/requestQueue") as { readonly prototype: RequestQueue }

/** kafkajs's own method, for tests. */
export const kafkajsSchedule = KafkajsRequestQueue.prototype.scheduleCheckPendingRequests

/** kafkajs's wait before it looks again at requests held back by its in-flight limit (CHECK_PENDING_REQUESTS_INTERVAL). */
const CHECK_PENDING_MS = 10

export function quietSchedule(this: RequestQueue): void {
  if (this.throttleCheckTimeoutId !== null) return
  const throttledFor = this.throttledUntil - Date.now()
  const delay = this.pending.length > 0 ? (throttledFor > 0 ? throttledFor : CHECK_PENDING_MS) : throttledFor
  if (delay <= 0) return
  this.throttleCheckTimeoutId = setTimeout(() => {
    this.throttleCheckTimeoutId = null
    this.checkPendingRequests()
  }, delay)
}

/** Makes every kafkajs request queue, existing or future, schedule its checks with {@link quietSchedule} (idempotent). */
export const useQuietRequestQueue = (): void => {
  KafkajsRequestQueue.prototype.scheduleCheckPendingRequests = quietSchedule
}
