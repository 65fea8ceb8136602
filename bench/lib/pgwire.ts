/**
 * A minimal PostgreSQL v3 client for the bench's own measurements: startup, login
 * (cleartext, md5, SCRAM-SHA-256), simple queries, and direct control of the socket for
 * the latency loop, the idle connections and the slow reader. It lives here, not in
 * src/, so that the bench measures the gateway with a client the gateway did not write.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto"
import { connect, type Socket } from "node:net"
import type { Endpoint } from "./targets.ts"

export interface PgConn {
  readonly socket: Socket
  /** Bytes received after ReadyForQuery that no reader has taken yet. */
  leftover: Buffer | null
  readonly close: () => void
}

interface Message {
  readonly type: number
  readonly body: Buffer
}

const frontend = (type: string, body: Buffer): Buffer => {
  const head = Buffer.alloc(5)
  head.write(type, 0, "latin1")
  head.writeInt32BE(body.length + 4, 1)
  return Buffer.concat([head, body])
}

const cstr = (s: string): Buffer => Buffer.from(s + "\0", "utf8")

export const queryMessage = (sql: string): Buffer => frontend("Q", cstr(sql))

const startupMessage = (user: string, database: string): Buffer => {
  const body = Buffer.concat([cstr("user"), cstr(user), cstr("database"), cstr(database), Buffer.from([0])])
  const head = Buffer.alloc(8)
  head.writeInt32BE(body.length + 8, 0)
  head.writeInt32BE(196608, 4)
  return Buffer.concat([head, body])
}

const errorText = (body: Buffer): string => {
  const fields: Record<string, string> = {}
  let off = 0
  while (off < body.length && body[off] !== 0) {
    const code = String.fromCharCode(body[off]!)
    const end = body.indexOf(0, off + 1)
    fields[code] = body.toString("utf8", off + 1, end)
    off = end + 1
  }
  return `${fields.S ?? "ERROR"} ${fields.C ?? ""}: ${fields.M ?? "(no message)"}`
}

/** Splits a byte stream into backend messages; keeps a partial one for the next chunk. */
export const makeSplitter = () => {
  let pending: Buffer | null = null
  return (chunk: Buffer, each: (type: number, b: Buffer, start: number, end: number) => void): void => {
    const b = pending === null ? chunk : Buffer.concat([pending, chunk])
    let off = 0
    while (b.length - off >= 5) {
      const len = b.readInt32BE(off + 1)
      if (b.length - off < 1 + len) break
      each(b[off]!, b, off + 5, off + 1 + len)
      off += 1 + len
    }
    pending = off < b.length ? b.subarray(off) : null
  }
}

// Every login of one role sees the same salt: cache PBKDF2 so the client is cheap.
const saltedCache = new Map<string, Buffer>()
const salted = (password: string, salt: Buffer, iterations: number): Buffer => {
  const key = `${password}\0${salt.toString("base64")}\0${iterations}`
  let v = saltedCache.get(key)
  if (v === undefined) {
    v = pbkdf2Sync(password.normalize("NFKC"), salt, iterations, 32, "sha256")
    saltedCache.set(key, v)
  }
  return v
}

const hmac = (key: Buffer, data: string): Buffer => createHmac("sha256", key).update(data).digest()

/** Connects and logs in; resolves at the first ReadyForQuery. */
export const connectPg = (e: Endpoint, timeoutMs = 30_000): Promise<PgConn> =>
  new Promise((resolve, reject) => {
    const socket = connect({ host: e.host, port: e.port })
    socket.setNoDelay(true)
    const split = makeSplitter()
    let scram: { nonce: string; clientFirstBare: string; serverSignature?: string } | null = null
    let settled = false
    const fail = (err: Error): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      reject(err)
    }
    const timer = setTimeout(() => fail(new Error(`login to ${e.host}:${e.port} timed out`)), timeoutMs)
    const conn: PgConn = { socket, leftover: null, close: () => socket.destroy() }
    const onMessage = (m: Message): boolean => {
      switch (String.fromCharCode(m.type)) {
        case "R": {
          const code = m.body.readInt32BE(0)
          if (code === 0) return false
          if (code === 3) socket.write(frontend("p", cstr(e.password)))
          else if (code === 5) {
            const inner = createHash("md5").update(e.password + e.user).digest("hex")
            const outer = createHash("md5").update(Buffer.concat([Buffer.from(inner), m.body.subarray(4, 8)])).digest("hex")
            socket.write(frontend("p", cstr("md5" + outer)))
          } else if (code === 10) {
            const nonce = randomBytes(18).toString("base64")
            const clientFirstBare = `n=,r=${nonce}`
            scram = { nonce, clientFirstBare }
            const first = Buffer.from("n,," + clientFirstBare)
            const len = Buffer.alloc(4)
            len.writeInt32BE(first.length)
            socket.write(frontend("p", Buffer.concat([cstr("SCRAM-SHA-256"), len, first])))
          } else if (code === 11 && scram) {
            const serverFirst = m.body.toString("utf8", 4)
            const attrs = Object.fromEntries(serverFirst.split(",").map((kv) => [kv[0], kv.slice(2)]))
            if (!attrs.r?.startsWith(scram.nonce) || !attrs.s || !attrs.i) throw new Error(`bad SCRAM server-first: ${serverFirst}`)
            const saltedPassword = salted(e.password, Buffer.from(attrs.s, "base64"), Number(attrs.i))
            const clientKey = hmac(saltedPassword, "Client Key")
            const storedKey = createHash("sha256").update(clientKey).digest()
            const withoutProof = `c=biws,r=${attrs.r}`
            const authMessage = `${scram.clientFirstBare},${serverFirst},${withoutProof}`
            const signature = hmac(storedKey, authMessage)
            const proof = Buffer.alloc(32)
            for (let i = 0; i < 32; i++) proof[i] = clientKey[i]! ^ signature[i]!
            scram.serverSignature = hmac(hmac(saltedPassword, "Server Key"), authMessage).toString("base64")
            socket.write(frontend("p", Buffer.from(`${withoutProof},p=${proof.toString("base64")}`)))
          } else if (code === 12 && scram) {
            const final = m.body.toString("utf8", 4)
            if (final !== `v=${scram.serverSignature}`) throw new Error("SCRAM server signature does not match")
          } else throw new Error(`unsupported authentication request ${code}`)
          return false
        }
        case "E":
          throw new Error(`login refused: ${errorText(m.body)}`)
        case "Z":
          return true
        default:
          return false // ParameterStatus, BackendKeyData, NoticeResponse
      }
    }
    const onData = (chunk: Buffer): void => {
      try {
        let ready = -1
        split(chunk, (type, b, start, end) => {
          if (ready >= 0) return
          if (onMessage({ type, body: b.subarray(start, end) })) ready = end
          // a message after ReadyForQuery cannot arrive before we send a query
        })
        if (ready >= 0 && !settled) {
          settled = true
          clearTimeout(timer)
          socket.off("data", onData)
          socket.off("error", onError)
          socket.off("close", onClose)
          socket.on("error", () => {})
          resolve(conn)
        }
      } catch (err) {
        fail(err instanceof Error ? err : new Error(String(err)))
      }
    }
    const onError = (err: Error): void => fail(err)
    const onClose = (): void => fail(new Error(`${e.host}:${e.port} closed the connection during login`))
    socket.on("data", onData).on("error", onError).on("close", onClose)
    socket.once("connect", () => socket.write(startupMessage(e.user, e.database)))
  })

/** Runs one simple query to completion, discarding rows; rejects on ErrorResponse. */
export const simpleQuery = (conn: PgConn, sql: string): Promise<void> =>
  new Promise((resolve, reject) => {
    const split = makeSplitter()
    let error: string | null = null
    const onData = (chunk: Buffer): void => {
      split(chunk, (type, b, start, end) => {
        if (type === 0x45) error = errorText(b.subarray(start, end))
        if (type === 0x5a) {
          cleanup()
          if (error) reject(new Error(error))
          else resolve()
        }
      })
    }
    const onClose = (): void => {
      cleanup()
      reject(new Error("connection closed during a query"))
    }
    const cleanup = (): void => {
      conn.socket.off("data", onData)
      conn.socket.off("close", onClose)
    }
    conn.socket.on("data", onData).on("close", onClose)
    conn.socket.write(queryMessage(sql))
  })

/**
 * `count` round trips of one simple query, one at a time, each timed from the write to
 * the ReadyForQuery that ends it; `record` gets nanoseconds.
 */
export const roundTrips = (conn: PgConn, sql: string, count: number, record: (ns: number) => void): Promise<void> =>
  new Promise((resolve, reject) => {
    const message = queryMessage(sql)
    const split = makeSplitter()
    let left = count
    let t0 = process.hrtime.bigint()
    let error: string | null = null
    const onData = (chunk: Buffer): void => {
      split(chunk, (type, b, start, end) => {
        if (type === 0x45) error = errorText(b.subarray(start, end))
        else if (type === 0x5a) {
          const t1 = process.hrtime.bigint()
          if (error !== null) {
            cleanup()
            reject(new Error(error))
            return
          }
          record(Number(t1 - t0))
          if (--left === 0) {
            cleanup()
            resolve()
            return
          }
          t0 = process.hrtime.bigint()
          conn.socket.write(message)
        }
      })
    }
    const onClose = (): void => {
      cleanup()
      reject(new Error("connection closed during round trips"))
    }
    const cleanup = (): void => {
      conn.socket.off("data", onData)
      conn.socket.off("close", onClose)
    }
    conn.socket.on("data", onData).on("close", onClose)
    if (count <= 0) {
      cleanup()
      resolve()
      return
    }
    t0 = process.hrtime.bigint()
    conn.socket.write(message)
  })

export interface SlowReadResult {
  readonly bytes: number
  readonly seconds: number
  readonly finished: boolean
}

/**
 * Sends a query and reads its result at `bytesPerSecond` at most, pausing the socket
 * whenever the reader is ahead of schedule, for `seconds` or until the result ends.
 * While paused, Node stops reading from the kernel and TCP's window closes: from there
 * on only the proxy's own backpressure keeps its memory flat.
 */
export const slowRead = (conn: PgConn, sql: string, bytesPerSecond: number, seconds: number): Promise<SlowReadResult> =>
  new Promise((resolve, reject) => {
    const socket = conn.socket
    const split = makeSplitter()
    const start = performance.now()
    let bytes = 0
    let timer: NodeJS.Timeout | undefined
    let done = false
    const finish = (finished: boolean, err?: Error): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      clearTimeout(endTimer)
      socket.off("data", onData)
      socket.off("close", onClose)
      const result = { bytes, seconds: (performance.now() - start) / 1000, finished }
      if (err) reject(err)
      else resolve(result)
    }
    const onData = (chunk: Buffer): void => {
      bytes += chunk.length
      split(chunk, (type, b, s, e) => {
        if (type === 0x45) finish(false, new Error(errorText(b.subarray(s, e))))
        else if (type === 0x5a) finish(true)
      })
      if (done) return
      const ahead = bytes / bytesPerSecond - (performance.now() - start) / 1000
      if (ahead > 0) {
        socket.pause()
        timer = setTimeout(() => socket.resume(), ahead * 1000)
      }
    }
    const onClose = (): void => finish(false, new Error("connection closed during the slow read"))
    const endTimer = setTimeout(() => finish(false), seconds * 1000)
    socket.on("data", onData).on("close", onClose)
    socket.write(queryMessage(sql))
  })
