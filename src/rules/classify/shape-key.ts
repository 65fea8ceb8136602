/**
 * The literal-normalized cache key ("shape") of SQL text, computed by a small
 * lexer that follows PostgreSQL 18's scan.l for the only things it has to get
 * exactly right: where literals, quoted identifiers, comments and whitespace
 * begin and end. Everything else is kept as written.
 *
 * The key is the input text with
 *   - every literal replaced by NUL + its token type (S string, U U&'' string,
 *     B bit string, X hex string, I integer, F float): the parser's grammar
 *     sees the same token types, only the values differ;
 *   - each run of whitespace and comments replaced by one space (trimmed at
 *     the ends);
 *   - ASCII letters of unquoted identifiers and keywords lower-cased, as
 *     PostgreSQL folds them (non-ASCII letters are not folded, nor are they by
 *     PostgreSQL in UTF-8);
 *   - quoted identifiers ("Users", U&"d\0061t") kept byte for byte.
 * NUL cannot occur in the input (the classifier rejects it), so a placeholder
 * can never be confused with text.
 *
 * Why a hand-written lexer: libpg-query's own scanner costs about 1.3 ms per
 * medium query in WASM (more than a parse), normalize/fingerprint cost a parse
 * each; this one costs about 9 µs for a 420-character query on the project's
 * 2-core machine (measured with scripts/classify-speed.ts; a parse is
 * 300-600 µs there). Its correctness is what the cache's
 * safety rests on, so it is tested against libpg-query's scanner
 * (test/property/classify-cache.test.ts) and, on every cache miss, each
 * literal it found is checked against the parse tree (see analyze.ts).
 *
 * When a literal's content could make the real lexer fail or behave in a way
 * this lexer does not model (bad escapes in E'' or U&'' strings, junk after a
 * number, UESCAPE, zero-length quoted identifiers, unterminated anything), the
 * shape is marked not cacheable: such text is always parsed afresh.
 */

export type LiteralTag = "S" | "U" | "B" | "X" | "I" | "F"

export interface Shape {
  /** The normalized text; equal keys mean equal token sequences up to literal values. */
  readonly key: string
  /** For each literal, in order: its start and end (exclusive) in the input (UTF-16 indices). */
  readonly literalStart: ReadonlyArray<number>
  readonly literalEnd: ReadonlyArray<number>
  /** For each literal: the offset of its placeholder (NUL + tag) in `key`. */
  readonly literalKey: ReadonlyArray<number>
  /** For each literal: where the "-" tokens right before it start (unary minus that the parser folds into the constant). */
  readonly literalMinus: ReadonlyArray<ReadonlyArray<number>>
  /** Each top-level ";" token: its position in the input, and its offset in `key`. */
  readonly semicolons: ReadonlyArray<number>
  readonly semicolonKey: ReadonlyArray<number>
  /** False when the text must not be served from the cache. */
  readonly cacheable: boolean
  /** Why it is not cacheable. */
  readonly reason: string | undefined
}

const isSpace = (c: number): boolean => c === 32 || c === 9 || c === 10 || c === 13 || c === 12 || c === 11
const isNewline = (c: number): boolean => c === 10 || c === 13
const isDigit = (c: number): boolean => c >= 48 && c <= 57
const isHexDigit = (c: number): boolean => isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102)
const isOctDigit = (c: number): boolean => c >= 48 && c <= 55
const isBinDigit = (c: number): boolean => c === 48 || c === 49
/** ident_start: [A-Za-z\200-\377_] (every non-ASCII UTF-16 unit belongs to a high-bit byte sequence). */
const isIdentStart = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c >= 0x80
/** ident_cont: [A-Za-z\200-\377_0-9\$] */
const isIdentCont = (c: number): boolean => isIdentStart(c) || isDigit(c) || c === 36
/** dolq_cont: like ident_cont without "$". */
const isDolqCont = (c: number): boolean => isIdentStart(c) || isDigit(c)

/** Lower-case ASCII letters only, as PostgreSQL folds unquoted identifiers in UTF-8. */
const foldAsciiSlow = (s: string): string => {
  let out = ""
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    out += c >= 65 && c <= 90 ? String.fromCharCode(c + 32) : s[i]
  }
  return out
}

/** Index of the first newline at or after i, or the end. */
const lineEnd = (sql: string, i: number): number => {
  const n = sql.length
  while (i < n && !isNewline(sql.charCodeAt(i))) i++
  return i
}

/** End (exclusive) of a nested slash-star comment starting at i, or -1 when unterminated. */
const blockCommentEnd = (sql: string, i: number): number => {
  const n = sql.length
  let depth = 0
  let j = i + 2
  while (j < n) {
    const c = sql.charCodeAt(j)
    if (c === 47 && sql.charCodeAt(j + 1) === 42) {
      depth++
      j += 2
    } else if (c === 42 && sql.charCodeAt(j + 1) === 47) {
      if (depth === 0) return j + 2
      depth--
      j += 2
    } else j++
  }
  return -1
}

/**
 * scan.l's {quotecontinue}, tried just after a closing quote at i: whitespace
 * containing a newline, then a quote. Returns the index after the continuing
 * quote, or -1.
 *
 * PostgreSQL's own scan.l also lets "--" comments sit in that whitespace
 * ('a' -- c<newline>'b' is one literal to the server), but libpg-query's
 * scanner, patched to return comments as tokens, does not: it sees two
 * literals (and the grammar rejects them, so the gateway fails closed). The
 * cache must agree with the parser it caches, so this follows libpg-query:
 *   [ \t\f\v]* newline [ \t\n\r\f\v]* quote
 */
const continuation = (sql: string, i: number): number => {
  const n = sql.length
  let j = i
  for (;;) {
    const c = sql.charCodeAt(j)
    if (c === 32 || c === 9 || c === 12 || c === 11) j++
    else break
  }
  if (j >= n || !isNewline(sql.charCodeAt(j))) return -1
  j++
  while (isSpace(sql.charCodeAt(j))) j++
  return sql.charCodeAt(j) === 39 ? j + 1 : -1
}

type StringMode = "q" | "e" | "u" | "b"

interface StringScan {
  /** End (exclusive) of the literal including continuations, or -1 when unterminated. */
  readonly end: number
  /** Set when the content would make the real lexer fail or needs processing this lexer does not model. */
  readonly trouble: string | undefined
}

const hexValue = (sql: string, from: number, count: number): number => Number.parseInt(sql.slice(from, from + count), 16)

/**
 * Validates U&'' content (after '' → ' and continuations are joined) with the default escape "\":
 * \\, \XXXX or \+XXXXXX, each a valid, non-surrogate, non-zero code point.
 */
const unicodeContentTrouble = (content: string): string | undefined => {
  for (let k = content.indexOf("\\"); k >= 0; k = content.indexOf("\\", k)) {
    if (content.charCodeAt(k + 1) === 92) {
      k += 2
      continue
    }
    let cp: number
    if (content.charCodeAt(k + 1) === 43) {
      for (let d = 2; d < 8; d++) if (!isHexDigit(content.charCodeAt(k + d))) return "invalid Unicode escape in U&'' string"
      cp = hexValue(content, k + 2, 6)
      k += 8
    } else {
      for (let d = 1; d < 5; d++) if (!isHexDigit(content.charCodeAt(k + d))) return "invalid Unicode escape in U&'' string"
      cp = hexValue(content, k + 1, 4)
      k += 5
    }
    if (cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return "Unicode escape value not modelled"
  }
  return undefined
}

/**
 * Scans a quoted string whose first content character is at i, in the given mode:
 *   q: standard '...' ('' is a quote; backslash is ordinary)
 *   e: E'...'  ('' and \<any> are escapes)
 *   u: U&'...' like q, escapes validated afterwards
 *   b: B'...' / X'...' (no '' doubling)
 * Each mode continues across {quotecontinue} in the same mode, as scan.l does.
 */
const scanString = (sql: string, i: number, mode: StringMode): StringScan => {
  const n = sql.length
  let j = i
  let trouble: string | undefined
  let content = mode === "u" ? "" : undefined
  for (;;) {
    if (mode === "e") {
      // walk characters: backslash escapes, '' doubling, closing quote
      for (;;) {
        if (j >= n) return { end: -1, trouble }
        const c = sql.charCodeAt(j)
        if (c === 92) {
          if (j + 1 >= n) return { end: -1, trouble }
          const x = sql.charCodeAt(j + 1)
          if (isOctDigit(x)) {
            let k = j + 1
            while (k < j + 4 && isOctDigit(sql.charCodeAt(k))) k++
            const v = Number.parseInt(sql.slice(j + 1, k), 8) & 0xff
            if (v === 0 || v >= 0x80) trouble ??= "octal escape yields a NUL or non-ASCII byte"
            j = k
          } else if (x === 120 && isHexDigit(sql.charCodeAt(j + 2))) {
            const k = isHexDigit(sql.charCodeAt(j + 3)) ? j + 4 : j + 3
            const v = Number.parseInt(sql.slice(j + 2, k), 16)
            if (v === 0 || v >= 0x80) trouble ??= "hex escape yields a NUL or non-ASCII byte"
            j = k
          } else {
            if (x === 117 || x === 85) trouble ??= "Unicode escape in E'' string"
            j += 2
          }
        } else if (c === 39) {
          if (sql.charCodeAt(j + 1) === 39) j += 2
          else break
        } else j++
      }
    } else {
      for (;;) {
        const k = sql.indexOf("'", j)
        if (k < 0) return { end: -1, trouble }
        if (mode !== "b" && sql.charCodeAt(k + 1) === 39) {
          if (content !== undefined) content += sql.slice(j, k + 1)
          j = k + 2
          continue
        }
        if (content !== undefined) content += sql.slice(j, k)
        j = k
        break
      }
    }
    // j is at a closing quote
    const next = continuation(sql, j + 1)
    if (next < 0) {
      if (content !== undefined) trouble ??= unicodeContentTrouble(content)
      return { end: j + 1, trouble }
    }
    j = next
  }
}

/** End (exclusive) of a double-quoted identifier whose content starts at i, or -1. */
const quotedIdentEnd = (sql: string, i: number): number => {
  let j = i
  for (;;) {
    const k = sql.indexOf("\"", j)
    if (k < 0) return -1
    if (sql.charCodeAt(k + 1) === 34) {
      j = k + 2
      continue
    }
    return k + 1
  }
}

/** \d(_?\d)* from i (which must be a digit); returns its end. */
const scanDecimal = (sql: string, i: number): number => {
  let j = i + 1
  for (;;) {
    const c = sql.charCodeAt(j)
    if (isDigit(c)) j++
    else if (c === 95 && isDigit(sql.charCodeAt(j + 1))) j += 2
    else return j
  }
}

const INT32_MAX = 2147483647n

/** ICONST when pg_strtoint32 accepts it, else FCONST (as process_integer_literal decides). */
const integerTag = (digits: string, prefix: string): LiteralTag => {
  if (prefix === "" && digits.length <= 9 && !digits.includes("_")) return "I"
  const clean = digits.replaceAll("_", "")
  return BigInt(prefix + clean) <= INT32_MAX ? "I" : "F"
}

const NO_MINUS: ReadonlyArray<number> = []

/**
 * Compute the shape of SQL text. Pure; never throws.
 *
 * Written for speed (it runs for every statement, cached or not): the key is
 * assembled from runs of the input copied as they are; a run is cut only
 * where the key differs from the input (whitespace other than one space,
 * comments, literals, quoted identifiers), and lower-cased once if it holds
 * upper-case letters (a run holds only unquoted words, operators,
 * punctuation, parameters and single spaces, so folding it whole is folding
 * its identifiers).
 */
export const shapeOf = (sql: string): Shape => {
  const n = sql.length
  let key = ""
  const literalStart: number[] = []
  const literalEnd: number[] = []
  const literalKey: number[] = []
  const literalMinus: Array<ReadonlyArray<number>> = []
  const semicolons: number[] = []
  const semicolonKey: number[] = []
  let cacheable = true
  let reason: string | undefined
  /** Start of the input run not yet copied into the key. */
  let run = 0
  let runUpper = false
  let runWide = false
  /** A separator is owed before the next token (whitespace or comments were skipped). */
  let pendingSpace = false
  /** Positions of the "-" tokens since the last other token. */
  let minus: number[] | undefined

  const noCache = (why: string): void => {
    if (cacheable) {
      cacheable = false
      reason = why
    }
  }
  /** Copy the pending run [run, upTo) into the key, folded if needed. */
  const flush = (upTo: number): void => {
    if (upTo > run) {
      const text = sql.slice(run, upTo)
      key += !runUpper ? text : !runWide ? text.toLowerCase() : foldAsciiSlow(text)
    }
    run = upTo
    runUpper = false
    runWide = false
  }
  /** Whitespace or comments from `from` to `to`: one space in the key (none at the very start). */
  const separator = (from: number, to: number): void => {
    flush(from)
    pendingSpace = true
    run = to
  }
  /** Before a token at `at`: pay an owed space. */
  const token = (at: number): void => {
    if (pendingSpace) {
      flush(at)
      if (key.length > 0) key += " "
      pendingSpace = false
    }
  }
  const literal = (start: number, end: number, tag: LiteralTag): void => {
    token(start)
    flush(start)
    literalStart.push(start)
    literalEnd.push(end)
    literalKey.push(key.length)
    literalMinus.push(minus ?? NO_MINUS)
    minus = undefined
    key += "\u0000" + tag
    run = end
  }
  const done = (): Shape => {
    flush(n)
    return { key, literalStart, literalEnd, literalKey, literalMinus, semicolons, semicolonKey, cacheable, reason }
  }
  const unterminated = (what: string): Shape => {
    noCache(`unterminated ${what}`)
    run = n
    return done()
  }
  /** A quoted string literal starting at `start`, content at `from`. Returns its end or -1. */
  const stringLiteral = (start: number, from: number, mode: StringMode, tag: LiteralTag): number => {
    const s = scanString(sql, from, mode)
    if (s.end < 0) return -1
    if (s.trouble !== undefined) noCache(s.trouble)
    literal(start, s.end, tag)
    return s.end
  }

  let i = 0
  while (i < n) {
    const c = sql.charCodeAt(i)
    if (c === 32 && !pendingSpace && i > 0 && i + 1 < n) {
      // one plain space between two tokens is already what the key holds: leave it in the run
      const d = sql.charCodeAt(i + 1)
      if (!isSpace(d) && d !== 45 && d !== 47) {
        i++
        continue
      }
    }
    if (isSpace(c)) {
      let j = i + 1
      while (j < n && isSpace(sql.charCodeAt(j))) j++
      separator(i, j)
      i = j
      continue
    }
    if (c === 45 && sql.charCodeAt(i + 1) === 45) {
      const e = lineEnd(sql, i + 2)
      separator(i, e)
      i = e
      continue
    }
    if (c === 47 && sql.charCodeAt(i + 1) === 42) {
      const e = blockCommentEnd(sql, i)
      if (e < 0) return unterminated("comment")
      separator(i, e)
      i = e
      continue
    }
    if (c === 39) {
      const e = stringLiteral(i, i + 1, "q", "S")
      if (e < 0) return unterminated("quoted string")
      i = e
      continue
    }
    if (isIdentStart(c)) {
      const d = sql.charCodeAt(i + 1)
      if (d === 39) {
        // E'', B'', X'', N'' (scan.l's xestart, xbstart, xhstart, xnstart)
        let e = 0
        if (c === 69 || c === 101) e = stringLiteral(i, i + 2, "e", "S")
        else if (c === 66 || c === 98) e = stringLiteral(i, i + 2, "b", "B")
        else if (c === 88 || c === 120) e = stringLiteral(i, i + 2, "b", "X")
        else if (c === 78 || c === 110) {
          // the NCHAR keyword, then an ordinary string at the quote
          token(i)
          flush(i)
          key += "n"
          run = i + 1
          minus = undefined
          e = stringLiteral(i + 1, i + 2, "q", "S")
        }
        if (e < 0) return unterminated("quoted string")
        if (e > 0) {
          i = e
          continue
        }
      } else if ((c === 85 || c === 117) && d === 38) {
        const q = sql.charCodeAt(i + 2)
        if (q === 39) {
          const e = stringLiteral(i, i + 3, "u", "U")
          if (e < 0) return unterminated("quoted string")
          i = e
          continue
        }
        if (q === 34) {
          const e = quotedIdentEnd(sql, i + 3)
          if (e < 0) return unterminated("quoted identifier")
          if (e === i + 4) noCache("zero-length quoted identifier")
          token(i)
          flush(i)
          key += "u&" + sql.slice(i + 2, e)
          run = e
          minus = undefined
          i = e
          continue
        }
        // {xufailed}: "u" is an identifier, "&" an operator
      }
      token(i)
      let j = i
      let upper = false
      let wide = false
      for (; j < n; j++) {
        const x = sql.charCodeAt(j)
        if (x >= 97 && x <= 122) continue
        if (x >= 65 && x <= 90) upper = true
        else if (x >= 0x80) wide = true
        else if (!(x === 95 || x === 36 || (x >= 48 && x <= 57))) break
      }
      if (upper) runUpper = true
      if (wide) runWide = true
      if (j - i === 7 && (upper ? sql.slice(i, j).toLowerCase() : sql.slice(i, j)) === "uescape") noCache("UESCAPE")
      minus = undefined
      i = j
      continue
    }
    if (c === 34) {
      const e = quotedIdentEnd(sql, i + 1)
      if (e < 0) return unterminated("quoted identifier")
      if (e === i + 2) noCache("zero-length quoted identifier")
      token(i)
      flush(i)
      key += sql.slice(i, e)
      run = e
      minus = undefined
      i = e
      continue
    }
    if (c === 46 && sql.charCodeAt(i + 1) === 46) {
      // {dot_dot}: ".." is one token, so "..5" is not "." then ".5"
      token(i)
      minus = undefined
      i += 2
      continue
    }
    if (isDigit(c) || (c === 46 && isDigit(sql.charCodeAt(i + 1)))) {
      i = numberLiteral(i)
      continue
    }
    if (c === 36) {
      const d = sql.charCodeAt(i + 1)
      token(i)
      minus = undefined
      if (isDigit(d)) {
        let j = i + 2
        while (isDigit(sql.charCodeAt(j))) j++
        if (j < n && isIdentCont(sql.charCodeAt(j))) noCache("trailing junk after parameter")
        i = j
        continue
      }
      let j = i + 1
      if (isIdentStart(d)) {
        j++
        while (j < n && isDolqCont(sql.charCodeAt(j))) j++
      }
      if (sql.charCodeAt(j) === 36) {
        const delimiter = sql.slice(i, j + 1)
        const close = sql.indexOf(delimiter, j + 1)
        if (close < 0) return unterminated("dollar-quoted string")
        const e = close + delimiter.length
        literal(i, e, "S")
        i = e
        continue
      }
      // {dolqfailed}: a lone "$"
      i++
      continue
    }
    // an operator or punctuation character
    token(i)
    if (c === 45) (minus ??= []).push(i)
    else minus = undefined
    if (c === 59) {
      flush(i)
      semicolons.push(i)
      semicolonKey.push(key.length)
    }
    i++
  }
  return done()

  function numberLiteral(start: number): number {
    const c = sql.charCodeAt(start)
    const d = sql.charCodeAt(start + 1) | 0x20
    if (c === 48 && (d === 120 || d === 111 || d === 98)) {
      const isBaseDigit = d === 120 ? isHexDigit : d === 111 ? isOctDigit : isBinDigit
      let j = start + 2
      let digits = 0
      for (;;) {
        const x = sql.charCodeAt(j)
        if (isBaseDigit(x)) {
          j++
          digits++
        } else if (x === 95 && isBaseDigit(sql.charCodeAt(j + 1))) j++
        else break
      }
      if (digits === 0 || (j < n && isIdentCont(sql.charCodeAt(j)))) {
        noCache("malformed non-decimal integer")
        while (j < n && isIdentCont(sql.charCodeAt(j))) j++
        literal(start, j, "F")
        return j
      }
      literal(start, j, integerTag(sql.slice(start + 2, j), d === 120 ? "0x" : d === 111 ? "0o" : "0b"))
      return j
    }
    let j = start
    let integer = true
    if (c === 46) {
      j = scanDecimal(sql, start + 1)
      integer = false
    } else {
      j = scanDecimal(sql, start)
      if (sql.charCodeAt(j) === 46 && sql.charCodeAt(j + 1) !== 46) {
        integer = false
        j++
        if (isDigit(sql.charCodeAt(j))) j = scanDecimal(sql, j)
      }
    }
    const e = sql.charCodeAt(j)
    if (e === 69 || e === 101) {
      let k = j + 1
      const sign = sql.charCodeAt(k)
      if (sign === 43 || sign === 45) k++
      if (isDigit(sql.charCodeAt(k))) {
        j = scanDecimal(sql, k)
        integer = false
      } else noCache("malformed exponent")
    }
    if (j < n && isIdentCont(sql.charCodeAt(j))) noCache("trailing junk after numeric literal")
    literal(start, j, integer ? integerTag(sql.slice(start, j), "") : "F")
    return j
  }
}

/** The first token at or after `i`: skips whitespace and comments (a statement's text starts there). */
export const statementStart = (sql: string, i: number): number => {
  const n = sql.length
  while (i < n) {
    const c = sql.charCodeAt(i)
    if (isSpace(c)) i++
    else if (c === 45 && sql.charCodeAt(i + 1) === 45) i = lineEnd(sql, i + 2)
    else if (c === 47 && sql.charCodeAt(i + 1) === 42) {
      const e = blockCommentEnd(sql, i)
      if (e < 0) return n
      i = e
    } else return i
  }
  return n
}
