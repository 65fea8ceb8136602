/**
 * The floor for any Node proxy: a TCP relay made of two `pipe` calls and nothing else.
 * No framing, no parsing, no copies beyond what Node's streams do.
 *
 *   node bench/raw-relay.ts --listen 127.0.0.1:PORT --target 127.0.0.1:PGPORT
 *
 * Prints "listening on HOST:PORT" once it accepts connections.
 */
import { connect, createServer, type Socket } from "node:net"
import { parseArgs } from "node:util"

const { values } = parseArgs({
  options: {
    listen: { type: "string" },
    target: { type: "string" }
  }
})

const hostPort = (s: string | undefined, what: string): { host: string; port: number } => {
  const m = s === undefined ? null : /^(.+):(\d+)$/.exec(s)
  if (!m) throw new Error(`--${what} HOST:PORT is required`)
  return { host: m[1]!, port: Number(m[2]) }
}

const listen = hostPort(values.listen, "listen")
const target = hostPort(values.target, "target")

const server = createServer((client: Socket) => {
  const upstream = connect(target)
  client.setNoDelay(true)
  upstream.setNoDelay(true)
  const close = (): void => {
    client.destroy()
    upstream.destroy()
  }
  client.on("error", close).on("close", close)
  upstream.on("error", close).on("close", close)
  client.pipe(upstream)
  upstream.pipe(client)
})

server.listen({ host: listen.host, port: listen.port, backlog: 4096 }, () => {
  console.log(`listening on ${listen.host}:${listen.port}`)
})

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => process.exit(0))
}
