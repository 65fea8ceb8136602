/** Reads a policy file; `check-config` and the hot reloader share it. */
import type { Effect, Result } from "effect"
import { decodeYaml, type InvalidFile, loadYaml, type YamlSchema } from "../../config/yaml.ts"
import { Policy } from "./schema.ts"

const spec: YamlSchema<Policy> = { schema: Policy, kind: "policy" }

export const parsePolicy = (file: string, text: string): Result.Result<Policy, InvalidFile> => decodeYaml(spec, file, text)

export const loadPolicy = (file: string): Effect.Effect<Policy, InvalidFile> => loadYaml(spec, file)
