/** Resolves secret sources once, at start-up, so that a missing secret stops the gateway early. */
import { readFile } from "node:fs/promises"
import { Data, Effect, Redacted } from "effect"
import type { SecretSource } from "./schema.ts"

export class SecretUnavailable extends Data.TaggedError("SecretUnavailable")<{ readonly path: string; readonly detail: string }> {
  override get message(): string {
    return `${this.path}: ${this.detail}`
  }
}

export const resolveSecret = (source: SecretSource, path: string): Effect.Effect<Redacted.Redacted<string>, SecretUnavailable> => {
  if (source.value !== undefined) return Effect.succeed(Redacted.make(source.value))
  if (source.env !== undefined) {
    const value = process.env[source.env]
    return value === undefined || value === ""
      ? Effect.fail(new SecretUnavailable({ path, detail: `environment variable ${source.env} is not set` }))
      : Effect.succeed(Redacted.make(value))
  }
  const file = source.file!
  return Effect.tryPromise({
    try: () => readFile(file, "utf8"),
    catch: (e) => new SecretUnavailable({ path, detail: `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}` })
  }).pipe(Effect.map((text) => Redacted.make(text.replace(/\r?\n$/, ""))))
}
