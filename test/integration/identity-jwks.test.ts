/**
 * OIDC JWT identity against a JWKS served over HTTP on loopback by this test, with keys
 * generated here (RS256, ES256, EdDSA). Every rejection rule of issue 3 has a case; time
 * runs on Effect's TestClock, so expiry, skew and the JWKS refresh schedule are exact.
 */
import { createHmac, randomUUID } from "node:crypto"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Fiber, Layer, Result, Schema } from "effect"
import { TestClock } from "effect/testing"
import { exportJWK, exportSPKI, generateKeyPair, type CryptoKey, type JWK, SignJWT } from "jose"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { layerIdentity } from "../../src/rules/identity/layer.ts"
import { OidcConfig } from "../../src/rules/identity/oidc-config.ts"
import { oidcVerifier } from "../../src/rules/identity/oidc.ts"
import type { Principal } from "../../src/rules/identity/principal.ts"
import { hashToken } from "../../src/rules/identity/service-accounts.ts"
import { IdentityVerifier } from "../../src/rules/identity/verifier.ts"

// ---- keys -------------------------------------------------------------------

type Alg = "RS256" | "ES256" | "EdDSA" | "RS384"

interface TestKey {
  readonly kid: string
  readonly alg: Alg
  readonly privateKey: CryptoKey
  readonly publicKey: CryptoKey
  readonly jwk: JWK
}

const makeKey = async (alg: Alg, kid = `${alg}-${randomUUID().slice(0, 8)}`): Promise<TestKey> => {
  const { publicKey, privateKey } = await generateKeyPair(alg)
  return { kid, alg, privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } }
}

const jwks = (...keys: ReadonlyArray<TestKey>) => ({ keys: keys.map((k) => k.jwk) })

// ---- the JWKS server ----------------------------------------------------------

interface JwksServer {
  readonly url: (path: string) => string
  readonly serve: (path: string, document: unknown) => void
  readonly fail: (path: string, status: number) => void
  readonly hang: (path: string) => void
  readonly hits: (path: string) => number
  readonly stop: () => Promise<void>
  readonly start: () => Promise<void>
}

const startJwksServer = async (): Promise<JwksServer> => {
  const documents = new Map<string, unknown>()
  const failures = new Map<string, number>()
  const hanging = new Set<string>()
  const held: Array<ServerResponse> = []
  const hits = new Map<string, number>()
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? "/"
    hits.set(path, (hits.get(path) ?? 0) + 1)
    if (hanging.has(path)) return void held.push(res)
    const status = failures.get(path)
    if (status !== undefined) return void res.writeHead(status).end("unavailable")
    const document = documents.get(path)
    if (document === undefined) return void res.writeHead(404).end()
    res.writeHead(200, { "content-type": "application/jwk-set+json" }).end(JSON.stringify(document))
  }
  let server: Server = createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as { port: number }).port
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    serve: (path, document) => {
      failures.delete(path)
      documents.set(path, document)
    },
    fail: (path, status) => void failures.set(path, status),
    hang: (path) => void hanging.add(path),
    hits: (path) => hits.get(path) ?? 0,
    stop: async () => {
      held.splice(0).forEach((r) => r.destroy())
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeAllConnections()
      await closed
    },
    start: async () => {
      server = createServer(handler)
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject)
        server.listen(port, "127.0.0.1", resolve)
      })
    }
  }
}

// ---- tokens -----------------------------------------------------------------

/** TestClock time for every test: a whole second, so exp arithmetic is exact. */
const T0 = Math.floor(Date.now() / 1000) * 1000
const NOW = T0 / 1000
const ISS = "https://issuer.example.test"

const sign = (key: TestKey, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}) =>
  new SignJWT({ iss: ISS, aud: "sluice", sub: "ci-job", iat: NOW, exp: NOW + 300, ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT", ...header })
    .sign(key.privateKey)

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")

/** A token with any header and signature bytes we like. */
const handMade = (header: Record<string, unknown>, claims: Record<string, unknown>, signature: (input: string) => string) => {
  const input = `${b64(header)}.${b64({ iss: ISS, aud: "sluice", sub: "ci-job", iat: NOW, exp: NOW + 300, ...claims })}`
  return `${input}.${signature(input)}`
}

// ---- running ----------------------------------------------------------------

const issuers = (...entries: ReadonlyArray<Record<string, unknown>>) => Schema.decodeUnknownSync(OidcConfig)(entries)

type Verifier = ReturnType<typeof oidcVerifier>

/** Runs a scenario on a TestClock set to T0. */
const run = <A, E>(program: Effect.Effect<A, E>): Promise<A> =>
  Effect.runPromise(
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      return yield* program
    }).pipe(Effect.provide(TestClock.layer()))
  )

const accept = (v: Verifier, token: string): Effect.Effect<Principal> =>
  v.verify({ user: "u", secret: token }).pipe(Effect.catch((e) => Effect.die(new Error(`expected acceptance, got: ${e.reason}`))))

const refusal = (v: Verifier, token: string): Effect.Effect<string> =>
  v.verify({ user: "u", secret: token }).pipe(
    Effect.flatMap((p) => Effect.die(new Error(`expected a refusal, got principal ${JSON.stringify(p)}`))),
    Effect.catch((e) => Effect.succeed(e.reason))
  )

const accepted = (v: Verifier, token: string) => run(accept(v, token))
const refused = (v: Verifier, token: string) => run(refusal(v, token))

let server: JwksServer
let rsa: TestKey
let ec: TestKey
let ed: TestKey
let pathCounter = 0
const freshPath = () => `/jwks/${++pathCounter}`

/** One issuer served at a fresh path, with the given keys published. */
const setup = (keys: ReadonlyArray<TestKey>, extra: Record<string, unknown> = {}) => {
  const path = freshPath()
  server.serve(path, jwks(...keys))
  const verifier = oidcVerifier(issuers({ issuer: ISS, audiences: ["sluice"], jwksUrl: server.url(path), ...extra }))
  return { path, verifier }
}

beforeAll(async () => {
  server = await startJwksServer()
  ;[rsa, ec, ed] = await Promise.all([makeKey("RS256"), makeKey("ES256"), makeKey("EdDSA")])
})
afterAll(() => server.stop())

// ---- accepting ----------------------------------------------------------------

describe("OIDC JWTs: accepted", () => {
  it("RS256, ES256 and EdDSA tokens verify against the JWKS, one fetch for all", async () => {
    const { path, verifier } = setup([rsa, ec, ed])
    for (const key of [rsa, ec, ed]) {
      const p = await accepted(verifier, await sign(key, { groups: ["readers"] }))
      expect(p).toMatchObject({ subject: "ci-job", kind: "machine", issuer: ISS, groups: [] })
      expect(p.claims?.groups).toEqual(["readers"])
    }
    expect(server.hits(path)).toBe(1)
  })

  it("an aud array is accepted when it contains one accepted audience", async () => {
    const { verifier } = setup([rsa], { audiences: ["other", "sluice"] })
    await accepted(verifier, await sign(rsa, { aud: ["https://kubernetes.default.svc", "sluice"] }))
  })

  it("principal kind human and a custom subject claim", async () => {
    const { verifier } = setup([ec], { kind: "human", subjectClaim: "email" })
    const p = await accepted(verifier, await sign(ec, { email: "ada@example.com" }))
    expect(p).toMatchObject({ subject: "ada@example.com", kind: "human" })
    expect(await refused(verifier, await sign(ec, {}))).toMatch(/subject claim "email" is missing/)
  })
})

// ---- refusing: shape and algorithm -------------------------------------------

describe("OIDC JWTs: algorithm rules", () => {
  it("alg none is refused, even with a valid-looking payload and an empty signature", async () => {
    const { path, verifier } = setup([rsa])
    const none = handMade({ alg: "none", typ: "JWT" }, {}, () => "")
    expect(await refused(verifier, none)).toMatch(/alg "none" is never accepted/)
    expect(await refused(verifier, handMade({ alg: "NONE" }, {}, () => ""))).toMatch(/never accepted/)
    expect(server.hits(path)).toBe(0)
  })

  it("HS256 signed with the issuer's public key as the HMAC secret (key confusion) is refused", async () => {
    const { path, verifier } = setup([rsa])
    const pem = await exportSPKI(rsa.publicKey)
    for (const secret of [pem, JSON.stringify(rsa.jwk), Buffer.from(rsa.jwk.n!, "base64url")]) {
      const token = handMade({ alg: "HS256", kid: rsa.kid, typ: "JWT" }, {}, (input) => createHmac("sha256", secret).update(input).digest("base64url"))
      expect(await refused(verifier, token)).toMatch(/alg "HS256" is never accepted: HMAC/)
    }
    expect(server.hits(path)).toBe(0)
  })

  it("plain HS256 / HS512 tokens are refused", async () => {
    const { verifier } = setup([rsa])
    const secret = new TextEncoder().encode("a shared secret that is long enough for HS256!")
    for (const alg of ["HS256", "HS512"]) {
      const token = await new SignJWT({ iss: ISS, aud: "sluice", sub: "x", exp: NOW + 60 }).setProtectedHeader({ alg }).sign(secret)
      expect(await refused(verifier, token)).toMatch(new RegExp(`alg "${alg}" is never accepted`))
    }
  })

  it("an algorithm outside the issuer's allow-list is refused, and unknown algorithms too", async () => {
    const rs384 = await makeKey("RS384")
    const onlyEs = setup([rsa, ec], { algorithms: ["ES256"] })
    await accepted(onlyEs.verifier, await sign(ec))
    expect(await refused(onlyEs.verifier, await sign(rsa))).toMatch(/alg RS256 is not in this issuer's allowed algorithms \(ES256\)/)
    const byDefault = setup([rs384])
    expect(await refused(byDefault.verifier, await sign(rs384))).toMatch(/alg RS384 is not in this issuer's allowed algorithms \(RS256, ES256, EdDSA\)/)
    expect(await refused(byDefault.verifier, handMade({ alg: "XY999" }, {}, () => "c2ln"))).toMatch(/unsupported alg "XY999"/)
    expect(server.hits(onlyEs.path) + server.hits(byDefault.path)).toBe(1)
  })

  it("a token whose alg differs from its key's alg finds no key", async () => {
    // An ES256 token naming the RSA key's kid: the JWKS has no EC key with that kid.
    const { verifier } = setup([rsa, ec])
    const token = await sign(ec, {}, { kid: rsa.kid })
    expect(await refused(verifier, token)).toMatch(new RegExp(`no key in JWKS .* matches kid "${rsa.kid}" and alg ES256`))
  })

  it("a tampered signature or payload is refused", async () => {
    const { verifier } = setup([rsa, ec, ed])
    for (const key of [rsa, ec, ed]) {
      const [h, p, s] = (await sign(key)).split(".") as [string, string, string]
      const flipped = Buffer.from(s, "base64url")
      flipped[0] = flipped[0]! ^ 0x01
      expect(await refused(verifier, `${h}.${p}.${flipped.toString("base64url")}`)).toMatch(/signature verification failed/)
      const forged = b64({ iss: ISS, aud: "sluice", sub: "admin", iat: NOW, exp: NOW + 300 })
      expect(await refused(verifier, `${h}.${forged}.${s}`)).toMatch(/signature verification failed/)
    }
  })

  it("malformed tokens are refused with the reason", async () => {
    const { verifier } = setup([rsa])
    expect(await refused(verifier, "abc.def.ghi")).toMatch(/malformed JWT: the header/)
    expect(await refused(verifier, `${b64({ alg: "RS256" })}.${b64([1, 2])}.c2ln`)).toMatch(/malformed JWT: the payload/)
    expect(await refused(verifier, `${b64({ typ: "JWT" })}.${b64({})}.c2ln`)).toMatch(/header has no alg/)
    expect(await refused(verifier, `${b64({ alg: "RS256" })}.${"A".repeat(17000)}.c2ln`)).toMatch(/longer than/)
  })
})

// ---- refusing: registered claims ----------------------------------------------

describe("OIDC JWTs: iss, aud and time rules", () => {
  it("wrong or missing iss", async () => {
    const { path, verifier } = setup([rsa])
    expect(await refused(verifier, await sign(rsa, { iss: "https://evil.example.test" }))).toMatch(/iss "https:\/\/evil.example.test" is not a configured issuer/)
    expect(await refused(verifier, await sign(rsa, { iss: `${ISS}/` }))).toMatch(/is not a configured issuer/)
    expect(await refused(verifier, await sign(rsa, { iss: undefined }))).toMatch(/no iss claim/)
    expect(server.hits(path)).toBe(0)
  })

  it("wrong, missing or malformed aud", async () => {
    const { verifier } = setup([rsa])
    expect(await refused(verifier, await sign(rsa, { aud: "other" }))).toMatch(/aud "other" contains none of the accepted audiences \["sluice"\]/)
    expect(await refused(verifier, await sign(rsa, { aud: ["a", "b"] }))).toMatch(/contains none of the accepted audiences/)
    expect(await refused(verifier, await sign(rsa, { aud: undefined }))).toMatch(/no aud claim/)
    expect(await refused(verifier, await sign(rsa, { aud: [1] }))).toMatch(/neither a string nor an array of strings/)
  })

  it("missing exp is refused; a non-numeric exp too", async () => {
    const { verifier } = setup([rsa])
    expect(await refused(verifier, await sign(rsa, { exp: undefined }))).toMatch(/no exp claim; tokens without an expiry are refused/)
    expect(await refused(verifier, await sign(rsa, { exp: "tomorrow" }))).toMatch(/exp "tomorrow" is not a NumericDate/)
  })

  it("expired: within the skew accepted, at or beyond it refused", async () => {
    const { verifier } = setup([rsa]) // clockSkewSeconds: 30
    await accepted(verifier, await sign(rsa, { iat: NOW - 600, exp: NOW - 29 }))
    expect(await refused(verifier, await sign(rsa, { iat: NOW - 600, exp: NOW - 30 }))).toMatch(/expired .* 30 s ago, beyond the 30 s clock skew/)
    expect(await refused(verifier, await sign(rsa, { iat: NOW - 600, exp: NOW - 3600 }))).toMatch(/expired/)
    const strict = setup([rsa], { clockSkewSeconds: 0 })
    await accepted(strict.verifier, await sign(rsa, { exp: NOW + 1 }))
    expect(await refused(strict.verifier, await sign(rsa, { exp: NOW }))).toMatch(/expired/)
  })

  it("a token accepted now is refused once the clock passes exp + skew", async () => {
    const { verifier } = setup([ed])
    const token = await sign(ed, { exp: NOW + 60 })
    const reasons = await run(Effect.gen(function*() {
      yield* accept(verifier, token)
      yield* TestClock.adjust("89 seconds")
      yield* accept(verifier, token)
      yield* TestClock.adjust("1 second")
      return yield* refusal(verifier, token)
    }))
    expect(reasons).toMatch(/expired/)
  })

  it("nbf in the future: within the skew accepted, beyond refused", async () => {
    const { verifier } = setup([ec])
    await accepted(verifier, await sign(ec, { nbf: NOW + 30 }))
    expect(await refused(verifier, await sign(ec, { nbf: NOW + 31 }))).toMatch(/not valid before .* \(nbf\), 31 s from now, beyond the 30 s clock skew/)
  })

  it("iat in the future: within the skew accepted, beyond refused", async () => {
    const { verifier } = setup([ec])
    await accepted(verifier, await sign(ec, { iat: NOW + 30 }))
    expect(await refused(verifier, await sign(ec, { iat: NOW + 31 }))).toMatch(/issued in the future: iat .* is 31 s from now/)
    expect(await refused(verifier, await sign(ec, { iat: "now" }))).toMatch(/iat "now" is not a NumericDate/)
  })

  it("maxTokenAgeSeconds: old tokens and tokens without iat are refused", async () => {
    const { verifier } = setup([rsa], { maxTokenAgeSeconds: 120, clockSkewSeconds: 10 })
    await accepted(verifier, await sign(rsa, { iat: NOW - 130 }))
    expect(await refused(verifier, await sign(rsa, { iat: NOW - 131 }))).toMatch(/issued 131 s ago .* more than maxTokenAgeSeconds 120/)
    expect(await refused(verifier, await sign(rsa, { iat: undefined }))).toMatch(/no iat claim, which maxTokenAgeSeconds requires/)
  })

  it("time checks happen before the key lookup: an expired token with an unknown kid fetches nothing", async () => {
    const { path, verifier } = setup([rsa])
    const stranger = await makeKey("RS256")
    expect(await refused(verifier, await sign(stranger, { exp: NOW - 3600 }))).toMatch(/expired/)
    expect(server.hits(path)).toBe(0)
  })
})

// ---- the JWKS cache -------------------------------------------------------------

describe("JWKS: cache, unknown kid, rate bound, outages", () => {
  it("an unknown kid triggers one reload, which finds the rotated-in key", async () => {
    const { path, verifier } = setup([rsa])
    const next = await makeKey("RS256")
    const newToken = await sign(next)
    await run(Effect.gen(function*() {
      yield* accept(verifier, yield* Effect.promise(() => sign(rsa)))
      expect(server.hits(path)).toBe(1)
      server.serve(path, jwks(rsa, next)) // the IdP rotates
      yield* TestClock.adjust("30 seconds") // minRefreshIntervalSeconds
      const p = yield* accept(verifier, newToken)
      expect(p.subject).toBe("ci-job")
      expect(server.hits(path)).toBe(2)
      // both keys are now cached: no more fetches
      yield* accept(verifier, newToken)
      yield* accept(verifier, yield* Effect.promise(() => sign(rsa)))
      expect(server.hits(path)).toBe(2)
    }))
  })

  it("a key rotated in less than minRefreshInterval after the last fetch waits for the interval", async () => {
    const { path, verifier } = setup([rsa])
    const next = await makeKey("RS256")
    const newToken = await sign(next)
    await run(Effect.gen(function*() {
      yield* accept(verifier, yield* Effect.promise(() => sign(rsa)))
      server.serve(path, jwks(rsa, next))
      yield* TestClock.adjust("29 seconds")
      expect(yield* refusal(verifier, newToken)).toMatch(/not reloaded: the last attempt was 29 s ago and reloads are at least 30 s apart/)
      expect(server.hits(path)).toBe(1)
      yield* TestClock.adjust("1 second")
      yield* accept(verifier, newToken)
      expect(server.hits(path)).toBe(2)
    }))
  })

  it("a burst of unknown kids, concurrent or sequential, costs at most one fetch per interval", async () => {
    const { path, verifier } = setup([ec])
    const strangers = await Promise.all(Array.from({ length: 5 }, () => makeKey("ES256")))
    const tokens = await Promise.all(Array.from({ length: 40 }, (_, i) => sign(strangers[i % 5]!, {}, { kid: `random-${i}` })))
    await run(Effect.gen(function*() {
      yield* accept(verifier, yield* Effect.promise(() => sign(ec)))
      expect(server.hits(path)).toBe(1)
      yield* TestClock.adjust("31 seconds")
      const reasons = yield* Effect.forEach(tokens, (t) => refusal(verifier, t), { concurrency: "unbounded" })
      expect(server.hits(path)).toBe(2)
      expect(reasons.every((r) => /no key in JWKS/.test(r))).toBe(true)
      for (let round = 0; round < 3; round++) {
        for (const t of tokens) yield* refusal(verifier, t)
        yield* TestClock.adjust("10 seconds")
      }
      // three rounds at +31, +41 and +51 s: nothing beyond the fetch at +31 s
      expect(server.hits(path)).toBe(2)
      // at +61 s, 30 s after that fetch: exactly one more, however many tokens
      for (const t of tokens) yield* refusal(verifier, t)
      expect(server.hits(path)).toBe(3)
      // the known key is unaffected throughout
      yield* accept(verifier, yield* Effect.promise(() => sign(ec)))
    }))
  })

  it("keys are refetched after cacheMaxAgeSeconds", async () => {
    const { path, verifier } = setup([ed], { cacheMaxAgeSeconds: 60, minRefreshIntervalSeconds: 5 })
    const token = await sign(ed, { exp: NOW + 3600 })
    await run(Effect.gen(function*() {
      yield* accept(verifier, token)
      yield* TestClock.adjust("59 seconds")
      yield* accept(verifier, token)
      expect(server.hits(path)).toBe(1)
      yield* TestClock.adjust("1 second")
      yield* accept(verifier, token)
      expect(server.hits(path)).toBe(2)
    }))
  })

  it("a key removed from the JWKS stops verifying after the cache expires", async () => {
    const { path, verifier } = setup([rsa], { cacheMaxAgeSeconds: 60 })
    const token = await sign(rsa, { exp: NOW + 3600 })
    await run(Effect.gen(function*() {
      yield* accept(verifier, token)
      server.serve(path, jwks(ec)) // revoked
      yield* TestClock.adjust("60 seconds")
      expect(yield* refusal(verifier, token)).toMatch(/no key in JWKS/)
    }))
  })

  it("JWKS server down: refused with the reason, at most one attempt per interval, recovers when it is back", async () => {
    const { path, verifier } = setup([rsa])
    const token = await sign(rsa, { exp: NOW + 3600 })
    await server.stop()
    try {
      const first = await run(Effect.gen(function*() {
        const down = yield* refusal(verifier, token)
        const again = yield* refusal(verifier, token)
        return [down, again] as const
      }))
      expect(first[0]).toMatch(/JWKS http:\/\/127\.0\.0\.1:\d+\/jwks\/\d+ is unavailable: connection failed \(ECONNREFUSED\)/)
      expect(first[1]).toMatch(/unavailable: the last attempt, 0 s ago, failed: connection failed \(ECONNREFUSED\); next attempt allowed in 30 s/)
    } finally {
      await server.start()
    }
    await run(Effect.gen(function*() {
      // the clock has not moved: still within the interval, so no request yet
      expect(yield* refusal(verifier, token)).toMatch(/next attempt allowed in/)
      expect(server.hits(path)).toBe(0)
      yield* TestClock.adjust("30 seconds")
      yield* accept(verifier, token)
      expect(server.hits(path)).toBe(1)
    }))
  })

  it("cached keys keep working through an outage until they expire; then refused until the JWKS is back", async () => {
    const { path, verifier } = setup([ec], { cacheMaxAgeSeconds: 120 })
    const token = await sign(ec, { exp: NOW + 3600 })
    await run(accept(verifier, token))
    server.fail(path, 503)
    await run(Effect.gen(function*() {
      yield* TestClock.adjust("119 seconds")
      yield* accept(verifier, token)
      yield* TestClock.adjust("1 second")
      expect(yield* refusal(verifier, token)).toMatch(/is unavailable: HTTP status 503, expected 200/)
      server.serve(path, jwks(ec))
      yield* TestClock.adjust("30 seconds")
      yield* accept(verifier, token)
    }))
    expect(server.hits(path)).toBe(3)
  })

  it("a JWKS endpoint that does not answer times out (fetchTimeoutSeconds) without blocking", async () => {
    const path = freshPath()
    server.hang(path)
    const verifier = oidcVerifier(issuers({ issuer: ISS, audiences: ["sluice"], jwksUrl: server.url(path), fetchTimeoutSeconds: 2 }))
    const token = await sign(rsa)
    const reason = await run(Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(refusal(verifier, token))
      // the event loop is free while the fetch is pending
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))
      yield* TestClock.adjust("2 seconds")
      return yield* Fiber.join(fiber)
    }))
    expect(reason).toMatch(/is unavailable: no response within 2 s/)
  })

  it("a redirect, a non-JWKS document and private keys in the JWKS are refused", async () => {
    const redirect = setup([rsa])
    server.fail(redirect.path, 302)
    expect(await refused(redirect.verifier, await sign(rsa))).toMatch(/HTTP status 302, expected 200; redirects are not followed/)
    const notJwks = setup([rsa])
    server.serve(notJwks.path, { hello: "world" })
    expect(await refused(notJwks.verifier, await sign(rsa))).toMatch(/not a JSON Web Key Set/)
    const privateKeys = setup([rsa])
    const { privateKey } = await generateKeyPair("RS256", { extractable: true })
    server.serve(privateKeys.path, { keys: [{ ...(await exportJWK(privateKey)), kid: rsa.kid, alg: "RS256" }] })
    expect(await refused(privateKeys.verifier, await sign(rsa))).toMatch(/unusable: .*public keys/)
  })
})

// ---- claims: predicates and groups ------------------------------------------

const GITHUB = "https://token.actions.githubusercontent.com"
const K8S = "https://kubernetes.default.svc.cluster.local"

const githubClaims = (over: Record<string, unknown> = {}) => ({
  iss: GITHUB,
  aud: "sluice",
  sub: "repo:my-org/app:environment:prod",
  repository: "my-org/app",
  repository_owner: "my-org",
  repository_owner_id: "123",
  job_workflow_ref: "my-org/app/.github/workflows/deploy.yml@refs/heads/main",
  environment: "prod",
  ref: "refs/heads/main",
  event_name: "push",
  runner_environment: "github-hosted",
  ...over
})

const k8sClaims = (over: Record<string, unknown> = {}) => ({
  iss: K8S,
  aud: [K8S, "sluice"],
  sub: "system:serviceaccount:payments:reporter",
  "kubernetes.io": {
    namespace: "payments",
    pod: { name: "reporter-7d9f", uid: "3f1c" },
    serviceaccount: { name: "reporter", uid: "9a2b" }
  },
  ...over
})

describe("claims: predicates and group mappings", () => {
  it("claim predicates: equals, oneOf and anchored matches must all hold", async () => {
    const { verifier } = setup([rsa], {
      issuer: GITHUB,
      require: [
        { claim: "repository_owner", equals: "my-org" },
        { claim: "ref", oneOf: ["refs/heads/main", "refs/heads/release"] },
        { claim: "repository", matches: "my-org/[a-z-]+" }
      ]
    })
    const ok = await accepted(verifier, await sign(rsa, githubClaims()))
    expect(ok.claims?.repository_owner).toBe("my-org")
    expect(await refused(verifier, await sign(rsa, githubClaims({ repository_owner: "evil-org" })))).toMatch(
      /issuer https:\/\/token.actions.githubusercontent.com: claim "repository_owner" is "evil-org", expected it to equal "my-org"/
    )
    expect(await refused(verifier, await sign(rsa, githubClaims({ ref: "refs/heads/feature" })))).toMatch(/claim "ref" is "refs\/heads\/feature", expected it to be one of/)
    expect(await refused(verifier, await sign(rsa, githubClaims({ repository: "evil/my-org/app" })))).toMatch(/claim "repository" .* expected it to match/)
    expect(await refused(verifier, await sign(rsa, githubClaims({ repository: "my-org/app/../x" })))).toMatch(/expected it to match/)
    expect(await refused(verifier, await sign(rsa, githubClaims({ repository_owner: undefined })))).toMatch(/required claim "repository_owner" is missing/)
    expect(await refused(verifier, await sign(rsa, githubClaims({ repository_owner: ["my-org-x"] })))).toMatch(/repository_owner/)
  })

  it("a GitHub Actions token maps repository, workflow, environment, owner and ref to groups", async () => {
    const { verifier } = setup([rsa], {
      issuer: GITHUB,
      require: [{ claim: "repository_owner", equals: "my-org" }],
      groups: [
        { claim: "repository", prefix: "repo:" },
        { claim: "job_workflow_ref", prefix: "workflow:" },
        { claim: "environment", prefix: "env:" },
        { claim: "repository_owner", prefix: "org:" },
        { claim: "ref", prefix: "ref:" },
        { claim: "no_such_claim", prefix: "x:" }
      ]
    })
    const p = await accepted(verifier, await sign(rsa, githubClaims()))
    expect(p).toMatchObject({
      subject: "repo:my-org/app:environment:prod",
      kind: "machine",
      issuer: GITHUB,
      groups: [
        "repo:my-org/app",
        "workflow:my-org/app/.github/workflows/deploy.yml@refs/heads/main",
        "env:prod",
        "org:my-org",
        "ref:refs/heads/main"
      ]
    })
    // no environment: no env group, and nothing else changes
    const q = await accepted(verifier, await sign(rsa, githubClaims({ environment: undefined })))
    expect(q.groups).not.toContain("env:prod")
    expect(q.groups).toHaveLength(4)
  })

  it("a Kubernetes token (jwksFile) maps namespace and service account through dotted paths", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sluice-jwks-"))
    const file = join(dir, "jwks.json")
    writeFileSync(file, JSON.stringify(jwks(ec)))
    const verifier = oidcVerifier(issuers({
      issuer: K8S,
      audiences: ["sluice"],
      jwksFile: file,
      require: [{ claim: "kubernetes.io.namespace", oneOf: ["payments", "billing"] }],
      groups: [
        { claim: "kubernetes.io.namespace", prefix: "k8s-ns:" },
        { claim: "kubernetes.io.serviceaccount.name", prefix: "k8s-sa:" }
      ]
    }))
    const p = await accepted(verifier, await sign(ec, k8sClaims(), { typ: undefined }))
    expect(p).toMatchObject({ subject: "system:serviceaccount:payments:reporter", issuer: K8S, groups: ["k8s-ns:payments", "k8s-sa:reporter"] })
    expect(await refused(verifier, await sign(ec, k8sClaims({ "kubernetes.io": { namespace: "kube-system", serviceaccount: { name: "admin" } } })))).toMatch(
      /claim "kubernetes.io.namespace" is "kube-system", expected it to be one of \["payments","billing"\]/
    )
    // rotation by rewriting the file: picked up on an unknown kid after the interval
    const next = await makeKey("ES256")
    writeFileSync(file, JSON.stringify(jwks(ec, next)))
    const token = await sign(next, k8sClaims())
    await run(Effect.gen(function*() {
      yield* TestClock.adjust("30 seconds")
      yield* accept(verifier, token)
    }))
    // a missing file fails closed with the reason
    const missing = oidcVerifier(issuers({ issuer: K8S, audiences: ["sluice"], jwksFile: join(dir, "nope.json") }))
    expect(await refused(missing, await sign(ec, k8sClaims()))).toMatch(/JWKS file .*nope.json is unavailable: cannot read it \(ENOENT\)/)
  })

  it("several issuers at once: each token is checked against its own issuer's keys only", async () => {
    const ghPath = freshPath()
    const edPath = freshPath()
    server.serve(ghPath, jwks(rsa))
    server.serve(edPath, jwks(ed))
    const dir = mkdtempSync(join(tmpdir(), "sluice-jwks-"))
    writeFileSync(join(dir, "k8s.json"), JSON.stringify(jwks(ec)))
    const verifier = oidcVerifier(issuers(
      { issuer: GITHUB, audiences: ["sluice"], jwksUrl: server.url(ghPath), groups: [{ claim: "repository", prefix: "repo:" }] },
      { issuer: K8S, audiences: ["sluice"], jwksFile: join(dir, "k8s.json"), groups: [{ claim: "kubernetes.io.namespace", prefix: "ns:" }] },
      { issuer: ISS, audiences: ["db-gateway"], jwksUrl: server.url(edPath), kind: "human", groups: [{ claim: "groups" }] }
    ))
    expect((await accepted(verifier, await sign(rsa, githubClaims()))).groups).toEqual(["repo:my-org/app"])
    expect((await accepted(verifier, await sign(ec, k8sClaims()))).groups).toEqual(["ns:payments"])
    const human = await accepted(verifier, await sign(ed, { aud: "db-gateway", groups: ["dba", "oncall"] }))
    expect(human).toMatchObject({ kind: "human", issuer: ISS, groups: ["dba", "oncall"] })
    // a GitHub-issued claim set signed with the Kubernetes key: GitHub's JWKS has no such key
    expect(await refused(verifier, await sign(ec, githubClaims()))).toMatch(/issuer https:\/\/token.actions.githubusercontent.com: no key in JWKS/)
    // ...even when it names the GitHub key's kid
    expect(await refused(verifier, await sign(ec, githubClaims(), { kid: rsa.kid }))).toMatch(/no key in JWKS/)
    // per-issuer audiences
    expect(await refused(verifier, await sign(ed, { aud: "sluice" }))).toMatch(/issuer https:\/\/issuer.example.test: aud "sluice" contains none/)
    expect(server.hits(ghPath)).toBe(1)
    expect(server.hits(edPath)).toBe(1)
  })
})

// ---- the combined verifier ----------------------------------------------------

describe("layerIdentity: service-account tokens and OIDC JWTs together", () => {
  it("routes by the secret's shape", async () => {
    const path = freshPath()
    server.serve(path, jwks(rsa))
    const saToken = "sluice_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
    const layer = layerIdentity({
      serviceAccounts: [{ name: "batch", tokenHash: hashToken(saToken), groups: ["etl"] }],
      oidc: issuers({ issuer: ISS, audiences: ["sluice"], jwksUrl: server.url(path) })
    })
    const verifyWith = (l: Layer.Layer<IdentityVerifier>, secret: string) =>
      Effect.runPromise(
        Effect.gen(function*() {
          const v = yield* IdentityVerifier
          return yield* Effect.result(v.verify({ user: "u", secret }))
        }).pipe(Effect.provide(l))
      )
    const verify = (secret: string) => verifyWith(layer, secret)
    const sa = await verify(saToken)
    expect(Result.isSuccess(sa) && sa.success).toEqual({ subject: "batch", kind: "machine", groups: ["etl"], issuer: "static" })
    const now = Math.floor(Date.now() / 1000)
    const jwt = await sign(rsa, { exp: now + 300, iat: now })
    const viaJwt = await verify(jwt)
    expect(Result.isSuccess(viaJwt) && viaJwt.success.issuer).toBe(ISS)
    const wrong = await verify("sluice_not-a-known-token")
    expect(Result.isFailure(wrong) && wrong.failure.reason).toMatch(/no service account has this token/)
    // a JWT never reaches the service accounts, even if its hash were configured
    const shadow = await verifyWith(layerIdentity({ serviceAccounts: [{ name: "x", tokenHash: hashToken(jwt), groups: [] }], oidc: [] }), jwt)
    expect(Result.isFailure(shadow) && shadow.failure.reason).toMatch(/a JWT was presented, but no OIDC issuer is configured/)
  })
})
