/**
 * `sluice replay`'s timeline, rendered without a sink: recorded rows as an aligned table
 * whatever their number, and nothing from the audit trail that could drive the auditor's
 * terminal (control characters come out as `\xNN`).
 */
import { describe, expect, it } from "vitest"
import { renderTimeline } from "../../src/cli/replay.ts"
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
})
