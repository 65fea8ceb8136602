/** Client authentication: a cleartext password exchange, checked by the identity verifier. */
import { Effect, Result } from "effect"
import type * as Socket from "effect/socket/Socket"
import { encodeBackend } from "../../codecs/pg/backend.ts"
import { decodeFrontend } from "../../codecs/pg/frontend.ts"
import type { Principal } from "../../rules/identity/principal.ts"
import { IdentityVerifier } from "../../rules/identity/verifier.ts"
import type { FramedReader } from "./framed-reader.ts"
import { ClientAuthFailed, ClientGone, ClientProtocolViolation, TlsRequired } from "./errors.ts"
import type { ClientHello } from "./startup.ts"

const ASK_PASSWORD = encodeBackend({ _tag: "AuthenticationCleartextPassword" })

export const authenticateClient = (
  client: FramedReader,
  writer: Socket.Writer,
  hello: ClientHello,
  plaintextAllowed: boolean
): Effect.Effect<Principal, ClientGone | ClientProtocolViolation | TlsRequired | ClientAuthFailed, IdentityVerifier> =>
  Effect.gen(function* () {
    if (!hello.tls && !plaintextAllowed) return yield* new TlsRequired()
    yield* writer.write(ASK_PASSWORD)
    const frame = yield* client.next
    const message = decodeFrontend(frame)
    if (Result.isFailure(message) || message.success._tag !== "AuthResponse") {
      return yield* new ClientProtocolViolation({ detail: "expected a password message" })
    }
    const data = message.success.data
    const nul = data.indexOf(0)
    const secret = Buffer.from(data.subarray(0, nul < 0 ? data.length : nul)).toString("utf8")
    const verifier = yield* IdentityVerifier
    return yield* verifier.verify({ user: hello.user, secret }).pipe(
      Effect.tapError((e) => Effect.logWarning("client authentication failed", { user: e.user, reason: e.reason })),
      Effect.mapError((e) => new ClientAuthFailed({ user: e.user }))
    )
  }).pipe(
    Effect.catchTags({
      FrameError: (e) => Effect.fail(new ClientProtocolViolation({ detail: e.message })),
      SocketError: () => Effect.fail(new ClientGone())
    })
  )
