/**
 * vitest globalSetup of the `integration` project: provisions (cached) and
 * starts PostgreSQL, Kafka, FerretDB and a schema registry once for the run, hands their
 * description to the tests, and stops them at the end.
 *
 *   import { inject } from "vitest"
 *   const { pg, kafka, mongo, registry } = inject("servers")
 */
import type { TestProject } from "vitest/node"
import { startServers, type ServersInfo } from "./servers.ts"

export type { ServersInfo } from "./servers.ts"

declare module "vitest" {
  export interface ProvidedContext {
    servers: ServersInfo
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now()
  const servers = await startServers()
  const { pg, kafka, mongo, registry } = servers.info
  console.log(
    `[harness] up in ${Date.now() - started} ms: postgres ${pg.host}:${pg.port} (${pg.managed ? "private" : "yours"}), ` +
      `kafka ${kafka.brokers} (${kafka.managed ? "private" : "yours"}), mongo ${mongo.url} (${mongo.managed ? "ferretdb" : "yours"}), ` +
      `schema registry ${registry.url} (${registry.managed ? "apicurio" : "yours"})`,
  )
  project.provide("servers", servers.info)
  return async () => {
    await servers.stop()
  }
}
