/**
 * The PostgreSQL statement classifier (issue 3): what each statement of a
 * simple Query or a Parse does, by effect, with the relations, columns and
 * functions it touches. Pure: no Effect services, no I/O besides loading the
 * parser's WASM once (`await loadClassifier()` at start).
 *
 * See README.md in this directory for the rules and the cache key design.
 */
export type {
  Classification,
  ColumnRef,
  CursorRef,
  FunctionRef,
  PreparedRef,
  RelationRef,
  StatementClass,
  StatementInfo,
} from "./types.ts"
export { loadClassifier, isClassifierLoaded } from "./parser.ts"
export { ClassificationCache, type CacheStats } from "./cache.ts"
export {
  classifySql,
  classifyUncached,
  makeClassifier,
  type Classifier,
  type ClassifierOptions,
  type ClassifierStats,
} from "./classifier.ts"
export { shapeOf, type Shape } from "./shape-key.ts"
export {
  ADMIN_FUNCTIONS,
  ADMIN_PREFIXES,
  DYNAMIC_FUNCTIONS,
  LOCK_FUNCTIONS,
  WRITE_FUNCTIONS,
} from "./function-effects.ts"
