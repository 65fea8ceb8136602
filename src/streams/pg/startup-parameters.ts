/**
 * The settings a client's startup packet asks for, and which of them its server session
 * gets. PostgreSQL takes every startup parameter but `user`, `database`, `replication` and
 * `options` as a setting for the session, and `options` as server switches (`-c name=value`,
 * `--name=value`: libpq's PGOPTIONS). Sluice passes on the settings that cannot change how it
 * must read statements or what a policy decided (the list below), and refuses a session
 * that asks for any other: dropping it quietly would leave the client believing it in force
 * (a `statement_timeout` in PGOPTIONS, dropped, is a query the client thinks bounded).
 */
import { Result } from "effect"

/**
 * Settings a session may start with, by their lower-case names (PostgreSQL's setting names
 * are case-insensitive). Not `standard_conforming_strings` (it changes how literals read),
 * not `role` or `session_authorization`: SET, which the policy sees, is the way to those.
 */
const PASSED = new Set(
  [
    "application_name",
    "client_encoding",
    "DateStyle",
    "TimeZone",
    "IntervalStyle",
    "extra_float_digits",
    "search_path",
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout"
  ].map((name) => name.toLowerCase())
)

/** Startup parameters that are not settings; `replication` is refused before this (startup.ts). */
const NOT_SETTINGS = new Set(["user", "database", "replication", "options"])

export type Setting = readonly [name: string, value: string]

/** Why a session's startup parameters are refused; `parameter` is the one at fault. */
export interface Refusal {
  readonly parameter: string
  readonly reason: string
}

/** `options` cut into words as PostgreSQL cuts it: at whitespace, a backslash escaping the next character. */
export const splitOptions = (options: string): Array<string> => {
  const words: Array<string> = []
  let i = 0
  while (i < options.length) {
    while (i < options.length && isSpace(options[i]!)) i++
    if (i === options.length) break
    let word = ""
    while (i < options.length && !isSpace(options[i]!)) {
      if (options[i] === "\\" && i + 1 < options.length) i++
      word += options[i++]
    }
    words.push(word)
  }
  return words
}

// C's isspace in the "C" locale
const isSpace = (c: string): boolean => c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f" || c === "\v"

/** `name=value` of a `-c` or `--` switch; as PostgreSQL does, dashes in the name become underscores. */
const settingOf = (word: string): Setting | undefined => {
  const eq = word.indexOf("=")
  return eq <= 0 ? undefined : [word.slice(0, eq).replaceAll("-", "_"), word.slice(eq + 1)]
}

const fromOptions = (options: string): Result.Result<Array<Setting>, Refusal> => {
  const words = splitOptions(options)
  const settings: Array<Setting> = []
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!
    const switched = word === "-c" ? words[++i] : word.startsWith("-c") ? word.slice(2) : word.startsWith("--") ? word.slice(2) : undefined
    const setting = switched === undefined ? undefined : settingOf(switched)
    if (setting === undefined) {
      return Result.fail({ parameter: "options", reason: `"${word}" is not a setting (-c name=value or --name=value); other server switches are not passed on` })
    }
    settings.push(setting)
  }
  return Result.succeed(settings)
}

/**
 * The settings to start the server session with, in the order PostgreSQL applies them
 * (`options` first, then the other parameters, so that these win), or the refusal of the
 * first one Sluice does not pass on. `_pq_.` parameters are protocol options, negotiated at
 * startup (startup.ts), not settings.
 */
export const sessionSettings = (parameters: ReadonlyMap<string, string>): Result.Result<Array<Setting>, Refusal> => {
  const options = parameters.get("options")
  const fromSwitches = options === undefined ? Result.succeed<Array<Setting>>([]) : fromOptions(options)
  if (Result.isFailure(fromSwitches)) return fromSwitches
  const settings = fromSwitches.success // a fresh array either way
  for (const [name, value] of parameters) {
    if (!NOT_SETTINGS.has(name) && !name.startsWith("_pq_.")) settings.push([name, value])
  }
  for (const [name] of settings) {
    if (!PASSED.has(name.toLowerCase())) {
      return Result.fail({
        parameter: name,
        reason: `the setting "${name}" cannot be given at startup through Sluice; the ones that can: ${[...PASSED].join(", ")}`
      })
    }
  }
  return Result.succeed(settings)
}
