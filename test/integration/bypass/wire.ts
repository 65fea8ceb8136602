/**
 * Protocol-level sessions for the bypass corpus: any startup parameters, any frames in
 * one write, and the server's answers collected per ReadyForQuery.
 */
import { field, type BackendMessage } from "../../../src/codecs/pg/backend.ts"
import { encodeFrontend, encodeStartup, type FrontendMessage, PROTOCOL_3_0 } from "../../../src/codecs/pg/frontend.ts"
import { TOKEN } from "../support/gateway.ts"
import { RawClient } from "../support/raw-client.ts"

export interface WireError {
  readonly severity: string | undefined
  readonly code: string | undefined
  readonly message: string
}

/** What the server answered up to (and including) one ReadyForQuery. */
export interface Answer {
  readonly tags: ReadonlyArray<BackendMessage["_tag"]>
  readonly rows: ReadonlyArray<ReadonlyArray<string | null>>
  readonly errors: ReadonlyArray<WireError>
  readonly commands: ReadonlyArray<string>
  readonly status: "I" | "T" | "E" | undefined
  /** The server asked for COPY data that the step did not bring (answered with CopyFail). */
  readonly unexpectedCopyIn: boolean
}

export const errorOf = (m: BackendMessage): WireError | undefined =>
  m._tag === "ErrorResponse" ? { severity: field(m.fields, "V") ?? field(m.fields, "S"), code: field(m.fields, "C"), message: field(m.fields, "M") ?? "" } : undefined

const text = (v: Uint8Array | null) => (v === null ? null : Buffer.from(v).toString("utf8"))

/** Logs in through the gateway with extra startup parameters (search_path, client_encoding, ...). */
export const openSession = async (port: number, parameters: Readonly<Record<string, string>> = {}): Promise<RawClient> => {
  const c = await RawClient.connect(port)
  c.send(
    encodeStartup({
      _tag: "StartupMessage",
      protocolVersion: PROTOCOL_3_0,
      parameters: new Map([["user", "ci"], ["database", "app"], ...Object.entries(parameters)])
    })
  )
  const ask = await c.next()
  if (ask?._tag !== "AuthenticationCleartextPassword") throw new Error(`expected a password request, got ${JSON.stringify(ask)}`)
  c.password(TOKEN)
  for (;;) {
    const m = await c.next()
    if (m === undefined) throw new Error("the gateway closed the session during login")
    const e = errorOf(m)
    if (e !== undefined) throw new Error(`login failed: ${e.code} ${e.message}`)
    if (m._tag === "ReadyForQuery") return c
  }
}

/** Reads one answer: everything up to the next ReadyForQuery. */
export const readAnswer = async (c: RawClient, opts: { copyDataSent?: boolean; timeoutMs?: number } = {}): Promise<Answer> => {
  const tags: Array<BackendMessage["_tag"]> = []
  const rows: Array<Array<string | null>> = []
  const errors: Array<WireError> = []
  const commands: Array<string> = []
  let unexpectedCopyIn = false
  for (;;) {
    const m = await c.next(opts.timeoutMs ?? 3_000)
    if (m === undefined) throw new Error(`the session closed mid-answer after ${tags.join(",")} ${JSON.stringify(errors)}`)
    if (m._tag === "NoticeResponse" || m._tag === "ParameterStatus") continue
    tags.push(m._tag)
    switch (m._tag) {
      case "DataRow":
        rows.push(m.values.map(text))
        break
      case "ErrorResponse":
        errors.push(errorOf(m)!)
        break
      case "CommandComplete":
        commands.push(m.tag)
        break
      case "CopyInResponse":
        // Without data already on its way, never leave the server waiting.
        if (opts.copyDataSent !== true) {
          unexpectedCopyIn = true
          c.send(encodeFrontend({ _tag: "CopyFail", message: "bypass corpus: no data" }))
        }
        break
      case "ReadyForQuery":
        return { tags, rows, errors, commands, status: m.status as Answer["status"], unexpectedCopyIn }
      default:
        break
    }
  }
}

/** Sends frames in one write. */
export const sendAll = (c: RawClient, messages: ReadonlyArray<FrontendMessage | Uint8Array>): void => {
  c.send(Buffer.concat(messages.map((m) => (m instanceof Uint8Array ? m : encodeFrontend(m)))))
}

/** One simple Query (plus frames sent in the same write, e.g. COPY data), and its answer. */
export const simpleQuery = async (c: RawClient, sql: string, after: ReadonlyArray<FrontendMessage> = []): Promise<Answer> => {
  sendAll(c, [{ _tag: "Query", sql }, ...after])
  // COPY data sent for a COPY that never started is ignored by the server, silently.
  return readAnswer(c, { copyDataSent: after.some((m) => m._tag === "CopyDone") })
}

/** COPY rows and CopyDone, to send right behind a COPY ... FROM STDIN. */
export const copyFrames = (rows: ReadonlyArray<string>): Array<FrontendMessage> =>
  rows.length === 0 ? [] : [...rows.map((r): FrontendMessage => ({ _tag: "CopyData", data: Buffer.from(r) })), { _tag: "CopyDone" }]

/** A Query frame whose body is raw bytes (for client encodings other than UTF-8). */
export const rawQueryFrame = (body: Uint8Array): Uint8Array => {
  const frame = Buffer.alloc(1 + 4 + body.length + 1)
  frame[0] = 0x51
  frame.writeInt32BE(4 + body.length + 1, 1)
  Buffer.from(body).copy(frame, 5)
  return frame
}

/** Parse/Bind/Execute of one statement on the unnamed statement and portal, text parameters. */
export const pbe = (sql: string, params: ReadonlyArray<string | null> = [], name = ""): Array<FrontendMessage> => [
  { _tag: "Parse", name, sql, paramTypes: [] },
  { _tag: "Bind", portal: "", statement: name, paramFormats: [], params: params.map((p) => (p === null ? null : Buffer.from(p))), resultFormats: [] },
  { _tag: "Execute", portal: "", maxRows: 0 }
]

export const SYNC: FrontendMessage = { _tag: "Sync" }
