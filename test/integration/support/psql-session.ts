/**
 * A live `psql` session driven over its stdin: one process, one connection, commands
 * sent one at a time. Each command is followed by an `\echo` and a `\warn` of a unique
 * mark, so that its stdout and stderr are known to be complete when both marks arrive.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"

export interface PsqlOutput {
  readonly stdout: string
  readonly stderr: string
}

export interface PsqlSession {
  /** Sends `sql` (one or more lines) and waits for everything it printed. */
  readonly run: (sql: string, timeoutMs?: number) => Promise<PsqlOutput>
  readonly pid: number
  readonly exited: () => boolean
  /** Sends \q and waits for the process to end; kills it if it does not. */
  readonly quit: () => Promise<number | null>
}

export const startPsql = async (conninfo: string, env: Record<string, string>, extraArgs: ReadonlyArray<string> = []): Promise<PsqlSession> => {
  const child: ChildProcessWithoutNullStreams = spawn("psql", ["-X", "-At", "-d", conninfo, ...extraArgs], {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, PGSSLMODE: "disable", PGCONNECT_TIMEOUT: "10", ...env }
  })
  let stdout = ""
  let stderr = ""
  child.stdout.on("data", (d) => (stdout += d))
  child.stderr.on("data", (d) => (stderr += d))
  child.stdin.on("error", () => {})
  const closed = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)))
  let exitCode: number | null | undefined
  void closed.then((c) => (exitCode = c))
  let marks = 0

  const run = async (sql: string, timeoutMs = 10_000): Promise<PsqlOutput> => {
    const mark = `__sluice_mark_${++marks}__`
    const outFrom = stdout.length
    const errFrom = stderr.length
    child.stdin.write(`${sql}\n\\echo ${mark}\n\\warn ${mark}\n`)
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const out = stdout.indexOf(`${mark}\n`, outFrom)
      const err = stderr.indexOf(`${mark}\n`, errFrom)
      if (out >= 0 && err >= 0) return { stdout: stdout.slice(outFrom, out), stderr: stderr.slice(errFrom, err) }
      if (exitCode !== undefined) throw new Error(`psql exited (${exitCode}) during ${JSON.stringify(sql)}:\n${stdout.slice(outFrom)}\n${stderr.slice(errFrom)}`)
      if (Date.now() > deadline) throw new Error(`psql did not finish ${JSON.stringify(sql)} within ${timeoutMs} ms:\n${stdout.slice(outFrom)}\n${stderr.slice(errFrom)}`)
      await new Promise((r) => setTimeout(r, 10))
    }
  }

  // Connected (or not): the first command proves it.
  await run("SELECT 'connected';")
  return {
    run,
    pid: child.pid!,
    exited: () => exitCode !== undefined,
    quit: async () => {
      child.stdin.end("\\q\n")
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000)
      const code = await closed
      clearTimeout(timer)
      return code
    }
  }
}
