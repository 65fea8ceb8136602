/**
 * The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it:
 * no channel binding, empty user name (the server takes it from the startup packet).
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto"
import { Data, Result } from "effect"

export const SCRAM_SHA_256 = "SCRAM-SHA-256"

export class ScramError extends Data.TaggedError("ScramError")<{ readonly detail: string }> {
  override get message(): string {
    return `SCRAM-SHA-256 exchange failed: ${this.detail}`
  }
}

export interface ScramStart {
  readonly clientNonce: string
  readonly clientFirstBare: string
  /** The SASLInitialResponse payload. */
  readonly clientFirst: string
}

export interface ScramServerFirst {
  readonly nonce: string
  readonly salt: Buffer
  readonly iterations: number
  readonly raw: string
}

export interface ScramFinal {
  /** The SASLResponse payload. */
  readonly clientFinal: string
  readonly expectedServerSignature: Buffer
}

export const start = (clientNonce: string = randomBytes(18).toString("base64")): ScramStart => {
  const clientFirstBare = `n=,r=${clientNonce}`
  return { clientNonce, clientFirstBare, clientFirst: `n,,${clientFirstBare}` }
}

const attributes = (message: string): Map<string, string> => {
  const out = new Map<string, string>()
  for (const part of message.split(",")) {
    const eq = part.indexOf("=")
    if (eq === 1) out.set(part[0]!, part.slice(2))
  }
  return out
}

export const parseServerFirst = (s: ScramStart, raw: string): Result.Result<ScramServerFirst, ScramError> => {
  const a = attributes(raw)
  const nonce = a.get("r")
  const salt = a.get("s")
  const iterations = Number(a.get("i"))
  if (nonce === undefined || salt === undefined || !Number.isSafeInteger(iterations) || iterations < 1) {
    return Result.fail(new ScramError({ detail: "malformed server-first-message" }))
  }
  if (!nonce.startsWith(s.clientNonce) || nonce.length === s.clientNonce.length) {
    return Result.fail(new ScramError({ detail: "server nonce does not extend the client nonce" }))
  }
  return Result.succeed({ nonce, salt: Buffer.from(salt, "base64"), iterations, raw })
}

/** Expensive by design (PBKDF2); callers cache it per salt and iteration count. */
export const saltPassword = (password: string, salt: Buffer, iterations: number): Buffer =>
  pbkdf2Sync(password.normalize("NFKC"), salt, iterations, 32, "sha256")

const hmac = (key: Buffer, data: string): Buffer => createHmac("sha256", key).update(data).digest()

export const clientFinal = (s: ScramStart, server: ScramServerFirst, saltedPassword: Buffer): ScramFinal => {
  const withoutProof = `c=biws,r=${server.nonce}`
  const authMessage = `${s.clientFirstBare},${server.raw},${withoutProof}`
  const clientKey = hmac(saltedPassword, "Client Key")
  const storedKey = createHash("sha256").update(clientKey).digest()
  const signature = hmac(storedKey, authMessage)
  const proof = Buffer.alloc(clientKey.length)
  for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ signature[i]!
  const serverKey = hmac(saltedPassword, "Server Key")
  return {
    clientFinal: `${withoutProof},p=${proof.toString("base64")}`,
    expectedServerSignature: hmac(serverKey, authMessage)
  }
}

/** A server that cannot prove it knows the verifier is not the server we meant to reach. */
export const verifyServerFinal = (f: ScramFinal, raw: string): Result.Result<void, ScramError> => {
  const a = attributes(raw)
  const error = a.get("e")
  if (error !== undefined) return Result.fail(new ScramError({ detail: `server reported ${error}` }))
  const v = a.get("v")
  const signature = v === undefined ? Buffer.alloc(0) : Buffer.from(v, "base64")
  return signature.length === f.expectedServerSignature.length && timingSafeEqual(signature, f.expectedServerSignature)
    ? Result.succeed(undefined)
    : Result.fail(new ScramError({ detail: "server signature does not match" }))
}

/** SASLInitialResponse body: mechanism, then the length-prefixed client-first-message. */
export const initialResponse = (mechanism: string, data: string): Uint8Array => {
  const mech = Buffer.from(`${mechanism}\0`)
  const payload = Buffer.from(data)
  const out = Buffer.alloc(mech.length + 4 + payload.length)
  mech.copy(out, 0)
  out.writeInt32BE(payload.length, mech.length)
  payload.copy(out, mech.length + 4)
  return out
}
