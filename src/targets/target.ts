/** A configured target with its secret resolved, ready for backend logins. */
import { readFile } from "node:fs/promises"
import { Effect, type Redacted } from "effect"
import type { Target } from "../config/schema.ts"
import { resolveSecret, SecretUnavailable } from "../config/secrets.ts"

export interface ResolvedTarget {
  readonly config: Target
  readonly password: Redacted.Redacted<string>
  readonly ca: Uint8Array | undefined
  /** SCRAM's PBKDF2 result per salt and iteration count: PgBouncer's trick against connection storms. */
  readonly saltedPasswords: Map<string, Buffer>
}

export const resolveTarget = (config: Target, index: number): Effect.Effect<ResolvedTarget, SecretUnavailable> =>
  Effect.gen(function* () {
    const password = yield* resolveSecret(config.password, `targets.${index}.password`)
    const caFile = config.tls.caFile
    const ca =
      caFile === undefined
        ? undefined
        : yield* Effect.tryPromise({
            try: () => readFile(caFile),
            catch: (e) =>
              new SecretUnavailable({ path: `targets.${index}.tls.caFile`, detail: `cannot read ${caFile}: ${(e as NodeJS.ErrnoException).code ?? String(e)}` })
          })
    return { config, password, ca, saltedPasswords: new Map() }
  })
