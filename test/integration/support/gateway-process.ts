/**
 * Runs `sluice start` on a config file that already exists: the gateway fixture
 * (support/gateway.ts) writes one and starts it with this, and the crash tests start a
 * gateway again on the same config, spool and port. The caller owns the config's directory.
 */
import { type ChildProcess, spawn } from "node:child_process"

export interface GatewayProcess {
  readonly pid: number
  readonly logs: () => string
  readonly alive: () => boolean
  /** Sends a signal and waits for the process to end. */
  readonly kill: (signal: NodeJS.Signals) => Promise<void>
  /** SIGTERM, then SIGKILL after 5 s. */
  readonly stop: () => Promise<void>
}

const BIN = new URL("../../../bin/sluice.js", import.meta.url).pathname

/** Starts the gateway and waits until it logs `listening` (or exits, or 20 s pass). */
export const launchGateway = async (configFile: string, timeoutMs = 20_000): Promise<GatewayProcess> => {
  let output = ""
  const child: ChildProcess = spawn(process.execPath, [BIN, "start", "--config", configFile], { stdio: ["ignore", "pipe", "pipe"] })
  child.stdout!.on("data", (d) => (output += d))
  child.stderr!.on("data", (d) => (output += d))
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const running = () => child.exitCode === null && child.signalCode === null
  const deadline = Date.now() + timeoutMs
  while (!output.includes("listening")) {
    if (!running()) throw new Error(`sluice exited with ${child.exitCode ?? child.signalCode}:\n${output}`)
    if (Date.now() > deadline) {
      child.kill("SIGKILL")
      throw new Error(`sluice did not start listening within ${timeoutMs} ms:\n${output}`)
    }
    await new Promise((r) => setTimeout(r, 25))
  }
  const kill = async (signal: NodeJS.Signals) => {
    if (running()) {
      child.kill(signal)
      await exited
    }
  }
  return {
    pid: child.pid!,
    logs: () => output,
    alive: running,
    kill,
    stop: async () => {
      if (!running()) return
      child.kill("SIGTERM")
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000)
      await exited
      clearTimeout(timer)
    }
  }
}
