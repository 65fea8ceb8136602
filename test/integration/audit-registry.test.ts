/**
 * The audit trail to Kafka with a schema registry (issue 4: "use the Confluent wire format,
 * registering the schema and caching its id"), against a real registry: the harness's
 * Apicurio Registry, through its Confluent-compatible API. Every message is `00` + the id
 * the registry gave + the body; the registry holds exactly the schema Sluice writes, under
 * `<topic>-value`, once, even after a second gateway registered it again; fastavro decodes
 * every body with the schema it fetches from the registry by id, as a SIEM's consumer would; `sluice replay` reads the topic back
 * through the registry. The registry's own compatibility check (Java Avro's, not avsc's)
 * takes every schema version in order under BACKWARD. And a registry outage (one not started yet) holds delivery back,
 * not the sessions: the events wait in the spool and arrive once it is up.
 */
import { randomUUID } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { Kafka, logLevel } from "kafkajs"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { CURRENT_SCHEMA, decodeConfluent, SCHEMA_VERSIONS } from "../../src/sinks/avro.ts"
import { parsingCanonicalForm } from "../../src/sinks/avro-spec.ts"
import type { AuditEvent } from "../../src/sinks/events.ts"
import { makeRegistryClient } from "../../src/sinks/registry.ts"
import { fromSpoolRecord } from "../../src/sinks/spool-record.ts"
import { freePort } from "../harness/free-port.ts"
import { provision } from "../harness/provision.ts"
import { startRegistry } from "../harness/registry.ts"
import { avroView, consumeTopic, kinds, pollUntil, spoolRecords, type TopicMessage } from "./support/audit-trail.ts"
import { exec, FASTAVRO_SCRIPT, fastavroPython } from "./support/fastavro.ts"
import { defaultConfig, type Gateway, startGateway } from "./support/gateway.ts"
import { logEntries, runCommand } from "./support/policy-clients.ts"

const BIN = new URL("../../bin/sluice.js", import.meta.url).pathname
const POLICY = {
  version: 1,
  defaults: { "*": { action: "allow" } },
  rules: [{ id: "no-ddl", match: { classes: ["ddl"] }, action: "block", message: "no DDL here" }]
}

const REGISTRY_JSON = { "content-type": "application/vnd.schemaregistry.v1+json" }

const getJson = async (url: string): Promise<unknown> => {
  const res = await fetch(url)
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status} ${await res.text()}`)
  return res.json()
}

describe("audit trail to Kafka with a schema registry", () => {
  const { kafka, registry } = inject("servers")
  const topic = `sluice-audit-registry-${randomUUID().slice(0, 8)}`
  const subject = `${topic}-value`
  const work = mkdtempSync(join(tmpdir(), "sluice-audit-registry-"))
  const gateways: Array<Gateway> = []
  let messages: Array<TopicMessage>
  let sessions: Array<string>

  const createTopic = async (name: string) => {
    const admin = new Kafka({ clientId: "sluice-test-admin", brokers: kafka.brokers.split(","), logLevel: logLevel.NOTHING }).admin()
    await admin.connect()
    await admin.createTopics({ topics: [{ topic: name, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true })
    await admin.disconnect()
  }

  /** A gateway writing to `to` through the registry at `registryUrl`, its spool in `spool`. */
  const gateway = async (to: string, registryUrl: string, spool: string): Promise<Gateway> => {
    const gw = await startGateway(
      (port) => ({
        ...defaultConfig(port),
        audit: {
          spool: { directory: spool },
          kafka: { brokers: kafka.brokers.split(","), topic: to, clientId: "sluice-registry-test", schemaRegistryUrl: registryUrl }
        }
      }),
      POLICY
    )
    gateways.push(gw)
    return gw
  }

  /** One session: two reads, a blocked statement, another read. */
  const session = async (gw: Gateway, name: string): Promise<void> => {
    const c = new pg.Client({ ...gw.connection(), application_name: `registry-${name}`, query_timeout: 5_000 })
    c.on("error", () => {})
    await c.connect()
    await c.query("SELECT 1 AS one")
    await c.query("SELECT $1::text AS two", ["two"])
    await expect(c.query("CREATE TABLE sluice_registry_blocked (id int)")).rejects.toThrow("no DDL here")
    const { rows } = await c.query<{ id: string }>("SELECT pg_backend_pid()::text AS id")
    expect(rows).toHaveLength(1)
    await c.end()
  }

  const sessionEnds = (ms: ReadonlyArray<TopicMessage>) => ms.filter((m) => m.headers["sluice-event-kind"] === "SessionEnd").length

  beforeAll(async () => {
    await createTopic(topic)
    // the second gateway starts after the first registered: it must get the same id back
    await session(await gateway(topic, registry.url, join(work, "spool-first")), "first")
    await session(await gateway(topic, registry.url, join(work, "spool-second")), "second")
    messages = await pollUntil(
      () => consumeTopic(kafka.brokers, topic),
      (ms) => sessionEnds(ms) === 2,
      `both sessions' SessionEnd on ${topic}`,
      60_000,
      500
    )
    sessions = [...new Set(messages.map((m) => m.key ?? "(no key)"))]
  }, 120_000)

  afterAll(async () => {
    for (const gw of gateways) await gw.stop()
    rmSync(work, { recursive: true, force: true })
  })

  it("registers the schema Sluice writes under <topic>-value, once", async () => {
    expect(await getJson(`${registry.url}/subjects`)).toContain(subject)
    expect(await getJson(`${registry.url}/subjects/${subject}/versions`)).toEqual([1])
    const latest = (await getJson(`${registry.url}/subjects/${subject}/versions/latest`)) as { id: number; schema: string }
    expect(parsingCanonicalForm(JSON.parse(latest.schema))).toBe(CURRENT_SCHEMA.canonical)
  })

  it("frames every message as 00 + the registry's id + the body, which fastavro decodes with the registry's copy of the schema", async () => {
    const latest = (await getJson(`${registry.url}/subjects/${subject}/versions/latest`)) as { id: number }
    expect(sessions).toHaveLength(2)
    const decoded: Array<AuditEvent> = messages.map((m) => {
      const r = decodeConfluent(m.value, (id) => (id === latest.id ? CURRENT_SCHEMA : undefined))
      if (r._tag === "Failure") throw new Error(r.failure.reason)
      return r.success
    })
    const file = join(work, "confluent-messages.json")
    writeFileSync(file, JSON.stringify(messages.map((m) => m.value.toString("hex"))))
    const r = await exec(await fastavroPython(), [FASTAVRO_SCRIPT, "confluent", registry.url, file])
    expect(r.stderr).toBe("")
    const read = JSON.parse(r.stdout) as { schemaIds: Array<number>; events: Array<unknown> }
    expect(read.schemaIds).toEqual([latest.id])
    expect(read.events).toEqual(decoded.map(avroView))
    messages.forEach((m, i) => {
      expect(m.key).toBe(decoded[i]!.sessionId)
      expect(m.headers["sluice-event-kind"]).toBe(decoded[i]!.payload._tag)
      expect(m.headers["sluice-schema-fingerprint"]).toBe(CURRENT_SCHEMA.fingerprint.toString("hex"))
    })
    for (const s of sessions) {
      const mine = decoded.filter((e) => e.sessionId === s)
      expect(mine.map((e) => e.sequence)).toEqual(mine.map((_, i) => i))
      expect(kinds(mine)).toEqual(expect.arrayContaining(["SessionStart", "Statement", "Decision", "Result", "SessionEnd"]))
      expect(mine.filter((e) => e.payload._tag === "Decision" && e.payload.verdict === "block")).toHaveLength(1)
    }
  }, 300_000)

  it("sluice replay reads the session back from the topic through the registry", async () => {
    const session = sessions[0]!
    const r = await runCommand(process.execPath, [BIN, "replay", session, "--config", join(gateways[0]!.dir, "sluice.yaml")], { timeoutMs: 60_000 })
    expect(r.stderr).toBe("")
    expect(r.code).toBe(0)
    const count = messages.filter((m) => m.key === session).length
    expect(r.stdout.split("\n")[0]).toBe(`session ${session}: ${count} events from Kafka topic ${topic} on ${kafka.brokers}`)
    expect(r.stdout).toMatch(/decision \d+ {2}BLOCK by rule no-ddl: no DDL here/)
  })

  it("the registry's compatibility check (BACKWARD) takes every schema version in order, and refuses a breaking one", async () => {
    const compat = `sluice-compat-${randomUUID().slice(0, 8)}-value`
    const configured = await fetch(`${registry.url}/config/${compat}`, { method: "PUT", headers: REGISTRY_JSON, body: JSON.stringify({ compatibility: "BACKWARD" }) })
    expect(configured.status).toBe(200)
    const client = makeRegistryClient({ url: registry.url })
    const ids: Array<number> = []
    for (const version of SCHEMA_VERSIONS) ids.push(await Effect.runPromise(client.register(compat, version)))
    expect(new Set(ids).size).toBe(SCHEMA_VERSIONS.length)
    expect(await getJson(`${registry.url}/subjects/${compat}/versions`)).toEqual(SCHEMA_VERSIONS.map((_, i) => i + 1))
    // the check is on: a field without a default cannot be read from older events
    const breaking = JSON.parse(CURRENT_SCHEMA.json) as { fields: Array<unknown> }
    breaking.fields.push({ name: "mustHave", type: "string" })
    const refused = await fetch(`${registry.url}/subjects/${compat}/versions`, { method: "POST", headers: REGISTRY_JSON, body: JSON.stringify({ schema: JSON.stringify(breaking) }) })
    expect(refused.status).toBe(409)
  })

  it("a registry that is down holds delivery back, not the sessions: the events wait in the spool until it is up", async () => {
    const outageTopic = `${topic}-outage`
    await createTopic(outageTopic)
    const port = await freePort()
    const spool = join(work, "spool-outage")
    const gw = await gateway(outageTopic, `http://127.0.0.1:${port}/apis/ccompat/v7`, spool)
    await session(gw, "outage")
    await pollUntil(async () => logEntries(gw.logs(), "audit delivery failed; will retry"), (w) => w.length > 0, "a failed delivery", 20_000)
    // the registry's own error, not Kafka's
    const warned = logEntries(gw.logs(), "audit delivery failed; will retry").join("\n")
    expect(warned).toContain(`schema registry http://127.0.0.1:${port}/apis/ccompat/v7/subjects/${outageTopic}-value/versions unavailable`)
    expect(warned).not.toContain("Kafka is unavailable")
    expect(await consumeTopic(kafka.brokers, outageTopic)).toEqual([])
    const records = await pollUntil(
      async () => spoolRecords(spool).map((r) => fromSpoolRecord(r).kind.toString("utf8")),
      (kinds) => kinds.includes("SessionEnd"),
      "the whole session in the spool",
      10_000
    )
    const spooled = records.length
    expect(spooled).toBeGreaterThanOrEqual(10) // start, 4 × (statement, decision), results, end

    const { registryJar } = await provision(["registry"])
    const late = await startRegistry(registryJar!, { port })
    try {
      const arrived = await pollUntil(() => consumeTopic(kafka.brokers, outageTopic), (ms) => sessionEnds(ms) === 1, `the session on ${outageTopic}`, 60_000, 500)
      expect(arrived).toHaveLength(spooled)
      const { id } = (await getJson(`${late.url}/subjects/${outageTopic}-value/versions/latest`)) as { id: number }
      expect(new Set(arrived.map((m) => `${m.value[0]}:${m.value.readUInt32BE(1)}`))).toEqual(new Set([`0:${id}`]))
    } finally {
      await late.stop()
    }
  }, 180_000)
})
