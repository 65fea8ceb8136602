import { Effect, Schema } from "effect"

/** A struct key that may be omitted, decoding to `value` when it is. */
export const defaultTo = <S extends Schema.Constraint>(value: S["Encoded"]) => Schema.withDecodingDefaultKey<S>(Effect.succeed(value))
