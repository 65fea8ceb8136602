/**
 * The Confluent Schema Registry client, against a registry fake served by this test over
 * loopback: it speaks the REST calls the client makes (register a schema under a subject,
 * fetch a schema by id) and gives, on demand, the failures a real registry gives only
 * sometimes (status codes, error bodies, answers that are not the API's). The client
 * against a real registry (Apicurio's Confluent-compatible API) is proved in
 * test/integration/audit-registry.test.ts; the encoding, by fastavro in
 * test/integration/audit-interop.test.ts.
 */
import { createServer, type IncomingMessage, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect, Result } from "effect"
import fc from "fast-check"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { CURRENT_SCHEMA, decodeConfluent, encodeConfluent, schemaVersion, type SchemaVersion } from "../../src/sinks/avro.ts"
import { parsingCanonicalForm } from "../../src/sinks/avro-spec.ts"
import type { AuditEvent } from "../../src/sinks/events.ts"
import { makeRegistryClient, type RegistryError, subjectForTopic } from "../../src/sinks/registry.ts"

interface Seen {
  readonly method: string
  readonly path: string
  readonly contentType: string | undefined
  readonly authorization: string | undefined
  readonly body: string
}

/** Ids are global and per canonical schema, as in Confluent's registry; a few subjects misbehave on purpose. */
class FakeRegistry {
  readonly seen: Array<Seen> = []
  readonly ids = new Map<string, number>()
  readonly schemas = new Map<number, string>()
  readonly subjects = new Map<string, Array<number>>()
  server: Server | undefined
  url = ""

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      void this.handle(req).then(({ status, body }) => {
        if (status === 0) return // never answer
        res.writeHead(status, { "content-type": "application/vnd.schemaregistry.v1+json" })
        res.end(body)
      })
    })
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve))
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections()
    await new Promise((resolve) => this.server?.close(resolve))
  }

  reset(): void {
    this.seen.length = 0
  }

  private async handle(req: IncomingMessage): Promise<{ status: number; body: string }> {
    const chunks: Array<Buffer> = []
    for await (const c of req) chunks.push(c as Buffer)
    const body = Buffer.concat(chunks).toString("utf8")
    const path = req.url ?? ""
    this.seen.push({ method: req.method ?? "", path, contentType: req.headers["content-type"], authorization: req.headers.authorization, body })
    const error = (status: number, code: number, message: string) => ({ status, body: JSON.stringify({ error_code: code, message }) })

    const register = /^\/subjects\/([^/]+)\/versions$/.exec(path)
    if (req.method === "POST" && register !== null) {
      const subject = decodeURIComponent(register[1]!)
      if (subject === "incompatible-value") return error(409, 409, "Schema being registered is incompatible with an earlier schema for subject \"incompatible-value\"")
      if (subject === "down-value") return error(500, 50001, "Error in the backend data store")
      if (subject === "html-value") return { status: 200, body: "<html>proxy login</html>" }
      if (subject === "badid-value") return { status: 200, body: JSON.stringify({ id: "seven" }) }
      if (subject === "slow-value") return { status: 0, body: "" }
      let canonical: string
      try {
        const request = JSON.parse(body) as { schema?: unknown }
        if (typeof request.schema !== "string") return error(422, 42201, "Either the input schema or one its references is invalid")
        canonical = parsingCanonicalForm(JSON.parse(request.schema))
        let id = this.ids.get(canonical)
        if (id === undefined) {
          id = 100 + this.ids.size
          this.ids.set(canonical, id)
          this.schemas.set(id, request.schema)
        }
        const versions = this.subjects.get(subject) ?? []
        if (!versions.includes(id)) versions.push(id)
        this.subjects.set(subject, versions)
        return { status: 200, body: JSON.stringify({ id }) }
      } catch {
        return error(422, 42201, "Invalid schema")
      }
    }
    const byId = /^\/schemas\/ids\/(\d+)$/.exec(path)
    if (req.method === "GET" && byId !== null) {
      const schema = this.schemas.get(Number(byId[1]))
      return schema === undefined ? error(404, 40403, "Schema not found") : { status: 200, body: JSON.stringify({ schema }) }
    }
    return error(404, 404, "HTTP 404 Not Found")
  }
}

const registry = new FakeRegistry()
beforeAll(() => registry.start())
afterAll(() => registry.stop())
beforeEach(() => registry.reset())

const run = <A>(effect: Effect.Effect<A, RegistryError>) => Effect.runPromise(Effect.result(effect))
const failure = async <A>(effect: Effect.Effect<A, RegistryError>): Promise<RegistryError> => {
  const r = await run(effect)
  if (Result.isSuccess(r)) throw new Error(`expected a failure, got ${String(r.success)}`)
  return r.failure
}

const event: AuditEvent = {
  eventId: "0b8f9a52-7d0e-4c55-8f0e-3f43b8f1e7a1",
  sessionId: "9d6f0c3e-2a51-4bb8-9a53-9a2f0b7f8c10",
  sequence: 4,
  time: 1_790_000_000_000_000,
  gateway: "gw-1",
  payload: { _tag: "Decision", statementId: 2, verdict: "block", ruleId: "no-ddl", reason: "DDL is not allowed", policyVersion: "3f2a9c0d1e4b" },
}

describe("schema registry client", () => {
  it("registers the newest schema under <topic>-value, as JSON text in {schema}, and caches the id", async () => {
    const client = makeRegistryClient({ url: registry.url })
    const id = await run(client.registerForTopic("sluice.audit"))
    expect(id).toEqual(Result.succeed(expect.any(Number)))
    expect(registry.seen).toHaveLength(1)
    const [request] = registry.seen
    expect(request!.method).toBe("POST")
    expect(request!.path).toBe("/subjects/sluice.audit-value/versions")
    expect(request!.contentType).toBe("application/vnd.schemaregistry.v1+json")
    expect(JSON.parse(request!.body)).toEqual({ schema: CURRENT_SCHEMA.json })
    // the registry holds the full schema, docs included
    expect(JSON.parse(JSON.parse(request!.body).schema).fields[0].doc).toMatch(/metadata.uid/)

    expect(await run(client.registerForTopic("sluice.audit"))).toEqual(id)
    expect(client.cachedId("sluice.audit-value")).toBe(Result.getOrThrow(id))
    expect(registry.seen).toHaveLength(1)
  })

  it("subject names are <topic>-value, path-encoded, whatever the topic", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 1, maxLength: 40, unit: "grapheme" }), async (topic) => {
        registry.reset()
        const client = makeRegistryClient({ url: `${registry.url}/` })
        const r = await run(client.registerForTopic(topic))
        expect(Result.isSuccess(r)).toBe(true)
        expect(registry.seen).toHaveLength(1)
        expect(decodeURIComponent(/^\/subjects\/([^/]+)\/versions$/.exec(registry.seen[0]!.path)![1]!)).toBe(subjectForTopic(topic))
        expect(registry.subjects.get(`${topic}-value`)).toEqual([Result.getOrThrow(r)])
      }),
      { numRuns: 40 },
    )
  })

  it("each schema version is registered once per subject; ids come from the registry", async () => {
    const client = makeRegistryClient({ url: registry.url })
    const v2: SchemaVersion = schemaVersion({ ...JSON.parse(CURRENT_SCHEMA.json), fields: [...JSON.parse(CURRENT_SCHEMA.json).fields, { name: "tenant", type: "string", default: "" }] }, CURRENT_SCHEMA.version + 1)
    const a = Result.getOrThrow(await run(client.register("a-value")))
    const b = Result.getOrThrow(await run(client.register("b-value")))
    const a2 = Result.getOrThrow(await run(client.register("a-value", v2)))
    expect(b).toBe(a) // same schema, same id, across subjects
    expect(a2).not.toBe(a)
    await run(client.register("a-value"))
    await run(client.register("a-value", v2))
    expect(registry.seen).toHaveLength(3)
  })

  it("the Confluent frame carries the registered id, and the registry's schema decodes it", async () => {
    const client = makeRegistryClient({ url: registry.url })
    const id = Result.getOrThrow(await run(client.registerForTopic("audit")))
    const message = encodeConfluent(event, id)
    // a reader that only has the message and the registry
    const reader = makeRegistryClient({ url: registry.url })
    const text = Result.getOrThrow(await run(reader.schemaById(message.readUInt32BE(1))))
    const writer = schemaVersion(JSON.parse(text), 0)
    expect(writer.fingerprintHex).toBe(CURRENT_SCHEMA.fingerprintHex)
    expect(decodeConfluent(message, (i) => (i === id ? writer : undefined))).toEqual(Result.succeed(event))
    // cached: a second lookup makes no request
    const before = registry.seen.length
    await run(reader.schemaById(id))
    expect(registry.seen.length).toBe(before)
  })

  it("refusals are RegistryRejected with the registry's status and error_code", async () => {
    const client = makeRegistryClient({ url: registry.url })
    const conflict = await failure(client.registerForTopic("incompatible"))
    expect(conflict).toMatchObject({ _tag: "RegistryRejected", status: 409, errorCode: 409 })
    expect(conflict.message).toMatch(/answered 409 \(error_code 409\): Schema being registered is incompatible/)
    expect(await failure(client.registerForTopic("down"))).toMatchObject({ _tag: "RegistryRejected", status: 500, errorCode: 50001 })
    expect(await failure(client.schemaById(987654))).toMatchObject({ _tag: "RegistryRejected", status: 404, errorCode: 40403 })
    // nothing cached for a refusal: the next call asks again
    registry.reset()
    await failure(client.registerForTopic("incompatible"))
    expect(registry.seen).toHaveLength(1)
  })

  it("answers that are not the registry's are RegistryBadResponse", async () => {
    const client = makeRegistryClient({ url: registry.url })
    expect(await failure(client.registerForTopic("html"))).toMatchObject({ _tag: "RegistryBadResponse" })
    expect(await failure(client.registerForTopic("badid"))).toMatchObject({ _tag: "RegistryBadResponse" })
  })

  it("no registry, or no answer in time, is RegistryUnavailable", async () => {
    const closed = createServer()
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve))
    const port = (closed.address() as AddressInfo).port
    await new Promise((resolve) => closed.close(resolve))
    expect(await failure(makeRegistryClient({ url: `http://127.0.0.1:${port}` }).registerForTopic("audit"))).toMatchObject({ _tag: "RegistryUnavailable" })

    const started = Date.now()
    const slow = await failure(makeRegistryClient({ url: registry.url, timeoutMs: 200 }).registerForTopic("slow"))
    expect(slow).toMatchObject({ _tag: "RegistryUnavailable" })
    expect(Date.now() - started).toBeLessThan(5_000)
  })

  it("sends basic auth when configured", async () => {
    const client = makeRegistryClient({ url: registry.url, basicAuth: { username: "sluice", password: "s3cr:t" } })
    await run(client.registerForTopic("auth"))
    expect(registry.seen[0]!.authorization).toBe(`Basic ${Buffer.from("sluice:s3cr:t").toString("base64")}`)
  })
})
