/**
 * A fresh (uncached) classification: parse, classify each statement, and
 * work out what a cache entry for this shape may hold.
 *
 * Why serving a cached result to another text with the same key is safe:
 * equal keys mean the same token sequence except for literal values (see
 * shape-key.ts). The parse tree is a function of the token sequence, and a
 * literal's value ends up either in an A_Const node or somewhere else.
 *   - Every literal the key lexer found is checked here against the tree: it
 *     must start where an A_Const starts (or where the unary minus folded
 *     into it starts). A literal that does not (EXPLAIN (ANALYZE 0), FETCH 5,
 *     COPY ... TO 'file', DO '...', a UESCAPE character) is pinned: the entry
 *     only matches texts where that literal is byte-for-byte the same.
 *   - The walker never reads A_Const values except through
 *     Walker.constString, which records them; those literals are pinned too
 *     (nextval('seq') → the sequence written, SET client_encoding = '...').
 * So two texts served from one entry have parse trees that differ only in
 * A_Const values nobody looked at, and get the same classification.
 */
import { createHash } from "node:crypto"
import { isObj, num } from "./ast.ts"
import { codePointToChar, offsetMap, type OffsetMap } from "./offsets.ts"
import { parseSql } from "./parser.ts"
import { statementStart, type Shape } from "./shape-key.ts"
import { classifyStatement } from "./statement.ts"
import type { Classification, StatementInfo } from "./types.ts"
import { Walker } from "./walker.ts"

/** A statement in a cache entry: its class and relations, and where its text starts and ends, by ";" tokens. */
export interface StatementTemplate {
  /** The ";" before the statement (its text starts at the first token after it), or -1: the first token of the input. */
  readonly afterSemicolon: number
  /** The ";" its text ends before, or -1: the end of the input. */
  readonly beforeSemicolon: number
  readonly info: Omit<StatementInfo, "text">
}

export interface Template {
  readonly statements: ReadonlyArray<StatementTemplate>
  /** Literals whose exact text this entry depends on: [literal ordinal, raw text]. */
  readonly pins: ReadonlyArray<readonly [number, string]>
  /** Characters held (pins), for the cache's size bound. */
  readonly weight: number
}

export interface Fresh {
  readonly classification: Classification
  /** Undefined when this text must not be cached. */
  readonly template: Template | undefined
  readonly uncacheableReason: string | undefined
}

/** Pinned literal text beyond this is not worth caching (function bodies, DO blocks). */
const MAX_PINNED_CHARS = 4096

const fingerprintOf = (normalized: string): string => createHash("sha256").update(normalized).digest("hex").slice(0, 16)

/** Index of the last ";" before `pos`, or -1. */
const semicolonBefore = (shape: Shape, pos: number): number => {
  const semis = shape.semicolons
  let lo = 0
  let hi = semis.length - 1
  let found = -1
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1
    if ((semis[mid] ?? 0) < pos) {
      found = mid
      lo = mid + 1
    } else hi = mid - 1
  }
  return found
}

/** Every A_Const location (bytes) in the tree. Iterative: trees can be deep. */
const constLocations = (root: unknown): number[] => {
  const out: number[] = []
  const stack: unknown[] = [root]
  while (stack.length > 0) {
    const v = stack.pop()
    if (Array.isArray(v)) {
      for (const x of v) if (typeof x === "object" && x !== null) stack.push(x)
    } else if (isObj(v)) {
      for (const k in v) {
        const x = v[k]
        if (k === "A_Const" && isObj(x)) {
          const loc = num(x["location"])
          if (loc !== undefined && loc >= 0) out.push(loc)
        } else if (typeof x === "object" && x !== null) stack.push(x)
      }
    }
  }
  return out
}

/** An identifier, keyword or quoted identifier starts here. */
const isWordStart = (c: number): boolean =>
  (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c >= 0x80 || c === 34

export const analyze = (sql: string, shape: Shape): Fresh => {
  const parsed = parseSql(sql)
  const offsets: OffsetMap = offsetMap(sql)
  if (!parsed.ok) {
    return {
      classification: {
        _tag: "Unparseable",
        message: parsed.message,
        cursor: parsed.cursor === undefined ? undefined : codePointToChar(sql, parsed.cursor),
      },
      template: undefined,
      uncacheableReason: "unparseable",
    }
  }

  let why: string | undefined = shape.cacheable ? undefined : shape.reason
  const fail = (reason: string): void => {
    why ??= reason
  }

  const statements: StatementInfo[] = []
  const templates: StatementTemplate[] = []
  const usedConstants: number[] = []
  let anyDcl = false

  for (const raw of parsed.result.stmts ?? []) {
    const locByte = raw.stmt_location ?? 0
    const start = offsets.toChar(locByte)
    const end = raw.stmt_len ? offsets.toChar(locByte + raw.stmt_len) : sql.length
    const text = sql.slice(start, end)

    const w = new Walker()
    let cls
    try {
      cls = classifyStatement(raw.stmt, w)
    } catch (err) {
      // e.g. a stack overflow on an absurdly nested expression: fail closed
      return {
        classification: {
          _tag: "Unparseable",
          message: `the classifier could not walk this statement: ${err instanceof Error ? err.message : String(err)}`,
          cursor: start,
        },
        template: undefined,
        uncacheableReason: "walk failed",
      }
    }
    usedConstants.push(...w.usedConstants)
    if (cls.cls === "dcl") anyDcl = true

    const afterSemicolon = semicolonBefore(shape, start)
    const beforeSemicolon = end >= sql.length ? -1 : semicolonBefore(shape, end + 1)
    const anchored =
      statementStart(sql, afterSemicolon < 0 ? 0 : (shape.semicolons[afterSemicolon] ?? 0) + 1) === start &&
      (end >= sql.length || shape.semicolons[beforeSemicolon] === end)
    if (!anchored) fail("statement boundaries do not fall on tokens")
    const normalized = anchored
      ? shape.key
          .slice(
            afterSemicolon < 0 ? 0 : (shape.semicolonKey[afterSemicolon] ?? 0) + 1,
            beforeSemicolon < 0 ? shape.key.length : shape.semicolonKey[beforeSemicolon],
          )
          .trim()
      : `\u0000raw\u0000${text}`

    // frozen: the same arrays are served from the cache to every later caller
    const info: Omit<StatementInfo, "text"> = {
      fingerprint: fingerprintOf(normalized),
      class: cls.cls,
      reasons: Object.freeze(w.reasons),
      reads: Object.freeze(w.reads),
      writes: Object.freeze(w.writes),
      columnsRead: Object.freeze(w.columnsRead),
      columnsWritten: Object.freeze(w.columnsWritten),
      columnsProjected: Object.freeze(w.columnsProjected),
      columnsReturned: Object.freeze(w.columnsReturned),
      columnsNotReturned: Object.freeze(w.columnsNotReturned),
      functions: Object.freeze(w.functions),
      locks: w.effects.locks,
      ...(cls.prepared === undefined ? {} : { prepared: cls.prepared }),
      ...(cls.cursor === undefined ? {} : { cursor: cls.cursor }),
    }
    statements.push({ text, ...info })
    templates.push({ afterSemicolon, beforeSemicolon, info })
  }

  const classification: Classification = { _tag: "Classified", statements }
  if (why !== undefined) return { classification, template: undefined, uncacheableReason: why }

  // Pins: literals that are not (the folded minus of) an A_Const, and the ones the walker read.
  const constAt = new Set(constLocations(parsed.result).map(offsets.toChar))
  const literalAt = new Map<number, number>()
  shape.literalStart.forEach((start, ordinal) => {
    literalAt.set(start, ordinal)
    for (const m of shape.literalMinus[ordinal] ?? []) literalAt.set(m, ordinal)
  })
  const pinned = new Set<number>()
  shape.literalStart.forEach((start, ordinal) => {
    if (constAt.has(start)) return
    if ((shape.literalMinus[ordinal] ?? []).some((m) => constAt.has(m))) return
    pinned.add(ordinal)
  })
  for (const locByte of usedConstants) {
    const at = offsets.toChar(locByte)
    const ordinal = literalAt.get(at)
    if (ordinal !== undefined) pinned.add(ordinal)
    else if (!isWordStart(sql.charCodeAt(at))) {
      // not a literal and not an identifier or keyword (which the key keeps as written)
      fail("a constant the result depends on is not at a token")
    }
  }
  const pins: Array<readonly [number, string]> = []
  let weight = 0
  for (const ordinal of [...pinned].sort((x, y) => x - y)) {
    const rawText = sql.slice(shape.literalStart[ordinal] ?? 0, shape.literalEnd[ordinal] ?? 0)
    weight += rawText.length
    pins.push([ordinal, rawText])
  }
  if (weight > MAX_PINNED_CHARS) fail("pinned literals too long to cache")
  if (anyDcl && pins.length > 0) fail("DCL with pinned literals (may hold passwords)")
  if (why !== undefined) return { classification, template: undefined, uncacheableReason: why }
  return { classification, template: { statements: templates, pins, weight }, uncacheableReason: undefined }
}
