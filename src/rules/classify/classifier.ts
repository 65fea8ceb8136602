/**
 * The classifier: shape key → cache → (on a miss) parse and classify.
 * Synchronous; needs `loadClassifier()` to have been awaited once.
 */
import { analyze, type Template } from "./analyze.ts"
import { ClassificationCache } from "./cache.ts"
import { assertLoaded } from "./parser.ts"
import { shapeOf, statementStart, type Shape } from "./shape-key.ts"
import type { Classification, StatementInfo } from "./types.ts"

export interface ClassifierOptions {
  /** Shapes held in the cache (0 disables it). */
  readonly cacheSize: number
  /** Longer keys are not cached (default 64 Ki characters). */
  readonly maxKeyLength?: number
  /** Characters the cache may hold in keys and pinned literals (default 32 Mi). */
  readonly maxCacheChars?: number
}

export interface ClassifierStats {
  readonly hits: number
  readonly misses: number
  readonly size: number
  /** Texts that skipped the cache (not cacheable, or keys too long). */
  readonly bypassed: number
}

export interface Classifier {
  classify(sql: string): Classification
  stats(): ClassifierStats
}

/** PostgreSQL's whitespace: the parser rejects text that is only this, the server answers EmptyQueryResponse. */
const ONLY_WHITESPACE = /^[ \t\n\r\f\v]*$/
const LONE_SURROGATE = /\p{Cs}/u

const unparseable = (message: string, cursor: number | undefined): Classification => ({
  _tag: "Unparseable",
  message,
  cursor,
})

const EMPTY: Classification = { _tag: "Classified", statements: [] }

const pinsMatch = (template: Template, sql: string, shape: Shape): boolean => {
  for (const [ordinal, text] of template.pins) {
    const start = shape.literalStart[ordinal]
    if (start === undefined) return false
    const end = shape.literalEnd[ordinal] ?? 0
    if (end - start !== text.length || sql.slice(start, end) !== text) return false
  }
  return true
}

const fromTemplate = (template: Template, sql: string, shape: Shape): Classification => {
  const statements: StatementInfo[] = template.statements.map((s) => {
    const start = statementStart(sql, s.afterSemicolon < 0 ? 0 : (shape.semicolons[s.afterSemicolon] ?? 0) + 1)
    const end = s.beforeSemicolon < 0 ? sql.length : (shape.semicolons[s.beforeSemicolon] ?? sql.length)
    return { text: sql.slice(start, end), ...s.info }
  })
  return { _tag: "Classified", statements }
}

export const makeClassifier = (options: ClassifierOptions): Classifier => {
  const cache = new ClassificationCache(options.cacheSize, options.maxCacheChars)
  const maxKeyLength = options.maxKeyLength ?? 64 * 1024
  let bypassed = 0

  const classifyUnchecked = (sql: string): Classification => {
    const nul = sql.indexOf("\u0000")
    if (nul >= 0) return unparseable("statement text contains a NUL character", nul)
    const lone = LONE_SURROGATE.exec(sql)
    if (lone !== null) return unparseable("statement text is not well-formed Unicode (lone surrogate)", lone.index)
    if (ONLY_WHITESPACE.test(sql)) return EMPTY
    const shape = shapeOf(sql)
    const cacheable = shape.cacheable && cache.capacity > 0 && shape.key.length <= maxKeyLength
    if (cacheable) {
      const hit = cache.find(shape.key, (t) => pinsMatch(t, sql, shape))
      if (hit !== undefined) return fromTemplate(hit, sql, shape)
    } else bypassed++
    const fresh = analyze(sql, shape)
    if (cacheable && fresh.template !== undefined) cache.add(shape.key, fresh.template)
    return fresh.classification
  }

  return {
    classify: (sql) => {
      assertLoaded()
      if (typeof sql !== "string") return unparseable("statement text is not a string", undefined)
      try {
        return classifyUnchecked(sql)
      } catch (err) {
        // fail closed: the gateway blocks what cannot be classified
        return unparseable(`classifier error: ${err instanceof Error ? err.message : String(err)}`, undefined)
      }
    },
    stats: () => ({ ...cache.stats(), bypassed }),
  }
}

let shared: Classifier | undefined

/** Classify with a process-wide classifier (cache of 4096 shapes). */
export const classifySql = (sql: string): Classification => {
  shared ??= makeClassifier({ cacheSize: 4096 })
  return shared.classify(sql)
}

/** Fresh, uncached classification (tests compare the cache against it). */
export const classifyUncached = (sql: string): Classification => {
  assertLoaded()
  return makeClassifier({ cacheSize: 0 }).classify(sql)
}
