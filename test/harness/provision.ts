/**
 * Runs scripts/provision.sh (fast when its cache is warm) and reads the paths
 * of what it built from its stdout.
 */
import { fileURLToPath } from "node:url"
import { run } from "./process.ts"

export interface Artefacts {
  readonly kafkaLibs?: string
  readonly ferretdbBin?: string
  readonly registryJar?: string
}

const SCRIPT = fileURLToPath(new URL("../../scripts/provision.sh", import.meta.url))

export const provision = async (parts: ReadonlyArray<"kafka" | "ferretdb" | "registry">): Promise<Artefacts> => {
  if (parts.length === 0) return {}
  // Cold, this downloads jars and Go modules and builds FerretDB: minutes.
  const { stdout, stderr } = await run("provision", "bash", [SCRIPT, ...parts], {
    timeoutMs: 20 * 60_000,
    echoStderr: true,
  })
  const built = new Map<string, string>()
  for (const line of stdout.split("\n")) {
    const eq = line.indexOf("=")
    if (eq > 0) built.set(line.slice(0, eq), line.slice(eq + 1))
  }
  const kafkaLibs = built.get("SLUICE_KAFKA_LIBS")
  const ferretdbBin = built.get("SLUICE_FERRETDB_BIN")
  const registryJar = built.get("SLUICE_REGISTRY_JAR")
  if (parts.includes("kafka") && !kafkaLibs) throw new Error(`provision: no SLUICE_KAFKA_LIBS in its output\n${stderr}`)
  if (parts.includes("ferretdb") && !ferretdbBin) throw new Error(`provision: no SLUICE_FERRETDB_BIN in its output\n${stderr}`)
  if (parts.includes("registry") && !registryJar) throw new Error(`provision: no SLUICE_REGISTRY_JAR in its output\n${stderr}`)
  return { ...(kafkaLibs ? { kafkaLibs } : {}), ...(ferretdbBin ? { ferretdbBin } : {}), ...(registryJar ? { registryJar } : {}) }
}
