/**
 * A small Confluent Schema Registry client: what the Kafka sink needs for the Confluent
 * wire format (`00` + 4-byte schema id + body).
 *
 * - {@link SchemaRegistryClient.register}: `POST /subjects/{subject}/versions` with
 *   `{"schema": "<schema JSON as a string>"}`; the registry answers `{"id": N}` (the same id
 *   for a schema it already has, 409 when the subject's compatibility rule refuses it,
 *   422 for an invalid schema). Ids are cached per subject and schema fingerprint, so a
 *   registration is one request per process.
 * - {@link SchemaRegistryClient.schemaById}: `GET /schemas/ids/{id}`, cached: for reading a
 *   topic written by another Sluice version.
 *
 * The subject of a topic's values is `<topic>-value` (TopicNameStrategy, the default of
 * Confluent's serializers). Errors are typed: the registry could not be reached, refused
 * the request, or answered something that is not a registry answer.
 */
import { Data, Effect } from "effect"
import { CURRENT_SCHEMA, type SchemaVersion } from "./avro.ts"

/** Network failure or timeout: worth retrying. */
export class RegistryUnavailable extends Data.TaggedError("RegistryUnavailable")<{ readonly url: string; readonly detail: string }> {
  override get message(): string {
    return `schema registry ${this.url} unavailable: ${this.detail}`
  }
}

/** The registry answered with an error status (409 incompatible, 422 invalid, 401/403, 5xx). */
export class RegistryRejected extends Data.TaggedError("RegistryRejected")<{
  readonly url: string
  readonly status: number
  /** The registry's `error_code` (e.g. 409, 42201, 40403), when it sent one. */
  readonly errorCode: number | undefined
  readonly detail: string
}> {
  override get message(): string {
    return `schema registry ${this.url} answered ${this.status}${this.errorCode !== undefined ? ` (error_code ${this.errorCode})` : ""}: ${this.detail}`
  }
}

/** A 2xx answer that is not what the registry API promises. */
export class RegistryBadResponse extends Data.TaggedError("RegistryBadResponse")<{ readonly url: string; readonly detail: string }> {
  override get message(): string {
    return `schema registry ${this.url} answered something unexpected: ${this.detail}`
  }
}

export type RegistryError = RegistryUnavailable | RegistryRejected | RegistryBadResponse

export interface RegistryOptions {
  /** Base URL, e.g. `http://registry:8081` (a path prefix is kept). */
  readonly url: string
  /** Per request; default 10 s. */
  readonly timeoutMs?: number
  readonly basicAuth?: { readonly username: string; readonly password: string }
  /** For tests or a custom agent; default the global `fetch`. */
  readonly fetch?: typeof fetch
}

export interface SchemaRegistryClient {
  /** Registers `schema` (default: the newest audit schema) under `subject`; its id. Cached. */
  readonly register: (subject: string, schema?: SchemaVersion) => Effect.Effect<number, RegistryError>
  /** {@link register} under `<topic>-value`. */
  readonly registerForTopic: (topic: string, schema?: SchemaVersion) => Effect.Effect<number, RegistryError>
  /** The schema (JSON text) the registry holds under `id`. Cached. */
  readonly schemaById: (id: number) => Effect.Effect<string, RegistryError>
  /** The id cached for a subject and schema, if registered by this client. */
  readonly cachedId: (subject: string, schema?: SchemaVersion) => number | undefined
}

export const subjectForTopic = (topic: string): string => `${topic}-value`

const CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"

const isObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

export const makeRegistryClient = (options: RegistryOptions): SchemaRegistryClient => {
  const base = options.url.replace(/\/+$/, "")
  const timeoutMs = options.timeoutMs ?? 10_000
  const doFetch = options.fetch ?? fetch
  const headers: Record<string, string> = { accept: `${CONTENT_TYPE}, application/json` }
  if (options.basicAuth !== undefined) {
    headers["authorization"] = `Basic ${Buffer.from(`${options.basicAuth.username}:${options.basicAuth.password}`).toString("base64")}`
  }
  const ids = new Map<string, number>()
  const schemas = new Map<number, string>()

  const request = (method: "GET" | "POST", path: string, body?: unknown): Effect.Effect<Record<string, unknown>, RegistryError> => {
    const url = `${base}${path}`
    return Effect.tryPromise({
      try: async (signal) => {
        const init: RequestInit = {
          method,
          headers: body === undefined ? headers : { ...headers, "content-type": CONTENT_TYPE },
          signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
        }
        if (body !== undefined) init.body = JSON.stringify(body)
        const response = await doFetch(url, init)
        return { status: response.status, text: await response.text() }
      },
      catch: (e) => new RegistryUnavailable({ url, detail: e instanceof Error ? e.message : String(e) }),
    }).pipe(
      Effect.flatMap(({ status, text }): Effect.Effect<Record<string, unknown>, RegistryError> => {
        let json: unknown
        try {
          json = JSON.parse(text)
        } catch {
          json = undefined
        }
        if (status < 200 || status > 299) {
          const errorCode = isObject(json) && typeof json["error_code"] === "number" ? json["error_code"] : undefined
          const detail = isObject(json) && typeof json["message"] === "string" ? json["message"] : text.slice(0, 500)
          return Effect.fail(new RegistryRejected({ url, status, errorCode, detail }))
        }
        return isObject(json) ? Effect.succeed(json) : Effect.fail(new RegistryBadResponse({ url, detail: `not a JSON object: ${text.slice(0, 200)}` }))
      }),
    )
  }

  const key = (subject: string, schema: SchemaVersion): string => `${subject}\u0000${schema.fingerprintHex}`

  const register = (subject: string, schema: SchemaVersion = CURRENT_SCHEMA): Effect.Effect<number, RegistryError> =>
    Effect.suspend(() => {
      const cached = ids.get(key(subject, schema))
      if (cached !== undefined) return Effect.succeed(cached)
      return request("POST", `/subjects/${encodeURIComponent(subject)}/versions`, { schema: schema.json }).pipe(
        Effect.flatMap((json) => {
          const id = json["id"]
          if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id > 0xffffffff) {
            return Effect.fail(new RegistryBadResponse({ url: `${base}/subjects/${encodeURIComponent(subject)}/versions`, detail: `no valid id in ${JSON.stringify(json).slice(0, 200)}` }))
          }
          ids.set(key(subject, schema), id)
          schemas.set(id, schema.json)
          return Effect.succeed(id)
        }),
      )
    })

  const schemaById = (id: number): Effect.Effect<string, RegistryError> =>
    Effect.suspend(() => {
      const cached = schemas.get(id)
      if (cached !== undefined) return Effect.succeed(cached)
      return request("GET", `/schemas/ids/${id}`).pipe(
        Effect.flatMap((json) => {
          const schema = json["schema"]
          if (typeof schema !== "string") return Effect.fail(new RegistryBadResponse({ url: `${base}/schemas/ids/${id}`, detail: "no schema string" }))
          schemas.set(id, schema)
          return Effect.succeed(schema)
        }),
      )
    })

  return {
    register,
    registerForTopic: (topic, schema) => register(subjectForTopic(topic), schema),
    schemaById,
    cachedId: (subject, schema = CURRENT_SCHEMA) => ids.get(key(subject, schema)),
  }
}
