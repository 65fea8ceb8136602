/**
 * Runs the real `sluice start` CLI as a child process against the harness servers, with
 * a config written for the test. Tests talk to it with real clients over TCP.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { inject } from "vitest"
import { stringify } from "yaml"
import { hashToken } from "../../../src/rules/identity/service-accounts.ts"
import { freePort } from "../../harness/free-port.ts"
import { launchGateway } from "./gateway-process.ts"

export const TOKEN = "test-token-ci-9f2c1a"
export const OTHER_TOKEN = "test-token-other-51b7"

/** Everything allowed, statements of unknown effect included: the foundation's pass-through. */
export const ALLOW_ALL_POLICY = {
  version: 1,
  defaults: { "*": { action: "allow" } },
  rules: [{ id: "allow-unknown", match: { classes: ["unknown"] }, action: "allow" }]
}

export interface Gateway {
  readonly port: number
  readonly dir: string
  readonly policyFile: string
  /** Replaces the policy file in place (the gateway reloads it). */
  readonly writePolicy: (policy: object | string) => void
  /** libpq-style connection options for a client presenting `token`. */
  readonly connection: (token?: string, database?: string) => { host: string; port: number; user: string; password: string; database: string }
  readonly url: (token?: string, database?: string) => string
  readonly logs: () => string
  readonly alive: () => boolean
  readonly stop: () => Promise<void>
}

export type TargetOverrides = Record<string, unknown>

/** The harness backend targets: `app` (scram role) and `md5` (md5 role on app2); overrides per test. */
export const defaultConfig = (port: number, extra: { targets?: Array<Record<string, unknown>>; listen?: Record<string, unknown>; limits?: Record<string, unknown> } = {}) => {
  const { pg } = inject("servers")
  return {
    listen: { host: "127.0.0.1", port, loopbackOnly: true, ...extra.listen },
    targets: [
      { name: "app", host: pg.host, port: pg.port, database: pg.databases.app, user: pg.backend.user, password: { value: pg.backend.password } },
      { name: "md5", host: pg.host, port: pg.port, database: pg.databases.app2, user: pg.md5.user, password: { value: pg.md5.password } },
      ...(extra.targets ?? [])
    ],
    identities: {
      serviceAccounts: [
        { name: "ci-job", tokenHash: hashToken(TOKEN), groups: ["ci"] },
        { name: "other", tokenHash: hashToken(OTHER_TOKEN), groups: [] }
      ]
    },
    ...(extra.limits ? { limits: extra.limits } : {})
  }
}

export const startGateway = async (
  build: (port: number) => object = (p) => defaultConfig(p),
  policy: object = ALLOW_ALL_POLICY
): Promise<Gateway> => {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), "sluice-gw-"))
  const configFile = join(dir, "sluice.yaml")
  const policyFile = join(dir, "policy.yaml")
  const writePolicy = (p: object | string) => {
    // Written beside, then renamed: the gateway never reads a half-written file.
    writeFileSync(`${policyFile}.tmp`, typeof p === "string" ? p : stringify(p))
    renameSync(`${policyFile}.tmp`, policyFile)
  }
  writePolicy(policy)
  const audit = { spool: { directory: join(dir, "audit-spool") }, files: { directory: join(dir, "audit-files") } }
  writeFileSync(configFile, stringify({ policy: { file: policyFile }, audit, ...build(port) }))
  const gateway = await launchGateway(configFile).catch((e: unknown) => {
    rmSync(dir, { recursive: true, force: true })
    throw e
  })
  const connection = (token = TOKEN, database = "app") => ({ host: "127.0.0.1", port, user: "ci", password: token, database })
  return {
    port,
    dir,
    policyFile,
    writePolicy,
    connection,
    url: (token = TOKEN, database = "app") => `postgresql://ci:${encodeURIComponent(token)}@127.0.0.1:${port}/${database}?sslmode=disable`,
    logs: gateway.logs,
    alive: gateway.alive,
    stop: async () => {
      await gateway.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
