/**
 * The one interface behind which every way of proving identity sits. The PG and Mongo
 * front ends hand it what the client presented; it answers with a principal or a refusal.
 */
import { Context, Data, type Effect } from "effect"
import type { Principal } from "./principal.ts"

export interface Credentials {
  /** The user name the client sent; informational, it never selects a backend role. */
  readonly user: string
  readonly secret: string
}

export class AuthenticationFailed extends Data.TaggedError("AuthenticationFailed")<{
  readonly user: string
  /** For logs only: never sent to the client, which learns nothing beyond "failed". */
  readonly reason: string
}> {}

export class IdentityVerifier extends Context.Service<
  IdentityVerifier,
  { readonly verify: (credentials: Credentials) => Effect.Effect<Principal, AuthenticationFailed> }
>()("sluice/IdentityVerifier") {}
