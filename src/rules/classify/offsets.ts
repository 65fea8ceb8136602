/**
 * The parser reports locations as byte offsets into the UTF-8 text; JS strings
 * index UTF-16 code units. This maps one to the other.
 */

export interface OffsetMap {
  /** UTF-8 byte offset → UTF-16 index (an offset inside a character maps to its start). */
  readonly toChar: (byte: number) => number
}

const identity: OffsetMap = { toChar: (byte) => byte }

const isAscii = (s: string): boolean => {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false
  return true
}

/** Build the map for `sql`; ASCII text (the common case) needs no table. */
export const offsetMap = (sql: string): OffsetMap => {
  if (isAscii(sql)) return identity
  // byteStart[i] = UTF-8 offset of UTF-16 index i.
  const n = sql.length
  const byteStart = new Float64Array(n + 1)
  let b = 0
  for (let i = 0; i < n; i++) {
    byteStart[i] = b
    const c = sql.charCodeAt(i)
    if (c < 0x80) b += 1
    else if (c < 0x800) b += 2
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
      const d = sql.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) {
        byteStart[i + 1] = b + 0.5 // inside the character: never a token start
        b += 4
        i++
        continue
      }
      b += 3
    } else b += 3
  }
  byteStart[n] = b
  return {
    toChar: (byte) => {
      if (byte <= 0) return 0
      if (byte >= b) return n
      // last index whose byte start is <= byte
      let lo = 0
      let hi = n
      while (lo < hi) {
        const mid = (lo + hi + 1) >>> 1
        if ((byteStart[mid] ?? 0) <= byte) lo = mid
        else hi = mid - 1
      }
      return lo
    },
  }
}

/** The parser's error cursor counts characters (code points), not bytes: map it to a UTF-16 index. */
export const codePointToChar = (sql: string, codePoints: number): number => {
  let i = 0
  for (let k = 0; k < codePoints && i < sql.length; k++) {
    const c = sql.charCodeAt(i)
    i += c >= 0xd800 && c <= 0xdbff && i + 1 < sql.length ? 2 : 1
  }
  return i
}
