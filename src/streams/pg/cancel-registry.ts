/**
 * Clients get Sluice's own BackendKeyData, never the server's. A CancelRequest carrying
 * Sluice's key is forwarded, with the server's key, to the server that runs the session.
 */
import { randomInt } from "node:crypto"
import { Context, Effect, Layer, type Scope } from "effect"
import { encodeStartup } from "../../codecs/pg/frontend.ts"
import type { ResolvedTarget } from "../../targets/target.ts"
import { connectTarget } from "./backend-connect.ts"

export interface CancelRoute {
  readonly target: ResolvedTarget
  readonly processId: number
  readonly secretKey: number
}

export interface ClientKey {
  readonly processId: number
  readonly secretKey: number
}

const keyOf = (k: ClientKey): string => `${k.processId}:${k.secretKey}`

export class CancelRegistry extends Context.Service<
  CancelRegistry,
  {
    /** A fresh client key for this session, routed to `route` until the scope closes. */
    readonly register: (route: CancelRoute) => Effect.Effect<ClientKey, never, Scope.Scope>
    /** Unknown keys are ignored, as PostgreSQL ignores them: the client learns nothing. */
    readonly cancel: (key: ClientKey, connectTimeoutMs: number) => Effect.Effect<void>
  }
>()("sluice/pg/CancelRegistry") {}

export const makeCancelRegistry = () => {
  const routes = new Map<string, CancelRoute>()
  return CancelRegistry.of({
    register: (route) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          let key: ClientKey
          // Above Linux's PID_MAX_LIMIT (2^22), so a client never mistakes a real backend's pid for its own.
          do key = { processId: randomInt(2 ** 22, 2 ** 31 - 1), secretKey: randomInt(-(2 ** 31), 2 ** 31 - 1) }
          while (routes.has(keyOf(key)))
          routes.set(keyOf(key), route)
          return key
        }),
        (key) => Effect.sync(() => routes.delete(keyOf(key)))
      ),
    cancel: (key, connectTimeoutMs) => {
      const route = routes.get(keyOf(key))
      if (route === undefined) return Effect.logDebug("cancel request with an unknown key")
      return Effect.scoped(
        Effect.gen(function* () {
          const { writer } = yield* connectTarget(route.target, connectTimeoutMs)
          yield* writer.write(encodeStartup({ _tag: "CancelRequest", processId: route.processId, secretKey: route.secretKey }))
        })
      ).pipe(Effect.catchCause((cause) => Effect.logWarning("could not forward a cancel request", cause)))
    }
  })
}

export const layerCancelRegistry = Layer.sync(CancelRegistry, makeCancelRegistry)
