/**
 * columnsProjected / columnsReturned: which columns' values can reach a
 * statement's result rows or the data it stores (for masking), as opposed to
 * columns that only filter, group or order.
 */
import fc from "fast-check"
import { beforeAll, describe, expect, it } from "vitest"
import {
  classifySql,
  classifyUncached,
  loadClassifier,
  type ColumnRef,
  type RelationRef,
  type StatementInfo,
} from "../../src/rules/classify/index.ts"

const rel = (r: RelationRef): string => (r.schema === undefined ? r.name : `${r.schema}.${r.name}`)
const col = (c: ColumnRef): string => `${c.relation === undefined ? "?" : rel(c.relation)}.${c.column}`
const sorted = (cs: ReadonlyArray<ColumnRef>): string[] => cs.map(col).sort()

const only = (sql: string): StatementInfo => {
  const r = classifySql(sql)
  if (r._tag !== "Classified") throw new Error(`${JSON.stringify(sql)} did not parse: ${r.message}`)
  const s = r.statements[0]
  if (r.statements.length !== 1 || s === undefined) throw new Error(`${JSON.stringify(sql)} is not one statement`)
  return s
}

/** [sql, projected, returned] ("?" is an unresolved relation). */
type Row = readonly [string, ReadonlyArray<string>, ReadonlyArray<string>]

const table: Record<string, ReadonlyArray<Row>> = {
  "target lists": [
    ["SELECT a, t.b FROM s.t", ["s.t.a", "s.t.b"], []],
    ["SELECT * FROM t", ["t.*"], []],
    ["SELECT t.* FROM t", ["t.*"], []],
    ["TABLE customers", ["customers.*"], []],
    ["SELECT a FROM t, u", ["?.a"], []],
    ["SELECT 1, count(*) FROM t", [], []],
    ["SELECT upper(email) || name FROM customers", ["customers.email", "customers.name"], []],
    ["SELECT coalesce(email, phone, 'none') FROM customers", ["customers.email", "customers.phone"], []],
    ["SELECT email::varchar(3) FROM customers", ["customers.email"], []],
    // the whole CASE counts, conditions included (fail closed)
    ["SELECT CASE WHEN vip THEN 'x' ELSE '' END FROM customers", ["customers.vip"], []],
    ["VALUES (1), (2)", [], []],
  ],
  "filter, group and order clauses": [
    ["SELECT id FROM customers WHERE email = 'x'", ["customers.id"], []],
    ["SELECT a FROM t WHERE b IN (SELECT email FROM customers WHERE c = 1)", ["t.a"], []],
    ["SELECT a FROM t WHERE EXISTS (SELECT row_to_json(c), (SELECT email) FROM customers c)", ["t.a"], []],
    ["SELECT o.total FROM orders o JOIN customers c ON c.id = o.cid", ["orders.total"], []],
    ["SELECT a FROM t JOIN u USING (id)", ["?.a"], []],
    ["SELECT a FROM t GROUP BY a, b HAVING max(c) > 0 ORDER BY d LIMIT e OFFSET f", ["t.a"], []],
    ["SELECT count(*) FROM customers GROUP BY ROLLUP (region, email)", [], []],
    ["SELECT DISTINCT ON (a) b FROM t ORDER BY a", ["t.b"], []],
    ["SELECT a FROM t ORDER BY (SELECT email FROM customers LIMIT 1)", ["t.a"], []],
  ],
  aggregates: [
    ["SELECT count(*) FILTER (WHERE email LIKE '%x') FROM customers", [], []],
    ["SELECT string_agg(email, ',' ORDER BY name) FILTER (WHERE active) FROM customers", ["customers.email"], []],
    // an ordered-set aggregate returns a value of its ORDER BY
    ["SELECT mode() WITHIN GROUP (ORDER BY email) FROM customers", ["customers.email"], []],
    ["SELECT rank() OVER (PARTITION BY region ORDER BY total) FROM orders", [], []],
    ["SELECT sum(total) OVER w FROM orders WINDOW w AS (PARTITION BY region ORDER BY day)", ["orders.total"], []],
  ],
  subqueries: [
    ["SELECT a, (SELECT email FROM customers c WHERE c.id = t.cid) FROM t", ["t.a", "customers.email"], []],
    ["SELECT x FROM (SELECT email AS x FROM customers WHERE id > 0) sub", ["customers.email", "?.x"], []],
    // an alias that renames columns hides which column a name is: any may be meant
    ["SELECT upper(e) FROM customers AS t(i, n, e)", ["customers.*"], []],
    ["SELECT t.e FROM customers t(i, n, e) WHERE t.n = 'x'", ["customers.*"], []],
    ["SELECT upper(j.c) FROM (customers JOIN orders USING (id)) AS j(a, b, c)", ["?.*"], []],
    ["SELECT upper(c) FROM (customers JOIN orders USING (id)) AS j(a, b, c)", ["?.*"], []],
    ["WITH s AS (SELECT email FROM customers WHERE id > 0) SELECT * FROM s", ["customers.email", "?.*"], []],
    ["SELECT email FROM customers UNION ALL SELECT name FROM users ORDER BY 1", ["customers.email", "users.name"], []],
    // EXCEPT's right arm only removes rows: over-reported
    ["SELECT a FROM t EXCEPT SELECT email FROM customers", ["t.a", "customers.email"], []],
    [
      "SELECT c.id, x.v FROM customers c, LATERAL (SELECT c.email AS v WHERE c.phone IS NOT NULL) x",
      ["customers.id", "customers.email", "?.v"],
      [],
    ],
    ["SELECT * FROM customers c CROSS JOIN LATERAL unnest(c.tags) tag", ["?.*", "customers.tags"], []],
  ],
  "whole rows": [
    ["SELECT row_to_json(c) FROM customers c", ["customers.c", "customers.*"], []],
    ["SELECT c::text FROM customers c", ["customers.c", "customers.*"], []],
    ["SELECT ROW(c.*) FROM customers c", ["customers.*"], []],
    ["SELECT (c).email FROM customers c", ["customers.c", "customers.*"], []],
    ["SELECT row_to_json(customers) FROM customers", ["customers.customers", "customers.*"], []],
    ["SELECT to_json(c) FROM customers c, orders o", ["?.c", "customers.*"], []],
    // the name is looked up through outer levels too; the column reading resolves at its own level
    ["SELECT (SELECT row_to_json(c) FROM orders o) FROM customers c", ["orders.c", "customers.*"], []],
    ["SELECT row_to_json(s) FROM (SELECT email FROM customers) s", ["customers.email", "?.s", "?.*"], []],
    ["SELECT id FROM customers c WHERE c::text LIKE '%x%'", ["customers.id"], []],
  ],
  "INSERT, UPDATE, DELETE, MERGE": [
    ["INSERT INTO archive SELECT email FROM customers WHERE id = 1", ["customers.email"], []],
    ["INSERT INTO archive SELECT * FROM customers", ["customers.*"], []],
    ["INSERT INTO t (a) VALUES ((SELECT email FROM customers WHERE id = 1))", ["customers.email"], []],
    ["UPDATE t SET a = c.email FROM customers c WHERE t.cid = c.id", ["customers.email"], []],
    ["UPDATE t SET a = b FROM customers c WHERE t.cid = c.id", ["?.b"], []],
    ["UPDATE t SET a = 1 WHERE b = 2", [], []],
    ["UPDATE t SET (a, b) = (SELECT email, phone FROM customers c WHERE c.id = t.cid)", ["customers.email", "customers.phone"], []],
    ["DELETE FROM customers WHERE email LIKE '%x' RETURNING id", ["customers.id"], ["customers.id"]],
    ["DELETE FROM t USING customers c WHERE c.id = t.cid AND c.email = ''", [], []],
    ["DELETE FROM t RETURNING *", ["t.*"], ["t.*"]],
    ["UPDATE t SET a = a + 1 RETURNING old.a, new.*", ["t.a", "t.*"], ["t.a", "t.*"]],
    [
      "INSERT INTO t (a) VALUES (1) ON CONFLICT (a) WHERE b > 0 DO UPDATE SET c = excluded.c WHERE t.d = 1 RETURNING t.e",
      ["?.c", "t.e"],
      ["t.e"],
    ],
    [
      "MERGE INTO t USING customers c ON t.id = c.id WHEN MATCHED AND c.active THEN UPDATE SET a = c.email " +
        "WHEN NOT MATCHED THEN INSERT (a) VALUES (c.name) RETURNING t.a",
      ["customers.email", "customers.name", "t.a"],
      ["t.a"],
    ],
    // a data-modifying CTE's RETURNING feeds the outer query (here into storage): projected, not returned
    ["WITH d AS (DELETE FROM customers RETURNING email) INSERT INTO archive SELECT * FROM d", ["customers.email", "?.*"], []],
    ["WITH d AS (DELETE FROM customers RETURNING email) SELECT 1 FROM d", ["customers.email"], []],
  ],
  "statements that store or send a query's values": [
    ["CREATE TABLE x AS SELECT email FROM customers WHERE id = 1", ["customers.email"], []],
    ["CREATE MATERIALIZED VIEW m AS SELECT upper(email) FROM customers", ["customers.email"], []],
    ["SELECT email INTO x FROM customers WHERE id = 1", ["customers.email"], []],
    ["CREATE VIEW v AS SELECT email FROM customers WHERE id = 1", ["customers.email"], []],
    ["COPY (SELECT email FROM customers WHERE id = 1) TO STDOUT", ["customers.email"], []],
    ["COPY customers (email, phone) TO STDOUT", ["customers.email", "customers.phone"], []],
    ["COPY customers TO STDOUT", ["customers.*"], []],
    ["COPY t FROM STDIN WHERE a > 1", [], []],
    ["PREPARE p AS SELECT email FROM customers WHERE id = $1", ["customers.email"], []],
    ["DECLARE cur CURSOR FOR SELECT email FROM customers", ["customers.email"], []],
    ["EXPLAIN ANALYZE SELECT email FROM customers", ["customers.email"], []],
    // plain EXPLAIN returns the plan, no values
    ["EXPLAIN SELECT email FROM customers", [], []],
  ],
}

describe("columnsProjected and columnsReturned", () => {
  beforeAll(async () => {
    await loadClassifier()
  })

  for (const [group, rows] of Object.entries(table)) {
    describe(group, () => {
      for (const [sql, projected, returned] of rows) {
        it(sql, () => {
          const s = only(sql)
          expect(sorted(s.columnsProjected), "projected").toEqual([...projected].sort())
          expect(sorted(s.columnsReturned), "returned").toEqual([...returned].sort())
          expect(classifyUncached(sql)).toEqual(classifySql(sql))
        })
      }
    })
  }

  it("statements that move no values list none (VACUUM's columns only feed statistics)", () => {
    for (const sql of ["BEGIN", "SET search_path = a", "DO 'begin end'", "VACUUM t (a)"]) {
      const s = only(sql)
      expect(s.columnsProjected, sql).toEqual([])
      expect(s.columnsReturned, sql).toEqual([])
    }
  })
})

// ------------------------------------------------------------------ property

/**
 * Generated statements read columns p0..p3 and the whole row of t only where
 * values reach the output, and f0..f3 only where they filter, group or order
 * (including subqueries under those clauses, with target lists and whole rows
 * of their own). The projected columns must then be exactly the p-columns and
 * whole rows written, each also in columnsRead unless it is a whole row.
 */
const P = fc.constantFrom("p0", "p1", "p2", "p3", "t.p0", "t.p1", "row_to_json(t)")
const F = fc.constantFrom("f0", "f1", "f2", "f3", "t.f2", "u.f3")

const memo = <A>(f: (d: number) => fc.Arbitrary<A>): ((d: number) => fc.Arbitrary<A>) => {
  const cache = new Map<number, fc.Arbitrary<A>>()
  return (d) => {
    let a = cache.get(d)
    if (a === undefined) {
      a = f(d)
      cache.set(d, a)
    }
    return a
  }
}

/** A template whose holes are filled from arbitraries. */
const tpl = (parts: TemplateStringsArray, ...holes: Array<fc.Arbitrary<string>>): fc.Arbitrary<string> =>
  fc.tuple(...holes).map((xs) => parts.map((p, i) => p + (xs[i] ?? "")).join(""))

/** Filter-only expressions: nothing in them is projected, however deep. */
const pred: (d: number) => fc.Arbitrary<string> = memo((d) => {
  const leaf = fc.oneof(tpl`${F} = 1`, tpl`${F} IS NULL`, tpl`${F} LIKE '%x'`)
  if (d === 0) return leaf
  const e = pred(d - 1)
  return fc.oneof(
    leaf,
    tpl`(${e} AND ${e})`,
    tpl`coalesce(${F}, ${F}) > 0`,
    tpl`${F} IN (SELECT ${F} FROM u WHERE ${e})`,
    tpl`EXISTS (SELECT upper(${F}), (SELECT ${F} FROM u) FROM u ORDER BY ${F})`,
    tpl`(SELECT row_to_json(w) FROM u w WHERE ${e} LIMIT 1) IS NOT NULL`,
    tpl`(SELECT max(${F}) FROM u GROUP BY ${F} HAVING ${e}) > 0`,
  )
})

/** Expressions whose values reach the output: p-columns only, filters inside them use f-columns. */
const proj: (d: number) => fc.Arbitrary<string> = memo((d) => {
  if (d === 0) return P
  const e = proj(d - 1)
  const w = pred(d - 1)
  return fc.oneof(
    P,
    tpl`upper(${e})`,
    tpl`${e} || 'x'`,
    tpl`coalesce(${e}, ${e})`,
    tpl`(${e})::text`,
    tpl`CASE WHEN ${e} THEN ${e} ELSE ${e} END`,
    tpl`(SELECT ${e} FROM u WHERE ${w})`,
    tpl`string_agg(${e}, ',' ORDER BY ${F}) FILTER (WHERE ${w})`,
    tpl`sum(${e}) OVER (PARTITION BY ${F} ORDER BY ${F})`,
  )
})

const projList = fc.array(proj(3), { minLength: 1, maxLength: 3 }).map((xs) => xs.join(", "))

/** [sql, whether its result has a "*" entry, whether the list is RETURNING] */
const statement: fc.Arbitrary<readonly [string, boolean, boolean]> = fc.oneof(
  tpl`SELECT ${projList} FROM t WHERE ${pred(2)} GROUP BY ${F} HAVING ${pred(1)} ORDER BY ${F}`.map((s) => [s, false, false] as const),
  tpl`SELECT ${projList} FROM t JOIN u ON ${pred(2)} WHERE ${pred(1)} LIMIT 1`.map((s) => [s, false, false] as const),
  tpl`INSERT INTO dst SELECT ${projList} FROM t WHERE ${pred(2)}`.map((s) => [s, false, false] as const),
  tpl`UPDATE dst SET a = ${proj(3)} FROM t WHERE ${pred(2)}`.map((s) => [s, false, false] as const),
  tpl`CREATE TABLE x AS SELECT ${projList} FROM t WHERE ${pred(2)}`.map((s) => [s, false, false] as const),
  tpl`WITH c AS (SELECT ${projList} FROM t WHERE ${pred(2)}) SELECT * FROM c WHERE ${pred(1)}`.map(
    (s) => [s, true, false] as const,
  ),
  tpl`DELETE FROM t WHERE ${pred(2)} RETURNING ${projList}`.map((s) => [s, false, true] as const),
)

describe("columnsProjected (property)", () => {
  beforeAll(async () => {
    await loadClassifier()
  })

  it("is exactly the columns read outside filter, group and order clauses", () => {
    fc.assert(
      fc.property(statement, ([sql, star, returning]) => {
        const s = only(sql)
        const names = (cs: ReadonlyArray<ColumnRef>): string[] => [...new Set(cs.map((c) => c.column))].sort()
        const written = [...sql.matchAll(/\bp\d\b/g)].map((m) => m[0])
        // row_to_json(t): column "t" as written, and the whole row of t
        const whole = sql.includes("row_to_json(t)") ? ["t", "*"] : []
        const expected = [...new Set([...written, ...whole, ...(star ? ["*"] : [])])].sort()
        expect(names(s.columnsProjected)).toEqual(expected)
        expect(names(s.columnsReturned)).toEqual(returning ? expected : [])
        const read = new Set(s.columnsRead.map(col))
        for (const c of s.columnsProjected) expect(c.column === "*" || read.has(col(c)), col(c)).toBe(true)
        expect(classifyUncached(sql)).toEqual(classifySql(sql))
      }),
      { numRuns: 300 },
    )
  })
})
