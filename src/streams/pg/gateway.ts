/** The PostgreSQL listener: accepts connections and runs one session program per client. */
import { readFile } from "node:fs/promises"
import * as NodeSocketServer from "@effect/platform-node/NodeSocketServer"
import { Data, Effect, Redacted } from "effect"
import type { Config } from "../../config/schema.ts"
import { resolveTarget } from "../../targets/target.ts"
import { makeCatalog } from "./catalog.ts"
import { type GatewaySettings, handleConnection } from "./session.ts"
import type { ServerTls } from "./startup.ts"

export class ListenerFailed extends Data.TaggedError("ListenerFailed")<{ readonly detail: string }> {
  override get message(): string {
    return this.detail
  }
}

const loadTls = (config: Config): Effect.Effect<ServerTls | undefined, ListenerFailed> => {
  const tls = config.listen.tls
  if (tls === undefined) return Effect.succeed(undefined)
  return Effect.tryPromise({
    try: async () => ({ key: Redacted.make(new Uint8Array(await readFile(tls.keyFile))), cert: new Uint8Array(await readFile(tls.certFile)) }),
    catch: (e) => new ListenerFailed({ detail: `listen.tls: cannot read certificate or key: ${(e as NodeJS.ErrnoException).code ?? String(e)}` })
  })
}

export const settingsFrom = (config: Config) =>
  Effect.gen(function* () {
    const targets = yield* Effect.forEach(config.targets, resolveTarget)
    const catalogs = yield* Effect.forEach(targets, (t) => Effect.map(makeCatalog(t, config.limits), (c) => [t.config.name, c] as const))
    const settings: GatewaySettings = {
      targets: new Map(targets.map((t) => [t.config.name, t])),
      catalogs: new Map(catalogs),
      tls: yield* loadTls(config),
      plaintextAllowed: config.listen.loopbackOnly,
      ...config.limits
    }
    return settings
  })

/** Listens until interrupted. `onListening` receives the bound port (useful with port 0). */
export const servePostgres = (config: Config, onListening: (port: number) => Effect.Effect<void> = () => Effect.void) =>
  Effect.scoped(
    Effect.gen(function* () {
      const settings = yield* settingsFrom(config)
      const server = yield* NodeSocketServer.make({ host: config.listen.host, port: config.listen.port }).pipe(
        Effect.mapError((e) => new ListenerFailed({ detail: `cannot listen on ${config.listen.host}:${config.listen.port}: ${e.message}` }))
      )
      const address = server.address
      const port = address._tag === "UnixPathAddress" ? config.listen.port : address.port
      yield* Effect.logInfo("listening", { address: `${config.listen.host}:${port}` })
      yield* onListening(port)
      return yield* server.run(handleConnection(settings))
    })
  )
