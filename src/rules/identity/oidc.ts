/**
 * OIDC JWTs presented as the password: a CI job's token, a Kubernetes projected
 * service-account token. Verified against each issuer's JWKS with jose; the claims become
 * a principal with groups.
 *
 * The order of checks, each failing with a reason that names the rule (logs only):
 * 1. shape: three base64url segments, at most MAX_TOKEN_CHARS, header and payload JSON objects;
 * 2. header `alg`: `none` and HMAC are refused outright, whatever is configured;
 * 3. `iss` (read unverified, only to choose the issuer config) must be a configured issuer;
 * 4. `alg` must be in that issuer's allow-list;
 * 5. registered claims (exp required, nbf, iat, max age, aud), so that a token that can
 *    never pass costs no key lookup and cannot make the JWKS be reloaded;
 * 6. key: by kid and alg from the issuer's JWKS (jwks.ts: cache, reload on unknown kid);
 * 7. signature, with jose's `jwtVerify`, which re-checks alg, iss, aud, exp, nbf, max age;
 * 8. the registered claims again on the verified payload, then `require` predicates,
 *    then the subject claim.
 * Nothing from the token chooses a key source: `jku`, `x5u` and `jwk` headers are ignored.
 */
import { Clock, Effect } from "effect"
import { jwtVerify, type JWSHeaderParameters } from "jose"
import { claimAt, compilePredicates, mapGroups } from "./claims.ts"
import { fileSource, type JwksCache, makeJwksCache, type JwksSource, urlSource } from "./jwks.ts"
import { algorithmProblem, type OidcConfig, type OidcIssuer } from "./oidc-config.ts"
import type { Principal } from "./principal.ts"
import { AuthenticationFailed, type Credentials, IdentityVerifier } from "./verifier.ts"

/** Real OIDC tokens are 1–3 KB; this bounds the JSON parsed before the signature is checked. */
export const MAX_TOKEN_CHARS = 16 * 1024

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

/**
 * Three base64url segments separated by dots (the signature may be empty, so that an
 * `alg: none` token is recognised, and refused, as a JWT). Static service-account tokens
 * (`sluice_…`) contain no dot, so they never look like one.
 */
export const looksLikeJwt = (secret: string): boolean => JWT_SHAPE.test(secret)

type Json = Readonly<Record<string, unknown>>

const decodeSegment = (segment: string): Json | undefined => {
  try {
    const value: unknown = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(segment, "base64url")))
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Json) : undefined
  } catch {
    return undefined
  }
}

const iso = (seconds: number): string => {
  const date = new Date(seconds * 1000)
  return Number.isNaN(date.getTime()) ? String(seconds) : date.toISOString()
}

const show = (value: unknown): string => {
  const text = JSON.stringify(value) ?? String(value)
  return text.length > 120 ? `${text.slice(0, 117)}...` : text
}

/** The time rules of an issuer, in seconds. */
export interface TimeRules {
  readonly clockSkewSeconds: number
  readonly maxTokenAgeSeconds?: number | undefined
}

/**
 * exp (required), nbf, iat and the maximum age against `now` (whole seconds, as jose
 * counts), with the skew in the token's favour. Pure. Returns why the token fails, or
 * undefined.
 */
export const checkTimes = (claims: Json, now: number, rules: TimeRules): string | undefined => {
  const skew = rules.clockSkewSeconds
  const numeric = (name: string): number | undefined | "invalid" => {
    const value = claims[name]
    return value === undefined ? undefined : typeof value === "number" && Number.isFinite(value) ? value : "invalid"
  }
  const exp = numeric("exp")
  if (exp === undefined) return "the token has no exp claim; tokens without an expiry are refused"
  if (exp === "invalid") return `exp ${show(claims.exp)} is not a NumericDate`
  if (exp <= now - skew) {
    return `the token expired at ${iso(exp)}, ${now - exp} s ago, beyond the ${skew} s clock skew`
  }
  const nbf = numeric("nbf")
  if (nbf === "invalid") return `nbf ${show(claims.nbf)} is not a NumericDate`
  if (nbf !== undefined && nbf > now + skew) {
    return `the token is not valid before ${iso(nbf)} (nbf), ${nbf - now} s from now, beyond the ${skew} s clock skew`
  }
  const iat = numeric("iat")
  if (iat === "invalid") return `iat ${show(claims.iat)} is not a NumericDate`
  if (iat !== undefined && iat > now + skew) {
    return `the token claims to be issued in the future: iat ${iso(iat)} is ${iat - now} s from now, beyond the ${skew} s clock skew`
  }
  if (rules.maxTokenAgeSeconds !== undefined) {
    if (iat === undefined) return "the token has no iat claim, which maxTokenAgeSeconds requires"
    if (now - iat - skew > rules.maxTokenAgeSeconds) {
      return `the token was issued ${now - iat} s ago (iat ${iso(iat)}), more than maxTokenAgeSeconds ${rules.maxTokenAgeSeconds} plus the ${skew} s clock skew`
    }
  }
  return undefined
}

/** The token's aud (a string or an array of strings) must contain one of the accepted audiences. Pure. */
export const checkAudience = (claims: Json, audiences: ReadonlyArray<string>): string | undefined => {
  const aud = claims.aud
  if (aud === undefined) return "the token has no aud claim"
  const values = typeof aud === "string" ? [aud] : Array.isArray(aud) && aud.every((a) => typeof a === "string") ? aud as Array<string> : undefined
  if (values === undefined) return `aud ${show(aud)} is neither a string nor an array of strings`
  return values.some((a) => audiences.includes(a))
    ? undefined
    : `aud ${show(aud)} contains none of the accepted audiences ${show(audiences)}`
}

const joseCode = (e: unknown): string | undefined => {
  const code = (e as { code?: unknown } | null)?.code
  return typeof code === "string" ? code : undefined
}

const describeJoseFailure = (e: unknown): string => {
  const message = e instanceof Error ? e.message : String(e)
  switch (joseCode(e)) {
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return "signature verification failed"
    case "ERR_JOSE_ALG_NOT_ALLOWED":
      return `alg not allowed: ${message}`
    case "ERR_JWT_EXPIRED":
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
      return `claim check failed: ${message}`
    case "ERR_JWS_INVALID":
    case "ERR_JWT_INVALID":
      return `malformed token: ${message}`
    default:
      return `verification failed: ${message}`
  }
}

interface PreparedIssuer {
  readonly config: OidcIssuer
  readonly keys: JwksCache
  readonly predicates: (claims: unknown) => string | undefined
}

export interface OidcVerifierOptions {
  /** Where an issuer's keys come from; by default its jwksUrl or jwksFile. */
  readonly sourceFor?: (issuer: OidcIssuer) => JwksSource
}

const defaultSource = (issuer: OidcIssuer): JwksSource =>
  issuer.jwksUrl !== undefined ? urlSource(issuer.jwksUrl, issuer.fetchTimeoutSeconds * 1000) : fileSource(issuer.jwksFile!)

/** An IdentityVerifier for JWTs from the configured issuers. Each issuer gets its own key cache. */
export const oidcVerifier = (issuers: OidcConfig, options: OidcVerifierOptions = {}) => {
  const sourceFor = options.sourceFor ?? defaultSource
  const byIssuer = new Map<string, PreparedIssuer>(
    issuers.map((config) => [
      config.issuer,
      {
        config,
        keys: makeJwksCache(sourceFor(config), {
          cacheMaxAgeMs: config.cacheMaxAgeSeconds * 1000,
          minRefreshIntervalMs: config.minRefreshIntervalSeconds * 1000
        }),
        predicates: compilePredicates(config.require)
      }
    ])
  )

  const verify = ({ user, secret }: Credentials): Effect.Effect<Principal, AuthenticationFailed> =>
    Effect.gen(function*() {
      const refuse = (reason: string) => Effect.fail(new AuthenticationFailed({ user, reason }))

      if (secret.length > MAX_TOKEN_CHARS) return yield* refuse(`the JWT is longer than ${MAX_TOKEN_CHARS} characters`)
      if (!looksLikeJwt(secret)) return yield* refuse("not a JWT: expected three base64url segments separated by dots")
      const [headerPart, payloadPart] = secret.split(".") as [string, string, string]
      const header = decodeSegment(headerPart)
      if (header === undefined) return yield* refuse("malformed JWT: the header is not a base64url JSON object")
      const unverified = decodeSegment(payloadPart)
      if (unverified === undefined) return yield* refuse("malformed JWT: the payload is not a base64url JSON object")

      const alg = header.alg
      if (typeof alg !== "string") return yield* refuse("malformed JWT: the header has no alg")
      const algProblem = algorithmProblem(alg)
      if (algProblem !== undefined) return yield* refuse(algProblem)

      const iss = unverified.iss
      if (typeof iss !== "string") return yield* refuse("the token has no iss claim (or it is not a string)")
      const issuer = byIssuer.get(iss)
      if (issuer === undefined) return yield* refuse(`iss ${show(iss)} is not a configured issuer`)
      const { config } = issuer
      const rejectFor = (reason: string) => refuse(`issuer ${config.issuer}: ${reason}`)

      if (!config.algorithms.includes(alg)) {
        return yield* rejectFor(`alg ${alg} is not in this issuer's allowed algorithms (${config.algorithms.join(", ")})`)
      }

      const nowMs = yield* Clock.currentTimeMillis
      const now = Math.floor(nowMs / 1000)
      const rules: TimeRules = { clockSkewSeconds: config.clockSkewSeconds, maxTokenAgeSeconds: config.maxTokenAgeSeconds }
      const early = checkTimes(unverified, now, rules) ?? checkAudience(unverified, config.audiences)
      if (early !== undefined) return yield* rejectFor(early)

      const key = yield* issuer.keys.getKey(header as JWSHeaderParameters).pipe(
        Effect.catch((e) => rejectFor(e.reason))
      )

      const verified = yield* Effect.tryPromise({
        try: () =>
          jwtVerify(secret, key, {
            algorithms: [...config.algorithms],
            issuer: config.issuer,
            audience: [...config.audiences],
            requiredClaims: ["exp"],
            clockTolerance: config.clockSkewSeconds,
            currentDate: new Date(nowMs),
            ...(config.maxTokenAgeSeconds !== undefined ? { maxTokenAge: config.maxTokenAgeSeconds } : {})
          }),
        catch: describeJoseFailure
      }).pipe(Effect.catch(rejectFor))
      const claims = verified.payload as Json

      const late = checkTimes(claims, now, rules) ?? checkAudience(claims, config.audiences) ?? issuer.predicates(claims)
      if (late !== undefined) return yield* rejectFor(late)

      const subject = claimAt(claims, config.subjectClaim)
      if (typeof subject !== "string" || subject === "") {
        return yield* rejectFor(`the subject claim ${show(config.subjectClaim)} is missing or not a non-empty string`)
      }
      return {
        subject,
        kind: config.kind,
        groups: mapGroups(config.groups, claims),
        issuer: config.issuer,
        claims
      } satisfies Principal
    })

  return IdentityVerifier.of({ verify })
}
