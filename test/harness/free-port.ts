import { connect, createServer, type Server } from "node:net"

const listenOnAnyPort = (): Promise<Server> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once("error", reject)
    server.listen({ host: "127.0.0.1", port: 0, exclusive: true }, () => resolve(server))
  })

/**
 * Distinct TCP ports on 127.0.0.1 that were free a moment ago: the kernel
 * picks them while we hold them all open, then we close the listeners and
 * hand the numbers on. Another process could take one in between; the
 * servers we start then fail loudly.
 */
export const freePorts = async (count: number): Promise<number[]> => {
  const held = await Promise.all(Array.from({ length: count }, listenOnAnyPort))
  const ports = held.map((server) => {
    const address = server.address()
    if (address === null || typeof address === "string") throw new Error("free-port: listener has no TCP address")
    return address.port
  })
  await Promise.all(held.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))))
  return ports
}

export const freePort = async (): Promise<number> => {
  const [port] = await freePorts(1)
  if (port === undefined) throw new Error("free-port: no port")
  return port
}

const canConnect = (host: string, port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect({ host, port })
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => {
      socket.destroy()
      resolve(false)
    })
  })

/**
 * Resolves once something accepts TCP connections on host:port. `failed`
 * is polled between attempts (for example "the server process exited") and
 * ends the wait with its error.
 */
export const waitForPort = async (
  host: string,
  port: number,
  opts: { timeoutMs: number; failed?: () => Error | undefined },
): Promise<void> => {
  const deadline = Date.now() + opts.timeoutMs
  for (;;) {
    const failure = opts.failed?.()
    if (failure) throw failure
    if (await canConnect(host, port)) return
    if (Date.now() > deadline) throw new Error(`nothing accepted connections on ${host}:${port} within ${opts.timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}
