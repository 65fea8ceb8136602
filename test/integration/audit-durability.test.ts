/**
 * The audit trail survives what the issue says it must (issue 4, "Proof"), against real
 * processes: a Kafka broker of this file's own (fixed data directory and ports, so it can be
 * stopped and started again at the same address), the real gateway CLI, node-postgres
 * clients running statements throughout.
 *
 * - Kafka outage: the broker stops while clients run; sessions go on and the spool grows;
 *   the broker comes back; every event arrives: per session, sequence numbers 0..n-1 with
 *   none missing, nothing left over after dropping duplicates by event id, counts matching
 *   what the clients did.
 * - Gateway crash: SIGKILL mid-run (Kafka down, so the spool holds a backlog); a gateway
 *   started again on the same config and spool ships every event that was in the spool at
 *   the kill (read from the segment files at that moment), plus its own sessions'.
 * - Spool write failure (EFBIG from RLIMIT_FSIZE, standing in for ENOSPC): the statement
 *   whose events cannot be written never reaches the server; the session ends FATAL 57P03.
 * - Spool full: with Kafka unreachable and a tiny spool, `refuse` refuses statements
 *   (42501, rule audit-unavailable) and new sessions (FATAL 57P03) with a clear message;
 *   `drop` lets them go on and logs the alarm.
 * - Interoperability: the outage topic decoded by fastavro (not avsc) and counted by kcat;
 *   a files-only gateway's container files read by fastavro.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { CURRENT_SCHEMA, SCHEMA_DIRECTORY } from "../../src/sinks/avro.ts"
import type { AuditEvent } from "../../src/sinks/events.ts"
import { listContainerFiles, readContainerFiles } from "../../src/sinks/file-sink.ts"
import { freePort, freePorts } from "../harness/free-port.ts"
import { type KafkaServer, startKafka } from "../harness/kafka.ts"
import { provision } from "../harness/provision.ts"
import { startLoad } from "./support/audit-load.ts"
import {
  avroView,
  consumeTopic,
  decodeValue,
  kcat,
  ofKind,
  orderProblems,
  pollUntil,
  spoolBytes,
  spooledEvent,
  spoolRecords,
  summarize
} from "./support/audit-trail.ts"
import { ALLOW_ALL_POLICY, defaultConfig, startGateway } from "./support/gateway.ts"
import { type GatewayProcess, launchGateway } from "./support/gateway-process.ts"
import { gatewayPid, logEntries, rejection, waitForLog } from "./support/policy-clients.ts"
import { exec, FASTAVRO_SCRIPT, fastavroPython } from "./support/fastavro.ts"


const servers = () => inject("servers")
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const secs = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`

describe("audit durability", () => {
  const work = mkdtempSync(join(tmpdir(), "sluice-audit-durability-"))
  let kafkaLibs: string
  let ports: { broker: number; controller: number }
  let broker: KafkaServer | undefined
  const brokers = () => `127.0.0.1:${ports.broker}`
  const startBroker = async () => {
    const t = Date.now()
    broker = await startKafka(kafkaLibs, { dir: join(work, "kafka"), ports })
    return Date.now() - t
  }
  const stopBroker = async () => {
    const t = Date.now()
    await broker?.stop()
    broker = undefined
    return Date.now() - t
  }
  /** The outage test's topic, for the interop test. */
  let outageTopic: string | undefined

  /** A gateway auditing to `topic` on the dedicated broker, its spool in `spoolDir`. */
  const kafkaGateway = (topic: string, spoolDir: string, spool: Record<string, unknown> = {}) =>
    startGateway((port) => ({
      ...defaultConfig(port),
      audit: {
        spool: { directory: spoolDir, segmentBytes: 128 * 1024, ...spool },
        kafka: { brokers: [brokers()], topic, clientId: "sluice-durability" },
        files: { directory: join(work, "unused-files") }
      }
    }))

  beforeAll(async () => {
    const t = Date.now()
    const built = await provision(["kafka"])
    kafkaLibs = built.kafkaLibs!
    const [b, c] = await freePorts(2)
    ports = { broker: b!, controller: c! }
    const took = await startBroker()
    console.log(`[durability] dedicated broker ${brokers()} up in ${took} ms (${secs(t)} with provisioning)`)
  }, 240_000)

  afterAll(async () => {
    await stopBroker().catch(() => {})
    rmSync(work, { recursive: true, force: true })
  })

  it("Kafka outage: sessions go on, the spool grows, and after the restart every event arrives exactly once (after dropping duplicates)", async () => {
    const t0 = Date.now()
    const topic = (outageTopic = `sluice-outage-${Date.now()}`)
    const spoolDir = join(work, "outage-spool")
    const gw = await kafkaGateway(topic, spoolDir)
    const load = startLoad(() => gw.connection(), { workers: 3, statementsPerSession: 12, pauseMs: 5 })
    try {
      // Delivering normally first.
      await pollUntil(() => consumeTopic(brokers(), topic), (ms) => ms.length > 50, "the first events on the topic", 30_000)
      const beforeOutage = load.count()

      const stopMs = await stopBroker()
      const logFrom = gw.logs().length
      const outageStart = Date.now()
      const spoolAtStop = spoolBytes(spoolDir)
      const countAtStop = load.count()
      await waitForLog(gw, /audit delivery failed; will retry/, logFrom, 30_000)
      await sleep(3_000)
      const spoolDuring = spoolBytes(spoolDir)
      const countDuring = load.count()
      // a session opened during the outage works too
      const fresh = new pg.Client({ ...gw.connection(), query_timeout: 5_000 })
      await fresh.connect()
      expect((await fresh.query("SELECT 'opened during the outage' AS note")).rows).toEqual([{ note: "opened during the outage" }])
      await fresh.end()

      console.log(
        `[durability] outage: broker stopped in ${stopMs} ms; ${countDuring - countAtStop} statements ran during ${secs(outageStart)} of outage; ` +
          `spool ${spoolAtStop} -> ${spoolDuring} bytes`
      )
      expect(load.errors()).toEqual([])
      expect(countDuring - countAtStop).toBeGreaterThan(50)
      expect(spoolDuring).toBeGreaterThan(spoolAtStop + 20_000)
      const warnings = logEntries(gw.logs().slice(logFrom), "audit delivery failed; will retry")
      expect(warnings.length).toBeGreaterThan(0)
      expect(warnings.join("\n")).toContain(`kafka topic ${topic}`)

      const startMs = await startBroker()
      console.log(`[durability] outage: broker back at ${brokers()} after ${startMs} ms (outage ${secs(outageStart)})`)
      await sleep(1_000)
      const stats = await load.stop()
      expect(stats.errors).toEqual([])
      expect(stats.sessionsClosed).toBe(stats.sessionsOpened)
      const sessions = stats.sessionsClosed + 1 // and the one opened during the outage
      const statements = stats.completed.length + 1
      const expected = 2 * sessions + 3 * statements
      console.log(`[durability] outage: ${sessions} sessions, ${statements} statements (${beforeOutage} before the outage): ${expected} events expected`)

      // Everything arrives: every session ended, every event (counted after dropping duplicates).
      const deliveredAt = Date.now()
      const messages = await pollUntil(
        () => consumeTopic(brokers(), topic, 60_000),
        (ms) => new Set(ms.map((m) => decodeValue(m.value).eventId)).size >= expected,
        `all ${expected} events on ${topic}`,
        90_000,
        1_000
      )
      const events = messages.map((m) => decodeValue(m.value))
      const summary = summarize(events, { complete: true })
      console.log(
        `[durability] outage: ${messages.length} messages (${summary.duplicates} duplicates) drained ${secs(deliveredAt)} after the clients stopped; ` +
          `spool now ${spoolBytes(spoolDir)} bytes; test ${secs(t0)}`
      )
      expect(summary.problems).toEqual([])
      expect(orderProblems(events)).toEqual([])
      expect(summary.sessions.size).toBe(sessions)
      expect(new Set(events.map((e) => e.eventId)).size).toBe(expected)
      expect(new Set(events.map((e) => `${e.sessionId}/${e.sequence}`)).size).toBe(expected)
      // what the clients did is what the trail says
      const texts = new Set(ofKind(events, "Statement").map((e) => e.payload.text))
      for (const c of stats.completed) expect(texts.has(c.text)).toBe(true)
      for (const m of messages) expect(m.key).toBe(decodeValue(m.value).sessionId)
      // the spool drained: everything acknowledged
      await pollUntil(async () => spoolBytes(spoolDir), (b) => b < 256 * 1024, "the spool to drain", 20_000)
    } finally {
      await load.stop()
      await gw.stop()
    }
  }, 180_000)

  it("gateway crash: SIGKILL mid-run; restarted on the same spool, it ships every event that was spooled before the kill", async () => {
    const t0 = Date.now()
    const topic = `sluice-crash-${Date.now()}`
    const spoolDir = join(work, "crash-spool")
    const gw = await kafkaGateway(topic, spoolDir)
    let restarted: GatewayProcess | undefined
    try {
      const load = startLoad(() => gw.connection(), { workers: 3, statementsPerSession: 12, pauseMs: 5 })
      await pollUntil(() => consumeTopic(brokers(), topic), (ms) => ms.length > 50, "the first events on the topic", 30_000)
      // Kafka down: the spool holds a backlog when the gateway dies.
      await stopBroker()
      await sleep(2_000)
      expect(load.errors()).toEqual([])
      const pid = await gatewayPid(gw)
      process.kill(pid, "SIGKILL")
      const killedAt = Date.now()
      await sleep(300) // every worker meets the dead gateway
      const stats = await load.stop()
      // What the spool held at the kill: the events the gateway had handed to the OS.
      const spooled = spoolRecords(spoolDir).map(spooledEvent)
      for (const s of spooled) {
        expect(s.sessionId).toBe(s.event.sessionId)
        expect(s.kind).toBe(s.event.payload._tag)
      }
      console.log(
        `[durability] crash: killed gateway ${pid} after ${stats.completed.length} statements; ${spooled.length} records in ${spoolBytes(spoolDir)} bytes of spool; ` +
          `client errors: ${stats.errors.length}`
      )
      expect(spooled.length).toBeGreaterThan(100)
      expect(stats.errors.length).toBe(3) // every client saw the gateway die

      // Started again on the same config (same port, spool, topic), Kafka still down.
      restarted = await launchGateway(join(gw.dir, "sluice.yaml"))
      const after = new pg.Client({ ...gw.connection(), application_name: "after-restart", query_timeout: 5_000 })
      after.on("error", () => {})
      await after.connect()
      for (let i = 0; i < 5; i++) await after.query(`SELECT ${i} AS after_restart`)
      await after.end()
      const brokerMs = await startBroker()
      const recovery = logEntries(restarted.logs(), "spool: ").map((e) => e.split("\n")[0]!.replace(/^\[[^\]]*\] /, ""))
      console.log(`[durability] crash: gateway ${restarted.pid} restarted (spool log: ${JSON.stringify(recovery)}); broker back in ${brokerMs} ms`)

      // Every spooled event arrives, and the new session's whole trail.
      const wanted = new Set(spooled.map((s) => s.event.eventId))
      const messages = await pollUntil(
        () => consumeTopic(brokers(), topic, 60_000),
        (ms) => {
          const events = ms.map((m) => decodeValue(m.value))
          const ids = new Set(events.map((e) => e.eventId))
          return [...wanted].every((id) => ids.has(id)) && events.some((e) => e.payload._tag === "SessionEnd" && summarizeApp(events, e.sessionId) === "after-restart")
        },
        `the ${wanted.size} spooled events and the new session on ${topic}`,
        90_000,
        1_000
      )
      const events = messages.map((m) => decodeValue(m.value))
      const ids = new Set(events.map((e) => e.eventId))
      const lost = [...wanted].filter((id) => !ids.has(id))
      expect(lost).toEqual([])
      // Whatever arrived is whole per session up to where the kill cut it: no gaps, no conflicting duplicates.
      const summary = summarize(events)
      expect(summary.problems).toEqual([])
      expect(orderProblems(events)).toEqual([])
      // The new gateway's session is complete (SessionStart .. SessionEnd, 5 statements).
      const newSession = ofKind(events, "SessionStart").find((e) => e.payload.applicationName === "after-restart")!.sessionId
      expect(summarize(events.filter((e) => e.sessionId === newSession), { complete: true }).problems).toEqual([])
      expect(ofKind(events, "Statement").filter((e) => e.sessionId === newSession)).toHaveLength(5)
      // What the clients saw answered before the kill is in the trail: its Statement (in the spool
      // before the server saw it) and its Result (in the spool before the answer went to the client).
      const statements = new Map(ofKind(events, "Statement").map((e) => [e.payload.text, e]))
      const results = new Set(ofKind(events, "Result").map((e) => `${e.sessionId}/${e.payload.statementId}`))
      for (const c of stats.completed) {
        const st = statements.get(c.text)
        expect(st, c.text).toBeDefined()
        expect(results.has(`${st!.sessionId}/${st!.payload.statementId}`), `Result of ${c.text}`).toBe(true)
      }
      console.log(
        `[durability] crash: ${messages.length} messages (${summary.duplicates} duplicates), all ${wanted.size} spooled events delivered ` +
          `${secs(killedAt)} after the kill; test ${secs(t0)}`
      )
    } finally {
      await restarted?.stop()
      await gw.stop()
    }
  }, 180_000)

  it("a spool write that fails mid-session (EFBIG, as ENOSPC would): the statement never reaches the server, the client gets FATAL 57P03", async () => {
    const { pg: info } = servers()
    const table = `audit_disk_probe_${Date.now()}`
    const direct = new pg.Client({ host: info.host, port: info.port, user: info.backend.user, password: info.backend.password, database: info.databases.app })
    await direct.connect()
    await direct.query(`CREATE TABLE ${table} (n int)`)
    const gw = await startGateway((port) => ({
      ...defaultConfig(port),
      audit: { spool: { directory: join(work, "efbig-spool"), segmentBytes: 1024 * 1024 }, files: { directory: join(work, "efbig-files") } }
    }))
    try {
      const c = new pg.Client({ ...gw.connection(), query_timeout: 5_000 })
      const clientErrors: Array<Error> = []
      c.on("error", (e) => clientErrors.push(e))
      await c.connect()
      // From now on no file of the gateway's may grow past 48 KiB: the spool's segment soon cannot.
      expect((await exec("prlimit", ["--pid", String(await gatewayPid(gw)), "--fsize=49152:49152"])).code).toBe(0)
      let ran = 0
      let failed: { code?: string; severity?: string; message: string } | undefined
      for (let i = 0; i < 2000 && failed === undefined; i++) {
        try {
          await c.query(`INSERT INTO ${table} VALUES (${i})`)
          ran++
        } catch (e) {
          failed = e as { code?: string; severity?: string; message: string }
        }
      }
      console.log(`[durability] spool write failure: ${ran} inserts ran, then: ${failed?.message}`)
      expect(ran).toBeGreaterThan(5)
      expect(failed).toMatchObject({ code: "57P03", severity: "FATAL" })
      expect(failed!.message).toMatch(/^the audit trail cannot record this session \(audit spool .*: write failed: EFBIG.*\), so it is refused$/)
      // exactly the inserts the client saw succeed are in the table: the refused one never ran
      const rows = await direct.query(`SELECT count(*)::int AS n, coalesce(max(n), -1) AS last FROM ${table}`)
      expect(rows.rows[0]).toEqual({ n: ran, last: ran - 1 })
      // the spool kept every whole event it accepted, and no partial frame
      const records = spoolRecords(join(work, "efbig-spool"))
      expect(records.reduce((n, r) => n + 12 + r.length, 0)).toBe(spoolBytes(join(work, "efbig-spool")))
      const spooled = records.map(spooledEvent)
      const texts = new Set(ofKind(spooled.map((s) => s.event), "Statement").map((e) => e.payload.text))
      for (let i = 0; i < ran; i++) expect(texts.has(`INSERT INTO ${table} VALUES (${i})`)).toBe(true)
      expect(texts.has(`INSERT INTO ${table} VALUES (${ran})`)).toBe(false)
      expect(gw.alive()).toBe(true)
      await c.end().catch(() => {})
    } finally {
      await gw.stop()
      await direct.query(`DROP TABLE ${table}`)
      await direct.end()
    }
  })

  describe("spool full, Kafka unreachable", () => {
    const fullGateway = async (onFull: "refuse" | "drop") => {
      const closed = await freePort() // nothing listens there
      return startGateway(
        (port) => ({
          ...defaultConfig(port),
          audit: {
            spool: { directory: join(work, `full-${onFull}-spool`), maxBytes: 16 * 1024, segmentBytes: 8 * 1024, onFull },
            kafka: { brokers: [`127.0.0.1:${closed}`], topic: "sluice-unreachable" },
            files: { directory: join(work, "unused-files") }
          }
        }),
        ALLOW_ALL_POLICY
      )
    }

    it("onFull refuse: once it fills, statements get 42501 from rule audit-unavailable and new sessions FATAL 57P03", async () => {
      const gw = await fullGateway("refuse")
      try {
        const c = new pg.Client({ ...gw.connection(), query_timeout: 5_000 })
        c.on("error", () => {})
        await c.connect()
        let ran = 0
        let refused: { code?: string; message: string } | undefined
        for (let i = 0; i < 500 && refused === undefined; i++) {
          try {
            await c.query(`SELECT ${i} AS n, repeat('x', 100) AS padding`)
            ran++
          } catch (e) {
            refused = e as { code?: string; message: string }
          }
        }
        console.log(`[durability] spool full (refuse): ${ran} statements ran before the refusal: ${refused?.message}`)
        expect(refused?.code).toBe("42501")
        expect(refused?.message).toMatch(
          /^the audit trail cannot record statements \(the audit spool is full: \d+ bytes wait for delivery, and new statements are refused above 12288\), so they are refused \(rule audit-unavailable\)$/
        )
        // the rule that refused it, as the gateway logs every block
        expect(logEntries(gw.logs(), "statement blocked").join("\n")).toMatch(/audit-unavailable/)
        expect(ran).toBeGreaterThan(5)
        expect(ran).toBeLessThan(200)
        // still refused, and the session still answers
        expect(await rejection(c.query("SELECT 1"))).toMatchObject({ code: "42501" })
        await c.end()
        // a new session is refused at login
        const fresh = new pg.Client({ ...gw.connection(), query_timeout: 5_000 })
        fresh.on("error", () => {})
        const err = await rejection(fresh.connect())
        expect(err).toMatchObject({ code: "57P03", severity: "FATAL" })
        expect(err.message).toMatch(/^the audit trail cannot record this session \(.*\), so it is refused$/)
        // the refusal came at the mark below the spool's bound: every event, the refused
        // statements' included, still fitted in the spool
        expect(gw.logs()).not.toContain("refusing appends")
        expect(gw.logs()).not.toContain("audit events lost")
        expect(gw.alive()).toBe(true)
      } finally {
        await gw.stop()
      }
    })

    it("onFull drop: statements and new sessions go on, and the gateway logs the alarm", async () => {
      const gw = await fullGateway("drop")
      try {
        const c = new pg.Client({ ...gw.connection(), query_timeout: 5_000 })
        c.on("error", () => {})
        await c.connect()
        for (let i = 0; i < 300; i++) await c.query(`SELECT ${i} AS n, repeat('x', 100) AS padding`)
        await c.end()
        const fresh = new pg.Client({ ...gw.connection(), query_timeout: 5_000 })
        await fresh.connect()
        expect((await fresh.query("SELECT 'still open' AS s")).rows).toEqual([{ s: "still open" }])
        await fresh.end()
        const alarm = logEntries(gw.logs(), "AUDIT EVENTS DROPPED")
        expect(alarm.length).toBeGreaterThan(0)
        console.log(`[durability] spool full (drop): 300 statements ran; alarm: ${alarm[0]!.split("\n")[0]}`)
        expect(gw.logs()).not.toContain("refusing appends")
        expect(spoolBytes(join(work, "full-drop-spool"))).toBeLessThanOrEqual(16 * 1024)
      } finally {
        await gw.stop()
      }
    })
  })

  describe("interoperability", () => {
    let python: string
    beforeAll(async () => {
      python = await fastavroPython()
    }, 300_000)

    const fastavro = async (args: ReadonlyArray<string>): Promise<any> => {
      const r = await exec(python, [FASTAVRO_SCRIPT, ...args])
      if (r.code !== 0) throw new Error(`fastavro_decode.py ${args[0]} failed (exit ${r.code}):\n${r.stderr}`)
      return JSON.parse(r.stdout)
    }

    it("the outage topic: fastavro decodes every message to the same event, kcat counts the same messages", async () => {
      expect(outageTopic).toBeDefined()
      const messages = await consumeTopic(brokers(), outageTopic!, 60_000)
      expect(messages.length).toBeGreaterThan(500)
      const file = join(work, "outage-messages.json")
      writeFileSync(file, JSON.stringify(messages.map((m) => m.value.toString("hex"))))
      const out = await fastavro(["single", join(SCHEMA_DIRECTORY, CURRENT_SCHEMA.file), file])
      console.log(`[durability] interop: fastavro ${out.fastavro} decoded ${out.events.length} Kafka messages; fingerprint ${out.fingerprint}`)
      expect(out.fingerprint).toBe(CURRENT_SCHEMA.fingerprintHex)
      expect(out.events).toEqual(messages.map((m) => avroView(decodeValue(m.value))))
      const keys = await kcat(brokers(), outageTopic!, "%k\\n")
      expect(keys).toEqual(messages.map((m) => m.key))
    })

    it("a gateway's Avro container files: fastavro reads the same events as Sluice's reader", async () => {
      const gw = await startGateway()
      try {
        const c = new pg.Client({ ...gw.connection(), query_timeout: 5_000 })
        await c.connect()
        await c.query("SELECT 1 AS one")
        await c.query("SELECT $1::text AS t", ["ünïcödé 😀"])
        await c.end()
        const dir = join(gw.dir, "audit-files")
        const events: ReadonlyArray<AuditEvent> = await pollUntil(
          () => Effect.runPromise(readContainerFiles(dir)),
          (es) => es.some((e) => e.payload._tag === "SessionEnd"),
          "the session's end in the audit files",
          30_000,
          200
        )
        const files = await Effect.runPromise(listContainerFiles(dir))
        const out = await fastavro(["container", ...files])
        expect(out.files.flatMap((f: { events: Array<unknown> }) => f.events)).toEqual(events.map(avroView))
        expect(summarize(events, { complete: true }).problems).toEqual([])
      } finally {
        await gw.stop()
      }
    })
  })
})

/** The application name of a session's SessionStart, if that is among the events. */
const summarizeApp = (events: ReadonlyArray<AuditEvent>, sessionId: string): string | null | undefined =>
  ofKind(events, "SessionStart").find((e) => e.sessionId === sessionId)?.payload.applicationName
