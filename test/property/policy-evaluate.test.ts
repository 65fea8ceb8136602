/** Policy evaluation: the order and the meaning of every condition, as the README states them. */
import * as fc from "fast-check"
import { describe, expect, it } from "vitest"
import type { Principal } from "../../src/rules/identity/principal.ts"
import { evaluate, type StatementFacts } from "../../src/rules/policy/evaluate.ts"
import type { Policy, Rule } from "../../src/rules/policy/schema.ts"

const ci: Principal = { subject: "ci-job", kind: "machine", groups: ["ci", "repo:acme/app"], issuer: "static" }
const target = { name: "app", database: "appdb" }
const stmt = (over: Partial<StatementFacts> = {}): StatementFacts => ({ text: "SELECT 1", class: "read", relations: [], functions: [], ...over })
const policy = (rules: ReadonlyArray<Rule>, defaults: Policy["defaults"] = {}): Policy => ({ version: 1, defaults, rules, masks: [], maxStatementBytes: 1 << 20, auditLiterals: "keep", auditTextBytes: 65536, recording: { rows: 0, bytes: 65536 } })
const rel = (schemas: ReadonlyArray<string> | "any", name: string) => ({ schemas, name })

describe("policy evaluation", () => {
  it("takes the first rule whose every condition holds, then the target's default, then *, then block", () => {
    const rules: Array<Rule> = [
      { id: "a", match: { classes: ["write"] }, action: "block" },
      { id: "b", match: { classes: ["read"] }, action: "allow" },
      { id: "c", match: {}, action: "hold" }
    ]
    expect(evaluate(policy(rules), ci, target, stmt()).ruleId).toBe("b")
    expect(evaluate(policy(rules), ci, target, stmt({ class: "write" })).ruleId).toBe("a")
    expect(evaluate(policy([]), ci, target, stmt())).toMatchObject({ action: "block", ruleId: "default" })
    expect(evaluate(policy([], { "*": { action: "allow" } }), ci, target, stmt())).toMatchObject({ action: "allow", ruleId: "default:*" })
    expect(evaluate(policy([], { "*": { action: "allow" }, app: { action: "block" } }), ci, target, stmt())).toMatchObject({ action: "block", ruleId: "default:app" })
  })

  it("allows statements of unknown effect only by a rule that names class unknown", () => {
    const unknown = stmt({ class: "unknown" })
    expect(evaluate(policy([{ id: "all", match: {}, action: "allow" }]), ci, target, unknown).action).toBe("block")
    expect(evaluate(policy([], { "*": { action: "allow" } }), ci, target, unknown).action).toBe("block")
    expect(evaluate(policy([{ id: "u", match: { classes: ["unknown"] }, action: "allow" }]), ci, target, unknown)).toMatchObject({ action: "allow", ruleId: "u" })
    // A block rule without classes still matches unknown statements.
    expect(evaluate(policy([{ id: "x", match: {}, action: "block" }]), ci, target, unknown).ruleId).toBe("x")
  })

  it("reads relations as 'every' for allow rules and 'any' for the others, over every schema a name may resolve to", () => {
    const allowPublic = policy([{ id: "ok", match: { relations: ["public.*"] }, action: "allow" }])
    const blockSecret = policy([{ id: "no", match: { relations: ["secret.*"] }, action: "block" }], { "*": { action: "allow" } })
    const both = stmt({ relations: [rel(["public"], "a"), rel(["secret"], "b")] })
    expect(evaluate(allowPublic, ci, target, both).ruleId).toBe("default")
    expect(evaluate(blockSecret, ci, target, both).ruleId).toBe("no")
    const unqualified = stmt({ relations: [rel(["public", "secret"], "t")] })
    expect(evaluate(allowPublic, ci, target, unqualified).ruleId).toBe("default")
    expect(evaluate(blockSecret, ci, target, unqualified).ruleId).toBe("no")
    const anywhere = stmt({ relations: [rel("any", "t")] })
    expect(evaluate(allowPublic, ci, target, anywhere).ruleId).toBe("default")
    expect(evaluate(policy([{ id: "ok", match: { relations: ["t"] }, action: "allow" }]), ci, target, anywhere).ruleId).toBe("ok")
    expect(evaluate(blockSecret, ci, target, anywhere).ruleId).toBe("no")
  })

  it("never lets an allow rule with relations cover a change that names no relation", () => {
    const allowPublicWrites = policy([{ id: "w", match: { classes: ["write", "ddl"], relations: ["public.*"] }, action: "allow" }])
    expect(evaluate(allowPublicWrites, ci, target, stmt({ class: "ddl", text: "DROP SCHEMA x CASCADE" })).ruleId).toBe("default")
    expect(evaluate(allowPublicWrites, ci, target, stmt({ class: "write", relations: [rel(["public"], "t")] })).ruleId).toBe("w")
  })

  it("matches principals by issuer, subject, group, kind and claims, and targets by name and database", () => {
    const oidc: Principal = { subject: "ci-job", kind: "machine", groups: [], issuer: "https://token.actions.githubusercontent.com", claims: { environment: "production", k8s: { ns: "prod" } } }
    const r = (match: Rule["match"]): Policy => policy([{ id: "r", match, action: "allow" }])
    expect(evaluate(r({ principal: { issuers: ["static"], subjects: ["ci-*"] } }), ci, target, stmt()).ruleId).toBe("r")
    expect(evaluate(r({ principal: { issuers: ["static"], subjects: ["ci-*"] } }), oidc, target, stmt()).ruleId).toBe("default")
    expect(evaluate(r({ principal: { groups: ["repo:acme/*"] } }), ci, target, stmt()).ruleId).toBe("r")
    expect(evaluate(r({ principal: { kinds: ["human"] } }), ci, target, stmt()).ruleId).toBe("default")
    expect(evaluate(r({ principal: { claims: [{ claim: "environment", equals: "production" }, { claim: "k8s.ns", oneOf: ["prod"] }] } }), oidc, target, stmt()).ruleId).toBe("r")
    expect(evaluate(r({ principal: { claims: [{ claim: "environment", matches: "^stag" }] } }), oidc, target, stmt()).ruleId).toBe("default")
    expect(evaluate(r({ target: { names: ["app"], databases: ["app*"] } }), ci, target, stmt()).ruleId).toBe("r")
    expect(evaluate(r({ target: { databases: ["other"] } }), ci, target, stmt()).ruleId).toBe("default")
    expect(evaluate(r({ functions: ["pg_*"] }), ci, target, stmt({ functions: [{ schema: undefined, name: "pg_sleep" }, { schema: undefined, name: "now" }] })).ruleId).toBe("default")
    expect(evaluate(r({ regex: "^select" }), ci, target, stmt({ text: "SELECT 1" })).ruleId).toBe("r")
  })

  it("is unchanged by rules after the one that decides", () => {
    const classes = fc.constantFrom("read", "write", "ddl", "admin", "unknown") as fc.Arbitrary<StatementFacts["class"]>
    const action = fc.constantFrom("allow", "block", "hold") as fc.Arbitrary<Rule["action"]>
    const rule = fc.record({ id: fc.constantFrom("x", "y", "z"), match: fc.record({ classes: fc.array(classes, { minLength: 1, maxLength: 3 }) }), action })
    fc.assert(
      fc.property(fc.array(rule, { maxLength: 5 }), fc.array(rule, { maxLength: 5 }), classes, (head, tail, c) => {
        const s = stmt({ class: c })
        const d = evaluate(policy(head), ci, target, s)
        if (d.ruleId.startsWith("default")) return
        expect(evaluate(policy([...head, ...tail]), ci, target, s)).toEqual(d)
      })
    )
  })
})
