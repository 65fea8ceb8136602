/**
 * kafkajs's request queue schedules its checks quietly once Sluice's replacement is in:
 * with no request waiting and no throttle it schedules nothing (kafkajs's own method polls
 * every millisecond, shown first), and otherwise it waits as kafkajs does.
 */
import fc from "fast-check"
import { afterEach, describe, expect, it, vi } from "vitest"
import { KafkajsRequestQueue, kafkajsSchedule, quietSchedule, useQuietRequestQueue } from "../../src/sinks/kafka-request-queue.ts"

/** A request queue's scheduling state, with kafkajs's check: it sends nothing here, then schedules again, as kafkajs's does. */
const queue = (schedule: () => void, pending: number, throttledUntil: number) => {
  const q = {
    throttledUntil,
    throttleCheckTimeoutId: null as ReturnType<typeof setTimeout> | null,
    pending: Array.from({ length: pending }, () => ({})),
    checks: 0,
    checkPendingRequests() {
      q.checks++
      q.scheduleCheckPendingRequests()
    },
    scheduleCheckPendingRequests: schedule
  }
  return q
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

afterEach(() => vi.restoreAllMocks())

describe("kafkajs request queue scheduling", () => {
  it("kafkajs's own method keeps checking an idle, unthrottled queue every millisecond; the replacement schedules nothing", async () => {
    const noisy = queue(kafkajsSchedule, 0, -1)
    const quiet = queue(quietSchedule, 0, -1)
    noisy.checkPendingRequests()
    quiet.checkPendingRequests()
    await sleep(100)
    clearTimeout(noisy.throttleCheckTimeoutId ?? undefined)
    expect(noisy.checks).toBeGreaterThan(10)
    expect(quiet.checks).toBe(1)
    expect(quiet.throttleCheckTimeoutId).toBeNull()
  })

  it("otherwise waits as kafkajs does: until a throttle ends, or 10 ms for requests held back; never twice", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3 }), fc.oneof(fc.constant(-1), fc.integer({ min: -60_000, max: 60_000 })), (pending, throttle) => {
        const now = 1_800_000_000_000
        vi.spyOn(Date, "now").mockReturnValue(now)
        const scheduled = vi.spyOn(globalThis, "setTimeout")
        const q = queue(quietSchedule, pending, throttle === -1 ? -1 : now + throttle)
        q.scheduleCheckPendingRequests()
        q.scheduleCheckPendingRequests()
        const throttledFor = throttle === -1 ? -now - 1 : throttle
        const expected = pending > 0 ? (throttledFor > 0 ? throttledFor : 10) : throttledFor > 0 ? throttledFor : undefined
        expect(scheduled.mock.calls.map((call) => call[1])).toEqual(expected === undefined ? [] : [expected])
        clearTimeout(q.throttleCheckTimeoutId ?? undefined)
        vi.restoreAllMocks()
      })
    )
  })

  it("is installed on kafkajs's RequestQueue class", () => {
    useQuietRequestQueue()
    expect(KafkajsRequestQueue.prototype.scheduleCheckPendingRequests).toBe(quietSchedule)
  })
})
