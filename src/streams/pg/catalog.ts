/**
 * What a target's relations are called and what their columns are called, for result
 * masking: a policy names sensitive columns as `schema.table.column`, while a server's
 * RowDescription names a column's origin only by table OID and attribute number.
 *
 * Why a side connection: the client's own backend connection is mid-pipeline (its
 * messages and the server's replies are relayed as they come), so no question can be
 * slipped into it without reordering what the client sees. The catalog keeps one
 * connection of its own per target, logged in with the target's stored credentials,
 * opened on the first cache miss, kept for the life of the scope given to `makeCatalog`,
 * and opened again on the next miss after it failed (a restarted server, a backend
 * terminated by an operator). Questions on it are asked one at a time.
 *
 * Freshness: answers are cached per relation name (every schema at once, and "no such
 * relation" is cached too) for `ttlMs`. A column renamed, or a table created, by someone
 * else directly on the server is seen at most `ttlMs` later; DDL that goes through the
 * gateway calls `invalidate()`, which forgets everything at once, so the next statement
 * sees the change. The side connection sees committed catalog state only: DDL inside a
 * client's still-open transaction is not visible to it until that transaction commits.
 */
import { Buffer } from "node:buffer"
import { Clock, Duration, Effect, Exit, Result, Scope, Semaphore } from "effect"
import { decodeBackend, field, type NoticeFields } from "../../codecs/pg/backend.ts"
import { encodeFrontend } from "../../codecs/pg/frontend.ts"
import type { ResolvedTarget } from "../../targets/target.ts"
import { type BackendSession, loginToTarget } from "./backend-login.ts"
import { CatalogUnavailable } from "./errors.ts"
import type { Setting } from "./startup-parameters.ts"

/** A relation name as a statement gives it: the schemas it may resolve to ("any" when unknown), and its name. "pg_temp" among schemas matches any session's temporary schema (pg_temp_N). */
export interface RelationName {
  readonly schemas: ReadonlyArray<string> | "any"
  readonly name: string
}

export interface CatalogRelation {
  readonly oid: number
  readonly schema: string
  readonly name: string
  /** Live columns (attnum > 0, not dropped): attnum → name. */
  readonly columns: ReadonlyMap<number, string>
}

export interface Catalog {
  /** Every table, partitioned table, view, materialized view or foreign table matching any of the names; cached per name for ttlMs. */
  readonly relations: (names: ReadonlyArray<RelationName>) => Effect.Effect<ReadonlyArray<CatalogRelation>, CatalogUnavailable>
  /** Forgets every cached entry (a DDL statement went through the gateway). Synchronous. */
  readonly invalidate: () => void
}

const DEFAULT_TTL_MS = 30_000
const DEFAULT_QUERY_TIMEOUT_MS = 5_000
/** Relation names remembered at most; the oldest fetched is forgotten first. */
export const MAX_CACHED_NAMES = 10_000

/** PostgreSQL's NAMEDATALEN - 1: the server truncates longer identifiers to this many bytes. */
const MAX_IDENTIFIER_BYTES = 63

/**
 * One question per batch of missing names, the names as one text[] parameter (never
 * spliced into SQL: a relation name from client SQL can hold anything). Relations with
 * no live column still come back once, with a NULL attnum.
 */
const CATALOG_QUERY = `SELECT c.oid, n.nspname, c.relname, a.attnum, a.attname
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relname = ANY ($1::pg_catalog.text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')`

/**
 * A name as the server would store it: identifiers longer than 63 bytes are cut there,
 * at a character boundary. Undefined for a name no relation can have (a NUL byte, which
 * a text parameter could not carry either).
 */
const normalise = (name: string): string | undefined => {
  if (name.includes("\0")) return undefined
  const bytes = Buffer.from(name, "utf8")
  if (bytes.length <= MAX_IDENTIFIER_BYTES) return name
  let end = MAX_IDENTIFIER_BYTES
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--
  return bytes.subarray(0, end).toString("utf8")
}

/** A text[] literal with every element quoted: `{"a","b\"c","d\\e"}`. */
const textArrayLiteral = (values: ReadonlyArray<string>): string =>
  `{${values.map((v) => `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`).join(",")}}`

const isTempSchema = (schema: string): boolean => /^pg_temp_\d+$/.test(schema)

/** Whether a relation in `schema` is one a name qualified by `schemas` may resolve to. */
const inSchemas = (schema: string, schemas: ReadonlySet<string> | "any"): boolean =>
  schemas === "any" || schemas.has(schema) || (schemas.has("pg_temp") && isTempSchema(schema))

interface CacheEntry {
  readonly fetchedAt: number
  readonly relations: ReadonlyArray<CatalogRelation>
}

interface Connection {
  readonly scope: Scope.Closeable
  readonly session: BackendSession
}

/** Why one exchange failed; `lost` when the connection itself is gone (worth one retry on a fresh one). */
interface Failure {
  readonly detail: string
  readonly lost: boolean
}

const SEVERE = new Set(["FATAL", "PANIC"])

const serverFailure = (fields: NoticeFields): Failure => {
  const code = field(fields, "C") ?? "XX000"
  const severity = field(fields, "V") ?? field(fields, "S") ?? "ERROR"
  const lost = SEVERE.has(severity)
  const what =
    code === "57014"
      ? "the server cancelled the catalog query (statement_timeout)"
      : code.startsWith("57P")
        ? "the server terminated the catalog connection"
        : lost
          ? "the server ended the catalog connection"
          : "the catalog query failed"
  return { detail: `${what} (SQLSTATE ${code})`, lost }
}

const text = (v: Uint8Array | null | undefined): string | undefined => (v == null ? undefined : Buffer.from(v).toString("utf8"))

export const makeCatalog = (
  target: ResolvedTarget,
  limits: { readonly maxFrameBytes: number; readonly connectTimeoutMs: number },
  options?: { readonly ttlMs?: number; readonly queryTimeoutMs?: number }
): Effect.Effect<Catalog, never, Scope.Scope> =>
  Effect.gen(function* () {
    const targetName = target.config.name
    const ttlMs = options?.ttlMs ?? DEFAULT_TTL_MS
    const queryTimeoutMs = options?.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS
    const outer = yield* Effect.scope
    const lock = yield* Semaphore.make(1)
    /** Insertion order is fetch order: the first key is the oldest entry. */
    const cache = new Map<string, CacheEntry>()
    /** Bumped by invalidate(): answers to questions asked before it are not cached. */
    let generation = 0
    let connection: Connection | undefined
    let closed = false

    yield* Scope.addFinalizer(
      outer,
      Effect.sync(() => {
        closed = true
        connection = undefined
        cache.clear()
      })
    )

    const unavailable = (detail: string) => new CatalogUnavailable({ target: targetName, detail })

    const remember = (name: string, entry: CacheEntry): void => {
      cache.delete(name)
      cache.set(name, entry)
      while (cache.size > MAX_CACHED_NAMES) cache.delete(cache.keys().next().value!)
    }

    const fresh = (name: string, now: number): CacheEntry | undefined => {
      const entry = cache.get(name)
      return entry !== undefined && now - entry.fetchedAt < ttlMs ? entry : undefined
    }

    /**
     * Session parameters of the side connection: a name an operator can spot, UTF-8, only
     * pg_catalog on the path (no operator or function of a user schema can stand in for the
     * built-ins the query uses, whatever the role's defaults), and a server-side bound on
     * every query so a dropped connection does not leave it running.
     */
    const sideParameters: ReadonlyArray<Setting> = [
      ["application_name", "sluice catalog"],
      ["client_encoding", "UTF8"],
      ["search_path", "pg_catalog"],
      ["statement_timeout", String(queryTimeoutMs)]
    ]

    const drop = (c: Connection): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (connection === c) connection = undefined
        return Scope.close(c.scope, Exit.void)
      })

    /** Logs in, with a bound on the whole login (the TCP connect alone has its own). */
    const open: Effect.Effect<Connection, CatalogUnavailable> = Effect.gen(function* () {
      const scope = yield* Scope.fork(outer, "sequential")
      return yield* Effect.gen(function* () {
        const session = yield* loginToTarget(target, sideParameters, limits)
        yield* Effect.addFinalizer(() =>
          session.writer.write(encodeFrontend({ _tag: "Terminate" })).pipe(
            Effect.timeoutOrElse({ duration: Duration.millis(1_000), orElse: () => Effect.void }),
            Effect.ignore
          )
        )
        return session
      }).pipe(
        Scope.provide(scope),
        Effect.catchTags({
          TargetUnreachable: (e) => Effect.fail(unavailable(`cannot connect: ${e.detail}`)),
          TargetLoginFailed: (e) => Effect.fail(unavailable(`the target refused the catalog's login: ${e.detail}`)),
          TargetGone: () => Effect.fail(unavailable("the connection was lost during login")),
          TargetProtocolViolation: (e) => Effect.fail(unavailable(`the server sent an invalid message during login: ${e.detail}`))
        }),
        Effect.timeoutOrElse({
          duration: Duration.millis(limits.connectTimeoutMs + queryTimeoutMs),
          orElse: () => Effect.fail(unavailable(`login did not complete within ${limits.connectTimeoutMs + queryTimeoutMs} ms`))
        }),
        Effect.map((session) => (connection = { scope, session })),
        Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : Scope.close(scope, exit)))
      )
    })

    /** One Parse/Bind/Execute/Sync round trip; every relation named, grouped by name. */
    const exchange = (session: BackendSession, names: ReadonlyArray<string>): Effect.Effect<Map<string, Array<CatalogRelation>>, Failure> =>
      Effect.gen(function* () {
        const request = Buffer.concat([
          encodeFrontend({ _tag: "Parse", name: "", sql: CATALOG_QUERY, paramTypes: [] }),
          encodeFrontend({
            _tag: "Bind",
            portal: "",
            statement: "",
            paramFormats: [0],
            params: [Buffer.from(textArrayLiteral(names), "utf8")],
            resultFormats: [0]
          }),
          encodeFrontend({ _tag: "Execute", portal: "", maxRows: 0 }),
          encodeFrontend({ _tag: "Sync" })
        ])
        yield* session.writer.write(request)
        const byOid = new Map<number, { schema: string; name: string; columns: Map<number, string> }>()
        let failed: Failure | undefined
        for (;;) {
          const decoded = decodeBackend(yield* session.reader.next)
          if (Result.isFailure(decoded)) return yield* Effect.fail<Failure>({ detail: `the server sent an invalid message: ${decoded.failure.message}`, lost: true })
          const m = decoded.success
          switch (m._tag) {
            case "ParseComplete":
            case "BindComplete":
            case "CommandComplete":
            case "NoticeResponse":
            case "ParameterStatus":
            case "NotificationResponse":
              continue
            case "DataRow": {
              const [oidText, schema, name, attnumText, attname] = m.values.map(text)
              const oid = Number(oidText)
              if (!Number.isInteger(oid) || schema === undefined || name === undefined) {
                return yield* Effect.fail<Failure>({ detail: "the server sent a malformed catalog row", lost: true })
              }
              let relation = byOid.get(oid)
              if (relation === undefined) {
                relation = { schema, name, columns: new Map() }
                byOid.set(oid, relation)
              }
              if (attnumText !== undefined && attname !== undefined) relation.columns.set(Number(attnumText), attname)
              continue
            }
            case "ErrorResponse": {
              const f = serverFailure(m.fields)
              // After a FATAL the server closes: nothing more is coming.
              if (f.lost) return yield* Effect.fail(f)
              failed ??= f
              continue
            }
            case "ReadyForQuery": {
              if (failed !== undefined) return yield* Effect.fail(failed)
              const grouped = new Map<string, Array<CatalogRelation>>()
              for (const [oid, r] of byOid) {
                const list = grouped.get(r.name) ?? []
                list.push({ oid, schema: r.schema, name: r.name, columns: r.columns })
                grouped.set(r.name, list)
              }
              return grouped
            }
            default:
              return yield* Effect.fail<Failure>({ detail: `unexpected ${m._tag} in reply to the catalog query`, lost: true })
          }
        }
      }).pipe(
        Effect.catchTags({
          SocketError: () => Effect.fail<Failure>({ detail: "the connection to the server was lost", lost: true }),
          FrameError: (e) => Effect.fail<Failure>({ detail: `the server sent an invalid frame: ${e.message}`, lost: true })
        })
      )

    /**
     * One attempt on the open connection, or on a new one. Any failure, interruption or
     * timeout drops the connection: its state is unknown, and the next miss opens another.
     */
    const attempt = (names: ReadonlyArray<string>) =>
      Effect.gen(function* () {
        const reused = connection !== undefined
        const c = connection ?? (yield* open)
        const result = yield* exchange(c.session, names).pipe(
          Effect.timeoutOrElse({
            duration: Duration.millis(queryTimeoutMs),
            orElse: () => Effect.fail<Failure>({ detail: `the catalog query got no answer within ${queryTimeoutMs} ms`, lost: false })
          }),
          Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : drop(c))),
          Effect.mapError((f) => ({ ...f, retry: reused && f.lost }))
        )
        return result
      })

    /** A connection that sat idle may have died meanwhile (server restart, pg_terminate_backend): one retry on a fresh one. */
    const query = (names: ReadonlyArray<string>): Effect.Effect<Map<string, Array<CatalogRelation>>, CatalogUnavailable> =>
      attempt(names).pipe(
        Effect.catchIf(
          (e): e is Failure & { retry: boolean } => !(e instanceof CatalogUnavailable) && e.retry,
          () => attempt(names)
        ),
        Effect.mapError((e) => (e instanceof CatalogUnavailable ? e : unavailable(e.detail)))
      )

    /** Under the lock: names another caller fetched meanwhile come from the cache, the rest in one query. */
    const fetch = (names: ReadonlyArray<string>) =>
      Effect.gen(function* () {
        if (closed) return yield* unavailable("the catalog is closed")
        const now = yield* Clock.currentTimeMillis
        const found = new Map<string, ReadonlyArray<CatalogRelation>>()
        const missing: Array<string> = []
        for (const name of names) {
          const entry = fresh(name, now)
          if (entry !== undefined) found.set(name, entry.relations)
          else missing.push(name)
        }
        if (missing.length === 0) return found
        const askedIn = generation
        const fetchedAt = yield* Clock.currentTimeMillis
        const answers = yield* query(missing)
        for (const name of missing) {
          const relations = answers.get(name) ?? []
          found.set(name, relations)
          if (generation === askedIn && !closed) remember(name, { fetchedAt, relations })
        }
        return found
      })

    const relations = (requested: ReadonlyArray<RelationName>): Effect.Effect<ReadonlyArray<CatalogRelation>, CatalogUnavailable> =>
      Effect.gen(function* () {
        if (closed) return yield* unavailable("the catalog is closed")
        const wanted: Array<{ readonly name: string; readonly schemas: ReadonlySet<string> | "any" }> = []
        for (const r of requested) {
          const name = normalise(r.name)
          if (name === undefined) continue
          const schemas =
            r.schemas === "any" ? ("any" as const) : new Set(r.schemas.flatMap((s) => normalise(s) ?? []))
          wanted.push({ name, schemas })
        }
        const now = yield* Clock.currentTimeMillis
        const found = new Map<string, ReadonlyArray<CatalogRelation>>()
        const missing = new Set<string>()
        for (const { name } of wanted) {
          if (found.has(name) || missing.has(name)) continue
          const entry = fresh(name, now)
          if (entry !== undefined) found.set(name, entry.relations)
          else missing.add(name)
        }
        if (missing.size > 0) {
          const fetched = yield* lock.withPermits(1)(fetch([...missing]))
          for (const [name, list] of fetched) found.set(name, list)
        }
        const out: Array<CatalogRelation> = []
        const seen = new Set<number>()
        for (const { name, schemas } of wanted) {
          for (const relation of found.get(name) ?? []) {
            if (seen.has(relation.oid) || !inSchemas(relation.schema, schemas)) continue
            seen.add(relation.oid)
            out.push(relation)
          }
        }
        return out
      })

    return {
      relations,
      invalidate: () => {
        generation++
        cache.clear()
      }
    } satisfies Catalog
  })
