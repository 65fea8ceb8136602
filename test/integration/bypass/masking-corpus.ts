/**
 * The masking bypass corpus: statements that try to get a masked value (or something
 * derived from it) out through the gateway, as data. The runner
 * (../pg-masking-bypass.test.ts) runs every case in a fresh session and searches every
 * byte the client received for the secrets, in many encodings (see `secretNeedles`).
 *
 * Three lists, each case with why it is there:
 * - CORPUS: nothing secret may reach the client; each step's outcome is asserted too
 *   (blocked by a mask, answered, or a server error whose text is withheld).
 * - KNOWN_LEAKS: cases that DO leak today, each with the diagnosis. The runner asserts
 *   that they still leak, so that whoever fixes one must move it to CORPUS.
 * - DOCUMENTED_LIMITS: what README "### Masking" says masking cannot follow (views,
 *   functions, triggers and domains created behind Sluice's back, by a direct connection
 *   or a principal the masks exempt; tables and columns renamed by such a principal;
 *   inference through WHERE and ORDER BY, SQLSTATEs): asserted as they behave today.
 *
 * Since c3f7b65, while a mask is in force for the principal, statements of unknown effect
 * (DO, CALL, user functions, unparseable text, EXECUTE of a body Sluice did not see),
 * admin statements, all DDL and planner statistics are refused, as is any call of a
 * function with side effects in a statement on a masked table, a FETCH from a cursor
 * Sluice did not see declared and a Bind of a statement it does not know: the cases that
 * leaked through those (KNOWN_LEAKS L01-L33, and D04/D05) are in CORPUS, blocked, each
 * naming the leak it was. Objects a case needs that the masked principal can no longer
 * make are made directly (`setup`) or by the exempt principal (`exemptSetup`).
 *
 * Since 032fd58 a Parse the server skips after an error frees its name like one that fails,
 * and a name a protocol Bind gives a portal is refused to SQL FETCH while a mask is in
 * force (until a protocol Close of it): L34-L38 are in CORPUS (k13-k15, s15, s16), with
 * variants around the fix (k16, s17, s18). L39-L46 leaked around it.
 *
 * Since 9cf1437, while a mask is in force every allowed statement is watched (its portals
 * described before each Execute, a result column from a table the statement does not name
 * masked `unresolved`), portal names are cut to 63 bytes and cursor_to_xml(schema) is of
 * unknown effect: L39-L46 are in CORPUS (s19-s22, k17-k19, f09). L47-L52 are the same
 * pipelines with the server's real statement projecting the secrets through computed
 * columns, which have no origin and are masked only when Sluice knows the statement
 * projects a masked column: computed columns under confused bookkeeping.
 *
 * Since then, the result of a statement Sluice judged by a Parse or a DECLARE the server
 * refused or skipped (its answer arrives before the rows) is masked whole: L47-L52 are in
 * CORPUS (s23-s26, k20, k21), and nothing is known to leak.
 *
 * No secret (nor a 5-character piece of one) is ever written in a statement sent through
 * the gateway: what the client gets, and the audit trail, must be free of them unless
 * the gateway leaked them.
 */
import { createHash } from "node:crypto"
import type { FrontendMessage } from "../../../src/codecs/pg/frontend.ts"

export const T = "mb_customers"
export const O = "mb_other"
/** A fixed large object OID for the cases that write one (never a real one: the runner unlinks it). */
export const LO = 71_424_242

export const ROWS = [
  { id: 1, name: "Alpha", email: "zq-secret-1@leak.test", ssn: "918-27-3645", note: { tier: "gold" } },
  { id: 2, name: "Beta", email: "zq-secret-2@leak.test", ssn: "929-38-4756", note: { tier: "silver" } },
  { id: 3, name: "Gamma", email: "zq-secret-3@leak.test", ssn: "930-49-5867", note: { tier: "bronze" } }
] as const

/** The masked values as a non-exempt client reads them (email: `email`, ssn: `redact`). */
export const MASKED_EMAIL = "****@leak.test"
export const REDACTED = "****"

// ---------------------------------------------------------------------------------------------
// secrets, and every form of them the runner searches for

const substrings = (s: string, min: number): Array<string> => {
  const out = new Set<string>()
  for (let i = 0; i < s.length; i++) for (let j = i + min; j <= s.length; j++) out.add(s.slice(i, j))
  return [...out]
}
const reverse = (s: string) => [...s].reverse().join("")
const strip = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, "")

const LOCALS = ROWS.map((r) => r.email.slice(0, r.email.indexOf("@")))
const SSNS = ROWS.map((r) => r.ssn)
const DIGITS = SSNS.map((s) => s.replace(/-/g, ""))
/** Every secret value whole, for encodings of the whole value (hex, base64, hashes). */
const WHOLE = [...ROWS.map((r) => r.email), ...LOCALS, ...SSNS, ...DIGITS]

export interface Needles {
  /** Searched in the lowercased text (raw bytes as latin1, and every decoded field). */
  readonly text: ReadonlyArray<string>
  /** Searched case-sensitively (base64). */
  readonly exact: ReadonlyArray<string>
  /** Searched in each decoded field with everything but [a-z0-9] removed (`z q - s e c ...`). */
  readonly stripped: ReadonlyArray<string>
}

/**
 * The local parts and their pieces of 5 characters or more; the SSNs' pieces of 6 or more
 * that keep both dashes (`918-2` alone is in UUIDs), and pieces of 7 digits or more (5
 * digits alone turn up in OIDs and pids); all of these reversed; hex of every 5-byte piece of every secret; base64 of every
 * secret at each of the 3 alignments; md5/sha1/sha256/sha512 of every secret; and, in a
 * field stripped of punctuation and spaces, 7-character pieces.
 */
export const secretNeedles = (): Needles => {
  const plain = [
    ...LOCALS.flatMap((l) => substrings(l, 5)),
    // Both dashes: `918-2` alone turns up in UUIDs (event and session ids) and dates.
    ...SSNS.flatMap((s) => substrings(s, 6).filter((p) => p.split("-").length === 3)),
    ...DIGITS.flatMap((d) => substrings(d, 7))
  ]
  const hex = WHOLE.flatMap((v) => {
    const h = Buffer.from(v).toString("hex")
    const out: Array<string> = []
    for (let i = 0; i + 10 <= h.length; i += 2) out.push(h.slice(i, i + 10))
    return out
  })
  const hashes = WHOLE.flatMap((v) => ["md5", "sha1", "sha256", "sha512"].map((a) => createHash(a).update(v).digest("hex")))
  const exact = WHOLE.flatMap((v) =>
    [0, 1, 2].map((o) => {
      const b = Buffer.from(v).subarray(o)
      return b.subarray(0, b.length - (b.length % 3)).toString("base64")
    })
  ).filter((b) => b.length >= 8)
  const stripped = [...LOCALS.map(strip).flatMap((l) => substrings(l, 7)), ...DIGITS.flatMap((d) => substrings(d, 7))]
  const text = [...new Set([...plain, ...plain.map(reverse), ...hex, ...hashes].map((n) => n.toLowerCase()))]
  return { text, exact: [...new Set(exact)], stripped: [...new Set([...stripped, ...stripped.map(reverse)])] }
}

export interface Found {
  readonly needle: string
  readonly kind: "text" | "base64" | "stripped"
  readonly where: string
  /** Up to 60 characters either side of the match. */
  readonly context: string
}

const around = (hay: string, at: number, len: number) => hay.slice(Math.max(0, at - 60), at + len + 60)

/** Every needle found in the haystacks (each a label and its text); stops at 20 findings. */
export const findSecrets = (needles: Needles, haystacks: ReadonlyArray<readonly [string, string]>, opts: { stripped?: boolean } = {}): Array<Found> => {
  const found: Array<Found> = []
  for (const [where, hay] of haystacks) {
    const lower = hay.toLowerCase()
    for (const n of needles.text) {
      const at = lower.indexOf(n)
      if (at >= 0) found.push({ needle: n, kind: "text", where, context: around(hay, at, n.length) })
    }
    for (const n of needles.exact) {
      const at = hay.indexOf(n)
      if (at >= 0) found.push({ needle: n, kind: "base64", where, context: around(hay, at, n.length) })
    }
    if (opts.stripped !== false) {
      const s = strip(hay)
      for (const n of needles.stripped) {
        const at = s.indexOf(n)
        if (at >= 0) found.push({ needle: n, kind: "stripped", where, context: around(s, at, n.length) })
      }
    }
    if (found.length >= 20) break
  }
  return found
}

// ---------------------------------------------------------------------------------------------
// policies

/** No mask exempts `ci` (the runner's principal); `other` reads in clear (the detector's control). */
export const MASKS = [
  { id: "mb-email", columns: [`public.${T}.email`], method: "email", exempt: { subjects: ["other"] } },
  { id: "mb-ssn", columns: [`public.${T}.ssn`], method: "redact", exempt: { subjects: ["other"] } }
]

const base = {
  version: 1,
  defaults: { "*": { action: "block", message: "not allowed by the masking corpus policy" } },
  masks: MASKS,
  auditLiterals: "redact",
  // Recorded rows are what the client received: a leak would be in the audit trail too.
  recording: { rows: 10 }
}

/**
 * Every class a masking deployment would plausibly allow, `unknown` included (DO, user
 * functions), so that only masking stands between the client and the secrets; admin and
 * dcl stay blocked by the default (as in the example policy).
 */
export const MAIN_POLICY = {
  ...base,
  rules: [{ id: "mbp-allow", match: { classes: ["read", "write", "ddl", "utility", "transaction", "copy-out", "unknown"] }, action: "allow" }]
}

/** Everything allowed, admin (set_config) and dcl included: masking alone. */
export const ADMIN_POLICY = {
  ...base,
  rules: [{ id: "mbp-allow-all", match: { classes: ["read", "write", "ddl", "dcl", "admin", "utility", "transaction", "copy-in", "copy-out", "unknown"] }, action: "allow" }]
}

// ---------------------------------------------------------------------------------------------
// cases

/**
 * What a step must get:
 * - `ok`: no error;
 * - `blocked` / `blocked:<rule>`: exactly one 42501 from Sluice: its message ends `(rule <rule>)`,
 *   or `(mask <id>)` for `mask:<id>`, or says the session's settings stop Sluice reading
 *   statements for `parser-safety`;
 * - `error` / `error:<SQLSTATE>`: a server error (its text withheld if it was masked);
 * - `any`: whatever happens, as long as nothing secret is sent.
 */
export type Expect = "ok" | "blocked" | `blocked:${string}` | "error" | `error:${string}` | "any"

/** Result rows as text (NULL as null), all result sets of the step in order. */
export type Rows = ReadonlyArray<ReadonlyArray<string | null>>

export type Step =
  /** A simple Query. */
  | { readonly sql: string; readonly expect?: Expect; readonly rows?: Rows }
  /** Frontend messages in one write; one answer per Query and per Sync among them. */
  | { readonly frames: ReadonlyArray<FrontendMessage>; readonly expect?: Expect; readonly rows?: Rows }
  /** node-postgres (extended protocol, its own connection for the whole case). */
  | { readonly node: { readonly text: string; readonly values?: ReadonlyArray<unknown>; readonly name?: string; readonly binary?: boolean }; readonly expect?: Expect; readonly rows?: Rows }

export interface Case {
  readonly id: string
  readonly area: string
  readonly title: string
  /** Why the case is there, and what should stop it. */
  readonly why: string
  readonly policy?: "main" | "admin"
  /** Run directly as the backend role before the case (the fixture is reset after every case). */
  readonly setup?: ReadonlyArray<string>
  /** Run directly as the superuser before the case (after `setup`); `{backend}` is the role Sluice logs in as. */
  readonly superuserSetup?: ReadonlyArray<string>
  /**
   * Run through the gateway as `other` (whom every mask exempts) before the case, after
   * `setup`: what an exempt principal may do (DDL included) while the masks bind `ci`.
   * Each must succeed; DDL among them makes the gateway forget its cached catalog.
   */
  readonly exemptSetup?: ReadonlyArray<string>
  /** Run directly as the superuser after the case, whatever happened (before the fixture is reset). */
  readonly teardown?: ReadonlyArray<string>
  readonly steps: ReadonlyArray<Step>
  /** The case changes mb_customers' rows on purpose (the runner then skips comparing them). */
  readonly changesRows?: boolean
  /** Sluice blocks everything after the case's steps, by design (parser safety): the follow-up query is not expected to answer. */
  readonly endsBlocked?: boolean
  /** Startup parameters of the case's raw session (search_path, client_encoding, ...). */
  readonly startup?: Readonly<Record<string, string>>
}

/** A case that leaks today: which step shows it, and why it leaks. */
export interface LeakCase extends Case {
  /** The step (0-based) after which the secret has reached the client, for the report. */
  readonly leakStep: number
  /** When the leak is a number (not a needle): the rows the step returns that give it away. */
  readonly shows?: Rows
  /** When the leak is an SQLSTATE: the code the step fails with. */
  readonly sqlstate?: string
  readonly diagnosis: string
}

const q = (sql: string, expect: Expect = "ok", rows?: Rows): Step => (rows === undefined ? { sql, expect } : { sql, expect, rows })
const SYNC: FrontendMessage = { _tag: "Sync" }
const parse = (sql: string, name = ""): FrontendMessage => ({ _tag: "Parse", name, sql, paramTypes: [] })
const bind = (statement = "", portal = "", resultFormats: ReadonlyArray<number> = [], params: ReadonlyArray<string | null> = []): FrontendMessage => ({
  _tag: "Bind",
  portal,
  statement,
  paramFormats: [],
  params: params.map((p) => (p === null ? null : Buffer.from(p))),
  resultFormats
})
const execute = (portal = "", maxRows = 0): FrontendMessage => ({ _tag: "Execute", portal, maxRows })
const describe = (kind: "S" | "P", name = ""): FrontendMessage => ({ _tag: "Describe", kind, name })

const MASKED_ROWS_EMAIL_SSN: Rows = [
  [MASKED_EMAIL, REDACTED],
  [MASKED_EMAIL, REDACTED],
  [MASKED_EMAIL, REDACTED]
]
const all = (n: number, v: string | null): Rows => Array.from({ length: 3 }, () => Array.from({ length: n }, () => v))

// The pipelines of L39-L45, each in CORPUS twice: with the masked statement projecting the
// secret columns as they are (s19-s22, k18, k19), and through computed columns, which have
// no origin (s23-s26, k20, k21: L47-L52). `projection` is what the masked statement selects.
const HARMLESS = "SELECT 'a' AS email, 'b' AS ssn"

/** L39: the skipped harmless Parse, the masked Parse of the name, Bind and Execute, in one write. */
const skippedParseOfName = (projection: string): ReadonlyArray<Step> => [
  {
    frames: [parse(`SELECT 1 FROM ${T}_nosuch`, "mb_err"), parse(HARMLESS, "mb_s"), SYNC, parse(`SELECT ${projection} FROM ${T}`, "mb_s"), SYNC, bind("mb_s"), execute(), SYNC],
    expect: "error:42P01",
    rows: all(2, REDACTED)
  }
]

/** L40: the unnamed statement replaced by a skipped Parse, Bind and Execute behind the Sync. */
const skippedUnnamedParse = (projection: string): ReadonlyArray<Step> => [
  { frames: [parse(`SELECT ${projection} FROM ${T}`), SYNC], expect: "ok" },
  { frames: [parse(`SELECT 1 FROM ${T}_nosuch`, "mb_err"), parse(HARMLESS), SYNC, bind(), execute(), SYNC], expect: "error:42P01", rows: all(2, REDACTED) }
]

/** L41: a DEALLOCATE the server skips; in one write a harmless Parse of the name (42P05), Bind and Execute. */
const skippedDeallocate = (projection: string): ReadonlyArray<Step> => [
  { frames: [parse(`SELECT ${projection} FROM ${T}`, "mb_s"), SYNC], expect: "ok" },
  q("SELECT 1/0; DEALLOCATE mb_s", "error:22012"),
  { frames: [parse(HARMLESS, "mb_s"), SYNC, bind("mb_s"), execute(), SYNC], expect: "error:42P05", rows: all(2, REDACTED) }
]

/** L42: as L41 through a Close (statement) the server skips. */
const skippedStatementClose = (projection: string): ReadonlyArray<Step> => [
  { frames: [parse(`SELECT ${projection} FROM ${T}`, "mb_s"), SYNC], expect: "ok" },
  { frames: [parse(`SELECT 1 FROM ${T}_nosuch`, "mb_err"), { _tag: "Close", kind: "S", name: "mb_s" }, SYNC], expect: "error:42P01" },
  { frames: [parse(HARMLESS, "mb_s"), SYNC, bind("mb_s"), execute(), SYNC], expect: "error:42P05", rows: all(2, REDACTED) }
]

/** L44: a portal; in a savepoint a CLOSE and a harmless DECLARE of its name the server skips; ROLLBACK TO; FETCH. */
const skippedCursorClose = (projection: string): ReadonlyArray<Step> => [
  q("BEGIN"),
  { frames: [parse(`SELECT ${projection} FROM ${T}`), bind("", "mb_cur"), SYNC], expect: "ok" },
  q("SAVEPOINT mb_sp"),
  q("SELECT 1/0; CLOSE mb_cur; DECLARE mb_cur CURSOR FOR SELECT 1", "error:22012"),
  q("ROLLBACK TO SAVEPOINT mb_sp"),
  q("FETCH ALL FROM mb_cur", "ok", all(2, REDACTED)),
  q("ROLLBACK")
]

/** L45: a portal; a Close (portal) the server skips, a harmless DECLARE of its name the server refuses (42P03); FETCH. */
const skippedPortalClose = (projection: string): ReadonlyArray<Step> => [
  q("BEGIN"),
  { frames: [parse(`SELECT ${projection} FROM ${T}`), bind("", "mb_cur"), SYNC], expect: "ok" },
  q("SAVEPOINT mb_sp"),
  { frames: [parse(`SELECT 1 FROM ${T}_nosuch`, "mb_err"), { _tag: "Close", kind: "P", name: "mb_cur" }, SYNC], expect: "error:42P01" },
  q("ROLLBACK TO SAVEPOINT mb_sp"),
  q("DECLARE mb_cur CURSOR FOR SELECT 1", "error:42P03"),
  q("ROLLBACK TO SAVEPOINT mb_sp"),
  q("FETCH ALL FROM mb_cur", "ok", all(2, REDACTED)),
  q("ROLLBACK")
]

/** A harmless user-schema function whose call makes a statement's class `unknown` (created by the fixture). */
export const UNKNOWN_CALL = "public.mb_noop(1)"

/** `query_to_xml` with a constant query: a built-in that makes any statement's class `unknown`. */
const UNKNOWN = "query_to_xml('select 1', true, true, '')"

/** A cursor name of 70 bytes: PostgreSQL knows it by its first 63 (NAMEDATALEN - 1). */
const LONG_CURSOR = `mb_cur_${"x".repeat(63)}`

export const CORPUS: ReadonlyArray<Case> = [
  // ------------------------------------------------------------------ plain columns, by origin
  { id: "p01", area: "plain columns", title: "the columns by name", why: "the baseline: masked by RowDescription origin", steps: [q(`SELECT email, ssn FROM ${T} ORDER BY id`, "ok", MASKED_ROWS_EMAIL_SSN)] },
  {
    id: "p02",
    area: "plain columns",
    title: "SELECT *",
    why: "star expands to plain columns",
    steps: [
      q(`SELECT * FROM ${T} ORDER BY id`, "ok", [
        ["1", "Alpha", MASKED_EMAIL, REDACTED, `{"tier": "gold"}`],
        ["2", "Beta", MASKED_EMAIL, REDACTED, `{"tier": "silver"}`],
        ["3", "Gamma", MASKED_EMAIL, REDACTED, `{"tier": "bronze"}`]
      ])
    ]
  },
  { id: "p03", area: "plain columns", title: "TABLE", why: "TABLE t is SELECT * FROM t", steps: [q(`TABLE ${T}`)] },
  { id: "p04", area: "plain columns", title: "ONLY", why: "ONLY keeps the relation", steps: [q(`SELECT * FROM ONLY ${T}`)] },
  { id: "p05", area: "plain columns", title: "quoted, schema-qualified identifiers", why: "names as the server folds them", steps: [q(`SELECT "email", "ssn" FROM "public"."${T}" ORDER BY "id"`, "ok", MASKED_ROWS_EMAIL_SSN)] },
  { id: "p06", area: "plain columns", title: "upper-case unquoted identifiers", why: "folded to lower case", steps: [q(`SELECT EMAIL, SSN FROM PUBLIC.${T.toUpperCase()} ORDER BY ID`, "ok", MASKED_ROWS_EMAIL_SSN)] },
  {
    id: "p07",
    area: "plain columns",
    title: "search_path changed, then unqualified names",
    why: "after SET search_path Sluice no longer knows where names resolve: any schema",
    steps: [q("SET search_path = pg_catalog, public"), q(`SELECT email, ssn FROM ${T} ORDER BY id`, "ok", MASKED_ROWS_EMAIL_SSN), q("SET search_path = public"), q(`SELECT ssn || '' FROM ${T}`, "ok", all(1, REDACTED))]
  },
  {
    id: "p08",
    area: "plain columns",
    title: "aliases swapping column names",
    why: "masked by origin, not by the name the client sees",
    steps: [q(`SELECT c.email AS name, c.ssn AS id, c.name AS email FROM ${T} c ORDER BY c.id`, "ok", [[MASKED_EMAIL, REDACTED, "Alpha"], [MASKED_EMAIL, REDACTED, "Beta"], [MASKED_EMAIL, REDACTED, "Gamma"]])]
  },
  { id: "p09", area: "plain columns", title: "a table alias with a column alias list, plain columns", why: "origin survives renaming the columns", steps: [q(`SELECT x, s FROM ${T} AS c(i, n, x, s) ORDER BY i`, "ok", MASKED_ROWS_EMAIL_SSN)] },
  { id: "p10", area: "plain columns", title: "TABLESAMPLE", why: "a sampled scan keeps the origin", steps: [q(`SELECT email, ssn FROM ${T} TABLESAMPLE BERNOULLI (100) ORDER BY id`, "ok", MASKED_ROWS_EMAIL_SSN)] },
  { id: "p11", area: "plain columns", title: "a subquery in FROM", why: "origin through a subquery", steps: [q(`SELECT s.email, s.ssn FROM (SELECT * FROM ${T}) s ORDER BY s.id`, "ok", MASKED_ROWS_EMAIL_SSN)] },
  { id: "p12", area: "plain columns", title: "a MATERIALIZED CTE", why: "origin through a CTE", steps: [q(`WITH w AS MATERIALIZED (SELECT * FROM ${T}) SELECT email, ssn FROM w ORDER BY id`, "ok", MASKED_ROWS_EMAIL_SSN)] },
  {
    id: "p13",
    area: "plain columns",
    title: "a recursive CTE",
    why: "a recursive CTE's columns have no origin: computed, redacted",
    steps: [q(`WITH RECURSIVE r(e, n) AS (SELECT email, 1 FROM ${T} UNION ALL SELECT e, n + 1 FROM r WHERE n < 2) SELECT e FROM r`)]
  },
  { id: "p14", area: "plain columns", title: "UNION with a constant", why: "a set operation's column is computed", steps: [q(`SELECT email FROM ${T} UNION SELECT 'x' ORDER BY 1`)] },
  { id: "p15", area: "plain columns", title: "INTERSECT and EXCEPT", why: "set operations", steps: [q(`SELECT email FROM ${T} INTERSECT SELECT email FROM ${T}`), q(`SELECT ssn FROM ${T} EXCEPT SELECT 'x'`)] },
  { id: "p16", area: "plain columns", title: "a join with VALUES, USING", why: "a join keeps the origin", steps: [q(`SELECT t.* FROM ${T} t JOIN (VALUES (1), (2)) v(id) USING (id)`)] },
  { id: "p17", area: "plain columns", title: "DISTINCT ON the masked column", why: "the column is projected too", steps: [q(`SELECT DISTINCT ON (email) email, ssn FROM ${T} ORDER BY email`)] },
  { id: "p18", area: "plain columns", title: "GROUP BY the masked column, projected", why: "the group key is projected", steps: [q(`SELECT email, ssn, count(*) FROM ${T} GROUP BY email, ssn`)] },
  {
    id: "p19",
    area: "plain columns",
    title: "window functions",
    why: "first_value / lag / nth_value are computed",
    steps: [q(`SELECT first_value(email) OVER (ORDER BY id), lag(ssn) OVER (ORDER BY id), nth_value(email, 2) OVER () FROM ${T}`)]
  },
  { id: "p20", area: "plain columns", title: "LATERAL (SELECT outer column)", why: "an outer reference in a lateral subquery", steps: [q(`SELECT e FROM ${T}, LATERAL (SELECT email) t(e)`)] },
  { id: "p21", area: "plain columns", title: "NATURAL JOIN", why: "a merged join", steps: [q(`SELECT * FROM ${T} NATURAL JOIN (SELECT 1 AS id) x`)] },
  { id: "p22", area: "plain columns", title: "FOR UPDATE", why: "row locks make it a write, its select list still goes to the client masked", steps: [q(`SELECT email, ssn FROM ${T} ORDER BY id FOR UPDATE`, "ok", MASKED_ROWS_EMAIL_SSN)] },
  { id: "p23", area: "plain columns", title: "a scalar subquery in VALUES", why: "computed from a projected column", steps: [q(`SELECT v FROM (VALUES ((SELECT email FROM ${T} WHERE id = 1))) t(v)`, "ok", [[REDACTED]])] },
  {
    id: "p24",
    area: "plain columns",
    title: "a whole row as a value: SELECT c, SELECT mb_customers",
    why: "the server names the table with attribute number 0",
    steps: [q(`SELECT c FROM ${T} c`, "ok", all(1, REDACTED)), q(`SELECT ${T} FROM ${T}`, "ok", all(1, REDACTED))]
  },
  { id: "p25", area: "plain columns", title: "LATERAL (SELECT c.*)", why: "outer columns through a lateral subquery's star", steps: [q(`SELECT s.* FROM ${T} c, LATERAL (SELECT c.*) s`)] },
  { id: "p26", area: "plain columns", title: "jsonb_each_text(to_jsonb(c))", why: "every column as key/value rows", steps: [q(`SELECT e.* FROM ${T} c, LATERAL jsonb_each_text(to_jsonb(c)) e`)] },
  { id: "p27", area: "plain columns", title: "a subquery alias renaming the columns, in an expression", why: "s(i, n, x): the subquery projects *", steps: [q(`SELECT x || '' FROM (SELECT * FROM ${T}) AS s(i, n, x)`, "ok", all(1, REDACTED))] },
  { id: "p29", area: "plain columns", title: "a three-part name database.schema.table", why: "the catalog name is dropped", steps: [q(`SELECT email, ssn FROM app.public.${T} ORDER BY id`, "ok", MASKED_ROWS_EMAIL_SSN), q(`SELECT email || '' FROM "app"."public"."${T}"`, "ok", all(1, REDACTED))] },
  { id: "p30", area: "plain columns", title: "the old inheritance star t*, ONLY (t)", why: "other spellings of the relation", steps: [q(`SELECT email || '' FROM ${T}*`, "ok", all(1, REDACTED)), q(`SELECT email, ssn FROM ONLY (${T}) ORDER BY id`, "ok", MASKED_ROWS_EMAIL_SSN)] },
  { id: "p31", area: "plain columns", title: "(TABLE t) with a column alias list", why: "TABLE in a subquery, renamed", steps: [q(`SELECT x || '' FROM (TABLE ${T}) t(i, n, x)`, "ok", all(1, REDACTED))] },
  { id: "p32", area: "plain columns", title: "GROUPING SETS over the masked column", why: "grouping sets null out keys", steps: [q(`SELECT email, count(*) FROM ${T} GROUP BY GROUPING SETS ((email), ())`)] },
  { id: "p28", area: "plain columns", title: "client_encoding LATIN1 at startup", why: "the values are ASCII: masked as under UTF8", startup: { client_encoding: "LATIN1" }, steps: [q(`SELECT email, ssn FROM ${T} ORDER BY id`, "ok", MASKED_ROWS_EMAIL_SSN)] },

  // ------------------------------------------------------------------ computed columns
  { id: "c01", area: "computed columns", title: "email::bytea", why: "a cast is computed: non-text types become NULL", steps: [q(`SELECT email::bytea, ssn::bytea FROM ${T}`, "ok", all(2, null))] },
  { id: "c02", area: "computed columns", title: "hex encoding", why: "encode() is computed", steps: [q(`SELECT encode(convert_to(email, 'UTF8'), 'hex') FROM ${T}`, "ok", all(1, REDACTED))] },
  { id: "c03", area: "computed columns", title: "base64 encoding", why: "encode() is computed", steps: [q(`SELECT encode(convert_to(ssn, 'UTF8'), 'base64') FROM ${T}`, "ok", all(1, REDACTED))] },
  { id: "c04", area: "computed columns", title: "md5 and sha256", why: "a hash of a secret is the secret (brute force over a small space)", steps: [q(`SELECT md5(email), sha256(convert_to(ssn, 'UTF8')) FROM ${T}`, "ok", all(2, null).map(() => [REDACTED, null]))] },
  { id: "c05", area: "computed columns", title: "left / substr / right", why: "pieces of a secret", steps: [q(`SELECT left(email, 8), substr(ssn, 1, 6), right(email, 12) FROM ${T}`, "ok", all(3, REDACTED))] },
  { id: "c06", area: "computed columns", title: "reverse", why: "the secret backwards", steps: [q(`SELECT reverse(email), reverse(ssn) FROM ${T}`, "ok", all(2, REDACTED))] },
  { id: "c07", area: "computed columns", title: "format with %s, %I, %L", why: "formatting", steps: [q(`SELECT format('%s|%I|%L', email, ssn, email) FROM ${T}`, "ok", all(1, REDACTED))] },
  { id: "c08", area: "computed columns", title: "concatenation", why: "concat, ||, concat_ws", steps: [q(`SELECT concat(email, ''), email || '', concat_ws(',', ssn, name) FROM ${T}`, "ok", all(3, REDACTED))] },
  { id: "c09", area: "computed columns", title: "upper / lower / initcap", why: "case changes", steps: [q(`SELECT upper(email), lower(ssn), initcap(email) FROM ${T}`, "ok", all(3, REDACTED))] },
  {
    id: "c10",
    area: "computed columns",
    title: "translate (a Caesar shift)",
    why: "an encoding no needle would catch: the rows must be redacted",
    steps: [q(`SELECT translate(email, 'abcdefghijklmnopqrstuvwxyz0123456789', 'bcdefghijklmnopqrstuvwxyza1234567890') FROM ${T}`, "ok", all(1, REDACTED))]
  },
  { id: "c11", area: "computed columns", title: "overlay / split_part / replace", why: "string surgery", steps: [q(`SELECT overlay(email placing '#' from 1 for 1), split_part(email, '@', 1), replace(ssn, '-', '') FROM ${T}`, "ok", all(3, REDACTED))] },
  { id: "c12", area: "computed columns", title: "regexp_replace spacing out characters, regexp_split_to_array", why: "a spaced-out secret", steps: [q(`SELECT regexp_replace(email, '(.)', '\\1 ', 'g'), regexp_split_to_array(ssn, '') FROM ${T}`, "ok", all(2, null).map(() => [REDACTED, null]))] },
  {
    id: "c13",
    area: "computed columns",
    title: "numbers derived from a masked column",
    why: "length, position, ascii, octet_length would leak it bit by bit: computed ints are NULL",
    steps: [q(`SELECT length(email), position('@' in email), ascii(substr(ssn, 1, 1)), octet_length(ssn) FROM ${T}`, "ok", all(4, null))]
  },
  { id: "c14", area: "computed columns", title: "booleans over a masked column", why: "a comparison in the select list is a value", steps: [q(`SELECT email = 'x', ssn LIKE '9%', email IS NULL FROM ${T}`, "ok", all(3, null))] },
  { id: "c15", area: "computed columns", title: "CASE WHEN over a masked column", why: "over-masked: the constant is redacted too, since the column is used as a value", steps: [q(`SELECT CASE WHEN email LIKE 'z%' THEN 'a' ELSE 'b' END FROM ${T}`, "ok", all(1, REDACTED))] },
  { id: "c16", area: "computed columns", title: "aggregates", why: "count(DISTINCT), min, max", steps: [q(`SELECT count(DISTINCT email), min(ssn), max(email) FROM ${T}`, "ok", [[null, REDACTED, REDACTED]])] },
  {
    id: "c17",
    area: "computed columns",
    title: "string_agg / array_agg / json_agg / jsonb_agg",
    why: "aggregated secrets",
    steps: [q(`SELECT string_agg(email, ','), array_agg(ssn), json_agg(email), jsonb_agg(ssn) FROM ${T}`, "ok", [[REDACTED, null, `"****"`, `"****"`]])]
  },
  {
    id: "c18",
    area: "computed columns",
    title: "whole-row references",
    why: "to_jsonb(c), row_to_json(c), c::text, row(c.*)::text",
    steps: [q(`SELECT to_jsonb(c), row_to_json(c), c::text, row(c.*)::text FROM ${T} c`, "ok", all(4, null).map(() => [`"****"`, `"****"`, REDACTED, REDACTED]))]
  },
  { id: "c19", area: "computed columns", title: "(c).email field selection", why: "a field of a whole-row value", steps: [q(`SELECT (c).email, (c).ssn FROM ${T} c`)] },
  { id: "c20", area: "computed columns", title: "json_agg of whole rows", why: "every row in one JSON value", steps: [q(`SELECT json_agg(c) FROM ${T} c`, "ok", [[`"****"`]])] },
  {
    id: "c21",
    area: "computed columns",
    title: "jsonb_build_object, appended to an unmasked jsonb",
    why: "the unmasked note carrying a masked value",
    steps: [q(`SELECT jsonb_build_object('e', email, 's', ssn), note || jsonb_build_object('e', email) FROM ${T}`, "ok", all(2, `"****"`))]
  },
  { id: "c22", area: "computed columns", title: "xmlelement / xmlforest", why: "XML", steps: [q(`SELECT xmlelement(name x, email), xmlforest(ssn) FROM ${T}`)] },
  { id: "c23", area: "computed columns", title: "to_tsvector", why: "a text search vector keeps the lexemes", steps: [q(`SELECT to_tsvector('simple', email), email::tsvector FROM ${T}`)] },
  { id: "c24", area: "computed columns", title: "casts to other string types and a collation", why: "name, char(n), varchar(n), COLLATE", steps: [q(`SELECT email::name, email::char(40), email::varchar(40), email COLLATE "C" FROM ${T}`)] },
  { id: "c25", area: "computed columns", title: "COALESCE / NULLIF / GREATEST / (SELECT email)", why: "conditional expressions", steps: [q(`SELECT COALESCE(email, ''), NULLIF(ssn, ''), GREATEST(email, ''), (SELECT email) FROM ${T}`)] },
  { id: "c26", area: "computed columns", title: "ARRAY[...] and ROW(...)", why: "containers", steps: [q(`SELECT ARRAY[email, ssn], ROW(email, ssn) FROM ${T}`)] },
  { id: "c27", area: "computed columns", title: "jsonb_path_query over to_jsonb(c)", why: "a JSON path into the whole row", steps: [q(`SELECT jsonb_path_query(to_jsonb(c), '$.email') FROM ${T} c`)] },
  { id: "c28", area: "computed columns", title: "quote_literal / quote_ident / quote_nullable", why: "quoting", steps: [q(`SELECT quote_literal(email), quote_ident(ssn), quote_nullable(email) FROM ${T}`)] },
  { id: "c29", area: "computed columns", title: "scalar subquery and ARRAY(subquery) without FROM", why: "a statement over no table of its own", steps: [q(`SELECT (SELECT email FROM ${T} WHERE id = 1), ARRAY(SELECT ssn FROM ${T})`, "ok", [[REDACTED, null]])] },
  { id: "c30", area: "computed columns", title: "unnest(ARRAY(subquery)) in FROM", why: "a set-returning function over the secrets", steps: [q(`SELECT * FROM unnest(ARRAY(SELECT email FROM ${T})) u`, "ok", all(1, REDACTED))] },
  { id: "c31", area: "computed columns", title: "ROWS FROM with a column alias", why: "the column alias names no masked column", steps: [q(`SELECT x FROM ROWS FROM (unnest(ARRAY(SELECT ssn FROM ${T}))) AS r(x)`, "ok", all(1, REDACTED))] },
  { id: "c32", area: "computed columns", title: "pg_typeof, and a no-op cast to text", why: "email::text is the column itself (origin kept)", steps: [q(`SELECT pg_typeof(email)::text, email::text FROM ${T}`, "ok", all(2, null).map(() => [REDACTED, MASKED_EMAIL]))] },
  {
    id: "c33",
    area: "computed columns",
    title: "functional notation email(c)",
    why: "email(c) is c.email; Sluice reads a call of an unknown function, so the statement is of unknown effect: refused while a mask is in force (masked entirely until c3f7b65)",
    steps: [q(`SELECT email(c), ssn(c) FROM ${T} c`, "blocked:mask:mb-email")]
  },
  { id: "c34", area: "computed columns", title: "convert_to and decode", why: "bytea forms", steps: [q(`SELECT convert_to(email, 'LATIN1'), decode(replace(ssn, '-', ''), 'escape') FROM ${T}`, "ok", all(2, null))] },
  { id: "c35", area: "computed columns", title: "an SSN as a number, in hex", why: "to_hex of the digits", steps: [q(`SELECT to_hex(replace(ssn, '-', '')::int), replace(ssn, '-', '')::int FROM ${T}`, "ok", all(2, null).map(() => [REDACTED, null]))] },
  {
    id: "c36",
    area: "computed columns",
    title: "one character per row, reassembled",
    why: "generate_series over substr, string_agg",
    steps: [q(`SELECT string_agg(substr(email, g, 1), '' ORDER BY g) FROM ${T}, generate_series(1, 30) g GROUP BY id`, "ok", all(1, REDACTED))]
  },
  { id: "c37", area: "computed columns", title: "UNION ALL of a masked and an unmasked column", why: "the union's column is computed", steps: [q(`SELECT email FROM ${T} UNION ALL SELECT name FROM ${T}`)] },
  { id: "c39", area: "computed columns", title: "a Unicode-escaped column name", why: `U&"\\0065mail" is email`, steps: [q(`SELECT U&"\\0065mail" || '' FROM ${T}`, "ok", all(1, REDACTED))] },
  { id: "c40", area: "computed columns", title: "concat(c.*)", why: "a star as function arguments", steps: [q(`SELECT concat(c.*) FROM ${T} c`, "ok", all(1, REDACTED))] },
  { id: "c41", area: "computed columns", title: "a whole row from a scalar subquery, as text", why: "(SELECT c ...)::text", steps: [q(`SELECT (SELECT c FROM ${T} c LIMIT 1)::text`, "ok", [[REDACTED]])] },
  { id: "c42", area: "computed columns", title: "masked values among 250 kB rows", why: "rows larger than a read: masking across chunks", steps: [q(`SELECT email, repeat(name, 50000), ssn, md5(email) FROM ${T} ORDER BY id`)] },
  {
    id: "c43",
    area: "computed columns",
    title: "json_populate_recordset over json_agg(c)",
    why: "the row type comes back as columns named email and ssn, computed",
    steps: [q(`SELECT email, ssn FROM json_populate_recordset(null::${T}, (SELECT json_agg(c) FROM ${T} c))`, "ok", all(2, REDACTED))]
  },
  { id: "c44", area: "computed columns", title: "json_to_recordset with a column definition list", why: "r(email text, ssn text) from json_agg(c)", steps: [q(`SELECT * FROM json_to_recordset((SELECT json_agg(c) FROM ${T} c)) AS r(email text, ssn text)`, "ok", all(2, REDACTED))] },
  { id: "c38", area: "computed columns", title: "a CTE with a column alias list", why: "the CTE's query projects email", steps: [q(`WITH w(a) AS (SELECT email FROM ${T}) SELECT a || '' FROM w`, "ok", all(1, REDACTED))] },

  // ------------------------------------------------------------------ column alias lists (leaked until 161b60d)
  { id: "a01", area: "column alias lists", title: "an expression over an aliased column: x || '' FROM t AS c(i, n, x)", why: "a name through an alias that renames columns may be any column", steps: [q(`SELECT x || '' FROM ${T} AS c(i, n, x)`, "ok", all(1, REDACTED))] },
  { id: "a02", area: "column alias lists", title: "string_agg over an aliased ssn", why: "as a01, an aggregate", steps: [q(`SELECT string_agg(s, ',') FROM ${T} AS c(i, n, e, s)`, "ok", [[REDACTED]])] },
  { id: "a03", area: "column alias lists", title: "a scalar subquery over an aliased column", why: "as a01, the outer column computed", steps: [q(`SELECT (SELECT x FROM ${T} AS c(i, n, x) WHERE i = 1) AS v`, "ok", [[REDACTED]])] },
  { id: "a04", area: "column alias lists", title: "a join alias list: (t JOIN o ON true) AS j(i, n, x)", why: "the alias of a join", steps: [q(`SELECT j.x || '' FROM (${T} JOIN ${O} ON true) AS j(i, n, x)`, "ok", all(1, REDACTED))] },
  { id: "a05", area: "column alias lists", title: "CREATE TEMP TABLE AS over an aliased column", why: "storing through the alias", steps: [q(`CREATE TEMP TABLE mb_t AS SELECT x FROM ${T} AS c(i, n, x)`, "blocked"), q("SELECT * FROM mb_t", "error:42P01")] },
  { id: "a06", area: "column alias lists", title: "INSERT ... SELECT an aliased column into another table", why: "storing through the alias", steps: [q(`INSERT INTO ${O} SELECT x FROM ${T} AS c(i, n, x)`, "blocked"), q(`SELECT v FROM ${O}`, "ok", [["seed"]])] },
  { id: "a07", area: "column alias lists", title: "CREATE VIEW over an aliased column", why: "the refused view, through the alias", steps: [q(`CREATE VIEW mb_v AS SELECT x FROM ${T} AS c(i, n, x)`, "blocked"), q("SELECT * FROM mb_v", "error:42P01")] },
  { id: "a08", area: "column alias lists", title: "UPDATE ... SET name = an aliased email FROM the same table", why: "storing into an unmasked column of the same table", steps: [q(`UPDATE ${T} SET name = c2.x FROM ${T} AS c2(i, n, x) WHERE c2.i = ${T}.id`, "blocked"), q(`SELECT name FROM ${T} ORDER BY id`, "ok", [["Alpha"], ["Beta"], ["Gamma"]])] },
  { id: "a09", area: "column alias lists", title: "INSERT ... SELECT through a subquery alias list", why: "s(i, n, x) over SELECT *", steps: [q(`INSERT INTO ${O} SELECT x FROM (SELECT * FROM ${T}) AS s(i, n, x)`, "blocked")] },
  { id: "a10", area: "column alias lists", title: "a CTE alias list over SELECT *", why: "w(x) renames the first column only... of a star", steps: [q(`WITH w(i, n, x) AS (SELECT * FROM ${T}) SELECT x || '' FROM w`, "ok", all(1, REDACTED))] },

  // ------------------------------------------------------------------ extended protocol
  { id: "x01", area: "extended protocol", title: "node-postgres with a parameter", why: "Sluice describes the portal before Execute", steps: [{ node: { text: `SELECT email, ssn FROM ${T} WHERE id = $1`, values: [1] }, expect: "ok", rows: [[MASKED_EMAIL, REDACTED]] }] },
  {
    id: "x02",
    area: "extended protocol",
    title: "node-postgres named statement, executed three times",
    why: "a cached description must not matter",
    steps: [1, 2, 3].map((id) => ({ node: { name: "mb_named", text: `SELECT email, md5(ssn) FROM ${T} WHERE id = $1`, values: [id] }, expect: "ok" as const, rows: [[MASKED_EMAIL, REDACTED]] }))
  },
  { id: "x03", area: "extended protocol", title: "node-postgres binary results", why: "masks in binary format", steps: [{ node: { text: `SELECT email, ssn, md5(email), length(ssn) FROM ${T} WHERE id > $1`, values: [0], binary: true }, expect: "ok" }] },
  { id: "x04", area: "extended protocol", title: "Parse/Bind/Execute with no Describe, binary results", why: "the client never asks for a description", steps: [{ frames: [parse(`SELECT email, ssn, reverse(email) FROM ${T}`), bind("", "", [1]), execute(), SYNC], expect: "ok" }] },
  {
    id: "x05",
    area: "extended protocol",
    title: "a named portal executed one row at a time",
    why: "PortalSuspended, then more Executes of the same portal",
    steps: [{ frames: [parse(`SELECT email, ssn FROM ${T} ORDER BY id`), bind("", "mb_portal"), execute("mb_portal", 1), execute("mb_portal", 1), execute("mb_portal", 0), SYNC], expect: "ok", rows: MASKED_ROWS_EMAIL_SSN }]
  },
  {
    id: "x06",
    area: "extended protocol",
    title: "Describe of the statement, then Bind with binary formats",
    why: "the client's description is of the statement; the rows are masked by the portal's",
    steps: [{ frames: [parse(`SELECT email, ssn, note FROM ${T}`, "mb_s6"), describe("S", "mb_s6"), SYNC, bind("mb_s6", "", [1, 1, 1]), execute(), SYNC], expect: "ok" }]
  },
  {
    id: "x07",
    area: "extended protocol",
    title: "a masked and an unmasked statement in one batch",
    why: "each Execute's results belong to its own statement",
    steps: [{ frames: [parse(`SELECT email FROM ${T}`), bind(), execute(), parse("SELECT 'x' AS v"), bind(), execute(), SYNC], expect: "ok" }]
  },
  {
    id: "x08",
    area: "extended protocol",
    title: "an error, Sync, then a masked statement in the same write",
    why: "skipping to Sync must not shift what is masked",
    steps: [{ frames: [parse("SELECT 1/0"), bind(), execute(), SYNC, parse(`SELECT email, ssn FROM ${T}`), bind(), execute(), SYNC], expect: "error:22012" }]
  },
  {
    id: "x09",
    area: "extended protocol",
    title: "a named statement bound again in later batches",
    why: "the named statement's masking is remembered",
    steps: [
      { frames: [parse(`SELECT email, ssn FROM ${T} ORDER BY id`, "mb_s9"), SYNC], expect: "ok" },
      { frames: [bind("mb_s9"), execute(), SYNC], expect: "ok", rows: MASKED_ROWS_EMAIL_SSN },
      { frames: [bind("mb_s9"), execute(), SYNC], expect: "ok", rows: MASKED_ROWS_EMAIL_SSN }
    ]
  },
  { id: "x10", area: "extended protocol", title: "a computed column with a text parameter", why: "parameters do not change the masking", steps: [{ frames: [parse(`SELECT md5(email || $1) FROM ${T}`), bind("", "", [], ["salt"]), execute(), SYNC], expect: "ok", rows: all(1, REDACTED) }] },
  { id: "x11", area: "extended protocol", title: "a failing cast, extended", why: "the error text is withheld", steps: [{ node: { text: `SELECT ssn::int FROM ${T} WHERE id = $1`, values: [1] }, expect: "error:22P02" }] },
  {
    id: "x12",
    area: "extended protocol",
    title: "a named statement closed and parsed again with harmless text",
    why: "Close then Parse really replaces the statement",
    steps: [{ frames: [parse(`SELECT email FROM ${T}`, "mb_s12"), { _tag: "Close", kind: "S", name: "mb_s12" }, parse("SELECT 'x' AS email", "mb_s12"), bind("mb_s12"), execute(), SYNC], expect: "ok", rows: [["x"]] }]
  },
  {
    id: "x13",
    area: "extended protocol",
    title: "a pipelined simple Query between masked extended batches",
    why: "responses of mixed protocols, in order",
    steps: [{ frames: [parse(`SELECT ssn FROM ${T}`), bind(), execute(), SYNC, { _tag: "Query", sql: `SELECT email FROM ${T}; SELECT 'x'` }, parse(`SELECT email FROM ${T}`), bind(), execute(), SYNC], expect: "ok" }]
  },

  {
    id: "x15",
    area: "extended protocol",
    title: "the unnamed portal executed after the unnamed statement was replaced",
    why: "the portal keeps the statement it was bound to",
    steps: [{ frames: [parse(`SELECT email, ssn FROM ${T} ORDER BY id`), bind(), parse("SELECT 'x' AS email, 'y' AS ssn"), execute(), SYNC], expect: "ok", rows: MASKED_ROWS_EMAIL_SSN }]
  },
  {
    id: "x16",
    area: "extended protocol",
    title: "a suspended named portal, a simple Query in between, then the rest of the portal",
    why: "a later Execute of the same portal is masked again",
    steps: [
      q("BEGIN"),
      { frames: [parse(`SELECT email, ssn FROM ${T} ORDER BY id`), bind("", "mb_portal"), execute("mb_portal", 1), SYNC], expect: "ok", rows: [[MASKED_EMAIL, REDACTED]] },
      q(`SELECT name FROM ${T} WHERE id = 1`, "ok", [["Alpha"]]),
      { frames: [execute("mb_portal", 0), SYNC], expect: "ok", rows: [[MASKED_EMAIL, REDACTED], [MASKED_EMAIL, REDACTED]] },
      q("COMMIT")
    ]
  },
  {
    id: "x17",
    area: "extended protocol",
    title: "Describe of the portal by the client, Flush, then Execute",
    why: "the client's own description and Sluice's injected one",
    steps: [{ frames: [parse(`SELECT email, ssn FROM ${T} ORDER BY id`), bind(), describe("P"), { _tag: "Flush" }, execute(), SYNC], expect: "ok", rows: MASKED_ROWS_EMAIL_SSN }]
  },

  // ------------------------------------------------------------------ prepared statements (SQL)
  { id: "s01", area: "prepared statements", title: "PREPARE / EXECUTE", why: "EXECUTE is judged by the body Sluice saw", steps: [q(`PREPARE mb_p1 AS SELECT email, ssn FROM ${T} ORDER BY id`), q("EXECUTE mb_p1", "ok", MASKED_ROWS_EMAIL_SSN)] },
  { id: "s02", area: "prepared statements", title: "PREPARE with a parameter, a computed column", why: "EXECUTE with arguments", steps: [q(`PREPARE mb_p2 (int) AS SELECT md5(email) FROM ${T} WHERE id = $1`), q("EXECUTE mb_p2(1)", "ok", [[REDACTED]])] },
  {
    id: "s03",
    area: "prepared statements",
    title: "a protocol-level statement run by SQL EXECUTE",
    why: "Sluice never saw a PREPARE of that name: EXECUTE of a body it does not know is of unknown effect, refused (masked entirely until c3f7b65)",
    steps: [{ frames: [parse(`SELECT email, ssn FROM ${T}`, "mb_s3"), SYNC], expect: "ok" }, q("EXECUTE mb_s3", "blocked:mask:mb-email")]
  },
  {
    id: "s04",
    area: "prepared statements",
    title: "a DEALLOCATE that failed (aborted transaction), then EXECUTE",
    why: "Sluice forgot the body; the server did not: EXECUTE of a body Sluice does not know is refused (masked entirely until c3f7b65)",
    steps: [q(`PREPARE mb_p4 AS SELECT email, ssn FROM ${T}`), q("BEGIN"), q("SELECT 1/0", "error:22012"), q("DEALLOCATE mb_p4", "error:25P02"), q("ROLLBACK"), q("EXECUTE mb_p4", "blocked:mask:mb-email")]
  },
  { id: "s05", area: "prepared statements", title: "EXPLAIN ANALYZE VERBOSE of an EXECUTE", why: "plan output of a masked statement (computed: redacted)", steps: [q(`PREPARE mb_p5 AS SELECT email FROM ${T}`), q("EXPLAIN (ANALYZE, VERBOSE) EXECUTE mb_p5")] },

  {
    id: "s06",
    area: "prepared statements",
    title: "EXECUTE of a harmless body with a subquery over email as its argument",
    why: "the arguments are not the body Sluice judges EXECUTE by",
    steps: [q("PREPARE mb_p6 (text) AS SELECT $1 AS v"), q(`EXECUTE mb_p6((SELECT email FROM ${T} WHERE id = 1))`, "error:0A000")]
  },
  {
    id: "s07",
    area: "prepared statements",
    title: "CALL with a subquery over email as its argument (the procedure created directly)",
    why: "a procedure's INOUT argument comes back as a row; CALL is of unknown effect, refused before the server could refuse the subquery (0A000 until c3f7b65); creating the procedure through the gateway is DDL, refused too",
    setup: ["CREATE PROCEDURE public.mb_pr7(INOUT v text) LANGUAGE sql AS $f$ SELECT v $f$"],
    steps: [q("CREATE PROCEDURE mb_pr7b(INOUT v text) LANGUAGE sql AS $f$ SELECT v $f$", "blocked:mask:mb-email"), q(`CALL mb_pr7((SELECT email FROM ${T} WHERE id = 1))`, "blocked:mask:mb-email")]
  },

  // ------------------------------------------------------------------ writes and DDL that would store masked values
  // (since c3f7b65 the DDL among them is refused as DDL, naming the first active mask, whatever it would store)
  { id: "w01", area: "storing masked values", title: "INSERT ... SELECT email", why: "stored unmasked", steps: [q(`INSERT INTO ${O} SELECT email FROM ${T}`, "blocked:mask:mb-email")] },
  { id: "w02", area: "storing masked values", title: "CREATE TEMP TABLE AS", why: "stored unmasked", steps: [q(`CREATE TEMP TABLE mb_t AS SELECT email FROM ${T}`, "blocked:mask:mb-email")] },
  { id: "w03", area: "storing masked values", title: "SELECT ... INTO TEMP", why: "stored unmasked", steps: [q(`SELECT ssn INTO TEMP mb_t FROM ${T}`, "blocked:mask:mb-ssn")] },
  { id: "w04", area: "storing masked values", title: "UPDATE another table SET v = (subquery)", why: "stored unmasked", steps: [q(`UPDATE ${O} SET v = (SELECT email FROM ${T} LIMIT 1)`, "blocked:mask:mb-email")] },
  { id: "w05", area: "storing masked values", title: "UPDATE the same table SET name = email", why: "into an unmasked column of the same table", steps: [q(`UPDATE ${T} SET name = email`, "blocked:mask:mb-email")] },
  { id: "w06", area: "storing masked values", title: "UPDATE SET note = jsonb_build_object(email)", why: "into the unmasked jsonb", steps: [q(`UPDATE ${T} SET note = jsonb_build_object('e', email)`, "blocked:mask:mb-email")] },
  { id: "w07", area: "storing masked values", title: "UPDATE SET ssn = ssn::int::text", why: "a write whose error would quote the value", steps: [q(`UPDATE ${T} SET ssn = ssn::int::text`, "blocked:mask:mb-ssn")] },
  { id: "w08", area: "storing masked values", title: "a data-modifying CTE storing email into name, returning it", why: "WITH x AS (UPDATE ... RETURNING)", steps: [q(`WITH x AS (UPDATE ${T} SET name = email RETURNING name) SELECT * FROM x`, "blocked:mask:mb-email")] },
  { id: "w09", area: "storing masked values", title: "INSERT ... SELECT string_agg(ssn)", why: "an aggregate stored", steps: [q(`INSERT INTO ${O} SELECT string_agg(ssn, ',') FROM ${T}`, "blocked:mask:mb-ssn")] },
  { id: "w10", area: "storing masked values", title: "MERGE ... INSERT VALUES (c.email)", why: "MERGE into another table", steps: [q(`MERGE INTO ${O} o USING ${T} c ON false WHEN NOT MATCHED THEN INSERT VALUES (c.email)`, "blocked:mask:mb-email")] },
  { id: "w11", area: "storing masked values", title: "MERGE into the same table SET name = s.email", why: "MERGE UPDATE", steps: [q(`MERGE INTO ${T} t USING ${T} s ON t.id = s.id WHEN MATCHED THEN UPDATE SET name = s.email`, "blocked:mask:mb-email")] },
  {
    id: "w12",
    area: "storing masked values",
    title: "ON CONFLICT DO UPDATE SET name = the existing email",
    why: "the conflicting row's value",
    steps: [q(`INSERT INTO ${T} (id, name) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET name = ${T}.email`, "blocked:mask:mb-email")]
  },
  {
    id: "w13",
    area: "storing masked values",
    title: "views and a materialized view over masked columns",
    why: "a view would read them behind Sluice's back later: DDL, refused while a mask is in force (the first active mask is named, whichever column the view reads)",
    steps: [
      q(`CREATE VIEW mb_v AS SELECT email FROM ${T}`, "blocked:mask:mb-email"),
      q(`CREATE VIEW mb_v AS SELECT * FROM ${T}`, "blocked:mask:mb-email"),
      q(`CREATE MATERIALIZED VIEW mb_mv AS SELECT ssn FROM ${T}`, "blocked:mask:mb-email"),
      q(`CREATE TEMP VIEW mb_v AS SELECT c FROM ${T} c`, "blocked:mask:mb-email"),
      q("SELECT * FROM mb_v", "error:42P01")
    ]
  },
  { id: "w14", area: "storing masked values", title: "a generated column copying email", why: "stored by the server on every row", steps: [q(`ALTER TABLE ${T} ADD COLUMN e2 text GENERATED ALWAYS AS (email) STORED`, "blocked:mask:mb-email")] },
  { id: "w15", area: "storing masked values", title: "ALTER COLUMN name TYPE text USING email", why: "rewrites name from email", steps: [q(`ALTER TABLE ${T} ALTER COLUMN name TYPE text USING email`, "blocked:mask:mb-email")] },
  { id: "w16", area: "storing masked values", title: "a SQL-standard function body reading email", why: "Sluice sees this body (RETURN ...)", steps: [q(`CREATE FUNCTION mb_f() RETURNS text LANGUAGE sql RETURN (SELECT email FROM ${T} LIMIT 1)`, "blocked:mask:mb-email")] },
  { id: "w17", area: "storing masked values", title: "a rule copying old.email", why: "a rule stores on every UPDATE", steps: [q(`CREATE RULE mb_r AS ON UPDATE TO ${T} DO ALSO INSERT INTO ${O} VALUES (old.email)`, "blocked:mask:mb-email")] },
  {
    id: "w18",
    area: "storing masked values",
    title: "an UPDATE filtering on email, RETURNING the masked columns",
    why: "filtering runs; RETURNING is masked",
    changesRows: true,
    steps: [q(`UPDATE ${T} SET name = 'renamed' WHERE email LIKE 'z%' AND id = 1 RETURNING email, ssn`, "ok", [[MASKED_EMAIL, REDACTED]])]
  },
  { id: "w19", area: "storing masked values", title: "DELETE ... RETURNING *", why: "RETURNING of deleted rows", changesRows: true, steps: [q(`DELETE FROM ${T} WHERE id = 3 RETURNING *`, "ok", [["3", "Gamma", MASKED_EMAIL, REDACTED, `{"tier": "bronze"}`]])] },
  { id: "w20", area: "storing masked values", title: "a data-modifying CTE returning deleted emails to the outer query", why: "projected, not returned: stored or sent", changesRows: true, steps: [q(`WITH d AS (DELETE FROM ${T} WHERE id = 3 RETURNING email) SELECT * FROM d`, "blocked:mask:mb-email")] },
  { id: "w21", area: "storing masked values", title: "lo_from_bytea(email) in the select list", why: "a large object is stored data", steps: [q(`SELECT lo_from_bytea(0, convert_to(email, 'UTF8')) FROM ${T}`, "blocked:mask:mb-email")] },
  { id: "w22", area: "storing masked values", title: "pg_notify(email) in the select list, with LISTEN", why: "a notification payload", steps: [q("LISTEN mb_c"), q(`SELECT pg_notify('mb_c', email) FROM ${T}`, "blocked:mask:mb-email")] },
  { id: "w23", area: "storing masked values", title: "setval(length(email)) in the select list", why: "a sequence stores a number", steps: [q(`SELECT setval('mb_seq', length(email)) FROM ${T}`, "blocked:mask:mb-email")] },
  { id: "w24", area: "storing masked values", title: "INSERT ... SELECT name WHERE email LIKE", why: "filtering only: runs, stores no masked value", steps: [q(`INSERT INTO ${O} SELECT name FROM ${T} WHERE email LIKE 'z%'`), q(`SELECT v FROM ${O} ORDER BY v`, "ok", [["Alpha"], ["Beta"], ["Gamma"], ["seed"]])] },
  { id: "w25", area: "storing masked values", title: "a unique expression index over email", why: "an index stores the values", steps: [q(`CREATE UNIQUE INDEX mb_ix ON ${T} (lower(email))`, "blocked:mask:mb-email")] },
  { id: "w26", area: "storing masked values", title: "a failing CHECK constraint over ssn::int", why: "validating the constraint would fail on a value: DDL, refused naming the first active mask (mb-ssn, as storing, until c3f7b65)", steps: [q(`ALTER TABLE ${T} ADD CONSTRAINT mb_ck CHECK (ssn::int > 0)`, "blocked:mask:mb-email")] },
  {
    id: "w28",
    area: "storing masked values",
    title: "CREATE VIEW over email with a call that makes a read unknown",
    why: "a definition's calls do not escalate its class: the view stays ddl, refused as DDL while a mask is in force",
    steps: [q(`CREATE VIEW mb_v AS SELECT email, ssn, query_to_xml('select 1', true, true, '') AS q FROM ${T}`, "blocked:mask:mb-email")]
  },
  { id: "w29", area: "storing masked values", title: "INSERT ... TABLE", why: "TABLE as an INSERT source", setup: [`CREATE TABLE public.mb_copy (LIKE public.${T})`], steps: [q(`INSERT INTO mb_copy TABLE ${T}`, "blocked:mask:mb-email")] },
  { id: "w30", area: "storing masked values", title: "CREATE TEMP TABLE AS TABLE", why: "TABLE as a CTAS query", steps: [q(`CREATE TEMP TABLE mb_t AS TABLE ${T}`, "blocked:mask:mb-email")] },
  { id: "w31", area: "storing masked values", title: "UPDATE SET (name, note) = (SELECT email, NULL ...)", why: "a multiple-column assignment from a subquery", steps: [q(`UPDATE ${T} SET (name, note) = (SELECT email, NULL FROM ${T} c2 WHERE c2.id = ${T}.id)`, "blocked:mask:mb-email")] },
  { id: "w32", area: "storing masked values", title: "INSERT ... SELECT email FROM json_populate_recordset(json_agg(c))", why: "the whole row, through JSON", steps: [q(`INSERT INTO ${O} SELECT email FROM json_populate_recordset(null::${T}, (SELECT json_agg(c) FROM ${T} c))`, "blocked:mask:mb-email")] },
  { id: "w33", area: "storing masked values", title: "INSERT ... RETURNING the whole row", why: "RETURNING mb_customers", changesRows: true, steps: [q(`INSERT INTO ${T} (id, name, email, ssn) VALUES (7, 'n', 'n7@leak.test', '000-00-0007') RETURNING ${T}`, "ok", [[REDACTED]])] },
  { id: "w34", area: "storing masked values", title: "INSERT ... SELECT v FROM t, LATERAL (SELECT email) l(v)", why: "a lateral alias renaming a projected column", steps: [q(`INSERT INTO ${O} SELECT v FROM ${T}, LATERAL (SELECT email) l(v)`, "blocked:mask:mb-email")] },
  {
    id: "w35",
    area: "storing masked values",
    title: "COPY to a server file or program (admin allowed)",
    why: "stored on the server, where pg_read_file could read it back",
    policy: "admin",
    steps: [q(`COPY ${T} TO '/tmp/mb_masking_corpus'`, "blocked:mask:mb-email"), q(`COPY (SELECT email FROM ${T}) TO PROGRAM 'cat'`, "blocked:mask:mb-email")]
  },
  {
    id: "w36",
    area: "storing masked values",
    title: "a harmless view (made directly), replaced through the gateway with one showing email",
    why: "CREATE OR REPLACE VIEW is DDL like CREATE VIEW; even the harmless view cannot be made through the gateway while a mask is in force (until c3f7b65 it could)",
    setup: [`CREATE VIEW public.mb_v AS SELECT id FROM public.${T}`],
    steps: [
      q(`CREATE VIEW mb_v2 AS SELECT id FROM ${T}`, "blocked:mask:mb-email"),
      q(`CREATE OR REPLACE VIEW mb_v AS SELECT id, email FROM ${T}`, "blocked:mask:mb-email"),
      q("SELECT * FROM mb_v ORDER BY id", "ok", [["1"], ["2"], ["3"]])
    ]
  },
  {
    id: "w37",
    area: "storing masked values",
    title: "an empty table turned into a view by CREATE RULE \"_RETURN\" (PostgreSQL 15)",
    why: "the old way to make a view",
    setup: [`CREATE TABLE public.mb_fake (LIKE public.${T})`],
    steps: [q(`CREATE RULE "_RETURN" AS ON SELECT TO mb_fake DO INSTEAD SELECT * FROM ${T}`, "blocked:mask:mb-email"), q("SELECT * FROM mb_fake", "ok", [])]
  },
  { id: "w38", area: "storing masked values", title: "ALTER COLUMN email TYPE bytea USING convert_to(email)", why: "rewrites the column in place", steps: [q(`ALTER TABLE ${T} ALTER COLUMN email TYPE bytea USING convert_to(email, 'UTF8')`, "blocked:mask:mb-email")] },
  { id: "w39", area: "storing masked values", title: "a writable CTE returning email into an INSERT", why: "RETURNING feeding storage", steps: [q(`WITH u AS (UPDATE ${T} SET name = name RETURNING email) INSERT INTO ${O} SELECT email FROM u`, "blocked:mask:mb-email")] },
  { id: "w40", area: "storing masked values", title: "COPY of a DELETE ... RETURNING email", why: "COPY of a data-modifying query", steps: [q(`COPY (WITH d AS (DELETE FROM ${T} WHERE id = 3 RETURNING email) SELECT * FROM d) TO STDOUT`, "blocked:mask:mb-email")] },
  {
    id: "w41",
    area: "storing masked values",
    title: "a row security policy whose expression sends the email (dcl allowed)",
    why: "a policy's USING runs on every row read later",
    policy: "admin",
    steps: [q(`CREATE POLICY mb_pol ON ${T} USING (pg_notify('mb_c', email)::text = '')`, "blocked:mask:mb-email")]
  },
  { id: "w42", area: "storing masked values", title: "EXPLAIN ANALYZE of INSERT ... SELECT email", why: "EXPLAIN ANALYZE runs the statement", steps: [q(`EXPLAIN ANALYZE INSERT INTO ${O} SELECT email FROM ${T}`, "blocked:mask:mb-email"), q(`SELECT v FROM ${O}`, "ok", [["seed"]])] },
  { id: "w43", area: "storing masked values", title: "plain EXPLAIN of INSERT ... SELECT email", why: "planned, not run: nothing stored, the plan shows no value", steps: [q(`EXPLAIN VERBOSE INSERT INTO ${O} SELECT email FROM ${T}`), q(`SELECT v FROM ${O}`, "ok", [["seed"]])] },
  { id: "w44", area: "storing masked values", title: "a materialized view over email WITH NO DATA", why: "stored at the first REFRESH", steps: [q(`CREATE MATERIALIZED VIEW mb_mv AS SELECT email FROM ${T} WITH NO DATA`, "blocked:mask:mb-email")] },
  { id: "w27", area: "storing masked values", title: "set_config(email) in the select list (admin allowed)", why: "a setting is stored session state", policy: "admin", steps: [q(`SELECT set_config('mb.x', email, false) FROM ${T}`, "blocked:mask:mb-email"), q("SELECT current_setting('mb.x', true)", "ok", [[null]])] },

  // ------------------------------------------------------------------ error and notice texts
  { id: "e01", area: "error texts", title: "ssn::int", why: "22P02 quotes the value", steps: [q(`SELECT ssn::int FROM ${T}`, "error:22P02")] },
  { id: "e02", area: "error texts", title: "email::int for one row", why: "22P02 quotes the value", steps: [q(`SELECT email::int FROM ${T} WHERE id = 2`, "error:22P02")] },
  { id: "e03", area: "error texts", title: "a failing cast in WHERE", why: "no masked column projected, the error still quotes it", steps: [q(`SELECT 1 FROM ${T} WHERE ssn::int > 0`, "error:22P02")] },
  { id: "e04", area: "error texts", title: "division by zero, filtered on email", why: "an error of a masked statement", steps: [q(`SELECT 1/0 FROM ${T} WHERE email LIKE 'z%'`, "error:22012")] },
  { id: "e05", area: "error texts", title: "email::regclass", why: "relation ... does not exist quotes the value", steps: [q(`SELECT email::regclass FROM ${T}`, "error:3F000")] },
  { id: "e06", area: "error texts", title: "email::jsonb", why: "the JSON parser quotes the token and the line", steps: [q(`SELECT email::jsonb FROM ${T}`, "error:22P02")] },
  { id: "e07", area: "error texts", title: "email::uuid, ssn::date", why: "input syntax errors", steps: [q(`SELECT email::uuid FROM ${T}`, "error:22P02"), q(`SELECT ssn::date FROM ${T}`, "error:22008")] },
  { id: "e08", area: "error texts", title: "xmlparse(document ssn)", why: "XML errors carry a DETAIL with the text", steps: [q(`SELECT xmlparse(document ssn) FROM ${T}`, "error:2200M")] },
  { id: "e09", area: "error texts", title: "email::jsonpath", why: "a jsonpath syntax error quotes the text", steps: [q(`SELECT jsonb_path_query('{}', email::jsonpath) FROM ${T}`, "error:42601")] },
  { id: "e10", area: "error texts", title: "a failing cast in a scalar subquery in WHERE", why: "nested", steps: [q(`SELECT id FROM ${T} WHERE id = (SELECT ssn::int FROM ${T} LIMIT 1)`, "error:22P02")] },
  { id: "e11", area: "error texts", title: "DELETE ... WHERE ssn::int = 1", why: "a write's error", steps: [q(`DELETE FROM ${T} WHERE ssn::int = 1`, "error:22P02")] },
  {
    id: "e12",
    area: "error texts",
    title: "a duplicated email under a unique key: a new constraint, and an UPDATE of another column",
    why: "23505's DETAIL: Key (email, ...)=(...) quotes the duplicated value. Adding the constraint is DDL, refused (until c3f7b65 the server's 23505 was withheld); an UPDATE that only sets name makes the same DETAIL, withheld",
    setup: [
      `ALTER TABLE ${T} DROP CONSTRAINT ${T}_email_key`,
      `INSERT INTO ${T} SELECT 4, 'Dup', email, NULL, NULL FROM ${T} WHERE id = 1`,
      `CREATE UNIQUE INDEX mb_email_name ON public.${T} (email, name)`
    ],
    changesRows: true,
    steps: [q(`ALTER TABLE ${T} ADD CONSTRAINT mb_email_uq UNIQUE (email)`, "blocked:mask:mb-email"), q(`UPDATE ${T} SET name = 'Alpha' WHERE id = 4`, "error:23505")]
  },
  { id: "e13", area: "error texts", title: "a primary key violation", why: "23505's DETAIL quotes the key", steps: [q(`INSERT INTO ${T} (id, name) VALUES (1, 'x')`, "error:23505")] },
  { id: "e14", area: "error texts", title: "RAISE NOTICE of an email in a DO block", why: "DO is of unknown effect: refused while a mask is in force (its notices were withheld until c3f7b65)", steps: [q(`DO $$ BEGIN RAISE NOTICE 'v=%', (SELECT email FROM ${T} WHERE id = 1); END $$`, "blocked:mask:mb-email")] },
  { id: "e15", area: "error texts", title: "RAISE EXCEPTION of an ssn in a DO block", why: "DO is refused (its errors were withheld until c3f7b65)", steps: [q(`DO $$ BEGIN RAISE EXCEPTION 'v=%', (SELECT ssn FROM ${T} WHERE id = 1); END $$`, "blocked:mask:mb-email")] },
  {
    id: "e16",
    area: "error texts",
    title: "RAISE ... USING DETAIL / HINT in a DO block",
    why: "DO is refused (every quoting field was withheld until c3f7b65)",
    steps: [q(`DO $$ BEGIN RAISE WARNING USING MESSAGE = 'w', DETAIL = (SELECT email FROM ${T} WHERE id = 1), HINT = (SELECT ssn FROM ${T} WHERE id = 1); END $$`, "blocked:mask:mb-email")]
  },
  { id: "e17", area: "error texts", title: "EXPLAIN ANALYZE of a failing cast", why: "the error comes from the analysed statement", steps: [q(`EXPLAIN ANALYZE SELECT ssn::int FROM ${T}`, "error:22P02")] },
  { id: "e18", area: "error texts", title: "a masked statement, then an unmasked failing one in the same Query", why: "each statement's texts by its own masking", steps: [q(`SELECT email FROM ${T}; SELECT 1/0`, "error:22012")] },

  // ------------------------------------------------------------------ COPY and cursors
  { id: "k01", area: "COPY and cursors", title: "COPY table TO STDOUT", why: "COPY data is not rows", steps: [q(`COPY ${T} TO STDOUT`, "blocked:mask:mb-email")] },
  { id: "k02", area: "COPY and cursors", title: "COPY (SELECT ssn) TO STDOUT", why: "COPY of a query", steps: [q(`COPY (SELECT ssn FROM ${T}) TO STDOUT`, "blocked:mask:mb-email")] },
  { id: "k03", area: "COPY and cursors", title: "COPY of unmasked columns only", why: "any COPY of a masked table", steps: [q(`COPY ${T} (id, name) TO STDOUT`, "blocked")] },
  { id: "k04", area: "COPY and cursors", title: "COPY binary of a computed column", why: "binary COPY", steps: [q(`COPY (SELECT md5(email) FROM ${T}) TO STDOUT WITH (FORMAT binary)`, "blocked")] },
  {
    id: "k05",
    area: "COPY and cursors",
    title: "DECLARE CURSOR then FETCH",
    why: "a cursor's rows come back to FETCH, which names no table",
    steps: [q("BEGIN"), q(`DECLARE mb_cur CURSOR FOR SELECT email FROM ${T}`, "blocked:mask:mb-email"), q("FETCH ALL FROM mb_cur", "error:25P02"), q("ROLLBACK")]
  },
  { id: "k06", area: "COPY and cursors", title: "DECLARE ... WITH HOLD", why: "a holdable cursor", steps: [q(`DECLARE mb_cur CURSOR WITH HOLD FOR SELECT ssn FROM ${T}`, "blocked")] },
  { id: "k07", area: "COPY and cursors", title: "FETCH without DECLARE", why: "a cursor Sluice did not see declared could read anything: refused while a mask is in force, before the server could say there is no such cursor (34000 until c3f7b65)", steps: [q("FETCH ALL FROM mb_nosuch", "blocked:mask:mb-email")] },
  { id: "k08", area: "COPY and cursors", title: "DECLARE of a column alias list", why: "the cursor is refused for touching the table", steps: [q("BEGIN"), q(`DECLARE mb_cur CURSOR FOR SELECT x FROM ${T} AS c(i, n, x)`, "blocked"), q("ROLLBACK")] },
  { id: "k09", area: "COPY and cursors", title: "COPY of a column alias list", why: "the COPY is refused for touching the table", steps: [q(`COPY (SELECT x FROM ${T} AS c(i, n, x)) TO STDOUT`, "blocked")] },

  {
    id: "k10",
    area: "COPY and cursors",
    title: "DECLARE CURSOR over email with an unknown call, then FETCH (leaked until 91d8074)",
    why: "a FETCH is judged by its cursor's DECLARE; since c3f7b65 the DECLARE itself is of unknown effect, refused (it was masked blindly)",
    steps: [q("BEGIN"), q(`DECLARE mb_cur CURSOR FOR SELECT email, ssn, query_to_xml('select 1', true, true, '') FROM ${T}`, "blocked:mask:mb-email"), q("FETCH ALL FROM mb_cur", "error:25P02"), q("ROLLBACK")]
  },
  {
    id: "k11",
    area: "COPY and cursors",
    title: "DO: OPEN a named refcursor, then FETCH (leaked until 91d8074)",
    why: "the DO is refused (until c3f7b65 it ran, and the FETCH from a cursor Sluice did not see declared was masked blindly); a FETCH of that name is refused in a fresh transaction too",
    steps: [
      q("BEGIN"),
      q(`DO $$ DECLARE c refcursor := 'mb_cur'; BEGIN OPEN c FOR SELECT email, ssn FROM ${T}; END $$`, "blocked:mask:mb-email"),
      q("FETCH ALL FROM mb_cur", "error:25P02"),
      q("ROLLBACK"),
      q("BEGIN"),
      q("FETCH ALL FROM mb_cur", "blocked:mask:mb-email"),
      q("ROLLBACK")
    ]
  },
  {
    id: "k12",
    area: "COPY and cursors",
    title: "a protocol-level portal read by SQL FETCH (leaked until 91d8074)",
    why: "a portal bound by Bind is a cursor SQL can FETCH from, in the same transaction: Sluice did not see it DECLAREd, so the FETCH is refused (masked blindly until c3f7b65)",
    steps: [
      q("BEGIN"),
      { frames: [parse(`SELECT email, ssn FROM ${T}`), bind("", "mb_portal"), execute("mb_portal", 1), SYNC], expect: "ok", rows: [[MASKED_EMAIL, REDACTED]] },
      q("FETCH ALL FROM mb_portal", "blocked:mask:mb-email"),
      q("FETCH 1 FROM mb_portal", "error:25P02"),
      q("ROLLBACK")
    ]
  },

  // ------------------------------------------------------------------ statements of unknown effect: refused while a mask is in force (masked entirely until c3f7b65)
  { id: "u01", area: "unknown effect", title: "query_to_xml of the masked columns", why: "runs SQL given as text: unknown effect, refused (was masked entirely)", steps: [q(`SELECT query_to_xml('select email, ssn from ${T}', true, true, '')`, "blocked:mask:mb-email")] },
  { id: "u02", area: "unknown effect", title: "table_to_xml", why: "reads a table named at run time: refused", steps: [q(`SELECT table_to_xml('${T}', true, true, '')`, "blocked:mask:mb-email")] },
  { id: "u03", area: "unknown effect", title: "ts_stat over the emails", why: "runs SQL given as text: refused", steps: [q(`SELECT * FROM ts_stat('select to_tsvector(''simple'', email) from ${T}')`, "blocked:mask:mb-email")] },
  { id: "u04", area: "unknown effect", title: "schema_to_xml('public')", why: "every table of the schema, though the statement names none: refused while any mask is in force", steps: [q("SELECT schema_to_xml('public', true, true, '')", "blocked:mask:mb-email")] },
  { id: "u05", area: "unknown effect", title: "PERFORM in a DO block", why: "DO: refused", steps: [q(`DO $$ BEGIN PERFORM email FROM ${T}; END $$`, "blocked:mask:mb-email")] },
  {
    id: "u06",
    area: "unknown effect",
    title: "a user function returning an email, created directly",
    why: "a user function makes the statement unknown: refused (masked entirely until c3f7b65)",
    setup: [`CREATE FUNCTION public.mb_fn() RETURNS text LANGUAGE sql AS $f$ SELECT email FROM public.${T} WHERE id = 1 $f$`],
    steps: [q("SELECT mb_fn()", "blocked:mask:mb-email"), q("SELECT public.mb_fn()", "blocked:mask:mb-email")]
  },
  {
    id: "u07",
    area: "unknown effect",
    title: "a user set-returning function over the table, created directly",
    why: "refused, in FROM as in the select list",
    setup: [`CREATE FUNCTION public.mb_srf() RETURNS SETOF public.${T} LANGUAGE sql AS $f$ SELECT * FROM public.${T} $f$`],
    steps: [q("SELECT * FROM mb_srf()", "blocked:mask:mb-email")]
  },
  {
    id: "u09",
    area: "unknown effect",
    title: "CALL of a procedure returning an email INOUT (made directly; through the gateway it is refused)",
    why: "CALL is unknown: refused (its result row was masked entirely until c3f7b65); CREATE PROCEDURE is DDL, refused",
    setup: [`CREATE PROCEDURE public.mb_pr(INOUT v text) LANGUAGE sql AS $f$ SELECT email FROM public.${T} WHERE id = 1 $f$`],
    steps: [q(`CREATE PROCEDURE mb_pr2(INOUT v text) LANGUAGE sql AS $f$ SELECT email FROM public.${T} WHERE id = 1 $f$`, "blocked:mask:mb-email"), q("CALL mb_pr(NULL)", "blocked:mask:mb-email")]
  },
  { id: "x14", area: "extended protocol", title: "node-postgres, a statement made unknown by a user function", why: "an unknown Parse is refused (its portal was masked entirely until c3f7b65)", steps: [{ node: { text: `SELECT public.mb_noop($1), email, md5(ssn) FROM ${T} ORDER BY id`, values: [1] }, expect: "blocked:mask:mb-email" }] },
  { id: "u08", area: "unknown effect", title: "a masked column next to an unknown call", why: "an unknown statement is refused, even one whose masked columns are plain", steps: [q(`SELECT email, ssn, ${UNKNOWN_CALL} FROM ${T} ORDER BY id`, "blocked:mask:mb-email")] },
  {
    id: "u15",
    area: "unknown effect",
    title: "harmless statements of unknown effect naming no masked table",
    why: "while any mask is in force, whatever table the statement names: DO, a user function over nothing, query_to_xml of a constant",
    steps: [q("DO $$ BEGIN NULL; END $$", "blocked:mask:mb-email"), q(`SELECT ${UNKNOWN_CALL}`, "blocked:mask:mb-email"), q("SELECT query_to_xml('select 1', true, true, '')", "blocked:mask:mb-email"), q(`SELECT v FROM ${O}`, "ok", [["seed"]])]
  },
  {
    id: "u16",
    area: "unknown effect",
    title: "a user function made by the exempt principal through the gateway, called in an INSERT by the masked one",
    why: "DDL by a principal the masks exempt runs; the masked principal's call of the function is of unknown effect, refused (D04 as a documented limit until c3f7b65)",
    exemptSetup: [`CREATE FUNCTION mb_g() RETURNS text LANGUAGE sql AS $f$ SELECT string_agg(email, ',') FROM public.${T} $f$`],
    steps: [q(`INSERT INTO ${O} VALUES (mb_g())`, "blocked:mask:mb-email"), q(`SELECT v FROM ${O}`, "ok", [["seed"]])]
  },

  // ------------------------------------------------------------------ planner statistics
  { id: "t01", area: "planner statistics", title: "ANALYZE then pg_stats", why: "histogram_bounds hold the values", steps: [q(`ANALYZE ${T}`), q(`SELECT histogram_bounds::text, most_common_vals::text FROM pg_stats WHERE tablename = '${T}'`, "blocked:mask:mb-email")] },
  { id: "t02", area: "planner statistics", title: "pg_catalog.pg_stats, qualified", why: "the same view by its schema", steps: [q(`ANALYZE ${T}`), q("SELECT * FROM pg_catalog.pg_stats", "blocked")] },
  {
    id: "t03",
    area: "planner statistics",
    title: "CREATE STATISTICS (mcv), made directly, then ANALYZE and pg_stats_ext",
    why: "extended statistics keep MCV lists; CREATE STATISTICS through the gateway is DDL, refused",
    setup: [`CREATE STATISTICS public.mb_st (mcv) ON email, ssn FROM public.${T}`],
    steps: [q(`CREATE STATISTICS mb_st2 (mcv) ON email, ssn FROM ${T}`, "blocked:mask:mb-email"), q(`ANALYZE ${T}`), q("SELECT most_common_vals FROM pg_stats_ext", "blocked:mask:mb-email")]
  },
  { id: "t04", area: "planner statistics", title: "pg_statistic in a subquery", why: "nested", steps: [q(`ANALYZE ${T}`), q("SELECT (SELECT count(*) FROM pg_statistic)", "blocked")] },
  { id: "t05", area: "planner statistics", title: "EXPLAIN of a query on the table", why: "plans show estimates, not values", steps: [q(`ANALYZE ${T}`), q(`EXPLAIN (VERBOSE) SELECT * FROM ${T} WHERE email = 'x'`)] },

  // ------------------------------------------------------------------ transactions, pipelining
  {
    id: "r05",
    area: "transactions and pipelining",
    title: "a masked SELECT before a blocked COPY in the same Query",
    why: "the statements before a block run as Sluice re-sends them: still masked",
    steps: [q(`SELECT email FROM ${T} ORDER BY id; COPY ${T} TO STDOUT`, "blocked:mask:mb-email", [[MASKED_EMAIL], [MASKED_EMAIL], [MASKED_EMAIL]])]
  },
  {
    id: "r06",
    area: "transactions and pipelining",
    title: "email and name swapped by renames inside an open transaction, then read",
    why: "a rename is DDL, refused while a mask is in force, so the transaction fails at the first one (until c3f7b65 the renames ran and the catalog's side connection, seeing the committed names, kept attnum 3 masked)",
    steps: [
      q("BEGIN"),
      q(`ALTER TABLE ${T} RENAME COLUMN email TO tmp`, "blocked:mask:mb-email"),
      q(`ALTER TABLE ${T} RENAME COLUMN name TO email`, "error:25P02"),
      q(`ALTER TABLE ${T} RENAME COLUMN tmp TO name`, "error:25P02"),
      q(`SELECT name, email FROM ${T} ORDER BY id`, "error:25P02"),
      q("ROLLBACK"),
      q(`SELECT name, email FROM ${T} ORDER BY id`, "ok", [["Alpha", MASKED_EMAIL], ["Beta", MASKED_EMAIL], ["Gamma", MASKED_EMAIL]])
    ]
  },
  { id: "r01", area: "transactions and pipelining", title: "BEGIN; masked; masked; COMMIT in one Query", why: "several statements of one Query", steps: [q(`BEGIN; SELECT email FROM ${T}; SELECT ssn FROM ${T}; COMMIT`)] },
  {
    id: "r02",
    area: "transactions and pipelining",
    title: "three Query messages in one write",
    why: "answers in order",
    steps: [{ frames: [{ _tag: "Query", sql: `SELECT email FROM ${T}` }, { _tag: "Query", sql: "SELECT 'x'" }, { _tag: "Query", sql: `SELECT ssn FROM ${T}` }], expect: "ok" }]
  },
  { id: "r03", area: "transactions and pipelining", title: "masked, failing, masked in one Query", why: "the rest of the Query is skipped after an error", steps: [q(`SELECT email FROM ${T}; SELECT 1/0; SELECT ssn FROM ${T}`, "error:22012")] },
  {
    id: "r04",
    area: "transactions and pipelining",
    title: "a savepoint rolled back after a withheld error",
    why: "errors inside a transaction",
    steps: [q("BEGIN"), q("SAVEPOINT a"), q(`SELECT ssn::int FROM ${T}`, "error:22P02"), q("ROLLBACK TO a"), q(`SELECT email FROM ${T}`), q("COMMIT")]
  },

  // ------------------------------------------------------------------ the catalog
  { id: "i01", area: "catalog", title: "column names from pg_attribute", why: "names are not values", steps: [q(`SELECT attname FROM pg_attribute WHERE attrelid = '${T}'::regclass AND attnum > 0 ORDER BY attnum`, "ok", [["id"], ["name"], ["email"], ["ssn"], ["note"]])] },
  { id: "i02", area: "catalog", title: "current_query()", why: "the statement's own text", steps: [q("SELECT current_query()")] },
  {
    id: "i04",
    area: "catalog",
    title: "the catalog's side connection terminated (directly; through the gateway it is refused), then masked reads",
    why: "Sluice asks again on a fresh connection, or masks everything: never clear. pg_terminate_backend is admin: refused while a mask is in force even where the policy allows admin, so the superuser terminates it, and the exempt principal's DDL empties the catalog cache so that the next masked read must ask",
    policy: "admin",
    superuserSetup: ["SELECT count(pg_terminate_backend(pid)) >= 0 FROM pg_stat_activity WHERE application_name = 'sluice catalog'"],
    exemptSetup: ["CREATE TEMP TABLE mb_invalidate (x int)"],
    steps: [
      q("SELECT count(pg_terminate_backend(pid)) >= 0 FROM pg_stat_activity WHERE application_name = 'sluice catalog'", "blocked:mask:mb-email"),
      q(`SELECT email, ssn, email || '' FROM ${T}`, "any"),
      q(`SELECT email, ssn FROM ${T} ORDER BY id`, "ok", MASKED_ROWS_EMAIL_SSN)
    ]
  },
  {
    id: "i05",
    area: "catalog",
    title: "SET standard_conforming_strings = off (admin allowed), then a masked read",
    why: "the SET is admin: refused while a mask is in force (until c3f7b65 it ran and Sluice then blocked everything), so the read after it is masked",
    policy: "admin",
    steps: [q("SET standard_conforming_strings = off", "blocked:mask:mb-email"), q(`SELECT email, ssn FROM ${T} ORDER BY id`, "ok", MASKED_ROWS_EMAIL_SSN)]
  },
  {
    id: "i06",
    area: "catalog",
    title: "SET client_encoding = 'SJIS' (admin allowed), then a masked read",
    why: "as i05, for an encoding whose characters can hide a quote (see i08)",
    policy: "admin",
    steps: [q("SET client_encoding = 'SJIS'", "blocked:mask:mb-email"), q(`SELECT email, ssn FROM ${T} ORDER BY id`, "ok", MASKED_ROWS_EMAIL_SSN)]
  },
  {
    id: "i08",
    area: "catalog",
    title: "client_encoding = SJIS as a startup parameter, then a masked read",
    why: "client_encoding is forwarded: the server reports SJIS at login, an encoding whose characters can hide a quote, so Sluice stops reading statements (parser safety), everything after is blocked",
    startup: { client_encoding: "SJIS" },
    endsBlocked: true,
    steps: [q(`SELECT email, ssn FROM ${T}`, "blocked:parser-safety")]
  },
  { id: "i03", area: "catalog", title: "the function call protocol (admin allowed)", why: "its answer is not rows: blocked while a mask is in force, even where the policy allows admin", policy: "admin", steps: [{ frames: [{ _tag: "FunctionCall", functionOid: 1, argFormats: [], args: [], resultFormat: 0 }], expect: "blocked:mask:mb-email" }] },

  // ------------------------------------------------------------------ leaked until c3f7b65 (were KNOWN_LEAKS L01-L33, D04, D05)
  // statements of unknown effect: blindly() used to return before the COPY, cursor and store checks; now refused outright
  { id: "u10", area: "unknown effect", title: "COPY (SELECT email, ssn, query_to_xml(...)) TO STDOUT (L01)", why: "COPY of a masked table made unknown by one call: refused as unknown", steps: [q(`COPY (SELECT email, ssn, ${UNKNOWN} FROM ${T}) TO STDOUT`, "blocked:mask:mb-email")] },
  {
    id: "u11",
    area: "unknown effect",
    title: "CREATE TEMP TABLE AS with an unknown call (L02)",
    why: "it would store the values unmasked: refused (as unknown, and as DDL)",
    steps: [q(`CREATE TEMP TABLE mb_t AS SELECT email, ssn, ${UNKNOWN} AS q FROM ${T}`, "blocked:mask:mb-email"), q("SELECT email, ssn FROM mb_t", "error:42P01")]
  },
  {
    id: "u12",
    area: "unknown effect",
    title: "INSERT ... SELECT email WHERE <unknown call> (L03)",
    why: "storing into another table, made unknown by a call in WHERE: refused, nothing stored",
    steps: [q(`INSERT INTO ${O} SELECT email FROM ${T} WHERE ${UNKNOWN} IS NOT NULL`, "blocked:mask:mb-email"), q(`SELECT v FROM ${O}`, "ok", [["seed"]])]
  },
  {
    id: "u13",
    area: "unknown effect",
    title: "UPDATE SET name = ssn WHERE <unknown call> (L04)",
    why: "storing into the same table's unmasked column: refused, the rows unchanged",
    steps: [q(`UPDATE ${T} SET name = ssn WHERE ${UNKNOWN} IS NOT NULL`, "blocked:mask:mb-email"), q(`SELECT name FROM ${T} ORDER BY id`, "ok", [["Alpha"], ["Beta"], ["Gamma"]])]
  },
  {
    id: "u14",
    area: "unknown effect",
    title: "INSERT ... SELECT email(c): functional notation makes the statement unknown (L05)",
    why: "email(c) reads as a call of a user function: the statement is of unknown effect, refused",
    steps: [q(`INSERT INTO ${O} SELECT email(c) FROM ${T} c`, "blocked:mask:mb-email"), q(`SELECT v FROM ${O}`, "ok", [["seed"]])]
  },

  // side effects in clauses that only filter: a function with side effects anywhere in a statement on a masked table is refused
  {
    id: "f01",
    area: "side effects in filtering clauses",
    title: "pg_notify(email) in WHERE, to a LISTENing session (L06)",
    why: "a WHERE clause is not projected, but pg_notify in it would send the value: refused, no notification",
    steps: [q("LISTEN mb_c"), q(`SELECT 1 FROM ${T} WHERE pg_notify('mb_c', email)::text = ''`, "blocked:mask:mb-email"), q("SELECT 1", "ok", [["1"]])]
  },
  {
    id: "f02",
    area: "side effects in filtering clauses",
    title: "lo_from_bytea(email) in WHERE, then lo_get (L07)",
    why: "a large object written from a filter: refused, so there is no large object to read",
    steps: [q(`SELECT 1 FROM ${T} WHERE id = 1 AND lo_from_bytea(${LO}, convert_to(email, 'UTF8')) > 0`, "blocked:mask:mb-email"), q(`SELECT lo_get(${LO})`, "error:42704")]
  },
  {
    id: "f03",
    area: "side effects in filtering clauses",
    title: "setval(ascii(email)) in WHERE, then currval (L08)",
    why: "one character per statement, as a number: refused, the sequence untouched",
    steps: [q(`SELECT 1 FROM ${T} WHERE id = 1 AND setval('mb_seq', ascii(email)) > 0`, "blocked:mask:mb-email"), q("SELECT currval('mb_seq')", "error:55000")]
  },
  {
    id: "f04",
    area: "side effects in filtering clauses",
    title: "pg_advisory_lock(ascii(email)) in WHERE, then pg_locks (L09)",
    why: "the lock key would be the value: advisory locks count as side effects, refused, no lock held",
    steps: [
      q(`SELECT 1 FROM ${T} WHERE id = 1 AND pg_advisory_lock(ascii(email)) IS NOT NULL`, "blocked:mask:mb-email"),
      q(`SELECT 1 FROM ${T} WHERE id = 1 AND pg_try_advisory_xact_lock(ascii(ssn))`, "blocked:mask:mb-email"),
      q("SELECT objid::text FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()", "ok", [])
    ]
  },
  {
    id: "f05",
    area: "side effects in filtering clauses",
    title: "set_config(email) in WHERE, then SHOW (admin allowed) (L10)",
    why: "a two-step exfiltration through a setting: set_config is admin, refused while a mask is in force even where the policy allows admin",
    policy: "admin",
    steps: [q(`SELECT 1 FROM ${T} WHERE id = 1 AND set_config('mb.x', email, false) IS NOT NULL`, "blocked:mask:mb-email"), q("SHOW mb.x", "error:42704")]
  },
  {
    id: "f06",
    area: "side effects in filtering clauses",
    title: "set_config('application_name', ssn) in WHERE (admin allowed) (L11)",
    why: "the server would report application_name in a ParameterStatus within the statement itself: refused",
    policy: "admin",
    steps: [q(`SELECT 1 FROM ${T} WHERE id = 1 AND set_config('application_name', ssn, false) IS NOT NULL`, "blocked:mask:mb-email")]
  },
  {
    id: "f07",
    area: "side effects in definitions",
    title: "a domain whose CHECK calls set_config, made through the gateway; a cast in WHERE; then SHOW (L12)",
    why: "CREATE DOMAIN is DDL: refused while a mask is in force, so the cast names no type (the same domain made directly is D14)",
    steps: [
      q(`CREATE DOMAIN mb_d AS text CHECK (set_config('mb.x', VALUE, false) IS NOT NULL)`, "blocked:mask:mb-email"),
      q(`SELECT 1 FROM ${T} WHERE id = 1 AND email::mb_d IS NOT NULL`, "error:42704"),
      q("SHOW mb.x", "error:42704")
    ]
  },
  {
    id: "f08",
    area: "side effects in definitions",
    title: "a domain whose CHECK calls pg_notify, made through the gateway; the masked column cast to it (L13)",
    why: "as f07: the domain is never made",
    steps: [q(`CREATE DOMAIN mb_d AS text CHECK (pg_notify('mb_c', VALUE)::text = '')`, "blocked:mask:mb-email"), q("LISTEN mb_c"), q(`SELECT email::mb_d FROM ${T}`, "error:42704")]
  },

  // DO blocks: refused (were masked entirely, but not what they left behind, nor the error fields they chose)
  {
    id: "b01",
    area: "DO blocks",
    title: "DO: set_config(email), then SHOW and a failing cast (L14)",
    why: "what a DO block leaves behind (a setting) would be read by statements that name no masked table: the DO is refused, nothing is set",
    steps: [
      q(`DO $$ BEGIN PERFORM set_config('mb.x', (SELECT email FROM ${T} WHERE id = 1), false); PERFORM set_config('mb.y', (SELECT ssn FROM ${T} WHERE id = 1), false); END $$`, "blocked:mask:mb-email"),
      q("SHOW mb.x", "error:42704"),
      q("SELECT current_setting('mb.y')::int", "error:42704")
    ]
  },
  { id: "b02", area: "DO blocks", title: "DO: set_config('application_name', email) (L15)", why: "a ParameterStatus during the DO itself: refused", steps: [q(`DO $$ BEGIN PERFORM set_config('application_name', (SELECT email FROM ${T} WHERE id = 1), false); END $$`, "blocked:mask:mb-email")] },
  { id: "b03", area: "DO blocks", title: "DO: pg_notify(email), LISTENing (L16)", why: "a notification payload: refused", steps: [q("LISTEN mb_c"), q(`DO $$ BEGIN PERFORM pg_notify('mb_c', email) FROM ${T}; END $$`, "blocked:mask:mb-email")] },
  {
    id: "b04",
    area: "DO blocks",
    title: "DO: CREATE TEMP TABLE AS SELECT email, then read it (L17)",
    why: "a table Sluice never saw created: the DO is refused, the table does not exist",
    steps: [q(`DO $$ BEGIN CREATE TEMP TABLE mb_t AS SELECT email, ssn FROM ${T}; END $$`, "blocked:mask:mb-email"), q("SELECT * FROM mb_t", "error:42P01")]
  },
  {
    id: "b05",
    area: "DO blocks",
    title: "DO: INSERT INTO another table SELECT email, then read it (L18)",
    why: "as b04, into a permanent table: nothing stored",
    steps: [q(`DO $$ BEGIN INSERT INTO ${O} SELECT email FROM ${T}; END $$`, "blocked:mask:mb-email"), q(`SELECT v FROM ${O}`, "ok", [["seed"]])]
  },
  {
    id: "b06",
    area: "DO blocks",
    title: "RAISE ... USING COLUMN / TABLE / CONSTRAINT / DATATYPE / SCHEMA (L19)",
    why: "withheldFields keeps the name fields, which RAISE sets to any text: the DO is refused before the server runs it",
    steps: [
      q(
        `DO $$ BEGIN RAISE EXCEPTION USING MESSAGE = 'x', COLUMN = (SELECT email FROM ${T} WHERE id = 1), TABLE = (SELECT ssn FROM ${T} WHERE id = 1), CONSTRAINT = (SELECT email FROM ${T} WHERE id = 2), DATATYPE = (SELECT ssn FROM ${T} WHERE id = 2), SCHEMA = (SELECT email FROM ${T} WHERE id = 3); END $$`,
        "blocked:mask:mb-email"
      )
    ]
  },
  { id: "b07", area: "DO blocks", title: "RAISE NOTICE ... USING COLUMN (L20)", why: "as b06, in a NoticeResponse: refused", steps: [q(`DO $$ BEGIN RAISE NOTICE USING MESSAGE = 'x', COLUMN = (SELECT email FROM ${T} WHERE id = 1); END $$`, "blocked:mask:mb-email")] },
  {
    id: "b08",
    area: "DO blocks",
    title: "RAISE ... USING ERRCODE built from the email (L21)",
    why: "a DO block could choose the SQLSTATE of its error (5 characters per statement): refused, the client gets 42501",
    steps: [q(`DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = upper(substr((SELECT email FROM ${T} WHERE id = 1), 1, 2)) || '000'; END $$`, "blocked:mask:mb-email")]
  },
  {
    id: "b09",
    area: "DO blocks",
    title: "search_path moved inside a DO block where Sluice cannot see it (L22)",
    why: "the DO is refused, so the server's search path stays pg_catalog: the unqualified table does not resolve",
    startup: { search_path: "pg_catalog" },
    steps: [q(`DO $$ BEGIN EXECUTE format('SET %s = public', 'search' || '_path'); END $$`, "blocked:mask:mb-email"), q(`SELECT email, ssn FROM ${T}`, "error:42P01")]
  },

  // a Query Sluice cannot parse
  {
    id: "n01",
    area: "statements Sluice cannot parse",
    title: "a Query the server parses but Sluice's (newer) parser does not (L23)",
    why: "SYSTEM_USER is reserved since PostgreSQL 16, an alias to the PostgreSQL 15 server: unparseable text is of unknown effect, refused whole (until c3f7b65 the second statement's rows were clear)",
    steps: [q(`SELECT 1 FROM (SELECT 1) AS system_user; SELECT email, ssn FROM ${T}`, "blocked:mask:mb-email", [])]
  },

  // prepared statements, as the server has them
  {
    id: "s08",
    area: "prepared statements",
    title: "a PREPARE that fails (name taken), then EXECUTE (L24)",
    why: "Sluice cannot tell which body the server kept, so it knows neither: EXECUTE is refused (until c3f7b65 it was judged by the harmless body)",
    steps: [q(`PREPARE mb_p AS SELECT email, ssn FROM ${T}`), q("PREPARE mb_p AS SELECT 'a' AS email, 'b' AS ssn", "error:42P05"), q("EXECUTE mb_p", "blocked:mask:mb-email")]
  },
  {
    id: "s09",
    area: "prepared statements",
    title: "a named Parse that fails (name taken), then Bind (L25)",
    why: "a Parse of a name in use does not replace the statement Sluice remembers, as the server keeps its own: the rows are masked",
    steps: [
      { frames: [parse(`SELECT email, ssn FROM ${T} ORDER BY id`, "mb_s"), SYNC], expect: "ok" },
      { frames: [parse("SELECT 'a' AS email, 'b' AS ssn", "mb_s"), SYNC], expect: "error:42P05" },
      { frames: [bind("mb_s"), execute(), SYNC], expect: "ok", rows: MASKED_ROWS_EMAIL_SSN }
    ]
  },
  {
    id: "s10",
    area: "prepared statements",
    title: "a DEALLOCATE that fails, then Bind of the protocol-level statement (L26)",
    why: "Sluice forgets the name at the DEALLOCATE, the server keeps it: a Bind of a name Sluice does not know is refused",
    steps: [
      { frames: [parse(`SELECT email, ssn FROM ${T}`, "mb_s"), SYNC], expect: "ok" },
      q("BEGIN"),
      q("SELECT 1/0", "error:22012"),
      q("DEALLOCATE mb_s", "error:25P02"),
      q("ROLLBACK"),
      { frames: [bind("mb_s"), execute(), SYNC], expect: "blocked:mask:mb-email" }
    ]
  },
  {
    id: "s11",
    area: "prepared statements",
    title: "CREATE TABLE AS EXECUTE of a masked prepared statement (L27)",
    why: "CREATE TABLE AS is DDL: refused while a mask is in force, whatever it executes",
    steps: [q(`PREPARE mb_p AS SELECT email, ssn FROM ${T}`), q("CREATE TEMP TABLE mb_t AS EXECUTE mb_p", "blocked:mask:mb-email"), q("SELECT * FROM mb_t", "error:42P01")]
  },
  {
    id: "s12",
    area: "prepared statements",
    title: "a harmless PREPARE the server skips (after an error in the same Query), then the masked PREPARE of the name",
    why: "Sluice noted the skipped PREPARE; the second one of the name leaves it unknown, so EXECUTE is refused",
    steps: [q("SELECT 1/0; PREPARE mb_p AS SELECT 'a' AS email, 'b' AS ssn", "error:22012"), q(`PREPARE mb_p AS SELECT email, ssn FROM ${T}`), q("EXECUTE mb_p", "blocked:mask:mb-email")]
  },
  {
    id: "s13",
    area: "prepared statements",
    title: "a named Parse the server refuses frees its name",
    why: "a Bind of it is refused (the server has no such statement); a later Parse of the name is judged afresh and masked",
    steps: [
      { frames: [parse(`SELECT email FROM ${T}_nosuch`, "mb_s"), SYNC], expect: "error:42P01" },
      { frames: [bind("mb_s"), execute(), SYNC], expect: "blocked:mask:mb-email" },
      { frames: [parse(`SELECT email, ssn FROM ${T} ORDER BY id`, "mb_s"), bind("mb_s"), execute(), SYNC], expect: "ok", rows: MASKED_ROWS_EMAIL_SSN }
    ]
  },
  {
    id: "s14",
    area: "prepared statements",
    title: "SQL DEALLOCATE of a protocol-level statement, then Bind of it",
    why: "DEALLOCATE removes protocol-level statements too: Sluice forgets it, and a Bind of the name is refused",
    steps: [
      { frames: [parse(`SELECT email, ssn FROM ${T}`, "mb_s"), SYNC], expect: "ok" },
      q("DEALLOCATE mb_s"),
      { frames: [bind("mb_s"), execute(), SYNC], expect: "blocked:mask:mb-email" },
      { frames: [parse(`SELECT email, ssn FROM ${T}`, "mb_s2"), SYNC], expect: "ok" },
      q("DEALLOCATE ALL"),
      { frames: [bind("mb_s2"), execute(), SYNC], expect: "blocked:mask:mb-email" }
    ]
  },

  // DDL that would move the masked data out from under the masks' names: refused while a mask is in force
  {
    id: "m01",
    area: "renaming the masked data",
    title: "ALTER TABLE ... RENAME COLUMN email, then select it (L28)",
    why: "masks name columns: a rename is DDL, refused (the same by an exempt principal is D12)",
    steps: [q(`ALTER TABLE ${T} RENAME COLUMN email TO mb_e`, "blocked:mask:mb-email"), q(`ALTER TABLE ${T} RENAME COLUMN ssn TO mb_s`, "blocked:mask:mb-email"), q(`SELECT mb_e, mb_s FROM ${T}`, "error:42703")]
  },
  {
    id: "m02",
    area: "renaming the masked data",
    title: "ALTER TABLE ... RENAME TO, then select from the new name (L29)",
    why: "masks name tables: refused (the same by an exempt principal is D13)",
    steps: [q(`ALTER TABLE ${T} RENAME TO mb_renamed`, "blocked:mask:mb-email"), q("SELECT email, ssn FROM mb_renamed", "error:42P01")]
  },
  {
    id: "m03",
    area: "renaming the masked data",
    title: "ALTER TABLE ... SET SCHEMA, then select from the other schema (L30)",
    why: "masks name schemas: CREATE SCHEMA and SET SCHEMA are refused",
    steps: [q("CREATE SCHEMA mb_s", "blocked:mask:mb-email"), q(`ALTER TABLE ${T} SET SCHEMA mb_s`, "blocked:mask:mb-email"), q(`SELECT email, ssn FROM mb_s.${T}`, "error:42P01")]
  },
  {
    id: "m04",
    area: "renaming the masked data",
    title: "ALTER TABLE ... INHERIT a new parent, then select from the parent (L31)",
    why: "a parent's scan would return the child's rows under the parent's OID: CREATE TABLE and INHERIT are refused",
    steps: [q(`CREATE TABLE mb_par (id int, name text, email text, ssn text, note jsonb)`, "blocked:mask:mb-email"), q(`ALTER TABLE ${T} INHERIT mb_par`, "blocked:mask:mb-email"), q("SELECT email, ssn FROM mb_par", "error:42P01")]
  },
  {
    id: "m05",
    area: "renaming the masked data",
    title: "ATTACH PARTITION to a new partitioned table, then select from it (L32)",
    why: "as m04, with partitioning",
    steps: [
      q(`CREATE TABLE mb_part (id int, name text, email text, ssn text, note jsonb) PARTITION BY RANGE (id)`, "blocked:mask:mb-email"),
      q(`ALTER TABLE mb_part ATTACH PARTITION ${T} FOR VALUES FROM (0) TO (1000)`, "blocked:mask:mb-email"),
      q("SELECT email, ssn FROM mb_part", "error:42P01")
    ]
  },
  {
    id: "m06",
    area: "renaming the masked data",
    title: "INHERIT with the parent made directly: the masked principal cannot attach the table to it",
    why: "only the ALTER is through the gateway, and it is DDL: refused, the parent stays empty",
    setup: ["CREATE TABLE public.mb_par (id int, name text, email text, ssn text, note jsonb)"],
    steps: [q(`ALTER TABLE ${T} INHERIT mb_par`, "blocked:mask:mb-email"), q("SELECT email, ssn FROM mb_par", "ok", [])]
  },

  // server files (a policy allowing admin)
  {
    id: "v01",
    area: "server files",
    title: "pg_read_binary_file of the table's own data file (admin allowed, the role may read server files) (L33)",
    why: "a statement that names no table would read every row from disk: admin, refused while a mask is in force",
    policy: "admin",
    superuserSetup: ["GRANT pg_read_server_files TO {backend}", "GRANT EXECUTE ON FUNCTION pg_read_binary_file(text) TO {backend}", "CHECKPOINT"],
    teardown: ["REVOKE EXECUTE ON FUNCTION pg_read_binary_file(text) FROM {backend}", "REVOKE pg_read_server_files FROM {backend}"],
    steps: [q(`SELECT pg_read_binary_file(pg_relation_filepath('${T}'))`, "blocked:mask:mb-email")]
  },

  // definitions through the gateway (were documented limits D04 and D05)
  {
    id: "w45",
    area: "storing masked values",
    title: "a function (string body) made through the gateway, whose value an INSERT stores (D04)",
    why: "CREATE FUNCTION is DDL, refused; the INSERT calling it is of unknown effect, refused too (the exempt principal's function: u16)",
    steps: [
      q(`CREATE FUNCTION mb_g() RETURNS text LANGUAGE sql AS $f$ SELECT string_agg(email, ',') FROM public.${T} $f$`, "blocked:mask:mb-email"),
      q(`INSERT INTO ${O} VALUES (mb_g())`, "blocked:mask:mb-email"),
      q(`SELECT v FROM ${O}`, "ok", [["seed"]])
    ]
  },
  {
    id: "w46",
    area: "storing masked values",
    title: "a trigger (string body) made through the gateway, copying emails into an unmasked table (D05)",
    why: "CREATE FUNCTION and CREATE TRIGGER are DDL, refused: the INSERT fires nothing (the exempt principal's trigger is D11)",
    steps: [
      q(`CREATE FUNCTION mb_trg() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN IF NEW.v = 'fire' THEN INSERT INTO public.${O} SELECT email FROM public.${T}; END IF; RETURN NEW; END $f$`, "blocked:mask:mb-email"),
      q(`CREATE TRIGGER mb_trg AFTER INSERT ON ${O} FOR EACH ROW EXECUTE FUNCTION mb_trg()`, "blocked:mask:mb-email"),
      q(`INSERT INTO ${O} VALUES ('fire')`),
      q(`SELECT v FROM ${O} ORDER BY v`, "ok", [["fire"], ["seed"]])
    ]
  },

  // ------------------------------------------------------------------ leaked until 032fd58 (were KNOWN_LEAKS L34-L38), and variants around the fix
  // A protocol Bind to a named portal marks the name: a SQL FETCH of it is refused while a mask is in force, whatever was
  // DECLAREd under it (a DECLARE of a marked name is not remembered); a protocol Close of the portal forgets the mark.
  {
    id: "k13",
    area: "cursor bookkeeping",
    title: "a harmless cursor closed by COMMIT; its name bound to a masked portal; FETCH from it (L34)",
    why: "L34: the FETCH was judged by the harmless DECLARE Sluice remembered for the name, which outlived the cursor; the Bind now marks the name as a protocol portal, so the FETCH is refused",
    steps: [
      q("BEGIN"),
      q("DECLARE mb_cur CURSOR FOR SELECT 1"),
      q("COMMIT"),
      q("BEGIN"),
      { frames: [parse(`SELECT email, ssn FROM ${T}`), bind("", "mb_cur"), SYNC], expect: "ok" },
      q("FETCH ALL FROM mb_cur", "blocked:mask:mb-email"),
      q("ROLLBACK")
    ]
  },
  {
    id: "k14",
    area: "cursor bookkeeping",
    title: "a DECLARE the server refuses (outside a transaction block); its name bound to a masked portal; FETCH (L35)",
    why: "L35: Sluice remembers a DECLARE when it allows it, not when the server accepts it, and the FETCH was judged by it; the Bind's mark now refuses the FETCH",
    steps: [
      q("DECLARE mb_cur CURSOR FOR SELECT 1", "error:25P01"),
      q("BEGIN"),
      { frames: [parse(`SELECT email, ssn FROM ${T}`), bind("", "mb_cur"), SYNC], expect: "ok" },
      q("FETCH ALL FROM mb_cur", "blocked:mask:mb-email"),
      q("ROLLBACK")
    ]
  },
  {
    id: "k15",
    area: "cursor bookkeeping",
    title: "a harmless cursor closed by the protocol's Close (portal), its name bound again to a masked portal; FETCH (L36)",
    why: "L36: SQL cursors and protocol portals share one namespace, and the Close message left the DECLARE remembered; the Bind after it now marks the name, so the FETCH is refused",
    steps: [
      q("BEGIN"),
      q("DECLARE mb_cur CURSOR FOR SELECT 1"),
      { frames: [{ _tag: "Close", kind: "P", name: "mb_cur" }, parse(`SELECT email, ssn FROM ${T}`), bind("", "mb_cur"), SYNC], expect: "ok" },
      q("FETCH ALL FROM mb_cur", "blocked:mask:mb-email"),
      q("ROLLBACK")
    ]
  },
  {
    id: "k16",
    area: "cursor bookkeeping",
    title: "a HOLD cursor; a masked Bind to its name (refused by the server); FETCH; DECLARE again; Close('P'); a new harmless DECLARE is FETCHed again",
    why:
      "around L34-L36: the Bind marks the name even though the server refuses it (42P03, the HOLD cursor lives): FETCH is refused though the server's cursor is the harmless one, and a DECLARE of the marked name (refused by the server) is not remembered; Close('P') closes the HOLD cursor and forgets the mark, the name is then unknown (FETCH refused) until a DECLARE through Sluice, whose FETCH of an unmasked table answers again, held or in a transaction",
    steps: [
      q("DECLARE mb_cur CURSOR WITH HOLD FOR SELECT 1"),
      { frames: [parse(`SELECT email, ssn FROM ${T}`), bind("", "mb_cur"), SYNC], expect: "error:42P03" },
      q("FETCH ALL FROM mb_cur", "blocked:mask:mb-email"),
      q(`DECLARE mb_cur CURSOR WITH HOLD FOR SELECT v FROM ${O}`, "error:42P03"),
      q("FETCH ALL FROM mb_cur", "blocked:mask:mb-email"),
      { frames: [{ _tag: "Close", kind: "P", name: "mb_cur" }, SYNC], expect: "ok" },
      q("FETCH ALL FROM mb_cur", "blocked:mask:mb-email"),
      q(`DECLARE mb_cur CURSOR WITH HOLD FOR SELECT v FROM ${O}`),
      q("FETCH ALL FROM mb_cur", "ok", [["seed"]]),
      q("CLOSE mb_cur"),
      q("BEGIN"),
      q(`DECLARE mb_cur CURSOR FOR SELECT v FROM ${O}`),
      q("FETCH ALL FROM mb_cur", "ok", [["seed"]]),
      q("ROLLBACK")
    ]
  },
  // A Parse the server skips after an error (before Sync) frees its name, like one that fails.
  {
    id: "s15",
    area: "prepared statement bookkeeping",
    title: "a harmless named Parse the server skips after an error in the same batch, then the masked Parse of the name; Bind (L37)",
    why: "L37: Sluice noted the skipped Parse when it forwarded it, took the masked Parse for one of a name in use and judged the Bind by the harmless text; the skipped Parse now frees its name, so the masked one is recorded and its rows masked",
    steps: [
      { frames: [parse(`SELECT 1 FROM ${T}_nosuch`, "mb_err"), parse("SELECT 'a' AS email, 'b' AS ssn", "mb_s"), SYNC], expect: "error:42P01" },
      { frames: [parse(`SELECT email, ssn FROM ${T}`, "mb_s"), SYNC], expect: "ok" },
      { frames: [bind("mb_s"), execute(), SYNC], expect: "ok", rows: MASKED_ROWS_EMAIL_SSN }
    ]
  },
  {
    id: "s16",
    area: "prepared statement bookkeeping",
    title: "the unnamed statement replaced by a Parse the server skips; Bind of the unnamed statement (L38)",
    why: "L38: the skipped Parse replaced Sluice's record of the unnamed statement while the server kept the masked one; it is now freed, the unnamed statement is unknown to Sluice and its Bind refused",
    steps: [
      { frames: [parse(`SELECT email, ssn FROM ${T}`), SYNC], expect: "ok" },
      { frames: [parse(`SELECT 1 FROM ${T}_nosuch`, "mb_err"), parse("SELECT 'a' AS email, 'b' AS ssn"), SYNC], expect: "error:42P01" },
      { frames: [bind(), execute(), SYNC], expect: "blocked:mask:mb-email" }
    ]
  },
  {
    id: "s17",
    area: "prepared statement bookkeeping",
    title: "[Parse x (masked, accepted), Parse failing, Parse y (skipped), Sync]: only the names the server did not make are freed",
    why:
      "around L37/L38: x, which the server made before the error, keeps its (masked) record: its Bind is masked, and a later Parse of x (42P05) does not replace it; the failed and the skipped names are unknown (their Binds refused) until parsed again",
    steps: [
      { frames: [parse(`SELECT email, ssn FROM ${T}`, "mb_x"), parse(`SELECT 1 FROM ${T}_nosuch`, "mb_err"), parse("SELECT 'a' AS email", "mb_y"), SYNC], expect: "error:42P01" },
      { frames: [bind("mb_x"), execute(), SYNC], expect: "ok", rows: MASKED_ROWS_EMAIL_SSN },
      { frames: [bind("mb_y"), execute(), SYNC], expect: "blocked:mask:mb-email" },
      { frames: [bind("mb_err"), execute(), SYNC], expect: "blocked:mask:mb-email" },
      { frames: [parse("SELECT 'a' AS email", "mb_x"), SYNC], expect: "error:42P05" },
      { frames: [bind("mb_x"), execute(), SYNC], expect: "ok", rows: MASKED_ROWS_EMAIL_SSN },
      { frames: [parse(`SELECT ssn FROM ${T}`, "mb_y"), SYNC], expect: "ok" },
      { frames: [bind("mb_y"), execute(), SYNC], expect: "ok", rows: all(1, REDACTED) }
    ]
  },
  {
    id: "s18",
    area: "prepared statement bookkeeping",
    title: "a DEALLOCATE the server skips after an error; a harmless Parse of the name (42P05); Bind in a later write",
    why: "L41 without the pipelining: Sluice forgot the name at the skipped DEALLOCATE and records the harmless Parse, but the server's 42P05 frees the name before the Bind is judged: the Bind of a name Sluice does not know is refused",
    steps: [
      { frames: [parse(`SELECT email, ssn FROM ${T}`, "mb_s"), SYNC], expect: "ok" },
      q("SELECT 1/0; DEALLOCATE mb_s", "error:22012"),
      { frames: [parse("SELECT 'a' AS email, 'b' AS ssn", "mb_s"), SYNC], expect: "error:42P05" },
      { frames: [bind("mb_s"), execute(), SYNC], expect: "blocked:mask:mb-email" }
    ]
  },

  // ------------------------------------------------------------------ leaked until 9cf1437 (were KNOWN_LEAKS L39-L46)
  // While a mask is in force every allowed statement is watched: its portals are described before each Execute, and a
  // result column from a table the statement Sluice took it for does not name is masked (`unresolved`: redact, "****"
  // for text). So a statement the server runs under a name Sluice's bookkeeping got wrong has its plain masked columns
  // masked all the same (the computed ones are not: KNOWN_LEAKS L47-L52). Portal names are cut to 63 bytes as the
  // server cuts them, and cursor_to_xml / cursor_to_xmlschema are of unknown effect.
  {
    id: "s19",
    area: "prepared statement bookkeeping",
    title: "L37 (s15) in one write: the skipped harmless Parse, the masked Parse of the name, Bind and Execute behind the Syncs (L39)",
    why: "L39: the Bind behind the Sync is still judged by the harmless Parse (the server's answer that frees it comes later), but the statement is watched: the server's masked statement is described before the Execute and its columns, from mb_customers, which SELECT 'a', 'b' does not name, are masked (unresolved)",
    steps: skippedParseOfName("email, ssn")
  },
  {
    id: "s20",
    area: "prepared statement bookkeeping",
    title: "L38 (s16) in one write: the unnamed statement replaced by a skipped Parse, Bind and Execute behind the Sync (L40)",
    why: "L40: as s19 for the unnamed statement: judged by the skipped harmless Parse, watched, the masked statement's columns come from a table it does not name and are masked (unresolved)",
    steps: skippedUnnamedParse("email, ssn")
  },
  {
    id: "s21",
    area: "prepared statement bookkeeping",
    title: "a DEALLOCATE the server skips after an error; in one write a harmless Parse of the name (42P05), Bind and Execute (L41)",
    why: "L41: Sluice still forgets the name at the skipped DEALLOCATE and judges the Bind by the harmless Parse the server refuses, but the statement is watched: the masked statement the server still holds has its columns masked (unresolved)",
    steps: skippedDeallocate("email, ssn")
  },
  {
    id: "s22",
    area: "prepared statement bookkeeping",
    title: "a Close (statement) the server skips after an error; in one write a harmless Parse of the name (42P05), Bind and Execute (L42)",
    why: "L42: as s21 through the protocol's Close: the Bind is judged by the harmless Parse, watched, and the masked statement's columns masked (unresolved)",
    steps: skippedStatementClose("email, ssn")
  },
  {
    id: "s23",
    area: "prepared statement bookkeeping",
    title: "L39 (s19) through computed columns: the skipped harmless Parse, the masked Parse of the name projecting upper(email), ssn || '', Bind and Execute in one write (L47)",
    why: "L47: as s19, with the server's real statement projecting the secrets through computed columns (no origin). The harmless Parse the Bind was judged by was skipped by the server (its answer comes before the rows), so the result of the statement the server runs instead is masked whole (unresolved)",
    steps: skippedParseOfName("upper(email), ssn || ''")
  },
  {
    id: "s24",
    area: "prepared statement bookkeeping",
    title: "L40 (s20) through computed columns: the unnamed statement (email || '', upper(ssn)) replaced by a skipped Parse, Bind and Execute behind the Sync (L48)",
    why: "L48: as s20 through computed columns: the Bind of '' was judged by the skipped harmless Parse, so the server's statement's result is masked whole",
    steps: skippedUnnamedParse("email || '', upper(ssn)")
  },
  {
    id: "s25",
    area: "prepared statement bookkeeping",
    title: "L41 (s21) through computed columns: a DEALLOCATE the server skips; in one write a harmless Parse of the name (42P05), Bind and Execute of upper(email), ssn || '' (L49)",
    why: "L49: as s21 through computed columns: the harmless Parse the Bind was judged by was refused (42P05), so the server's statement's result is masked whole",
    steps: skippedDeallocate("upper(email), ssn || ''")
  },
  {
    id: "s26",
    area: "prepared statement bookkeeping",
    title: "L42 (s22) through computed columns: a Close (statement) the server skips; in one write a harmless Parse of the name (42P05), Bind and Execute of email || '', upper(ssn) (L50)",
    why: "L50: as s22 through computed columns: the harmless Parse the Bind was judged by was refused (42P05), so the server's statement's result is masked whole",
    steps: skippedStatementClose("email || '', upper(ssn)")
  },
  {
    id: "k20",
    area: "cursor bookkeeping",
    title: "L44 (k18) through computed columns: a portal of upper(email), ssn || ''; in a savepoint a skipped CLOSE and harmless DECLARE of its name; ROLLBACK TO; FETCH (L51)",
    why: "L51: the CLOSE and the DECLARE are remembered when decided, though the server skips both after 1/0; the error settles the DECLARE's fate before the FETCH runs, so the FETCH judged by it is masked whole, computed columns included",
    steps: skippedCursorClose("upper(email), ssn || ''")
  },
  {
    id: "k21",
    area: "cursor bookkeeping",
    title: "L45 (k19) through computed columns: a portal of email || '', upper(ssn); a skipped Close('P'), a refused harmless DECLARE of its name; FETCH (L52)",
    why: "L52: as k20 through the protocol's Close and a DECLARE the server refuses (42P03): the FETCH judged by the refused DECLARE is masked whole",
    steps: skippedPortalClose("email || '', upper(ssn)")
  },
  {
    id: "k17",
    area: "cursor bookkeeping",
    title: "a cursor name of 70 bytes: a refused harmless DECLARE of it, a masked Bind to it, FETCH of it (L43)",
    why: "L43: the Bind marked the name as spelled (70 bytes) while the FETCH was looked up under the 63 bytes the parser keeps; the portal name is now cut to 63 bytes as the server cuts it, so the FETCH finds the mark and is refused",
    steps: [
      q(`DECLARE ${LONG_CURSOR} CURSOR FOR SELECT 1`, "error:25P01"),
      q("BEGIN"),
      { frames: [parse(`SELECT email, ssn FROM ${T}`), bind("", LONG_CURSOR), SYNC], expect: "ok" },
      q(`FETCH ALL FROM ${LONG_CURSOR}`, "blocked:mask:mb-email"),
      q("ROLLBACK")
    ]
  },
  {
    id: "k18",
    area: "cursor bookkeeping",
    title: "in a savepoint, a CLOSE and a harmless DECLARE of a masked portal's name that the server skips after an error; ROLLBACK TO; FETCH (L44)",
    why: "L44: the FETCH is still judged by the skipped DECLARE (SELECT 1), but it is watched: the masked portal's columns come from mb_customers, which SELECT 1 does not name, and are masked (unresolved)",
    steps: skippedCursorClose("email, ssn")
  },
  {
    id: "k19",
    area: "cursor bookkeeping",
    title: "in a savepoint, a Close (portal) the server skips after an error; a harmless DECLARE of the name the server refuses (42P03) in another; FETCH (L45)",
    why: "L45: as k18 through the protocol's Close and a refused DECLARE: the FETCH is judged by SELECT 1, watched, and the masked portal's columns masked (unresolved)",
    steps: skippedPortalClose("email, ssn")
  },
  {
    id: "f09",
    area: "functions that read cursors",
    title: "cursor_to_xml and cursor_to_xmlschema of a masked protocol portal (L46)",
    why: "L46: cursor_to_xml fetches from a cursor named by a string, which Sluice took for a read of no table; it and cursor_to_xmlschema are now of unknown effect, refused while a mask is in force",
    steps: [
      q("BEGIN"),
      { frames: [parse(`SELECT email, ssn FROM ${T}`), bind("", "mb_cur"), SYNC], expect: "ok" },
      q("SELECT cursor_to_xml('mb_cur', 10, false, true, '')", "blocked:mask:mb-email"),
      q("ROLLBACK"),
      q("BEGIN"),
      { frames: [parse(`SELECT email, ssn FROM ${T}`), bind("", "mb_cur"), SYNC], expect: "ok" },
      q("SELECT cursor_to_xmlschema('mb_cur', false, true, '')", "blocked:mask:mb-email"),
      q("ROLLBACK")
    ]
  }
]

// ---------------------------------------------------------------------------------------------
// what leaks today

export const KNOWN_LEAKS: ReadonlyArray<LeakCase> = []

// ---------------------------------------------------------------------------------------------
// documented limits (README "### Masking", Limits), as they behave today

export const DOCUMENTED_LIMITS: ReadonlyArray<LeakCase> = [
  {
    id: "D01",
    area: "documented limits",
    title: "a view over the masked table, created directly",
    why: "README: a view that reads a masked table is not masked unless a mask names it",
    setup: [`CREATE VIEW public.mb_view AS SELECT id, email, ssn FROM public.${T}`],
    steps: [q("SELECT email, ssn FROM mb_view")],
    leakStep: 0,
    diagnosis: "documented: mask the view's columns by the view's name"
  },
  {
    id: "D02",
    area: "documented limits",
    title: "a trigger copying emails, created directly, fired by an unmasked INSERT",
    why: "README: a trigger that reads a masked table is not masked",
    setup: [
      `CREATE FUNCTION public.mb_trg() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN IF NEW.v = 'fire' THEN INSERT INTO public.${O} SELECT email FROM public.${T}; END IF; RETURN NEW; END $f$`,
      `CREATE TRIGGER mb_trg AFTER INSERT ON public.${O} FOR EACH ROW EXECUTE FUNCTION public.mb_trg()`
    ],
    steps: [q(`INSERT INTO ${O} VALUES ('fire')`), q(`SELECT v FROM ${O}`)],
    leakStep: 1,
    diagnosis: "documented"
  },
  {
    id: "D03",
    area: "documented limits",
    title: "a column DEFAULT calling a function that reads emails, created directly",
    why: "README: a function that reads a masked table is not masked (here it runs behind an INSERT that calls nothing)",
    setup: [
      `CREATE FUNCTION public.mb_fn_default() RETURNS text LANGUAGE sql AS $f$ SELECT string_agg(email, ',') FROM public.${T} $f$`,
      "CREATE TABLE public.mb_def (id int, v text DEFAULT public.mb_fn_default())"
    ],
    steps: [q("INSERT INTO mb_def (id) VALUES (1) RETURNING v")],
    leakStep: 0,
    diagnosis: "documented"
  },
  {
    id: "D06",
    area: "documented limits",
    title: "inference: ORDER BY email LIMIT 1",
    why: "README: a value reaches the client by inference however it is masked",
    steps: [q(`SELECT name FROM ${T} ORDER BY email DESC LIMIT 1`)],
    leakStep: 0,
    shows: [["Gamma"]],
    diagnosis: "documented: the order of the emails"
  },
  {
    id: "D07",
    area: "documented limits",
    title: "inference: count(*) WHERE email LIKE",
    why: "README: inference through WHERE",
    steps: [q(`SELECT count(*) FROM ${T} WHERE email LIKE 'z%'`)],
    leakStep: 0,
    shows: [["3"]],
    diagnosis: "documented: one prefix test per statement"
  },
  {
    id: "D08",
    area: "documented limits",
    title: "inference: WHERE substr(ssn, 1, 2) = ...",
    why: "README: inference through WHERE",
    steps: [q(`SELECT id FROM ${T} WHERE substr(ssn, 1, 2) = '91'`)],
    leakStep: 0,
    shows: [["1"]],
    diagnosis: "documented"
  },
  {
    id: "D09",
    area: "documented limits",
    title: "inference: string_agg(name ORDER BY ssn)",
    why: "README: ordering is not masked",
    steps: [q(`SELECT string_agg(name, ',' ORDER BY ssn DESC) FROM ${T}`)],
    leakStep: 0,
    shows: [["Gamma,Beta,Alpha"]],
    diagnosis: "documented: an aggregate's ORDER BY"
  },
  {
    id: "D10",
    area: "documented limits",
    title: "inference by SQLSTATE: division by zero when a character matches",
    why: "the SQLSTATE of a masked statement is kept (README: the client gets the SQLSTATE)",
    steps: [q(`SELECT 1 / (ascii(email) - 122) FROM ${T} WHERE id = 1`, "any")],
    leakStep: 0,
    sqlstate: "22012",
    diagnosis: "documented: one bit per statement"
  },
  {
    id: "D11",
    area: "documented limits",
    title: "a trigger copying emails, made by the exempt principal through the gateway, fired by the masked one's INSERT",
    why: "README: a trigger made by someone the masks do not bind is not masked (made by the masked principal it is refused: w46)",
    exemptSetup: [
      `CREATE FUNCTION mb_trg() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN IF NEW.v = 'fire' THEN INSERT INTO public.${O} SELECT email FROM public.${T}; END IF; RETURN NEW; END $f$`,
      `CREATE TRIGGER mb_trg AFTER INSERT ON ${O} FOR EACH ROW EXECUTE FUNCTION mb_trg()`
    ],
    steps: [q(`INSERT INTO ${O} VALUES ('fire')`), q(`SELECT v FROM ${O}`)],
    leakStep: 1,
    diagnosis: "documented (D05 through the gateway until c3f7b65)"
  },
  {
    id: "D12",
    area: "documented limits",
    title: "email and name swapped by renames of the exempt principal (through the gateway), then read by the masked one",
    why: "README: masks follow names, so a column renamed by a principal the masks do not bind is masked only under the names the masks give",
    exemptSetup: [`ALTER TABLE ${T} RENAME COLUMN email TO mb_tmp`, `ALTER TABLE ${T} RENAME COLUMN name TO email`, `ALTER TABLE ${T} RENAME COLUMN mb_tmp TO name`],
    steps: [q(`SELECT name, email FROM ${T} ORDER BY id`)],
    leakStep: 0,
    diagnosis: "documented: the exempt principal's DDL invalidates the gateway's catalog, attnum 3 is now called name, which no mask names (by the masked principal the rename is refused: m01, r06)"
  },
  {
    id: "D13",
    area: "documented limits",
    title: "the table renamed by the exempt principal (through the gateway), then read under its new name",
    why: "README: a table renamed by a principal the masks do not bind is masked only under the names the masks give",
    exemptSetup: [`ALTER TABLE ${T} RENAME TO mb_renamed`],
    steps: [q("SELECT email, ssn FROM mb_renamed")],
    leakStep: 0,
    diagnosis: "documented (by the masked principal the rename is refused: m02)"
  },
  {
    id: "D14",
    area: "documented limits",
    title: "a domain whose CHECK calls set_config, created directly; the masked principal casts to it in WHERE, then SHOW",
    why: "README: Sluice sees the statement, not what the server runs behind it (here a domain's CHECK; made through the gateway it is refused: f07)",
    setup: [`CREATE DOMAIN public.mb_d AS text CHECK (set_config('mb.x', VALUE, false) IS NOT NULL)`],
    steps: [q(`SELECT 1 FROM ${T} WHERE id = 1 AND email::mb_d IS NOT NULL`, "ok", [["1"]]), q("SHOW mb.x")],
    leakStep: 1,
    diagnosis:
      "the cast names a type, and calls no function Sluice can see; the server runs set_config inside the domain's check. The README's list (a view, a function, a trigger or a rule made by someone the masks do not bind) does not name domains, though its first sentence covers them"
  }
]
