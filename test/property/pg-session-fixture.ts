/** A PG session's state and frames, without a socket, for the stage and recording suites. */
import { Effect } from "effect"
import { type Frame, Framer } from "../../src/codecs/pg/framing.ts"
import { encodeFrontend, type FrontendMessage } from "../../src/codecs/pg/frontend.ts"
import type { Classification } from "../../src/rules/classify/index.ts"
import type { Policy } from "../../src/rules/policy/schema.ts"
import type { LoadedPolicy } from "../../src/rules/policy/store.ts"
import { unaudited } from "../../src/sinks/audit-log.ts"
import { ResponseTracker } from "../../src/streams/pg/responses.ts"
import type { SessionState } from "../../src/streams/pg/session-state.ts"
import { classify, decide, route } from "../../src/streams/pg/stages.ts"

/** A session under `policy`, or under whatever policy the function returns when asked (a reload). */
export const sessionState = (
  policy: Policy | (() => LoadedPolicy),
  classifySql: (sql: string) => Classification,
  serverProcessId = 4242,
  clientProcessId = 9_000_001
): SessionState => ({
  id: "s",
  target: undefined as never,
  enforcer: {
    principal: { subject: "ci", kind: "machine", groups: [], issuer: "static" },
    target: { name: "app", database: "app" },
    backendUser: "sluice_backend",
    policy: typeof policy === "function" ? policy : () => ({ policy, version: "test" }),
    classify: classifySql
  },
  enforcement: { searchPath: ["public"], searchPathVersion: 0, userFunctions: new Set(), parsed: new Map(), sqlPrepared: new Map(), cursors: new Map(), parserUnsafe: undefined },
  audit: unaudited("s"),
  // the stages take the catalog's answers from their caller (see relay.ts); a session here never asks
  catalog: { relations: () => Effect.die("the fixture has no catalog"), invalidate: () => undefined },
  responses: new ResponseTracker(),
  statements: { next: 0, named: new Map(), portals: new Map() },
  discardingUntilSync: false,
  serverProcessId,
  clientProcessId,
  transactionStatus: "I",
  terminating: false,
  serverEnded: false,
  bytesFromClient: 0,
  bytesToClient: 0
})

export const frameOf = (bytes: Uint8Array): Frame => {
  const frames = new Framer(1 << 30, { startup: false }).push(bytes)
  if (!Array.isArray(frames) || frames.length !== 1) throw new Error("expected one frame")
  return frames[0]!
}

/** Runs one client message through classify, decide and route. */
export const send = (s: SessionState, m: FrontendMessage): ReadonlyArray<Uint8Array> => {
  const d = decide(classify(frameOf(encodeFrontend(m)), s), s)
  if (d._tag === "Malformed") throw new Error(d.detail)
  return route(d, s).bytes
}
