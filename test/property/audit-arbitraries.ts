/**
 * Audit events for property tests, every kind, with the values that tend to break
 * encoders: unicode, empty strings, nulls, extreme longs, arbitrary bytes. The suites
 * choose the strings and longs (a reader such as fastavro limits timestamps, say).
 */
import fc from "fast-check"
import type { AuditEvent, Payload } from "../../src/sinks/events.ts"

export interface Values {
  readonly text: fc.Arbitrary<string>
  /** Counts, ids and durations. */
  readonly long: fc.Arbitrary<number>
  /** Event times (µs since the epoch). */
  readonly time: fc.Arbitrary<number>
  /** Statement texts; `text` unless a suite wants bigger ones too. */
  readonly statementText?: fc.Arbitrary<string>
  /** Event ids; lower-case UUIDs unless a suite wants other spellings too. */
  readonly eventId?: fc.Arbitrary<string>
}

/** Plain objects (fast-check may otherwise build records with a null prototype). */
const rec = <T extends Record<string, unknown>>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> =>
  fc.record(model, { noNullPrototype: true }) as unknown as fc.Arbitrary<T>

/** One arbitrary per payload kind of the newest schema, and events around them. */
export const auditArbitraries = (v: Values) => {
  const { text, long } = v
  const names = fc.array(text, { maxLength: 5 })
  const nullable = <A>(a: fc.Arbitrary<A>) => fc.option(a, { nil: null })
  const payloads = {
    SessionStart: rec({
      _tag: fc.constant("SessionStart" as const),
      actor: rec({ subject: text, kind: fc.constantFrom("machine" as const, "human" as const), issuer: text, groups: names }),
      clientAddress: fc.oneof(fc.ipV4(), fc.ipV6()),
      clientPort: fc.integer({ min: -2147483648, max: 2147483647 }),
      clientUser: text,
      applicationName: nullable(text),
      tls: fc.boolean(),
      protocol: fc.constantFrom("postgresql" as const, "mongodb" as const),
      targetName: text,
      targetDatabase: text,
      backendUser: text
    }),
    SessionEnd: rec({ _tag: fc.constant("SessionEnd" as const), reason: text, durationMicros: long, bytesFromClient: long, bytesToClient: long, statements: long }),
    Statement: rec({
      _tag: fc.constant("Statement" as const),
      statementId: long,
      text: v.statementText ?? text,
      fingerprint: text,
      statementClass: text,
      relationsRead: names,
      relationsWritten: names,
      functions: names,
      via: fc.constantFrom("simple" as const, "extended" as const, "function-call" as const)
    }),
    Decision: rec({
      _tag: fc.constant("Decision" as const),
      statementId: long,
      verdict: fc.constantFrom("allow" as const, "block" as const, "mask" as const, "hold" as const, "approved" as const, "denied" as const, "timeout" as const),
      ruleId: text,
      reason: nullable(text),
      policyVersion: text
    }),
    Result: rec({
      _tag: fc.constant("Result" as const),
      statementId: long,
      rows: long,
      bytes: long,
      durationMicros: long,
      sqlstate: fc.oneof(fc.constant("00000"), fc.stringMatching(/^[0-9A-Z]{5}$/)),
      commandTag: nullable(text)
    }),
    RecordedRows: rec({
      _tag: fc.constant("RecordedRows" as const),
      statementId: long,
      columns: fc.array(rec({ name: text, typeOid: fc.integer({ min: 0, max: 2 ** 32 - 1 }), binary: fc.boolean() }), { maxLength: 5 }),
      // decoded bytes are Buffers, so the generated ones are too
      rows: fc.array(fc.array(fc.oneof(fc.constant(null), text, fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b))), { maxLength: 5 }), { maxLength: 6 }),
      truncated: fc.boolean()
    }),
    MaskingSummary: rec({
      _tag: fc.constant("MaskingSummary" as const),
      statementId: long,
      columns: fc.array(
        rec({
          name: text,
          source: nullable(text),
          maskId: fc.oneof(text, fc.constantFrom("computed", "unresolved")),
          method: fc.constantFrom("redact" as const, "null" as const, "partial" as const, "email" as const),
          values: long
        }),
        { maxLength: 5 }
      ),
      rows: long,
      messagesWithheld: long
    })
  } satisfies { readonly [K in Payload["_tag"]]: fc.Arbitrary<Extract<Payload, { _tag: K }>> }

  const eventOf = (payload: fc.Arbitrary<Payload>): fc.Arbitrary<AuditEvent> =>
    rec({
      eventId: v.eventId ?? fc.uuid(),
      sessionId: text,
      sequence: long,
      time: v.time,
      gateway: text,
      payload
    })

  return { payloads: payloads as { readonly [K in Payload["_tag"]]: fc.Arbitrary<Payload> }, eventOf, anyEvent: eventOf(fc.oneof(...Object.values(payloads))) }
}
