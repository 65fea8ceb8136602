/** The `identities.oidc` schema: defaults, and every refusal with a clear message at its path. */
import { Result, Schema, SchemaIssue } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { OidcConfig } from "../../src/rules/identity/oidc-config.ts"

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()
const decode = Schema.decodeUnknownResult(OidcConfig, { errors: "all", onExcessProperty: "error" })

const problems = (input: unknown): Array<string> => {
  const r = decode(input)
  return Result.isFailure(r)
    ? formatter(r.failure.issue).issues.map((i) => `${(i.path ?? []).map((p) => String(typeof p === "object" ? p.key : p)).join(".")}: ${i.message}`)
    : []
}

const base = { issuer: "https://token.actions.githubusercontent.com", audiences: ["sluice"], jwksUrl: "https://token.actions.githubusercontent.com/.well-known/jwks" }

describe("identities.oidc schema", () => {
  it("fills in the defaults", () => {
    const r = decode([base])
    expect(Result.isSuccess(r) && r.success[0]).toEqual({
      ...base,
      algorithms: ["RS256", "ES256", "EdDSA"],
      clockSkewSeconds: 30,
      cacheMaxAgeSeconds: 600,
      minRefreshIntervalSeconds: 30,
      fetchTimeoutSeconds: 5,
      subjectClaim: "sub",
      kind: "machine",
      groups: [],
      require: []
    })
  })

  it("refuses alg none and every HS* algorithm, whatever the case", () => {
    fc.assert(
      fc.property(fc.constantFrom("none", "NONE", "None", "HS256", "HS384", "HS512", "hs256"), fc.string({ maxLength: 4 }), (alg, suffix) => {
        const a = alg.startsWith("n") || alg.startsWith("N") ? alg : `${alg}${suffix}`
        const ps = problems([{ ...base, algorithms: ["RS256", a] }])
        expect(ps).toHaveLength(1)
        expect(ps[0]).toMatch(/^0\.algorithms\.1: alg ".*" is never accepted/)
      })
    )
    expect(problems([{ ...base, algorithms: ["RS255"] }])[0]).toMatch(/unsupported alg "RS255"/)
    expect(problems([{ ...base, algorithms: [] }])[0]).toMatch(/at least one algorithm/)
  })

  it("jwksUrl: https anywhere; http only on loopback hosts", () => {
    for (const ok of ["http://127.0.0.1:8080/jwks", "http://127.1.2.3/jwks", "http://localhost:1/jwks", "http://[::1]:9/jwks", "https://idp.example.com/jwks"]) {
      expect(problems([{ ...base, jwksUrl: ok }])).toEqual([])
    }
    fc.assert(
      fc.property(fc.domain(), (host) => {
        fc.pre(host !== "localhost")
        expect(problems([{ ...base, jwksUrl: `http://${host}/jwks` }])[0]).toMatch(/^0\.jwksUrl: jwksUrl must use https; plain http is allowed only for loopback hosts/)
      })
    )
    expect(problems([{ ...base, jwksUrl: "http://10.0.0.1/jwks" }])[0]).toMatch(/only for loopback hosts .* not "10.0.0.1"/)
    expect(problems([{ ...base, jwksUrl: "http://127.0.0.1.evil.com/jwks" }])[0]).toMatch(/only for loopback/)
    expect(problems([{ ...base, jwksUrl: "ftp://idp/jwks" }])[0]).toMatch(/must use https, not "ftp"/)
    expect(problems([{ ...base, jwksUrl: "/jwks" }])[0]).toMatch(/not an absolute URL/)
    expect(problems([{ ...base, jwksUrl: "https://user:pw@idp/jwks" }])[0]).toMatch(/credentials/)
  })

  it("exactly one of jwksUrl or jwksFile", () => {
    const { jwksUrl: _, ...noSource } = base
    expect(problems([noSource])[0]).toMatch(/^0: expected exactly one of jwksUrl or jwksFile/)
    expect(problems([{ ...base, jwksFile: "/etc/jwks.json" }])[0]).toMatch(/exactly one of jwksUrl or jwksFile/)
    expect(problems([{ ...noSource, jwksFile: "/etc/jwks.json" }])).toEqual([])
  })

  it("group mappings, predicates and the rest", () => {
    expect(problems([{ ...base, audiences: [] }])[0]).toMatch(/^0\.audiences: at least one audience/)
    expect(problems([{ ...base, require: [{ claim: "x" }] }])[0]).toMatch(/^0\.require\.0: expected exactly one of equals, oneOf or matches/)
    expect(problems([{ ...base, require: [{ claim: "x", equals: "a", oneOf: ["b"] }] }])[0]).toMatch(/exactly one/)
    expect(problems([{ ...base, require: [{ claim: "x", matches: "(" }] }])[0]).toMatch(/^0\.require\.0\.matches: invalid regular expression/)
    expect(problems([{ ...base, require: [{ claim: "x", oneOf: [] }] }])[0]).toMatch(/oneOf needs at least one value/)
    expect(problems([{ ...base, groups: [{ claim: "" }] }])).toHaveLength(1)
    expect(problems([{ ...base, kind: "robot" }])).toHaveLength(1)
    expect(problems([{ ...base, clockSkewSeconds: -1 }])[0]).toMatch(/seconds ≥ 0/)
    expect(problems([{ ...base, cacheMaxAgeSeconds: 10, minRefreshIntervalSeconds: 60 }])[0]).toMatch(/^0\.minRefreshIntervalSeconds: must not exceed cacheMaxAgeSeconds/)
    expect(problems([{ ...base, audience: "sluice" }])).toHaveLength(1)
    expect(problems([base, { ...base, audiences: ["other"] }])[0]).toMatch(/^1\.issuer: duplicate issuer/)
    expect(problems([{
      ...base,
      maxTokenAgeSeconds: 3600,
      kind: "human",
      groups: [{ claim: "repository", prefix: "repo:" }, { claim: "kubernetes.io.namespace" }],
      require: [{ claim: "repository_owner", equals: "my-org" }, { claim: "ref", oneOf: ["refs/heads/main"] }, { claim: "repository", matches: "my-org/.*" }]
    }])).toEqual([])
  })
})
