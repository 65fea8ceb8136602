/**
 * The PG pipeline stages, without a socket: what they forward, what they track, and
 * that the server's process id never reaches the client in a notification.
 */
import { Result } from "effect"
import * as fc from "fast-check"
import { describe, expect, it } from "vitest"
import { encodeBackend } from "../../src/codecs/pg/backend.ts"
import { type Frame, Framer } from "../../src/codecs/pg/framing.ts"
import { decodeFrontend, encodeFrontend } from "../../src/codecs/pg/frontend.ts"
import type { SessionState } from "../../src/streams/pg/session-state.ts"
import { classify, decide, observeBackend, route } from "../../src/streams/pg/stages.ts"
import { backendMessage, cstring, frontendMessage, int32 } from "./pg-arbitraries.ts"

const state = (serverProcessId = 4242, clientProcessId = 9_000_001): SessionState => ({
  id: "s",
  principal: { subject: "ci", kind: "machine", groups: [], issuer: "static" },
  target: undefined as never,
  serverProcessId,
  clientProcessId,
  transactionStatus: "I",
  terminating: false,
  serverEnded: false
})

const frameOf = (bytes: Uint8Array): Frame => {
  const frames = new Framer(1 << 30, { startup: false }).push(bytes)
  if (!Array.isArray(frames) || frames.length !== 1) throw new Error("expected one frame")
  return frames[0]!
}

describe("client → server stages", () => {
  it("forward every well-formed frontend frame to the server as its original bytes", () => {
    fc.assert(
      fc.property(frontendMessage, (m) => {
        const s = state()
        const frame = frameOf(encodeFrontend(m))
        const classified = classify(frame, s)
        expect(classified._tag).toBe("Classified")
        if (classified._tag !== "Classified") return
        const routed = route(decide(classified, s), s)
        expect(routed._tag).toBe("ToServer")
        expect(routed.bytes).toBe(frame.bytes)
        expect(s.terminating).toBe(m._tag === "Terminate")
      }),
      { numRuns: 500 }
    )
  })

  it("extract the statement of every Query and Parse", () => {
    fc.assert(
      fc.property(cstring(40), cstring(8), (sql, name) => {
        const q = classify(frameOf(encodeFrontend({ _tag: "Query", sql })), state())
        expect(q._tag === "Classified" && q.statement).toEqual({ _tag: "SimpleQuery", sql })
        const p = classify(frameOf(encodeFrontend({ _tag: "Parse", name, sql, paramTypes: [] })), state())
        expect(p._tag === "Classified" && p.statement).toEqual({ _tag: "Parse", name, sql })
      })
    )
  })

  it("refuse a Query or Parse whose body does not decode, and only those", () => {
    const typed = (type: number, body: Uint8Array) => {
      const bytes = new Uint8Array(5 + body.length)
      bytes[0] = type
      new DataView(bytes.buffer).setInt32(1, 4 + body.length)
      bytes.set(body, 5)
      return frameOf(bytes)
    }
    // No terminating NUL; a Parse cut off before its parameter count.
    expect(classify(typed(0x51, Buffer.from("SELECT 1")), state())._tag).toBe("Malformed")
    expect(classify(typed(0x50, Buffer.from("s\0SELECT 1\0")), state())._tag).toBe("Malformed")
    fc.assert(
      fc.property(fc.constantFrom(0x51, 0x50), fc.uint8Array({ maxLength: 30 }), (type, body) => {
        const c = classify(typed(type, body), state())
        expect(c._tag).toBe(Result.isSuccess(decodeFrontend(typed(type, body))) ? "Classified" : "Malformed")
      })
    )
  })
})

describe("server → client stage", () => {
  it("forwards every backend frame untouched, except notifications from the session's own server process", () => {
    fc.assert(
      fc.property(backendMessage, (m) => {
        const s = state()
        const frame = frameOf(encodeBackend(m))
        const out = observeBackend(frame, s)
        if (m._tag === "NotificationResponse" && m.processId === s.serverProcessId) return
        expect(out).toBe(frame.bytes)
      }),
      { numRuns: 1000 }
    )
  })

  it("tracks the transaction status of every ReadyForQuery", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom("I", "T", "E") as fc.Arbitrary<"I" | "T" | "E">, { minLength: 1 }), (statuses) => {
        const s = state()
        for (const status of statuses) observeBackend(frameOf(encodeBackend({ _tag: "ReadyForQuery", status })), s)
        expect(s.transactionStatus).toBe(statuses.at(-1))
      })
    )
  })

  it("gives the client its own process id in notifications its session sent", () => {
    fc.assert(
      fc.property(int32, cstring(), cstring(), (other, channel, payload) => {
        const s = state()
        const own = observeBackend(frameOf(encodeBackend({ _tag: "NotificationResponse", processId: s.serverProcessId, channel, payload })), s)
        expect([...own]).toEqual([...encodeBackend({ _tag: "NotificationResponse", processId: s.clientProcessId, channel, payload })])
        fc.pre(other !== s.serverProcessId)
        const foreign = encodeBackend({ _tag: "NotificationResponse", processId: other, channel, payload })
        expect([...observeBackend(frameOf(foreign), s)]).toEqual([...foreign])
      })
    )
  })
})
