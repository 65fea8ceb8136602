/**
 * One client connection, from accept to close: startup, client authentication, target
 * login, greeting, relay. Every failure ends here as a typed value and, where the client
 * can still hear it, as one FATAL ErrorResponse. Nothing escapes to the listener.
 */
import { randomUUID } from "node:crypto"
import { NetSocket } from "@effect/platform-node/NodeSocket"
import { Cause, Duration, Effect, Exit, Option, Result } from "effect"
import type * as Socket from "effect/socket/Socket"
import { encodeBackend, errorResponse } from "../../codecs/pg/backend.ts"
import { Framer } from "../../codecs/pg/framing.ts"
import { AuditLog } from "../../sinks/audit-log.ts"
import { PolicyStore } from "../../rules/policy/store.ts"
import { StatementClassifier } from "../../rules/statement-classifier.ts"
import type { ResolvedTarget } from "../../targets/target.ts"
import { loginToTarget } from "./backend-login.ts"
import { CancelRegistry } from "./cancel-registry.ts"
import type { Catalog } from "./catalog.ts"
import { authenticateClient } from "./client-auth.ts"
import { AuditUnavailable, ClientGone, LoginTimeout, type SessionError, StartupSettingRefused, toProblem, UnknownTarget } from "./errors.ts"
import { FramedReader } from "./framed-reader.ts"
import { type Enforcer, parserSafety } from "./enforce.ts"
import { relay } from "./relay.ts"
import { ResponseTracker } from "./responses.ts"
import type { SessionState } from "./session-state.ts"
import { negotiateStartup, type ServerTls } from "./startup.ts"
import { sessionSettings } from "./startup-parameters.ts"

export interface GatewaySettings {
  readonly targets: ReadonlyMap<string, ResolvedTarget>
  /** One per target, by name. */
  readonly catalogs: ReadonlyMap<string, Catalog>
  readonly tls: ServerTls | undefined
  readonly plaintextAllowed: boolean
  readonly maxFrameBytes: number
  readonly loginTimeoutMs: number
  readonly connectTimeoutMs: number
}

const AUTH_OK = encodeBackend({ _tag: "AuthenticationOk" })

export const handleConnection = (settings: GatewaySettings) => (socket: Socket.Socket) =>
  Effect.scoped(
    Effect.gen(function* () {
      // Small replies must not wait for the client's delayed ACK (Nagle): a round trip cost milliseconds.
      ;(yield* NetSocket).setNoDelay(true)
      const reader = (yield* socket.reader) as Socket.Reader<Uint8Array>
      const writer = yield* socket.writer
      const client = new FramedReader(reader, new Framer(settings.maxFrameBytes, { startup: true }))
      yield* runSession(settings, client, writer).pipe(
        Effect.catch((e: SessionError) => {
          const problem = toProblem(e)
          const log = Effect.logInfo("session ended", { reason: e._tag, ...(problem ? { message: problem.message } : {}) })
          return problem === undefined ? log : log.pipe(Effect.andThen(writer.write(errorResponse(problem))), Effect.ignore)
        })
      )
    })
  ).pipe(Effect.catchCause((cause) => Effect.logError("session failed unexpectedly", cause)))

const runSession = (settings: GatewaySettings, client: FramedReader, clientWriter: Socket.Writer) =>
  Effect.gen(function* () {
    const started = performance.now()
    const login = Effect.gen(function* () {
      const outcome = yield* negotiateStartup(client, clientWriter, settings.tls)
      if (outcome._tag === "Cancel") {
        yield* (yield* CancelRegistry).cancel(outcome, settings.connectTimeoutMs)
        return Option.none()
      }
      const hello = outcome.hello
      const target = settings.targets.get(hello.database)
      const principal = yield* authenticateClient(client, clientWriter, hello, settings.plaintextAllowed)
      // Checked after authentication, so that only authenticated clients learn target names.
      if (target === undefined) return yield* new UnknownTarget({ database: hello.database })
      const startWith = sessionSettings(hello.parameters)
      if (Result.isFailure(startWith)) return yield* new StartupSettingRefused(startWith.failure)
      const server = yield* loginToTarget(target, startWith.success, settings)
      return Option.some({ hello, principal, target, server })
    }).pipe(
      Effect.timeoutOrElse({ duration: Duration.millis(settings.loginTimeoutMs), orElse: () => Effect.fail(new LoginTimeout()) })
    )
    const loggedIn = yield* login
    if (Option.isNone(loggedIn)) return
    const { hello, principal, target, server } = loggedIn.value
    const id = randomUUID()
    const audit = yield* (yield* AuditLog).session(id)
    const peer = yield* NetSocket
    const refused = audit.refusal()
    if (refused !== undefined) return yield* new AuditUnavailable({ reason: refused })
    yield* audit
      .record({
        _tag: "SessionStart",
        actor: { subject: principal.subject, kind: principal.kind, issuer: principal.issuer, groups: principal.groups },
        clientAddress: peer.remoteAddress ?? "",
        clientPort: peer.remotePort ?? 0,
        clientUser: hello.user,
        applicationName: hello.parameters.get("application_name") ?? null,
        tls: hello.tls,
        protocol: "postgresql",
        targetName: target.config.name,
        targetDatabase: target.config.database,
        backendUser: target.config.user
      })
      .pipe(Effect.mapError((e) => new AuditUnavailable({ reason: e.reason })))
    const registry = yield* CancelRegistry
    const policies = yield* PolicyStore
    const classifier = yield* StatementClassifier
    const key = yield* registry.register({ target, processId: server.processId, secretKey: server.secretKey })
    yield* clientWriter
      .writeAll([AUTH_OK, ...server.greeting.map((f) => f.bytes), encodeBackend({ _tag: "BackendKeyData", ...key }), encodeBackend({ _tag: "ReadyForQuery", status: "I" })])
      .pipe(Effect.mapError(() => new ClientGone()))
    const enforcer: Enforcer = {
      principal,
      target: { name: target.config.name, database: target.config.database },
      backendUser: target.config.user,
      policy: policies.current,
      classify: classifier.classify
    }
    const state: SessionState = {
      id,
      target,
      enforcer,
      audit,
      catalog: settings.catalogs.get(target.config.name)!,
      enforcement: {
        searchPath: server.searchPath ?? "any",
        searchPathVersion: 0,
        userFunctions: server.userFunctions,
        parsed: new Map(),
        sqlPrepared: new Map(),
        cursors: new Map(),
        parserUnsafe: server.parameters.map(([name, value]) => parserSafety(name, value)).find((r) => r !== undefined)
      },
      responses: new ResponseTracker(),
      statements: { next: 0, named: new Map(), portals: new Map() },
      discardingUntilSync: false,
      serverProcessId: server.processId,
      clientProcessId: key.processId,
      transactionStatus: "I",
      terminating: false,
      serverEnded: false,
      bytesFromClient: 0,
      bytesToClient: 0
    }
    yield* Effect.logInfo("session started", { session: state.id, subject: principal.subject, target: target.config.name })
    yield* relay({ reader: client, writer: clientWriter }, server, state).pipe(
      Effect.onExit((exit) =>
        audit.recordDone([
          {
            _tag: "SessionEnd",
            reason: Exit.isSuccess(exit) ? (state.serverEnded ? "server ended the session" : "client closed") : endReason(exit.cause),
            durationMicros: Math.round((performance.now() - started) * 1000),
            bytesFromClient: state.bytesFromClient,
            bytesToClient: state.bytesToClient,
            statements: state.statements.next
          }
        ])
      )
    )
    yield* Effect.logInfo("session ended", { session: state.id, reason: "client closed" })
  })

const endReason = (cause: Cause.Cause<SessionError>): string => {
  const error = Cause.findErrorOption(cause)
  return Option.isSome(error) ? error.value._tag : Cause.hasInterruptsOnly(cause) ? "interrupted" : "failed"
}
