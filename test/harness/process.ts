/**
 * Child processes of the harness, tracked so that none outlives the test run.
 *
 * Three layers, from polite to blunt:
 *  - `stop()` on each child (graceful signal, then SIGKILL after a grace time);
 *  - on this process's exit, SIGINT, SIGTERM or SIGHUP: every live child gets
 *    its emergency signal synchronously and registered temp dirs are removed;
 *  - a detached watchdog shell polls this process; when it is gone (even by
 *    SIGKILL, where no handler runs) it kills what is still registered and
 *    removes the registered dirs.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { basename, join } from "node:path"

export interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface SpawnOptions {
  /** Short name used in errors, e.g. "postgres". */
  readonly name: string
  readonly command: string
  readonly args: readonly string[]
  /** stdout and stderr are appended here (the child writes it directly). */
  readonly logFile: string
  readonly cwd?: string
  readonly env?: NodeJS.ProcessEnv
  /** Run as this OS user (we are root); see `osUser`. */
  readonly user?: OsUser
  /** Signal for a graceful stop. Default SIGTERM. */
  readonly stopSignal?: NodeJS.Signals
  /** Signal when the harness dies without calling stop(). Default SIGKILL. */
  readonly emergencySignal?: NodeJS.Signals
}

export interface Tracked {
  readonly name: string
  readonly pid: number
  readonly logFile: string
  /** Undefined while the child runs. */
  readonly exit: () => Exit | undefined
  readonly exited: Promise<Exit>
  /** Graceful signal, then SIGKILL after `graceMs` (default 5000). */
  readonly stop: (opts?: { graceMs?: number; signal?: NodeJS.Signals }) => Promise<Exit>
}

export interface OsUser {
  readonly name: string
  readonly uid: number
  readonly gid: number
}

interface Live {
  readonly child: ChildProcess
  readonly emergencySignal: NodeJS.Signals
}

const live = new Set<Live>()
const dirs = new Set<string>()

// ---------------------------------------------------------------------------
// Watchdog: a registry file the detached shell reads once we are gone.

const WATCHDOG = String.raw`
reg="$1"; parent="$2"
while kill -0 "$parent" 2>/dev/null; do sleep 1; done
[ -s "$reg" ] || { rm -rf -- "$(dirname "$reg")"; exit 0; }
while read -r kind sig pid; do [ "$kind" = kill ] && kill -s "$sig" "$pid" 2>/dev/null; done < "$reg"
sleep 3
while read -r kind sig pid; do [ "$kind" = kill ] && kill -s KILL "$pid" 2>/dev/null; done < "$reg"
while read -r kind path; do [ "$kind" = rm ] && rm -rf -- "$path"; done < "$reg"
rm -rf -- "$(dirname "$reg")"
`

let registryFile: string | undefined

const writeRegistry = (): void => {
  if (registryFile === undefined) {
    if (live.size === 0 && dirs.size === 0) return
    const dir = mkdtempSync(join(tmpdir(), "sluice-harness-"))
    registryFile = join(dir, "registry")
    writeFileSync(registryFile, "")
    const watchdog = spawn("sh", ["-c", WATCHDOG, "sluice-watchdog", registryFile, String(process.pid)], {
      detached: true,
      stdio: "ignore",
    })
    watchdog.unref()
  }
  const lines: string[] = []
  for (const { child, emergencySignal } of live) {
    if (child.pid !== undefined) lines.push(`kill ${emergencySignal.replace(/^SIG/, "")} ${child.pid}`)
  }
  for (const dir of dirs) lines.push(`rm ${dir}`)
  try {
    writeFileSync(registryFile, lines.join("\n") + (lines.length ? "\n" : ""))
  } catch {
    // the watchdog is a last resort; the in-process handlers still work
  }
}

// ---------------------------------------------------------------------------
// In-process last resort.

const killAllNow = (): void => {
  for (const { child, emergencySignal } of live) {
    try {
      child.kill(emergencySignal)
    } catch {
      // already gone
    }
  }
  for (const dir of dirs) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 2 })
    } catch {
      // a server still writing into it; the watchdog retries after the kill
    }
  }
}

let handlersInstalled = false
const installHandlers = (): void => {
  if (handlersInstalled) return
  handlersInstalled = true
  process.on("exit", killAllNow)
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = (): void => {
      killAllNow()
      process.off(signal, onSignal)
      // Keep the default behaviour (exit) unless someone else handles it.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
    }
    process.on(signal, onSignal)
  }
}

// ---------------------------------------------------------------------------

/** A temp dir removed by `removeTempDir`, or at the latest when we exit. */
export const makeTempDir = (prefix: string): string => {
  installHandlers()
  const dir = mkdtempSync(join(tmpdir(), prefix))
  dirs.add(dir)
  writeRegistry()
  return dir
}

export const removeTempDir = (dir: string): void => {
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 })
  dirs.delete(dir)
  writeRegistry()
}

/** Looks a user up in /etc/passwd (no getent needed). */
export const osUser = (name: string): OsUser | undefined => {
  let passwd: string
  try {
    passwd = readFileSync("/etc/passwd", "utf8")
  } catch {
    return undefined
  }
  for (const line of passwd.split("\n")) {
    const [user, , uid, gid] = line.split(":")
    if (user === name && uid !== undefined && gid !== undefined) return { name, uid: Number(uid), gid: Number(gid) }
  }
  return undefined
}

export const isRoot = (): boolean => process.getuid?.() === 0

/** The last `lines` lines of a log file ("" when unreadable). */
export const logTail = (file: string, lines = 40): string => {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n")
  } catch {
    return ""
  }
}

/**
 * Waits until a server just spawned is ready (`ready` gets a check that fails once the
 * process has exited); if it never is, stops it and fails with the tail of its log.
 */
export const untilReady = async (
  server: Tracked,
  what: string,
  stop: () => Promise<void>,
  ready: (failed: () => Error | undefined) => Promise<void>,
): Promise<void> => {
  const failed = (): Error | undefined => {
    const exit = server.exit()
    return exit && new Error(`${what} exited (${exit.signal ?? exit.code}) while starting`)
  }
  try {
    await ready(failed)
  } catch (err) {
    const tail = logTail(server.logFile)
    await stop().catch(() => {})
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n--- ${basename(server.logFile)} (tail) ---\n${tail}`)
  }
}

const track = (child: ChildProcess, emergencySignal: NodeJS.Signals): Promise<Exit> => {
  installHandlers()
  const entry: Live = { child, emergencySignal }
  live.add(entry)
  writeRegistry()
  return new Promise<Exit>((resolve) => {
    const done = (exit: Exit): void => {
      if (!live.delete(entry)) return
      writeRegistry()
      resolve(exit)
    }
    // "close": exited and its stdio drained (run() needs all the output)
    child.once("close", (code, signal) => done({ code, signal }))
    child.once("error", () => done({ code: null, signal: null }))
  })
}

const spawnError = (name: string, command: string, err: NodeJS.ErrnoException): Error =>
  err.code === "ENOENT"
    ? new Error(`${name}: ${command} not found`)
    : new Error(`${name}: could not start ${command}: ${err.message}`)

/**
 * Starts a long-running server process. Resolves once the OS has started it
 * (rejects if the binary cannot be executed).
 */
export const spawnTracked = async (opts: SpawnOptions): Promise<Tracked> => {
  const log = openSync(opts.logFile, "a")
  let child: ChildProcess
  try {
    child = spawn(opts.command, [...opts.args], {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ["ignore", log, log],
      ...(opts.user ? { uid: opts.user.uid, gid: opts.user.gid } : {}),
    })
  } finally {
    closeSync(log)
  }
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve)
    child.once("error", (err) => reject(spawnError(opts.name, opts.command, err)))
  })
  let exit: Exit | undefined
  const exited = track(child, opts.emergencySignal ?? "SIGKILL").then((e) => (exit = e))
  const pid = child.pid
  if (pid === undefined) throw new Error(`${opts.name}: no pid after spawn`)

  const stop = async (stopOpts: { graceMs?: number; signal?: NodeJS.Signals } = {}): Promise<Exit> => {
    if (exit) return exit
    child.kill(stopOpts.signal ?? opts.stopSignal ?? "SIGTERM")
    const timer = setTimeout(() => child.kill("SIGKILL"), stopOpts.graceMs ?? 5000)
    try {
      return await exited
    } finally {
      clearTimeout(timer)
    }
  }
  return { name: opts.name, pid, logFile: opts.logFile, exit: () => exit, exited, stop }
}

export interface RunOptions {
  readonly cwd?: string
  readonly env?: NodeJS.ProcessEnv
  readonly user?: OsUser
  readonly timeoutMs?: number
  /** Text written to stdin. */
  readonly input?: string
  /** Also copy the child's stderr to ours as it comes (progress of long steps). */
  readonly echoStderr?: boolean
}

/**
 * Runs a short command to completion (tracked while it runs). Rejects with
 * its output when it fails.
 */
export const run = async (
  name: string,
  command: string,
  args: readonly string[],
  opts: RunOptions = {},
): Promise<{ stdout: string; stderr: string }> => {
  const child = spawn(command, [...args], {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    ...(opts.user ? { uid: opts.user.uid, gid: opts.user.gid } : {}),
  })
  let stdout = ""
  let stderr = ""
  child.stdout?.setEncoding("utf8").on("data", (d: string) => (stdout += d))
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    stderr += d
    if (opts.echoStderr) process.stderr.write(d)
  })
  if (opts.input !== undefined) child.stdin?.end(opts.input)
  let spawnFailure: NodeJS.ErrnoException | undefined
  child.once("error", (err) => (spawnFailure = err))
  const timer = opts.timeoutMs ? setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs) : undefined
  const exit = await track(child, "SIGKILL")
  if (timer) clearTimeout(timer)
  if (spawnFailure) throw spawnError(name, command, spawnFailure)
  if (exit.code !== 0) {
    const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`
    throw new Error(`${name}: ${command} ${args.join(" ")} ${how}\n${(stderr + stdout).trim()}`)
  }
  return { stdout, stderr }
}

/** Children still running (for tests of the harness). */
export const liveChildren = (): number[] => [...live].flatMap(({ child }) => (child.pid === undefined ? [] : [child.pid]))
