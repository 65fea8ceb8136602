/**
 * Statement text for the audit trail with every literal replaced by a numbered
 * placeholder ($1, $2, …), the rest kept as written. Literals are found by the
 * classifier's shape lexer; text it cannot fully account for is withheld entirely.
 */
import { shapeOf } from "../rules/classify/index.ts"

export const WITHHELD = "<statement text withheld: its literals could not be redacted reliably>"

export const redactLiterals = (text: string): string => {
  const shape = shapeOf(text)
  if (!shape.cacheable) return WITHHELD
  let out = ""
  let at = 0
  shape.literalStart.forEach((start, i) => {
    out += `${text.slice(at, start)}$${i + 1}`
    at = shape.literalEnd[i]!
  })
  return out + text.slice(at)
}
