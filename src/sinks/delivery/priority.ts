/**
 * The delivery thread's scheduling priority: a little below the event loop's.
 *
 * Why: on a core the gateway's threads share, a batch being encoded, compressed and sent
 * made the statements that arrived meanwhile wait for the scheduler to switch back. With
 * one client running `SELECT 1`, audit to files took p99 from about 330 µs (audit off)
 * to 695; with the delivery thread 5 nice steps down, 570; 10 steps, 547; 19, 521
 * (alternating runs, 6 each). Why not further: the kernel shares a busy core by weight,
 * and at 5 steps the thread still gets about a quarter of it against a saturated event
 * loop, several times what delivery needs (under 10% of the gateway's CPU under pgbench),
 * so the spool cannot grow without bound when the gateway is saturated. At 19 steps it
 * would get 1.5%.
 *
 * Linux schedules threads one by one, and `setpriority` on a thread id sets that thread's
 * nice value; an unprivileged process may raise it but never lower it again, so the step
 * is relative to the nice value the gateway runs with.
 */
import { readlinkSync } from "node:fs"
import { getPriority, setPriority } from "node:os"

export const NICE_STEPS = 5
const NICEST = 19

/** This thread's id, from `/proc/thread-self` (Linux: `<pid>/task/<tid>`); undefined elsewhere. */
const ownThreadId = (): number | undefined => {
  try {
    const tid = Number(readlinkSync("/proc/thread-self").split("/").pop())
    return Number.isInteger(tid) && tid > 0 ? tid : undefined
  } catch {
    return undefined
  }
}

/** Lowers the calling thread's priority by {@link NICE_STEPS}; why it could not, if it could not. */
export const lowerOwnPriority = (): string | undefined => {
  const tid = ownThreadId()
  if (tid === undefined) return "this platform has no /proc/thread-self, so the thread keeps the gateway's priority"
  try {
    setPriority(tid, Math.min(NICEST, getPriority(tid) + NICE_STEPS))
    return undefined
  } catch (e) {
    return `setting its nice value failed (${e instanceof Error ? e.message : String(e)}), so it keeps the gateway's priority`
  }
}
