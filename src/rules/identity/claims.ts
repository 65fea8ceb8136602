/**
 * From a verified JWT claims set to groups and accept/reject predicates. Pure functions,
 * no I/O and no Effect: the OIDC verifier calls them only after the signature and the
 * registered claims have been checked. They never throw, whatever JSON they are given.
 */

/** One group-mapping rule: each string value found at `claim` becomes the group `prefix + value`. */
export interface GroupMapping {
  /** A claim name, or a dotted path into nested claims (see {@link claimAt}). */
  readonly claim: string
  readonly prefix?: string | undefined
}

export type Scalar = string | number | boolean

/** A condition a token must meet to be accepted; exactly one of equals, oneOf, matches. */
export interface ClaimPredicate {
  readonly claim: string
  readonly equals?: Scalar | undefined
  readonly oneOf?: ReadonlyArray<Scalar> | undefined
  /** A regular expression, anchored at both ends (see {@link compileMatch}). */
  readonly matches?: string | undefined
}

const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/**
 * The value at a dotted path. Claim names may themselves contain dots (Kubernetes puts
 * its claims under `kubernetes.io`), so at each level the longest key that matches a
 * run of segments is tried first, then shorter ones: `kubernetes.io.serviceaccount.name`
 * finds `{"kubernetes.io": {"serviceaccount": {"name": …}}}`, and a top-level claim
 * literally named `a.b` is found by the path `a.b`. Own properties only, so `__proto__`
 * or `constructor` never reach into the prototype.
 */
export const claimAt = (claims: unknown, path: string): unknown => {
  const segments = path.split(".")
  const go = (value: unknown, from: number): unknown => {
    if (from === segments.length) return value
    if (!isRecord(value)) return undefined
    for (let to = segments.length; to > from; to--) {
      const key = segments.slice(from, to).join(".")
      if (Object.hasOwn(value, key)) {
        const found = go(value[key], to)
        if (found !== undefined) return found
      }
    }
    return undefined
  }
  return go(claims, 0)
}

/** A string claim gives itself, an array gives its string members; empty strings and anything else give nothing. */
export const stringValues = (value: unknown): ReadonlyArray<string> =>
  typeof value === "string"
    ? value === "" ? [] : [value]
    : Array.isArray(value)
    ? value.filter((v): v is string => typeof v === "string" && v !== "")
    : []

/** Every group the rules produce from these claims, in rule order, without duplicates. */
export const mapGroups = (rules: ReadonlyArray<GroupMapping>, claims: unknown): ReadonlyArray<string> => {
  const groups = new Set<string>()
  for (const rule of rules) {
    for (const value of stringValues(claimAt(claims, rule.claim))) groups.add(`${rule.prefix ?? ""}${value}`)
  }
  return [...groups]
}

/**
 * `matches` is anchored: `my-org/.*` must match the whole value, so it does not accept
 * `evil/my-org/x`. The `u` flag gives the strict syntax (no silent identity escapes).
 */
export const compileMatch = (source: string): RegExp => new RegExp(`^(?:${source})$`, "u")

/** Why a regex source is unusable, or undefined when it compiles. */
export const regexProblem = (source: string): string | undefined => {
  try {
    compileMatch(source)
    return undefined
  } catch (e) {
    return `invalid regular expression: ${(e as Error).message}`
  }
}

const scalarValues = (value: unknown): ReadonlyArray<Scalar> => {
  const isScalar = (v: unknown): v is Scalar => typeof v === "string" || typeof v === "number" || typeof v === "boolean"
  return isScalar(value) ? [value] : Array.isArray(value) ? value.filter(isScalar) : []
}

const show = (value: unknown): string => {
  let text: string
  try {
    text = JSON.stringify(value) ?? String(value)
  } catch {
    text = String(value)
  }
  return text.length > 120 ? `${text.slice(0, 117)}...` : text
}

/**
 * Compiles predicates once; the result tells why the claims fail the first predicate
 * that does not hold, or undefined when all hold. A scalar claim must satisfy the
 * predicate; an array claim holds when any of its scalar members does; a missing claim,
 * or one of another type, never holds.
 */
export const compilePredicates = (
  predicates: ReadonlyArray<ClaimPredicate>
): ((claims: unknown) => string | undefined) => {
  const compiled = predicates.map((p) => {
    const regex = p.matches !== undefined ? compileMatch(p.matches) : undefined
    const test = (v: Scalar): boolean =>
      regex !== undefined
        ? typeof v === "string" && regex.test(v)
        : p.oneOf !== undefined
        ? p.oneOf.includes(v)
        : v === p.equals
    const wanted = regex !== undefined
      ? `to match /${p.matches}/`
      : p.oneOf !== undefined
      ? `to be one of ${show(p.oneOf)}`
      : `to equal ${show(p.equals)}`
    return { claim: p.claim, test, wanted }
  })
  return (claims) => {
    for (const p of compiled) {
      const raw = claimAt(claims, p.claim)
      if (raw === undefined) return `required claim "${p.claim}" is missing (expected it ${p.wanted})`
      if (!scalarValues(raw).some(p.test)) return `claim "${p.claim}" is ${show(raw)}, expected it ${p.wanted}`
    }
    return undefined
  }
}
