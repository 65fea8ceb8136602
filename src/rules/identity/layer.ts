/**
 * The identity verifier the gateway runs: static service-account tokens and OIDC JWTs
 * behind one IdentityVerifier. The secret's shape picks the path: a JWT (three base64url
 * segments) goes to the OIDC issuers, anything else to the service accounts. A
 * service-account token (`sluice_…`) has no dots, so it can never be mistaken for a JWT.
 */
import { Effect, Layer } from "effect"
import type { ServiceAccount } from "../../config/schema.ts"
import type { OidcConfig } from "./oidc-config.ts"
import { looksLikeJwt, oidcVerifier, type OidcVerifierOptions } from "./oidc.ts"
import { serviceAccountVerifier } from "./service-accounts.ts"
import { AuthenticationFailed, IdentityVerifier } from "./verifier.ts"

export interface IdentityConfig {
  readonly serviceAccounts: ReadonlyArray<ServiceAccount>
  readonly oidc: OidcConfig
}

export const identityVerifier = (config: IdentityConfig, options: OidcVerifierOptions = {}) => {
  const accounts = serviceAccountVerifier(config.serviceAccounts)
  const oidc = config.oidc.length > 0 ? oidcVerifier(config.oidc, options) : undefined
  return IdentityVerifier.of({
    verify: (credentials) =>
      !looksLikeJwt(credentials.secret)
        ? accounts.verify(credentials)
        : oidc !== undefined
        ? oidc.verify(credentials)
        : Effect.fail(new AuthenticationFailed({ user: credentials.user, reason: "a JWT was presented, but no OIDC issuer is configured" }))
  })
}

/** Each build makes fresh JWKS caches: build it once per gateway, not per connection. */
export const layerIdentity = (config: IdentityConfig, options: OidcVerifierOptions = {}): Layer.Layer<IdentityVerifier> =>
  Layer.sync(IdentityVerifier, () => identityVerifier(config, options))
