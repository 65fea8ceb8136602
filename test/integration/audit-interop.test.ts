/**
 * Interoperability of Sluice's audit Avro with an implementation that is not avsc: Python
 * fastavro (installed into a cached venv by scripts/provision-python.sh; SLUICE_PYTHON may
 * point at a Python that has fastavro instead).
 *
 * - Single-object encoded events: fastavro checks the C3 01 marker, computes the schema's
 *   Parsing Canonical Form and CRC-64-AVRO fingerprint itself and compares them with ours
 *   and with the message header, and decodes the bodies with schemaless_reader.
 * - Container files written by the file sink (both codecs, several rotated files): fastavro's
 *   reader decodes them with the schema from the file header.
 *
 * fastavro applies the logical types (eventId must parse as a UUID; time becomes a datetime,
 * printed back as microseconds), so the test also proves they are valid for other readers.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Exit, Scope } from "effect"
import fc from "fast-check"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { CURRENT_SCHEMA, encodeSingleObject, SCHEMA_DIRECTORY } from "../../src/sinks/avro.ts"
import type { AuditEvent } from "../../src/sinks/events.ts"
import { auditArbitraries } from "../property/audit-arbitraries.ts"
import { listContainerFiles, makeFileSink, readContainerFiles } from "../../src/sinks/file-sink.ts"
import { avroView } from "./support/audit-trail.ts"
import { exec, FASTAVRO_SCRIPT, fastavroPython } from "./support/fastavro.ts"


// --- events: every kind, with the awkward values (unicode, empty, null, extremes) -------------

const text = fc.oneof(fc.string(), fc.string({ unit: "grapheme" }), fc.constantFrom("", "ünïcödé 😀 \u0000 \"quoted\" \\"))
const long = fc.oneof(fc.integer({ min: 0, max: 2 ** 53 - 2 }), fc.integer({ min: -(2 ** 52), max: 0 }), fc.constantFrom(0, 2 ** 53 - 2, -(2 ** 52)))
// fastavro turns timestamp-micros into a datetime (years 1..9999): these are 1827..2255
const { anyEvent } = auditArbitraries({ text, long, time: long })

const sample = (n: number, seed: number): Array<AuditEvent> => fc.sample(anyEvent, { numRuns: n, seed })

/** Covers every payload kind whatever the sample. */
const everyKind = (): Array<AuditEvent> => {
  const byKind = new Map<string, AuditEvent>()
  for (const e of sample(400, 7)) if (!byKind.has(e.payload._tag)) byKind.set(e.payload._tag, e)
  expect([...byKind.keys()].sort()).toEqual(["Decision", "MaskingSummary", "RecordedRows", "Result", "SessionEnd", "SessionStart", "Statement"])
  return [...byKind.values()]
}

describe("audit Avro read by fastavro", () => {
  let python: string
  let work: string

  beforeAll(async () => {
    python = await fastavroPython()
    work = await mkdtemp(join(tmpdir(), "sluice-interop-"))
  }, 300_000)

  afterAll(async () => {
    if (work !== undefined) await rm(work, { recursive: true, force: true })
  })

  const decode = async (args: ReadonlyArray<string>): Promise<any> => {
    const r = await exec(python, [FASTAVRO_SCRIPT, ...args])
    if (r.code !== 0) throw new Error(`fastavro_decode.py ${args[0]} failed (exit ${r.code}):\n${r.stderr}`)
    return JSON.parse(r.stdout)
  }

  it("single-object encoding: fastavro's canonical form and fingerprint are ours, the bodies decode to the same events", async () => {
    const events = [...everyKind(), ...sample(500, 42)]
    const messages = join(work, "messages.json")
    await writeFile(messages, JSON.stringify(events.map((e) => encodeSingleObject(e).toString("hex"))))
    const out = await decode(["single", join(SCHEMA_DIRECTORY, CURRENT_SCHEMA.file), messages])
    console.log(`[interop] fastavro ${out.fastavro}: ${events.length} single-object events, fingerprint ${out.fingerprint}`)
    expect(out.canonical).toBe(CURRENT_SCHEMA.canonical)
    expect(out.fingerprint).toBe(CURRENT_SCHEMA.fingerprintHex)
    expect(out.events).toEqual(events.map(avroView))
  })

  for (const codec of ["deflate", "null"] as const) {
    it(`container files from the file sink (${codec}, rotated): fastavro's reader gets the same events`, async () => {
      const directory = join(work, `files-${codec}`)
      const batches = [everyKind(), sample(300, 1), sample(1, 2), sample(120, 3)]
      const scope = await Effect.runPromise(Scope.make())
      const sink = await Effect.runPromise(Scope.provide(scope)(makeFileSink({ directory, maxFileBytes: 16 * 1024, maxFileAgeMs: 60_000, codec, blockBytes: 4096 })))
      for (const b of batches) await Effect.runPromise(sink.write(b as [AuditEvent, ...Array<AuditEvent>]))
      await Effect.runPromise(Scope.close(scope, Exit.void))

      const files = await Effect.runPromise(listContainerFiles(directory))
      expect(files.length).toBeGreaterThan(1)
      const out = await decode(["container", ...files])
      console.log(`[interop] fastavro ${out.fastavro}: ${files.length} ${codec} container files`)
      expect(out.files.map((f: { codec: string }) => f.codec)).toEqual(files.map(() => codec))
      const all = batches.flat()
      expect(out.files.flatMap((f: { events: unknown[] }) => f.events)).toEqual(all.map(avroView))
      // and our own reader agrees
      expect(await Effect.runPromise(readContainerFiles(directory))).toStrictEqual(all)
    })
  }
})
