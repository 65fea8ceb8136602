/**
 * The spool under SIGKILL: a child Node process appends from many fibers (and consumes and
 * acknowledges some) until it is killed mid-run, several times over the same directory.
 * Each completed append and each completed acknowledgement is reported on stdout (a pipe:
 * synchronous on Linux, so a reported line was written before the kill). After every kill
 * the spool must hold every completed append that was not acknowledged, intact, in order
 * per fiber, and nothing that was never appended.
 *
 * It lives in the property project because it needs no servers (the integration project's
 * global setup starts PostgreSQL, Kafka and FerretDB).
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { Effect, Logger } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { openSpool, type SpoolRecord } from "../../src/sinks/spool/spool.ts"

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")
const spoolModule = pathToFileURL(path.join(repo, "src/sinks/spool/spool.ts")).href

/**
 * The child: F fibers append records tagged (round, fiber, i) of varying size (up to
 * 120 KB, so that writes are big enough to be cut by the kill), a consumer reads and acks
 * slowly. Lines: `A round fiber i` after an append completed, `K round fiber i` for each
 * record of a batch whose ack completed.
 */
const child = `
import { Effect } from "effect"
import { openSpool } from ${JSON.stringify(spoolModule)}
const [dir, round, fibers] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])]
const size = (f, i) => 16 + ((f * 7919 + i * 104729) % 7 === 0 ? 120000 : (f * 31 + i * 17) % 3000)
const make = (f, i) => {
  const b = Buffer.alloc(size(f, i))
  b.writeUInt32BE(round, 0); b.writeUInt32BE(f, 4); b.writeUInt32BE(i, 8); b.writeUInt32BE(b.length, 12)
  for (let k = 16; k < b.length; k++) b[k] = (round + f * 3 + i * 5 + k) & 255
  return b
}
const say = (s) => process.stdout.write(s)
await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const spool = yield* openSpool({ directory: dir, maxBytes: 1 << 30, segmentBytes: 256 * 1024, fsyncIntervalMs: 20, onFull: "refuse" })
  say("READY\\n")
  const consumer = Effect.gen(function*() {
    while (true) {
      const batch = yield* spool.next({ maxRecords: 20, maxBytes: 200000 })
      yield* spool.ack(batch[batch.length - 1].position)
      say(batch.map((r) => { const b = Buffer.from(r.data); return "K " + b.readUInt32BE(0) + " " + b.readUInt32BE(4) + " " + b.readUInt32BE(8) + "\\n" }).join(""))
      yield* Effect.sleep(15)
    }
  })
  const appender = (f) => Effect.gen(function*() {
    for (let i = 0; ; i++) {
      yield* spool.append([make(f, i)], { durable: i % 50 === 49 })
      say("A " + round + " " + f + " " + i + "\\n")
    }
  })
  yield* Effect.all([consumer, ...Array.from({ length: fibers }, (_, f) => appender(f))], { concurrency: "unbounded" })
})))
`

const roots: Array<string> = []
afterAll(() => {
  for (const d of roots) fs.rmSync(d, { recursive: true, force: true })
})

/** Runs the child until `appends` appends completed (and at least `ms`), then SIGKILLs it; returns its stdout lines. */
const runAndKill = (dir: string, round: number, fibers: number, appends: number, ms: number): Promise<Array<string>> =>
  new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["--input-type=module", "-e", child, dir, String(round), String(fibers)], {
      cwd: repo,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let out = ""
    let err = ""
    let done = 0
    let started = 0
    let killed = false
    const maybeKill = () => {
      if (!killed && started > 0 && done >= appends && Date.now() - started >= ms) {
        killed = true
        p.kill("SIGKILL")
      }
    }
    p.stdout.on("data", (chunk: Buffer) => {
      const text = chunk.toString()
      out += text
      if (started === 0 && out.includes("READY\n")) started = Date.now()
      for (let i = text.indexOf("A "); i >= 0; i = text.indexOf("A ", i + 1)) done++
      maybeKill()
    })
    p.stderr.on("data", (chunk: Buffer) => void (err += chunk.toString()))
    const timer = setInterval(maybeKill, 10)
    const guard = setTimeout(() => {
      p.kill("SIGKILL")
      reject(new Error(`the child did not reach ${appends} appends: ${err}`))
    }, 30_000)
    p.on("exit", (code, signal) => {
      clearInterval(timer)
      clearTimeout(guard)
      if (signal !== "SIGKILL") return reject(new Error(`child exited ${code} ${signal}: ${err}`))
      // a last line without its newline may have been cut by the kill: it does not count
      resolve(out.split("\n").slice(0, -1))
    })
  })

const key = (round: number, fiber: number, i: number) => `${round}/${fiber}/${i}`

/** Everything in the spool, checked for integrity; the spool is closed again without acking. */
const contents = async (dir: string): Promise<Array<{ round: number; fiber: number; i: number }>> => {
  const silent = Logger.layer([Logger.make(() => {})])
  return Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const spool = yield* openSpool({ directory: dir, maxBytes: 1 << 30, segmentBytes: 256 * 1024, fsyncIntervalMs: 20, onFull: "refuse", onCorrupt: "fail" })
    const out: Array<SpoolRecord> = []
    const count = spool.stats().records
    while (out.length < count) out.push(...(yield* spool.next({ maxRecords: 1000, maxBytes: 8 << 20 })))
    return out.map((r) => {
      const b = Buffer.from(r.data)
      const [round, fiber, i, length] = [b.readUInt32BE(0), b.readUInt32BE(4), b.readUInt32BE(8), b.readUInt32BE(12)]
      expect(length).toBe(b.length)
      for (let k = 16; k < b.length; k++) if (b[k] !== ((round + fiber * 3 + i * 5 + k) & 255)) throw new Error(`record ${key(round, fiber, i)} is corrupt at ${k}`)
      return { round, fiber, i }
    })
  }).pipe(Effect.provide(silent))))
}

describe("spool: SIGKILL", () => {
  it("every completed append that was not acknowledged survives each kill, intact and in order", { timeout: 120_000 }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sluice-spool-crash-"))
    roots.push(dir)
    const fibers = 8
    const completed = new Map<string, number>() // fiber key -> last completed i
    const acked = new Set<string>()
    const appended = new Set<string>()
    for (let round = 1; round <= 4; round++) {
      const lines = await runAndKill(dir, round, fibers, 400 * round, 150 + 100 * round)
      for (const line of lines) {
        const [kind, r, f, i] = line.split(" ")
        if (kind === "A") {
          appended.add(key(Number(r), Number(f), Number(i)))
          completed.set(`${r}/${f}`, Math.max(completed.get(`${r}/${f}`) ?? -1, Number(i)))
        } else if (kind === "K") acked.add(key(Number(r), Number(f), Number(i)))
      }
      const present = await contents(dir)
      const seen = new Set<string>()
      const lastPerFiber = new Map<string, number>()
      for (const { round: r, fiber: f, i } of present) {
        const k = key(r, f, i)
        expect(seen.has(k), `duplicate ${k}`).toBe(false)
        seen.add(k)
        // in order per fiber, nothing that was never appended beyond the one in flight
        const prev = lastPerFiber.get(`${r}/${f}`)
        if (prev !== undefined) expect(i, `order of ${r}/${f}`).toBeGreaterThan(prev)
        lastPerFiber.set(`${r}/${f}`, i)
        expect(i).toBeLessThanOrEqual((completed.get(`${r}/${f}`) ?? -1) + 1)
      }
      const missing = [...appended].filter((k) => !seen.has(k) && !acked.has(k))
      expect(missing, `completed appends lost after kill ${round}`).toEqual([])
      expect(appended.size).toBeGreaterThanOrEqual(400 * round)
    }
  })
})
