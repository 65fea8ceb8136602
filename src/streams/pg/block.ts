/**
 * How a block is carried out through the server, so that what the client sees (the
 * error, then ReadyForQuery in the right transaction state, or the skip to Sync) is
 * exactly what the server itself would produce: the blocked statement is replaced by
 * one that raises the block's error. It never carries any of the blocked text.
 */
import { encodeFrontend } from "../../codecs/pg/frontend.ts"

/** An E'' literal reads the same whatever standard_conforming_strings says. */
const literal = (s: string): string => `E'${s.replace(/\0/g, "").replace(/\\/g, "\\\\").replace(/'/g, "''")}'`

const dollarTag = (body: string): string => {
  let tag = "$sluice$"
  for (let i = 0; body.includes(tag); i++) tag = `$sluice${i}$`
  return tag
}

export interface BlockError {
  readonly message: string
  readonly hint?: string | undefined
}

/** A DO block raising SQLSTATE 42501 with the block's message. */
export const raiseStatement = (e: BlockError): string => {
  const using = [`ERRCODE = '42501'`, `MESSAGE = ${literal(e.message)}`, ...(e.hint === undefined ? [] : [`HINT = ${literal(e.hint)}`])]
  const body = ` BEGIN RAISE EXCEPTION USING ${using.join(", ")}; END `
  const tag = dollarTag(body)
  return `DO ${tag}${body}${tag}`
}

/** A simple Query that runs `allowed` (the statements before the block), then raises. */
export const blockedQuery = (allowed: ReadonlyArray<string>, e: BlockError): Uint8Array =>
  encodeFrontend({ _tag: "Query", sql: [...allowed, raiseStatement(e)].join(";\n") })

/** The statement name Sluice parses a raise into when the client's unnamed statement must survive. */
export const RAISE_STATEMENT = "sluice_block"

/**
 * The raise as extended-protocol messages: the server answers with the error and then
 * skips to Sync. A blocked unnamed Parse replaces the unnamed statement, as a failed
 * one would; otherwise the raise goes through Sluice's own named statement (closed
 * first: closing a missing statement is not an error), and the client's unnamed
 * statement stays as it was.
 */
export const blockedExtended = (e: BlockError, replacesUnnamed: boolean): ReadonlyArray<Uint8Array> => {
  const name = replacesUnnamed ? "" : RAISE_STATEMENT
  return [
    ...(replacesUnnamed ? [] : [encodeFrontend({ _tag: "Close", kind: "S", name })]),
    encodeFrontend({ _tag: "Parse", name, sql: raiseStatement(e), paramTypes: [] }),
    encodeFrontend({ _tag: "Bind", portal: "", statement: name, paramFormats: [], params: [], resultFormats: [] }),
    encodeFrontend({ _tag: "Execute", portal: "", maxRows: 0 })
  ]
}
