/**
 * Claims → groups and claim predicates (pure functions): the groups are exactly the
 * mapped string values with their prefixes, missing and non-string claims give nothing,
 * dotted paths reach nested claims (also through keys that contain dots), and nothing
 * throws on arbitrary JSON. Also the time rules (exp, nbf, iat, max age) as a model.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { claimAt, compileMatch, compilePredicates, mapGroups, stringValues, type GroupMapping } from "../../src/rules/identity/claims.ts"
import { checkAudience, checkTimes, looksLikeJwt } from "../../src/rules/identity/oidc.ts"

/** Claim names without dots, so that a flat lookup is the model for `claimAt`. */
const flatName = fc.oneof(
  fc.constantFrom("groups", "repository", "environment", "ref", "sub", "roles", "__proto__", "constructor", "toString"),
  fc.string({ minLength: 1, maxLength: 8 }).filter((s) => !s.includes("."))
)
const claimValue = fc.oneof(
  fc.string({ maxLength: 10 }),
  fc.array(fc.oneof(fc.string({ maxLength: 10 }), fc.integer(), fc.boolean(), fc.constant(null)), { maxLength: 5 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), { maxKeys: 3 })
)
const flatClaims = fc.dictionary(flatName, claimValue, { maxKeys: 8 })
const rule = (names: fc.Arbitrary<string>): fc.Arbitrary<GroupMapping> =>
  fc.record({ claim: names, prefix: fc.oneof(fc.constant(""), fc.constantFrom("repo:", "env:", "k8s-ns:"), fc.string({ maxLength: 5 })) })

/** The model: each rule's string values (a string, or the strings of an array), prefixed, first occurrence kept. */
const model = (rules: ReadonlyArray<GroupMapping>, claims: Record<string, unknown>): Array<string> => {
  const out: Array<string> = []
  for (const r of rules) {
    const v = Object.hasOwn(claims, r.claim) ? claims[r.claim] : undefined
    const values = typeof v === "string" ? [v] : Array.isArray(v) ? v.filter((x) => typeof x === "string") : []
    for (const x of values) {
      if (x === "") continue
      const g = `${r.prefix ?? ""}${x}`
      if (!out.includes(g)) out.push(g)
    }
  }
  return out
}

describe("claims → groups", () => {
  it("groups are exactly the mapped string values with their prefixes, in rule order, without duplicates", () => {
    fc.assert(
      fc.property(flatClaims, fc.array(rule(flatName), { maxLength: 6 }), (claims, rules) => {
        expect(mapGroups(rules, claims)).toEqual(model(rules, claims))
      }),
      { numRuns: 2000 }
    )
  })

  it("rules on claims that are absent give no groups", () => {
    fc.assert(
      fc.property(flatClaims, fc.array(rule(flatName), { maxLength: 6 }), (claims, rules) => {
        const absent = rules.filter((r) => !Object.hasOwn(claims, r.claim))
        expect(mapGroups(absent, claims)).toEqual([])
      })
    )
  })

  it("non-string values (numbers, booleans, null, objects, arrays of non-strings) give no groups", () => {
    const nonString = fc.oneof(
      fc.integer(), fc.double(), fc.boolean(), fc.constant(null),
      fc.array(fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.object()), { maxLength: 4 }),
      fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 })
    )
    fc.assert(
      fc.property(fc.dictionary(flatName, nonString, { maxKeys: 6 }), fc.array(rule(flatName), { maxLength: 6 }), (claims, rules) => {
        expect(mapGroups(rules, claims)).toEqual([])
      })
    )
  })

  it("every group is one rule's prefix followed by a non-empty string value of that rule's claim", () => {
    fc.assert(
      fc.property(flatClaims, fc.array(rule(flatName), { maxLength: 6 }), (claims, rules) => {
        const groups = mapGroups(rules, claims)
        expect(new Set(groups).size).toBe(groups.length)
        for (const g of groups) {
          expect(rules.some((r) => stringValues(Object.hasOwn(claims, r.claim) ? claims[r.claim] : undefined).some((v) => g === `${r.prefix}${v}`))).toBe(true)
        }
      })
    )
  })

  it("never throws on arbitrary JSON and arbitrary paths, and returns strings only", () => {
    const path = fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.array(fc.oneof(fc.string({ maxLength: 4 }), fc.constantFrom("__proto__", "constructor", "prototype", "")), { minLength: 1, maxLength: 5 }).map((s) => s.join("."))
    )
    fc.assert(
      fc.property(fc.jsonValue(), fc.array(rule(path), { maxLength: 6 }), (claims, rules) => {
        const groups = mapGroups(rules, claims)
        expect(Array.isArray(groups)).toBe(true)
        for (const g of groups) expect(typeof g).toBe("string")
      }),
      { numRuns: 2000 }
    )
    fc.assert(
      fc.property(fc.anything(), path, (claims, p) => {
        void claimAt(claims, p)
        void mapGroups([{ claim: p }], claims)
      })
    )
  })

  it("never reads through the prototype: inherited properties are not claims", () => {
    for (const name of ["__proto__", "constructor", "toString", "hasOwnProperty", "__proto__.constructor", "constructor.name"]) {
      expect(claimAt({}, name)).toBeUndefined()
      expect(claimAt({ a: {} }, `a.${name}`)).toBeUndefined()
      expect(mapGroups([{ claim: name }], {})).toEqual([])
    }
    // a JSON payload may carry "__proto__" as an own property: then it is an ordinary claim
    expect(mapGroups([{ claim: "__proto__" }], JSON.parse('{"__proto__": ["x"]}'))).toEqual(["x"])
  })
})

describe("dotted paths", () => {
  const segment = fc.string({ minLength: 1, maxLength: 5 }).filter((s) => !s.includes("."))

  it("a value nested under any grouping of the path's segments into keys is found", () => {
    // e.g. segments [kubernetes, io, serviceaccount, name] nested as {"kubernetes.io": {serviceaccount: {name: v}}}
    fc.assert(
      fc.property(
        fc.array(segment, { minLength: 1, maxLength: 5 }),
        fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
        fc.string({ minLength: 1, maxLength: 8 }),
        (segments, joins, value) => {
          const keys: Array<string> = [segments[0]!]
          segments.slice(1).forEach((s, i) => {
            if (joins[i]) keys[keys.length - 1] += `.${s}`
            else keys.push(s)
          })
          const claims = keys.reduceRight<unknown>((inner, key) => ({ [key]: inner }), value)
          expect(claimAt(claims, segments.join("."))).toBe(value)
          expect(mapGroups([{ claim: segments.join("."), prefix: "p:" }], claims)).toEqual([`p:${value}`])
        }
      )
    )
  })

  it("Kubernetes service-account claims", () => {
    const claims = {
      sub: "system:serviceaccount:payments:reporter",
      "kubernetes.io": { namespace: "payments", serviceaccount: { name: "reporter", uid: "u" }, pod: { name: "p" } }
    }
    expect(claimAt(claims, "kubernetes.io.namespace")).toBe("payments")
    expect(claimAt(claims, "kubernetes.io.serviceaccount.name")).toBe("reporter")
    expect(claimAt(claims, "kubernetes.io.serviceaccount")).toEqual({ name: "reporter", uid: "u" })
    expect(claimAt(claims, "kubernetes.io.nope")).toBeUndefined()
    expect(claimAt(claims, "kubernetes")).toBeUndefined()
    expect(mapGroups([{ claim: "kubernetes.io.serviceaccount", prefix: "sa:" }], claims)).toEqual([])
  })

  it("when both a dotted key and a nested path exist, the longest key wins, and a dead end backtracks", () => {
    expect(claimAt({ "a.b": "long", a: { b: "nested" } }, "a.b")).toBe("long")
    expect(claimAt({ "a.b": { x: 1 }, a: { b: { c: "nested" } } }, "a.b.c")).toBe("nested")
  })
})

describe("claim predicates", () => {
  const scalar = fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean())
  const escape = (s: string) => s.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&")

  it("equals holds exactly when the scalar claim equals the value (or an array claim contains it)", () => {
    fc.assert(
      fc.property(scalar, scalar, (want, have) => {
        const check = compilePredicates([{ claim: "c", equals: want }])
        expect(check({ c: have }) === undefined).toBe(want === have)
        expect(check({ c: ["zz", have] }) === undefined).toBe(want === have || want === "zz")
        expect(check({})).toMatch(/required claim "c" is missing/)
      })
    )
  })

  it("oneOf holds exactly when the claim is a member", () => {
    fc.assert(
      fc.property(fc.array(scalar, { minLength: 1, maxLength: 4 }), scalar, (set, have) => {
        expect(compilePredicates([{ claim: "c", oneOf: set }])({ c: have }) === undefined).toBe(set.includes(have))
      })
    )
  })

  it("matches is anchored: an escaped literal matches only the whole value", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 10 }), fc.string({ minLength: 1, maxLength: 3 }), (s, extra) => {
        const check = compilePredicates([{ claim: "repo", matches: escape(s) }])
        expect(check({ repo: s })).toBeUndefined()
        expect(check({ repo: `${extra}${s}` })).toBeDefined()
        expect(check({ repo: `${s}${extra}` })).toBeDefined()
      })
    )
    expect(compileMatch("my-org/.*").test("evil/my-org/x")).toBe(false)
  })

  it("all predicates must hold; none throws on arbitrary JSON", () => {
    const check = compilePredicates([
      { claim: "repository_owner", equals: "my-org" },
      { claim: "ref", oneOf: ["refs/heads/main"] },
      { claim: "kubernetes.io.namespace", matches: "team-[a-z]+" }
    ])
    expect(check({ repository_owner: "my-org", ref: "refs/heads/main", "kubernetes.io": { namespace: "team-a" } })).toBeUndefined()
    expect(check({ repository_owner: "my-org", ref: "refs/heads/dev", "kubernetes.io": { namespace: "team-a" } })).toMatch(/ref/)
    fc.assert(fc.property(fc.jsonValue(), (claims) => void check(claims)))
  })
})

describe("time and audience rules (pure)", () => {
  const t = fc.integer({ min: 0, max: 4_000_000_000 })
  const skew = fc.integer({ min: 0, max: 600 })

  it("exp is required; a token is expired exactly when exp <= now - skew", () => {
    fc.assert(
      fc.property(t, t, skew, (exp, now, s) => {
        const reason = checkTimes({ exp }, now, { clockSkewSeconds: s })
        expect(reason === undefined).toBe(exp > now - s)
        if (reason !== undefined) expect(reason).toMatch(/expired/)
        expect(checkTimes({}, now, { clockSkewSeconds: s })).toMatch(/no exp claim/)
      })
    )
  })

  it("nbf and iat: refused exactly when more than skew in the future", () => {
    fc.assert(
      fc.property(t, fc.integer({ min: -1000, max: 1000 }), skew, fc.constantFrom("nbf", "iat"), (now, delta, s, claim) => {
        const reason = checkTimes({ exp: now + 10_000, [claim]: now + delta }, now, { clockSkewSeconds: s })
        expect(reason === undefined).toBe(delta <= s)
      })
    )
  })

  it("max age: refused exactly when now - iat - skew > max", () => {
    fc.assert(
      fc.property(t, fc.integer({ min: 0, max: 5000 }), skew, fc.integer({ min: 1, max: 3600 }), (now, age, s, max) => {
        const reason = checkTimes({ exp: now + 10_000, iat: now - age }, now, { clockSkewSeconds: s, maxTokenAgeSeconds: max })
        expect(reason === undefined).toBe(age - s <= max)
      })
    )
  })

  it("never throws on arbitrary claims", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom("exp", "nbf", "iat", "aud", "x"), fc.jsonValue()), t, (claims, now) => {
        void checkTimes(claims, now, { clockSkewSeconds: 30, maxTokenAgeSeconds: 60 })
        void checkAudience(claims, ["sluice"])
      })
    )
  })

  it("aud: accepted exactly when it is, or contains, an accepted audience", () => {
    const aud = fc.constantFrom("sluice", "other", "k8s")
    fc.assert(
      fc.property(fc.oneof(aud, fc.array(aud, { maxLength: 3 })), fc.array(aud, { minLength: 1, maxLength: 2 }), (have, accepted) => {
        const list = typeof have === "string" ? [have] : have
        expect(checkAudience({ aud: have }, accepted) === undefined).toBe(list.some((a) => accepted.includes(a)))
      })
    )
  })
})

describe("JWT shape", () => {
  it("service-account tokens never look like JWTs; compact JWS do", () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (bytes) => {
      expect(looksLikeJwt(`sluice_${Buffer.from(bytes).toString("base64url")}`)).toBe(false)
    }))
    const seg = fc.uint8Array({ minLength: 1, maxLength: 40 }).map((b) => Buffer.from(b).toString("base64url"))
    fc.assert(fc.property(seg, seg, fc.option(seg, { nil: "" }), (h, p, s) => {
      expect(looksLikeJwt(`${h}.${p}.${s}`)).toBe(true)
    }))
    expect(looksLikeJwt("a.b")).toBe(false)
    expect(looksLikeJwt("a.b.c.d")).toBe(false)
    expect(looksLikeJwt("a b.c.d")).toBe(false)
  })
})
