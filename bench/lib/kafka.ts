/**
 * The Kafka broker the `full-kafka` variant ships its audit events to: the test harness's
 * single-node KRaft broker (Kafka 3.9 from the jars scripts/provision.sh resolves), or the
 * broker named in SLUICE_TEST_KAFKA, as for the integration tests (test/harness/servers.ts).
 * Each run writes to a topic of its own, so counting the topic's messages counts this
 * run's events, on a shared broker too.
 */
import { randomBytes } from "node:crypto"
import { Kafka, logLevel } from "kafkajs"
import { useQuietRequestQueue } from "../../src/sinks/kafka-request-queue.ts"
import { startKafka, waitForKafka, type KafkaServer } from "../../test/harness/kafka.ts"
import { provision } from "../../test/harness/provision.ts"
import type { AuditKafka } from "./sluice-config.ts"

export interface AuditBroker extends AuditKafka {
  /** True when the bench started this broker (false: SLUICE_TEST_KAFKA's). */
  readonly managed: boolean
  /** Messages on the topic now. */
  readonly messages: () => Promise<number>
  /** Removes the topic from a broker that is not the bench's, and stops the bench's. */
  readonly stop: () => Promise<void>
}

const brokerServer = async (external: string | undefined): Promise<KafkaServer> => {
  if (external) {
    await waitForKafka(external, { timeoutMs: 15_000 })
    return { brokers: external, managed: false, stop: async () => {} }
  }
  const { kafkaLibs } = await provision(["kafka"])
  return startKafka(kafkaLibs ?? "")
}

export const startAuditBroker = async (env: NodeJS.ProcessEnv = process.env): Promise<AuditBroker> => {
  // the admin client below stays connected for the whole run, in the load generators'
  // process: without this its request queue would wake every millisecond (kafkajs #1751)
  useQuietRequestQueue()
  const server = await brokerServer(env.SLUICE_TEST_KAFKA)
  const topic = `sluice-bench-audit-${randomBytes(4).toString("hex")}`
  const kafka = new Kafka({ clientId: "sluice-bench", brokers: server.brokers.split(","), logLevel: logLevel.NOTHING, connectionTimeout: 3_000 })
  const admin = kafka.admin()
  try {
    await admin.connect()
    // made here rather than by the gateway's producer: a broker may not create topics on demand
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })
  } catch (err) {
    await admin.disconnect().catch(() => {})
    await server.stop().catch(() => {})
    throw new Error(`kafka at ${server.brokers}: creating the audit topic ${topic} failed: ${err instanceof Error ? err.message : String(err)}`)
  }
  return {
    brokers: server.brokers,
    topic,
    managed: server.managed,
    messages: async () => (await admin.fetchTopicOffsets(topic)).reduce((n, p) => n + Number(p.high) - Number(p.low), 0),
    stop: async () => {
      if (!server.managed) await admin.deleteTopics({ topics: [topic] }).catch(() => {})
      await admin.disconnect().catch(() => {})
      await server.stop()
    }
  }
}

/**
 * Waits until the topic holds at least `minimum` messages and has stopped growing for
 * `quietMs` (the gateway ships from its spool after the statements, so a sink that falls
 * behind shows here as catch-up time), or until `timeoutMs`.
 */
export const awaitDelivery = async (
  broker: AuditBroker,
  opts: { minimum: number; quietMs: number; timeoutMs: number }
): Promise<{ messages: number; catchUpSeconds: number; complete: boolean }> => {
  const start = performance.now()
  let messages = await broker.messages()
  let lastGrowth = start
  for (;;) {
    const now = performance.now()
    if (messages >= opts.minimum && now - lastGrowth >= opts.quietMs) return { messages, catchUpSeconds: (lastGrowth - start) / 1000, complete: true }
    if (now - start >= opts.timeoutMs) return { messages, catchUpSeconds: (now - start) / 1000, complete: false }
    await new Promise((r) => setTimeout(r, 250))
    const next = await broker.messages()
    if (next !== messages) lastGrowth = performance.now()
    messages = next
  }
}
