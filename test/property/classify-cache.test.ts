/**
 * The classification cache's safety property: a text served from the cache
 * gets exactly what a fresh parse would give it. Statement templates are
 * filled with literals of every kind (with hostile content: quotes,
 * backslashes, dollar tags, comment starters, newlines), decorated with
 * comments, whitespace and keyword case, and classified through one small
 * shared cache (so that entries are reused across different texts and get
 * evicted), then compared with an uncached classification.
 *
 * Also: the key lexer finds the literals libpg-query's own scanner finds;
 * some texts must never share a key; and nothing makes the classifier throw.
 */
import fc from "fast-check"
import { scanSync } from "libpg-query"
import { beforeAll, describe, expect, it } from "vitest"
import {
  classifySql,
  classifyUncached,
  loadClassifier,
  makeClassifier,
  shapeOf,
  type Classification,
} from "../../src/rules/classify/index.ts"
import { offsetMap } from "../../src/rules/classify/offsets.ts"

beforeAll(async () => {
  await loadClassifier()
})

// ---------------------------------------------------------------------------
// literals

const hostileChar = fc.constantFrom(
  "a", "Z", "0", " ", "'", "''", "\\", "\"", "$", "$$", "$a$", "-", "--", "/", "*", "/*", "*/", ";", "\n", "\r", "\t",
  "é", "𝄞", "DELETE FROM t;", "E'", "U&", "\u00a0",
)
const hostileText = fc.array(hostileChar, { maxLength: 8 }).map((xs) => xs.join(""))

const digits = fc.integer({ min: 1, max: 12 }).chain((n) => fc.string({ unit: fc.constantFrom(..."0123456789"), minLength: n, maxLength: n }))

const integerLit = fc.oneof(
  fc.integer({ min: 0, max: 2 ** 31 - 1 }).map(String),
  fc.bigInt({ min: 2n ** 31n - 3n, max: 2n ** 31n + 3n }).map(String),
  fc.bigInt({ min: 0n, max: 10n ** 30n }).map(String),
  digits,
  fc.integer({ min: 0, max: 99999 }).map((n) => String(n).replace(/(\d)(?=(\d{3})+$)/g, "$1_")),
  fc.integer({ min: 0, max: 2 ** 32 }).map((n) => `0x${n.toString(16)}`),
  fc.integer({ min: 0, max: 4096 }).map((n) => `0o${n.toString(8)}`),
  fc.integer({ min: 0, max: 64 }).map((n) => `0b${n.toString(2)}`),
)
const floatLit = fc.oneof(
  fc.tuple(digits, digits).map(([a, b]) => `${a}.${b}`),
  digits.map((d) => `.${d}`),
  digits.map((d) => `${d}.`),
  fc.tuple(digits, fc.constantFrom("e", "E", "e+", "e-"), fc.integer({ min: 0, max: 300 })).map(([a, e, x]) => `${a}${e}${x}`),
  fc.double({ noNaN: true, noDefaultInfinity: true, min: 0 }).map((d) => String(d)),
)
const junkNumber = fc.constantFrom("1abc", "0x", "0xg", "1e", "1e+", "1_", "1__0", "0b2", "1.e", "$1a", "1..2", "1.2.3")

const standardString = hostileText.map((s) => `'${s.replaceAll("'", "''")}'`)
const rawQuoted = hostileText.map((s) => `'${s}'`) // quotes not doubled: ends early, or breaks the text
const continued = fc
  .tuple(hostileText, fc.constantFrom("\n", "\n\n", " \n ", "\r\n", "\t\n", " -- c\n", "\n-- c\n", " /* c */\n", "\f\n", "\v\n"), hostileText)
  .map(([a, sep, b]) => `'${a.replaceAll("'", "''")}'${sep}'${b.replaceAll("'", "''")}'`)
const eString = fc
  .array(
    fc.constantFrom(
      "a", "\\n", "\\t", "\\'", "\\\\", "''", "\\x41", "\\x4", "\\x", "\\101", "\\1", "\\0", "\\000", "\\400", "\\xff", "\\u0041",
      "\\U0001F600", "\\ud83d\\ude00", "\\u12", "\\é", "é", "\\", "'", "\"", "$$", "\n",
    ),
    { maxLength: 6 },
  )
  .map((xs) => `${xs.length % 2 === 0 ? "E" : "e"}'${xs.join("")}'`)
const dollarString = fc
  .tuple(fc.constantFrom("", "a", "tag", "T_1", "x9", "é"), hostileText)
  .map(([tag, body]) => `$${tag}$${body}$${tag}$`)
const unicodeString = fc
  .tuple(
    fc.array(fc.constantFrom("a", "\\0061", "\\+000061", "\\\\", "''", "\\d800", "\\D83D\\DE00", "\\zzzz", "\\0000", "!0061", "é"), { maxLength: 5 }),
    fc.constantFrom("", " UESCAPE '!'", " uescape '\\'", " UESCAPE '+'"),
  )
  .map(([xs, esc]) => `U&'${xs.join("")}'${esc}`)
const bitString = fc.oneof(
  fc.string({ unit: fc.constantFrom("0", "1"), maxLength: 8 }).map((s) => `B'${s}'`),
  fc.string({ unit: fc.constantFrom(..."0123456789abcdefABCDEF"), maxLength: 8 }).map((s) => `X'${s}'`),
  hostileText.map((s) => `b'${s}'`),
)
const nationalString = hostileText.map((s) => `N'${s.replaceAll("'", "''")}'`)
const keywordLit = fc.constantFrom("TRUE", "false", "NULL", "on", "off")
const negative = fc.tuple(fc.constantFrom("-", "- ", "- -", "+"), fc.oneof(integerLit, floatLit)).map(([s, n]) => `${s}${n}`)

const literal: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: integerLit },
  { weight: 3, arbitrary: floatLit },
  { weight: 4, arbitrary: standardString },
  { weight: 1, arbitrary: rawQuoted },
  { weight: 2, arbitrary: continued },
  { weight: 3, arbitrary: eString },
  { weight: 3, arbitrary: dollarString },
  { weight: 2, arbitrary: unicodeString },
  { weight: 1, arbitrary: bitString },
  { weight: 1, arbitrary: nationalString },
  { weight: 1, arbitrary: keywordLit },
  { weight: 2, arbitrary: negative },
  { weight: 1, arbitrary: junkNumber },
)

// ---------------------------------------------------------------------------
// templates: fixed text with holes; spaces in fixed text become random whitespace or comments

const L = Symbol("literal")
/** An identifier hole: the same name quoted or not, in any case. */
const I = Symbol("identifier")
type Template = ReadonlyArray<string | typeof L | typeof I>

const identifier = fc.constantFrom("users", "USERS", "Users", "\"users\"", "\"Users\"", "\"USERS\"", "U&\"users\"", "u&\"\\0075sers\"", "\"us\"\"ers\"", "public.users", "\"public\".\"Users\"", "pg_catalog.pg_class")

const templates: ReadonlyArray<Template> = [
  ["SELECT ", L],
  ["SELECT ", L, " , ", L],
  ["SELECT ", L, " ", L],
  ["SELECT ", L, "\n", L],
  ["SELECT * FROM t WHERE a = ", L, " AND b <> ", L],
  ["SELECT * FROM \"Users\" WHERE \"Name\" = ", L],
  ["SELECT * FROM users WHERE name = ", L],
  ["SELECT * FROM ", I, " WHERE ", I, " . a = ", L],
  ["DELETE FROM ", I, " WHERE id = ", L, " RETURNING ", I, " . *"],
  ["SELECT ", I, " ( ", L, " )"],
  ["SELECT * FROM s.t LIMIT ", L, " OFFSET ", L],
  ["SELECT ", L, " :: int , interval ", L, " , date ", L],
  ["DELETE FROM t WHERE id = ", L],
  ["UPDATE t SET a = ", L, " WHERE b IN ( ", L, " , ", L, " ) RETURNING a"],
  ["INSERT INTO t ( a , b ) VALUES ( ", L, " , ", L, " )"],
  ["WITH d AS ( DELETE FROM t WHERE a = ", L, " RETURNING * ) SELECT * FROM d"],
  ["SELECT * FROM t WHERE a = ", L, " FOR UPDATE"],
  ["EXPLAIN ( ANALYZE ", L, " ) DELETE FROM t"],
  ["EXPLAIN ( ANALYZE ", L, " ) SELECT ", L],
  ["SET client_encoding = ", L],
  ["SET standard_conforming_strings = ", L],
  ["SET work_mem = ", L],
  ["SET ROLE ", L],
  ["SELECT nextval( ", L, " )"],
  ["SELECT setval( ", L, " , ", L, " )"],
  ["SELECT pg_terminate_backend( ", L, " )"],
  ["SELECT my_func( ", L, " )"],
  ["COPY t TO ", L],
  ["COPY ( SELECT ", L, " ) TO STDOUT"],
  ["DO ", L],
  ["FETCH ", L, " FROM c"],
  ["PREPARE p AS SELECT * FROM t WHERE a = ", L],
  ["EXECUTE p ( ", L, " )"],
  ["COMMENT ON TABLE t IS ", L],
  ["SELECT ", L, " ; DELETE FROM t WHERE a = ", L],
  ["SELECT ", L, " ; SELECT ", L, " ; COPY t TO PROGRAM ", L],
  ["SELECT * FROM t WHERE a = ", L, " -- ", L, "\n; DELETE FROM t"],
  ["SELECT U&\"d\\0061t\" , ", L, " FROM U&\"d\\0061t\""],
  ["SELECT $1 , ", L, " FROM t WHERE b = $2"],
  ["LOCK t IN ", L, " MODE"],
  ["SELECT * FROM t TABLESAMPLE system ( ", L, " ) REPEATABLE ( ", L, " )"],
  ["SELECT CAST( ", L, " AS float ( ", L, " ) )"],
  ["SELECT ", L, " ", L, " ", L],
]

const separator = fc.constantFrom(" ", "  ", "\n", "\t", "\r\n", " /* c */ ", "/* /* nested */ */", " -- c\n", "\f", "\v", "/**/")

/** Random case for ASCII letters in fixed text outside double quotes. */
const recase = (text: string, flips: ReadonlyArray<boolean>): string => {
  let out = ""
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] ?? ""
    if (ch === "\"") quoted = !quoted
    out += !quoted && /[a-z]/i.test(ch) && flips[i % flips.length] === true ? (ch === ch.toLowerCase() ? ch.toUpperCase() : ch.toLowerCase()) : ch
  }
  return out
}

const render = (
  t: Template,
  literals: ReadonlyArray<string>,
  names: ReadonlyArray<string>,
  seps: ReadonlyArray<string>,
  flips: ReadonlyArray<boolean>,
): string => {
  let k = 0
  let m = 0
  let s = 0
  let out = ""
  for (const part of t) {
    if (part === L) out += literals[k++ % literals.length] ?? "0"
    else if (part === I) out += names[m++ % names.length] ?? "t"
    else
      out += recase(part, flips.length > 0 ? flips : [false]).replace(/ /g, () => seps[s++ % Math.max(1, seps.length)] ?? " ")
  }
  return out
}

const statementOf = (t: Template): fc.Arbitrary<string> =>
  fc
    .tuple(
      fc.array(literal, { minLength: 1, maxLength: 4 }),
      fc.array(identifier, { minLength: 1, maxLength: 3 }),
      fc.array(separator, { minLength: 1, maxLength: 6 }),
      fc.array(fc.boolean(), { minLength: 1, maxLength: 7 }),
      fc.constantFrom("", " ", "\n", " ;", "; ", " -- end"),
      fc.constantFrom("", " ", "/* lead */ ", "\n"),
    )
    .map(([lits, names, seps, flips, tail, lead]) => lead + render(t, lits, names, seps, flips) + tail)

const templateIndex = fc.integer({ min: 0, max: templates.length - 1 })
const statement = templateIndex.chain((i) => statementOf(templates[i] ?? ["SELECT 1"]))
/** Two texts of one template: the second will often be served from the first one's entry. */
const sameShapePair = templateIndex.chain((i) => fc.tuple(statementOf(templates[i] ?? []), statementOf(templates[i] ?? [])))

// ---------------------------------------------------------------------------

/** Runs per property; SLUICE_CLASSIFY_RUNS=20000 for a deeper search. */
const RUNS = Number(process.env["SLUICE_CLASSIFY_RUNS"] ?? 1000)
/** Heavy properties parse thousands of texts on a shared 2-core machine. */
const SLOW = 300_000

describe("the classification cache", () => {
  it("serves exactly what a fresh parse gives (cached == uncached), across literals, comments, case, quoting", () => {
    const cached = makeClassifier({ cacheSize: 48 })
    fc.assert(
      fc.property(sameShapePair, ([a, b]) => {
        for (const sql of [a, b, a]) expect(cached.classify(sql), JSON.stringify(sql)).toEqual(classifyUncached(sql))
      }),
      { numRuns: RUNS },
    )
    const stats = cached.stats()
    console.log("cache after the cached == uncached property:", JSON.stringify(stats))
    expect(stats.hits).toBeGreaterThan(RUNS / 2) // the cache was really used
    expect(stats.size).toBeLessThanOrEqual(48)
  }, SLOW)

  it("mutated SQL: cached == uncached and never a throw", () => {
    const cached = makeClassifier({ cacheSize: 32 })
    const edit = fc.tuple(fc.nat(), fc.nat({ max: 6 }), fc.oneof(hostileChar, literal, fc.constant("")))
    fc.assert(
      fc.property(statement, fc.array(edit, { maxLength: 4 }), (sql, edits) => {
        let s = sql
        for (const [at, del, ins] of edits) {
          const p = s.length === 0 ? 0 : at % (s.length + 1)
          s = s.slice(0, p) + ins + s.slice(p + del)
        }
        const r = cached.classify(s)
        expect(r._tag === "Classified" || r._tag === "Unparseable").toBe(true)
        expect(r, JSON.stringify(s)).toEqual(classifyUncached(s))
        expect(cached.classify(s)).toEqual(r)
      }),
      { numRuns: RUNS },
    )
  }, SLOW)

  it("a second text of one shape is a hit; a pinned literal that differs is a miss", () => {
    const c = makeClassifier({ cacheSize: 10 })
    c.classify("SELECT * FROM t WHERE a = 1")
    c.classify("select * from T where A = 987 /* other */")
    expect(c.stats()).toMatchObject({ hits: 1, misses: 1, size: 1 })
    const analyzed = (r: Classification): string | undefined => (r._tag === "Classified" ? r.statements[0]?.class : r._tag)
    expect(analyzed(c.classify("EXPLAIN (ANALYZE 0) DELETE FROM t"))).toBe("read")
    expect(analyzed(c.classify("EXPLAIN (ANALYZE 1) DELETE FROM t"))).toBe("write")
    expect(analyzed(c.classify("EXPLAIN (ANALYZE 0) DELETE FROM t"))).toBe("read")
    expect(c.stats()).toMatchObject({ hits: 2, misses: 3, size: 2 })
  })

  it("is a bounded LRU", () => {
    const c = makeClassifier({ cacheSize: 3 })
    for (const t of ["a", "b", "c", "d"]) c.classify(`SELECT * FROM ${t}`)
    expect(c.stats().size).toBe(3)
    c.classify("SELECT * FROM a") // evicted: a miss
    c.classify("SELECT * FROM d") // still there: a hit
    expect(c.stats()).toMatchObject({ hits: 1, misses: 5, size: 3 })
  })
})

describe("the shape key", () => {
  const key = (sql: string): string => shapeOf(sql).key

  it("never lets differently classified texts share a key", () => {
    const apart: ReadonlyArray<readonly [string, string]> = [
      ["SELECT 1", "DELETE FROM t"],
      ["SELECT * FROM \"Users\"", "SELECT * FROM users"],
      ["SELECT * FROM \"USERS\"", "SELECT * FROM users"],
      ["SELECT * FROM \"users\"", "SELECT * FROM users"],
      ["SELECT 'a'", "SELECT \"a\""],
      ["SELECT 1", "SELECT '1'"],
      ["SELECT 1", "SELECT 1.0"],
      ["SELECT 2147483647", "SELECT 2147483648"],
      ["SELECT $1", "SELECT $2"],
      ["SELECT E'x'", "SELECT U&'x'"],
      ["SELECT B'1'", "SELECT X'1'"],
      ["SELECT 'a' 'b'", "SELECT 'a'\n'b'"],
      ["SELECT 1", "SELECT 1; DELETE FROM t"],
      ["SELECT $$a$$", "SELECT $$a$$; DELETE FROM t"],
      ["SELECT a FROM t", "SELECT ab FROM t"],
      ["SELECT a b FROM t", "SELECT ab FROM t"],
      ["SELECT TRUE", "SELECT FALSE"],
      ["SELECT NULL", "SELECT 'NULL'"],
      ["SELECT U&\"a\"", "SELECT U&\"A\""],
      ["SELECT U&'\\0061' UESCAPE '!'", "SELECT U&'\\0061'"],
    ]
    for (const [a, b] of apart) expect(key(a), `${a} | ${b}`).not.toBe(key(b))
    // and ones that must share (the point of the cache)
    const together: ReadonlyArray<readonly [string, string]> = [
      ["SELECT * FROM t WHERE a = 1", "select  *  from T where A = 42"],
      ["SELECT 'x'", "SELECT E'\\'y'"],
      ["SELECT 'x'", "SELECT $tag$ ; DELETE FROM t; $tag$"],
      ["SELECT 'x'", "SELECT 'a'\n'b'"],
      ["SELECT 1.5", "SELECT 1e10"],
      ["SELECT /* c */ 1", "SELECT -- c\n 2"],
    ]
    for (const [a, b] of together) expect(key(a), `${a} | ${b}`).toBe(key(b))
  })

  it("texts of different templates never share a key", () => {
    fc.assert(
      fc.property(templateIndex, templateIndex, fc.nat(), (i, j, seed) => {
        fc.pre(i !== j)
        const [a] = fc.sample(statementOf(templates[i] ?? []), { seed, numRuns: 1 })
        const [b] = fc.sample(statementOf(templates[j] ?? []), { seed: seed + 1, numRuns: 1 })
        if (a === undefined || b === undefined) return
        const sa = shapeOf(a)
        const sb = shapeOf(b)
        if (sa.cacheable && sb.cacheable && sa.key === sb.key) {
          // only possible when literals change the token sequence (e.g. a keyword literal): then classifications must agree
          const strip = (r: Classification) =>
            r._tag === "Classified" ? r.statements.map(({ text: _text, ...rest }) => rest) : r._tag
          expect(strip(classifyUncached(a))).toEqual(strip(classifyUncached(b)))
        }
      }),
      { numRuns: Math.min(RUNS, 500) },
    )
  }, SLOW)

  it("finds the literals libpg-query's scanner finds", () => {
    const LITERAL_TOKENS: Readonly<Record<number, string>> = { 260: "F", 261: "S", 262: "U", 263: "B", 264: "X", 266: "I" }
    fc.assert(
      fc.property(fc.oneof(statement, fc.tuple(statement, statement).map(([a, b]) => `${a};${b}`)), (sql) => {
        const shape = shapeOf(sql)
        if (!shape.cacheable || sql.includes("\u0000")) return
        let tokens
        try {
          tokens = scanSync(sql).tokens
        } catch {
          return // a lexer error: the text is never cached (Unparseable results are not)
        }
        const map = offsetMap(sql)
        const theirs = tokens
          .filter((t) => LITERAL_TOKENS[t.tokenType] !== undefined)
          .map((t) => `${map.toChar(t.start)}-${map.toChar(t.end)}:${LITERAL_TOKENS[t.tokenType]}`)
        const ours = shape.literalStart.map(
          (start, k) => `${start}-${shape.literalEnd[k]}:${shape.key.charAt((shape.literalKey[k] ?? 0) + 1)}`,
        )
        expect(ours, JSON.stringify(sql)).toEqual(theirs)
      }),
      { numRuns: RUNS },
    )
  }, SLOW)
})

describe("the classifier never throws", () => {
  const loneSurrogates = fc.string({ unit: fc.constantFrom("a", "\ud800", "\udc00", "\u0000", "'", "$", "-", "/", "*", "é") })
  for (const [name, arb] of [
    ["fc.string()", fc.string()],
    ["full Unicode", fc.string({ unit: "binary" })],
    ["grapheme", fc.string({ unit: "grapheme" })],
    ["lone surrogates and NUL", loneSurrogates],
    ["hostile pieces", fc.array(fc.oneof(hostileChar, literal, separator), { maxLength: 12 }).map((xs) => xs.join(""))],
  ] as const) {
    it(name, () => {
      fc.assert(
        fc.property(arb, (s) => {
          const r = classifySql(s)
          expect(r._tag === "Classified" || r._tag === "Unparseable").toBe(true)
        }),
        { numRuns: RUNS },
      )
    }, SLOW)
  }
})

describe("very long statements", () => {
  it("a 1 MB statement is classified (timing logged)", () => {
    const inList = `SELECT * FROM t WHERE a IN (${Array.from({ length: 140_000 }, (_, i) => String(i)).join(", ")})`
    const bigLiteral = `INSERT INTO t (doc) VALUES ('${"x".repeat(1 << 20)}')`
    const manyStatements = Array.from({ length: 30_000 }, (_, i) => `INSERT INTO t VALUES (${i})`).join(";")
    for (const [name, sql, n] of [
      ["1 MB IN list", inList, 1],
      ["1 MB string literal", bigLiteral, 1],
      ["30 000 statements (0.8 MB)", manyStatements, 30_000],
    ] as const) {
      const c = makeClassifier({ cacheSize: 16 })
      const t0 = performance.now()
      const r = c.classify(sql)
      const first = performance.now() - t0
      const t1 = performance.now()
      c.classify(sql)
      const second = performance.now() - t1
      console.log(`${name}: ${(sql.length / 1e6).toFixed(2)} M chars, first ${first.toFixed(0)} ms, again ${second.toFixed(1)} ms`)
      expect(r._tag).toBe("Classified")
      if (r._tag === "Classified") expect(r.statements.length).toBe(n)
      expect(first).toBeLessThan(20_000)
    }
  }, SLOW)
})
