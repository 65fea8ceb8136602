/** Reads a YAML document into a schema's type, or into every problem found, each with its path. */
import { readFile } from "node:fs/promises"
import { Data, Effect, Result, Schema, SchemaIssue } from "effect"
import { parseDocument } from "yaml"

export interface Problem {
  /** Dotted path into the document, e.g. `targets.0.port`; empty for the whole file. */
  readonly path: string
  readonly message: string
}

export class InvalidFile extends Data.TaggedError("InvalidFile")<{
  readonly file: string
  /** What the file is, for the heading: "configuration", "policy". */
  readonly kind: string
  readonly problems: ReadonlyArray<Problem>
}> {
  override get message(): string {
    return [`${this.file}: invalid ${this.kind}`, ...this.problems.map((p) => `  ${p.path || "(root)"}: ${p.message}`)].join("\n")
  }
}

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

const pathOf = (path: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined): string =>
  (path ?? []).map((p) => String(typeof p === "object" ? p.key : p)).join(".")

export interface YamlSchema<A> {
  readonly schema: Schema.ConstraintDecoder<A>
  readonly kind: string
  /** Checks relating several fields, run once the schema accepts the document. */
  readonly crossChecks?: (value: A) => ReadonlyArray<Problem>
}

/** Pure: text to a value, or every problem in it. Unknown keys are errors, so typos never pass silently. */
export const decodeYaml = <A>(spec: YamlSchema<A>, file: string, text: string): Result.Result<A, InvalidFile> => {
  const fail = (problems: ReadonlyArray<Problem>) => Result.fail(new InvalidFile({ file, kind: spec.kind, problems }))
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true })
  if (doc.errors.length > 0) {
    return fail(
      doc.errors.map((e) => ({
        path: "",
        message: `YAML ${e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : "syntax"}: ${e.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "")}`
      }))
    )
  }
  const decoded = Schema.decodeUnknownResult(spec.schema, { errors: "all", onExcessProperty: "error" })(doc.toJS())
  if (Result.isFailure(decoded)) {
    return fail(formatter(decoded.failure.issue).issues.map((i) => ({ path: pathOf(i.path), message: i.message })))
  }
  const problems = spec.crossChecks?.(decoded.success) ?? []
  return problems.length > 0 ? fail(problems) : Result.succeed(decoded.success)
}

export const loadYaml = <A>(spec: YamlSchema<A>, file: string): Effect.Effect<A, InvalidFile> =>
  Effect.tryPromise({
    try: () => readFile(file, "utf8"),
    catch: (e) => new InvalidFile({ file, kind: spec.kind, problems: [{ path: "", message: `cannot read file: ${(e as NodeJS.ErrnoException).code ?? String(e)}` }] })
  }).pipe(Effect.flatMap((text) => Effect.fromResult(decodeYaml(spec, file, text))))
