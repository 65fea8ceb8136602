/**
 * `sluice replay SESSION_ID --config FILE`: one session's timeline (start, statements,
 * decisions, masking summaries, recorded rows, results, end) in sequence order, read from where the config sends the audit
 * trail: the Kafka topic when `audit.kafka` is set, else the Avro container files in
 * `audit.files.directory`.
 *
 * Kafka is read from the beginning by a consumer group of its own (a fresh id, deleted
 * afterwards) up to each partition's end offset as found at the start, so the command ends.
 * Values may be single-object encoded or in the Confluent wire format (schema ids resolved
 * through `audit.kafka.schemaRegistryUrl`). Delivery is at least once: duplicates are
 * dropped by event id, and a gap in the sequence numbers is shown, not hidden. Events still
 * in a gateway's spool (not yet shipped) are not there to be read.
 */
import { randomUUID } from "node:crypto"
import { Console, Data, Effect, Result } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { Kafka, logLevel } from "kafkajs"
import { loadConfig } from "../config/load.ts"
import type { Audit } from "../config/schema.ts"
import { type AvroDecodeError, decodeConfluent, decodeSingleObject, SCHEMA_VERSIONS, type SchemaVersion } from "../sinks/avro.ts"
import { parsingCanonicalForm } from "../sinks/avro-spec.ts"
import type { AuditEvent, MaskedColumn, MaskingSummary, RecordedRows, RecordedValue } from "../sinks/events.ts"
import { readContainerFiles } from "../sinks/file-sink.ts"
import { makeRegistryClient } from "../sinks/registry.ts"

export class ReplayFailed extends Data.TaggedError("ReplayFailed")<{ readonly detail: string }> {
  override get message(): string {
    return `sluice replay: ${this.detail}`
  }
}

type KafkaConfig = NonNullable<Audit["kafka"]>

interface Found {
  /** Where the events were read, for the heading. */
  readonly source: string
  readonly events: ReadonlyArray<AuditEvent>
  /** Messages of the session that could not be decoded, with why. */
  readonly undecodable: ReadonlyArray<string>
}

const describe = (e: unknown): string => (e instanceof Error ? e.message : String(e))

// ---------------------------------------------------------------------------------------------
// reading Kafka

const KAFKA_TIMEOUT_MS = 120_000

/** The session's raw messages (key = session id), from the beginning of the topic to its end offsets. */
const sessionMessages = async (config: KafkaConfig, sessionId: string): Promise<Array<Buffer>> => {
  const kafka = new Kafka({
    clientId: `${config.clientId}-replay`,
    brokers: [...config.brokers],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3_000,
    retry: { retries: 3 }
  })
  const admin = kafka.admin()
  await admin.connect()
  let ends: Map<number, number>
  try {
    if (!(await admin.listTopics()).includes(config.topic)) throw new Error(`topic ${config.topic} does not exist`)
    const offsets = await admin.fetchTopicOffsets(config.topic)
    ends = new Map(offsets.filter((p) => Number(p.high) > Number(p.low)).map((p) => [p.partition, Number(p.high)]))
  } finally {
    await admin.disconnect().catch(() => undefined)
  }
  if (ends.size === 0) return []

  const groupId = `sluice-replay-${randomUUID()}`
  const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false })
  const found: Array<Buffer> = []
  const reached = new Set<number>()
  try {
    await consumer.connect()
    await consumer.subscribe({ topic: config.topic, fromBeginning: true })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the topic's end offsets were not reached within ${KAFKA_TIMEOUT_MS / 1000} s`)),
        KAFKA_TIMEOUT_MS
      )
      const partitionDone = (partition: number) => {
        reached.add(partition)
        if (reached.size === ends.size) {
          clearTimeout(timer)
          resolve()
        }
      }
      consumer
        .run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            const end = ends.get(batch.partition)
            if (end === undefined || reached.has(batch.partition)) return
            for (const m of batch.messages) {
              if (Number(m.offset) >= end) break
              if (m.key !== null && m.value !== null && m.key.toString("utf8") === sessionId) found.push(Buffer.from(m.value))
            }
            // The batch's high watermark may be past `end`: the partition is done once its last offset is.
            if (Number(batch.lastOffset()) + 1 >= end) partitionDone(batch.partition)
          }
        })
        .catch((e) => {
          clearTimeout(timer)
          reject(e)
        })
    })
  } finally {
    await consumer.disconnect().catch(() => undefined)
    const cleanup = kafka.admin()
    await cleanup
      .connect()
      .then(() => cleanup.deleteGroups([groupId]))
      .catch(() => undefined)
      .finally(() => cleanup.disconnect().catch(() => undefined))
  }
  return found
}

/** Known schema versions by Confluent schema id, looked up in the registry. */
const confluentWriters = async (registryUrl: string, ids: ReadonlySet<number>): Promise<Map<number, SchemaVersion>> => {
  const registry = makeRegistryClient({ url: registryUrl })
  const writers = new Map<number, SchemaVersion>()
  for (const id of ids) {
    const text = await Effect.runPromise(registry.schemaById(id))
    const canonical = parsingCanonicalForm(JSON.parse(text))
    const known = SCHEMA_VERSIONS.find((v) => v.canonical === canonical)
    if (known !== undefined) writers.set(id, known)
  }
  return writers
}

/**
 * kafkajs (2.2.4) schedules timers with negative delays, which Node 24 reports on stderr as a
 * TimeoutNegativeWarning (harmless: the delay becomes 1 ms). A person reads replay's stderr,
 * so that one warning is kept off it while Kafka is read.
 */
const withoutTimeoutNegativeWarnings = async <A>(f: () => Promise<A>): Promise<A> => {
  const emitWarning = process.emitWarning
  process.emitWarning = function (this: NodeJS.Process, warning: string | Error, ...rest: Array<unknown>) {
    const type = typeof rest[0] === "string" ? rest[0] : (rest[0] as { type?: string } | undefined)?.type
    const name = warning instanceof Error ? warning.name : type
    if (name === "TimeoutNegativeWarning") return
    return (emitWarning as (...args: Array<unknown>) => void).call(process, warning, ...rest)
  } as typeof process.emitWarning
  try {
    return await f()
  } finally {
    process.emitWarning = emitWarning
  }
}

const fromKafka = (config: KafkaConfig, sessionId: string): Effect.Effect<Found, ReplayFailed> =>
  Effect.tryPromise({
    try: async (): Promise<Found> => {
      const messages = await withoutTimeoutNegativeWarnings(() => sessionMessages(config, sessionId))
      const confluentIds = new Set<number>()
      for (const m of messages) if (m.length >= 5 && m[0] === 0) confluentIds.add(m.readUInt32BE(1))
      const writers = confluentIds.size > 0 && config.schemaRegistryUrl !== undefined ? await confluentWriters(config.schemaRegistryUrl, confluentIds) : new Map<number, SchemaVersion>()
      const events: Array<AuditEvent> = []
      const undecodable: Array<string> = []
      for (const m of messages) {
        const decoded: Result.Result<AuditEvent, AvroDecodeError> = m[0] === 0 ? decodeConfluent(m, (id) => writers.get(id)) : decodeSingleObject(m)
        if (Result.isSuccess(decoded)) events.push(decoded.success)
        else undecodable.push(decoded.failure.reason)
      }
      return { source: `Kafka topic ${config.topic} on ${config.brokers.join(",")}`, events, undecodable }
    },
    catch: (e) => new ReplayFailed({ detail: `reading Kafka topic ${config.topic} on ${config.brokers.join(",")}: ${describe(e)}` })
  })

const fromFiles = (directory: string, sessionId: string): Effect.Effect<Found, ReplayFailed> =>
  readContainerFiles(directory).pipe(
    Effect.map((all) => ({ source: `audit files in ${directory}`, events: all.filter((e) => e.sessionId === sessionId), undecodable: [] })),
    Effect.mapError((e) => new ReplayFailed({ detail: e.message }))
  )

// ---------------------------------------------------------------------------------------------
// the timeline

/** Distinct events (by event id) in sequence order. */
export const timeline = (events: ReadonlyArray<AuditEvent>): Array<AuditEvent> => {
  const byId = new Map<string, AuditEvent>()
  for (const e of events) if (!byId.has(e.eventId)) byId.set(e.eventId, e)
  return [...byId.values()].sort((a, b) => a.sequence - b.sequence)
}

const isoMicros = (micros: number): string => {
  const ms = Math.floor(micros / 1000)
  const iso = new Date(ms).toISOString() // 2026-01-02T03:04:05.678Z
  return `${iso.slice(0, 19)}.${String(micros - Math.floor(micros / 1_000_000) * 1_000_000).padStart(6, "0")}Z`
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`
const millis = (micros: number): string => (micros >= 1_000_000 ? `${(micros / 1_000_000).toFixed(2)} s` : `${(micros / 1000).toFixed(2)} ms`)

/** Cells wider than this are cut in the table; `--json` has every value whole. */
const MAX_CELL = 40

const hex = (v: Uint8Array): string => `\\x${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex")}`

/**
 * Text from the audit trail as it may safely reach a terminal: control characters (an
 * escape sequence in a value or a statement could rewrite the auditor's screen) as `\xNN`,
 * except those `keep` names.
 */
const printable = (s: string, keep = ""): string =>
  s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => (keep.includes(c) ? c : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`))

/** A value as psql would show it (bytes as `\x…` hex), on one line, cut to {@link MAX_CELL}. */
const cell = (v: RecordedValue): string => {
  if (v === null) return "NULL"
  const flat = typeof v === "string" ? printable(v) : hex(v)
  return flat.length > MAX_CELL ? `${flat.slice(0, MAX_CELL - 1)}…` : flat
}

const widest = (a: number, b: number): number => (a > b ? a : b)

/** The recorded rows as an aligned table, a line per row, under the event's line. */
const table = (p: RecordedRows): ReadonlyArray<string> => {
  // loops, not spreads: a recording may hold more rows than a call takes arguments
  const width = p.rows.reduce((w, r) => widest(w, r.length), p.columns.length)
  const heading = Array.from({ length: width }, (_, i) => cell(p.columns[i]?.name ?? `?${i + 1}`))
  const body = p.rows.map((r) => heading.map((_, i) => (i < r.length ? cell(r[i]!) : "")))
  const widths = heading.map((h, i) => body.reduce((w, r) => widest(w, r[i]!.length), h.length))
  const line = (cells: ReadonlyArray<string>): string => cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ").trimEnd()
  return [line(heading), widths.map((w) => "-".repeat(w)).join("-+-"), ...body.map(line)]
}

/**
 * A masked column: its name, where it came from (`computed` for an expression over masked
 * columns, `origin unknown` when Sluice could not tell), the mask unless it is `computed`,
 * the method and the count, e.g. `email (public.customers.email, mask pii-email, redact, 12 values)`.
 */
const maskedColumn = (c: MaskedColumn): string => {
  const source = c.source !== null ? printable(c.source) : c.maskId === "computed" ? "computed" : "origin unknown"
  const mask = c.source === null && c.maskId === "computed" ? "" : `mask ${printable(c.maskId)}, `
  return `${printable(c.name)} (${source}, ${mask}${c.method}, ${plural(c.values, "value")})`
}

/** `masked 3  email (…), upper (computed, redact, 12 values) in 12 rows · 2 messages withheld` */
const maskingSummary = (p: MaskingSummary): string => {
  const columns = p.columns.length > 0 ? `${p.columns.map(maskedColumn).join(", ")} in ${plural(p.rows, "row")}` : "no values rewritten"
  return `masked ${p.statementId}  ${columns}${p.messagesWithheld > 0 ? ` · ${plural(p.messagesWithheld, "message")} withheld` : ""}`
}

/** One event as the text after its sequence number and time. */
export const describeEvent = (e: AuditEvent): string => {
  const p = e.payload
  switch (p._tag) {
    case "SessionStart":
      return (
        `session start  ${p.actor.subject} (${p.actor.kind}, issuer ${p.actor.issuer}${p.actor.groups.length > 0 ? `, groups ${p.actor.groups.join(",")}` : ""})` +
        ` from ${p.clientAddress}:${p.clientPort} as user "${p.clientUser}"${p.applicationName ? `, application "${p.applicationName}"` : ""}` +
        `, ${p.tls ? "TLS" : "no TLS"}; ${p.protocol} target ${p.targetName} (database ${p.targetDatabase}) as backend user ${p.backendUser}`
      )
    case "Statement": {
      const relations = [
        ...(p.relationsRead.length > 0 ? [`reads ${p.relationsRead.join(", ")}`] : []),
        ...(p.relationsWritten.length > 0 ? [`writes ${p.relationsWritten.join(", ")}`] : []),
        ...(p.functions.length > 0 ? [`calls ${p.functions.join(", ")}`] : [])
      ]
      const text = printable(p.text, "\n").replace(/\n/g, "\n      ")
      return `statement ${p.statementId}  [${p.statementClass}, ${p.via}${relations.length > 0 ? `; ${relations.join("; ")}` : ""}]  ${text}`
    }
    case "Decision":
      return `decision ${p.statementId}  ${p.verdict.toUpperCase()} by rule ${p.ruleId}${p.reason !== null ? `: ${p.reason}` : ""} (policy ${p.policyVersion})`
    case "Result":
      return (
        `result ${p.statementId}  ${p.commandTag ?? "(no command tag)"}  ${plural(p.rows, "row")}, ${plural(p.bytes, "byte")}, ${millis(p.durationMicros)}` +
        `, SQLSTATE ${p.sqlstate}${p.sqlstate === "00000" ? "" : " (error)"}`
      )
    case "RecordedRows": {
      const head = `recorded ${p.statementId}  ${plural(p.rows.length, "row")}${p.truncated ? " (cut off by the recording caps)" : ""}`
      return p.rows.length === 0 ? head : [head, ...table(p)].join("\n      ")
    }
    case "MaskingSummary":
      return maskingSummary(p)
    case "SessionEnd":
      return (
        `session end  ${p.reason} after ${millis(p.durationMicros)}: ${plural(p.statements, "statement")}` +
        `, ${plural(p.bytesFromClient, "byte")} from the client, ${plural(p.bytesToClient, "byte")} to it`
      )
  }
}

/** The printed timeline: a heading, one line per event, and a line for every gap in the sequence numbers. */
export const renderTimeline = (sessionId: string, source: string, events: ReadonlyArray<AuditEvent>): string => {
  const lines = [`session ${sessionId}: ${plural(events.length, "event")} from ${source}`]
  const width = String(events.length === 0 ? 0 : events[events.length - 1]!.sequence).length
  let expected = 0
  for (const e of events) {
    if (e.sequence > expected) {
      lines.push(`${"!".padStart(width)}  missing: sequence ${expected === e.sequence - 1 ? expected : `${expected}..${e.sequence - 1}`} (not delivered, or lost)`)
    }
    lines.push(`${String(e.sequence).padStart(width)}  ${isoMicros(e.time)}  ${describeEvent(e)}`)
    expected = e.sequence + 1
  }
  const last = events[events.length - 1]
  if (last !== undefined && last.payload._tag !== "SessionEnd") lines.push(`${"…".padStart(width)}  no session end yet (still open, still in a gateway's spool, or lost)`)
  return lines.join("\n")
}

/** JSON of an event, one line (for tools: `--json`); recorded binary values as `{"hex": "…"}`. */
export const jsonLine = (e: AuditEvent): string =>
  JSON.stringify(e, function (this: Record<string, unknown>, key, value) {
    const original = this[key]
    return original instanceof Uint8Array ? { hex: Buffer.from(original.buffer, original.byteOffset, original.byteLength).toString("hex") } : value
  })

export const replay = Command.make(
  "replay",
  {
    session: Argument.String("session-id").pipe(Argument.withDescription("The session id (the Kafka key; sessionId in every event)")),
    config: Flag.String("config").pipe(Flag.withAlias("c"), Flag.withDescription("The gateway's config file: its audit section says where to read")),
    json: Flag.Boolean("json").pipe(Flag.withDefault(false), Flag.withDescription("Print each event as one JSON line instead"))
  },
  ({ session, config, json }) =>
    Effect.gen(function* () {
      const cfg = yield* loadConfig(config)
      const found = yield* cfg.audit.kafka !== undefined ? fromKafka(cfg.audit.kafka, session) : fromFiles(cfg.audit.files.directory, session)
      for (const reason of found.undecodable) yield* Console.error(`sluice replay: skipped a message of the session that cannot be decoded: ${reason}`)
      const events = timeline(found.events)
      if (events.length === 0) return yield* new ReplayFailed({ detail: `no events of session ${session} in ${found.source}` })
      yield* Console.log(json ? events.map(jsonLine).join("\n") : renderTimeline(session, found.source, events))
    }).pipe(
      Effect.catch((e: { readonly message: string }) =>
        Console.error(e.message).pipe(
          Effect.andThen(
            Effect.sync(() => {
              process.exitCode = 1
            })
          )
        )
      )
    )
).pipe(Command.withDescription("Print a session's audit timeline (statements, decisions, results) from the file sink or Kafka"))
