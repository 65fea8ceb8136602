/**
 * The relay's audit ordering, on scripted peers: a statement's events are spooled before
 * the server gets the statement, and its result's before the client gets the answer (so a
 * gateway killed at any moment has recorded whatever a client saw answered).
 */
import { Deferred, Effect } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import type * as Socket from "effect/socket/Socket"
import { beforeAll, describe, expect, it } from "vitest"
import { encodeBackend } from "../../src/codecs/pg/backend.ts"
import { Framer } from "../../src/codecs/pg/framing.ts"
import { encodeFrontend, type FrontendMessage } from "../../src/codecs/pg/frontend.ts"
import { loadClassifier, makeClassifier } from "../../src/rules/classify/index.ts"
import type { Policy } from "../../src/rules/policy/schema.ts"
import type { SessionAudit } from "../../src/sinks/audit-log.ts"
import type { Payload } from "../../src/sinks/events.ts"
import { FramedReader } from "../../src/streams/pg/framed-reader.ts"
import { type Peer, relay } from "../../src/streams/pg/relay.ts"
import { sessionState } from "./pg-session-fixture.ts"

let classifier: ReturnType<typeof makeClassifier>
beforeAll(async () => {
  await loadClassifier()
  classifier = makeClassifier({ cacheSize: 100 })
})

const policy: Policy = {
  version: 1,
  defaults: { "*": { action: "allow" } },
  rules: [],
  masks: [],
  maxStatementBytes: 1 << 20,
  recording: { rows: 0, bytes: 65536 },
  auditTextBytes: 65536,
  auditLiterals: "keep"
}

/** A peer whose reads come from `reads` in turn (each waits for its gate) and whose writes are logged. */
const peer = (
  name: string,
  log: Array<string>,
  reads: ReadonlyArray<{ readonly gate: Deferred.Deferred<void>; readonly bytes: Uint8Array }>,
  onWrite: Effect.Effect<void>
): Peer => {
  let next = 0
  const pull: Effect.Effect<NonEmptyReadonlyArray<Uint8Array>, Socket.SocketError> = Effect.suspend(() => {
    const read = reads[next++]
    return read === undefined ? Effect.never : Effect.as(Deferred.await(read.gate), [read.bytes] as const)
  })
  const wrote = (chunks: ReadonlyArray<Uint8Array | string | Socket.CloseEvent>) =>
    Effect.andThen(
      Effect.sync(() => void log.push(`${name} got ${chunks.length} frame(s)`)),
      onWrite
    )
  return {
    reader: new FramedReader({ pull, upgrade: () => Effect.void }, new Framer(1 << 20, { startup: false })),
    writer: { write: (chunk) => wrote([chunk]), writeAll: (chunks) => wrote(chunks) }
  }
}

const tags = (payloads: ReadonlyArray<Payload>) => payloads.map((p) => p._tag).join(",")

describe("relay audit ordering", () => {
  // at once: the recording is done when recordNow returns; later: only once its Effect has run
  it.each(["at once", "later"])("spools a statement's events before the server sees it, and its result's before the client sees the answer (recorded %s)", async (when) => {
    const log: Array<string> = []
    const spool = (payloads: ReadonlyArray<Payload>) => void (payloads.length > 0 && log.push(`spooled ${tags(payloads)}`))
    const spooled = (payloads: ReadonlyArray<Payload>) => Effect.sync(() => spool(payloads))
    const now = (payloads: ReadonlyArray<Payload>) => (when === "at once" ? spool(payloads) : spooled(payloads))
    const audit: SessionAudit = {
      sessionId: "s",
      refusal: () => undefined,
      record: (p) => spooled([p]),
      recordAll: spooled,
      recordDone: spooled,
      recordNow: now,
      recordDoneNow: now
    }
    const state = { ...sessionState(policy, (sql) => classifier.classify(sql)), audit }
    const frontend = (m: FrontendMessage) => encodeFrontend(m)
    await Effect.runPromise(
      Effect.gen(function* () {
        const queryRead = yield* Deferred.make<void>()
        const serverGotQuery = yield* Deferred.make<void>()
        const clientGotAnswer = yield* Deferred.make<void>()
        yield* Deferred.succeed(queryRead, undefined)
        const answer = Buffer.concat([
          encodeBackend({ _tag: "RowDescription", fields: [{ name: "one", tableOid: 0, columnAttr: 0, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 }] }),
          encodeBackend({ _tag: "DataRow", values: [Buffer.from("1")] }),
          encodeBackend({ _tag: "CommandComplete", tag: "SELECT 1" }),
          encodeBackend({ _tag: "ReadyForQuery", status: "I" })
        ])
        const client = peer("client", log, [
          { gate: queryRead, bytes: frontend({ _tag: "Query", sql: "SELECT 1 AS one" }) },
          { gate: clientGotAnswer, bytes: frontend({ _tag: "Terminate" }) }
        ], Deferred.succeed(clientGotAnswer, undefined).pipe(Effect.asVoid))
        const server = peer("server", log, [{ gate: serverGotQuery, bytes: answer }], Deferred.succeed(serverGotQuery, undefined).pipe(Effect.asVoid))
        yield* relay(client, server, state)
      })
    )
    expect(log).toEqual([
      "spooled Statement,Decision",
      "server got 1 frame(s)", // the query
      "spooled Result",
      "client got 4 frame(s)", // the answer: RowDescription .. ReadyForQuery
      "server got 1 frame(s)" // Terminate
    ])
  })
})
