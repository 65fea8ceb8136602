/**
 * The `identities.oidc` section of the config: the OIDC issuers whose JWTs Sluice accepts
 * as passwords. An `effect/Schema` definition, wired into the main config by schema.ts.
 *
 * ```yaml
 * identities:
 *   oidc:
 *     - issuer: https://token.actions.githubusercontent.com
 *       audiences: [sluice]
 *       jwksUrl: https://token.actions.githubusercontent.com/.well-known/jwks
 *       require:
 *         - { claim: repository_owner, equals: my-org }
 *       groups:
 *         - { claim: repository, prefix: "repo:" }
 *         - { claim: environment, prefix: "env:" }
 * ```
 */
import { Schema } from "effect"
import { defaultTo } from "../../config/defaults.ts"
import { regexProblem } from "./claims.ts"

const Seconds = Schema.Number.check(Schema.isFinite(), Schema.isGreaterThanOrEqualTo(0, { message: "expected a number of seconds ≥ 0" }))
const PositiveSeconds = Schema.Number.check(Schema.isFinite(), Schema.isGreaterThan(0, { message: "expected a number of seconds > 0" }))

/** Asymmetric JWS algorithms jose verifies. HMAC and `none` are refused by design. */
export const SUPPORTED_ALGORITHMS: ReadonlyArray<string> = [
  "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"
]
export const DEFAULT_ALGORITHMS: ReadonlyArray<string> = ["RS256", "ES256", "EdDSA"]

/** Why an `alg` is never acceptable, or undefined when it is a supported asymmetric one. */
export const algorithmProblem = (alg: string): string | undefined =>
  alg.toLowerCase() === "none"
    ? `alg "${alg}" is never accepted: tokens must be signed`
    : /^HS/i.test(alg)
    ? `alg "${alg}" is never accepted: HMAC algorithms use a shared secret, and Sluice verifies with public keys only`
    : SUPPORTED_ALGORITHMS.includes(alg)
    ? undefined
    : `unsupported alg "${alg}"; expected one of ${SUPPORTED_ALGORITHMS.join(", ")}`

const Algorithm = Schema.String.check(Schema.makeFilter((alg: string) => algorithmProblem(alg)))

/** 127.0.0.0/8, ::1 and localhost: the only hosts a JWKS may be fetched from over plain http. */
export const isLoopbackHost = (hostname: string): boolean => {
  const host = hostname.replace(/^\[(.*)\]$/, "$1").toLowerCase()
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}

/** Why a JWKS URL is unacceptable, or undefined when it is fine. */
export const jwksUrlProblem = (text: string): string | undefined => {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return `"${text}" is not an absolute URL`
  }
  if (url.username !== "" || url.password !== "") return "jwksUrl must not carry credentials"
  if (url.protocol === "https:") return undefined
  if (url.protocol === "http:") {
    return isLoopbackHost(url.hostname)
      ? undefined
      : `jwksUrl must use https; plain http is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost), not "${url.hostname}"`
  }
  return `jwksUrl must use https, not "${url.protocol.replace(/:$/, "")}"`
}

export const GroupMapping = Schema.Struct({
  /** A claim name or a dotted path into nested claims, e.g. `kubernetes.io.serviceaccount.name`. */
  claim: Schema.NonEmptyString,
  /** Put before each value: `repo:` turns `my-org/app` into the group `repo:my-org/app`. */
  prefix: Schema.String.pipe(defaultTo("")),
})
export type GroupMapping = typeof GroupMapping.Type

const Scalar = Schema.Union([Schema.String, Schema.Number, Schema.Boolean])

export const ClaimPredicate = Schema.Struct({
  claim: Schema.NonEmptyString,
  equals: Schema.optionalKey(Scalar),
  oneOf: Schema.optionalKey(Schema.Array(Scalar).check(Schema.isMinLength(1, { message: "oneOf needs at least one value" }))),
  /** Anchored at both ends: it must match the whole claim value. */
  matches: Schema.optionalKey(Schema.NonEmptyString.check(Schema.makeFilter((s: string) => regexProblem(s))))
}).check(
  Schema.makeFilter((p) =>
    [p.equals, p.oneOf, p.matches].filter((v) => v !== undefined).length === 1
      ? undefined
      : "expected exactly one of equals, oneOf or matches"
  )
)
export type ClaimPredicate = typeof ClaimPredicate.Type

export const OidcIssuer = Schema.Struct({
  /** Compared with the token's `iss` exactly, character for character. */
  issuer: Schema.NonEmptyString,
  /** The token's `aud` (a string or an array) must contain at least one of these. */
  audiences: Schema.Array(Schema.NonEmptyString).check(Schema.isMinLength(1, { message: "at least one audience is required" })),
  /** Where the signing keys are published: https, or http on a loopback host. */
  jwksUrl: Schema.optionalKey(Schema.String.check(Schema.makeFilter((s: string) => jwksUrlProblem(s)))),
  /** A JWKS document on disk, re-read on the same schedule as a URL. */
  jwksFile: Schema.optionalKey(Schema.NonEmptyString),
  algorithms: Schema.Array(Algorithm)
    .check(Schema.isMinLength(1, { message: "at least one algorithm is required" }))
    .pipe(defaultTo([...DEFAULT_ALGORITHMS])),
  /** Leeway for exp, nbf and iat against this host's clock. */
  clockSkewSeconds: Seconds.pipe(defaultTo(30)),
  /** When set, tokens issued (iat) longer ago than this are refused, and iat becomes required. */
  maxTokenAgeSeconds: Schema.optionalKey(PositiveSeconds),
  /** How long fetched keys are trusted before they are fetched again. */
  cacheMaxAgeSeconds: PositiveSeconds.pipe(defaultTo(600)),
  /** At most one JWKS fetch per this interval, whatever triggers it (an unknown kid, a failed fetch). */
  minRefreshIntervalSeconds: Seconds.pipe(defaultTo(30)),
  /** A JWKS fetch that takes longer fails. */
  fetchTimeoutSeconds: PositiveSeconds.pipe(defaultTo(5)),
  /** The claim (or dotted path) that names the principal. */
  subjectClaim: Schema.NonEmptyString.pipe(defaultTo("sub")),
  kind: Schema.Literals(["machine", "human"]).pipe(defaultTo("machine")),
  /** Group-mapping rules; the principal's groups are the union of what they produce. */
  groups: Schema.Array(GroupMapping).pipe(defaultTo([])),
  /** Every predicate must hold for a token to be accepted. */
  require: Schema.Array(ClaimPredicate).pipe(defaultTo([]))
}).check(
  Schema.makeFilter((i) =>
    [i.jwksUrl, i.jwksFile].filter((v) => v !== undefined).length === 1
      ? undefined
      : "expected exactly one of jwksUrl or jwksFile"
  ),
  Schema.makeFilter((i) =>
    i.minRefreshIntervalSeconds <= i.cacheMaxAgeSeconds
      ? undefined
      : { path: ["minRefreshIntervalSeconds"], issue: "must not exceed cacheMaxAgeSeconds" }
  )
)
export type OidcIssuer = typeof OidcIssuer.Type

export const OidcConfig = Schema.Array(OidcIssuer).check(
  Schema.makeFilter((issuers) => {
    const first = new Map<string, number>()
    const problems: Array<{ path: ReadonlyArray<PropertyKey>; issue: string }> = []
    issuers.forEach((i, index) => {
      const seen = first.get(i.issuer)
      if (seen !== undefined) {
        problems.push({ path: [index, "issuer"], issue: `duplicate issuer "${i.issuer}" (also at index ${seen}); merge their audiences instead` })
      } else first.set(i.issuer, index)
    })
    return problems.length > 0 ? problems : undefined
  })
)
export type OidcConfig = typeof OidcConfig.Type
