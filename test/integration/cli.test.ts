/** The `sluice` CLI as a user runs it: check-config reports every problem with its path. */
import { execFile } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { describe, expect, it } from "vitest"
import { hashToken } from "../../src/rules/identity/service-accounts.ts"

const BIN = new URL("../../bin/sluice.js", import.meta.url).pathname
const dir = mkdtempSync(join(tmpdir(), "sluice-cli-"))

const sluice = async (...args: Array<string>) => {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, ...args], { env: { ...process.env, NO_COLOR: "1" } })
    return { code: 0, stdout, stderr }
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string }
    return { code: err.code, stdout: err.stdout, stderr: err.stderr }
  }
}

const file = (name: string, text: string) => {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

describe("sluice check-config", () => {
  it("accepts the checked-in example config and its policy", async () => {
    const r = await sluice("check-config", new URL("../../sluice.example.yaml", import.meta.url).pathname)
    expect(r.code).toBe(0)
    expect(r.stdout).toContain("sluice.example.yaml: OK")
    expect(r.stdout).toMatch(/policy\.example\.yaml: OK \(policy, \d+ rules, \d+ masks\)/)
  })

  it("accepts the compose config (its policy path exists only inside the container)", async () => {
    const r = await sluice("check-config", new URL("../../deploy/sluice.compose.yaml", import.meta.url).pathname)
    expect(r.stdout).toContain("sluice.compose.yaml: OK")
    expect(r.stderr).toContain("/etc/sluice/policy.yaml: invalid policy")
  })

  it("prints every problem with its path, and no stack trace", async () => {
    const r = await sluice(
      "check-config",
      file(
        "bad.yaml",
        `
listen: { port: 70000, loopbackOnly: true, colour: blue }
targets:
  - name: "bad name"
    host: db
    database: app
    user: u
    password: { env: A, file: /b }
    tls: { mode: sometimes }
identities:
  serviceAccounts:
    - { name: ci, tokenHash: "md5:abc" }
`
      )
    )
    expect(r.code).toBe(1)
    const lines = r.stderr.trim().split("\n")
    expect(lines[0]).toMatch(/bad\.yaml: invalid configuration$/)
    expect(lines.slice(1).map((l) => l.trim().split(":")[0]).sort()).toEqual(
      ["identities.serviceAccounts.0.tokenHash", "listen.colour", "listen.port", "policy", "targets.0.name", "targets.0.password", "targets.0.tls.mode"].sort()
    )
    expect(r.stderr).not.toMatch(/\bat .*\.(ts|js):\d+/)
  })

  it("reports relations between fields: duplicate targets, plaintext without TLS", async () => {
    const target = `{ name: app, host: db, database: app, user: u, password: { value: p } }`
    const r = await sluice("check-config", file("rel.yaml", `listen: { host: 0.0.0.0 }\npolicy: { file: p.yaml }\ntargets: [${target}, ${target}]\n`))
    expect(r.code).toBe(1)
    expect(r.stderr).toContain("targets.1.name: duplicate target name \"app\"")
    expect(r.stderr).toContain("listen: clients send their token as a cleartext password")
  })

  it("reports YAML syntax errors with their position", async () => {
    const r = await sluice("check-config", file("syntax.yaml", "listen: [1,\n"))
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/YAML line \d+, column \d+/)
  })

  it("reports a missing file plainly", async () => {
    const r = await sluice("check-config", join(dir, "missing.yaml"))
    expect(r.code).toBe(1)
    expect(r.stderr).toContain("cannot read file: ENOENT")
  })

  it("start refuses a bad config with the same report and exits 1", async () => {
    const r = await sluice("start", "--config", file("bad2.yaml", "targets: []\n"))
    expect(r.code).toBe(1)
    expect(r.stderr).toContain("targets: at least one target is required")
  })
})

describe("policy files", () => {
  const target = `[{ name: app, host: db, database: app, user: u, password: { value: p } }]`
  const config = (policyFile: string) => file("with-policy.yaml", `listen: { loopbackOnly: true }\npolicy: { file: ${policyFile} }\ntargets: ${target}\n`)

  it("check-config validates the policy the config names, and explains its problems by path", async () => {
    const policy = file(
      "bad-policy.yaml",
      `
version: 1
defaults: { "*": { action: permit } }
rules:
  - id: a
    match: { classes: [read, sideways], relations: ["a.b.c"], regex: "(" }
    action: allow
  - id: a
    action: block
  - id: p
    match: { principal: { claims: [{ claim: repo, equals: x, matches: y }] } }
    action: hold
`
    )
    const r = await sluice("check-config", config(policy))
    expect(r.code).toBe(1)
    expect(r.stdout).toContain("with-policy.yaml: OK")
    const lines = r.stderr.trim().split("\n")
    expect(lines[0]).toMatch(/bad-policy\.yaml: invalid policy$/)
    expect(lines.slice(1).map((l) => l.trim().split(":")[0]).sort()).toEqual(
      ["defaults.*.action", "rules.0.match.classes.1", "rules.0.match.regex", "rules.0.match.relations.0", "rules.2.match.principal.claims.0"].sort()
    )
  })

  it("reports duplicate rule ids once the rest is valid", async () => {
    const r = await sluice("check-policy", file("dup.yaml", "version: 1\nrules:\n  - { id: a, action: allow }\n  - { id: a, action: block }\n"))
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('rules.1.id: duplicate rule id "a"')
  })

  it("refuses audit sizes that cannot work: negative, too big for a Kafka message, or recording on a rule that does not allow", async () => {
    // bytes: an event past Kafka's default 1 MB message limit could never be delivered
    const negative = await sluice("check-policy", file("rec-neg.yaml", "version: 1\nrecording: { rows: -1, bytes: 300000 }\nauditTextBytes: 2000000\n"))
    expect(negative.code).toBe(1)
    expect(negative.stderr).toContain("recording.rows: Expected a value greater than or equal to 0")
    expect(negative.stderr).toContain("recording.bytes: Expected a value between 1 and 262144")
    expect(negative.stderr).toContain("auditTextBytes: Expected a value between 256 and 262144")
    const onBlock = await sluice("check-policy", file("rec-block.yaml", "version: 1\nrules:\n  - { id: a, action: block, record: { rows: 5 } }\n"))
    expect(onBlock.code).toBe(1)
    expect(onBlock.stderr).toContain("rules.0.record: only an allow rule records results; this rule blocks")
  })

  it("accepts the checked-in example policies", async () => {
    for (const f of ["policy.example.yaml", "deploy/policy.yaml"]) {
      const r = await sluice("check-policy", new URL(`../../${f}`, import.meta.url).pathname)
      expect(r.code).toBe(0)
      expect(r.stdout).toMatch(/OK \(policy, \d+ rules, \d+ masks\)/)
    }
  })

  it("refuses masks that cannot work: a column glob without a table, keep without partial, a duplicate id, and mask as a rule action", async () => {
    const shape = await sluice("check-policy", file("mask-shape.yaml", "version: 1\nmasks:\n  - { id: m, columns: [email] }\n"))
    expect(shape.code).toBe(1)
    expect(shape.stderr).toContain("masks.0.columns.0: expected table.column or schema.table.column")
    const keep = await sluice("check-policy", file("mask-keep.yaml", "version: 1\nmasks:\n  - { id: n, columns: [t.c], method: redact, keep: 3 }\n"))
    expect(keep.code).toBe(1)
    expect(keep.stderr).toContain("masks.0.keep: only the partial method keeps characters; this mask uses redact")
    const dup = await sluice("check-policy", file("mask-dup.yaml", "version: 1\nmasks:\n  - { id: m, columns: [t.c] }\n  - { id: m, columns: [t.d] }\n"))
    expect(dup.code).toBe(1)
    expect(dup.stderr).toContain('masks.1.id: duplicate mask id "m"')
    const action = await sluice("check-policy", file("mask-action.yaml", "version: 1\nrules:\n  - { id: a, action: mask }\n"))
    expect(action.code).toBe(1)
    expect(action.stderr).toContain('rules.0.action: Expected "allow" | "block" | "hold"')
  })

  it("start refuses to run without a valid policy", async () => {
    const r = await sluice("start", "--config", config(file("empty.yaml", "version: 2\n")))
    expect(r.code).toBe(1)
    expect(r.stderr).toContain("invalid policy")
    expect(r.stderr).toContain("version:")
  })
})

describe("sluice hash-token", () => {
  it("hashes a given token the way the config expects", async () => {
    const r = await sluice("hash-token", "abc")
    expect(r.stdout.trim()).toBe(hashToken("abc"))
  })

  it("makes a fresh token and its hash", async () => {
    const r = await sluice("hash-token")
    const [, token] = /token:\s+(\S+)/.exec(r.stdout) ?? []
    const [, hash] = /tokenHash:\s+(\S+)/.exec(r.stdout) ?? []
    expect(token).toMatch(/^sluice_[A-Za-z0-9_-]{43}$/)
    expect(hash).toBe(hashToken(token!))
  })
})
