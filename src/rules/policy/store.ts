/**
 * The policy in force, reloaded when its file changes or on SIGHUP. A file that fails
 * to load is rejected with a logged error, and the last good policy stays in force.
 */
import { createHash } from "node:crypto"
import { promises as fsp, watch } from "node:fs"
import { dirname, resolve } from "node:path"
import { Context, Duration, Effect, Layer, Queue, Stream } from "effect"
import { InvalidFile } from "../../config/yaml.ts"
import { loadPolicy } from "./load.ts"
import type { Policy } from "./schema.ts"

export interface LoadedPolicy {
  readonly policy: Policy
  /** Short content hash, for logs and audit events: which policy decided. */
  readonly version: string
}

export class PolicyStore extends Context.Service<
  PolicyStore,
  {
    /** The policy in force now; synchronous because every statement asks. */
    readonly current: () => LoadedPolicy
    /** Reloads now; fails (and keeps the old policy) if the file is bad. */
    readonly reload: Effect.Effect<LoadedPolicy, InvalidFile>
  }
>()("sluice/PolicyStore") {}

const versionOf = (policy: Policy): string => createHash("sha256").update(JSON.stringify(policy)).digest("hex").slice(0, 12)

/**
 * What changes whenever the file does: an edit (size, times) or a replacement (rename,
 * symlink swap: a new inode). The symlink is followed, as the load follows it.
 */
const identityOf = (file: string): Effect.Effect<string> =>
  Effect.promise(() =>
    fsp.stat(file, { bigint: true }).then(
      (s) => `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`,
      (e: unknown) => `unreadable: ${String(e)}`
    )
  )

export const makePolicyStore = (file: string) =>
  Effect.gen(function* () {
    /** The file as it was at the last load tried, good or bad. */
    let tried = yield* identityOf(file)
    const first = yield* loadPolicy(file)
    let loaded: LoadedPolicy = { policy: first, version: versionOf(first) }
    yield* Effect.logInfo("policy loaded", { file, version: loaded.version, rules: first.rules.length })

    const reload = identityOf(file).pipe(
      Effect.flatMap((identity) => {
        tried = identity
        return loadPolicy(file)
      }),
      Effect.map((policy) => {
        const next = { policy, version: versionOf(policy) }
        const changed = next.version !== loaded.version
        loaded = next
        return { next, changed }
      }),
      Effect.tap(({ next, changed }) =>
        changed ? Effect.logInfo("policy reloaded", { file, version: next.version, rules: next.policy.rules.length }) : Effect.void
      ),
      Effect.map(({ next }) => next),
      Effect.tapError((e) => Effect.logError(`policy reload rejected, keeping version ${loaded.version}\n${e.message}`))
    )

    // Editors replace files by rename, and Kubernetes swaps a symlinked directory, so any
    // change in the directory wakes a check, and a reload if the file changed since the last
    // load tried: a log file or anything else written beside the policy must not make every
    // write a parse (nor repeat a rejected file's error). SIGHUP always reloads.
    const triggers = yield* Queue.sliding<void>(1)
    let signalled = false
    const wake = () => void Queue.offerUnsafe(triggers, undefined)
    const hangUp = () => {
      signalled = true
      wake()
    }
    const reloadIfChanged = Effect.suspend(() => {
      const forced = signalled
      signalled = false
      return forced ? Effect.ignore(reload) : identityOf(file).pipe(Effect.flatMap((identity) => (identity === tried ? Effect.void : Effect.ignore(reload))))
    })
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        const watcher = watch(dirname(resolve(file)), () => wake())
        watcher.on("error", () => {})
        process.on("SIGHUP", hangUp)
        return watcher
      }),
      (watcher) =>
        Effect.sync(() => {
          watcher.close()
          process.off("SIGHUP", hangUp)
        })
    )
    // A burst of change events (write, then rename) becomes one reload.
    yield* Stream.fromQueue(triggers).pipe(
      Stream.debounce(Duration.millis(100)),
      Stream.runForEach(() => reloadIfChanged),
      Effect.forkScoped
    )
    return PolicyStore.of({ current: () => loaded, reload })
  })

export const layerPolicyStore = (file: string): Layer.Layer<PolicyStore, InvalidFile> => Layer.effect(PolicyStore, makePolicyStore(file))
