/** Small statistics helpers: medians across repetitions, ratios, rounding. */

export const median = (xs: ReadonlyArray<number>): number => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return Number.NaN
  const mid = Math.floor(v.length / 2)
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2
}

/** a / b, or NaN when either side is missing. */
export const ratio = (a: number | null | undefined, b: number | null | undefined): number =>
  a === null || a === undefined || b === null || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? Number.NaN : a / b

export const round = (x: number, digits = 2): number => (Number.isFinite(x) ? Number(x.toFixed(digits)) : Number.NaN)

/** Rotates a list by `by` places: each repetition starts with a different target. */
export const rotate = <T>(xs: ReadonlyArray<T>, by: number): T[] => {
  if (xs.length === 0) return []
  const k = ((by % xs.length) + xs.length) % xs.length
  return [...xs.slice(k), ...xs.slice(0, k)]
}

export const fmt = (x: number | null | undefined, digits = 1): string =>
  x === null || x === undefined || !Number.isFinite(x) ? "n/a" : x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })

export const fmtK = (x: number | null | undefined): string =>
  x === null || x === undefined || !Number.isFinite(x) ? "n/a" : x >= 1000 ? `${(x / 1000).toFixed(1)}k` : x.toFixed(0)

export const fmtRatio = (x: number | null | undefined): string =>
  x === null || x === undefined || !Number.isFinite(x) ? "n/a" : `${x.toFixed(2)}×`
