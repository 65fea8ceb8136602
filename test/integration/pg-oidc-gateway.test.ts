/**
 * OIDC identities end to end (issue 3, "Proof"): the gateway verifies JWTs presented as
 * the password against a JWKS this test serves over HTTP on loopback (keys generated
 * here), maps GitHub-Actions-shaped claims to groups, and the policy decides by
 * `principal.groups` and `principal.claims`: only the production environment may write.
 * psql and node-postgres connect with the tokens; the same statements get different
 * decisions by token. A second issuer (Kubernetes-shaped, EdDSA, JWKS from a file) and the
 * static service-account tokens work beside it. Bad tokens get FATAL 28P01.
 */
import { randomUUID } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer, type Server } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { exportJWK, generateKeyPair, type CryptoKey, type JWK, SignJWT } from "jose"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { defaultConfig, type Gateway, startGateway, TOKEN } from "./support/gateway.ts"
import { closeClient, directQuery, logEntries, rejection, runCommand } from "./support/policy-clients.ts"

const T = "sluice_oidc_items"
const GH_ISS = "https://token.actions.githubusercontent.test"
const K8S_ISS = "https://kubernetes.default.svc.test"

interface Key {
  readonly kid: string
  readonly alg: "RS256" | "EdDSA"
  readonly privateKey: CryptoKey
  readonly jwk: JWK
}

const makeKey = async (alg: Key["alg"]): Promise<Key> => {
  const kid = `${alg}-${randomUUID().slice(0, 8)}`
  const { publicKey, privateKey } = await generateKeyPair(alg)
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } }
}

const now = () => Math.floor(Date.now() / 1000)

/** A GitHub Actions OIDC token's claims, for a job of `repository` in `environment` (if any). */
const githubClaims = (repository: string, environment: string | undefined, extra: Record<string, unknown> = {}) => {
  const [owner] = repository.split("/")
  return {
    iss: GH_ISS,
    aud: "sluice",
    sub: environment === undefined ? `repo:${repository}:ref:refs/heads/main` : `repo:${repository}:environment:${environment}`,
    repository,
    repository_owner: owner,
    repository_id: "123456",
    ref: "refs/heads/main",
    workflow: "deploy",
    job_workflow_ref: `${repository}/.github/workflows/deploy.yml@refs/heads/main`,
    event_name: "push",
    runner_environment: "github-hosted",
    ...(environment === undefined ? {} : { environment }),
    iat: now(),
    nbf: now(),
    exp: now() + 300,
    ...extra
  }
}

const sign = (key: Key, claims: Record<string, unknown>) =>
  new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT" }).sign(key.privateKey)

const POLICY = {
  version: 1,
  defaults: { "*": { action: "block", message: "no rule allows this" } },
  rules: [
    {
      id: "production-writes",
      description: "deploy jobs of my-org's repositories, in the production environment, may write",
      match: { principal: { groups: ["repo:my-org/*"], claims: [{ claim: "environment", equals: "production" }] }, classes: ["write"] },
      action: "allow"
    },
    {
      id: "ci-read-only",
      match: { principal: { groups: ["org:my-org"] }, classes: ["write", "ddl", "copy-in"] },
      action: "block",
      message: "only the production environment may write"
    },
    { id: "reads", match: { principal: { groups: ["org:my-org", "ns:reporting", "ci"] }, classes: ["read", "transaction", "utility"] }, action: "allow" },
    { id: "service-account-writes", match: { principal: { subjects: ["ci-job"], kinds: ["machine"] }, classes: ["write"], relations: ["public.sluice_oidc_*"] }, action: "allow" }
  ]
}

describe("OIDC identities through the gateway", () => {
  let gw: Gateway
  let jwksServer: Server
  let jwksUrl: string
  let dir: string
  let gh: Key
  let k8s: Key
  let attacker: Key
  let jwksHits = 0
  const tokens: Record<string, string> = {}

  const serverValue = async (id: number) => (await directQuery<{ v: string }>("superuser", `SELECT v FROM ${T} WHERE id = $1`, [id]))[0]?.v

  /** node-postgres with a JWT (or a service-account token) as the password. */
  const connectWith = async (password: string): Promise<pg.Client> => {
    const c = new pg.Client({ ...gw.connection(password), query_timeout: 5_000 })
    c.on("error", () => {})
    await c.connect()
    return c
  }

  const withClient = async <A>(password: string, f: (c: pg.Client) => Promise<A>): Promise<A> => {
    const c = await connectWith(password)
    try {
      return await f(c)
    } finally {
      await closeClient(c)
    }
  }

  const psql = (password: string, sql: string) =>
    runCommand("psql", ["-X", "-At", "-v", "VERBOSITY=verbose", "-d", `host=127.0.0.1 port=${gw.port} user=ci dbname=app sslmode=disable`, "-c", sql], {
      env: { PGPASSWORD: password }
    })

  beforeAll(async () => {
    ;[gh, k8s, attacker] = await Promise.all([makeKey("RS256"), makeKey("EdDSA"), makeKey("RS256")])
    jwksServer = createServer((req, res) => {
      jwksHits++
      if (req.url !== "/.well-known/jwks") return void res.writeHead(404).end()
      res.writeHead(200, { "content-type": "application/jwk-set+json" }).end(JSON.stringify({ keys: [gh.jwk] }))
    })
    await new Promise<void>((resolve) => jwksServer.listen(0, "127.0.0.1", resolve))
    jwksUrl = `http://127.0.0.1:${(jwksServer.address() as { port: number }).port}/.well-known/jwks`
    dir = mkdtempSync(join(tmpdir(), "sluice-oidc-"))
    const jwksFile = join(dir, "k8s-jwks.json")
    writeFileSync(jwksFile, JSON.stringify({ keys: [k8s.jwk] }))

    await directQuery("superuser", `DROP TABLE IF EXISTS ${T}`)
    await directQuery("backend", `CREATE TABLE ${T} (id int PRIMARY KEY, v text NOT NULL); INSERT INTO ${T} VALUES (1, 'one'), (2, 'two'), (3, 'three')`)

    gw = await startGateway((port) => {
      const base = defaultConfig(port)
      return {
        ...base,
        identities: {
          ...base.identities,
          oidc: [
            {
              issuer: GH_ISS,
              audiences: ["sluice"],
              jwksUrl,
              require: [{ claim: "repository_owner", oneOf: ["my-org", "partner-org"] }],
              groups: [
                { claim: "repository", prefix: "repo:" },
                { claim: "repository_owner", prefix: "org:" },
                { claim: "environment", prefix: "env:" }
              ]
            },
            {
              issuer: K8S_ISS,
              audiences: ["sluice"],
              jwksFile,
              algorithms: ["EdDSA"],
              groups: [
                { claim: "kubernetes.io.namespace", prefix: "ns:" },
                { claim: "kubernetes.io.serviceaccount.name", prefix: "sa:" }
              ]
            }
          ]
        }
      }
    }, POLICY)

    tokens.production = await sign(gh, githubClaims("my-org/app", "production"))
    tokens.staging = await sign(gh, githubClaims("my-org/app", "staging"))
    tokens.noEnvironment = await sign(gh, githubClaims("my-org/app", undefined))
    // A production job, but of an org whose repositories the policy does not name.
    tokens.partnerProduction = await sign(gh, githubClaims("partner-org/app", "production"))
    tokens.kubernetes = await sign(k8s, {
      iss: K8S_ISS,
      aud: ["sluice"],
      sub: "system:serviceaccount:reporting:nightly-report",
      "kubernetes.io": { namespace: "reporting", serviceaccount: { name: "nightly-report", uid: randomUUID() } },
      iat: now(),
      exp: now() + 600
    })
  })

  afterAll(async () => {
    await gw?.stop()
    await directQuery("superuser", `DROP TABLE IF EXISTS ${T}`)
    await new Promise<void>((resolve) => (jwksServer ? jwksServer.close(() => resolve()) : resolve()))
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it("psql with a production deploy token: reads and writes", async () => {
    const read = await psql(tokens.production!, `SELECT v FROM ${T} WHERE id = 1`)
    expect(read).toMatchObject({ code: 0, stderr: "", stdout: "one\n" })
    const write = await psql(tokens.production!, `UPDATE ${T} SET v = 'deployed' WHERE id = 1`)
    expect(write).toMatchObject({ code: 0, stderr: "", stdout: "UPDATE 1\n" })
    expect(await serverValue(1)).toBe("deployed")
    expect(jwksHits).toBe(1) // fetched once, then cached
  })

  it("psql with a staging token of the same repository: reads, but the write is blocked by the claim rule", async () => {
    const read = await psql(tokens.staging!, `SELECT v FROM ${T} WHERE id = 1`)
    expect(read).toMatchObject({ code: 0, stderr: "", stdout: "deployed\n" })
    const write = await psql(tokens.staging!, `UPDATE ${T} SET v = 'from-staging' WHERE id = 2`)
    expect(write.code).toBe(1)
    expect(write.stderr.split("\n")[0]).toBe("ERROR:  42501: only the production environment may write (rule ci-read-only)")
    expect(await serverValue(2)).toBe("two")
  })

  it("node-postgres: the same statements, decided differently by token", async () => {
    const attempt = (token: string) =>
      withClient(token, async (c) => {
        const read = await c.query(`SELECT count(*)::int AS n FROM ${T}`).then((r) => r.rows[0].n as number, (e: pg.DatabaseError) => `${e.code}: ${e.message}`)
        const write = await c
          .query(`UPDATE ${T} SET v = $1 WHERE id = $2`, ["by-token", 3])
          .then((r) => `UPDATE ${r.rowCount}`, (e: pg.DatabaseError) => `${e.code}: ${e.message}`)
        return { read, write }
      })
    expect(await attempt(tokens.staging!)).toEqual({ read: 3, write: "42501: only the production environment may write (rule ci-read-only)" })
    expect(await attempt(tokens.noEnvironment!)).toEqual({ read: 3, write: "42501: only the production environment may write (rule ci-read-only)" })
    expect(await attempt(tokens.partnerProduction!)).toEqual({
      read: "42501: no rule allows this (rule default:*)",
      write: "42501: no rule allows this (rule default:*)"
    })
    expect(await attempt(tokens.kubernetes!)).toEqual({ read: 3, write: "42501: no rule allows this (rule default:*)" })
    expect(await serverValue(3)).toBe("three")
    expect(await attempt(tokens.production!)).toEqual({ read: 3, write: "UPDATE 1" })
    expect(await serverValue(3)).toBe("by-token")
  })

  it("a static service-account token still works beside OIDC, with its own rules", async () => {
    const r = await withClient(TOKEN, async (c) => {
      await c.query(`UPDATE public.${T} SET v = 'by-service-account' WHERE id = 2`)
      return (await c.query(`SELECT v FROM ${T} WHERE id = 2`)).rows
    })
    expect(r).toEqual([{ v: "by-service-account" }])
    const refusals = await withClient(TOKEN, async (c) => {
      // The server says the session's path is just public (there is no "$user" schema), so
      // the allow rule for public.* covers the unqualified name too.
      expect((await c.query(`UPDATE ${T} SET v = 'unqualified' WHERE id = 2`)).rowCount).toBe(1)
      // Its write rule covers only the test tables, and no DDL.
      return [await rejection(c.query("CREATE TEMP TABLE scratch (x int)"))]
    })
    for (const e of refusals) expect(e).toMatchObject({ code: "42501", message: "no rule allows this (rule default:*)" })
    expect(await serverValue(2)).toBe("unqualified")
  })

  it("each session is logged with the token's subject; each block with its rule", () => {
    const subjects = logEntries(gw.logs(), "session started").map((e) => /subject: '([^']*)'/.exec(e)?.[1])
    expect(new Set(subjects)).toEqual(
      new Set([
        "repo:my-org/app:environment:production",
        "repo:my-org/app:environment:staging",
        "repo:my-org/app:ref:refs/heads/main",
        "repo:partner-org/app:environment:production",
        "system:serviceaccount:reporting:nightly-report",
        "ci-job"
      ])
    )
    const rules = logEntries(gw.logs(), "statement blocked").map((e) => /rule: '([^']*)'/.exec(e)?.[1])
    expect(new Set(rules)).toEqual(new Set(["ci-read-only", "default:*"]))
  })

  describe("tokens that are refused: FATAL 28P01, and the log says why", () => {
    const refused = async (password: string): Promise<{ code: string | undefined; severity: string | undefined; message: string }> => {
      const c = new pg.Client(gw.connection(password))
      c.on("error", () => {})
      try {
        await c.connect()
      } catch (e) {
        const err = e as pg.DatabaseError
        return { code: err.code, severity: err.severity, message: err.message }
      }
      await closeClient(c)
      throw new Error("expected the connection to be refused")
    }
    const FATAL = { code: "28P01", severity: "FATAL", message: 'password authentication failed for user "ci"' }
    // The log reaches the test through the gateway's stdout pipe, which can trail the FATAL
    // the client already has: wait for it (CI once read the log before the line was in it).
    const reasonLogged = async (pattern: RegExp) => {
      const deadline = Date.now() + 10_000
      let reasons = logEntries(gw.logs(), "client authentication failed").join("\n")
      while (!pattern.test(reasons) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 25))
        reasons = logEntries(gw.logs(), "client authentication failed").join("\n")
      }
      expect(reasons).toMatch(pattern)
    }

    it("an expired token", async () => {
      const token = await sign(gh, githubClaims("my-org/app", "production", { iat: now() - 900, nbf: now() - 900, exp: now() - 120 }))
      expect(await refused(token)).toEqual(FATAL)
      const r = await psql(token, "SELECT 1")
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(/failed: FATAL:  (28P01: )?password authentication failed for user "ci"\n/)
      await reasonLogged(/the token expired at/)
    })

    it("a token for another audience", async () => {
      expect(await refused(await sign(gh, githubClaims("my-org/app", "production", { aud: "https://github.com/my-org" })))).toEqual(FATAL)
      await reasonLogged(/aud "https:\/\/github.com\/my-org" contains none of the accepted audiences/)
    })

    it("a token of an owner the issuer's require rule does not accept", async () => {
      expect(await refused(await sign(gh, githubClaims("someone-else/app", "production")))).toEqual(FATAL)
      await reasonLogged(/claim "repository_owner" is "someone-else"/)
    })

    it("a token signed by another key under the issuer's kid", async () => {
      const forged = await new SignJWT(githubClaims("my-org/app", "production")).setProtectedHeader({ alg: "RS256", kid: gh.kid }).sign(attacker.privateKey)
      expect(await refused(forged)).toEqual(FATAL)
      await reasonLogged(/signature verification failed/)
    })

    it("a token from an issuer that is not configured, and a wrong service-account token", async () => {
      const stranger = await sign(attacker, { ...githubClaims("my-org/app", "production"), iss: "https://elsewhere.test" })
      expect(await refused(stranger)).toEqual(FATAL)
      expect(await refused("not-a-valid-service-token")).toEqual(FATAL)
      await reasonLogged(/iss "https:\/\/elsewhere.test" is not a configured issuer/)
    })

    it("refusals did not disturb the gateway, and never fetched the JWKS again", async () => {
      expect(gw.alive()).toBe(true)
      expect(await withClient(tokens.production!, async (c) => (await c.query("SELECT 'ok' AS s")).rows)).toEqual([{ s: "ok" }])
      // Refused before any key lookup, or (the forged token) with a kid that was known.
      expect(jwksHits).toBe(1)
    })
  })
})
