/**
 * Renders the Markdown table and the SVG chart again from a results file, without
 * running anything:  node bench/render.ts [bench/results/latest.json]
 */
import { readFileSync, writeFileSync } from "node:fs"
import { toMarkdown, toSvg } from "./lib/report.ts"
import type { Results } from "./lib/results.ts"

const file = process.argv[2] ?? new URL("./results/latest.json", import.meta.url).pathname
const results = JSON.parse(readFileSync(file, "utf8")) as Results
const base = file.replace(/\.json$/, "")
writeFileSync(`${base}.md`, toMarkdown(results) + "\n")
writeFileSync(`${base}.svg`, toSvg(results))
console.log(`wrote ${base}.md and ${base}.svg`)
