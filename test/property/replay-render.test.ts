/**
 * `sluice replay`'s timeline, rendered without a sink: recorded rows as an aligned table
 * whatever their number, masking summaries on one line (and whole in `--json`), and nothing from the audit trail that could drive the auditor's
 * terminal (control characters come out as `\xNN`).
 */
import { describe, expect, it } from "vitest"
import { jsonLine, renderTimeline } from "../../src/cli/replay.ts"
import type { AuditEvent, Payload } from "../../src/sinks/events.ts"

const event = (sequence: number, payload: Payload): AuditEvent => ({
  eventId: "6f1c4b0e-8e8b-4a53-9a39-2f6a0f5b9c11",
  sessionId: "s",
  sequence,
  time: 1_763_800_000_000_000 + sequence,
  gateway: "g",
  payload
})

describe("replay timeline", () => {
  it("renders recorded rows as a table: names, NULL, bytes as hex", () => {
    const out = renderTimeline("s", "test", [
      event(0, {
        _tag: "RecordedRows",
        statementId: 3,
        columns: [
          { name: "id", typeOid: 23, binary: false },
          { name: "photo", typeOid: 17, binary: true }
        ],
        rows: [
          ["1", Buffer.from([0xca, 0xfe])],
          ["22", null]
        ],
        truncated: false
      })
    ])
    // between the heading and the note that the session has not ended
    expect(out.split("\n").slice(1, -1)).toEqual([
      expect.stringMatching(/^0 {2}\S+ {2}recorded 3 {2}2 rows$/),
      "      id | photo",
      "      ---+-------",
      "      1  | \\xcafe",
      "      22 | NULL"
    ])
  })

  it("escapes control characters in values, column names and statement text (newlines in a statement stay)", () => {
    const out = renderTimeline("s", "test", [
      event(0, { _tag: "Statement", statementId: 0, text: "SELECT 1\n-- \u001b[2J", fingerprint: "f", statementClass: "read", relationsRead: [], relationsWritten: [], functions: [], via: "simple" }),
      event(1, { _tag: "RecordedRows", statementId: 0, columns: [{ name: "a\u001bb", typeOid: 25, binary: false }], rows: [["x\u0007\ty"]], truncated: false })
    ])
    expect(out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/)
    expect(out).toContain("SELECT 1\n      -- \\x1b[2J")
    expect(out).toContain("a\\x1bb")
    expect(out).toContain("x\\x07\\x09y")
  })

  it("renders a recording of more rows than a function call takes arguments", () => {
    const rows = Array.from({ length: 300_000 }, () => [null])
    const out = renderTimeline("s", "test", [event(0, { _tag: "RecordedRows", statementId: 0, columns: [{ name: "n", typeOid: 23, binary: false }], rows, truncated: true })])
    expect(out.split("\n").length).toBe(1 + 1 + 2 + rows.length + 1)
  })

  it("renders a masking summary: each column's source, mask, method and count; the rows; messages withheld", () => {
    const summary: Payload = {
      _tag: "MaskingSummary",
      statementId: 4,
      columns: [
        { name: "email", source: "public.customers.email", maskId: "pii-email", method: "redact", values: 12 },
        { name: "upper", source: null, maskId: "computed", method: "redact", values: 1 },
        { name: "?column?", source: null, maskId: "unresolved", method: "null", values: 3 }
      ],
      rows: 12,
      messagesWithheld: 2
    }
    const out = renderTimeline("s", "test", [event(0, summary)])
    expect(out.split("\n")[1]).toMatch(
      /^0 {2}\S+ {2}masked 4 {2}email \(public\.customers\.email, mask pii-email, redact, 12 values\), upper \(computed, redact, 1 value\), \?column\? \(origin unknown, mask unresolved, null, 3 values\) in 12 rows · 2 messages withheld$/
    )
    // --json has the event whole
    expect(JSON.parse(jsonLine(event(0, summary)))).toEqual(event(0, summary))
  })

  it("a masking summary without rewritten values, or without withheld messages, says so briefly", () => {
    const only = (columns: number, messagesWithheld: number): string =>
      renderTimeline("s", "test", [
        event(0, {
          _tag: "MaskingSummary",
          statementId: 0,
          columns: Array.from({ length: columns }, () => ({ name: "n", source: "s.t.n", maskId: "m", method: "partial" as const, values: 1 })),
          rows: columns,
          messagesWithheld
        })
      ]).split("\n")[1]!
    expect(only(0, 1)).toMatch(/ {2}masked 0 {2}no values rewritten · 1 message withheld$/)
    expect(only(1, 0)).toMatch(/ {2}masked 0 {2}n \(s\.t\.n, mask m, partial, 1 value\) in 1 row$/)
  })

  it("escapes control characters in a masking summary's column names, sources and mask ids", () => {
    const out = renderTimeline("s", "test", [
      event(0, {
        _tag: "MaskingSummary",
        statementId: 0,
        columns: [{ name: "a\u001b[2Jb", source: "s.t.\u0007c", maskId: "m\u009b", method: "email", values: 1 }],
        rows: 1,
        messagesWithheld: 0
      })
    ])
    expect(out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/)
    expect(out).toContain("a\\x1b[2Jb (s.t.\\x07c, mask m\\x9b, email, 1 value)")
  })
})
