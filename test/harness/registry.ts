/**
 * A schema registry for the audit tests: Apicurio Registry 2.6 (in-memory storage), from
 * the distribution scripts/provision.sh fetched, on 127.0.0.1. Sluice talks to it through
 * its Confluent-compatible API, which is what `url` points at.
 */
import { join } from "node:path"
import { findJava } from "./kafka.ts"
import { freePort } from "./free-port.ts"
import { makeTempDir, removeTempDir, spawnTracked, untilReady } from "./process.ts"

export interface RegistryInfo {
  /** The Confluent-compatible API's base URL, e.g. http://127.0.0.1:40123/apis/ccompat/v7. */
  readonly url: string
  /** True when the harness started this registry. */
  readonly managed: boolean
}

export interface RegistryServer extends RegistryInfo {
  readonly stop: () => Promise<void>
}

/** Asks for the subject list until the registry answers it. */
export const waitForRegistry = async (url: string, opts: { timeoutMs: number; failed?: () => Error | undefined }): Promise<void> => {
  const deadline = Date.now() + opts.timeoutMs
  let last = "no answer yet"
  for (;;) {
    const failure = opts.failed?.()
    if (failure) throw failure
    try {
      const res = await fetch(`${url}/subjects`, { signal: AbortSignal.timeout(2_000) })
      if (res.ok) return
      last = `HTTP ${res.status}`
    } catch (e) {
      last = String(e)
    }
    if (Date.now() > deadline) throw new Error(`schema registry at ${url} was not ready within ${opts.timeoutMs} ms: ${last}`)
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

export const useExistingRegistry = async (url: string): Promise<RegistryServer> => {
  await waitForRegistry(url, { timeoutMs: 15_000 })
  return { url, managed: false, stop: async () => {} }
}

/** Starts a registry on `port` (default: a free one). */
export const startRegistry = async (jar: string, options: { readonly port?: number } = {}): Promise<RegistryServer> => {
  const dir = makeTempDir("sluice-registry-")
  const logFile = join(dir, "registry.log")
  try {
    const port = options.port ?? (await freePort())
    const server = await spawnTracked({
      name: "schema registry",
      command: findJava(),
      args: ["-Xmx256m", `-Dquarkus.http.host=127.0.0.1`, `-Dquarkus.http.port=${port}`, "-jar", jar],
      logFile,
      cwd: dir
    })
    const stop = async (): Promise<void> => {
      await server.stop({ graceMs: 5000 })
      removeTempDir(dir)
    }
    const url = `http://127.0.0.1:${port}/apis/ccompat/v7`
    await untilReady(server, "the schema registry", stop, (failed) => waitForRegistry(url, { timeoutMs: 90_000, failed }))
    return { url, managed: true, stop }
  } catch (err) {
    removeTempDir(dir)
    throw err
  }
}
