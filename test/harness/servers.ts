/**
 * Starts the servers the integration tests talk to: PostgreSQL first, then
 * Kafka, FerretDB (which needs PostgreSQL) and a schema registry in parallel.
 * Each can be replaced by a server you already run:
 *
 *   SLUICE_TEST_PG_URL     superuser URL, e.g. postgres://postgres:pw@127.0.0.1:5432/postgres
 *                          (the harness creates its roles and databases there)
 *   SLUICE_TEST_KAFKA      brokers, e.g. 127.0.0.1:9092
 *   SLUICE_TEST_MONGO_URL  e.g. mongodb://user:pw@127.0.0.1:27017/?authMechanism=PLAIN
 *   SLUICE_TEST_SCHEMA_REGISTRY  a Confluent-compatible registry API, e.g. http://127.0.0.1:8081
 */
import { startFerretDb, useExistingMongo, type MongoInfo, type MongoServer } from "./ferretdb.ts"
import { startKafka, waitForKafka, type KafkaInfo, type KafkaServer } from "./kafka.ts"
import { startPostgres, useExistingPostgres, type PgInfo } from "./postgres.ts"
import { provision } from "./provision.ts"
import { startRegistry, useExistingRegistry, type RegistryInfo, type RegistryServer } from "./registry.ts"

export type { MongoInfo } from "./ferretdb.ts"
export type { KafkaInfo } from "./kafka.ts"
export type { PgInfo, PgRole, PgSuperuser } from "./postgres.ts"
export type { RegistryInfo } from "./registry.ts"

/** What the tests get from `inject('servers')`: plain JSON. */
export interface ServersInfo {
  readonly pg: PgInfo
  readonly kafka: KafkaInfo
  readonly mongo: MongoInfo
  readonly registry: RegistryInfo
}

export interface Servers {
  readonly info: ServersInfo
  /** Stops what the harness started (FerretDB, Kafka and the registry, then PostgreSQL). */
  readonly stop: () => Promise<void>
}

type Stoppable = { readonly stop: () => Promise<void> }

const withoutStop = <T extends Stoppable>(server: T): Omit<T, "stop"> => {
  const { stop: _stop, ...info } = server
  return info
}

const useExistingKafka = async (brokers: string): Promise<KafkaServer> => {
  await waitForKafka(brokers, { timeoutMs: 15_000 })
  return { brokers, managed: false, stop: async () => {} }
}

/** Awaits all; if any fails, stops those that started, then rethrows. */
const settle = async <T extends readonly unknown[]>(
  promises: readonly [...T],
): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> => {
  const results = await Promise.allSettled(promises)
  const failures = results.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []))
  if (failures.length > 0) {
    const started = results.flatMap((r) => (r.status === "fulfilled" && isStoppable(r.value) ? [r.value.stop()] : []))
    await Promise.allSettled(started)
    throw failures.length === 1 ? failures[0] : new AggregateError(failures, failures.map(String).join("\n\n"))
  }
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as { -readonly [K in keyof T]: Awaited<T[K]> }
}

const isStoppable = (value: unknown): value is Stoppable =>
  typeof value === "object" && value !== null && typeof (value as Partial<Stoppable>).stop === "function"

export const startServers = async (env: NodeJS.ProcessEnv = process.env): Promise<Servers> => {
  const pgUrl = env.SLUICE_TEST_PG_URL
  const kafkaBrokers = env.SLUICE_TEST_KAFKA
  const mongoUrl = env.SLUICE_TEST_MONGO_URL
  const registryUrl = env.SLUICE_TEST_SCHEMA_REGISTRY

  const parts = [
    ...(kafkaBrokers ? [] : ["kafka" as const]),
    ...(mongoUrl ? [] : ["ferretdb" as const]),
    ...(registryUrl ? [] : ["registry" as const])
  ]
  // Provisioning and PostgreSQL overlap; both must succeed.
  const [artefacts, pgServer] = await settle([
    provision(parts),
    pgUrl ? useExistingPostgres(pgUrl) : startPostgres(),
  ])

  let kafka: KafkaServer
  let mongo: MongoServer
  let registry: RegistryServer
  try {
    ;[kafka, mongo, registry] = await settle([
      kafkaBrokers ? useExistingKafka(kafkaBrokers) : startKafka(artefacts.kafkaLibs ?? ""),
      mongoUrl
        ? useExistingMongo(mongoUrl)
        : startFerretDb(artefacts.ferretdbBin ?? "", {
            host: pgServer.host,
            port: pgServer.port,
            superuser: { connectionString: pgServer.superuser.url },
          }),
      registryUrl ? useExistingRegistry(registryUrl) : startRegistry(artefacts.registryJar ?? ""),
    ])
  } catch (err) {
    await pgServer.stop().catch(() => {})
    throw err
  }

  let stopped: Promise<void> | undefined
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      await Promise.allSettled([mongo.stop(), kafka.stop(), registry.stop()])
      await pgServer.stop()
    })())

  return {
    info: { pg: withoutStop(pgServer), kafka: withoutStop(kafka), mongo: withoutStop(mongo), registry: withoutStop(registry) },
    stop
  }
}
