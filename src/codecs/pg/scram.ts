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

// SASLprep (RFC 4013) tables from RFC 3454, as PostgreSQL's pg_saslprep uses them.
/** C.1.2 non-ASCII spaces: mapped to SPACE (checked before B.1, which shares U+200B). */
const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/gu
/** B.1 "commonly mapped to nothing". */
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200B-\u200D\u2060\uFE00-\uFE0F\uFEFF]/gu
/**
 * Prohibited output: C.1.2, C.2.1, C.2.2, C.3, C.4, C.5, C.6, C.7, C.8, C.9; plus code
 * points unassigned today (a subset of A.1, which is "unassigned in Unicode 3.2").
 */
const PROHIBITED =
  /[\u0000-\u001F\u007F-\u00A0\u0340\u0341\u06DD\u070F\u1680\u180E\u2000-\u200F\u2028-\u202F\u205F-\u2063\u206A-\u206F\u2FF0-\u2FFB\u3000\uD800-\uDFFF\uE000-\uF8FF\uFDD0-\uFDEF\uFEFF\uFFF9-\uFFFF\u{1D173}-\u{1D17A}\u{E0001}\u{E0020}-\u{E007F}\u{F0000}-\u{10FFFF}\p{Cn}]/u

/**
 * The password as PostgreSQL (server and libpq) feeds it to PBKDF2: pure ASCII as is;
 * otherwise mapped and NFKC-normalised, falling back to the raw password when the
 * result is empty or holds prohibited characters. Unlike pg_saslprep, it does not check
 * for code points assigned after Unicode 3.2 (e.g. most emoji) nor the bidi rule.
 */
export const saslprep = (password: string): string => {
  if (/^[\x00-\x7F]*$/.test(password)) return password
  const mapped = password.replace(NON_ASCII_SPACE, " ").replace(MAPPED_TO_NOTHING, "")
  if (mapped === "") return password
  const prepared = mapped.normalize("NFKC")
  return PROHIBITED.test(prepared) ? password : prepared
}

/** Expensive by design (PBKDF2); callers cache it per salt and iteration count. */
export const saltPassword = (password: string, salt: Buffer, iterations: number): Buffer =>
  pbkdf2Sync(saslprep(password), salt, iterations, 32, "sha256")

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
