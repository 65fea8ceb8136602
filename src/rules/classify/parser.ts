/**
 * The real PostgreSQL parser (libpg-query, WASM; PostgreSQL 18 grammar).
 * The WASM module is instantiated once; `loadClassifier` must be awaited at
 * start, after which parsing is synchronous.
 */
import { loadModule, parseSync } from "libpg-query"
import type { ParseResult } from "libpg-query"

let loaded = false

/** Instantiate the parser's WASM module. Await once at start; later calls are free. */
export const loadClassifier = async (): Promise<void> => {
  if (loaded) return
  await loadModule()
  loaded = true
}

export const isClassifierLoaded = (): boolean => loaded

export const assertLoaded = (): void => {
  if (!loaded) throw new Error("SQL classifier used before it was loaded: await loadClassifier() once at start")
}

export type ParseOutcome =
  | { readonly ok: true; readonly result: ParseResult }
  /** cursor: 0-based position in characters (code points), when the parser gave one. */
  | { readonly ok: false; readonly message: string; readonly cursor: number | undefined }

const errorDetails = (err: unknown): { message: string; cursor: number | undefined } => {
  if (err instanceof Error) {
    const details = (err as Error & { sqlDetails?: { cursorPosition?: unknown } }).sqlDetails
    const pos = details?.cursorPosition
    return { message: err.message, cursor: typeof pos === "number" && pos >= 0 ? pos : undefined }
  }
  return { message: String(err), cursor: undefined }
}

/** Parse SQL text (one or more statements). Never throws for bad SQL. */
export const parseSql = (sql: string): ParseOutcome => {
  assertLoaded()
  try {
    return { ok: true, result: parseSync(sql) }
  } catch (err) {
    return { ok: false, ...errorDetails(err) }
  }
}
