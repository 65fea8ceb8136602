/**
 * The `sluice` command line: `start` runs the gateway, `check-config` validates a config
 * file and prints every problem with its path, `hash-token` prepares service-account tokens,
 * `replay` prints a session's audit timeline.
 */
import { Console, Effect, Layer, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { loadConfig } from "../config/load.ts"
import { layerIdentity } from "../rules/identity/layer.ts"
import { hashToken, newToken } from "../rules/identity/service-accounts.ts"
import { loadPolicy } from "../rules/policy/load.ts"
import { layerPolicyStore } from "../rules/policy/store.ts"
import { layerStatementClassifier } from "../rules/statement-classifier.ts"
import { layerAudit } from "../sinks/audit-layer.ts"
import { layerCancelRegistry } from "../streams/pg/cancel-registry.ts"
import { servePostgres } from "../streams/pg/gateway.ts"
import { replay } from "./replay.ts"

/** Known failures print their own message and exit 1: a person reads them, not a stack trace. */
const reportAndExit = <A, E extends { readonly message: string }, R>(program: Effect.Effect<A, E, R>) =>
  program.pipe(
    Effect.catch((e: E) =>
      Console.error(e.message).pipe(
        Effect.andThen(
          Effect.sync(() => {
            process.exitCode = 1
          })
        )
      )
    )
  )

const start = Command.make("start", { config: Flag.String("config").pipe(Flag.withAlias("c")) }, ({ config }) =>
  reportAndExit(
    Effect.gen(function* () {
      const cfg = yield* loadConfig(config)
      yield* servePostgres(cfg).pipe(
        Effect.provide(
          Layer.mergeAll(
            layerIdentity(cfg.identities),
            layerCancelRegistry,
            layerPolicyStore(cfg.policy.file),
            layerStatementClassifier(cfg.limits.classificationCacheSize),
            layerAudit(cfg.audit)
          )
        )
      )
    })
  )
).pipe(Command.withDescription("Run the gateway with the given config file"))

const checkPolicyFile = (file: string) =>
  loadPolicy(file).pipe(Effect.andThen((p) => Console.log(`${file}: OK (policy, ${p.rules.length} rules, ${p.masks.length} masks)`)))

const checkConfig = Command.make("check-config", { file: Argument.String("file") }, ({ file }) =>
  reportAndExit(
    loadConfig(file).pipe(
      Effect.tap(() => Console.log(`${file}: OK`)),
      Effect.andThen((cfg) => checkPolicyFile(cfg.policy.file))
    )
  )
).pipe(Command.withDescription("Validate a config file and the policy it names; print every problem with its path"))

const checkPolicy = Command.make("check-policy", { file: Argument.String("file") }, ({ file }) =>
  reportAndExit(checkPolicyFile(file))
).pipe(Command.withDescription("Validate a policy file; print every problem with its path"))

const hashTokenCommand = Command.make(
  "hash-token",
  { token: Argument.String("token").pipe(Argument.optional) },
  ({ token }) =>
    Option.match(token, {
      onNone: () => {
        const fresh = newToken()
        return Console.log(`token:     ${fresh}\ntokenHash: ${hashToken(fresh)}`)
      },
      onSome: (t) => Console.log(hashToken(t))
    })
).pipe(Command.withDescription("Print the tokenHash for a token, or make a new token and its hash"))

const sluice = Command.make("sluice").pipe(
  Command.withDescription("A data-path gateway for PostgreSQL: decode, classify, decide, encode"),
  Command.withSubcommands([start, checkConfig, checkPolicy, hashTokenCommand, replay])
)

export const main = Command.run(sluice, { version: "0.1.0" })
