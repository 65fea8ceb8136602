/**
 * Statements per second through the classifier, for a medium query, without
 * and with the shape cache. Each execution carries different literal values,
 * as real traffic does; the cached run still parses once per shape.
 *
 *   node scripts/classify-speed.ts [--seconds 2] [--json]
 */
import { classifyUncached, loadClassifier, makeClassifier, shapeOf } from "../src/rules/classify/index.ts"

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] : undefined
}
const seconds = Number(arg("--seconds") ?? 2)
const json = process.argv.includes("--json")

const medium = (i: number): string => `SELECT o.id, o.created_at, c.name, c.email, sum(li.qty * li.price) AS total
FROM orders o
JOIN customers c ON c.id = o.customer_id
LEFT JOIN line_items li ON li.order_id = o.id
WHERE o.created_at > now() - interval '${(i % 90) + 1} days'
  AND c.region = '${["EU", "US", "APAC"][i % 3]}'
  AND o.status IN ('paid', 'shipped', 'refund-${i}')
  AND o.amount > ${i * 7 + 0.5}
GROUP BY o.id, o.created_at, c.name, c.email
HAVING sum(li.qty) > ${i % 10}
ORDER BY total DESC
LIMIT ${50 + (i % 50)}`

const VARIANTS = 1000
// flat strings, as text decoded from the wire is (template literals build cons strings)
const texts = Array.from({ length: VARIANTS }, (_, i) => Buffer.from(medium(i)).toString())

/** Runs `f` over the texts for about `seconds`; returns calls per second. */
const rate = (f: (sql: string) => unknown): number => {
  for (let i = 0; i < 200; i++) f(texts[i % VARIANTS] ?? "")
  let n = 0
  const start = performance.now()
  const deadline = start + seconds * 1000
  while (performance.now() < deadline) {
    for (let k = 0; k < 100; k++) f(texts[n++ % VARIANTS] ?? "")
  }
  return (n * 1000) / (performance.now() - start)
}

await loadClassifier()
const uncached = rate(classifyUncached)
const classifier = makeClassifier({ cacheSize: 1024 })
const cached = rate((sql) => classifier.classify(sql))
const keyOnly = rate(shapeOf)
const stats = classifier.stats()

const result = {
  query: "medium (3 joins, aggregate, 7 literals, ~420 chars)",
  uncachedPerSecond: Math.round(uncached),
  cachedPerSecond: Math.round(cached),
  shapeKeyPerSecond: Math.round(keyOnly),
  uncachedMicros: Number((1e6 / uncached).toFixed(1)),
  cachedMicros: Number((1e6 / cached).toFixed(2)),
  cache: stats,
}
if (json) console.log(JSON.stringify(result))
else {
  console.log(`classify, no cache:   ${result.uncachedPerSecond} statements/s (${result.uncachedMicros} µs each)`)
  console.log(`classify, with cache: ${result.cachedPerSecond} statements/s (${result.cachedMicros} µs each)`)
  console.log(`shape key alone:      ${result.shapeKeyPerSecond} statements/s`)
  console.log(`cache: ${JSON.stringify(stats)}`)
}
