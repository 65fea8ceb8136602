/** The statement classifier as a service: one parser and one shape cache for the whole gateway. */
import { Context, Effect, Layer } from "effect"
import { type Classification, type ClassifierStats, loadClassifier, makeClassifier } from "./classify/index.ts"

export class StatementClassifier extends Context.Service<
  StatementClassifier,
  {
    readonly classify: (sql: string) => Classification
    readonly stats: () => ClassifierStats
  }
>()("sluice/StatementClassifier") {}

export const layerStatementClassifier = (cacheSize: number): Layer.Layer<StatementClassifier> =>
  Layer.effect(
    StatementClassifier,
    Effect.promise(loadClassifier).pipe(
      Effect.map(() => {
        const c = makeClassifier({ cacheSize })
        return StatementClassifier.of({ classify: (sql) => c.classify(sql), stats: () => c.stats() })
      })
    )
  )
