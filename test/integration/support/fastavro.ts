/** Decoding with an Avro implementation that is not avsc: Python's fastavro, in a cached venv. */
import { execFile } from "node:child_process"
import { join } from "node:path"

const ROOT = new URL("../../../", import.meta.url).pathname
export const FASTAVRO_SCRIPT = new URL("./fastavro_decode.py", import.meta.url).pathname

export const exec = (file: string, args: ReadonlyArray<string>, timeout = 300_000): Promise<{ code: number | null; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    execFile(file, args, { timeout, maxBuffer: 256 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : null, stdout, stderr })
    })
  })

/** The Python with fastavro: $SLUICE_PYTHON, or the venv scripts/provision-python.sh makes (idempotent, cached). */
export const fastavroPython = async (): Promise<string> => {
  const given = process.env["SLUICE_PYTHON"]
  if (given !== undefined && given !== "") return given
  const r = await exec("bash", [join(ROOT, "scripts/provision-python.sh")])
  const line = r.stdout.split("\n").find((l) => l.startsWith("SLUICE_PYTHON="))
  if (r.code !== 0 || line === undefined) throw new Error(`scripts/provision-python.sh failed (exit ${r.code}):\n${r.stderr}`)
  return line.slice("SLUICE_PYTHON=".length)
}
