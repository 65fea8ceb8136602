/**
 * A cached JSON Web Key Set, from a URL or a file, with refresh on an unknown `kid` and
 * a bound on how often the source is hit.
 *
 * Why not jose's `createRemoteJWKSet`: its cooldown only counts from the last
 * *successful* fetch, so while the endpoint is down every token with an unknown kid (or
 * every token once the cache is stale) starts a new request: an attacker who can reach
 * the listener can hammer a failing IdP. It also reads `Date.now()` rather than Effect's
 * Clock. Here jose does what it is good at (`createLocalJWKSet`: key selection by alg and
 * kid, `use`/`key_ops`, import), and this module owns the schedule:
 *
 * - Keys are used for `cacheMaxAgeMs` after a successful load. A stale or empty cache is
 *   loaded before use; if that load fails, verification fails (closed) with the reason.
 * - A token whose (kid, alg) matches no cached key triggers one reload, then one more
 *   lookup.
 * - Every load attempt, successful or not, whatever triggered it, is at least
 *   `minRefreshIntervalMs` after the previous attempt. Within the interval the cache
 *   answers from what it has, or with the last failure. So the source sees at most one
 *   request per interval, during an outage and under a burst of unknown kids alike; and
 *   once it is back, the first request after the interval recovers.
 * - Loads are serialised: callers that need one while another is in flight wait for it
 *   and then use its result, so a burst costs one request.
 */
import { readFile } from "node:fs/promises"
import { Clock, Data, Duration, Effect, Semaphore } from "effect"
import { createLocalJWKSet, type CryptoKey, type JWSHeaderParameters, type LocalJWKSet } from "jose"

export class KeyNotResolved extends Data.TaggedError("KeyNotResolved")<{ readonly reason: string }> {}

/** Where keys come from: a description for messages, and a load that fails with a reason. */
export interface JwksSource {
  readonly describe: string
  readonly load: Effect.Effect<unknown, string>
}

export interface JwksCacheOptions {
  readonly cacheMaxAgeMs: number
  readonly minRefreshIntervalMs: number
}

export interface JwksCache {
  /** The one key that matches the header's kid and alg. */
  readonly getKey: (header: JWSHeaderParameters) => Effect.Effect<CryptoKey, KeyNotResolved>
}

/** A JWKS larger than this is refused: real ones are a few KiB. */
export const MAX_JWKS_BYTES = 1024 * 1024

const secondsText = (ms: number): string => `${Math.round(ms / 100) / 10} s`

const errorCode = (e: unknown): string | undefined => {
  const code = (e as { code?: unknown } | null)?.code
  return typeof code === "string" ? code : undefined
}

/** Failure text for a fetch: undici hides the errno in `cause`. */
const describeFetchError = (e: unknown): string => {
  if (e instanceof LoadFailure) return e.message
  const cause = (e as { cause?: unknown } | null)?.cause
  const code = errorCode(cause) ?? errorCode(e)
  if (code !== undefined) return `connection failed (${code})`
  if (e instanceof SyntaxError) return `the response is not JSON (${e.message})`
  return e instanceof Error ? e.message : String(e)
}

class LoadFailure extends Error {}

const readLimited = async (response: Response, maxBytes: number): Promise<string> => {
  const declared = Number(response.headers.get("content-length") ?? "0")
  if (declared > maxBytes) throw new LoadFailure(`the response is ${declared} bytes, more than the ${maxBytes} allowed`)
  const reader = response.body?.getReader()
  if (reader === undefined) return ""
  const chunks: Array<Uint8Array> = []
  let total = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    total += value.byteLength
    if (total > maxBytes) {
      await reader.cancel()
      throw new LoadFailure(`the response is more than the ${maxBytes} bytes allowed`)
    }
    chunks.push(value)
  }
  return new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(chunks))
}

/**
 * A JWKS over HTTP(S): GET with a timeout, no redirects (a redirect could leave https),
 * 200 only, size-limited. Non-blocking: undici's fetch, interrupted on timeout.
 */
export const urlSource = (url: string, timeoutMs: number, maxBytes = MAX_JWKS_BYTES): JwksSource => ({
  describe: url,
  load: Effect.tryPromise({
    try: async (signal) => {
      const response = await fetch(url, {
        signal,
        redirect: "manual",
        headers: { accept: "application/jwk-set+json, application/json" }
      })
      if (response.status !== 200) {
        await response.body?.cancel()
        const redirect = response.status >= 300 && response.status < 400 ? "; redirects are not followed" : ""
        throw new LoadFailure(`HTTP status ${response.status}, expected 200${redirect}`)
      }
      return JSON.parse(await readLimited(response, maxBytes)) as unknown
    },
    catch: describeFetchError
  }).pipe(
    Effect.timeoutOrElse({
      duration: Duration.millis(timeoutMs),
      orElse: () => Effect.fail(`no response within ${secondsText(timeoutMs)}`)
    })
  )
})

/** A JWKS document on disk; re-read on the same schedule as a URL, so a rotated file is picked up. */
export const fileSource = (path: string, maxBytes = MAX_JWKS_BYTES): JwksSource => ({
  describe: `file ${path}`,
  load: Effect.tryPromise({
    try: async () => {
      const text = await readFile(path, "utf8")
      if (Buffer.byteLength(text) > maxBytes) throw new LoadFailure(`the file is more than the ${maxBytes} bytes allowed`)
      return JSON.parse(text) as unknown
    },
    catch: (e) =>
      e instanceof LoadFailure ? e.message
      : e instanceof SyntaxError ? `the file is not JSON (${e.message})`
      : `cannot read it (${errorCode(e) ?? String(e)})`
  })
})

const toKeySet = (json: unknown): Effect.Effect<LocalJWKSet, string> =>
  Effect.try({
    try: () => createLocalJWKSet(json as Parameters<typeof createLocalJWKSet>[0]),
    catch: () => "the document is not a JSON Web Key Set ({\"keys\": [...]})"
  })

type Lookup =
  | { readonly _tag: "Found"; readonly key: CryptoKey }
  | { readonly _tag: "NoMatch" }
  | { readonly _tag: "Failed"; readonly reason: string }

const lookup = (set: LocalJWKSet, header: JWSHeaderParameters): Effect.Effect<Lookup> =>
  Effect.tryPromise({ try: () => set(header), catch: (e) => e }).pipe(
    Effect.map((key): Lookup => ({ _tag: "Found", key })),
    Effect.catch((e) =>
      Effect.succeed<Lookup>(
        errorCode(e) === "ERR_JWKS_NO_MATCHING_KEY"
          ? { _tag: "NoMatch" }
          : errorCode(e) === "ERR_JWKS_MULTIPLE_MATCHING_KEYS"
          ? { _tag: "Failed", reason: "several keys in the JWKS match the token's kid and alg; the token must name its key with a distinct kid" }
          : { _tag: "Failed", reason: `the matching JWKS key is unusable: ${e instanceof Error ? e.message : String(e)}` }
      )
    )
  )

type Refresh = "loaded" | "not-needed" | { readonly waitMs: number; readonly sinceMs: number }

export const makeJwksCache = (source: JwksSource, options: JwksCacheOptions): JwksCache => {
  let keys: LocalJWKSet | undefined
  let loadedAt = Number.NEGATIVE_INFINITY
  let attemptedAt = Number.NEGATIVE_INFINITY
  let lastError: string | undefined
  const lock = Semaphore.makeUnsafe(1)

  const isFresh = (now: number) => keys !== undefined && now - loadedAt < options.cacheMaxAgeMs

  /**
   * Loads the key set unless `stillNeeded` turned false while this caller waited for the
   * lock (someone else loaded), or the previous attempt was too recent.
   */
  const refresh = (stillNeeded: (now: number) => boolean): Effect.Effect<Refresh, string> =>
    lock.withPermits(1)(
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        if (!stillNeeded(now)) return "not-needed" as const
        const waitMs = attemptedAt + options.minRefreshIntervalMs - now
        if (waitMs > 0) return { waitMs, sinceMs: now - attemptedAt }
        attemptedAt = now
        const set = yield* source.load.pipe(
          Effect.flatMap(toKeySet),
          Effect.tapError((e) => Effect.sync(() => void (lastError = e)))
        )
        keys = set
        loadedAt = yield* Clock.currentTimeMillis
        lastError = undefined
        return "loaded" as const
      })
    )

  const unavailable = (reason: string) => new KeyNotResolved({ reason: `JWKS ${source.describe} is unavailable: ${reason}` })

  const ensureFresh: Effect.Effect<LocalJWKSet, KeyNotResolved> = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    if (!isFresh(now)) {
      const outcome = yield* refresh((t) => !isFresh(t)).pipe(Effect.mapError(unavailable))
      if (typeof outcome === "object") {
        return yield* Effect.fail(unavailable(
          `${lastError === undefined ? "cached keys expired" : `the last attempt, ${secondsText(outcome.sinceMs)} ago, failed: ${lastError}`}; ` +
            `next attempt allowed in ${secondsText(outcome.waitMs)}`
        ))
      }
    }
    return keys!
  })

  return {
    getKey: (header) =>
      Effect.gen(function*() {
        const observed = yield* ensureFresh
        const first = yield* lookup(observed, header)
        if (first._tag === "Found") return first.key
        if (first._tag === "Failed") return yield* Effect.fail(new KeyNotResolved({ reason: first.reason }))

        const noKey = `no key in JWKS ${source.describe} matches kid ${JSON.stringify(header.kid ?? null)} and alg ${String(header.alg)}`
        const outcome = yield* refresh(() => keys === observed).pipe(
          Effect.mapError((e) => new KeyNotResolved({ reason: `${noKey}, and reloading it failed: ${e}` }))
        )
        if (typeof outcome === "object") {
          return yield* Effect.fail(new KeyNotResolved({
            reason: `${noKey}; not reloaded: the last attempt was ${secondsText(outcome.sinceMs)} ago and reloads are at least ` +
              `${secondsText(options.minRefreshIntervalMs)} apart`
          }))
        }
        const second = yield* lookup(keys!, header)
        if (second._tag === "Found") return second.key
        return yield* Effect.fail(new KeyNotResolved({
          reason: second._tag === "Failed" ? second.reason : `${noKey}, even after reloading it`
        }))
      })
  }
}
