/**
 * A client load for the audit durability tests: node-postgres clients, each opening a
 * session, running a few statements (simple and extended, alternately), closing it and
 * opening the next, until stopped. Every statement text is unique (it names its worker,
 * session and position), so the audit trail can be matched with what clients saw.
 */
import pg from "pg"

export interface Completed {
  readonly worker: number
  /** The worker's session number (0, 1, …). */
  readonly session: number
  readonly text: string
  readonly at: number
}

export interface LoadStats {
  readonly sessionsOpened: number
  /** Sessions the client ended itself (end() returned). */
  readonly sessionsClosed: number
  /** Statements whose answer the client got, in the order they completed. */
  readonly completed: ReadonlyArray<Completed>
  readonly errors: ReadonlyArray<string>
}

export interface Load {
  /** Statements completed so far. */
  readonly count: () => number
  readonly errors: () => ReadonlyArray<string>
  /** Ends every worker after its current statement (each closes its session) and returns what they did. */
  readonly stop: () => Promise<LoadStats>
}

export const statementText = (worker: number, session: number, q: number): string =>
  q % 2 === 0 ? `SELECT 'w${worker}.s${session}.q${q}' AS tag` : `SELECT 'w${worker}.s${session}.q${q}' AS tag, $1::int AS n`

export const startLoad = (
  connection: () => pg.ClientConfig,
  options: { readonly workers: number; readonly statementsPerSession: number; readonly pauseMs: number; readonly stopOnError?: boolean }
): Load => {
  let stopping = false
  let opened = 0
  let closed = 0
  const completed: Array<Completed> = []
  const errors: Array<string> = []
  const pause = () => new Promise((r) => setTimeout(r, options.pauseMs))

  const worker = async (w: number): Promise<void> => {
    for (let s = 0; !stopping; s++) {
      const c = new pg.Client({ ...connection(), application_name: `audit-load-w${w}`, query_timeout: 15_000, connectionTimeoutMillis: 10_000 })
      c.on("error", () => {})
      try {
        await c.connect()
        opened++
        for (let q = 0; q < options.statementsPerSession && !stopping; q++) {
          const text = statementText(w, s, q)
          await (q % 2 === 0 ? c.query(text) : c.query(text, [q]))
          completed.push({ worker: w, session: s, text, at: Date.now() })
          await pause()
        }
        await c.end()
        closed++
      } catch (e) {
        errors.push(`worker ${w} session ${s}: ${e instanceof Error ? e.message : String(e)}`)
        await c.end().catch(() => {})
        if (options.stopOnError !== false) return
        await pause()
      }
    }
  }

  const running = Array.from({ length: options.workers }, (_, w) => worker(w))
  return {
    count: () => completed.length,
    errors: () => errors,
    stop: async () => {
      stopping = true
      await Promise.all(running)
      return { sessionsOpened: opened, sessionsClosed: closed, completed, errors }
    }
  }
}
