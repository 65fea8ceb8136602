/**
 * A deliberately low-level PG client for the failure tests: it sends exactly the bytes a
 * test wants (garbage included) and reads back decoded backend messages.
 */
import { connect, type Socket } from "node:net"
import { Result } from "effect"
import { type BackendMessage, decodeBackend, field } from "../../../src/codecs/pg/backend.ts"
import { Framer } from "../../../src/codecs/pg/framing.ts"
import { encodeFrontend, encodeStartup, PROTOCOL_3_0 } from "../../../src/codecs/pg/frontend.ts"

export class RawClient {
  readonly socket: Socket
  private readonly framer = new Framer(1 << 30, { startup: false })
  private readonly inbox: Array<BackendMessage> = []
  private waiters: Array<() => void> = []
  /** Every byte received, to search for leaked secrets. */
  received = Buffer.alloc(0)
  closed = false

  private constructor(socket: Socket) {
    this.socket = socket
    socket.on("data", (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk])
      const frames = this.framer.push(chunk)
      if (!Array.isArray(frames)) throw frames
      for (const f of frames) {
        const m = decodeBackend(f)
        if (Result.isFailure(m)) throw m.failure
        this.inbox.push(m.success)
      }
      this.wake()
    })
    socket.on("close", () => {
      this.closed = true
      this.wake()
    })
    socket.on("error", () => {})
  }

  private wake() {
    const ws = this.waiters
    this.waiters = []
    for (const w of ws) w()
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: "127.0.0.1", port }, () => resolve(new RawClient(s)))
      s.once("error", reject)
    })
  }

  send(bytes: Uint8Array): void {
    this.socket.write(bytes)
  }

  /** The next message, or undefined once the connection closed with nothing left. */
  async next(timeoutMs = 10_000): Promise<BackendMessage | undefined> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const m = this.inbox.shift()
      if (m !== undefined) return m
      if (this.closed) return undefined
      const left = deadline - Date.now()
      if (left <= 0) throw new Error("timed out waiting for a backend message")
      await new Promise<void>((r) => {
        const t = setTimeout(r, left)
        this.waiters.push(() => {
          clearTimeout(t)
          r()
        })
      })
    }
  }

  /** Reads until a message with this tag (returned) or the close (undefined). */
  async until(tag: BackendMessage["_tag"], timeoutMs = 10_000): Promise<BackendMessage | undefined> {
    for (;;) {
      const m = await this.next(timeoutMs)
      if (m === undefined || m._tag === tag) return m
    }
  }

  async waitClosed(timeoutMs = 10_000): Promise<void> {
    while ((await this.next(timeoutMs)) !== undefined) {
      // drain
    }
  }

  startup(database: string, user = "ci"): void {
    this.send(encodeStartup({ _tag: "StartupMessage", protocolVersion: PROTOCOL_3_0, parameters: new Map([["user", user], ["database", database]]) }))
  }

  password(secret: string): void {
    this.send(encodeFrontend({ _tag: "AuthResponse", data: Buffer.from(`${secret}\0`) }))
  }

  /** Startup and password, then waits for ReadyForQuery; returns every message of the greeting. */
  async login(database: string, secret: string): Promise<Array<BackendMessage>> {
    this.startup(database)
    const ask = await this.next()
    if (ask?._tag !== "AuthenticationCleartextPassword") throw new Error(`expected a password request, got ${JSON.stringify(ask)}`)
    this.password(secret)
    const greeting: Array<BackendMessage> = []
    for (;;) {
      const m = await this.next()
      if (m === undefined) throw new Error("closed during login")
      greeting.push(m)
      if (m._tag === "ErrorResponse") return greeting
      if (m._tag === "ReadyForQuery") return greeting
    }
  }

  close(): void {
    this.socket.destroy()
  }
}

export const errorFields = (m: BackendMessage | undefined) =>
  m?._tag === "ErrorResponse" ? { severity: field(m.fields, "S"), code: field(m.fields, "C"), message: field(m.fields, "M") ?? "" } : undefined
