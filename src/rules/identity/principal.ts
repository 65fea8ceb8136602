/** Who is asking: the identity every decision and audit event carries. */
export interface Principal {
  readonly subject: string
  readonly kind: "machine" | "human"
  readonly groups: ReadonlyArray<string>
  /** Which identity provider vouched for the subject: `static` for service-account tokens. */
  readonly issuer: string
  /** The token's claims, for policy claim predicates; absent for service accounts. */
  readonly claims?: Readonly<Record<string, unknown>>
}
