/** What the bench ran on: printed first, and stored with the results. */
import { execFileSync } from "node:child_process"
import { cpus, loadavg, release, totalmem } from "node:os"
import type { Machine } from "./results.ts"

const firstLine = (command: string, args: ReadonlyArray<string>): string => {
  try {
    return execFileSync(command, [...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).split("\n")[0]!.trim()
  } catch {
    return "not found"
  }
}

const commit = (): string => {
  const root = new URL("../..", import.meta.url).pathname
  const head = firstLine("git", ["-C", root, "rev-parse", "--short", "HEAD"])
  const dirty = firstLine("git", ["-C", root, "status", "--porcelain", "--", "src", "bin", "package.json"])
  return dirty === "" ? head : `${head} + uncommitted changes in src/, bin/ or package.json`
}

export const describeMachine = (postgres: string): Omit<Machine, "loadAverageAfter"> => ({
  cpuModel: cpus()[0]?.model ?? "unknown",
  cores: cpus().length,
  memoryGiB: Number((totalmem() / 2 ** 30).toFixed(1)),
  kernel: release(),
  node: process.version,
  postgres,
  pgbench: firstLine("pgbench", ["--version"]),
  pgbouncer: firstLine("/usr/sbin/pgbouncer", ["--version"]),
  psql: firstLine("psql", ["--version"]),
  sluiceCommit: commit(),
  loadAverageBefore: loadavg().map((x) => Number(x.toFixed(2)))
})

export const loadAverage = (): number[] => loadavg().map((x) => Number(x.toFixed(2)))
