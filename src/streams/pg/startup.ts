/**
 * The client's startup phase: SSL and GSS negotiation, cancel requests, and the startup
 * packet. Ends with the client's hello, before any authentication.
 */
import { Effect, Redacted, Result } from "effect"
import type * as Socket from "effect/socket/Socket"
import { encodeBackend } from "../../codecs/pg/backend.ts"
import { decodeStartup, PROTOCOL_3_0 } from "../../codecs/pg/frontend.ts"
import type { FramedReader } from "./framed-reader.ts"
import { ClientGone, ClientProtocolViolation, ReplicationRefused, UnsupportedProtocol } from "./errors.ts"

export interface ServerTls {
  readonly key: Redacted.Redacted<Uint8Array>
  readonly cert: Uint8Array
}

export interface ClientHello {
  readonly user: string
  readonly database: string
  readonly parameters: ReadonlyMap<string, string>
  readonly tls: boolean
}

export type StartupOutcome =
  | { readonly _tag: "Session"; readonly hello: ClientHello }
  | { readonly _tag: "Cancel"; readonly processId: number; readonly secretKey: number }

const SSL_YES = new Uint8Array([0x53])
const SSL_NO = new Uint8Array([0x4e])

const isReplication = (value: string | undefined): boolean =>
  value !== undefined && !["false", "off", "no", "0"].includes(value.toLowerCase())

export const negotiateStartup = (
  client: FramedReader,
  writer: Socket.Writer,
  tls: ServerTls | undefined
): Effect.Effect<StartupOutcome, ClientGone | ClientProtocolViolation | UnsupportedProtocol | ReplicationRefused> =>
  Effect.gen(function* () {
    let encrypted = false
    for (;;) {
      const frame = yield* client.next
      const packet = decodeStartup(frame)
      if (Result.isFailure(packet)) return yield* new ClientProtocolViolation({ detail: packet.failure.message })
      const p = packet.success
      switch (p._tag) {
        case "GSSENCRequest":
          yield* writer.write(SSL_NO)
          continue
        case "SSLRequest":
          if (tls === undefined || encrypted) {
            yield* writer.write(SSL_NO)
            continue
          }
          // Bytes sent before the handshake would be read as if they came over TLS (CVE-2021-23222's class).
          if (!client.isDrained) return yield* new ClientProtocolViolation({ detail: "data received after SSLRequest" })
          yield* writer.write(SSL_YES)
          yield* client.upgrade({ key: tls.key, cert: tls.cert })
          encrypted = true
          continue
        case "CancelRequest":
          return { _tag: "Cancel", processId: p.processId, secretKey: p.secretKey } as const
        case "StartupMessage": {
          if (p.protocolVersion >>> 16 !== 3) return yield* new UnsupportedProtocol({ version: p.protocolVersion })
          const typed = client.expectTyped()
          if (typed !== undefined) return yield* new ClientProtocolViolation({ detail: typed.message })
          if (p.protocolVersion !== PROTOCOL_3_0) {
            // A newer 3.x client is told what the server (PG itself does the same) speaks: 3.0, no _pq_ options.
            const unsupported = [...p.parameters.keys()].filter((k) => k.startsWith("_pq_."))
            yield* writer.write(encodeBackend({ _tag: "NegotiateProtocolVersion", newestMinor: 0, unsupported }))
          }
          const user = p.parameters.get("user")
          if (user === undefined || user === "") return yield* new ClientProtocolViolation({ detail: "no user name in the startup packet" })
          if (isReplication(p.parameters.get("replication"))) return yield* new ReplicationRefused()
          const database = p.parameters.get("database") || user
          return { _tag: "Session", hello: { user, database, parameters: p.parameters, tls: encrypted } } as const
        }
      }
    }
  }).pipe(
    Effect.catchTags({
      FrameError: (e) => Effect.fail(new ClientProtocolViolation({ detail: e.message })),
      SocketError: () => Effect.fail(new ClientGone())
    })
  )
