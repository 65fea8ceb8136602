/**
 * What the bench reads about processes from /proc (Linux only): CPU time and RSS of a
 * pid, and CPU pinning with taskset.
 */
import { execFileSync } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { availableParallelism } from "node:os"

/** Clock ticks per second for utime/stime in /proc/<pid>/stat (USER_HZ; 100 on Linux). */
const ticksPerSecond = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100
  } catch {
    return 100
  }
})()

/** User + system CPU seconds the process (all its threads) has used so far. */
export const cpuSeconds = (pid: number): number => cpuSecondsOf(`/proc/${pid}/stat`)

const cpuSecondsOf = (statFile: string): number => {
  const stat = readFileSync(statFile, "utf8")
  // the command name may hold spaces and parentheses: fields start after the last ')'
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  // fields[0] is field 3 (state); utime is field 14, stime field 15
  const utime = Number(fields[11])
  const stime = Number(fields[12])
  return (utime + stime) / ticksPerSecond
}

/**
 * The same for the process's main thread alone (its task id is the pid): in Node, the
 * event loop, where the data path runs. The rest of a gateway's CPU is its helper threads'
 * (thread pool, V8's GC, the audit delivery thread), which a host with cores to spare runs
 * beside it.
 */
export const mainThreadCpuSeconds = (pid: number): number => cpuSecondsOf(`/proc/${pid}/task/${pid}/stat`)

/** Resident set size in bytes (VmRSS). */
export const rssBytes = (pid: number): number => {
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
  if (!m) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(m[1]) * 1024
}

export const alive = (pid: number): boolean => existsSync(`/proc/${pid}`)

/** Samples RSS every `everyMs` until stopped; returns the samples in bytes. */
export const sampleRss = (pid: number, everyMs: number): { stop: () => number[] } => {
  const samples: number[] = []
  const take = (): void => {
    try {
      samples.push(rssBytes(pid))
    } catch {
      // gone: the caller notices
    }
  }
  take()
  const timer = setInterval(take, everyMs)
  return {
    stop: () => {
      clearInterval(timer)
      take()
      return samples
    }
  }
}

/**
 * CPU placement: with at least 2 cores, proxies run on core 0 and load generators
 * (pgbench, psql and this process, which is also the Node client) on core 1.
 * PostgreSQL is not pinned: it is started by the test harness and may use both.
 */
export interface Pinning {
  readonly enabled: boolean
  readonly proxyCpus: string
  readonly loadCpus: string
  readonly note: string
  /** Prefix a command so that it runs on the given cpus. */
  readonly wrap: (role: "proxy" | "load", command: string, args: ReadonlyArray<string>) => { command: string; args: string[] }
}

const hasTaskset = (): boolean => {
  try {
    execFileSync("taskset", ["-p", String(process.pid)], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
}

export const planPinning = (disabled: boolean): Pinning => {
  const cores = availableParallelism()
  const noPin = (note: string): Pinning => ({
    enabled: false,
    proxyCpus: "any",
    loadCpus: "any",
    note,
    wrap: (_role, command, args) => ({ command, args: [...args] })
  })
  if (disabled) return noPin("pinning disabled (--no-pin)")
  if (cores < 2) return noPin(`no pinning: ${cores} core(s) available`)
  if (!hasTaskset()) return noPin("no pinning: taskset not available")
  const proxyCpus = "0"
  const loadCpus = cores >= 4 ? `1-${Math.min(cores - 1, 2)}` : "1"
  return {
    enabled: true,
    proxyCpus,
    loadCpus,
    note: `proxies (raw relay, PgBouncer, Sluice) on cpu ${proxyCpus}; load generators (pgbench, psql, the bench's own Node clients) on cpu ${loadCpus}; PostgreSQL unpinned (all ${cores} cpus)`,
    wrap: (role, command, args) => ({
      command: "taskset",
      args: ["-c", role === "proxy" ? proxyCpus : loadCpus, command, ...args]
    })
  }
}

/** Pins this process (all threads) to the load-generator cpus. */
export const pinSelf = (pinning: Pinning): void => {
  if (!pinning.enabled) return
  execFileSync("taskset", ["-a", "-p", "-c", pinning.loadCpus, String(process.pid)], { stdio: "ignore" })
}
