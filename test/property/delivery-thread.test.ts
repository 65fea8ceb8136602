/**
 * The delivery thread: batches handed over in one buffer arrive intact (fast-check), a
 * real thread writes them to the file sink, a destination that cannot open stops the
 * gateway's start with its own message, the thread runs below its starter's priority, a failed delivery is reported with its reason, a
 * thread that dies or does not answer in time is replaced by the next delivery, and
 * closing the scope ends the thread.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Exit, Scope } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import fc from "fast-check"
import { afterEach, describe, expect, it } from "vitest"
import type { DestinationConfig } from "../../src/sinks/delivery/destination.ts"
import { NICE_STEPS } from "../../src/sinks/delivery/priority.ts"
import { pack, unpack } from "../../src/sinks/delivery/protocol.ts"
import { DeliveryThreadFailed, deliveryThread } from "../../src/sinks/delivery/thread.ts"
import type { AuditEvent } from "../../src/sinks/events.ts"
import { readContainerFiles } from "../../src/sinks/file-sink.ts"
import { toSpoolRecord } from "../../src/sinks/spool-record.ts"

const dirs: Array<string> = []
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })))
})
const tempDir = async (): Promise<string> => {
  const d = await mkdtemp(join(tmpdir(), "sluice-delivery-"))
  dirs.push(d)
  return d
}

const failingOnce = new URL("./fixtures/delivery-worker-failing-once.ts", import.meta.url)

const filesAt = (directory: string): DestinationConfig => ({ files: { directory, maxFileBytes: 1024 * 1024, maxFileAgeMs: 60_000 } })

const sessionEnd = (sequence: number): AuditEvent => ({
  eventId: `3f0c1a2b-4d5e-4f60-8a7b-${sequence.toString(16).padStart(12, "0")}`,
  sessionId: "delivery-test",
  sequence,
  time: 1_790_000_000_000_000 + sequence,
  gateway: "gw",
  payload: { _tag: "SessionEnd", reason: `end ${sequence}`, durationMicros: sequence, bytesFromClient: sequence, bytesToClient: 2 * sequence, statements: sequence }
})
const batch = (from: number, count: number): NonEmptyReadonlyArray<AuditEvent> =>
  Array.from({ length: count }, (_, i) => sessionEnd(from + i)) as unknown as NonEmptyReadonlyArray<AuditEvent>
const records = (events: NonEmptyReadonlyArray<AuditEvent>) => events.map(toSpoolRecord) as unknown as NonEmptyReadonlyArray<Uint8Array>

/** Runs `use` with a delivery thread open in its own scope, and how long closing the scope took. */
const withThread = <A>(
  config: DestinationConfig,
  use: (deliver: (rs: NonEmptyReadonlyArray<Uint8Array>) => Promise<Exit.Exit<void, DeliveryThreadFailed>>) => Promise<A>,
  options: { readonly workerUrl?: URL; readonly timeoutMs?: number } = {}
) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const destination = yield* Scope.provide(scope)(deliveryThread(config, { timeoutMs: 60_000, ...options }))
      const result = yield* Effect.promise(() => use((rs) => Effect.runPromise(Effect.exit(destination.deliver(rs)))))
      const closing = performance.now()
      yield* Scope.close(scope, Exit.void)
      return { result, closeMs: performance.now() - closing }
    })
  )

describe("delivery protocol", () => {
  it("a packed batch unpacks to the same records, in order, in buffers of their own", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 50 }), (list) => {
        const packed = pack(list as unknown as NonEmptyReadonlyArray<Uint8Array>)
        // transferable: never a view of Node's shared allocation pool
        expect(packed.data.byteLength).toBe(packed.data.buffer.byteLength)
        expect(packed.ends.byteLength).toBe(packed.ends.buffer.byteLength)
        expect(unpack(packed).map((b) => [...b])).toEqual(list.map((r) => [...r]))
      })
    )
  })
})

describe("delivery thread", () => {
  it("writes every batch to the file sink, in order, and ends when its scope closes", async () => {
    const directory = join(await tempDir(), "files")
    const { result, closeMs } = await withThread(filesAt(directory), async (deliver) => [
      await deliver(records(batch(0, 3))),
      await deliver(records(batch(3, 200))),
      await deliver(records(batch(203, 1)))
    ])
    expect(result.every(Exit.isSuccess)).toBe(true)
    expect(await Effect.runPromise(readContainerFiles(directory))).toEqual(batch(0, 204))
    // a thread that ignored Stop would hold the scope for the whole grace period (10 s)
    expect(closeMs).toBeLessThan(5_000)
  })

  it("runs below the priority of the thread that started it (Linux: nice + NICE_STEPS)", async () => {
    const niceOf = (task: string): number => Number(readFileSync(`${task}/stat`, "utf8").split(") ")[1]!.split(" ")[16])
    const deliveryTasks = () =>
      readdirSync("/proc/self/task").map((t) => `/proc/self/task/${t}`).filter((t) => readFileSync(`${t}/comm`, "utf8").trim() === "sluice-audit-de")
    const before = new Set(deliveryTasks())
    const own = niceOf(`/proc/self/task/${readlinkSync("/proc/thread-self").split("/").pop()}`)
    const { result } = await withThread(filesAt(join(await tempDir(), "files")), async () => deliveryTasks().filter((t) => !before.has(t)).map(niceOf))
    expect(result).toEqual([Math.min(19, own + NICE_STEPS)])
  })

  it("a destination that cannot open fails the start, with the destination's own message", async () => {
    const blocker = join(await tempDir(), "a-file")
    await writeFile(blocker, "")
    const exit = await Effect.runPromiseExit(Effect.scoped(deliveryThread(filesAt(join(blocker, "files")), { timeoutMs: 60_000 })))
    expect(exit).toMatchObject({ _tag: "Failure" })
    const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
    expect(error).toMatchObject({ _tag: "Fail", error: { _tag: "DeliveryThreadFailed" } })
    expect(String((error as { error: DeliveryThreadFailed }).error.message)).toContain(join(blocker, "files"))
  })

  it("reports a failed delivery with the destination's reason, and stays usable", async () => {
    const { result } = await withThread({ ...filesAt(join(await tempDir(), "files")), kafka: { brokers: ["127.0.0.1:1"], topic: "t", clientId: "sluice-test" } }, async (deliver) => [
      await deliver(records(batch(0, 2))),
      await deliver(records(batch(0, 2)))
    ])
    for (const exit of result) {
      expect(exit).toMatchObject({ _tag: "Failure" })
      expect(Exit.isFailure(exit) ? String(exit.cause) : "").toMatch(/Kafka is unavailable/)
    }
  }, 30_000)

  it("a thread that dies fails the delivery in progress, and the next delivery starts a new thread", async () => {
    const directory = join(await tempDir(), "crash")
    const { result } = await withThread(
      filesAt(directory),
      async (deliver) => [await deliver(records(batch(0, 5))), await deliver(records(batch(0, 5)))],
      { workerUrl: failingOnce }
    )
    expect(result[0]).toMatchObject({ _tag: "Failure" })
    expect(Exit.isFailure(result[0]!) ? String(result[0].cause) : "").toContain("a defect in the delivery thread")
    expect(result[1]).toMatchObject({ _tag: "Success" })
    expect(await Effect.runPromise(readContainerFiles(directory))).toEqual(batch(0, 5))
  })

  it("a delivery not answered within the timeout fails, its thread is stopped, and the next delivery starts a new one", async () => {
    const directory = join(await tempDir(), "hang")
    const { result } = await withThread(
      filesAt(directory),
      async (deliver) => {
        const started = performance.now()
        const hung = await deliver(records(batch(0, 3)))
        return { hung, waitedMs: performance.now() - started, next: await deliver(records(batch(0, 3))) }
      },
      { workerUrl: failingOnce, timeoutMs: 500 }
    )
    expect(Exit.isFailure(result.hung) ? String(result.hung.cause) : "").toContain("did not finish a delivery within 500 ms, so it was stopped")
    expect(result.waitedMs).toBeGreaterThanOrEqual(450)
    expect(result.waitedMs).toBeLessThan(5_000)
    expect(result.next).toMatchObject({ _tag: "Success" })
    expect(await Effect.runPromise(readContainerFiles(directory))).toEqual(batch(0, 3))
  })
})
