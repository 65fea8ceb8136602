/** Reads a config file into a typed `Config`, or into every problem found, each with its path. */
import { readFile } from "node:fs/promises"
import { isIP } from "node:net"
import { Data, Effect, Result, Schema, SchemaIssue } from "effect"
import { parseDocument } from "yaml"
import { Config } from "./schema.ts"

export interface ConfigProblem {
  /** Dotted path into the document, e.g. `targets.0.port`; empty for the whole file. */
  readonly path: string
  readonly message: string
}

export class ConfigError extends Data.TaggedError("ConfigError")<{
  readonly file: string
  readonly problems: ReadonlyArray<ConfigProblem>
}> {
  override get message(): string {
    return [`${this.file}: invalid configuration`, ...this.problems.map((p) => `  ${p.path || "(root)"}: ${p.message}`)].join("\n")
  }
}

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()
const decode = Schema.decodeUnknownResult(Config, { errors: "all", onExcessProperty: "error" })

const pathOf = (path: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined): string =>
  (path ?? []).map((p) => String(typeof p === "object" ? p.key : p)).join(".")

/** Checks the schema cannot express: they relate several fields. */
const crossChecks = (config: Config): Array<ConfigProblem> => {
  const problems: Array<ConfigProblem> = []
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

export const isLoopback = (host: string): boolean =>
  host === "localhost" || host === "::1" || (isIP(host) === 4 && host.startsWith("127."))

/** Pure: the text of a config file to a Config, or every problem in it. */
export const parseConfig = (file: string, text: string): Result.Result<Config, ConfigError> => {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true })
  if (doc.errors.length > 0) {
    return Result.fail(
      new ConfigError({
        file,
        problems: doc.errors.map((e) => ({
          path: "",
          message: `YAML ${e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : "syntax"}: ${e.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "")}`
        }))
      })
    )
  }
  const decoded = decode(doc.toJS())
  if (Result.isFailure(decoded)) {
    const { issues } = formatter(decoded.failure.issue)
    return Result.fail(new ConfigError({ file, problems: issues.map((i) => ({ path: pathOf(i.path), message: i.message })) }))
  }
  const problems = crossChecks(decoded.success)
  return problems.length > 0 ? Result.fail(new ConfigError({ file, problems })) : Result.succeed(decoded.success)
}

export const loadConfig = (file: string): Effect.Effect<Config, ConfigError> =>
  Effect.tryPromise({
    try: () => readFile(file, "utf8"),
    catch: (e) => new ConfigError({ file, problems: [{ path: "", message: `cannot read file: ${(e as NodeJS.ErrnoException).code ?? String(e)}` }] })
  }).pipe(Effect.flatMap((text) => Effect.fromResult(parseConfig(file, text))))
