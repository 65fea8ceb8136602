/** Opens a connection to a target, with TLS per its mode, before any protocol message. */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import { Effect, type Scope } from "effect"
import type * as Socket from "effect/socket/Socket"
import { encodeStartup } from "../../codecs/pg/frontend.ts"
import type { ResolvedTarget } from "../../targets/target.ts"
import { TargetUnreachable } from "./errors.ts"

export interface RawConnection {
  readonly reader: Socket.Reader<Uint8Array>
  readonly writer: Socket.Writer
}

const SSL_REQUEST = encodeStartup({ _tag: "SSLRequest" })

/** The OS error code, never the address: the client may read this text. */
const describe = (e: Socket.SocketError): string => {
  const cause = (e.reason as { readonly cause?: unknown }).cause
  const code = (cause as NodeJS.ErrnoException | undefined)?.code
  if (e.reason._tag === "SocketOpenError" && e.reason.kind === "Timeout") return "connection timed out"
  if (e.reason._tag === "SocketUpgradeError") return `TLS handshake failed${code ? ` (${code})` : ""}`
  return code ? `connection failed (${code})` : "connection failed"
}

export const connectTarget = (
  target: ResolvedTarget,
  connectTimeoutMs: number
): Effect.Effect<RawConnection, TargetUnreachable, Scope.Scope> =>
  Effect.gen(function* () {
    const { host, port, tls, name } = target.config
    const socket = yield* NodeSocket.makeNet({ host, port, noDelay: true, openTimeout: connectTimeoutMs })
    const reader = (yield* socket.reader) as Socket.Reader<Uint8Array>
    const writer = yield* socket.writer
    if (tls.mode !== "disable") {
      yield* writer.write(SSL_REQUEST)
      const reply = yield* reader.pull
      if (reply.length !== 1 || reply[0].length !== 1 || reply[0][0] !== 0x53) {
        return yield* new TargetUnreachable({ target: name, detail: "the server does not accept TLS connections" })
      }
      yield* reader.upgrade({
        servername: tls.serverName ?? host,
        ca: target.ca,
        rejectUnauthorized: tls.mode === "verify-full"
      })
    }
    return { reader, writer }
  }).pipe(Effect.catchTag("SocketError", (e) => Effect.fail(new TargetUnreachable({ target: target.config.name, detail: describe(e) }))))
