/** Static service-account tokens, stored in the config as SHA-256 hashes. */
import { createHash, randomBytes } from "node:crypto"
import { Effect, Layer } from "effect"
import type { ServiceAccount } from "../../config/schema.ts"
import type { Principal } from "./principal.ts"
import { AuthenticationFailed, IdentityVerifier } from "./verifier.ts"

/** Tokens are high-entropy random strings, so a fast hash is the right tool (as for API keys). */
export const hashToken = (token: string): string => `sha256:${createHash("sha256").update(token, "utf8").digest("hex")}`

/** A fresh token for `sluice hash-token --new`: 32 random bytes, URL-safe. */
export const newToken = (): string => `sluice_${randomBytes(32).toString("base64url")}`

export const serviceAccountVerifier = (accounts: ReadonlyArray<ServiceAccount>) => {
  // Lookup by digest: the attacker controls the token, not the digest, so no timing oracle.
  const byHash = new Map(accounts.map((a) => [a.tokenHash, a]))
  return IdentityVerifier.of({
    verify: ({ user, secret }) => {
      const account = byHash.get(hashToken(secret))
      return account === undefined
        ? Effect.fail(new AuthenticationFailed({ user, reason: "no service account has this token" }))
        : Effect.succeed<Principal>({ subject: account.name, kind: "machine", groups: account.groups, issuer: "static" })
    }
  })
}

export const layerServiceAccounts = (accounts: ReadonlyArray<ServiceAccount>) =>
  Layer.succeed(IdentityVerifier, serviceAccountVerifier(accounts))
