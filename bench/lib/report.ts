/** Results to a Markdown report and a hand-written SVG chart. */
import type { Results } from "./results.ts"
import { fmt, fmtRatio, ratio } from "./stats.ts"
import { TARGET_LABELS, TARGET_ORDER, type TargetName } from "./targets.ts"

const label = (t: TargetName): string => TARGET_LABELS[t]

/** (max − min) / median of repeated measurements, as a percentage. */
const spread = (xs: ReadonlyArray<number>): string => {
  if (xs.length < 2) return "n/a"
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2
  return `${Math.round((100 * (sorted[sorted.length - 1]! - sorted[0]!)) / mid)}%`
}

/** A Markdown table; the first `textColumns` columns are left-aligned, the numbers right-aligned. */
const table = (head: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>, textColumns = 1): string =>
  [`| ${head.join(" | ")} |`, `|${head.map((_h, i) => (i < textColumns ? "---" : "---:")).join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n")

export const toMarkdown = (r: Results): string => {
  const out: string[] = []
  const m = r.machine
  out.push(`# Sluice bench: ${r.mode} run, ${r.startedAt}`)
  out.push("")
  out.push(
    `Machine: ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, Linux ${m.kernel}; Node ${m.node}; PostgreSQL ${m.postgres}; ${m.pgbench}; ${m.pgbouncer}; ${m.psql}. ` +
      `Sluice at ${m.sluiceCommit}. Load average before ${m.loadAverageBefore.join(" ")}, after ${m.loadAverageAfter.join(" ")}. Took ${Math.round(r.seconds)} s.`
  )
  out.push("")
  out.push(`Pinning: ${r.pinning}.`)
  out.push("")
  const settings = Object.entries(r.settings).map(([k, v]) => `${k} ${JSON.stringify(v)}`)
  out.push(`Settings: ${settings.join("; ")}.`)
  out.push("")
  for (const t of r.targets) {
    if (t.skipped) out.push(`- **${t.label}: skipped.** ${t.skipped}`)
    for (const n of t.notes) out.push(`- ${t.label}: ${n}`)
  }
  for (const n of r.notes) out.push(`- ${n}`)
  out.push("")

  if (r.bar.length > 0) {
    out.push("## The bar from issue 5 (reported, never enforced)")
    out.push("")
    if (r.bar.some((b) => b.target === "sluice")) {
      out.push("The full pipeline did not run in this run, so Sluice allow-all stands in for it: the bar applies to the full pipeline, which can only cost more.")
      out.push("")
    }
    out.push(
      table(
        ["Bar", "Target", "Measured", "Limit", "Status"],
        r.bar.map((b) => [
          b.bar,
          label(b.target),
          b.measured,
          b.limit,
          b.informational ? `reported${b.note ? `: ${b.note}` : ""}` : b.pass === null ? `n/a${b.note ? `: ${b.note}` : ""}` : b.pass ? "meets" : "**misses**"
        ]),
        2
      )
    )
    out.push("")
  }

  if (r.pgbench.length > 0) {
    out.push("## pgbench -S (select only)")
    out.push("")
    out.push(
      "Medians of the repetitions. TPS spread is (max − min) / median over the repetitions: a large one means the machine was busy with something else during some of them. CPU is the proxy process's own user+system time divided by the transactions it carried (n/a for direct: no proxy); it is steadier than TPS on a shared machine. Ratios are against the same run's baselines."
    )
    out.push("")
    const rows: string[][] = []
    const configs = [...new Set(r.pgbench.map((p) => `${p.mode}/${p.clients}`))]
    for (const c of configs) {
      const group = r.pgbench.filter((p) => `${p.mode}/${p.clients}` === c)
      const base = (t: TargetName) => group.find((p) => p.target === t)
      for (const p of group) {
        rows.push([
          `${p.mode}, ${p.clients}`,
          label(p.target),
          fmt(p.tps, 0),
          spread(p.runs.map((x) => x.tps)),
          fmt(p.latencyMs, 3),
          fmt(p.cpuUsPerTx, 1),
          fmtRatio(ratio(p.tps, base("relay")?.tps)),
          fmtRatio(ratio(p.cpuUsPerTx, base("relay")?.cpuUsPerTx)),
          fmtRatio(ratio(p.tps, base("direct")?.tps)),
          fmtRatio(ratio(p.tps, base("pgbouncer")?.tps))
        ])
      }
    }
    out.push(table(["Mode, clients", "Target", "TPS", "TPS spread", "Avg latency ms", "CPU µs/tx", "TPS vs relay", "CPU vs relay", "TPS vs direct", "TPS vs PgBouncer"], rows, 2))
    out.push("")
    out.push(...auditCost(r))
  }

  if (r.latency.length > 0) {
    out.push("## Added latency (1 connection, `SELECT 1` round trips, HDR histogram)")
    out.push("")
    out.push("Percentiles are medians over the repetitions; overhead is this target's p50 minus direct's (and minus the raw relay's).")
    out.push("")
    out.push(
      table(
        ["Target", "Round trips", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "max µs", "p50 over direct µs", "p50 over relay µs"],
        r.latency.map((l) => [label(l.target), String(l.roundTrips), fmt(l.p50Us), fmt(l.p90Us), fmt(l.p99Us), fmt(l.p999Us), fmt(l.maxUs, 0), fmt(l.overDirectP50Us), fmt(l.overRelayP50Us)])
      )
    )
    out.push("")
  }

  if (r.streaming.length > 0) {
    out.push("## Large results")
    out.push("")
    const any = r.streaming[0]!
    out.push(
      `${any.rows.toLocaleString("en-US")} rows, ${fmt(any.bytes / 1e6, 0)} MB as text: \`COPY … TO STDOUT\` read by psql (its own \\timing), and a node-postgres cursor (pg-cursor, 10,000 rows a batch, array rows) in the bench process. MB/s of the result's text (10^6 bytes).` +
        (r.streaming.some((s) => s.cpuNsPerRow !== undefined && s.cpuNsPerRow !== null)
          ? " Cursor proxy CPU is the proxy process's user+system time during one read (after the login) per row, median over the repetitions (10 ms clock ticks)."
          : "") +
        (r.streaming.some((s) => s.target === "sluice-full-masked")
          ? ` ${label("sluice-full-masked")} masks bench_big.payload (redact: every value becomes "****", rewritten in each DataRow by the gateway); its MB/s counts the same text as the others' (the table's, unmasked), so it compares rows per second, though its client receives and parses less (4 bytes of payload a row instead of 108). It has no COPY number: COPY of a masked table is blocked by design (COPY cannot be masked).`
          : "")
    )
    out.push("")
    const by = (kind: "copy" | "cursor", t: TargetName) => r.streaming.find((s) => s.kind === kind && s.target === t)
    const targets = TARGET_ORDER.filter((t) => r.streaming.some((s) => s.target === t))
    // results from before the column existed have none
    const cpuColumn = r.streaming.some((s) => s.cpuNsPerRow !== undefined)
    out.push(
      table(
        ["Target", "COPY MB/s", "COPY vs relay", "COPY vs direct", "cursor MB/s", "cursor vs relay", "cursor vs direct", ...(cpuColumn ? ["cursor proxy CPU ns/row"] : [])],
        targets.map((t) => [
          label(t),
          fmt(by("copy", t)?.mbps),
          fmtRatio(ratio(by("copy", t)?.mbps, by("copy", "relay")?.mbps)),
          fmtRatio(ratio(by("copy", t)?.mbps, by("copy", "direct")?.mbps)),
          fmt(by("cursor", t)?.mbps),
          fmtRatio(ratio(by("cursor", t)?.mbps, by("cursor", "relay")?.mbps)),
          fmtRatio(ratio(by("cursor", t)?.mbps, by("cursor", "direct")?.mbps)),
          ...(cpuColumn ? [fmt(by("cursor", t)?.cpuNsPerRow, 0)] : [])
        ])
      )
    )
    out.push("")
  }

  if (r.connect.length > 0) {
    out.push("## Connection set-up (SCRAM)")
    out.push("")
    out.push(
      `\`pgbench -S -C\` with ${r.connect[0]!.clients} clients: every transaction opens a new connection. direct, raw relay: SCRAM with PostgreSQL end to end. PgBouncer: SCRAM with the client; in session mode it hands back a pooled server connection, so PostgreSQL's login is mostly skipped. Sluice: the client's token in a cleartext password message (loopback), then a fresh SCRAM login to PostgreSQL for every client.`
    )
    out.push("")
    const direct = r.connect.find((c) => c.target === "direct")
    out.push(
      table(
        ["Target", "Connections/s", "vs direct", "Proxy CPU µs/connection"],
        r.connect.map((c) => [label(c.target), fmt(c.perSecond, 0), fmtRatio(ratio(c.perSecond, direct?.perSecond)), fmt(c.cpuUsPerConnection, 0)])
      )
    )
    out.push("")
  }

  if (r.idle.length > 0 || r.slowReader.length > 0) out.push("## Memory", "")
  if (r.idle.length > 0) {
    out.push(`Idle connections: logged in, then left alone; the proxy's RSS after ${r.idle[0]!.connections.toLocaleString("en-US")} of them, against a dedicated PostgreSQL with max_connections above that.`)
    out.push("")
    out.push(
      table(
        ["Target", "Connections", "RSS before MiB", "RSS after MiB", "KiB per connection", "Open time s"],
        r.idle.map((i) => [label(i.target), String(i.connections), fmt(i.rssBeforeMiB), fmt(i.rssAfterMiB), fmt(i.kibPerConnection), fmt(i.openSeconds)])
      )
    )
    out.push("")
  }
  if (r.slowReader.length > 0) {
    const s = r.slowReader[0]!
    out.push(
      `Slow reader: one client asks for a ${fmt(s.resultMiB, 0)} MiB result and reads it at ${fmt(s.rateMiBps, 2)} MiB/s, for ${fmt(s.seconds, 0)} s${s.finished ? " (to the end)" : " (a window of the result; see bench/README.md)"}; the proxy's RSS is sampled every 250 ms.`
    )
    out.push("")
    out.push(
      table(
        ["Target", "Read MiB", "Seconds", "RSS baseline MiB", "RSS peak MiB", "Growth MiB"],
        r.slowReader.map((x) => [label(x.target), fmt(x.readMiB), fmt(x.seconds), fmt(x.rssBaselineMiB), fmt(x.rssPeakMiB), fmt(x.growthMiB)])
      )
    )
    out.push("")
  }
  if (r.classifier) {
    out.push("## Classifier speed (scripts/classify-speed.ts)", "", "```", r.classifier.trim(), "```", "")
  }
  if (r.failures.length > 0) {
    out.push("## Failures (broken targets or workloads)", "")
    for (const f of r.failures) out.push(`- ${f.target} / ${f.workload}: ${f.error.split("\n")[0]}`)
    out.push("")
  }
  return out.join("\n")
}

/** The full pipeline's targets by where their audit events go; the first is the reference. */
const AUDIT_LEGS: ReadonlyArray<readonly [TargetName, string]> = [
  ["sluice-full-audit-off", "off"],
  ["sluice-full", "files"],
  ["sluice-full-kafka", "Kafka"]
]

/** pgbench -S through the same policy with audit off, to files and to Kafka: the audit's cost. */
const auditCost = (r: Results): string[] => {
  const off = r.pgbench.filter((p) => p.target === "sluice-full-audit-off")
  if (off.length === 0 || !r.pgbench.some((p) => p.target === "sluice-full" || p.target === "sluice-full-kafka")) return []
  const rows: string[][] = []
  for (const o of off) {
    const group = r.pgbench.filter((p) => p.mode === o.mode && p.clients === o.clients)
    const relay = group.find((p) => p.target === "relay")
    for (const [target, audit] of AUDIT_LEGS) {
      const p = group.find((x) => x.target === target)
      if (!p) continue
      rows.push([
        `${p.mode}, ${p.clients}`,
        audit,
        fmt(p.tps, 0),
        fmt(p.cpuUsPerTx, 1),
        fmtRatio(ratio(p.tps, o.tps)),
        p.cpuUsPerTx === null || o.cpuUsPerTx === null ? "n/a" : fmt(p.cpuUsPerTx - o.cpuUsPerTx, 1),
        p.mainThreadUsPerTx == null || o.mainThreadUsPerTx == null ? "n/a" : fmt(p.mainThreadUsPerTx - o.mainThreadUsPerTx, 1),
        fmtRatio(ratio(p.tps, relay?.tps)),
        fmtRatio(ratio(p.cpuUsPerTx, relay?.cpuUsPerTx))
      ])
    }
  }
  return [
    "### The audit's cost",
    "",
    "The same gateway and policy (the full pipeline), with audit off, to the file sink (spool, then Avro container files) and to Kafka (spool, then the topic), from the table above. The CPU is the gateway process's: it includes encoding, spooling and shipping the events (the shipper runs inside the gateway, in a thread of its own, after the statements; the CPU counts every thread). The Kafka broker's own CPU is not in it, though the broker shares the machine. With Kafka, the run also checks that the events arrived (see the notes at the top). \"On the event loop\" is the part of the added CPU spent on the gateway's main thread, where statements are relayed: what audit takes from the data path on a host with cores to spare, where the helper threads (delivery, the thread pool's fsyncs, V8's garbage collection) run beside it. On this bench they share the gateway's one core.",
    "",
    table(["Mode, clients", "Audit", "TPS", "CPU µs/tx", "TPS vs audit off", "CPU µs/tx added by audit", "of it on the event loop", "TPS vs relay", "CPU vs relay"], rows, 2),
    ""
  ]
}

// ---------------------------------------------------------------------------
// SVG

const COLORS: Record<TargetName, string> = {
  direct: "#4c78a8",
  relay: "#9d755d",
  pgbouncer: "#54a24b",
  sluice: "#e45756",
  "sluice-full-audit-off": "#f2b701",
  "sluice-full": "#b279a2",
  "sluice-full-masked": "#ff9da6",
  "sluice-full-kafka": "#72b7b2"
}

const esc = (s: string): string => s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")

const text = (x: number, y: number, s: string, attrs = ""): string => `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${esc(s)}</text>`

/** Nice round ticks on a log10 axis between lo and hi. */
const logTicks = (lo: number, hi: number): number[] => {
  const ticks: number[] = []
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e
      if (v >= lo && v <= hi) ticks.push(v)
    }
  }
  return ticks
}

/** A round tick step that splits 0..x into about four intervals. */
const niceStep = (x: number): number => {
  const raw = x / 4
  const e = 10 ** Math.floor(Math.log10(raw))
  for (const m of [1, 2, 2.5, 5, 10]) if (m * e >= raw) return m * e
  return 10 * e
}

const short = (v: number): string => (v >= 1000 ? `${Number((v / 1000).toFixed(1))}k` : String(Number(v.toFixed(1))))

export const toSvg = (r: Results): string => {
  const W = 1000
  const parts: string[] = []
  let y0 = 0
  const targets = r.targets.filter((t) => t.ran).map((t) => t.name)

  // legend, five targets a row
  parts.push(text(20, 24, `Sluice bench (${r.mode}, ${r.startedAt.slice(0, 10)}): ${r.machine.cores} cores, Node ${r.machine.node}, PostgreSQL ${r.machine.postgres}`, 'font-size="15" font-weight="bold"'))
  targets.forEach((t, i) => {
    const x = 20 + (i % 5) * 190
    const y = 36 + Math.floor(i / 5) * 20
    parts.push(`<rect x="${x}" y="${y}" width="14" height="14" fill="${COLORS[t]}"/>`)
    parts.push(text(x + 20, y + 12, label(t), 'font-size="13"'))
  })
  y0 = 70 + Math.floor(Math.max(0, targets.length - 1) / 5) * 20

  // Panel 1: latency distribution (percentile on a "nines" axis, µs on a log axis)
  if (r.latency.length > 0) {
    const H = 300
    const left = 70
    const right = W - 30
    const top = y0 + 30
    const bottom = top + H
    parts.push(text(20, y0 + 18, "Latency distribution, 1 connection, SELECT 1 round trips (µs, log scale)", 'font-size="14" font-weight="bold"'))
    const maxNines = 4 // 99.99
    const xOf = (p: number): number => {
      const nines = Math.min(maxNines, -Math.log10(Math.max(1e-9, 1 - p / 100)))
      return left + (nines / maxNines) * (right - left)
    }
    const all = r.latency.flatMap((l) => l.distribution.filter(([p]) => p <= 99.99).map(([, v]) => v)).filter((v) => v > 0)
    const lo = Math.max(1, Math.min(...all) * 0.8)
    const hi = Math.max(...all) * 1.2
    const yOf = (v: number): number => bottom - ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * H
    parts.push(`<rect x="${left}" y="${top}" width="${right - left}" height="${H}" fill="none" stroke="#999"/>`)
    for (const v of logTicks(lo, hi)) {
      parts.push(`<line x1="${left}" x2="${right}" y1="${yOf(v).toFixed(1)}" y2="${yOf(v).toFixed(1)}" stroke="#eee"/>`)
      parts.push(text(left - 6, yOf(v) + 4, String(v), 'font-size="11" text-anchor="end"'))
    }
    for (const [p, name] of [[0, "0%"], [90, "90%"], [99, "99%"], [99.9, "99.9%"], [99.99, "99.99%"]] as const) {
      parts.push(`<line x1="${xOf(p).toFixed(1)}" x2="${xOf(p).toFixed(1)}" y1="${top}" y2="${bottom}" stroke="#eee"/>`)
      parts.push(text(xOf(p), bottom + 16, name, 'font-size="11" text-anchor="middle"'))
    }
    parts.push(text((left + right) / 2, bottom + 32, "percentile", 'font-size="12" text-anchor="middle"'))
    for (const l of r.latency) {
      const pts = l.distribution.filter(([p]) => p <= 99.99).map(([p, v]) => `${xOf(p).toFixed(1)},${yOf(v).toFixed(1)}`)
      parts.push(`<polyline fill="none" stroke="${COLORS[l.target]}" stroke-width="2" points="${pts.join(" ")}"/>`)
    }
    y0 = bottom + 50
  }

  // Panel 2: pgbench TPS bars
  const bars = (title: string, groups: Array<{ name: string; values: Array<{ t: TargetName; v: number | null }> }>, unit: string): void => {
    if (groups.length === 0) return
    const H = 240
    const left = 70
    const right = W - 30
    const top = y0 + 30
    const bottom = top + H
    parts.push(text(20, y0 + 18, title, 'font-size="14" font-weight="bold"'))
    const highest = Math.max(1, ...groups.flatMap((g) => g.values.map((v) => v.v ?? 0)))
    const step = niceStep(highest)
    const max = Math.ceil(highest / step) * step
    const yOf = (v: number): number => bottom - (v / max) * H
    for (let v = 0; v <= max + step / 2; v += step) {
      parts.push(`<line x1="${left}" x2="${right}" y1="${yOf(v).toFixed(1)}" y2="${yOf(v).toFixed(1)}" stroke="${v === 0 ? "#999" : "#eee"}"/>`)
      parts.push(text(left - 6, yOf(v) + 4, short(v), 'font-size="11" text-anchor="end"'))
    }
    const gw = (right - left) / groups.length
    groups.forEach((g, gi) => {
      const bw = Math.min(28, (gw - 16) / Math.max(1, g.values.length))
      const x0 = left + gi * gw + (gw - bw * g.values.length) / 2
      g.values.forEach((v, i) => {
        if (v.v === null || !Number.isFinite(v.v)) return
        const x = x0 + i * bw
        parts.push(`<rect x="${x.toFixed(1)}" y="${yOf(v.v).toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${(bottom - yOf(v.v)).toFixed(1)}" fill="${COLORS[v.t]}"><title>${esc(`${label(v.t)}: ${fmt(v.v, 0)} ${unit}`)}</title></rect>`)
        parts.push(text(x + (bw - 2) / 2, yOf(v.v) - 3, short(v.v >= 100 ? Math.round(v.v) : v.v), 'font-size="9" text-anchor="middle" fill="#333"'))
      })
      parts.push(text(left + gi * gw + gw / 2, bottom + 16, g.name, 'font-size="11" text-anchor="middle"'))
    })
    y0 = bottom + 36
  }
  const configs = [...new Set(r.pgbench.map((p) => `${p.mode}/${p.clients}`))]
  bars(
    "pgbench -S throughput (TPS, median)",
    configs.map((c) => ({
      name: `${c.split("/")[0]}, ${c.split("/")[1]} cl.`,
      values: targets.map((t) => ({ t, v: r.pgbench.find((p) => `${p.mode}/${p.clients}` === c && p.target === t)?.tps ?? null }))
    })),
    "TPS"
  )
  bars(
    "Proxy CPU per transaction (µs, pgbench -S, lower is better)",
    configs.map((c) => ({
      name: `${c.split("/")[0]}, ${c.split("/")[1]} cl.`,
      values: targets.filter((t) => t !== "direct").map((t) => ({ t, v: r.pgbench.find((p) => `${p.mode}/${p.clients}` === c && p.target === t)?.cpuUsPerTx ?? null }))
    })),
    "µs/tx"
  )
  if (r.streaming.length > 0) {
    bars(
      "Large results (MB/s, median)",
      (["copy", "cursor"] as const).map((k) => ({
        name: k === "copy" ? "COPY TO STDOUT (psql)" : "node-postgres cursor",
        values: targets.map((t) => ({ t, v: r.streaming.find((s) => s.kind === k && s.target === t)?.mbps ?? null }))
      })),
      "MB/s"
    )
  }
  const H = y0 + 10
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    ...parts,
    "</svg>",
    ""
  ].join("\n")
}
