/**
 * Profiles the Sluice process under pgbench -S: starts the harness PostgreSQL, Sluice
 * (allow-all, or --variant full or full-audit-off) with `node --cpu-prof`, runs pgbench against it, stops
 * Sluice so that Node writes the profile, and prints the functions with the most self
 * time, and the same time grouped by package / source file.
 *
 *   node bench/profile.ts [--mode prepared] [--clients 16] [--seconds 20] [--variant allow-all]
 *
 * Writes bench/results/profile-<variant>.md (the summary); the .cpuprofile itself stays in a temp
 * dir whose path is printed (open it in Chrome DevTools or speedscope for a flame graph).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, relative } from "node:path"
import { parseArgs } from "node:util"
import { startPostgres } from "../test/harness/postgres.ts"
import { run } from "../test/harness/process.ts"
import { pinSelf, planPinning } from "./lib/proc.ts"
import { libpqEnv, startDirect, startSluice, type Upstream } from "./lib/targets.ts"
import { pgbench } from "./lib/workloads.ts"

const { values } = parseArgs({
  options: {
    mode: { type: "string", default: "prepared" },
    clients: { type: "string", default: "16" },
    seconds: { type: "string", default: "20" },
    variant: { type: "string", default: "allow-all" },
    top: { type: "string", default: "25" }
  }
})
const mode = values.mode === "simple" ? "simple" : "prepared"
const clients = Number(values.clients)
const seconds = Number(values.seconds)
// full-kafka needs a broker, which this script does not start
const PROFILED = ["allow-all", "full", "full-audit-off"] as const
const variant = PROFILED.find((v) => v === values.variant) ?? "allow-all"

interface ProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number; readonly columnNumber: number }
  readonly hitCount?: number
  readonly children?: ReadonlyArray<number>
}
interface CpuProfile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly startTime: number
  readonly endTime: number
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const repoRoot = new URL("..", import.meta.url).pathname

/** Where a function lives, coarsely: a package, a file of ours, or part of the runtime. */
const home = (url: string, name: string): string => {
  if (url === "") return name.startsWith("(") ? name : "(native)"
  if (url.startsWith("node:")) return "node internals"
  const path = url.replace(/^file:\/\//, "")
  const nm = path.lastIndexOf("/node_modules/")
  if (nm >= 0) {
    const rest = path.slice(nm + "/node_modules/".length).split("/")
    return rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!
  }
  return relative(repoRoot, path)
}

const summarise = (profile: CpuProfile, top: number): string => {
  // self time per node: the sampling interval that ends at each sample belongs to it
  const self = new Map<number, number>()
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))
  const byFunction = new Map<string, { us: number; name: string; where: string }>()
  const byHome = new Map<string, number>()
  let active = 0
  let idle = 0
  for (const n of profile.nodes) {
    const us = self.get(n.id) ?? 0
    if (us === 0) continue
    const f = n.callFrame
    if (f.functionName === "(idle)") {
      idle += us
      continue
    }
    active += us
    const where = f.url ? `${home(f.url, f.functionName)}:${f.lineNumber + 1}` : home(f.url, f.functionName)
    const key = `${f.functionName}\0${where}`
    const entry = byFunction.get(key) ?? { us: 0, name: f.functionName || "(anonymous)", where }
    entry.us += us
    byFunction.set(key, entry)
    const h = home(f.url, f.functionName)
    byHome.set(h, (byHome.get(h) ?? 0) + us)
  }
  const pct = (us: number): string => `${((100 * us) / active).toFixed(1)}%`
  const lines: string[] = []
  const total = profile.endTime - profile.startTime
  lines.push(`Profile of ${(total / 1e6).toFixed(1)} s: ${(active / 1e6).toFixed(2)} s on the CPU, ${(idle / 1e6).toFixed(2)} s idle. Percentages are of the CPU time.`)
  lines.push("")
  lines.push("| Self time | Function | Where |")
  lines.push("|---:|---|---|")
  for (const f of [...byFunction.values()].sort((a, b) => b.us - a.us).slice(0, top)) {
    lines.push(`| ${pct(f.us)} | \`${f.name}\` | ${f.where} |`)
  }
  lines.push("")
  lines.push("| Self time | Package or file |")
  lines.push("|---:|---|")
  for (const [h, us] of [...byHome.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    lines.push(`| ${pct(us)} | ${h} |`)
  }
  return lines.join("\n")
}

const pin = planPinning(false)
pinSelf(pin)
console.log(`pinning: ${pin.note}`)
const server = await startPostgres()
const profDir = mkdtempSync(join(tmpdir(), "sluice-profile-"))
try {
  const upstream: Upstream = {
    backend: { host: server.host, port: server.port, database: server.databases.app, user: server.backend.user, password: server.backend.password },
    superuser: { connectionString: server.superuser.url }
  }
  await run("pgbench -i", "pgbench", ["-i", "-q", "-s", "10"], { env: libpqEnv(startDirect(upstream).endpoint), timeoutMs: 600_000 })
  const sluice = await startSluice(upstream, pin, { variant, nodeFlags: ["--cpu-prof", "--cpu-prof-dir", profDir] })
  let result
  try {
    console.log(`warm-up: pgbench -S -M ${mode} -c ${clients}, 3 s`)
    await pgbench(sluice, { pin }, { mode, clients, length: { seconds: 3 } })
    console.log(`profiling: pgbench -S -M ${mode} -c ${clients}, ${seconds} s`)
    result = await pgbench(sluice, { pin }, { mode, clients, length: { seconds }, excludeLogins: true })
    console.log(`${result.tps.toFixed(0)} TPS, ${result.cpuUsPerTx?.toFixed(1)} µs CPU per transaction (with the profiler on)`)
  } finally {
    await sluice.stop()
  }
  // one profile a thread, named CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile: thread 0 is the
  // event loop (the data path), any other the audit delivery thread (src/sinks/delivery/thread.ts)
  const threadOf = (f: string) => Number(f.split(".")[4])
  const files = readdirSync(profDir).filter((f) => f.endsWith(".cpuprofile")).sort((a, b) => threadOf(a) - threadOf(b))
  if (files[0] === undefined || threadOf(files[0]) !== 0) throw new Error(`Sluice wrote no main-thread .cpuprofile into ${profDir} (did it exit cleanly on SIGTERM?)`)
  const sections = files.flatMap((f) => {
    const profile = JSON.parse(readFileSync(join(profDir, f), "utf8")) as CpuProfile
    return [`## ${threadOf(f) === 0 ? "Main thread (the event loop: the data path)" : `Thread ${threadOf(f)} (audit delivery)`}`, "", summarise(profile, Number(values.top)), ""]
  })
  const summary = [
    `# Sluice CPU profile: pgbench -S -M ${mode} -c ${clients}, ${seconds} s, ${variant}`,
    "",
    `${new Date().toISOString()}; ${result ? `${result.tps.toFixed(0)} TPS and ${result.cpuUsPerTx?.toFixed(1)} µs CPU per transaction with the profiler on (it costs some)` : ""}. ${sluice.notes.join("; ")}`,
    "",
    ...sections
  ].join("\n")
  const out = new URL("./results/", import.meta.url).pathname
  mkdirSync(out, { recursive: true })
  writeFileSync(join(out, `profile-${variant}.md`), summary)
  console.log("\n" + summary)
  console.log(`profiles: ${files.map((f) => join(profDir, f)).join(", ")} (open in Chrome DevTools or speedscope for a flame graph)`)
  console.log(`summary: ${join(out, `profile-${variant}.md`)}`)
} finally {
  await server.stop()
}
