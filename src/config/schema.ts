/**
 * The gateway's configuration file, as an `effect/Schema` definition.
 * The README documents this same shape; keep them in step.
 */
import { Schema } from "effect"
import { OidcConfig } from "../rules/identity/oidc-config.ts"
import { defaultTo } from "./defaults.ts"

const Port = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 }))
const PositiveInt = Schema.Int.check(Schema.isGreaterThan(0))

/**
 * Where a secret comes from: exactly one of an environment variable, a file (trailing
 * newline trimmed) or an inline value. Inline values are for demos; prefer env or file.
 * A struct with a check rather than a union, so that a mistake gets one clear message.
 */
export const SecretSource = Schema.Struct({
  env: Schema.optionalKey(Schema.NonEmptyString),
  file: Schema.optionalKey(Schema.NonEmptyString),
  value: Schema.optionalKey(Schema.NonEmptyString)
}).check(
  Schema.makeFilter((s) =>
    [s.env, s.file, s.value].filter((v) => v !== undefined).length === 1
      ? undefined
      : "expected exactly one of env, file or value"
  )
)
export type SecretSource = typeof SecretSource.Type

export const ListenerTls = Schema.Struct({
  certFile: Schema.NonEmptyString,
  keyFile: Schema.NonEmptyString
})

export const Listener = Schema.Struct({
  host: Schema.NonEmptyString.pipe(defaultTo("127.0.0.1")),
  port: Port.pipe(defaultTo(6432)),
  /**
   * Clients send their token as a cleartext password. Without TLS that is allowed only
   * when this is true, and then the listener must be bound to a loopback address.
   */
  loopbackOnly: Schema.Boolean.pipe(defaultTo(false)),
  tls: Schema.optionalKey(ListenerTls)
})
export type Listener = typeof Listener.Type

export const BackendTls = Schema.Struct({
  mode: Schema.Literals(["disable", "require", "verify-full"]),
  /** Trust anchors for verify-full; the system store when absent. */
  caFile: Schema.optionalKey(Schema.NonEmptyString),
  /** The name to verify, when it differs from `host`. */
  serverName: Schema.optionalKey(Schema.NonEmptyString)
})
export type BackendTls = typeof BackendTls.Type

const TargetName = Schema.NonEmptyString.check(
  Schema.isPattern(/^[A-Za-z0-9_.-]+$/, { message: "a target name uses letters, digits, '_', '.' and '-' only" })
)

export const Target = Schema.Struct({
  /** Clients pick a target by putting its name as the database in their startup packet. */
  name: TargetName,
  host: Schema.NonEmptyString,
  port: Port.pipe(defaultTo(5432)),
  database: Schema.NonEmptyString,
  user: Schema.NonEmptyString,
  password: SecretSource,
  tls: BackendTls.pipe(defaultTo({ mode: "disable" }))
})
export type Target = typeof Target.Type

const Sha256Hex = Schema.String.check(
  Schema.isPattern(/^sha256:[0-9a-f]{64}$/, { message: "expected sha256:<64 lowercase hex digits>; make one with `sluice hash-token`" })
)

export const ServiceAccount = Schema.Struct({
  name: Schema.NonEmptyString,
  tokenHash: Sha256Hex,
  groups: Schema.Array(Schema.NonEmptyString).pipe(defaultTo([]))
})
export type ServiceAccount = typeof ServiceAccount.Type

export const Limits = Schema.Struct({
  /** Statement shapes whose classification is cached (the parser runs once per shape). */
  classificationCacheSize: PositiveInt.pipe(defaultTo(10_000)),
  /** The largest frame a client or server may send; larger ones end the connection. */
  maxFrameBytes: PositiveInt.pipe(defaultTo(64 * 1024 * 1024)),
  /** Time allowed from accept to a completed login, on each side. */
  loginTimeoutMs: PositiveInt.pipe(defaultTo(10_000)),
  connectTimeoutMs: PositiveInt.pipe(defaultTo(5_000))
})
export type Limits = typeof Limits.Type

const Bytes = PositiveInt

export const Audit = Schema.Struct({
  /** Off only for benchmarks: nothing is recorded. */
  enabled: Schema.Boolean.pipe(defaultTo(true)),
  spool: Schema.Struct({
    directory: Schema.NonEmptyString.pipe(defaultTo("sluice-audit/spool")),
    /** Unshipped events on disk; beyond it, `onFull` applies. */
    maxBytes: Bytes.pipe(defaultTo(1024 * 1024 * 1024)),
    segmentBytes: Bytes.pipe(defaultTo(64 * 1024 * 1024)),
    fsyncIntervalMs: PositiveInt.pipe(defaultTo(50)),
    /**
     * `refuse`: new statements and sessions are refused once the spool nears `maxBytes`
     * (within a quarter of it, at most 8 MiB), keeping the rest for statements already let
     * through. `drop`: events that do not fit are dropped and counted (an alarm).
     */
    onFull: Schema.Literals(["refuse", "drop"]).pipe(defaultTo("refuse"))
  }).pipe(defaultTo({})),
  /**
   * After shipping a batch that was not full, wait this long for more events: fewer, larger
   * deliveries (less CPU per statement at low rates), each up to this much later.
   */
  lingerMs: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)).pipe(defaultTo(100)),
  /**
   * A delivery (one batch to Kafka or to the files) not done by then is abandoned: its
   * thread is stopped, an error is logged, and the batch is tried again by a new one.
   * Kafka's own retries end well within the default.
   */
  deliveryTimeoutMs: PositiveInt.pipe(defaultTo(120_000)),
  /** Ship to Kafka; without it, events go to Avro container files. */
  kafka: Schema.optionalKey(
    Schema.Struct({
      brokers: Schema.Array(Schema.NonEmptyString).check(Schema.isMinLength(1, { message: "at least one broker is required" })),
      topic: Schema.NonEmptyString.pipe(defaultTo("sluice.audit")),
      clientId: Schema.NonEmptyString.pipe(defaultTo("sluice")),
      /** With a Confluent schema registry, values use its wire format; otherwise Avro single-object encoding. */
      schemaRegistryUrl: Schema.optionalKey(Schema.NonEmptyString)
    })
  ),
  files: Schema.Struct({
    directory: Schema.NonEmptyString.pipe(defaultTo("sluice-audit/files")),
    maxFileBytes: Bytes.pipe(defaultTo(128 * 1024 * 1024)),
    maxFileAgeMs: PositiveInt.pipe(defaultTo(60 * 60 * 1000))
  }).pipe(defaultTo({}))
})
export type Audit = typeof Audit.Type

export const PolicyRef = Schema.Struct({
  /** The policy file (see the README); reloaded when it changes and on SIGHUP. */
  file: Schema.NonEmptyString
})

export const Config = Schema.Struct({
  listen: Listener.pipe(defaultTo({})),
  policy: PolicyRef,
  audit: Audit.pipe(defaultTo({})),
  targets: Schema.Array(Target).check(Schema.isMinLength(1, { message: "at least one target is required" })),
  identities: Schema.Struct({
    serviceAccounts: Schema.Array(ServiceAccount).pipe(defaultTo([])),
    oidc: OidcConfig.pipe(defaultTo([]))
  }).pipe(defaultTo({})),
  limits: Limits.pipe(defaultTo({}))
})
export type Config = typeof Config.Type
