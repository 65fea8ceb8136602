/** Reads the gateway's config file into a typed `Config`, or into every problem found. */
import { isIP } from "node:net"
import type { Effect, Result } from "effect"
import { Config } from "./schema.ts"
import { decodeYaml, type InvalidFile, loadYaml, type Problem, type YamlSchema } from "./yaml.ts"

export const isLoopback = (host: string): boolean =>
  host === "localhost" || host === "::1" || (isIP(host) === 4 && host.startsWith("127."))

/** Checks the schema cannot express: they relate several fields. */
const crossChecks = (config: Config): Array<Problem> => {
  const problems: Array<Problem> = []
  const seen = new Set<string>()
  config.targets.forEach((t, i) => {
    if (seen.has(t.name)) problems.push({ path: `targets.${i}.name`, message: `duplicate target name "${t.name}"` })
    seen.add(t.name)
  })
  const { host, loopbackOnly, tls } = config.listen
  if (loopbackOnly && !isLoopback(host)) {
    problems.push({ path: "listen.host", message: `loopbackOnly requires a loopback address, not "${host}"` })
  }
  if (!loopbackOnly && tls === undefined) {
    problems.push({
      path: "listen",
      message: "clients send their token as a cleartext password: configure listen.tls, or set loopbackOnly: true on a loopback address"
    })
  }
  config.targets.forEach((t, i) => {
    if (t.tls.mode !== "verify-full" && (t.tls.caFile !== undefined || t.tls.serverName !== undefined)) {
      problems.push({ path: `targets.${i}.tls`, message: "caFile and serverName only apply to mode verify-full" })
    }
  })
  return problems
}

const spec: YamlSchema<Config> = { schema: Config, kind: "configuration", crossChecks }

export const parseConfig = (file: string, text: string): Result.Result<Config, InvalidFile> => decodeYaml(spec, file, text)

export const loadConfig = (file: string): Effect.Effect<Config, InvalidFile> => loadYaml(spec, file)
