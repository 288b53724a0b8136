// The readable table printed by `hsmkit bench`.
import type { BenchReport, Row } from "./index.js";

const fmt = (n: number | null, digits = 3): string => {
  if (n === null || !Number.isFinite(n)) return "";
  if (n >= 1000) return Math.round(n).toLocaleString("en-US");
  return Number(n.toPrecision(digits)).toString();
};

function cells(row: Row, compare: boolean): string[] {
  const key = row.key_bits > 0 ? String(row.key_bits) : "";
  const head = [row.target, row.op, key, String(row.bytes), String(row.threads)];
  if (row.status !== "ok") return [...head, row.status.toUpperCase(), "", "", "", "", "", "", ...(compare ? [""] : []), row.reason ?? ""];
  const errors = row.errors === 0 ? "" : Object.entries(row.errors_by_code).map(([code, n]) => `${code}×${n}`).join(" ");
  return [
    ...head, fmt(row.ops_per_s), fmt(row.mb_per_s), fmt(row.latency_us.mean), fmt(row.latency_us.stddev), fmt(row.p50_us), fmt(row.latency_us.p95), fmt(row.p99_us),
    ...(compare ? [row.ratio === null ? "" : `${row.ratio.toFixed(2)}×`] : []), errors,
  ];
}

export function renderTable(report: BenchReport): string {
  const compare = report.rows.some((r) => r.ratio !== null);
  const baseline = report.rows.find((r) => r.ratio_vs !== null)?.ratio_vs;
  const http = report.targets.length > 0 && report.targets.every((t) => t.kind === "http");
  const header = ["target", "op", "key bits", "bytes", http ? "conns" : "threads", "ops/s", "MB/s", "mean µs", "sd µs", "p50 µs", "p95 µs", "p99 µs",
    ...(compare ? [`× ${baseline}`] : []), "errors / note"];
  const lines = report.rows.map((r) => cells(r, compare));
  const numeric = new Set([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, ...(compare ? [12] : [])]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (i === header.length - 1 ? 0 : l[i]!.length))));
  const render = (row: string[]): string =>
    row.map((c, i) => (i === row.length - 1 ? c : numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd();
  const m = report.machine;
  const c = report.config;
  const unit = http ? "connection" : "thread";
  const how = c.iterations !== null ? `${c.iterations} ${http ? "requests per connection" : "operations per thread"}` : `${c.duration_s} s per trial`;
  const what = (t: BenchReport["targets"][number]): string => {
    if (t.module) return `${t.module.description} ${t.module.library_version} (${t.module.manufacturer}), token "${t.token?.label}"`;
    if (t.http) return `${t.http.url}, project ${t.http.project_id}, CMK ${t.http.key_id} (${t.http.credentials})`;
    return t.kind;
  };
  const out = [
    `hsmkit bench — ${m.cpu}, ${m.cores} cores, Node ${m.node}, OpenSSL ${m.openssl}${m.native_openssl ? ` (native core: ${m.native_openssl})` : ""}`,
    `${how}, warm-up ${c.warmup_s} s, ${c.threads} ${unit}${c.threads === 1 ? "" : "s"}; latency per ${http ? "2xx response (autocannon)" : "operation (hrtime)"}; compare only ratios within one run`,
    ...report.targets.map((t) => `  ${t.name}: ${what(t)}${t.note ? ` — ${t.note}` : ""}`),
    "",
    render(header),
    render(widths.map((w) => "-".repeat(w))),
    ...lines.map(render),
  ];
  const client = report.rows.filter((r) => r.http !== undefined && r.status === "ok");
  if (client.length > 0) {
    out.push("", "client process (autocannon and signing, on the same machine as the server unless it is remote):");
    for (const r of client) {
      const h = r.http!;
      out.push(`  ${r.target} ${r.op} ${r.bytes} B: ${fmt(h.client_cpu_cores)} cores, of which signing ${fmt(h.signing_cpu_cores)} (${h.signing_us === null ? "-" : fmt(h.signing_us)} µs per signature, ${h.signing})`);
    }
  }
  return out.join("\n") + "\n";
}
