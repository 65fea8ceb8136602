/**
 * Sluice's SCRAM-SHA-256 client against a SCRAM server written here from RFC 5802
 * (with PostgreSQL's SASLprep rules, RFC 4013), and its md5 response against
 * vectors computed outside Node.
 */
import { createHash, createHmac } from "node:crypto"
import { Result } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { md5Response } from "../../src/codecs/pg/md5.ts"
import {
  clientFinal,
  parseServerFirst,
  saltPassword,
  start,
  verifyServerFinal,
  type ScramFinal,
  type ScramStart
} from "../../src/codecs/pg/scram.ts"

// ---- a SCRAM-SHA-256 server, from RFC 5802 ---------------------------------

type Ranges = ReadonlyArray<readonly [number, number]>
const inRanges = (cp: number, ranges: Ranges): boolean => ranges.some(([lo, hi]) => lo <= cp && cp <= hi)

/** RFC 3454 C.1.2: mapped to SPACE by SASLprep. */
const NON_ASCII_SPACE: Ranges = [[0xa0, 0xa0], [0x1680, 0x1680], [0x2000, 0x200b], [0x202f, 0x202f], [0x205f, 0x205f], [0x3000, 0x3000]]
/** RFC 3454 B.1: mapped to nothing. */
const MAPPED_TO_NOTHING: Ranges = [
  [0xad, 0xad], [0x34f, 0x34f], [0x1806, 0x1806], [0x180b, 0x180d], [0x200b, 0x200d], [0x2060, 0x2060], [0xfe00, 0xfe0f], [0xfeff, 0xfeff]
]
/** RFC 4013 §2.3: C.1.2, C.2.1, C.2.2, C.3, C.4 (BMP part), C.5, C.6, C.7, C.8, C.9. */
const PROHIBITED: Ranges = [
  [0x0, 0x1f], [0x7f, 0x9f], // C.2.1, C.2.2
  [0xa0, 0xa0], [0x1680, 0x1680], [0x2000, 0x200b], [0x202f, 0x202f], [0x205f, 0x205f], [0x3000, 0x3000], // C.1.2
  [0x340, 0x341], [0x200e, 0x200f], [0x202a, 0x202e], [0x206a, 0x206f], // C.8
  [0x6dd, 0x6dd], [0x70f, 0x70f], [0x180e, 0x180e], [0x200c, 0x200d], [0x2028, 0x2029], [0x2060, 0x2063], [0xfeff, 0xfeff], [0xfff9, 0xfffc], [0x1d173, 0x1d17a], // C.2.2
  [0xe000, 0xf8ff], [0xf0000, 0xffffd], [0x100000, 0x10fffd], // C.3
  [0xfdd0, 0xfdef], [0xfffe, 0xffff], // C.4
  [0xd800, 0xdfff], // C.5
  [0xfff9, 0xfffd], // C.6
  [0x2ff0, 0x2ffb], // C.7
  [0xe0001, 0xe0001], [0xe0020, 0xe007f] // C.9
]

/**
 * PostgreSQL's pg_saslprep as the server applies it to a password: pure ASCII is
 * taken as is; otherwise map, NFKC, and if the result is empty or prohibited, the
 * raw password is used instead. (The unassigned-code-point and bidi checks are left
 * out: the passwords generated below never contain such characters.)
 */
const pgSaslprep = (password: string): string => {
  if (/^[\x00-\x7f]*$/.test(password)) return password
  let mapped = ""
  for (const ch of password) {
    const cp = ch.codePointAt(0)!
    if (inRanges(cp, NON_ASCII_SPACE)) mapped += " "
    else if (!inRanges(cp, MAPPED_TO_NOTHING)) mapped += ch
  }
  if (mapped === "") return password
  const normalized = mapped.normalize("NFKC")
  for (const ch of normalized) if (inRanges(ch.codePointAt(0)!, PROHIBITED)) return password
  return normalized
}

const hmac = (key: Buffer, data: Buffer | string): Buffer => createHmac("sha256", key).update(data).digest()
const sha256 = (data: Buffer): Buffer => createHash("sha256").update(data).digest()
const xor = (a: Buffer, b: Buffer): Buffer => Buffer.from(a.map((x, i) => x ^ b[i]!))

/** RFC 5802 §2.2 Hi(): PBKDF2 with HMAC-SHA-256, one block, written out. */
const hi = (str: Buffer, salt: Buffer, iterations: number): Buffer => {
  let u = hmac(str, Buffer.concat([salt, Buffer.from([0, 0, 0, 1])]))
  let out = u
  for (let i = 1; i < iterations; i++) {
    u = hmac(str, u)
    out = xor(out, u)
  }
  return out
}

interface Verifier {
  readonly salt: Buffer
  readonly iterations: number
  readonly storedKey: Buffer
  readonly serverKey: Buffer
}

/** What the server stores for a role (pg_authid.rolpassword). */
const verifier = (password: string, salt: Buffer, iterations: number): Verifier => {
  const salted = hi(Buffer.from(pgSaslprep(password), "utf8"), salt, iterations)
  return { salt, iterations, storedKey: sha256(hmac(salted, "Client Key")), serverKey: hmac(salted, "Server Key") }
}

/** One server-side exchange; `reply` returns the server-final-message or why it refused. */
const serverExchange = (v: Verifier, clientFirst: string, serverNonceSuffix: string) => {
  // PostgreSQL clients send no channel binding ("n,,") and an empty user name.
  const m = /^n,,(n=,r=([^,]+))$/.exec(clientFirst)
  if (m === null) throw new Error(`unexpected client-first-message ${clientFirst}`)
  const clientFirstBare = m[1]!
  const nonce = m[2]! + serverNonceSuffix
  const serverFirst = `r=${nonce},s=${v.salt.toString("base64")},i=${v.iterations}`
  const reply = (clientFinalMessage: string): { readonly ok: true; readonly serverFinal: string } | { readonly ok: false; readonly why: string } => {
    const f = /^(c=([^,]*),r=([^,]*)),p=([^,]*)$/.exec(clientFinalMessage)
    if (f === null) return { ok: false, why: "malformed client-final-message" }
    if (f[2] !== Buffer.from("n,,").toString("base64")) return { ok: false, why: "channel binding" }
    if (f[3] !== nonce) return { ok: false, why: "nonce" }
    const authMessage = `${clientFirstBare},${serverFirst},${f[1]}`
    const proof = Buffer.from(f[4]!, "base64")
    if (proof.length !== 32) return { ok: false, why: "proof length" }
    const clientKey = xor(proof, hmac(v.storedKey, authMessage))
    if (!sha256(clientKey).equals(v.storedKey)) return { ok: false, why: "invalid proof" }
    return { ok: true, serverFinal: `v=${hmac(v.serverKey, authMessage).toString("base64")}` }
  }
  return { serverFirst, reply }
}

/** The client side, as Sluice's backend login drives it. */
const clientExchange = (password: string, clientNonce: string, serverFirst: (s: ScramStart) => string) => {
  const s = start(clientNonce)
  const sf = parseServerFirst(s, serverFirst(s))
  if (!Result.isSuccess(sf)) throw new Error(sf.failure.message)
  const final = clientFinal(s, sf.success, saltPassword(password, sf.success.salt, sf.success.iterations))
  return { start: s, final }
}

// ---- arbitraries -----------------------------------------------------------

/** RFC 5802 nonce characters: printable ASCII except ','. */
const nonce = fc.string({
  unit: fc.integer({ min: 0x21, max: 0x7e }).filter((c) => c !== 0x2c).map((c) => String.fromCharCode(c)),
  minLength: 1,
  maxLength: 32
})

/**
 * Passwords: any ASCII (no NUL: PostgreSQL passwords cannot hold one), or a mix of
 * ASCII and characters SASLprep maps, normalises or prohibits. All of them assigned
 * in Unicode 3.2 and none right-to-left, so the server above is exactly pg_saslprep.
 */
const ascii = fc.integer({ min: 1, max: 0x7f }).map((c) => String.fromCharCode(c))
const interesting = fc.constantFrom(
  // mapped to space / to nothing
  "\u00A0", "\u1680", "\u2003", "\u200B", "\u202F", "\u3000", "\u00AD", "\u034F", "\u200C", "\u200D", "\u2060", "\uFE0F", "\uFEFF",
  // changed by NFKC
  "\uFB01", "\uFF21", "\u2126", "\u00BD", "\u00AA", "\u2168", "\u1E9B\u0323", "A\u030A", "e\u0301", "\u00B5", "\u3099",
  // unchanged
  "é", "ß", "ü", "中", "\u2764", "Ω", "я",
  // prohibited after mapping: the raw password is used
  "\u0007", "\u007F", "\u0085", "\uE000", "\u200E", "\u2028", "\uFFF9"
)
const password = fc.oneof(
  fc.string({ unit: ascii, maxLength: 24 }),
  fc.string({ unit: fc.oneof({ weight: 2, arbitrary: ascii }, { weight: 3, arbitrary: interesting }), minLength: 1, maxLength: 12 })
)
const salt = fc.uint8Array({ minLength: 1, maxLength: 32 }).map((b) => Buffer.from(b))
const iterations = fc.integer({ min: 1, max: 64 })

// ---- properties ------------------------------------------------------------

describe("SCRAM-SHA-256 against an RFC 5802 server", () => {
  it("any password, salt, iteration count and nonces: the server accepts the proof and the client the signature", () => {
    fc.assert(
      fc.property(password, salt, iterations, nonce, nonce, (pw, s, i, cNonce, sSuffix) => {
        const v = verifier(pw, s, i)
        let exchange: ReturnType<typeof serverExchange> | undefined
        const client = clientExchange(pw, cNonce, (st) => {
          expect(st.clientFirst).toBe(`n,,n=,r=${cNonce}`)
          exchange = serverExchange(v, st.clientFirst, sSuffix)
          return exchange.serverFirst
        })
        const reply = exchange!.reply(client.final.clientFinal)
        expect(reply).toMatchObject({ ok: true })
        if (reply.ok) expect(Result.isSuccess(verifyServerFinal(client.final, reply.serverFinal))).toBe(true)
      }),
      { numRuns: 300 }
    )
  })

  it("a wrong password fails the server's proof check", () => {
    fc.assert(
      fc.property(
        password,
        password.filter((p) => p.length > 0),
        salt,
        iterations,
        nonce,
        nonce,
        (right, wrong, s, i, cNonce, sSuffix) => {
          fc.pre(pgSaslprep(right) !== pgSaslprep(wrong))
          const v = verifier(right, s, i)
          let exchange: ReturnType<typeof serverExchange> | undefined
          const client = clientExchange(wrong, cNonce, (st) => {
            exchange = serverExchange(v, st.clientFirst, sSuffix)
            return exchange.serverFirst
          })
          expect(exchange!.reply(client.final.clientFinal)).toEqual({ ok: false, why: "invalid proof" })
        }
      ),
      { numRuns: 200 }
    )
  })

  /** A finished exchange, for tampering with the server's last word. */
  const finished = fc.tuple(password, salt, iterations, nonce, nonce).map(([pw, s, i, cNonce, sSuffix]) => {
    const v = verifier(pw, s, i)
    let exchange: ReturnType<typeof serverExchange> | undefined
    const client = clientExchange(pw, cNonce, (st) => {
      exchange = serverExchange(v, st.clientFirst, sSuffix)
      return exchange.serverFirst
    })
    const reply = exchange!.reply(client.final.clientFinal)
    if (!reply.ok) throw new Error(reply.why)
    return { final: client.final, serverFinal: reply.serverFinal }
  })

  const tamper = (serverFinal: string) => {
    const sig = Buffer.from(serverFinal.slice(2), "base64")
    return fc.oneof(
      // one bit flipped
      fc.tuple(fc.nat(sig.length - 1), fc.nat(7)).map(([at, bit]) => {
        const t = Buffer.from(sig)
        t[at]! ^= 1 << bit
        return `v=${t.toString("base64")}`
      }),
      // truncated, extended, emptied, replaced
      fc.nat(sig.length - 1).map((n) => `v=${sig.subarray(0, n).toString("base64")}`),
      fc.uint8Array({ minLength: 1, maxLength: 4 }).map((extra) => `v=${Buffer.concat([sig, extra]).toString("base64")}`),
      fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => `v=${Buffer.from(b).toString("base64")}`).filter((t) => t !== serverFinal),
      fc.constantFrom("", "v=", "e=invalid-proof", `e=other-error,${serverFinal}`, serverFinal.replace("v=", "x="))
    )
  }

  it("a tampered server signature is rejected", () => {
    fc.assert(
      fc.property(
        finished.chain((f) => fc.tuple(fc.constant(f), tamper(f.serverFinal))),
        ([{ final, serverFinal }, forged]) => {
          expect(Result.isSuccess(verifyServerFinal(final, serverFinal))).toBe(true)
          expect(Result.isFailure(verifyServerFinal(final, forged))).toBe(true)
        }
      ),
      { numRuns: 300 }
    )
  })

  it("a server nonce that does not extend the client nonce is rejected", () => {
    const badNonce = (clientNonce: string) =>
      fc.oneof(
        fc.constant(clientNonce), // not extended
        nonce.filter((n) => !n.startsWith(clientNonce)), // unrelated
        fc.nat(clientNonce.length - 1).chain((n) => nonce.map((tail) => clientNonce.slice(0, n) + tail)).filter((n) => !n.startsWith(clientNonce)), // diverges
        nonce.map((head) => head + clientNonce) // contains it, but not as a prefix
      )
    fc.assert(
      fc.property(
        nonce.chain((c) => fc.tuple(fc.constant(c), badNonce(c).filter((n) => !n.startsWith(c) || n === c))),
        salt,
        iterations,
        ([clientNonce, serverNonce], s, i) => {
          const st = start(clientNonce)
          const r = parseServerFirst(st, `r=${serverNonce},s=${s.toString("base64")},i=${i}`)
          expect(Result.isFailure(r)).toBe(true)
          // ... while the same message with an extended nonce is fine.
          expect(Result.isSuccess(parseServerFirst(st, `r=${clientNonce}x,s=${s.toString("base64")},i=${i}`))).toBe(true)
        }
      ),
      { numRuns: 300 }
    )
  })

  it("a malformed server-first-message is rejected", () => {
    const st = start("abc")
    for (const raw of ["", "r=abcd", "r=abcd,s=AAAA", "r=abcd,s=AAAA,i=0", "r=abcd,s=AAAA,i=-1", "r=abcd,s=AAAA,i=x", "s=AAAA,i=1", "r=abcd,i=1"]) {
      expect(Result.isFailure(parseServerFirst(st, raw))).toBe(true)
    }
  })

  it("reproduces the RFC 7677 example exchange", () => {
    // RFC 7677 §3, which names its user in client-first-message-bare (PostgreSQL leaves it empty).
    const s: ScramStart = { clientNonce: "rOprNGfwEbeRWgbNEkqO", clientFirstBare: "n=user,r=rOprNGfwEbeRWgbNEkqO", clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO" }
    const sf = parseServerFirst(s, "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
    if (!Result.isSuccess(sf)) throw new Error(sf.failure.message)
    const f: ScramFinal = clientFinal(s, sf.success, saltPassword("pencil", sf.success.salt, sf.success.iterations))
    expect(f.clientFinal).toBe("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    expect(Result.isSuccess(verifyServerFinal(f, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="))).toBe(true)
  })

  it("salts the password as PostgreSQL does (RFC 4013 examples and pg_saslprep's fallbacks)", () => {
    const salt16 = Buffer.from("W22ZaJ0SNY7soEsUEjb6gQ==", "base64")
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["I\u00ADX", "IX"], // soft hyphen mapped to nothing
      ["user", "user"],
      ["USER", "USER"],
      ["\u00AA", "a"], // NFKC
      ["\u2168", "IX"], // NFKC
      ["\u0007", "\u0007"], // prohibited by RFC 4013, but pure ASCII is taken as is
      ["a\u00A0b", "a b"], // non-ASCII space
      ["a\u200Bb", "a b"], // ZERO WIDTH SPACE: in C.1.2, mapped to space first
      ["\u2764\uFE0F", "\u2764"], // emoji presentation selector mapped to nothing
      ["\u00AD", "\u00AD"], // empty after mapping: raw
      ["\u00E9\u0007", "\u00E9\u0007"], // prohibited output: raw
      ["\uFB01\uE000", "\uFB01\uE000"] // prohibited output: raw, not NFKC'd
    ]
    for (const [pw, prepared] of cases) {
      expect(pgSaslprep(pw)).toBe(prepared)
      expect(saltPassword(pw, salt16, 2).toString("hex")).toBe(hi(Buffer.from(prepared, "utf8"), salt16, 2).toString("hex"))
    }
  })
})

// ---- md5 -------------------------------------------------------------------

describe("md5 password response", () => {
  const md5hex = (b: Buffer): string => createHash("md5").update(b).digest("hex")

  it("matches vectors computed with md5sum(1)", () => {
    // printf 'secretpostgres' | md5sum → 53f48b7c…; printf '53f48b7c…\x01\x02\x03\x04' | md5sum → bb41a296…
    expect(Buffer.from(md5Response("postgres", "secret", Uint8Array.from([1, 2, 3, 4]))).toString("latin1")).toBe(
      "md5bb41a296aab6baccb36ff243a562abff\0"
    )
    // UTF-8 password and user; a salt with 0x00 and high bytes.
    expect(Buffer.from(md5Response("josé", "pässwört", Uint8Array.from([0xff, 0x00, 0x80, 0x7f]))).toString("latin1")).toBe(
      "md5461a2c6db21f0148efa5b3705c92a825\0"
    )
  })

  it("is md5(md5(password + user) + salt), NUL-terminated, for any user, password and salt", () => {
    const text = fc.string({ unit: "grapheme", maxLength: 20 }).map((s) => s.replaceAll("\0", ""))
    fc.assert(
      fc.property(text, text, fc.uint8Array({ minLength: 4, maxLength: 4 }), (user, pw, s) => {
        const inner = md5hex(Buffer.concat([Buffer.from(pw, "utf8"), Buffer.from(user, "utf8")]))
        const outer = md5hex(Buffer.concat([Buffer.from(inner, "latin1"), Buffer.from(s)]))
        const r = Buffer.from(md5Response(user, pw, s))
        expect(r.toString("latin1")).toBe(`md5${outer}\0`)
        expect(r.length).toBe(3 + 32 + 1)
      }),
      { numRuns: 300 }
    )
  })
})
