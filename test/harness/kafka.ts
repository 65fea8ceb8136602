/**
 * A single-node Kafka 3.9.x in KRaft combined mode (broker + controller),
 * from the jars scripts/provision.sh resolved, in a temp dir, on 127.0.0.1.
 */
import { randomBytes } from "node:crypto"
import { existsSync, mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Kafka, logLevel } from "kafkajs"
import { freePorts } from "./free-port.ts"
import { makeTempDir, removeTempDir, run, spawnTracked, untilReady } from "./process.ts"

export interface KafkaInfo {
  /** Comma-separated host:port list, e.g. "127.0.0.1:40123". */
  readonly brokers: string
  /** True when the harness started this broker. */
  readonly managed: boolean
}

export interface KafkaServer extends KafkaInfo {
  readonly stop: () => Promise<void>
}

export const findJava = (): string => {
  const home = process.env.JAVA_HOME
  if (home && existsSync(join(home, "bin", "java"))) return join(home, "bin", "java")
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir && existsSync(join(dir, "java"))) return join(dir, "java")
  }
  throw new Error("java not found: install Debian package openjdk-17-jre-headless")
}

/** A Kafka cluster id: 16 random bytes, base64url; Kafka avoids a leading '-'. */
const clusterId = (): string => {
  for (;;) {
    const id = randomBytes(16).toString("base64url")
    if (!id.startsWith("-")) return id
  }
}

const LOG4J = `log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
`

/** Asks the broker for its cluster metadata until it answers. */
export const waitForKafka = async (
  brokers: string,
  opts: { timeoutMs: number; failed?: () => Error | undefined },
): Promise<void> => {
  const kafka = new Kafka({
    clientId: "sluice-harness-ready",
    brokers: brokers.split(","),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    retry: { retries: 0 },
  })
  const deadline = Date.now() + opts.timeoutMs
  let lastError: unknown
  for (;;) {
    const failure = opts.failed?.()
    if (failure) throw failure
    const admin = kafka.admin()
    try {
      await admin.connect()
      const cluster = await admin.describeCluster()
      if (cluster.brokers.length > 0 && cluster.controller !== null) return
    } catch (err) {
      lastError = err
    } finally {
      await admin.disconnect().catch(() => {})
    }
    if (Date.now() > deadline) {
      throw new Error(`kafka at ${brokers} was not ready within ${opts.timeoutMs} ms: ${String(lastError)}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

/**
 * Makes the broker create its group and transaction coordinators
 * (__consumer_offsets, __transaction_state) now, so that the first consumer
 * group or idempotent producer of a test does not meet "coordinator is
 * loading" retries.
 */
const warmUpCoordinators = async (brokers: string): Promise<void> => {
  const kafka = new Kafka({ clientId: "sluice-harness-warmup", brokers: brokers.split(","), logLevel: logLevel.NOTHING })
  const topic = "sluice-harness-warmup"
  const admin = kafka.admin()
  await admin.connect()
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true })
    await admin.describeGroups([topic])
  } finally {
    await admin.disconnect()
  }
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
  await producer.connect()
  try {
    await producer.send({ topic, acks: -1, messages: [{ value: "warm-up" }] })
  } finally {
    await producer.disconnect()
  }
  const consumer = kafka.consumer({ groupId: topic })
  await consumer.connect()
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("kafka warm-up: the consumer got nothing within 60 s")), 60_000)
      consumer
        .run({
          eachMessage: async () => {
            clearTimeout(timer)
            resolve()
          },
        })
        .catch(reject)
    })
  } finally {
    await consumer.disconnect()
  }
}

export interface StartKafkaOptions {
  /**
   * The broker's directory (config, log, data), kept by `stop()`: starting again with the
   * same directory and ports brings the same broker back at the same address, its topics
   * and offsets intact (it is formatted only the first time). The caller removes it.
   */
  readonly dir?: string
  /** Fixed ports; both or neither. Default: two free ports. */
  readonly ports?: { readonly broker: number; readonly controller: number }
}

export const startKafka = async (libsDir: string, options: StartKafkaOptions = {}): Promise<KafkaServer> => {
  if (!existsSync(libsDir)) throw new Error(`kafka jars not found in ${libsDir}: run scripts/provision.sh kafka`)
  const java = findJava()
  const classpath = join(libsDir, "*")
  const ownDir = options.dir === undefined
  const dir = options.dir ?? makeTempDir("sluice-kafka-")
  const removeDir = (d: string) => {
    if (ownDir) removeTempDir(d)
  }
  const logFile = join(dir, "kafka.log")
  const properties = join(dir, "server.properties")
  const log4j = join(dir, "log4j.properties")
  // A broker started again on its own data: already formatted, coordinators already exist.
  const restart = !ownDir && existsSync(join(dir, "data", "meta.properties"))
  try {
    mkdirSync(dir, { recursive: true })
    const [brokerPort, controllerPort] = options.ports === undefined ? await freePorts(2) : [options.ports.broker, options.ports.controller]
    writeFileSync(log4j, LOG4J)
    writeFileSync(
      properties,
      [
        "node.id=1",
        "process.roles=broker,controller",
        `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
        `listeners=PLAINTEXT://127.0.0.1:${brokerPort},CONTROLLER://127.0.0.1:${controllerPort}`,
        `advertised.listeners=PLAINTEXT://127.0.0.1:${brokerPort}`,
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        `log.dirs=${join(dir, "data")}`,
        "num.partitions=1",
        "default.replication.factor=1",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "transaction.state.log.num.partitions=1",
        "min.insync.replicas=1",
        "auto.create.topics.enable=true",
        // consumers in tests join at once instead of after 3 s
        "group.initial.rebalance.delay.ms=0",
        "",
      ].join("\n"),
    )
    const jvm = ["-Xmx512m", "-Xms512m", "-Djava.awt.headless=true", `-Dlog4j.configuration=file:${log4j}`]

    if (!restart) await run(
      "kafka storage format",
      java,
      [...jvm.slice(2), "-cp", classpath, "kafka.tools.StorageTool", "format", "-t", clusterId(), "-c", properties, "-g"],
      { cwd: dir, timeoutMs: 120_000 },
    )

    const server = await spawnTracked({
      name: "kafka",
      command: java,
      args: [...jvm, "-cp", classpath, "kafka.Kafka", properties],
      logFile,
      cwd: dir,
    })
    const brokers = `127.0.0.1:${brokerPort}`
    const stop = async (): Promise<void> => {
      await server.stop({ graceMs: 10_000 })
      removeDir(dir)
    }
    await untilReady(server, "kafka", stop, async (failed) => {
      await waitForKafka(brokers, { timeoutMs: 120_000, failed })
      if (!restart) await warmUpCoordinators(brokers)
    })
    return { brokers, managed: true, stop }
  } catch (err) {
    removeDir(dir)
    throw err
  }
}
