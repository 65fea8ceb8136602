/**
 * Reading the audit trail back in integration tests, independently of the code under test
 * where that matters: a kafkajs consumer (a fresh group, from the beginning, up to the end
 * offsets of the moment), `kcat`, a reader of the spool's segment files written from the
 * documented format, and the checks every audit test makes on a set of events (sequence
 * numbers without gaps per session, duplicates by event id, statement ids tying Decision,
 * Result, RecordedRows and MaskingSummary to their Statement).
 */
import { randomUUID } from "node:crypto"
import { readdirSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { crc32 } from "node:zlib"
import { Result } from "effect"
import { Kafka, logLevel } from "kafkajs"
import { decodeSingleObject } from "../../../src/sinks/avro.ts"
import type { AuditEvent, Payload, RecordedValue } from "../../../src/sinks/events.ts"
import { runCommand } from "./policy-clients.ts"

export interface TopicMessage {
  readonly partition: number
  readonly offset: number
  readonly key: string | null
  readonly value: Buffer
  readonly headers: Readonly<Record<string, string>>
}

const kafkaClient = (brokers: string) =>
  new Kafka({ clientId: `sluice-test-reader`, brokers: brokers.split(","), logLevel: logLevel.NOTHING, connectionTimeout: 3_000, retry: { retries: 5 } })

/** Each partition's end offset (the next offset to be written) and start offset; [] when the topic does not exist (yet). */
export const topicOffsets = async (brokers: string, topic: string): Promise<Array<{ partition: number; low: number; high: number }>> => {
  const admin = kafkaClient(brokers).admin()
  await admin.connect()
  try {
    const topics = await admin.listTopics()
    if (!topics.includes(topic)) return []
    return (await admin.fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, low: Number(p.low), high: Number(p.high) }))
  } finally {
    await admin.disconnect()
  }
}

/**
 * Every message of the topic from the beginning up to the end offsets found when called:
 * a kafkajs consumer in a group of its own (deleted afterwards).
 */
export const consumeTopic = async (brokers: string, topic: string, timeoutMs = 30_000): Promise<Array<TopicMessage>> => {
  const ends = (await topicOffsets(brokers, topic)).filter((p) => p.high > p.low)
  if (ends.length === 0) return []
  const want = new Map(ends.map((p) => [p.partition, p.high]))
  const kafka = kafkaClient(brokers)
  const groupId = `sluice-test-${randomUUID()}`
  const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false })
  const out: Array<TopicMessage> = []
  const reached = new Set<number>()
  try {
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`consuming ${topic}: only ${out.length} messages within ${timeoutMs} ms; wanted up to ${JSON.stringify([...want])}`)),
        timeoutMs
      )
      consumer
        .run({
          autoCommit: false,
          eachMessage: async ({ partition, message }) => {
            const end = want.get(partition)
            const offset = Number(message.offset)
            if (end === undefined || offset >= end) return
            const headers: Record<string, string> = {}
            for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = Buffer.isBuffer(v) ? v.toString("utf8") : String(v)
            out.push({ partition, offset, key: message.key === null ? null : message.key.toString("utf8"), value: Buffer.from(message.value ?? Buffer.alloc(0)), headers })
            if (offset + 1 >= end) {
              reached.add(partition)
              if (reached.size === want.size) {
                clearTimeout(timer)
                resolve()
              }
            }
          }
        })
        .catch((e) => {
          clearTimeout(timer)
          reject(e)
        })
    })
  } finally {
    await consumer.disconnect().catch(() => {})
    const admin = kafka.admin()
    await admin
      .connect()
      .then(() => admin.deleteGroups([groupId]))
      .catch(() => {})
      .finally(() => admin.disconnect().catch(() => {}))
  }
  return out.sort((a, b) => a.partition - b.partition || a.offset - b.offset)
}

/** Decodes a message value; fails the test with the reason when it is not a single-object encoded event. */
export const decodeValue = (value: Buffer): AuditEvent => {
  const r = decodeSingleObject(value)
  if (Result.isFailure(r)) throw new Error(`undecodable audit message: ${r.failure.reason}`)
  return r.success
}

/** Polls `read` until `done` holds of what it returned; the last value read. */
export const pollUntil = async <A>(read: () => Promise<A>, done: (a: A) => boolean, what: string, timeoutMs = 60_000, intervalMs = 500): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  let last: A | undefined
  let lastError: unknown
  for (;;) {
    try {
      last = await read()
      if (done(last)) return last
    } catch (e) {
      lastError = e
    }
    if (Date.now() > deadline) {
      throw new Error(`${what}: not within ${timeoutMs} ms${lastError !== undefined ? ` (last error: ${String(lastError)})` : ""}`)
    }
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

// ---------------------------------------------------------------------------------------------
// kcat

/** `kcat -C -e` from the beginning of the topic with a format (e.g. `%k\n`): stdout, split into lines. */
export const kcat = async (brokers: string, topic: string, format: string): Promise<Array<string>> => {
  const r = await runCommand("kcat", ["-b", brokers, "-t", topic, "-C", "-e", "-q", "-o", "beginning", "-f", format], { timeoutMs: 30_000 })
  if (r.code !== 0) throw new Error(`kcat failed (${r.code}): ${r.stderr}`)
  return r.stdout.split("\n").filter((l) => l !== "")
}

// ---------------------------------------------------------------------------------------------
// the checks

export interface SessionTrail {
  readonly sessionId: string
  /** Distinct events (duplicates by event id removed), by sequence. */
  readonly events: ReadonlyArray<AuditEvent>
}

export interface TrailSummary {
  readonly sessions: ReadonlyMap<string, SessionTrail>
  /** Copies of an event id already seen (at-least-once delivery), after the first. */
  readonly duplicates: number
  /** Problems found; [] when the trail is whole. */
  readonly problems: ReadonlyArray<string>
}

/**
 * Groups events by session after dropping duplicates by event id, and lists every problem:
 * one (session, sequence) with two different event ids, a duplicate id whose content
 * differs, a gap in a session's sequence numbers (0..n-1), a Decision, Result, RecordedRows
 * or MaskingSummary with no Statement of its id, a Statement without its Decision. With
 * `complete`, every session must also start with SessionStart and end with SessionEnd, its
 * `statements` count matching.
 */
export const summarize = (events: ReadonlyArray<AuditEvent>, options: { readonly complete?: boolean } = {}): TrailSummary => {
  const problems: Array<string> = []
  const byId = new Map<string, AuditEvent>()
  let duplicates = 0
  for (const e of events) {
    const seen = byId.get(e.eventId)
    if (seen === undefined) byId.set(e.eventId, e)
    else {
      duplicates++
      if (JSON.stringify(seen) !== JSON.stringify(e)) problems.push(`event ${e.eventId} was delivered twice with different contents`)
    }
  }
  const grouped = new Map<string, Array<AuditEvent>>()
  for (const e of byId.values()) {
    const list = grouped.get(e.sessionId) ?? []
    list.push(e)
    grouped.set(e.sessionId, list)
  }
  const sessions = new Map<string, SessionTrail>()
  for (const [sessionId, list] of grouped) {
    list.sort((a, b) => a.sequence - b.sequence)
    const where = `session ${sessionId}`
    for (let i = 0; i < list.length; i++) {
      const e = list[i]!
      if (i > 0 && list[i - 1]!.sequence === e.sequence) problems.push(`${where}: sequence ${e.sequence} has two event ids (${list[i - 1]!.eventId}, ${e.eventId})`)
    }
    const seqs = [...new Set(list.map((e) => e.sequence))]
    const missing: Array<number> = []
    const max = seqs.length === 0 ? -1 : seqs[seqs.length - 1]!
    const have = new Set(seqs)
    for (let s = 0; s <= max; s++) if (!have.has(s)) missing.push(s)
    if (missing.length > 0) problems.push(`${where}: missing sequence numbers ${summarizeNumbers(missing)} (of 0..${max})`)
    const statements = new Map<number, AuditEvent>()
    const decided = new Set<number>()
    for (const e of list) {
      const p = e.payload
      if (p._tag === "Statement") {
        if (statements.has(p.statementId)) problems.push(`${where}: statement id ${p.statementId} used twice`)
        statements.set(p.statementId, e)
      } else if (p._tag === "Decision" || p._tag === "Result" || p._tag === "RecordedRows" || p._tag === "MaskingSummary") {
        const st = statements.get(p.statementId)
        if (st === undefined) problems.push(`${where}: ${p._tag} at sequence ${e.sequence} names statement ${p.statementId}, which has no earlier Statement event`)
        if (p._tag === "Decision") decided.add(p.statementId)
      }
    }
    for (const id of statements.keys()) if (!decided.has(id)) problems.push(`${where}: statement ${id} has no Decision`)
    if (options.complete === true) {
      if (list[0]?.payload._tag !== "SessionStart" || list[0].sequence !== 0) problems.push(`${where}: does not begin with SessionStart at sequence 0`)
      const last = list[list.length - 1]
      if (last?.payload._tag !== "SessionEnd") problems.push(`${where}: does not end with SessionEnd`)
      else if (last.payload.statements !== statements.size) {
        problems.push(`${where}: SessionEnd counts ${last.payload.statements} statements, the trail holds ${statements.size}`)
      }
    }
    sessions.set(sessionId, { sessionId, events: list })
  }
  return { sessions, duplicates, problems }
}

const summarizeNumbers = (ns: ReadonlyArray<number>): string => (ns.length <= 10 ? ns.join(", ") : `${ns.slice(0, 10).join(", ")}, … (${ns.length} in all)`)

export const kinds = (events: ReadonlyArray<AuditEvent>): Array<Payload["_tag"]> => [...new Set(events.map((e) => e.payload._tag))].sort()

/** Events of one kind, typed. */
export const ofKind = <K extends Payload["_tag"]>(events: ReadonlyArray<AuditEvent>, kind: K): Array<AuditEvent & { payload: Extract<Payload, { _tag: K }> }> =>
  events.filter((e): e is AuditEvent & { payload: Extract<Payload, { _tag: K }> } => e.payload._tag === kind)

// ---------------------------------------------------------------------------------------------
// the spool on disk, read from its documented format (src/sinks/spool/format.ts):
//   u32 BE length | u32 BE CRC-32 of the record | u32 BE CRC-32 of those 8 bytes | record

const SEGMENT = /^\d{20}\.seg$/

/** The spool's segment files, oldest first. */
export const spoolSegments = (directory: string): Array<string> =>
  readdirSync(directory)
    .filter((n) => SEGMENT.test(n))
    .sort()
    .map((n) => join(directory, n))

/** Bytes in the spool's segment files. */
export const spoolBytes = (directory: string): number => {
  try {
    return spoolSegments(directory).reduce((sum, f) => sum + statSync(f).size, 0)
  } catch {
    return 0
  }
}

/**
 * Every whole record in the spool's segments, in order (acknowledged ones included): a
 * reader that stops at the first frame that does not verify (a torn tail).
 */
export const spoolRecords = (directory: string): Array<Buffer> => {
  const out: Array<Buffer> = []
  for (const file of spoolSegments(directory)) {
    const bytes = readFileSync(file)
    let at = 0
    while (at + 12 <= bytes.length) {
      const length = bytes.readUInt32BE(at)
      const crc = bytes.readUInt32BE(at + 4)
      const check = bytes.readUInt32BE(at + 8)
      if (crc32(bytes.subarray(at, at + 8)) !== check || at + 12 + length > bytes.length) break
      const record = bytes.subarray(at + 12, at + 12 + length)
      if (crc32(record) !== crc) break
      out.push(Buffer.from(record))
      at += 12 + length
    }
  }
  return out
}

/** The audit event in a spool record (session id and kind in front of the single-object bytes, see src/sinks/spool-record.ts). */
export const spooledEvent = (record: Buffer): { sessionId: string; kind: string; event: AuditEvent } => {
  const sessionEnd = 1 + record[0]!
  const kindEnd = sessionEnd + 1 + record[sessionEnd]!
  return { sessionId: record.toString("utf8", 1, sessionEnd), kind: record.toString("utf8", sessionEnd + 1, kindEnd), event: decodeValue(record.subarray(kindEnd)) }
}

/**
 * Order on the topic: for each session, the first copy of each event (by event id), in the
 * order the messages were consumed (one partition per session), must have growing sequence
 * numbers. Problems, or [].
 */
export const orderProblems = (eventsInTopicOrder: ReadonlyArray<AuditEvent>): Array<string> => {
  const seen = new Set<string>()
  const last = new Map<string, number>()
  const problems: Array<string> = []
  for (const e of eventsInTopicOrder) {
    if (seen.has(e.eventId)) continue
    seen.add(e.eventId)
    const before = last.get(e.sessionId)
    if (before !== undefined && e.sequence <= before) problems.push(`session ${e.sessionId}: sequence ${e.sequence} arrived after ${before}`)
    last.set(e.sessionId, e.sequence)
  }
  return problems
}

const hexView = (v: RecordedValue): unknown => (v instanceof Uint8Array ? { hex: Buffer.from(v).toString("hex") } : v)

/**
 * The Avro view of an event, as support/fastavro_decode.py prints it: the union branch by
 * full name, `via` as its symbol, bytes as `{hex}`.
 */
export const avroView = (e: AuditEvent): unknown => {
  const { _tag, ...fields } = e.payload
  const value =
    e.payload._tag === "Statement" && e.payload.via === "function-call"
      ? { ...fields, via: "function_call" }
      : e.payload._tag === "RecordedRows"
        ? { ...fields, rows: e.payload.rows.map((row) => row.map(hexView)) }
        : fields
  return { eventId: e.eventId, sessionId: e.sessionId, sequence: e.sequence, time: e.time, gateway: e.gateway, payload: { branch: `sluice.audit.${_tag}`, value } }
}
